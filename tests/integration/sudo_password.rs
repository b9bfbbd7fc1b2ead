//! sudo with a password, against the real sudo of this machine: lab hosts share its
//! `/etc/passwd` and sudoers (sshd runs in a network namespace on the same filesystem), and
//! the lab's `AuthorizedKeysFile` is one file for every user, so any local user logs in with
//! the lab key. [`sudo_user`] creates, idempotently, the users these tests log in as:
//! `ngfleet-pw` (sudo needs its password) and `ngfleet-nopw` (`NOPASSWD`), each with a
//! drop-in in `/etc/sudoers.d/`. They stay on the machine (they are what a later run needs
//! again); `userdel -r ngfleet-pw ngfleet-nopw; rm /etc/sudoers.d/ngfleet-*pw` removes them.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Test, rollout};
use crate::lab::{Lab, wait_until};

/// The password of `ngfleet-pw`: spaces, quotes and `$(…)`, to show it travels as data.
const PASSWORD: &str = "pw Secret' \"$(touch /tmp/ngfleet-pw-injected)\"";
const PW_USER: &str = "ngfleet-pw";
const NOPW_USER: &str = "ngfleet-nopw";

/// One user setup at a time in this process.
static USERS: Mutex<()> = Mutex::new(());

/// Makes `name` a local user with `password` and the sudoers drop-in `rule` (idempotent), and
/// makes sure sudo is installed. Panics, failing the test, when that cannot be done.
fn sudo_user(name: &str, password: &str, rule: &str) {
    let _one = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if !Path::new("/usr/bin/sudo").exists() {
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "sudo"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()) && Path::new("/usr/bin/sudo").exists(),
            "sudo is not installed and `apt-get install sudo` failed (scripts/test installs it)"
        );
    }
    let exists = || {
        Command::new("id")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !exists() {
        // Another process may create it meanwhile: judge by `id` afterwards.
        let _ = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .status();
        assert!(exists(), "useradd {name} failed");
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    let _ = chpasswd
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{name}:{password}\n").as_bytes());
    assert!(
        chpasswd.wait().is_ok_and(|s| s.success()),
        "chpasswd {name}"
    );
    let dropin = format!("/etc/sudoers.d/{name}");
    let tmp = format!("{dropin}.tmp");
    fs::write(&tmp, format!("{name} ALL=(ALL:ALL) {rule}\n")).expect("write sudoers drop-in");
    let checked = Command::new("visudo").args(["-cqf", &tmp]).status();
    assert!(checked.is_ok_and(|s| s.success()), "visudo -cf {tmp}");
    let _ = Command::new("chmod").args(["0440", &tmp]).status();
    fs::rename(&tmp, &dropin).expect("install sudoers drop-in");
}

/// The lab's inventory, logging in as `user` with `ansible_become: true`.
fn inventory_as(lab: &Lab, user: &str) -> String {
    let inventory = fs::read_to_string(lab.inventory()).expect("inventory");
    let login = inventory
        .lines()
        .find(|l| l.trim_start().starts_with("ansible_user:"))
        .expect("the lab inventory sets ansible_user")
        .to_owned();
    inventory.replace(
        &login,
        &format!("    ansible_user: {user}\n    ansible_become: true"),
    )
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `roll` (or `rollback`) of the lab's `nginx-new` as `ngfleet-pw`, with `-K` and the password
/// typed on a pseudo-terminal (`script`), as an operator would. Returns what the terminal
/// showed and the journal's text.
fn roll_on_a_terminal(lab: &Lab, verb: &str, typed: &str, code: i32) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("inventory.yaml"),
        inventory_as(lab, PW_USER),
    )
    .expect("inventory");
    fs::write(dir.path().join("spec.yaml"), "hosts: lab\n").expect("spec");
    let binary = lab.dir.join("versions/nginx-new");
    let words = [
        env!("CARGO_BIN_EXE_ngfleet"),
        verb,
        "-K",
        "--yes",
        "-i",
        "inventory.yaml",
        "-p",
        "spec.yaml",
        "--binary",
        binary.to_str().expect("utf-8 path"),
        "--journal",
        "run.jsonl",
        "-vv",
    ];
    let line = shlex::try_join(words).expect("quotable");
    let started = Instant::now();
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("NGFLEET_BECOME_PASSWORD")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().expect("output").extend_from_slice(&buf[..n]);
            }
        })
    };
    let shown = || String::from_utf8_lossy(&seen.lock().expect("output")).into_owned();
    // Typed once the prompt is up and echo is off: rpassword prints the prompt, then turns
    // echo off (microseconds later); the terminal would echo what came before.
    let prompted = wait_until(Duration::from_secs(30), || {
        shown().contains("BECOME password: ")
    });
    assert!(prompted, "no prompt\n{}", shown());
    std::thread::sleep(Duration::from_millis(500));
    let _ = stdin.write_all(format!("{typed}\n").as_bytes());
    let limit = Duration::from_secs(120);
    let ended = wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))));
    if !ended {
        let _ = child.kill();
    }
    let status = child.wait().expect("script ends");
    drop(stdin);
    let _ = reader.join();
    let shown = shown();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{verb} took {:?}\n{shown}",
        started.elapsed()
    );
    let tail: String = shown
        .chars()
        .rev()
        .take(3000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(status.code(), Some(code), "{verb} -K\n...{tail}");
    assert!(shown.contains("BECOME password: "), "{shown}");
    let journal = fs::read_to_string(dir.path().join("run.jsonl")).unwrap_or_default();
    (shown, journal)
}

