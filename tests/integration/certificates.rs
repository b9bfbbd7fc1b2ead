//! Certificates against the lab's real sshd and its CA (`scripts/lab`: `ca/host_ca` signs
//! every host key, `ca/user_ca` is every sshd's `TrustedUserCAKeys`): host certificates
//! trusted through `@cert-authority` alone, refused with the reason when expired, for another
//! name or from an unknown CA (and OpenSSH's own client agrees on each), and user
//! certificates (beside the key, from `ngfleet_ssh_certificate`, from the ssh-agent) accepted
//! by sshd for a key that is not in `authorized_keys`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Test;
use crate::lab::{Lab, LabHost};

/// `ssh-keygen -s CA -I test ARGS` over `host`'s key: its certificate beside it (sshd reads
/// it again for each connection).
fn sign_host(ca: &Path, host: &LabHost, args: &[&str]) {
    let signed = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(ca)
        .args(["-I", "test", "-h"])
        .args(args)
        .arg(host.dir.join("ssh/ssh_host_ed25519_key.pub"))
        .status();
    assert!(signed.is_ok_and(|s| s.success()), "ssh-keygen -s {args:?}");
}

/// A known_hosts file with only the lab's `@cert-authority` line: no host's plain key.
fn ca_only_known_hosts(lab: &Lab, test: &Test<'_>) -> PathBuf {
    let text = fs::read_to_string(lab.dir.join("known_hosts_ca")).expect("known_hosts_ca");
    assert!(text.starts_with("@cert-authority "), "{text}");
    assert_eq!(text.lines().count(), 1);
    let path = test.path("known_hosts");
    fs::write(&path, &text).expect("write known_hosts");
    path
}

/// `status --json` rows by host: (state, error).
fn rows(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_owned(),
                h["state"].as_str().unwrap_or_default().to_owned(),
                h["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// OpenSSH's client with `known_hosts` (strict): whether it gets in.
fn openssh_accepts(lab: &Lab, host: &LabHost, known_hosts: &Path) -> bool {
    Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(lab.dir.join("client_key"))
        .args(["-p", &host.ssh_port.to_string()])
        .arg(format!("root@{}", host.address))
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
}

/// With only `@cert-authority` in known_hosts, the lab's host certificates are accepted:
/// `status` and a `roll` reach every host, and nothing is written to known_hosts.
#[test]
fn host_certificates_are_trusted_through_cert_authority_alone() {
    let lab = lab!(2);
    let test = Test::new().lab(&lab);
    let known_hosts = ca_only_known_hosts(&lab, &test);
    let before = fs::read_to_string(&known_hosts).expect("read");
    for host in &lab.hosts {
        assert!(openssh_accepts(&lab, host, &known_hosts), "OpenSSH agrees");
    }
    let arg = known_hosts.display().to_string();
    let out = test.args(["status", "--json", "--known-hosts", &arg]).run();
    for (name, state, error) in rows(out.json()) {
        assert_eq!((state.as_str(), error.as_str()), ("steady", ""), "{name}");
    }
    let out = crate::harness::rollout(&lab, "hosts: lab\n", "roll")
        .args(["--yes", "--known-hosts", &arg])
        .run();
    assert_eq!(
        out.hosts("upgraded"),
        ["lab-01", "lab-02"],
        "{}",
        out.show()
    );
    assert_eq!(fs::read_to_string(&known_hosts).expect("read"), before);
}

/// An expired certificate, one for another name, and one from a CA known_hosts does not
/// trust are each refused, naming the host and why; OpenSSH refuses each too; accept-new
/// records nothing for them.
#[test]
fn expired_misnamed_and_foreign_host_certificates_are_refused_with_the_reason() {
    let lab = lab!(4);
    let ca = lab.dir.join("ca/host_ca");
    let (expired, misnamed, foreign) = (lab.host("lab-01"), lab.host("lab-02"), lab.host("lab-03"));
    sign_host(
        &ca,
        expired,
        &["-n", &expired.address, "-V", "20200101:20200102"],
    );
    sign_host(&ca, misnamed, &["-n", "lab-02,10.9.9.9", "-V", "-1h:+1h"]);
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = other.path().join("other_ca");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_ca)
        .status();
    assert!(made.is_ok_and(|s| s.success()));
    sign_host(
        &other_ca,
        foreign,
        &["-n", &foreign.address, "-V", "-1h:+1h"],
    );

    let test = Test::new().lab(&lab);
    let known_hosts = ca_only_known_hosts(&lab, &test);
    let before = fs::read_to_string(&known_hosts).expect("read");
    for host in [expired, misnamed, foreign] {
        assert!(
            !openssh_accepts(&lab, host, &known_hosts),
            "OpenSSH refuses {}",
            host.name
        );
    }
    assert!(openssh_accepts(&lab, lab.host("lab-04"), &known_hosts));
    let arg = known_hosts.display().to_string();
    let out = test
        .args(["status", "--json", "--accept-new", "--known-hosts", &arg])
        .code(1)
        .run();
    let rows = rows(out.json());
    let error = |name: &str| {
        rows.iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, state, error)| {
                assert_eq!(state, "unreachable", "{name}");
                error.clone()
            })
            .expect("host row")
    };
    let prefix = |host: &LabHost| {
        format!(
            "{}: host certificate of {}:22 refused: ",
            host.name, host.address
        )
    };
    let e = error("lab-01");
    assert!(
        e.starts_with(&prefix(expired)) && e.contains("expired at 2020-01-02"),
        "{e}"
    );
    let e = error("lab-02");
    assert!(
        e.starts_with(&prefix(misnamed))
            && e.contains(&format!(
                "{} is not among its principals (lab-02, 10.9.9.9)",
                misnamed.address
            )),
        "{e}"
    );
    let e = error("lab-03");
    assert!(
        e.starts_with(&prefix(foreign))
            && e.contains("signed by a CA that no @cert-authority line for the host trusts"),
        "{e}"
    );
    let good = rows.iter().find(|(n, _, _)| n == "lab-04").expect("lab-04");
    assert_eq!((good.1.as_str(), good.2.as_str()), ("steady", ""));
    assert_eq!(fs::read_to_string(&known_hosts).expect("read"), before);
}

