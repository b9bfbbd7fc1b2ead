//! The binary is judged on the controller before anything is uploaded: its ELF machine
//! against each host's `uname -m` in preflight, and `-v` shows every remote command.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::harness::{Test, status};

/// An ELF machine that is not this machine's (the lab's hosts run here): AArch64 (183), or
/// x86-64 (62) on an AArch64 machine; and its name.
fn foreign_machine() -> (u8, &'static str) {
    if std::env::consts::ARCH == "aarch64" {
        (62, "x86-64")
    } else {
        (183, "AArch64")
    }
}

/// The sbin directory's change time, in nanoseconds: a file created there (and even removed
/// again) changes it.
fn changed(dir: &std::path::Path) -> (i64, i64) {
    let m = fs::metadata(dir).expect("stat");
    (m.mtime(), m.mtime_nsec())
}

/// A binary for another machine passes `validate` (which names its machine) and is refused
/// by `roll` in preflight, before any upload: no upload step, no command that uploads, no
/// staged file ever created beside the host's binary; the host runs what it ran.
#[test]
fn a_binary_for_another_machine_is_refused_before_any_upload() {
    let lab = lab!(1);
    let (machine, name) = foreign_machine();
    let t = tempfile::tempdir().expect("tmp");
    let mut foreign = fs::read(lab.dir.join("versions/nginx-new")).expect("read");
    foreign[18] = machine;
    foreign[19] = 0;
    let binary = t.path().join("nginx-foreign");
    fs::write(&binary, foreign).expect("write");
    let spec =
        "hosts: lab\ncanary: {hosts: 1, then: continue}\ntimeouts: {connect: 5s, command: 20s}\n";
    let ngfleet = |args: &[&str]| {
        Test::new()
            .lab(&lab)
            .args(args.iter().copied())
            .spec(spec)
            .arg("--binary")
            .arg(&binary)
    };

    let out = ngfleet(&["validate"]).run();
    assert!(
        out.stdout.contains(&format!("(ELF 64-bit, {name}, ")),
        "{}",
        out.stdout
    );

    let sbin = lab.host("lab-01").dir.join("sbin");
    let old = ngfleet::inputs::sha256_file(&lab.dir.join("versions/nginx-old")).expect("sha");
    // A first run takes the host's lock for the first time (creating its lock file).
    let first = ngfleet(&["roll"]).journal("first.jsonl").code(1).run();
    first.expect_result("failed");
    assert_eq!(first.result_of("lab-01"), "failed", "{}", first.show());
    let before = changed(&sbin);
    let out = Test::new()
        .lab(&lab)
        .args(["-vv", "roll"])
        .spec(spec)
        .arg("--binary")
        .arg(&binary)
        .journal("run.jsonl")
        .code(1)
        .run();
    assert_eq!(
        changed(&sbin),
        before,
        "a file was created beside the binary"
    );
    out.expect_result("failed");
    assert_eq!(out.hosts("failed"), ["lab-01"], "{}", out.show());

    let steps: Vec<(&str, &str)> = out
        .events("step")
        .into_iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(steps.contains(&("preflight", "failed")), "{steps:?}");
    assert!(
        !steps
            .iter()
            .any(|(s, _)| ["stage", "install", "usr2"].contains(s)),
        "{steps:?}"
    );
    let refusal = out
        .events("step")
        .into_iter()
        .find(|e| e["step"] == "preflight" && e["status"] == "failed")
        .and_then(|e| e["error"].as_str())
        .unwrap_or("");
    assert!(
        refusal.contains(&format!(
            "the new binary is for {name} (ELF machine {machine}), this host ({}) needs",
            std::env::consts::ARCH
        )),
        "{refusal}"
    );

    // -v: every connection and command with its label, status and time; -vv: its output
    // (the lock's: the first probe, printed before its ready line).
    let stderr = &out.stderr;
    for needle in [
        "lab-01: connected in ",
        "lab-01: $ lock: running (held) after ",
        "lab-01:   | probe 1",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?}:\n{stderr}");
    }
    assert!(!stderr.contains("$ upload"), "{stderr}");
    let leftovers: Vec<String> = fs::read_dir(&sbin)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ngfleet-stage"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let v = status(&lab);
    assert_eq!(v["hosts"][0]["state"], "steady");
    assert_eq!(v["hosts"][0]["exe_sha256"], old.as_str());
}
