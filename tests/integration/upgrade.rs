//! The per-host hot upgrade against real nginx on lab hosts over real SSH.

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use ngfleet::fleet::ControllerEnv;
use ngfleet::host::event::Event;
use ngfleet::host::upgrade::{
    Deadlines, Outcome, ProcessChecksOnly, Source, UpgradeError, converge,
};
use ngfleet::model::inventory::Inventory;
use ngfleet::ssh::{Credentials, HostKeyPolicy, Transport, TransportConfig};

use crate::lab::Lab;

const DEADLINES: Deadlines = Deadlines {
    command: Duration::from_secs(20),
    start: Duration::from_secs(3),
    drain: Duration::from_secs(10),
    quit: Duration::from_secs(6),
};

pub struct Run {
    pub result: Result<Outcome, UpgradeError>,
    pub events: Vec<Event>,
}

fn sha(path: &std::path::Path) -> String {
    ngfleet::inputs::sha256_file(path).expect("sha256")
}

/// Runs the procedure on one lab host with a local binary from the lab's versions/.
pub async fn upgrade(lab: &Lab, host: &str, version: &str) -> Run {
    let path = lab.dir.join("versions").join(version);
    let source = Source::Local {
        sha256: sha(&path),
        size: fs::metadata(&path).expect("binary").len(),
        path,
    };
    run(lab, host, &source).await
}

pub async fn run(lab: &Lab, host: &str, source: &Source) -> Run {
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("inventory");
    let h = inventory.find(host).expect("host").clone();
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let target = env.target(&h);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    let events = Mutex::new(Vec::new());
    let record = |e: Event| events.lock().expect("events").push(e);
    let result = converge(
        &transport,
        &target,
        &h,
        source,
        DEADLINES,
        "test-controller",
        &ProcessChecksOnly,
        &record,
    )
    .await;
    Run {
        result,
        events: events.into_inner().expect("events"),
    }
}

/// What the host's nginx serves on `/` (via curl inside its namespace, or loopback).
fn served(lab: &Lab, host: &str) -> String {
    lab.run(&[
        "exec",
        host,
        "--",
        "sh",
        "-c",
        "curl -s --max-time 3 http://127.0.0.1:${LAB_HTTP_PORT:-80}/",
    ])
}

fn status(lab: &Lab) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ngfleet"))
        .args(["status", "-i", &lab.inventory(), "--json"])
        .output()
        .expect("status");
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_a_host_and_keeps_a_backup() {
    let Some(lab) = Lab::up(1) else { return };
    let host = lab.host("lab-01").clone();
    let old_sha = sha(&lab.dir.join("versions/nginx-old"));
    let new_sha = sha(&lab.dir.join("versions/nginx-new"));
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    let outcome = run
        .result
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", run.events));
    assert!(
        matches!(&outcome, Outcome::Upgraded { from, .. } if *from == old_sha),
        "{outcome:?}"
    );
    let v = status(&lab);
    let h = &v["hosts"][0];
    assert_eq!(h["state"], "steady", "{h}");
    assert_eq!(h["exe_sha256"], new_sha.as_str());
    assert_eq!(h["disk_sha256"], new_sha.as_str());
    assert_eq!(h["old_master_pid"], serde_json::Value::Null);
    let page = served(&lab, "lab-01");
    assert!(
        page.starts_with(&format!("{} lab-01", new_version(&lab))),
        "{page}"
    );
    let backup = format!(
        "{}.ngfleet-backup.{}",
        host.dir.join("sbin/nginx").display(),
        &old_sha[..16]
    );
    assert_eq!(
        sha(std::path::Path::new(&backup)),
        old_sha,
        "the backup is the old binary"
    );
    // Nothing staged is left behind.
    let leftovers: Vec<_> = fs::read_dir(host.dir.join("sbin"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ngfleet-stage"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Running it again is a no-op.
    let again = upgrade(&lab, "lab-01", "nginx-new").await;
    assert_eq!(again.result.expect("second run"), Outcome::AlreadyAtTarget);
}

fn new_version(lab: &Lab) -> String {
    let out = std::process::Command::new(lab.path("versions/nginx-new"))
        .arg("-v")
        .output()
        .expect("nginx -v");
    String::from_utf8_lossy(&out.stderr)
        .trim()
        .trim_start_matches("nginx version: nginx/")
        .to_owned()
}
