//! Host key trust against real lab hosts: accept-new is refused, before anything connects,
//! for a known_hosts that cannot remember a key; every key it records is shown with its
//! SHA256 fingerprint (stderr, and the journal / `--json` of `roll` and `rollback`); a key
//! that changed afterwards (a real re-keyed sshd) is refused.

use std::fs;
use std::process::Command;

use crate::harness::Test;
use crate::lab::{Lab, LabHost};

/// Every lab host's sshd log, in host order.
fn sshd_logs(lab: &Lab) -> Vec<String> {
    lab.hosts
        .iter()
        .map(|h| fs::read_to_string(h.dir.join("ssh/sshd.log")).expect("sshd.log"))
        .collect()
}

/// The SHA256 fingerprint `ssh-keygen -lf` prints for the host's current key.
fn fingerprint(host: &LabHost) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(host.dir.join("ssh/ssh_host_ed25519_key.pub"))
        .output()
        .expect("ssh-keygen -lf");
    assert!(out.status.success(), "ssh-keygen -lf {}", host.name);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let fp = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(fp.starts_with("SHA256:"), "{text}");
    fp
}

/// The lab's inventory without its own known_hosts, with `common` as the fleet's
/// `ansible_ssh_common_args`.
fn inventory_with_common_args(lab: &Lab, common: &str) -> String {
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let own: String = inventory
        .lines()
        .filter(|l| !l.contains("ngfleet_known_hosts"))
        .map(|l| format!("{l}\n"))
        .collect();
    let with = own.replace(
        "  vars:\n",
        &format!("  vars:\n    ansible_ssh_common_args: '{common}'\n"),
    );
    assert_ne!(with, own, "the lab inventory has fleet vars");
    with
}