/// The last `host_finished` event of `host` in a journal's text.
fn finished<'j>(journal: &'j [serde_json::Value], host: &str) -> &'j serde_json::Value {
    journal
        .iter()
        .rfind(|e| e["event"] == "host_finished" && e["host"] == host)
        .unwrap_or_else(|| panic!("no host_finished for {host} in {journal:?}"))
}

fn events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A non-root user whose sudo needs a password rolls a lab host with the password typed once
/// on a terminal (`-K`), and rolls it back with `NGFLEET_BECOME_PASSWORD`; the password is
/// in no output, journal or `--json` line (at `-vv` too), and nothing ran the `$(…)` in it.
#[test]
fn a_password_sudo_user_rolls_with_a_terminal_prompt_and_with_the_env_var() {
    sudo_user(PW_USER, PASSWORD, "ALL");
    let _ = fs::remove_file("/tmp/ngfleet-pw-injected");
    let lab = lab!(1);
    let host = lab.host("lab-01").clone();
    let old = sha256(&host.binary());
    let new = sha256(&lab.dir.join("versions/nginx-new"));

    let (shown, journal) = roll_on_a_terminal(&lab, "roll", PASSWORD, 0);
    let journal_events = events(&journal);
    assert_eq!(
        finished(&journal_events, "lab-01")["result"],
        "upgraded",
        "{shown}"
    );
    assert_eq!(sha256(&host.binary()), new);
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("pw Secret"),
        "{shown}"
    );
    assert!(!journal.contains("pw Secret"), "{journal}");

    let out = rollout(&lab, "hosts: lab\n", "rollback")
        .file("inventory.yaml", &inventory_as(&lab, PW_USER))
        .args(["-i", "inventory.yaml", "--json", "-vv"])
        .env("NGFLEET_BECOME_PASSWORD", PASSWORD)
        .run();
    assert_eq!(out.result_of("lab-01"), "rolled_back", "{}", out.show());
    assert_eq!(sha256(&host.binary()), old);
    assert!(!out.text().contains("pw Secret"), "{}", out.show());
    let journal = fs::read_to_string(out.journal_path.as_ref().expect("journal")).expect("read");
    assert!(!journal.contains("pw Secret"));
    // The -vv trace shows each privileged command (it ran as the sudo user).
    assert!(out.stderr.contains("lab-01: $ lock"), "{}", out.show());

    let status = Test::new()
        .file("inventory.yaml", &inventory_as(&lab, PW_USER))
        .args(["status", "--json", "-i", "inventory.yaml"])
        .env("NGFLEET_BECOME_PASSWORD", PASSWORD)
        .run();
    let v = status.json();
    assert_eq!(v["hosts"][0]["state"], "steady", "{v}");
    assert_eq!(v["hosts"][0]["exe_sha256"], old.as_str(), "{v}");
    assert!(
        !Path::new("/tmp/ngfleet-pw-injected").exists(),
        "the password was run as code"
    );
}

