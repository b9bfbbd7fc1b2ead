//! The command line contract: usage errors, help, completions, the man page.

use crate::harness::Test;

#[test]
fn usage_errors_exit_2() {
    Test::new().args(["plan"]).code(2).run();
    Test::new()
        .args(["roll", "-i", "x", "--bogus"])
        .code(2)
        .run();
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Test::new().args(["--help"]).run();
    for needle in [
        "validate",
        "plan",
        "status",
        "roll",
        "rollback",
        "unlock",
        "--known-hosts",
        "--accept-new",
        "--forks",
        "130\ninterrupted",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn unlock_without_yes_or_a_terminal_refuses_before_connecting() {
    // 192.0.2.1 is TEST-NET-1: had it tried to connect, it would have timed out and said so.
    let out = Test::new()
        .file(
            "inv.yaml",
            "all:\n  hosts:\n    web-01:\n      ansible_host: 192.0.2.1\n",
        )
        .args(["unlock", "-i", "inv.yaml"])
        // A "y" on a pipe is not an operator's answer.
        .stdin("y\n")
        .code(2)
        .run();
    assert!(out.stderr.contains("give --yes"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn completions_and_man_page_come_from_the_definitions() {
    let bash = Test::new().args(["completions", "bash"]).run();
    assert!(bash.stdout.contains("--ignore-windows"), "{}", bash.stdout);
    let man = Test::new().args(["man"]).run();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH ngfleet"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
}

/// `rollback` asks before taking back more than one host: without a terminal it needs
/// `--yes`, and says so before contacting anything (as `roll` does when its spec pauses after
/// the canary). One host, or `--yes`, goes ahead.
#[test]
fn rollback_of_several_hosts_needs_yes_without_a_terminal() {
    // TEST-NET-1 addresses: nothing answers there.
    let inv = "all:\n  hosts:\n    web-01:\n      ansible_host: 192.0.2.1\n    web-02:\n      ansible_host: 192.0.2.2\n";
    let spec = format!(
        "binary: {{source: nginx, sha256: \"{}\"}}\ntimeouts: {{connect: 1s}}\n",
        "a".repeat(64)
    );
    let limit = std::time::Duration::from_secs(20);
    let out = Test::new()
        .file("inv.yaml", inv)
        .file("spec.yaml", &spec)
        .args(["rollback", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .within(limit)
        .run();
    assert_eq!(
        out.stderr,
        "error: rollback asks before taking back more than one host (2 selected), but there is no terminal to ask: give --yes, or --limit it to one host\n"
    );
    assert_eq!(out.stdout, "");
    // No journal anywhere: not at a default place either (the harness's state directory).
    assert_eq!(out.journal_path, None, "{}", out.show());
    // A rollback is one wave (no canary): every selected host is tried, and fails to connect.
    for (extra, failed) in [
        (&["--yes"][..], &["web-01", "web-02"][..]),
        (&["-y"], &["web-01", "web-02"]),
        (&["--limit", "web-01"], &["web-01"]),
    ] {
        let out = Test::new()
            .file("inv.yaml", inv)
            .file("spec.yaml", &spec)
            .args(["rollback", "-i", "inv.yaml", "-p", "spec.yaml"])
            .args(["--journal", "run.jsonl"])
            .args(extra.iter().copied())
            .code(1)
            .within(limit)
            .run();
        assert!(
            !out.stderr.contains("give --yes") && out.path("run.jsonl").exists(),
            "{extra:?}: {}",
            out.stderr
        );
        assert!(out.stdout.contains("failed to connect"), "{}", out.stdout);
        out.expect_result("failed");
        assert_eq!(out.hosts("failed"), failed, "{extra:?}: {}", out.show());
        assert!(
            out.hosts("untouched").is_empty(),
            "{extra:?}: {}",
            out.show()
        );
    }
}
