//! `ngfleet validate`: every problem at once, exit 2; valid inputs exit 0.

use crate::support::Test;

#[test]
fn the_example_inputs_are_valid() {
    for playbook in [
        "playbooks/canary-then-batches.yaml",
        "playbooks/one-at-a-time.yaml",
    ] {
        let out = Test::new()
            .repo_file("inventories/production.yaml")
            .repo_file(playbook)
            .args([
                "validate",
                "-i",
                "inventories/production.yaml",
                "-p",
                playbook,
            ])
            .run();
        assert!(out.stdout.contains(": valid"), "{}", out.stdout);
        assert!(out.stdout.contains("17 hosts"), "{}", out.stdout);
    }
}

#[test]
fn lists_every_problem_of_both_files() {
    let out = Test::new()
        .file(
            "prod.yaml",
            "all:\n  children:\n    web:\n      hosts:\n        web-03:\n          ansible_port: ssh\n        web-04:\n          nginx_pid_file: run/nginx.pid\n",
        )
        .file("spec.yaml", "paralel: 3\nrollback: everything\n")
        .args(["validate", "--inventory", "prod.yaml", "--playbook", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: found 4 problems in the input:\n\
prod.yaml:6:25: all.children.web.hosts.web-03.ansible_port: expected a port number, found \"ssh\"\n\
prod.yaml:8:27: all.children.web.hosts.web-04.nginx_pid_file: expected an absolute path, found \"run/nginx.pid\"\n\
spec.yaml:1:1: paralel: unknown key `paralel` (did you mean `parallel`?)\n\
spec.yaml:2:11: rollback: expected one of host, batch, rollout, found \"everything\"\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn impossible_plans_and_bad_binaries_are_invalid_input() {
    let inv = "all:\n  hosts:\n    a:\n    b:\n";
    let out = Test::new()
        .file("inv.yaml", inv)
        .file(
            "spec.yaml",
            "hosts: a\ncanary: {hosts: b}\nbinary: {source: missing/nginx}\n",
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: spec.yaml: canary group `b` is not in the inventory\n\
spec.yaml: failed to use binary missing/nginx: it does not exist\n"
    );

    let t = Test::new().file("inv.yaml", inv).file("nginx", "not empty");
    std::fs::create_dir_all(t.path("dir")).expect("mkdir");
    let out = t
        .file("spec.yaml", "binary: {source: dir}\n")
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert!(
        out.stderr
            .contains("failed to use binary dir: it is not a regular file"),
        "{}",
        out.stderr
    );

    let sha = "0".repeat(64);
    let out = Test::new()
        .file("inv.yaml", inv)
        .file("bin/nginx", "new nginx")
        .file(
            "spec.yaml",
            &format!("binary: {{source: bin/nginx, sha256: \"{sha}\"}}\n"),
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert!(
        out.stderr
            .contains("failed to use binary bin/nginx: sha256 is 6e4f2563")
            && out.stderr.contains(&sha),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let out = Test::new()
        .args(["validate", "-i", "nope.yaml"])
        .code(2)
        .run();
    assert!(
        out.stderr.starts_with("error: failed to read nope.yaml: "),
        "{}",
        out.stderr
    );
}
