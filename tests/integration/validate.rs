//! `ngfleet validate`: every problem at once, exit 2; valid inputs exit 0.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Test;

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
prod.yaml:6:25: all.children.web.hosts.web-03.ansible_port: expected a port number from 1 to 65535, found \"ssh\"\n\
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
            .contains("failed to use binary dir: it is not a regular file (a directory)"),
        "{}",
        out.stderr
    );

    let sha = "0".repeat(64);
    // An ELF header (ngfleet's own) and nothing more.
    let mut elf = fs::read(env!("CARGO_BIN_EXE_ngfleet")).expect("read");
    elf.truncate(64);
    let t = Test::new()
        .file("inv.yaml", inv)
        .bytes("bin/nginx", &elf)
        .file(
            "spec.yaml",
            &format!("binary: {{source: bin/nginx, sha256: \"{sha}\"}}\n"),
        );
    let found = ngfleet::inputs::sha256_file(&t.path("bin/nginx")).expect("sha");
    let out = t
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        format!(
            "error: spec.yaml: failed to use binary bin/nginx: sha256 is {found}, the spec expects {sha}\n"
        )
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

/// An inventory or spec that is not a small regular file is refused at once, before it is
/// read: a device, a FIFO (opening it would wait for a writer), also inside an inventory
/// directory, a huge file.
#[test]
fn inputs_that_are_not_small_regular_files_fail_at_once() {
    let limit = Duration::from_secs(5);
    let out = Test::new()
        .args(["validate", "-i", "/dev/zero"])
        .code(2)
        .within(limit)
        .run();
    assert_eq!(
        out.stderr,
        "error: failed to read /dev/zero: not a regular file (a character device)\n"
    );

    let t = Test::new().file("inv.yaml", "all:\n  hosts:\n    a:\n");
    let made = Command::new("mkfifo").arg(t.path("fifo.yaml")).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let out = t
        .args(["validate", "-i", "inv.yaml", "-p", "fifo.yaml"])
        .code(2)
        .within(limit)
        .run();
    assert_eq!(
        out.stderr,
        "error: failed to read fifo.yaml: not a regular file (a FIFO)\n"
    );

    // An inventory directory is read file by file, each under the same rules.
    let t = Test::new();
    fs::create_dir(t.path("inventory")).expect("mkdir");
    let made = Command::new("mkfifo")
        .arg(t.path("inventory/hosts"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let out = t
        .args(["validate", "-i", "inventory"])
        .code(2)
        .within(limit)
        .run();
    assert_eq!(
        out.stderr,
        "error: failed to read inventory/hosts: not a regular file (a FIFO)\n"
    );

    // 64 MiB and one byte, sparse: refused by its size, never read.
    let t = Test::new();
    let big = fs::File::create(t.path("big.yaml")).expect("create");
    big.set_len(64 * 1024 * 1024 + 1).expect("truncate");
    let out = t
        .args(["validate", "-i", "big.yaml"])
        .code(2)
        .within(limit)
        .run();
    assert_eq!(
        out.stderr,
        "error: failed to read big.yaml: it is 64.1 MiB, over the limit of 64 MiB\n"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_placed() {
    let out = Test::new()
        .bytes("inv.yaml", b"all:\n  hosts:\n    web-\xe9t\xe9:\n")
        .file("spec.yaml", "paralel: 3\n")
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: found 2 problems in the input:\n\
inv.yaml:3:9: not UTF-8 text: byte 0xe9 is not valid here\n\
spec.yaml:1:1: paralel: unknown key `paralel` (did you mean `parallel`?)\n"
    );
}

/// The ELF machine `validate` names for binaries of this machine.
fn this_machine() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        "aarch64" => "AArch64",
        other => panic!("add the ELF machine name of {other}"),
    }
}

#[test]
fn the_binary_is_judged_by_its_elf_header() {
    // ngfleet itself is an ELF executable for this machine.
    let exe = env!("CARGO_BIN_EXE_ngfleet");
    let sha = ngfleet::inputs::sha256_file(std::path::Path::new(exe)).expect("sha");
    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    a:\n")
        .args(["validate", "-i", "inv.yaml", "--binary", exe])
        .run();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("binary: "))
        .unwrap_or_else(|| panic!("no binary line: {}", out.stdout));
    assert!(
        line.starts_with(&format!("binary: {exe} (ELF 64-bit, {}, ", this_machine()))
            && line.ends_with(&format!(" MiB, sha256:{sha})")),
        "{line}"
    );

    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    a:\n")
        .file("nginx", "#!/bin/sh\nexec /usr/sbin/nginx \"$@\"\n")
        .file("spec.yaml", "binary: {source: nginx}\n")
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: spec.yaml: failed to use binary nginx: it is not an ELF executable (it starts with \"#!/bin/sh\")\n"
    );
}

