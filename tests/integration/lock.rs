//! The per-host lock on real lab hosts: its holder dies with its controller's heartbeat (a
//! partition, a controller that stops answering), a controller that loses it stops, and
//! `ngfleet unlock` breaks it by hand. Every test here needs its lab: no lab is a failure.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ngfleet::fleet::ControllerEnv;
use ngfleet::host::lock::{self, Holder};
use ngfleet::host::scripts::Layout;
use ngfleet::host::upgrade::{Gate, GateFuture, Outcome, Phase};
use ngfleet::model::inventory::{Host, Inventory};
use ngfleet::ssh::{
    Credentials, Heartbeat, Held, HoldOutcome, HostKeyPolicy, Session, SshErrorKind, Transport,
    TransportConfig,
};

use ngfleet::host::remote::Remote;

use crate::harness::Test;
use crate::lab::Lab;
use crate::upgrade::run_with_gate;

fn inventory_host(lab: &Lab, name: &str) -> Host {
    let text = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("inventory");
    inventory.find(name).expect("host").clone()
}

fn layout(lab: &Lab, name: &str) -> Layout {
    Layout::plain(inventory_host(lab, name).nginx.binary.clone())
}

async fn connect(lab: &Lab, name: &str) -> Session {
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    transport
        .connect(&env.target(&inventory_host(lab, name)))
        .await
        .expect("connect")
}

