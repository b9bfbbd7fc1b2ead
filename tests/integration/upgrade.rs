//! The per-host hot upgrade against real nginx on lab hosts over real SSH.

use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use ngfleet::fleet::ControllerEnv;
use ngfleet::host::event::Event;
use ngfleet::host::upgrade::{
    Deadlines, Intent, Job, Outcome, ProcessChecksOnly, Settings, Source, UpgradeError, converge,
};
use ngfleet::model::inventory::Inventory;
use ngfleet::model::spec::OnDrainTimeout;
use ngfleet::ssh::{Credentials, HostKeyPolicy, Transport, TransportConfig};

use crate::harness::status;
use crate::lab::{Lab, alive, wait_until};

const DEADLINES: Deadlines = Deadlines {
    command: Duration::from_secs(20),
    start: Duration::from_secs(3),
    drain: Duration::from_secs(10),
    quit: Duration::from_secs(6),
};

/// The procedure's settings for lab tests.
pub fn settings() -> Settings {
    Settings {
        deadlines: DEADLINES,
        on_drain_timeout: OnDrainTimeout::Fail,
        run_id: "test-run".into(),
        owner: "test-controller".into(),
        attempts: 3,
        keep_backups: ngfleet::host::upgrade::KEEP_BACKUPS,
        upload_floor: ngfleet::host::upgrade::UPLOAD_FLOOR,
    }
}

pub struct Run {
    pub result: Result<Outcome, UpgradeError>,
    pub events: Vec<Event>,
}

impl Run {
    /// How many times the run took the host's lock (once per connection).
    pub fn locks_taken(&self) -> usize {
        self.events
            .iter()
            .filter(|e| {
                e.step == ngfleet::host::event::Step::Lock
                    && e.status == ngfleet::host::event::Status::Done
            })
            .count()
    }
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
        // Not read here: these tests exercise the checks on the host.
        machine: None,
        path,
    };
    run(lab, host, &source).await
}

pub async fn run(lab: &Lab, host: &str, source: &Source) -> Run {
    run_intent(lab, host, source, Intent::Upgrade).await
}

pub async fn run_intent(lab: &Lab, host: &str, source: &Source, intent: Intent) -> Run {
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("inventory");
    let h = inventory.find(host).expect("host").clone();
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let target = env.target(&h);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    let events = Mutex::new(Vec::new());
    let record = |e: Event| events.lock().expect("events").push(e);
    let settings = settings();
    let job = Job {
        host: &h,
        source,
        intent,
        settings: &settings,
        gate: &ProcessChecksOnly,
        round_trips: &ngfleet::host::round_trips::RoundTrips::default(),
    };
    let result = converge(&transport, &target, &job, &record).await;
    Run {
        result,
        events: events.into_inner().expect("events"),
    }
}

