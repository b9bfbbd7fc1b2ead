//! `ngfleet status` against real lab hosts: host keys, authentication, reachability, jump
//! hosts and hostile inventory values.

use std::fs;

use crate::harness::Test;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn host<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// Whether every host of a `status --json` output is steady.
fn all_steady(v: &serde_json::Value) -> bool {
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .all(|h| h["state"] == "steady")
}

/// The `error` of the only host in a `status --json` output.
fn only_error(out: &str) -> String {
    json(out)["hosts"][0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {out}"))
        .to_owned()
}

#[test]
fn reports_every_host_of_a_fleet() {
    let lab = lab!(3);
    let out = Test::new()
        .args(["status", "-i", &lab.inventory(), "--json"])
        .run();
    let v = json(&out.stdout);
    assert_eq!(v["hosts"].as_array().map(Vec::len), Some(3));
    let sha = ngfleet::inputs::sha256_file(&lab.dir.join("versions/nginx-old")).expect("sha");
    for h in &lab.hosts {
        let got = host(&v, &h.name);
        assert_eq!(got["state"], "steady", "{got}");
        assert_eq!(got["master_pid"], h.master_pid().expect("pid"), "{got}");
        assert_eq!(got["workers"], 1, "{got}");
        assert_eq!(got["exe_sha256"], sha.as_str(), "{got}");
        assert_eq!(
            got["version"],
            format!("nginx/{}", lab.version("nginx-old")).as_str(),
            "{got}"
        );
        assert_eq!(got["binary_absolute"], true, "{got}");
        assert_eq!(got["disk_differs"], false, "{got}");
        assert!(got["error"].is_null(), "{got}");
    }
    let text = Test::new().args(["status", "-i", &lab.inventory()]).run();
    assert!(
        text.stdout.ends_with("3 hosts: 3 steady\n"),
        "{}",
        text.stdout
    );
}

#[test]
fn an_upgrade_in_progress_is_not_steady() {
    let lab = lab!(2);
    let h = lab.host("lab-02");
    let bin = h.dir.join("sbin/nginx");
    let tmp = h.dir.join("sbin/.nginx.new");
    fs::copy(lab.dir.join("versions/nginx-new"), &tmp).expect("copy");
    fs::rename(&tmp, &bin).expect("rename");
    let old = h.master_pid().expect("a master before the upgrade");
    std::process::Command::new("kill")
        .args(["-USR2", &old.to_string()])
        .status()
        .expect("kill");
    let oldbin = h.dir.join("nginx/logs/nginx.pid.oldbin");
    for _ in 0..100 {
        if oldbin.exists() && h.master_pid().is_some_and(|p| p != old) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Let the new master start its worker.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = Test::new()
        .args(["status", "-i", &lab.inventory(), "--json"])
        .code(1)
        .run();
    let v = json(&out.stdout);
    assert_eq!(host(&v, "lab-01")["state"], "steady");
    let got = host(&v, "lab-02");
    assert_eq!(got["state"], "upgrading", "{got}");
    assert_eq!(got["old_master_pid"], old, "{got}");
    assert_eq!(
        got["version"],
        format!("nginx/{}", lab.version("nginx-new")),
        "{got}"
    );
}

#[test]
fn unknown_keys_are_refused_unless_accept_new_records_them() {
    let lab = lab!(2);
    let t = Test::new().file("known_hosts", "");
    let kh = t.path("known_hosts").display().to_string();
    let out = t
        .args([
            "status",
            "-i",
            &lab.inventory(),
            "--known-hosts",
            &kh,
            "--json",
        ])
        .code(1)
        .run();
    let v = json(&out.stdout);
    for h in &lab.hosts {
        let got = host(&v, &h.name);
        assert_eq!(got["state"], "unreachable");
        let err = got["error"].as_str().expect("error");
        assert!(err.contains("unknown host key"), "{err}");
        assert!(err.contains("--accept-new"), "{err}");
    }
    let t = Test::new().file("known_hosts", "");
    let kh = t.path("known_hosts").display().to_string();
    let inventory = lab.inventory();
    let out = t
        .args([
            "status",
            "-i",
            &inventory,
            "--known-hosts",
            &kh,
            "--accept-new",
        ])
        .run();
    let recorded = fs::read_to_string(out.path("known_hosts")).expect("known_hosts");
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    // The recorded keys are now trusted without --accept-new.
    let again = Test::new().file("known_hosts", &recorded);
    let kh2 = again.path("known_hosts").display().to_string();
    let out = again
        .args(["status", "-i", &inventory, "--known-hosts", &kh2, "--json"])
        .run();
    assert!(all_steady(out.json()), "{}", out.stdout);
}

#[test]
fn a_changed_key_is_refused_naming_file_and_line() {
    let lab = lab!(3);
    lab.run(&["rekey", "lab-02"]);
    let out = Test::new()
        .args(["status", "-i", &lab.inventory(), "--json", "--accept-new"])
        .code(1)
        .run();
    let v = json(&out.stdout);
    assert_eq!(host(&v, "lab-01")["state"], "steady");
    assert_eq!(host(&v, "lab-03")["state"], "steady");
    let err = host(&v, "lab-02")["error"]
        .as_str()
        .expect("error")
        .to_owned();
    let known_hosts = lab.path("known_hosts");
    assert!(
        err.starts_with("lab-02")
            && err.contains("host key changed")
            && err.contains(&format!("{known_hosts}:2")),
        "{err}"
    );
}

#[test]
fn wrong_user_or_key_is_refused_clearly() {
    let lab = lab!(1);
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let wrong_user = inventory.replace("ansible_user: root", "ansible_user: ngfleet-no-such-user");
    assert_ne!(
        wrong_user, inventory,
        "the lab inventory sets ansible_user: root"
    );
    let out = Test::new()
        .file("inv.yaml", &wrong_user)
        .args(["status", "-i", "inv.yaml", "--json"])
        .code(1)
        .run();
    let err = only_error(&out.stdout);
    assert!(
        err.contains("permission denied (publickey) for user ngfleet-no-such-user"),
        "{err}"
    );

    let t = Test::new();
    let key = t.path("other_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let wrong_key = inventory.replace(&lab.path("client_key"), &key.display().to_string());
    let out = t
        .file("inv.yaml", &wrong_key)
        .args(["status", "-i", "inv.yaml", "--json"])
        .code(1)
        .run();
    let err = only_error(&out.stdout);
    assert!(
        err.contains("permission denied (publickey) for user root"),
        "{err}"
    );
}

#[test]
fn a_stopped_sshd_is_unreachable_while_others_report() {
    let lab = lab!(3);
    lab.run(&["sshd-stop", "lab-02"]);
    let out = Test::new()
        .args(["status", "-i", &lab.inventory(), "--json"])
        .code(1)
        .run();
    let v = json(&out.stdout);
    assert_eq!(host(&v, "lab-01")["state"], "steady");
    assert_eq!(host(&v, "lab-03")["state"], "steady");
    let got = host(&v, "lab-02");
    assert_eq!(got["state"], "unreachable");
    let h = lab.host("lab-02");
    let expected = format!(
        "lab-02 ({}:{}): failed to connect: connection refused",
        h.address, h.ssh_port
    );
    assert_eq!(got["error"], expected.as_str());
}

#[test]
fn a_host_is_reached_through_a_bastion() {
    let lab = lab!(2);
    let bastion = lab.host("lab-01");
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let through = inventory.replace(
        "    lab-02:\n",
        &format!(
            "    lab-02:\n          ngfleet_jump: root@{}:{}\n",
            bastion.address, bastion.ssh_port
        ),
    );
    assert_ne!(through, inventory);
    let out = Test::new()
        .file("inv.yaml", &through)
        .args(["status", "-i", "inv.yaml", "--json", "--limit", "lab-02"])
        .run();
    let v = json(&out.stdout);
    assert_eq!(host(&v, "lab-02")["state"], "steady", "{v}");

    // The bastion's key is checked under its own name: without it, the jump fails.
    let kh = fs::read_to_string(lab.path("known_hosts")).expect("known_hosts");
    let without_bastion: String = kh
        .lines()
        .filter(|l| !l.starts_with(&bastion.address))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without_bastion, kh);
    let t = Test::new()
        .file("kh", &without_bastion)
        .file("inv.yaml", &through);
    let khp = t.path("kh").display().to_string();
    let out = t
        .args([
            "status",
            "-i",
            "inv.yaml",
            "--json",
            "--limit",
            "lab-02",
            "--known-hosts",
            &khp,
        ])
        .code(1)
        .run();
    let err = only_error(&out.stdout);
    assert!(
        err.contains("unknown host key") && err.contains(&bastion.address),
        "{err}"
    );
}

#[test]
fn a_hostile_path_never_runs_as_a_command() {
    let lab = lab!(1);
    let t = Test::new();
    let marker = t.path("pwned");
    let m = marker.display().to_string();
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let hostile = inventory
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("nginx_pid_file:") {
                format!("          nginx_pid_file: \"/tmp/x; touch {m}; $(touch {m}) `touch {m}`\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let out = t
        .file("inv.yaml", &hostile)
        .args(["status", "-i", "inv.yaml", "--json"])
        .code(1)
        .run();
    let v = json(&out.stdout);
    assert_eq!(v["hosts"][0]["state"], "no-master", "{v}");
    assert!(!marker.exists(), "a path in the inventory ran as a command");
}

#[test]
fn the_inventory_can_ask_for_accept_new_per_host() {
    let lab = lab!(1);
    let t = Test::new().file("kh", "");
    let kh = t.path("kh").display().to_string();
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let own = inventory
        .lines()
        .filter(|l| !l.contains("ngfleet_known_hosts"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "  vars:\n",
            &format!("  vars:\n    ansible_ssh_common_args: '-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=accept-new'\n"),
        );
    let out = t
        .file("inv.yaml", &own)
        .args(["status", "-i", "inv.yaml"])
        .run();
    let recorded = fs::read_to_string(out.path("kh")).expect("kh");
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
}

#[test]
fn become_runs_the_probe_through_sudo() {
    let lab = lab!(1);
    // A `sudo` ahead of the real one on the host's PATH records that it was used.
    let marker = lab.host("lab-01").dir.join("sudo-was-used");
    lab.shadow_command(
        "lab-01",
        "sudo",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec /usr/bin/sudo \"$@\"\n",
            marker.display()
        ),
    );

    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    Test::new()
        .file("inv.yaml", &inventory)
        .args(["status", "-i", "inv.yaml"])
        .run();
    assert!(
        !marker.exists(),
        "root without ansible_become does not use sudo"
    );

    let with_become = inventory.replace("  vars:\n", "  vars:\n    ansible_become: true\n");
    assert_ne!(with_become, inventory);
    let out = Test::new()
        .file("inv.yaml", &with_become)
        .args(["status", "-i", "inv.yaml", "--json"])
        .run();
    assert_eq!(
        json(&out.stdout)["hosts"][0]["state"],
        "steady",
        "{}",
        out.stdout
    );
    let used = fs::read_to_string(&marker).expect("sudo was used");
    assert!(used.starts_with("-n -- "), "{used}");
}

#[test]
fn encrypted_and_rsa_keys_work() {
    let lab = lab!(2);
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let key = lab.path("client_key");
    let encrypted = inventory.replace(&key, &lab.path("client_key_enc"));
    assert_ne!(encrypted, inventory);
    let out = Test::new()
        .file("inv.yaml", &encrypted)
        .env("NGFLEET_KEY_PASSPHRASE", "labpass")
        .args(["status", "-i", "inv.yaml", "--json"])
        .run();
    let v = json(&out.stdout);
    assert!(all_steady(&v), "{v}");
    // Without the passphrase and without a terminal: a clear error, no hang.
    let out = Test::new()
        .file("inv.yaml", &encrypted)
        .args(["status", "-i", "inv.yaml", "--json"])
        .code(1)
        .run();
    let err = only_error(&out.stdout);
    assert!(err.contains("passphrase"), "{err}");
    let rsa = inventory.replace(&key, &lab.path("client_key_rsa"));
    let out = Test::new()
        .file("inv.yaml", &rsa)
        .args(["status", "-i", "inv.yaml", "--json"])
        .run();
    let v = json(&out.stdout);
    assert!(all_steady(&v), "{v}");
}
