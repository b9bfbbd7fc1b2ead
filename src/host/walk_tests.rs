//! The per-host procedure against the simulated host: every interruption point of an
//! upgrade, of a rollback while two masters live and of a rollback after commit, each
//! followed by `roll` again and, separately, `rollback` again; multi-step histories; slow
//! clients. Each case checks the host itself (running, disk, masters, `.oldbin`, staged
//! files, strays, the record).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::direction::{Refusal, Skip};
use super::failure::{Blocker, Judged};
use super::procedure::Procedure;
use super::sim::{Behaviour, Cut, SimSession, World};
use super::upgrade::{
    Back, Deadlines, Intent, Job, Outcome, ProcessChecksOnly, Settings, Source, UpgradeError,
};
use crate::model::inventory::{Host, Inventory};
use crate::model::spec::OnDrainTimeout;

pub(super) fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

pub(super) fn host() -> Host {
    let inv = Inventory::parse(
        "sim.yaml",
        "all:\n  hosts:\n    sim:\n      nginx_binary: /srv/sbin/nginx\n      nginx_pid_file: /srv/logs/nginx.pid\n",
    )
    .expect("inventory");
    inv.host(0).clone()
}

pub(super) fn settings(on_drain_timeout: OnDrainTimeout) -> Settings {
    let ms = Duration::from_millis;
    Settings {
        deadlines: Deadlines {
            command: ms(500),
            start: ms(60),
            drain: ms(60),
            quit: ms(120),
        },
        on_drain_timeout,
        run_id: "run-1".into(),
        owner: "walk".into(),
        attempts: 1,
        keep_backups: super::upgrade::KEEP_BACKUPS,
        upload_floor: super::upgrade::UPLOAD_FLOOR,
    }
}

pub(super) static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// One run of the procedure on the simulated host.
pub(super) async fn run_with(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    cut: Cut,
    drain: OnDrainTimeout,
) -> Result<Outcome, UpgradeError> {
    run_gated(world, intent, sha256, cut, drain, &ProcessChecksOnly).await
}

/// One run of the procedure on the simulated host, with `gate` as the spec's gates.
pub(super) async fn run_gated(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    cut: Cut,
    drain: OnDrainTimeout,
    gate: &dyn super::upgrade::Gate,
) -> Result<Outcome, UpgradeError> {
    run_observed(world, intent, sha256, cut, &settings(drain), gate, &|_| {}).await
}

/// One run of the procedure on the simulated host, with its settings, gates and events.
pub(super) async fn run_observed(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    cut: Cut,
    settings: &Settings,
    gate: &dyn super::upgrade::Gate,
    events: &(dyn Fn(super::event::Event) + Sync),
) -> Result<Outcome, UpgradeError> {
    let session = SimSession::new(
        Arc::clone(world),
        SESSIONS.fetch_add(1, Ordering::Relaxed),
        cut,
    );
    let host = host();
    let source = match intent {
        Intent::Rollback => Source::Remote {
            path: String::new(),
            sha256: sha256.to_owned(),
        },
        _ => Source::Local {
            path: format!("/local/{}", &sha256[..4]).into(),
            sha256: sha256.to_owned(),
            size: 1000,
            machine: Some(62),
        },
    };
    let job = Job {
        host: &host,
        source: &source,
        intent,
        settings,
        gate,
        round_trips: &super::round_trips::RoundTrips::default(),
    };
    let procedure = Procedure {
        remote: &session,
        job,
        events,
    };
    procedure.run().await
}

pub(super) async fn run(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    cut: Cut,
) -> Result<Outcome, UpgradeError> {
    run_with(world, intent, sha256, cut, OnDrainTimeout::Proceed).await
}

pub(super) fn world_at(sha: &str) -> Arc<Mutex<World>> {
    let mut w = World::steady(sha);
    for c in ['a', 'b', 'c', 'd'] {
        w.local(&format!("/local/{}", &self::sha(c)[..4]), &self::sha(c));
    }
    Arc::new(Mutex::new(w))
}

pub(super) fn snapshot(world: &Arc<Mutex<World>>) -> World {
    world.lock().expect("world").clone()
}

pub(super) fn fork(world: &Arc<Mutex<World>>) -> Arc<Mutex<World>> {
    Arc::new(Mutex::new(snapshot(world)))
}