/// A 2 GiB sparse file with an ELF header is refused by its size, without being read (or
/// uploaded anywhere).
#[test]
fn a_huge_binary_is_refused_without_reading_it() {
    let t = Test::new().file("inv.yaml", "all:\n  hosts:\n    a:\n");
    let mut header = fs::read(env!("CARGO_BIN_EXE_ngfleet")).expect("read");
    header.truncate(64);
    fs::write(t.path("nginx"), &header).expect("write");
    let made = Command::new("truncate")
        .args(["-s", "2G"])
        .arg(t.path("nginx"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "truncate");
    let started = Instant::now();
    let out = t
        .args(["validate", "-i", "inv.yaml", "--binary", "nginx"])
        .code(2)
        .within(Duration::from_secs(5))
        .run();
    assert_eq!(
        out.stderr,
        "error: failed to use binary nginx: it is 2 GiB, over the limit of 512 MiB for a binary\n"
    );
    // Hashing 2 GiB takes seconds; a refusal by size takes milliseconds.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn every_problem_of_a_window_and_numbers_out_of_range() {
    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    a:\n      ansible_port: 70000\n")
        .file(
            "spec.yaml",
            "parallel: -1\nwindows:\n  - {days: [sat, funday], start: \"25:00\", duration: 0s, tz: Mars/X}\n",
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: found 6 problems in the input:\n\
inv.yaml:4:21: all.hosts.a.ansible_port: expected a port number from 1 to 65535, found 70000\n\
spec.yaml:1:11: parallel: expected a number of hosts from 1 to 100000, found -1\n\
spec.yaml:3:18: windows[0].days[1]: unknown day \"funday\"; did you mean \"sunday\"?\n\
spec.yaml:3:34: windows[0].start: start time \"25:00\" is not a 24-hour HH:MM time\n\
spec.yaml:3:53: windows[0].duration: window duration must be more than zero\n\
spec.yaml:3:61: windows[0].tz: unknown time zone \"Mars/X\"\n"
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

#[test]
fn problems_in_group_vars_and_host_vars_are_listed_where_they_are_written() {
    let out = Test::new()
        .file("inv/hosts", "[web]\nweb-01\nweb-02\n")
        .file(
            "inv/group_vars/web/10.yml",
            "tier: front\nnginx_pid_file: run/nginx.pid\n",
        )
        .file("inv/group_vars/all.yml", "a: [unclosed\n")
        .file("inv/host_vars/web-02.yml", "ansible_port: ssh\n")
        .file("inv/host_vars/ghost.yml", "ansible_port: [never read\n")
        .args(["validate", "-i", "inv/hosts"])
        .code(2)
        .run();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0], "error: found 3 problems in the input:",
        "{}",
        out.stderr
    );
    assert!(
        lines.contains(&"inv/group_vars/web/10.yml:2:17: nginx_pid_file: expected an absolute path, found \"run/nginx.pid\""),
        "{}",
        out.stderr
    );
    assert!(
        lines.contains(&"inv/host_vars/web-02.yml:1:15: ansible_port: expected a port number from 1 to 65535, found \"ssh\""),
        "{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("inv/group_vars/all.yml:2:1: ")),
        "{}",
        out.stderr
    );
}

#[test]
fn variables_from_vars_files_reach_validate_and_plan() {
    let test = || {
        Test::new()
            .file("inv/a.ini", "[web]\nweb-01\nweb-02\n[db]\ndb-01\n")
            .file("inv/group_vars/web.yml", "ansible_port: 2222\n")
            .file(
                "inv/host_vars/web-02",
                "ansible_port: 2200\nansible_user: deploy\n",
            )
            .file("spec.yaml", "hosts: web\ncanary: {hosts: 1}\n")
    };
    let out = test()
        .args(["validate", "-i", "inv", "-p", "spec.yaml"])
        .run();
    assert!(out.stdout.contains(": valid"), "{}", out.stdout);
    let out = test()
        .args(["plan", "-i", "inv", "-p", "spec.yaml", "--json"])
        .run();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(plan["hosts"], 2);
    let out = test()
        .args(["inventory", "-i", "inv", "--host", "web-02"])
        .run();
    let vars: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        vars,
        serde_json::json!({"ansible_port": 2200, "ansible_user": "deploy"})
    );
}
