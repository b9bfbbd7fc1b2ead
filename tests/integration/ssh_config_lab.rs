//! ssh_config on real sshd: an inventory that lists only names, an ssh_config that gives
//! every host its address (`HostName`), port, user, key and known_hosts, and a two-hop
//! `ProxyJump` through two lab hosts. The hops are proven used, not just tolerated: each
//! host's sshd accepts logins only from the hop before it (`AllowUsers user@address`), the
//! sshd logs show each login coming from that hop's address, and each bastion sees one
//! login per run however many hosts are behind it.

use std::fs;

use serde_json::Value;

use crate::harness::Test;
use crate::lab::{Lab, LabHost};

/// The lab's login user (root in network namespaces).
fn lab_user(lab: &Lab) -> String {
    let inventory = fs::read_to_string(lab.inventory()).expect("lab inventory");
    inventory
        .lines()
        .find_map(|l| l.trim().strip_prefix("ansible_user: "))
        .expect("ansible_user in the lab inventory")
        .to_owned()
}

/// Lets `host`'s sshd accept `user` only from `from`'s address, and restarts it.
fn only_from(lab: &Lab, host: &LabHost, user: &str, from: &LabHost) {
    let config = host.dir.join("ssh/sshd_config");
    let mut text = fs::read_to_string(&config).expect("sshd_config");
    text += &format!("AllowUsers {user}@{}\n", from.address);
    fs::write(&config, text).expect("write sshd_config");
    lab.run(&["sshd-stop", &host.name]);
    lab.run(&["sshd-start", &host.name]);
}