/// A wrong password is a per-host error naming the host, the step and that sudo refused the
/// password, within seconds (no hang), and the host is untouched; without any password the
/// error says a password is required and how to give one.
#[test]
fn a_wrong_or_missing_become_password_is_a_clear_per_host_error_and_changes_nothing() {
    sudo_user(PW_USER, PASSWORD, "ALL");
    let lab = lab!(2);
    let before: Vec<(String, Vec<u32>)> = lab
        .hosts
        .iter()
        .map(|h| (sha256(&h.binary()), h.masters()))
        .collect();

    let (shown, journal) = roll_on_a_terminal(&lab, "roll", "not the password", 1);
    let journal_events = events(&journal);
    assert_eq!(
        finished(&journal_events, "lab-01")["result"],
        "failed",
        "{shown}"
    );
    for name in ["lab-01", "lab-02"] {
        // lab-02 was being prepared (lock) while the canary ran: its step failed the same way.
        let failed = journal_events
            .iter()
            .find(|e| e["event"] == "step" && e["host"] == name && e["status"] == "failed")
            .unwrap_or_else(|| panic!("no failed step for {name}\n{journal}"));
        let error = failed["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{name}: sudo refused for user {PW_USER}"))
                && error.contains("sudo refused the password")
                && error.ends_with(": lock"),
            "{error}"
        );
    }
    assert!(!journal.contains("not the password") && !shown.contains("not the password"));

    let started = Instant::now();
    let out = rollout(&lab, "hosts: lab\n", "roll")
        .file("inventory.yaml", &inventory_as(&lab, PW_USER))
        .args(["-i", "inventory.yaml", "--yes"])
        .code(1)
        .within(Duration::from_secs(60))
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let error = out.finished("lab-01")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("a password is required") && error.contains("--ask-become-pass"),
        "{error}"
    );

    let after: Vec<(String, Vec<u32>)> = lab
        .hosts
        .iter()
        .map(|h| (sha256(&h.binary()), h.masters()))
        .collect();
    assert_eq!(before, after, "binaries and masters unchanged");
    for h in &lab.hosts {
        let stray: Vec<_> = fs::read_dir(h.binary().parent().expect("sbin"))
            .expect("sbin")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains("ngfleet"))
            .filter(|n| !n.contains("lock"))
            .collect();
        assert!(stray.is_empty(), "{}: {stray:?}", h.name);
    }
}

/// A host whose sudo needs no password still rolls when a password is given, and its
/// commands never read the password as input: the upload (whose stdin follows the password
/// line) arrives with the right sha256, or the run would fail its checksum.
#[test]
fn a_passwordless_sudo_host_never_gets_the_password_as_input() {
    sudo_user(NOPW_USER, "unused-password", "NOPASSWD: ALL");
    let lab = lab!(1);
    let new = sha256(&lab.dir.join("versions/nginx-new"));
    // A local gate sees the host's variables in its environment, never the sudo password.
    let seen = lab.dir.join("local-gate-env");
    let spec = format!(
        "hosts: lab\ngates:\n  - local: \"env > {}\"\n",
        seen.display()
    );
    let out = rollout(&lab, &spec, "roll")
        .file("inventory.yaml", &inventory_as(&lab, NOPW_USER))
        .args(["-i", "inventory.yaml", "--yes"])
        .env("NGFLEET_BECOME_PASSWORD", "not-needed")
        .run();
    assert_eq!(out.result_of("lab-01"), "upgraded", "{}", out.show());
    assert_eq!(sha256(&lab.host("lab-01").binary()), new);
    let env = fs::read_to_string(&seen).expect("the local gate ran");
    assert!(env.contains("inventory_hostname=lab-01"), "{env}");
    assert!(
        !env.contains("not-needed"),
        "the local gate saw the password:\n{env}"
    );
}

/// The password is checked before anything connects: `-K` without a terminal to ask on, and
/// an environment variable that is not one line, are input errors (exit 2) that say so. No
/// lab: the inventory's only host is never contacted.
#[test]
fn an_unusable_become_password_is_refused_before_connecting() {
    let inventory = "all:\n  hosts:\n    web-01:\n      ansible_host: 192.0.2.1\n";
    // `setsid`: no controlling terminal, as under cron or CI.
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("inventory.yaml"), inventory).expect("inventory");
    let out = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_ngfleet"))
        .args(["status", "-K", "-i", "inventory.yaml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("setsid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("failed to read the become password from the terminal (--ask-become-pass)"),
        "{stderr}"
    );

    let out = Test::new()
        .file("inventory.yaml", inventory)
        .args(["status", "-i", "inventory.yaml"])
        .env("NGFLEET_BECOME_PASSWORD", "two\nlines")
        .code(2)
        .run();
    assert!(
        out.stderr.contains(
            "failed to use the become password from NGFLEET_BECOME_PASSWORD: the become \
             password contains a newline"
        ),
        "{}",
        out.show()
    );
    assert!(!out.text().contains("two\nlines"));
}