/// The host runs `want`, on disk too, one serving master, nothing left over, and its record
/// says so.
pub(super) fn assert_settled(world: &Arc<Mutex<World>>, want: &str, context: &str) {
    let w = snapshot(world);
    let short = |s: Option<String>| s.map(|s| s[..4].to_owned());
    assert_eq!(
        short(w.running()),
        Some(want[..4].to_owned()),
        "{context}: running"
    );
    assert_eq!(
        short(w.on_disk()),
        Some(want[..4].to_owned()),
        "{context}: disk"
    );
    assert_eq!(w.masters(), 1, "{context}: masters\n{w:#?}");
    assert!(!w.has_oldbin(), "{context}: .oldbin");
    assert_eq!(w.staged(), 0, "{context}: staged files");
    assert_eq!(w.strays(), 0, "{context}: stray processes\n{w:#?}");
    assert!(w.serving(), "{context}: serving");
    if let Some(record) = w.record() {
        assert!(
            !record.contains("\nop "),
            "{context}: op in flight\n{record}"
        );
        let last = record
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("history "));
        assert_eq!(last, Some(want), "{context}: record\n{record}");
    }
}

/// Passing gates that check something while both generations serve (as an `error_log`
/// gate does): WINCH then has a command of its own instead of following USR2 on the host.
pub(super) struct CheckedBothServing;

impl super::upgrade::Gate for CheckedBothServing {
    fn check<'a>(
        &'a self,
        _: &'a dyn super::remote::Remote,
        _: &'a Host,
        _: super::upgrade::Phase,
        _: Option<u32>,
    ) -> super::upgrade::GateFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Every interruption point of an uninterrupted run from `world`: before and after each
/// command, and inside each step command after each of its acts but the last.
pub(super) async fn cuts(world: &Arc<Mutex<World>>, intent: Intent, sha256: &str) -> Vec<Cut> {
    cuts_gated(world, intent, sha256, &ProcessChecksOnly).await
}

/// [`cuts`] with `gate` as the spec's gates.
async fn cuts_gated(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    gate: &dyn super::upgrade::Gate,
) -> Vec<Cut> {
    let w = fork(world);
    let before = snapshot(&w).commands;
    run_gated(
        &w,
        intent,
        sha256,
        Cut::Never,
        OnDrainTimeout::Proceed,
        gate,
    )
    .await
    .expect("clean run");
    let after = snapshot(&w);
    let mut cuts = Vec::new();
    for k in 1..=after.commands - before {
        cuts.push(Cut::Before(k));
        let acts = after.acts.get(&(before + k)).copied().unwrap_or(0);
        cuts.extend((1..acts).map(|j| Cut::Inside(k, j)));
        cuts.push(Cut::After(k));
    }
    cuts
}

/// Interrupts `intent` at every point of [`cuts`], then runs `roll` (to `target`) and
/// `rollback` (from `target`) again from each resulting state.
async fn walk(
    start: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    (origin, target): (&str, &str),
    gate: &dyn super::upgrade::Gate,
) -> usize {
    let all = cuts_gated(start, intent, sha256, gate).await;
    assert!(
        all.len() > 10,
        "a run has several interruption points ({all:?})"
    );
    let mut points = 0;
    {
        for cut in all {
            let cut_world = fork(start);
            let base = snapshot(&cut_world).commands;
            let at = cut.from(base);
            let drain = OnDrainTimeout::Proceed;
            let first = run_gated(&cut_world, intent, sha256, at, drain, gate).await;
            assert!(
                first.is_err(),
                "{intent:?} cut at {cut:?} should have lost its connection: {first:?}"
            );
            points += 1;

            let again = fork(&cut_world);
            let out = run_gated(&again, Intent::Upgrade, target, Cut::Never, drain, gate).await;
            let context = format!("{intent:?} cut at {cut:?}, then roll");
            assert!(out.is_ok(), "{context}: {out:?}");
            assert_settled(&again, target, &context);

            let back = fork(&cut_world);
            let out = run(&back, Intent::Rollback, target, Cut::Never).await;
            let context = format!("{intent:?} cut at {cut:?}, then rollback");
            match out {
                Ok(Outcome::RolledBack { .. }) => {}
                // Cut before the upgrade touched anything: nothing to go back from.
                Ok(Outcome::NotApplicable { .. })
                    if snapshot(&back).running().as_deref() == Some(origin) => {}
                other => panic!("{context}: {other:?}"),
            }
            assert_settled(&back, origin, &context);
        }
    }
    points
}

