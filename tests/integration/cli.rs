//! The command line contract: usage errors, help, completions, the man page.

use crate::support::Test;

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