/// The error of every host of a `status --json` output, by name.
fn errors(stdout: &str) -> Vec<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_owned(),
                h["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `status`, `roll`, `rollback` and `unlock` with `--known-hosts /dev/null --accept-new` are
/// input errors (exit 2) that name the file, its source and the hosts, and say how to do it
/// safely; no sshd saw a connection and no journal was written. Without accept-new,
/// /dev/null means every key is unknown, and refused.
#[test]
fn accept_new_into_dev_null_is_refused_before_connecting() {
    let lab = lab!(2);
    let inventory = lab.inventory();
    let binary = lab.dir.join("versions/nginx-new").display().to_string();
    let before = sshd_logs(&lab);
    let commands: [&[&str]; 4] = [
        &["status"],
        &[
            "roll",
            "--binary",
            &binary,
            "--yes",
            "--journal",
            "run.jsonl",
        ],
        &[
            "rollback",
            "--yes",
            "--binary",
            &binary,
            "--journal",
            "run.jsonl",
        ],
        &["unlock", "--yes"],
    ];
    for command in commands {
        let started = std::time::Instant::now();
        let out = Test::new()
            .args(command.iter().copied())
            .args([
                "-i",
                &inventory,
                "--known-hosts",
                "/dev/null",
                "--accept-new",
            ])
            .code(2)
            .run();
        let took = started.elapsed();
        assert!(
            out.stderr.contains(
                "/dev/null (from --known-hosts) is a character device, not a file: lab-01, lab-02 (accept-new from --accept-new)"
            ),
            "{command:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .starts_with("error: failed to trust new host keys safely")
                && out.stderr.contains("ssh-keyscan")
                && out.stderr.contains("ssh-keygen -lf"),
            "{command:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{command:?}: {}", out.stdout);
        // Neither the one asked for nor one at the default place.
        assert_eq!(
            out.journal_path,
            None,
            "{command:?} wrote a journal\n{}",
            out.show()
        );
        assert!(took.as_secs() < 5, "{command:?} took {took:?}");
    }
    assert_eq!(sshd_logs(&lab), before, "an sshd saw a connection");

    // Without accept-new, /dev/null lists no key: every host's key is unknown and refused.
    let out = Test::new()
        .args([
            "status",
            "-i",
            &inventory,
            "--known-hosts",
            "/dev/null",
            "--json",
        ])
        .code(1)
        .run();
    let errors = errors(&out.stdout);
    assert_eq!(errors.len(), 2, "{}", out.stdout);
    for (name, error) in errors {
        assert!(
            error.contains("unknown host key") && error.contains("not in /dev/null"),
            "{name}: {error}"
        );
    }
    // That run reached the hosts, so the logs above would have shown a connection.
    assert_ne!(sshd_logs(&lab), before, "the sshd logs show connections");
}

/// The very common Ansible setting `-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null`
/// is refused from the inventory alone, by `validate` too, before anything connects. With
/// `StrictHostKeyChecking=yes` the same file refuses every key.
#[test]
fn strict_host_key_checking_no_into_dev_null_is_refused_before_connecting() {
    let lab = lab!(2);
    let inventory = inventory_with_common_args(
        &lab,
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    );
    let binary = lab.dir.join("versions/nginx-new").display().to_string();
    let before = sshd_logs(&lab);
    let commands: [&[&str]; 3] = [
        &["status"],
        &[
            "roll",
            "--binary",
            &binary,
            "--yes",
            "--journal",
            "run.jsonl",
        ],
        &["validate"],
    ];
    for command in commands {
        let out = Test::new()
            .file("inv.yaml", &inventory)
            .args(command.iter().copied())
            .args(["-i", "inv.yaml"])
            .code(2)
            .run();
        assert!(
            out.stderr.contains(
                "/dev/null (from UserKnownHostsFile in ansible_ssh_common_args) is a character device, not a file: lab-01, lab-02 (accept-new from StrictHostKeyChecking=no in ansible_ssh_common_args, read as accept-new)"
            ),
            "{command:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("failed to trust new host keys safely")
                && out.stderr.contains("ssh-keyscan"),
            "{command:?}: {}",
            out.stderr
        );
        // Neither the one asked for nor one at the default place.
        assert_eq!(
            out.journal_path,
            None,
            "{command:?} wrote a journal\n{}",
            out.show()
        );
    }
    assert_eq!(sshd_logs(&lab), before, "an sshd saw a connection");

    let strict = inventory_with_common_args(
        &lab,
        "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null",
    );
    let out = Test::new()
        .file("inv.yaml", &strict)
        .args(["status", "-i", "inv.yaml", "--json"])
        .code(1)
        .run();
    let errors = errors(&out.stdout);
    assert_eq!(errors.len(), 2, "{}", out.stdout);
    for (name, error) in errors {
        assert!(error.contains("unknown host key"), "{name}: {error}");
    }
}

/// accept-new with a real, empty known_hosts records each key and prints it with the
/// fingerprint `ssh-keygen -lf` gives for the host's key; `StrictHostKeyChecking=no` says once
/// that it is read as accept-new, and `rollback` writes each recorded key to its journal and
/// `--json` stream. After a real re-key, the next `status` and `rollback` refuse the changed
/// key, and nothing new is recorded.
#[test]
fn recorded_keys_are_shown_and_a_changed_key_is_refused() {
    let lab = lab!(2);
    let t = Test::new().file("kh", "");
    let kh = t.path("kh").display().to_string();
    let out = t
        .args([
            "status",
            "-i",
            &lab.inventory(),
            "--known-hosts",
            &kh,
            "--accept-new",
        ])
        .run();
    let recorded = fs::read_to_string(out.path("kh")).expect("kh");
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    for h in &lab.hosts {
        let line = format!(
            "{}: recorded a new host key for {}:{} in {kh}: ssh-ed25519 {}",
            h.name,
            h.address,
            h.ssh_port,
            fingerprint(h)
        );
        let shown = out.stderr.lines().filter(|l| *l == line).count();
        assert_eq!(shown, 1, "{line}\nnot once in:\n{}", out.stderr);
    }
    // Known now: nothing more is recorded or shown.
    let again =
        Test::new()
            .file("kh", &recorded)
            .args(["status", "-i", &lab.inventory(), "--accept-new"]);
    let kh_again = again.path("kh").display().to_string();
    let again = again.args(["--known-hosts", &kh_again]).run();
    assert!(!again.stderr.contains("recorded"), "{}", again.stderr);

    // The inventory's StrictHostKeyChecking=no with a real file: said once, keys shown, and
    // written to rollback's journal and --json (the hosts run another binary: skipped).
    let scratch = Test::new().file("kh2", "");
    let kh2 = scratch.path("kh2").display().to_string();
    let journal = scratch.path("run.jsonl").display().to_string();
    let inventory = inventory_with_common_args(
        &lab,
        &format!("-o StrictHostKeyChecking=no -o UserKnownHostsFile={kh2}"),
    );
    let binary = lab.dir.join("versions/nginx-new").display().to_string();
    let out = scratch
        .file("inv.yaml", &inventory)
        .args([
            "rollback",
            "--yes",
            "-i",
            "inv.yaml",
            "--binary",
            &binary,
            "--json",
            "--journal",
            &journal,
        ])
        .run();
    let note = "note: StrictHostKeyChecking=no in ansible_ssh_common_args (lab-01, lab-02) is read as accept-new";
    assert_eq!(
        out.stderr.matches(note).count(),
        1,
        "the note once:\n{}",
        out.stderr
    );
    assert_eq!(
        out.journal_path.as_deref(),
        Some(std::path::Path::new(&journal)),
        "{}",
        out.show()
    );
    // The hosts run another binary: skipped, and the run succeeds.
    out.expect_result("succeeded");
    assert_eq!(out.hosts("skipped"), ["lab-01", "lab-02"], "{}", out.show());
    for events in [&out.json, &out.journal] {
        let keys: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["event"] == "host_key_recorded")
            .collect();
        assert_eq!(keys.len(), 2, "{events:?}");
        for h in &lab.hosts {
            let event = keys
                .iter()
                .find(|e| e["host"] == h.name.as_str())
                .unwrap_or_else(|| panic!("no key event for {}: {keys:?}", h.name));
            assert_eq!(event["key_type"], "ssh-ed25519", "{event}");
            assert_eq!(event["fingerprint"], fingerprint(h).as_str(), "{event}");
            assert_eq!(event["file"], kh2.as_str(), "{event}");
            assert_eq!(
                event["endpoint"],
                format!("{}:{}", h.address, h.ssh_port).as_str(),
                "{event}"
            );
            assert!(
                out.stderr.contains(&format!(
                    "{}: recorded a new host key for {}:{} in {kh2}: ssh-ed25519 {}",
                    h.name,
                    h.address,
                    h.ssh_port,
                    fingerprint(h)
                )),
                "{}",
                out.stderr
            );
        }
    }
    let recorded2 = fs::read_to_string(out.path("kh2")).expect("kh2");
    assert_eq!(recorded2.lines().count(), 2, "{recorded2}");

    // A real re-key of lab-02's sshd: its key changed, and is refused under accept-new.
    let old = fingerprint(lab.host("lab-02"));
    lab.run(&["rekey", "lab-02"]);
    assert_ne!(fingerprint(lab.host("lab-02")), old, "the key changed");
    let t = Test::new().file("kh", &recorded);
    let kh = t.path("kh").display().to_string();
    let out = t
        .args([
            "status",
            "-i",
            &lab.inventory(),
            "--known-hosts",
            &kh,
            "--accept-new",
            "--json",
        ])
        .code(1)
        .run();
    let errors = errors(&out.stdout);
    let names: Vec<&str> = errors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["lab-01", "lab-02"], "{}", out.stdout);
    for (name, error) in errors {
        match name.as_str() {
            "lab-02" => assert!(
                error.starts_with("lab-02")
                    && error.contains("host key changed")
                    && error.contains(&format!("{kh}:")),
                "{error}"
            ),
            _ => assert!(error.is_empty(), "{name}: {error}"),
        }
    }
    assert!(!out.stderr.contains("recorded"), "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(out.path("kh")).expect("kh"),
        recorded,
        "the file is unchanged"
    );

    // rollback under the inventory's StrictHostKeyChecking=no does not proceed on lab-02.
    let scratch = Test::new().file("kh2", &recorded2);
    let journal = scratch.path("run2.jsonl").display().to_string();
    let kh2_again = scratch.path("kh2").display().to_string();
    let inventory2 = inventory.replace(&kh2, &kh2_again);
    let out = scratch
        .file("inv.yaml", &inventory2)
        .args([
            "rollback",
            "--yes",
            "-i",
            "inv.yaml",
            "--binary",
            &binary,
            "--json",
            "--journal",
            &journal,
        ])
        .code(1)
        .run();
    let finished: Vec<&serde_json::Value> = out
        .json_events("host_finished")
        .into_iter()
        .filter(|e| e["host"] == "lab-02")
        .collect();
    assert_eq!(out.result_of("lab-02"), "failed", "{}", out.show());
    out.expect_result("failed");
    assert_eq!(finished.len(), 1, "{}", out.stdout);
    assert_eq!(finished[0]["result"], "failed", "{}", finished[0]);
    let error = finished[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("host key changed"), "{error}");
    assert!(!out.stdout.contains("host_key_recorded"), "{}", out.stdout);
    assert_eq!(
        fs::read_to_string(out.path("kh2")).expect("kh2"),
        recorded2,
        "the file is unchanged"
    );
}