/// Connects once the host answers again (after a cut, its neighbour entry may still say
/// unreachable for a moment).
async fn reconnect(lab: &Lab, name: &str) -> Session {
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    let target = env.target(&inventory_host(lab, name));
    let t = Instant::now();
    loop {
        match transport.connect(&target).await {
            Ok(session) => return session,
            Err(e) if t.elapsed() > Duration::from_secs(15) => panic!("reconnect: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn take(session: &Session, layout: &Layout, owner: &str, beat: Heartbeat) -> Held {
    match lock::take(session, layout, owner, beat, Duration::from_secs(10))
        .await
        .expect("lock")
    {
        HoldOutcome::Held(held) => held,
        HoldOutcome::Refused(out) => panic!("lock refused: {out:?}"),
    }
}

/// Whether nobody holds the lock file (the lab's hosts share this machine's filesystem).
fn is_free(path: &Path) -> bool {
    std::process::Command::new("flock")
        .arg("-n")
        .arg(path)
        .arg("true")
        .status()
        .expect("flock")
        .success()
}

fn lock_path(lab: &Lab, name: &str) -> PathBuf {
    PathBuf::from(layout(lab, name).lock())
}

/// Waits up to `limit` for `cond`; how long it took.
async fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Restores a cut link even when the test fails halfway.
struct Cut<'l>(&'l Lab, &'l str);

impl Drop for Cut<'_> {
    fn drop(&mut self) {
        self.0.link_up(self.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_releases_the_lock_after_the_silence_limit() {
    let lab = lab!(1);
    let path = lock_path(&lab, "lab-01");
    let session = connect(&lab, "lab-01").await;
    let beat = Heartbeat::new(3);
    let held = take(
        &session,
        &layout(&lab, "lab-01"),
        "partitioned-controller",
        beat,
    )
    .await;
    // Heartbeats keep it past the silence limit.
    tokio::time::sleep(beat.silence() + Duration::from_secs(1)).await;
    assert!(!is_free(&path), "held while the heartbeat flows");
    assert!(!held.is_lost());

    let cut = Cut(&lab, "lab-01");
    lab.link_down("lab-01");
    let released = within(beat.silence() + Duration::from_secs(5), || is_free(&path))
        .await
        .expect("the holder lets go after the silence limit");
    assert!(
        released >= beat.silence() - beat.interval() * 2,
        "released by the silence, not by the cut itself: {released:?}"
    );
    assert!(
        held.is_lost(),
        "the controller counts the lease lost no later than the host lets go"
    );
    let lost = held.lost().await;
    assert!(
        matches!(lost.kind(), SshErrorKind::HoldLost { .. }),
        "{lost}"
    );
    assert!(lost.to_string().contains("lock lost"), "{lost}");

    drop(cut);
    // Once the link is back, another controller takes the lock at once, and the old
    // controller letting go of its lost lease does not disturb it.
    let other = reconnect(&lab, "lab-01").await;
    let second = take(&other, &layout(&lab, "lab-01"), "second-controller", beat).await;
    let released = tokio::time::timeout(Duration::from_secs(15), held.release()).await;
    assert!(released.is_ok(), "releasing a lost lease returns");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!is_free(&path));
    let owner = std::fs::read_to_string(&path).expect("lock file");
    assert!(
        owner.starts_with("second-controller; holder pid "),
        "{owner}"
    );
    second.release().await;
    assert!(
        within(Duration::from_secs(5), || is_free(&path))
            .await
            .is_some()
    );
    other.close().await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_breaks_a_held_lock_and_names_its_holder() {
    let lab = lab!(1);
    let path = lock_path(&lab, "lab-01");
    let session = connect(&lab, "lab-01").await;
    let held = take(
        &session,
        &layout(&lab, "lab-01"),
        "ngfleet run other pid 4242 on elsewhere",
        Heartbeat::DEFAULT,
    )
    .await;
    let holder = Holder::parse(&std::fs::read_to_string(&path).expect("lock file"));
    let pid = holder.pid.expect("the holder's pid is recorded");
    let out = Test::new().lab(&lab).args(["unlock", "--yes"]).run();
    assert!(
        out.stdout.contains(&format!(
            "lab-01  held by ngfleet run other pid 4242 on elsewhere (holder pid {pid} since "
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("lab-01  released (holder pid {pid} killed)")),
        "{}",
        out.stdout
    );
    assert!(is_free(&path));
    assert_eq!(std::fs::read_to_string(&path).expect("lock file"), "");
    // The controller whose lock was broken notices at once, not after the silence limit.
    let noticed = within(Duration::from_secs(5), || held.is_lost()).await;
    assert!(
        noticed.is_some(),
        "the broken controller counts its lock lost"
    );
    held.release().await;

    // A free lock is said to be free, and nothing changes.
    let out = Test::new().lab(&lab).args(["unlock", "--yes"]).run();
    assert_eq!(out.stdout, "lab-01  free\n");
    session.close().await;
}

#[test]
fn unlock_on_a_free_lock_changes_nothing() {
    let lab = lab!(2);
    let path = lock_path(&lab, "lab-01");
    assert!(!path.exists(), "a fresh lab has no lock file");
    let out = Test::new().lab(&lab).args(["unlock", "--yes"]).run();
    assert_eq!(out.stdout, "lab-01  free\nlab-02  free\n");
    assert!(!path.exists(), "reading a lock creates no file");
    let limited = Test::new()
        .lab(&lab)
        .args(["unlock", "--yes", "--limit", "lab-02"])
        .run();
    assert_eq!(limited.stdout, "lab-02  free\n");
}

/// At the first gate after WINCH, breaks the host's lock with `ngfleet unlock --yes` (as an
/// operator would), then takes long: the procedure must stop without waiting for it.
struct BreakTheLock<'l> {
    lab: &'l Lab,
    broken: AtomicBool,
    finished: AtomicBool,
}

impl Gate for BreakTheLock<'_> {
    fn check<'a>(
        &'a self,
        _: &'a dyn Remote,
        _: &'a Host,
        phase: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async move {
            if phase != Phase::AfterWinch || self.broken.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            let out = Test::new().lab(self.lab).args(["unlock", "--yes"]).run();
            if !out.stdout.contains("released") {
                return Err(ngfleet::gate::failure::GateFailure::Unprepared(
                    ngfleet::gate::failure::Saw::Remote(format!(
                        "unlock did not break the lock: {}",
                        out.show()
                    )),
                ));
            }
            tokio::time::sleep(Duration::from_secs(20)).await;
            self.finished.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_loses_its_lock_stops_and_takes_it_again() {
    let lab = lab!(1);
    let gate = BreakTheLock {
        lab: &lab,
        broken: AtomicBool::new(false),
        finished: AtomicBool::new(false),
    };
    let t = Instant::now();
    let run = run_with_gate(&lab, "nginx-new", &gate).await;
    assert!(
        matches!(run.result, Ok(Outcome::Upgraded { .. })),
        "{:?}\n{:#?}",
        run.result,
        run.events
    );
    assert!(gate.broken.load(Ordering::SeqCst));
    assert!(
        !gate.finished.load(Ordering::SeqCst),
        "the step in flight when the lock was lost was abandoned"
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(
        run.locks_taken(),
        2,
        "the lock was taken again on a new connection"
    );
    assert!(is_free(&lock_path(&lab, "lab-01")));
}