#[tokio::test]
async fn every_interruption_point_converges() {
    let (a, b) = (sha('a'), sha('b'));
    let mut points = 0;

    // An upgrade A -> B: WINCH in the start command (nothing is checked with both
    // generations serving), and in a command of its own.
    let fresh = world_at(&a);
    points += walk(&fresh, Intent::Upgrade, &b, (&a, &b), &ProcessChecksOnly).await;
    points += walk(&fresh, Intent::Upgrade, &b, (&a, &b), &CheckedBothServing).await;

    // A rollback while two masters live (the upgrade waits for its commit).
    let deferred = world_at(&a);
    let out = run(&deferred, Intent::UpgradeDeferCommit, &b, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::AwaitingCommit { .. })), "{out:?}");
    assert_eq!(snapshot(&deferred).masters(), 2);
    points += walk(
        &deferred,
        Intent::Rollback,
        &b,
        (&a, &b),
        &ProcessChecksOnly,
    )
    .await;

    // A rollback after commit (a reverse upgrade to the version before).
    let committed = world_at(&a);
    let out = run(&committed, Intent::Upgrade, &b, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::Upgraded { .. })), "{out:?}");
    points += walk(
        &committed,
        Intent::Rollback,
        &b,
        (&a, &b),
        &ProcessChecksOnly,
    )
    .await;

    println!("walked {points} interruption points, each followed by roll and by rollback");
    // 56 since the lock carries the first observation and the upload the check (one
    // command fewer each); fewer means a command went unwalked.
    assert!(points >= 80, "walked only {points} points");
}

#[tokio::test]
async fn rollback_walks_back_through_the_history_and_never_forward() {
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    let w = world_at(&a);
    assert!(matches!(
        run(&w, Intent::Upgrade, &b, Cut::Never).await,
        Ok(Outcome::Upgraded { .. })
    ));
    assert!(matches!(
        run(&w, Intent::Upgrade, &c, Cut::Never).await,
        Ok(Outcome::Upgraded { .. })
    ));
    assert_settled(&w, &c, "at C");
    let out = run(&w, Intent::Rollback, &c, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
    assert_settled(&w, &b, "C back to B");
    // Issue 10's scenario 1: the host is on B; rolling B back goes to A, never to C.
    let out = run(&w, Intent::Rollback, &b, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
    assert_settled(&w, &a, "B back to A");
    // Nothing earlier: a no-op that says so.
    let out = run(&w, Intent::Rollback, &a, Cut::Never).await;
    match out {
        Ok(Outcome::NotApplicable {
            reason: Skip::NoEarlier { .. },
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_settled(&w, &a, "still A");
    // A rollback of a version the host does not run leaves it alone.
    let out = run(&w, Intent::Rollback, &c, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::NotApplicable { .. })), "{out:?}");
    assert_settled(&w, &a, "still A after a rollback of C");
}

#[tokio::test]
async fn a_host_changed_outside_ngfleet_is_refused_by_rollback_and_restarted_by_roll() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    // No record: rollback of what runs refuses, and changes nothing.
    let out = run(&w, Intent::Rollback, &a, Cut::Never).await;
    match out {
        Err(UpgradeError::Refused { reason, .. })
            if matches!(*reason, Blocker::Host(Refusal::NoRecord)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&w).record(), None);
    // roll starts a history from what runs; then rollback goes back to it.
    assert!(run(&w, Intent::Upgrade, &b, Cut::Never).await.is_ok());
    let record = snapshot(&w).record().expect("record");
    assert!(
        record.contains(&format!("history {a}\nhistory {b}\n")),
        "{record}"
    );
    assert!(matches!(
        run(&w, Intent::Rollback, &b, Cut::Never).await,
        Ok(Outcome::RolledBack { .. })
    ));
    assert_settled(&w, &a, "back on A");
}

#[tokio::test]
async fn failures_go_back_to_where_the_host_started() {
    let (a, b) = (sha('a'), sha('b'));
    for behaviour in [Behaviour::Exits, Behaviour::Hangs] {
        let w = world_at(&a);
        w.lock().expect("w").behaviour(&b, behaviour);
        let out = run(&w, Intent::Upgrade, &b, Cut::Never).await;
        match (behaviour, &out) {
            (
                Behaviour::Exits,
                Ok(Outcome::RolledBack {
                    reason: Back::Failed(Judged::Exited { .. }),
                }),
            )
            | (
                Behaviour::Hangs,
                Ok(Outcome::RolledBack {
                    reason: Back::Failed(Judged::NotReady { .. }),
                }),
            ) => {}
            other => panic!("{behaviour:?}: {other:?}"),
        }
        assert_settled(&w, &a, &format!("{behaviour:?}"));
    }
}

#[tokio::test]
async fn a_slow_client_is_not_a_failure() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    w.lock().expect("w").slow_clients = true;
    let out = run(&w, Intent::Upgrade, &b, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::Upgraded { .. })), "{out:?}");
    {
        let s = snapshot(&w);
        assert_eq!(s.running(), Some(b.clone()));
        assert!(s.serving());
        // The old master finishes its connection, then exits by itself.
        assert_eq!(s.masters(), 2);
        assert!(s.has_oldbin());
    }
    // A second roll to the same target sees it arrived; a roll elsewhere would wait.
    assert!(matches!(
        run(&w, Intent::Upgrade, &b, Cut::Never).await,
        Ok(Outcome::AlreadyAtTarget)
    ));
    let out = run(&w, Intent::Rollback, &b, Cut::Never).await;
    match out {
        Err(UpgradeError::Refused { reason, .. })
            if matches!(*reason, Blocker::StillDraining { .. }) => {}
        other => panic!("{other:?}"),
    }
    w.lock().expect("w").release_slow_clients();
    assert_settled(&w, &b, "after the slow client ended");

    // `fail` keeps the old behaviour: the host goes back.
    let w = world_at(&a);
    w.lock().expect("w").slow_clients = true;
    let out = run_with(&w, Intent::Upgrade, &b, Cut::Never, OnDrainTimeout::Fail).await;
    assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
    assert_eq!(snapshot(&w).running(), Some(a.clone()));

    // `terminate` cuts the old workers and commits.
    let w = world_at(&a);
    w.lock().expect("w").slow_clients = true;
    let out = run_with(
        &w,
        Intent::Upgrade,
        &b,
        Cut::Never,
        OnDrainTimeout::Terminate,
    )
    .await;
    assert!(matches!(out, Ok(Outcome::Upgraded { .. })), "{out:?}");
    assert_settled(&w, &b, "terminate");
}