/// What the host's nginx serves on `/` (via curl inside its namespace, or loopback).
pub fn served(lab: &Lab, host: &str) -> String {
    lab.run(&[
        "exec",
        host,
        "--",
        "sh",
        "-c",
        "curl -s --max-time 3 http://127.0.0.1:${LAB_HTTP_PORT:-80}/",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_a_host_and_keeps_a_backup() {
    let lab = lab!(1);
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

pub fn new_version(lab: &Lab) -> String {
    lab.version("nginx-new")
}

use std::sync::atomic::{AtomicBool, Ordering};

use ngfleet::host::remote::Remote;
use ngfleet::host::upgrade::{Gate, GateFuture, Phase};
use ngfleet::model::inventory::Host;

/// The host as `status --json` sees it, for "unchanged" checks.
pub fn snapshot(lab: &Lab) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let v = status(lab);
    let h = &v["hosts"][0];
    (
        h["master_pid"].clone(),
        h["exe_sha256"].clone(),
        h["disk_sha256"].clone(),
    )
}

fn staged_leftovers(lab: &Lab) -> Vec<String> {
    fs::read_dir(lab.host("lab-01").dir.join("sbin"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ngfleet-stage"))
        .collect()
}

fn refused(run: &Run) -> String {
    match &run.result {
        Err(UpgradeError::Refused { reason, .. }) => reason.to_string(),
        other => panic!("expected a refusal, got {other:?}\n{:#?}", run.events),
    }
}

pub fn assert_upgraded(run: &Run) {
    assert!(
        matches!(run.result, Ok(Outcome::Upgraded { .. })),
        "{:?}\n{:#?}",
        run.result,
        run.events
    );
}

pub fn rolled_back(run: &Run) -> String {
    match &run.result {
        Ok(Outcome::RolledBack { reason }) => reason.to_string(),
        other => panic!("expected a rollback, got {other:?}\n{:#?}", run.events),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_new_binaries_are_refused_and_change_nothing() {
    let lab = lab!(1);
    let before = snapshot(&lab);
    // An ELF for another machine: the host's nginx with e_machine set to aarch64 (183).
    let mut foreign = fs::read(lab.dir.join("versions/nginx-new")).expect("read");
    foreign[18] = 183;
    foreign[19] = 0;
    fs::write(lab.dir.join("versions/nginx-foreign"), foreign).expect("write");
    for (version, expected) in [
        ("nginx-broken", "not an ELF executable"),
        ("nginx-garbage", "not an ELF executable"),
        (
            "nginx-foreign",
            "ELF machine 183, this host (x86_64) needs 62",
        ),
    ] {
        let run = upgrade(&lab, "lab-01", version).await;
        let reason = refused(&run);
        assert!(reason.contains(expected), "{version}: {reason}");
        assert_eq!(snapshot(&lab), before, "{version} changed the host");
        assert!(staged_leftovers(&lab).is_empty(), "{version} left files");
    }
    // A config that fails `-t` with the new binary (the running master parsed it earlier).
    let conf = lab.host("lab-01").dir.join("nginx/conf/nginx.conf");
    let good = fs::read_to_string(&conf).expect("conf");
    fs::write(&conf, format!("{good}\nngfleet_bogus_directive on;\n")).expect("write");
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    fs::write(&conf, good).expect("restore conf");
    let reason = refused(&run);
    assert!(
        reason.contains("`nginx -t` with the new binary failed")
            && reason.contains("ngfleet_bogus_directive"),
        "{reason}"
    );
    assert_eq!(snapshot(&lab), before);
    assert!(staged_leftovers(&lab).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_that_fails_at_start_or_hangs_is_rolled_back() {
    let lab = lab!(1);
    let (pid, exe, disk) = snapshot(&lab);
    let run = upgrade(&lab, "lab-01", "nginx-exit1-usr2-elf").await;
    assert!(
        rolled_back(&run).contains("exited at start"),
        "{:?}",
        run.result
    );
    assert_eq!(snapshot(&lab), (pid.clone(), exe.clone(), disk.clone()));

    let run = upgrade(&lab, "lab-01", "nginx-hang-elf").await;
    let reason = rolled_back(&run);
    assert!(reason.contains("did not become ready"), "{reason}");
    assert_eq!(snapshot(&lab), (pid, exe, disk));
    assert_eq!(status(&lab)["hosts"][0]["state"], "steady");
    assert!(staged_leftovers(&lab).is_empty());
}

/// The health gate of the lab: `/health` through the host's own loopback must say `ok`.
struct LabHealth<'l> {
    lab: &'l Lab,
}

impl Gate for LabHealth<'_> {
    fn check<'a>(
        &'a self,
        _: &'a dyn Remote,
        host: &'a Host,
        phase: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async move {
            if phase != Phase::AfterWinch {
                return Ok(());
            }
            let body = self.lab.run(&[
                "exec",
                &host.name,
                "--",
                "sh",
                "-c",
                "curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:${LAB_HTTP_PORT:-80}/health",
            ]);
            if body.trim() == "200" {
                Ok(())
            } else {
                Err(ngfleet::gate::failure::GateFailure::Unprepared(
                    ngfleet::gate::failure::Saw::Remote(format!(
                        "/health answered {}",
                        body.trim()
                    )),
                ))
            }
        })
    }
}

pub async fn run_with_gate(lab: &Lab, version: &str, gate: &dyn Gate) -> Run {
    run_with_gate_and_events(lab, version, gate, &|_| {}).await
}

pub async fn run_with_gate_and_events(
    lab: &Lab,
    version: &str,
    gate: &dyn Gate,
    hook: &(dyn Fn(&Event) + Sync),
) -> Run {
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("inventory");
    let h = inventory.find("lab-01").expect("host").clone();
    run_host_with_gate(lab, &h, version, gate, hook).await
}

/// Upgrades `h` (a lab host as some inventory describes it) to `version` under `gate`.
pub async fn run_host_with_gate(
    lab: &Lab,
    h: &Host,
    version: &str,
    gate: &dyn Gate,
    hook: &(dyn Fn(&Event) + Sync),
) -> Run {
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    let path = lab.dir.join("versions").join(version);
    let source = Source::Local {
        sha256: sha(&path),
        size: fs::metadata(&path).expect("binary").len(),
        // Not read here: these tests exercise the checks on the host.
        machine: None,
        path,
    };
    let events = Mutex::new(Vec::new());
    let record = |e: Event| {
        hook(&e);
        events.lock().expect("events").push(e);
    };
    let settings = settings();
    let job = Job {
        host: h,
        source: &source,
        intent: Intent::Upgrade,
        settings: &settings,
        gate,
        round_trips: &ngfleet::host::round_trips::RoundTrips::default(),
    };
    let result = converge(&transport, &env.target(h), &job, &record).await;
    Run {
        result,
        events: events.into_inner().expect("events"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_after_winch_rolls_back_both_masters() {
    let lab = lab!(1);
    let before = snapshot(&lab);
    let run = run_with_gate(&lab, "nginx-unhealthy-elf", &LabHealth { lab: &lab }).await;
    let reason = rolled_back(&run);
    assert!(reason.contains("/health answered 503"), "{reason}");
    assert_eq!(
        snapshot(&lab),
        before,
        "old master, old binary running, old binary on disk"
    );
    let page = served(&lab, "lab-01");
    assert!(!page.starts_with(&new_version(&lab)), "{page}");
    // A healthy version passes the same gate.
    let run = run_with_gate(&lab, "nginx-new", &LabHealth { lab: &lab }).await;
    assert_upgraded(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_commit_returns_to_the_backup() {
    let lab = lab!(1);
    let old_sha = sha(&lab.dir.join("versions/nginx-old"));
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    let Ok(Outcome::Upgraded { backup, .. }) = run.result else {
        panic!("{:?}", run.result)
    };
    assert!(std::path::Path::new(&backup).exists(), "{backup}");
    let source = local(&lab, "nginx-new");
    let back = run_intent(&lab, "lab-01", &source, Intent::Rollback).await;
    rolled_back(&back);
    let (_, exe, disk) = snapshot(&lab);
    assert_eq!((exe, disk), (old_sha.clone().into(), old_sha.into()));
    assert!(!served(&lab, "lab-01").starts_with(&new_version(&lab)));
}

fn local(lab: &Lab, version: &str) -> Source {
    let path = lab.dir.join("versions").join(version);
    Source::Local {
        sha256: sha(&path),
        size: fs::metadata(&path).expect("binary").len(),
        // Not read here: these tests exercise the checks on the host.
        machine: None,
        path,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_commit_keeps_the_old_master_until_committed_or_rolled_back() {
    let lab = lab!(1);
    let before = snapshot(&lab);
    let source = local(&lab, "nginx-new");
    let run = run_intent(&lab, "lab-01", &source, Intent::UpgradeDeferCommit).await;
    let Ok(Outcome::AwaitingCommit { old_pid, new_pid }) = run.result else {
        panic!("{:?}", run.result)
    };
    let v = status(&lab);
    assert_eq!(v["hosts"][0]["state"], "upgrading");
    assert_eq!(v["hosts"][0]["old_master_pid"], old_pid);
    assert!(served(&lab, "lab-01").starts_with(&new_version(&lab)));
    // Roll back while both masters live: instant, back to the old master.
    let back = run_intent(&lab, "lab-01", &source, Intent::Rollback).await;
    assert!(
        matches!(back.result, Ok(Outcome::RolledBack { .. })),
        "{:?}",
        back.result
    );
    assert_eq!(snapshot(&lab), before);
    assert!(!alive(new_pid));
    // Defer again, then commit with a plain upgrade run.
    let run = run_intent(&lab, "lab-01", &source, Intent::UpgradeDeferCommit).await;
    assert!(
        matches!(run.result, Ok(Outcome::AwaitingCommit { .. })),
        "{:?}",
        run.result
    );
    let commit = run_intent(&lab, "lab-01", &source, Intent::Upgrade).await;
    assert_upgraded(&commit);
    let v = status(&lab);
    assert_eq!(v["hosts"][0]["state"], "steady");
    assert_eq!(
        v["hosts"][0]["exe_sha256"],
        sha(&lab.dir.join("versions/nginx-new")).as_str()
    );
}

/// Kills the new master with SIGKILL at the gate, as a crash would.
struct KillNewMaster<'l> {
    lab: &'l Lab,
    orphans: Mutex<Vec<u32>>,
}

impl Gate for KillNewMaster<'_> {
    fn check<'a>(
        &'a self,
        _: &'a dyn Remote,
        _: &'a Host,
        phase: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async move {
            if phase != Phase::AfterWinch {
                return Ok(());
            }
            let pid = self.lab.host("lab-01").master_pid().expect("new master");
            let children =
                fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            self.orphans.lock().expect("orphans").extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .expect("kill");
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_master_killed_after_winch_leaves_no_orphan() {
    let lab = lab!(1);
    let before = snapshot(&lab);
    let gate = KillNewMaster {
        lab: &lab,
        orphans: Mutex::new(Vec::new()),
    };
    let run = run_with_gate(&lab, "nginx-new", &gate).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains("died") || reason.contains("gone"),
        "{reason}"
    );
    let orphans = gate.orphans.lock().expect("orphans").clone();
    assert!(!orphans.is_empty(), "the new master had workers");
    for pid in orphans {
        assert!(!alive(pid), "orphaned worker {pid} still runs");
    }
    assert_eq!(snapshot(&lab), before);
    assert!(!served(&lab, "lab-01").starts_with(&new_version(&lab)));
}

/// Cuts every SSH session of the host once, at the gate (sshd-stop ends its sessions).
struct CutConnection<'l> {
    lab: &'l Lab,
    done: AtomicBool,
}

impl Gate for CutConnection<'_> {
    fn check<'a>(
        &'a self,
        _: &'a dyn Remote,
        _: &'a Host,
        phase: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async move {
            if phase != Phase::AfterWinch {
                return Ok(());
            }
            if !self.done.swap(true, Ordering::SeqCst) {
                self.lab.run(&["sshd-stop", "lab-01"]);
                self.lab.run(&["sshd-start", "lab-01"]);
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_mid_upgrade_converges_on_the_next_connection() {
    let lab = lab!(1);
    let gate = CutConnection {
        lab: &lab,
        done: AtomicBool::new(false),
    };
    let run = run_with_gate(&lab, "nginx-new", &gate).await;
    assert!(
        matches!(run.result, Ok(Outcome::Upgraded { .. })),
        "{:?}\n{:#?}",
        run.result,
        run.events
    );
    assert!(gate.done.load(Ordering::SeqCst));
    assert_eq!(
        run.locks_taken(),
        2,
        "a second connection took the lock again"
    );
    let v = status(&lab);
    assert_eq!(v["hosts"][0]["state"], "steady");
    assert_eq!(
        v["hosts"][0]["exe_sha256"],
        sha(&lab.dir.join("versions/nginx-new")).as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_controller_is_refused_by_the_lock() {
    let lab = lab!(1);
    let before = snapshot(&lab);
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("inventory");
    let h = inventory.find("lab-01").expect("host").clone();
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    let session = transport.connect(&env.target(&h)).await.expect("connect");
    let layout = ngfleet::host::scripts::Layout::plain(h.nginx.binary.clone());
    let lock = ngfleet::host::lock::lock(
        &layout,
        "other-controller pid=4242",
        ngfleet::ssh::Heartbeat::DEFAULT,
    );
    let held = match session
        .hold(&lock, "locked", Duration::from_secs(10))
        .await
        .expect("hold")
    {
        ngfleet::ssh::HoldOutcome::Held(h) => h,
        ngfleet::ssh::HoldOutcome::Refused(out) => panic!("{out:?}"),
    };
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    match &run.result {
        Err(UpgradeError::Locked { owner, .. }) => {
            assert!(owner.contains("other-controller pid=4242"), "{owner}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(snapshot(&lab), before);
    held.release().await;
    session.close().await;
    // Released: the next run goes through.
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    assert_upgraded(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_started_through_path_is_refused() {
    let lab = lab!(1);
    let host = lab.host("lab-01").clone();
    let old = host.master_pid().expect("pid");
    std::process::Command::new("kill")
        .args(["-QUIT", &old.to_string()])
        .status()
        .expect("kill");
    assert!(
        wait_until(Duration::from_secs(4), || !alive(old)),
        "the lab's master {old} did not quit"
    );
    let sbin = host.dir.join("sbin");
    let prefix = host.dir.join("nginx");
    lab.run(&[
        "exec",
        "lab-01",
        "--",
        "sh",
        "-c",
        &format!(
            "cd / && PATH={}:$PATH nginx -p {}/ -c conf/nginx.conf",
            sbin.display(),
            prefix.display()
        ),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let before = snapshot(&lab);
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    let reason = refused(&run);
    assert!(reason.contains("not by absolute path"), "{reason}");
    assert_eq!(snapshot(&lab), before);
    assert!(staged_leftovers(&lab).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_file_naming_another_process_is_refused() {
    let lab = lab!(1);
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("sleep");
    let pid_file = lab.dir.join("not-nginx.pid");
    fs::write(&pid_file, format!("{}\n", sleeper.id())).expect("write");
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let real = lab.host("lab-01").pid_file().display().to_string();
    let patched = text.replace(&real, &pid_file.display().to_string());
    assert_ne!(patched, text);
    fs::write(lab.dir.join("inventory.yaml"), patched).expect("write");
    let disk_before = sha(&lab.host("lab-01").dir.join("sbin/nginx"));
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    let reason = refused(&run);
    assert!(reason.contains("which is not an nginx master"), "{reason}");
    assert!(alive(sleeper.id()), "the other process was not signalled");
    assert_eq!(sha(&lab.host("lab-01").dir.join("sbin/nginx")), disk_before);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_works_through_sudo() {
    let lab = lab!(1);
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let with_become = text.replace("  vars:\n", "  vars:\n    ansible_become: true\n");
    assert_ne!(with_become, text);
    fs::write(lab.dir.join("inventory.yaml"), with_become).expect("write");
    let before = snapshot(&lab);
    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    assert_upgraded(&run);
    assert!(served(&lab, "lab-01").starts_with(&new_version(&lab)));
    let back = run_intent(&lab, "lab-01", &local(&lab, "nginx-new"), Intent::Rollback).await;
    rolled_back(&back);
    let (_, exe, disk) = snapshot(&lab);
    assert_eq!((exe, disk), (before.1, before.2));
}

/// A symlinked `nginx_binary` (`sbin/nginx -> nginx-1.22.1`): the file it points to is
/// replaced in its own directory, the link stays a link to the same name, the backup is a
/// regular file, and a rollback restores exactly that layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_binary_keeps_its_layout_through_upgrade_and_rollback() {
    let lab = lab!(1);
    let sbin = lab.host("lab-01").dir.join("sbin");
    let old_sha = sha(&lab.dir.join("versions/nginx-old"));
    let new_sha = sha(&lab.dir.join("versions/nginx-new"));
    fs::rename(sbin.join("nginx"), sbin.join("nginx-1.22.1")).expect("rename");
    std::os::unix::fs::symlink("nginx-1.22.1", sbin.join("nginx")).expect("symlink");
    let layout = |want: &str, when: &str| {
        let link = fs::read_link(sbin.join("nginx")).expect("still a symlink");
        assert_eq!(link, std::path::Path::new("nginx-1.22.1"), "{when}");
        assert_eq!(sha(&sbin.join("nginx-1.22.1")), want, "{when}: the file");
        let v = status(&lab);
        assert_eq!(v["hosts"][0]["state"], "steady", "{when}: {v}");
        assert_eq!(v["hosts"][0]["exe_sha256"], want, "{when}: running");
    };
    layout(&old_sha, "before");

    let run = upgrade(&lab, "lab-01", "nginx-new").await;
    assert_upgraded(&run);
    layout(&new_sha, "after the upgrade");
    let backup = sbin.join(format!("nginx-1.22.1.ngfleet-backup.{}", &old_sha[..16]));
    let meta = fs::symlink_metadata(&backup).expect("backup beside the file");
    assert!(meta.file_type().is_file(), "the backup is a regular file");
    assert_eq!(sha(&backup), old_sha);
    assert!(staged_leftovers(&lab).is_empty());

    let back = run_intent(&lab, "lab-01", &local(&lab, "nginx-new"), Intent::Rollback).await;
    rolled_back(&back);
    layout(&old_sha, "after the rollback");
}
