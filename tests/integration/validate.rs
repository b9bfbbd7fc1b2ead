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

/// The inventory: `lab-01` merges `*common`, whose nginx paths must not be dropped.
const MERGED: &str = "\
all:
  vars:
    common: &common
      nginx_binary: /opt/nginx/sbin/nginx
      nginx_pid_file: opt/nginx/logs/nginx.pid
  hosts:
    lab-01: {<<: *common, ansible_host: 127.0.0.1}
    lab-02:
      <<: 3
";

#[test]
fn merge_keys_are_resolved_and_checked_with_positions() {
    let out = Test::new()
        .file("inv.yaml", MERGED)
        .file(
            "spec.yaml",
            "timeouts: &t {connect: 5s}\ngates:\n  - tcp: {<<: *t, port: 80}\n",
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: found 3 problems in the input:\n\
inv.yaml:5:23: all.hosts.lab-01.nginx_pid_file: expected an absolute path, found \"opt/nginx/logs/nginx.pid\"\n\
inv.yaml:9:11: all.hosts.lab-02[\"<<\"]: a merge key (`<<`) takes a mapping, an alias of a mapping, or a list of those; found 3\n\
spec.yaml:1:15: gates[0].tcp.connect: unknown key `connect` (expected one of: port, host, via, timeout, retries, interval)\n"
    );
}

#[test]
fn hostile_host_names_are_refused() {
    let out = Test::new()
        .file(
            "inv.yaml",
            "all:\n  hosts:\n    web-01:\n    web-03;touch${IFS}/tmp/x:\n    \"db-$(id)\":\n      ansible_host: 10.0.0.3\n    db-2:\n      ansible_host: \"10.0.0.2 ; reboot\"\n",
        )
        .args(["validate", "-i", "inv.yaml"])
        .code(2)
        .run();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0], "error: found 3 problems in the input:",
        "{}",
        out.stderr
    );
    assert!(
        lines[1].starts_with(
            "inv.yaml:4:5: all.hosts[\"web-03;touch${IFS}/tmp/x\"]: host name \"web-03;touch${IFS}/tmp/x\" has the character ';'"
        ),
        "{}",
        out.stderr
    );
    assert!(
        lines[2].starts_with(
            "inv.yaml:5:5: all.hosts[\"db-$(id)\"]: host name \"db-$(id)\" has the character '$'"
        ),
        "{}",
        out.stderr
    );
    assert!(
        lines[3].starts_with(
            "inv.yaml:8:21: all.hosts.db-2.ansible_host: host name \"10.0.0.2 ; reboot\" has whitespace"
        ),
        "{}",
        out.stderr
    );
}