/// `Accepted publickey` lines of `host`'s sshd log, and their client addresses.
fn logins(host: &LabHost) -> Vec<String> {
    let log = fs::read_to_string(host.dir.join("ssh/sshd.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| {
            l.split_once("Accepted publickey for ")
                .map(|(_, rest)| rest)
        })
        .filter_map(|rest| rest.split(" from ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

const SPEC: &str = "\
hosts: web
canary: {hosts: 1, then: continue}
batches: [1]
parallel: 2
timeouts: {connect: 10s, command: 20s, start: 5s, drain: 10s, quit: 5s}
";

#[test]
fn names_only_with_ssh_config_and_two_hops_give_status_and_roll() {
    let lab = lab!(4);
    let user = lab_user(&lab);
    let (hop1, hop2) = (lab.host("lab-01"), lab.host("lab-02"));
    let (a, b) = (lab.host("lab-03"), lab.host("lab-04"));
    only_from(&lab, hop2, &user, hop1);
    only_from(&lab, a, &user, hop2);
    only_from(&lab, b, &user, hop2);

    // The restriction holds: the lab's own inventory (direct connections) cannot log in.
    let direct = Test::new()
        .lab(&lab)
        .args(["status", "--json", "--limit", "lab-03"])
        .code(1)
        .run();
    let state = direct.json()["hosts"][0]["state"].clone();
    assert_eq!(state, "unreachable", "{}", direct.show());

    let lab_dir = lab.dir.display().to_string();
    // web-a names its two hops; web-b names the second, whose own Host block adds the first.
    let config = format!(
        "# written by the ssh_config lab test\n\
         Host web-a\n  HostName {a_addr}\n  Port {a_port}\n  ProxyJump hop1,hop2\n\
         Host web-b\n  HostName {b_addr}\n  Port {b_port}\n  ProxyJump hop2\n\
         Host hop1\n  HostName {h1_addr}\n  Port {h1_port}\n\
         Host hop2\n  HostName {h2_addr}\n  Port {h2_port}\n  ProxyJump hop1\n\
         Host *\n  User {user}\n  IdentityFile {lab_dir}/client_key\n  IdentitiesOnly yes\n\
         \x20 UserKnownHostsFile {lab_dir}/known_hosts\n  StrictHostKeyChecking yes\n\
         \x20 SendEnv LANG LC_*\n  HashKnownHosts yes\n",
        a_addr = a.address,
        a_port = a.ssh_port,
        b_addr = b.address,
        b_port = b.ssh_port,
        h1_addr = hop1.address,
        h1_port = hop1.ssh_port,
        h2_addr = hop2.address,
        h2_port = hop2.ssh_port,
    );
    let inventory = format!(
        "all:\n  children:\n    web:\n      hosts:\n\
         \x20       web-a:\n          nginx_binary: {}/sbin/nginx\n          nginx_pid_file: {}/nginx/logs/nginx.pid\n\
         \x20       web-b:\n          nginx_binary: {}/sbin/nginx\n          nginx_pid_file: {}/nginx/logs/nginx.pid\n",
        a.dir.display(),
        a.dir.display(),
        b.dir.display(),
        b.dir.display(),
    );
    // `ngfleet --ssh-config ssh_config status --json` on the names-only inventory.
    let status = || -> Value {
        let out = Test::new()
            .file("ssh_config", &config)
            .file("inv.yaml", &inventory)
            .file("spec.yaml", SPEC)
            .args(["--ssh-config", "ssh_config", "status", "--json"])
            .args(["-p", "spec.yaml", "-i", "inv.yaml"])
            .run();
        out.json().clone()
    };

    let before = (logins(hop1).len(), logins(hop2).len());
    // `scripts/lab up` logged into the first and last host itself: count from here.
    let earlier = [logins(a).len(), logins(b).len()];
    let v = status();
    let hosts = v["hosts"].as_array().expect("hosts");
    let names: Vec<&str> = hosts.iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names, ["web-a", "web-b"], "{v}");
    assert!(hosts.iter().all(|h| h["state"] == "steady"), "{v}");
    // Each bastion: one login for both hosts, from the hop before it.
    let after = (logins(hop1), logins(hop2));
    assert_eq!(after.0.len() - before.0, 1, "hop1 logins: {:?}", after.0);
    assert_eq!(after.1.len() - before.1, 1, "hop2 logins: {:?}", after.1);
    assert_eq!(
        after.1.last(),
        Some(&hop1.address),
        "hop2 is reached through hop1"
    );
    for (target, earlier) in [a, b].into_iter().zip(earlier) {
        let seen = logins(target).split_off(earlier);
        assert!(!seen.is_empty(), "{} saw no login", target.name);
        assert!(
            seen.iter().all(|from| *from == hop2.address),
            "{} logins must all come from hop2 ({}): {seen:?}",
            target.name,
            hop2.address
        );
    }

    // roll over the same hops: both hosts upgraded, each bastion logged into once.
    let before = (logins(hop1).len(), logins(hop2).len());
    let new = lab.dir.join("versions/nginx-new");
    let ran = Test::new()
        .lab(&lab)
        .file("ssh_config", &config)
        .file("inv.yaml", &inventory)
        .spec(SPEC)
        .args(["--ssh-config", "ssh_config", "roll", "-i", "inv.yaml"])
        .arg("--binary")
        .arg(&new)
        .journal("run.jsonl")
        .run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("upgraded"), ["web-a", "web-b"]);
    let after = (logins(hop1).len(), logins(hop2).len());
    assert_eq!(after.0 - before.0, 1, "hop1 logins during the roll");
    assert_eq!(after.1 - before.1, 1, "hop2 logins during the roll");
    let want = ngfleet::inputs::sha256_file(&new).expect("sha256");
    let v = status();
    for h in v["hosts"].as_array().expect("hosts") {
        assert_eq!(h["exe_sha256"], want.as_str(), "{v}");
    }

    // The second hop's key is checked under its own name: without its line, no host behind
    // it is reached, and the error names that hop.
    let kh = fs::read_to_string(lab.path("known_hosts")).expect("known_hosts");
    let without_hop2: String = kh
        .lines()
        .filter(|l| !l.starts_with(&format!("{} ", hop2.address)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without_hop2, kh);
    let t = Test::new()
        .file("kh", &without_hop2)
        .file("inv.yaml", &inventory)
        .file("spec.yaml", SPEC);
    let partial = config.replace(
        &format!("{lab_dir}/known_hosts"),
        &t.path("kh").display().to_string(),
    );
    let out = t
        .file("ssh_config", &partial)
        .args(["--ssh-config", "ssh_config", "status", "--json"])
        .args(["-p", "spec.yaml", "-i", "inv.yaml"])
        .code(1)
        .run();
    let hosts = out.json()["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2, "{}", out.show());
    for h in hosts {
        let error = h["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("unknown host key") && error.contains(&format!("{}:", hop2.address)),
            "{}",
            out.show()
        );
    }
}

#[test]
fn a_bad_ssh_config_is_refused_before_connecting_with_file_and_line() {
    let out = Test::new()
        .file(
            "ssh_config",
            "Host *\n  Port 22\n  Port ssh\n  ProxyJump a;b\n",
        )
        .file("inv.yaml", "all:\n  hosts:\n    web-a:\n")
        .file("spec.yaml", "hosts: all\n")
        .args([
            "--ssh-config",
            "ssh_config",
            "status",
            "-p",
            "spec.yaml",
            "-i",
            "inv.yaml",
        ])
        .code(2)
        .run();
    assert!(
        out.stderr
            .contains("ssh_config:3:1: Port: expected a port number")
            && out
                .stderr
                .contains("ssh_config:4:1: ProxyJump: expected a jump host"),
        "{}",
        out.show()
    );
    // A missing --ssh-config file is an input error too; a warning names file and line.
    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    web-a:\n")
        .file("spec.yaml", "hosts: all\n")
        .args([
            "--ssh-config",
            "nope",
            "validate",
            "-p",
            "spec.yaml",
            "-i",
            "inv.yaml",
        ])
        .code(2)
        .run();
    assert!(
        out.stderr
            .contains("nope: failed to read the ssh_config file"),
        "{}",
        out.show()
    );
    let out = Test::new()
        .file("ssh_config", "Host web-*\n  ProxyCommand nc %h %p\n  Ciphers aes128-ctr\nMatch exec true\n  Port 1\n")
        .file("inv.yaml", "all:\n  hosts:\n    web-a:\n")
        .file("spec.yaml", "hosts: all\n")
        .args(["--ssh-config", "ssh_config", "validate", "-p", "spec.yaml", "-i", "inv.yaml"])
        .run();
    for line in [
        "warning: ssh_config:2: ProxyCommand is not supported by ngfleet",
        "warning: ssh_config:3: Ciphers is not supported by ngfleet",
        "warning: ssh_config:4: Match exec is not supported by ngfleet",
    ] {
        assert!(out.stderr.contains(line), "{line}\n{}", out.show());
    }
}