/// The lab's inventory authenticating with `key` instead of the authorized `client_key`.
fn inventory_with_key(lab: &Lab, key: Option<&Path>, extra: &str) -> String {
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let line = inventory
        .lines()
        .find(|l| l.contains("ansible_ssh_private_key_file:"))
        .expect("the lab inventory names a key")
        .to_owned();
    let with = match key {
        Some(key) => format!("    ansible_ssh_private_key_file: {}{extra}", key.display()),
        None => extra.trim_start_matches('\n').to_owned(),
    };
    inventory.replace(&line, &with)
}

fn status_states(test: Test<'_>) -> (Vec<(String, String, String)>, String) {
    let out = test
        .args(["status", "--json", "-i", "inventory.yaml"])
        .codes(&[0, 1])
        .run();
    (rows(out.json()), out.show())
}

/// sshd takes the lab's user certificate for `client_cert_key`, whose plain key is not in
/// `authorized_keys`: found beside the key (`-cert.pub`), named by `ngfleet_ssh_certificate`,
/// or held by an ssh-agent; without it the same key is denied.
#[test]
fn a_user_certificate_authenticates_a_key_that_is_not_authorized() {
    let lab = lab!(1);
    let key = lab.dir.join("client_cert_key");
    let authorized = fs::read_to_string(lab.dir.join("authorized_keys")).expect("authorized");
    let public = fs::read_to_string(key.with_extension("pub")).unwrap_or_default();
    let plain = fs::read_to_string(lab.dir.join("client_cert_key.pub")).expect("pub");
    let blob = plain.split_whitespace().nth(1).expect("key blob");
    assert!(!authorized.contains(blob), "{public}");

    // Beside the key, as OpenSSH finds it.
    let (rows, show) = status_states(
        Test::new().file("inventory.yaml", &inventory_with_key(&lab, Some(&key), "")),
    );
    assert_eq!(rows[0].1, "steady", "{show}");
    let log = fs::read_to_string(lab.host("lab-01").dir.join("ssh/sshd.log")).expect("log");
    assert!(
        log.lines()
            .any(|l| l.contains("Accepted publickey for root") && l.contains("ED25519-CERT")),
        "{log}"
    );

    // Moved away: the same key alone is denied.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let cert = elsewhere.path().join("lab-user.cert");
    fs::rename(lab.dir.join("client_cert_key-cert.pub"), &cert).expect("move the certificate");
    let (rows, show) = status_states(
        Test::new().file("inventory.yaml", &inventory_with_key(&lab, Some(&key), "")),
    );
    assert!(
        rows[0]
            .2
            .contains("permission denied (publickey) for user root"),
        "{show}"
    );

    // Named by the inventory.
    let var = format!("\n    ngfleet_ssh_certificate: {}", cert.display());
    let (rows, show) = status_states(Test::new().file(
        "inventory.yaml",
        &inventory_with_key(&lab, Some(&key), &var),
    ));
    assert_eq!(rows[0].1, "steady", "{show}");

    // From an ssh-agent holding the key and its certificate, with no key file at all.
    fs::copy(&cert, lab.dir.join("client_cert_key-cert.pub")).expect("copy back");
    let sock = elsewhere.path().join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    let agent = KillOnDrop(agent);
    assert!(crate::lab::wait_until(
        std::time::Duration::from_secs(5),
        || sock.exists()
    ));
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    let said = String::from_utf8_lossy(&added.stderr).into_owned();
    assert!(
        added.status.success() && said.contains("Certificate added"),
        "{said}"
    );
    let home = tempfile::tempdir().expect("an empty HOME: no default keys");
    let (rows, show) = status_states(
        Test::new()
            .file("inventory.yaml", &inventory_with_key(&lab, None, ""))
            .env("SSH_AUTH_SOCK", &sock.display().to_string())
            .env("HOME", &home.path().display().to_string()),
    );
    assert_eq!(rows[0].1, "steady", "{show}");
    drop(agent);
}

/// Ends the child (by its pid) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