#[tokio::test]
async fn a_second_controller_is_refused() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    // A first controller holds the lock (its run is cut after it took the lock, but this
    // session is kept alive by hand).
    let holder = SimSession::new(Arc::clone(&w), 999_999, Cut::Never);
    let cmd = super::lock::lock(
        &super::scripts::Layout::plain("/srv/sbin/nginx".parse().expect("path")),
        "other controller",
        crate::ssh::Heartbeat::DEFAULT,
    );
    let claim = super::remote::Remote::hold(&holder, &cmd, "locked", Duration::from_secs(1))
        .await
        .expect("hold");
    assert!(matches!(claim, super::remote::Claim::Held { .. }));
    let out = run(&w, Intent::Upgrade, &b, Cut::Never).await;
    match out {
        Err(UpgradeError::Locked { owner, .. }) => assert_eq!(owner, "other controller"),
        other => panic!("{other:?}"),
    }
    assert_settled(&w, &a, "untouched");
}

#[tokio::test]
async fn orphans_of_a_killed_new_master_are_found_and_killed() {
    let (a, b) = (sha('a'), sha('b'));
    for (intent, want) in [(Intent::Upgrade, &b), (Intent::Rollback, &a)] {
        let w = world_at(&a);
        let out = run(&w, Intent::UpgradeDeferCommit, &b, Cut::Never).await;
        assert!(matches!(out, Ok(Outcome::AwaitingCommit { .. })), "{out:?}");
        // Someone kills the new master with SIGKILL: its worker is orphaned and still accepts.
        w.lock().expect("w").signal_master("KILL");
        assert!(snapshot(&w).strays() > 0, "an orphan is left");
        let out = run(&w, intent, &b, Cut::Never).await;
        assert!(out.is_ok(), "{intent:?}: {out:?}");
        assert_settled(
            &w,
            want,
            &format!("{intent:?} after the new master was killed"),
        );
    }
}
