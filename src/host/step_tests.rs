//! The step wrapper on the simulated host: every `started` has exactly one `done` or
//! `failed`, steps never overlap, and a step that stops on a `?` (the upload or the WINCH
//! command losing the connection) or is dropped still says `failed`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::event::{Event, Status, Step};
use super::failure::Judged;
use super::sim::{Behaviour, Cut, World};
use super::step::INTERRUPTED;
use super::upgrade::{
    Back, FOLDED_DRAIN, Gate, Intent, Outcome, ProcessChecksOnly, Settings, UpgradeError,
};
use super::walk_tests::{CheckedBothServing, run, run_observed, settings, sha, snapshot, world_at};
use crate::model::spec::OnDrainTimeout;

/// One run, with the events it emitted.
async fn recorded(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    cut: Cut,
    settings: &Settings,
) -> (Result<Outcome, UpgradeError>, Vec<Event>) {
    recorded_gated(world, intent, sha256, cut, settings, &ProcessChecksOnly).await
}

/// [`recorded`] with `gate` as the spec's gates.
async fn recorded_gated(
    world: &Arc<Mutex<World>>,
    intent: Intent,
    sha256: &str,
    cut: Cut,
    settings: &Settings,
    gate: &dyn Gate,
) -> (Result<Outcome, UpgradeError>, Vec<Event>) {
    let events = Mutex::new(Vec::new());
    let sink = |e: Event| events.lock().expect("events").push(e);
    let out = run_observed(world, intent, sha256, cut, settings, gate, &sink).await;
    (out, events.into_inner().expect("events"))
}

/// Steps open and close in turn: no step inside another, each `started` closed exactly
/// once. Returns the steps that failed, with what they said.
fn closed_in_turn(events: &[Event], context: &str) -> Vec<(Step, String)> {
    let mut open: Option<Step> = None;
    let mut failed = Vec::new();
    for e in events {
        match &e.status {
            Status::Note(_) => {}
            Status::Started => {
                assert_eq!(open, None, "{context}: {} started inside another", e.step);
                open = Some(e.step);
            }
            Status::Done | Status::Failed(_) => {
                assert_eq!(open, Some(e.step), "{context}: {e} closes no open step");
                open = None;
                if let Status::Failed(why) = &e.status {
                    failed.push((e.step, why.clone()));
                }
            }
        }
    }
    assert_eq!(open, None, "{context}: a step never ended");
    failed
}

/// Every cut of an upgrade and of a rollback with two masters: each step ends once, and the
/// step the connection dropped in says `failed` with the run's own error.
#[tokio::test]
async fn every_step_ends_once_wherever_the_connection_drops() {
    let (a, b) = (sha('a'), sha('b'));
    let deferred = world_at(&a);
    let out = run(&deferred, Intent::UpgradeDeferCommit, &b, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::AwaitingCommit { .. })), "{out:?}");
    let mut dropped_in = Vec::new();
    let both: &dyn Gate = &CheckedBothServing;
    for (start, intent, gate) in [
        (
            world_at(&a),
            Intent::Upgrade,
            &ProcessChecksOnly as &dyn Gate,
        ),
        (world_at(&a), Intent::Upgrade, both),
        (deferred, Intent::Rollback, &ProcessChecksOnly),
    ] {
        let base = snapshot(&start).commands;
        for k in 1..200 {
            for cut in [Cut::Before(k), Cut::After(k)] {
                let w = Arc::new(Mutex::new(snapshot(&start)));
                let context = format!("{intent:?} cut at {cut:?}");
                let s = settings(OnDrainTimeout::Proceed);
                let (out, events) = recorded_gated(&w, intent, &b, cut.from(base), &s, gate).await;
                let failed = closed_in_turn(&events, &context);
                let Err(e) = out else {
                    continue;
                };
                assert!(e.is_disconnect(), "{context}: {e}");
                // Dropped between steps (an observation): no step was open to fail.
                let Some(Event {
                    step,
                    status: Status::Failed(why),
                    ..
                }) = events
                    .iter()
                    .rev()
                    .find(|e| !matches!(e.status, Status::Note(_)))
                else {
                    continue;
                };
                assert_eq!(*why, e.cause(), "{context}");
                assert_eq!(failed.last().map(|f| f.0), Some(*step), "{context}");
                dropped_in.push(*step);
            }
        }
    }
    // The `?`s that used to skip the event: the upload (stage) and WINCH among them. (USR2
    // goes in the install's command: a cut there is inside the install step, and so is WINCH
    // with only the process checks; the gate step then makes no command of its own.)
    for step in [
        Step::Lock,
        Step::Stage,
        Step::Install,
        Step::Winch,
        Step::Commit,
        Step::Revert,
    ] {
        assert!(dropped_in.contains(&step), "no cut inside {step}");
    }
}

/// A judged failure fails its step with the judgement, and the run goes back.
#[tokio::test]
async fn a_binary_that_exits_fails_usr2_and_the_run_reverts() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    w.lock().expect("w").behaviour(&b, Behaviour::Exits);
    let s = settings(OnDrainTimeout::Proceed);
    let (out, events) = recorded(&w, Intent::Upgrade, &b, Cut::Never, &s).await;
    let failed = closed_in_turn(&events, "exits");
    assert!(
        matches!(
            &out,
            Ok(Outcome::RolledBack {
                reason: Back::Failed(Judged::Exited { .. })
            })
        ),
        "{out:?}"
    );
    assert!(
        matches!(failed.as_slice(), [(Step::Usr2, why)] if why.starts_with("the new binary exited at start")),
        "{failed:?}"
    );
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e.status == Status::Done)
        .map(|e| e.step.name())
        .collect();
    assert_eq!(
        steps,
        ["lock", "preflight", "stage", "install", "restore", "record"]
    );
}

/// A drain longer than the start command waits for (a slow client) goes on in the winch
/// step's own command for the rest of the deadline: the host is shown draining, and the
/// deadline is not waited twice.
#[tokio::test(start_paused = true)]
async fn a_long_drain_goes_on_in_the_winch_step() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    w.lock().expect("w").slow_clients = true;
    let mut s = settings(OnDrainTimeout::Proceed);
    s.deadlines.drain = FOLDED_DRAIN * 3;
    let before = snapshot(&w).waited_in_all();
    let (out, events) = recorded(&w, Intent::Upgrade, &b, Cut::Never, &s).await;
    assert!(matches!(out, Ok(Outcome::Upgraded { .. })), "{out:?}");
    closed_in_turn(&events, "long drain");
    assert!(
        events.iter().any(|e| e.step == Step::Winch
            && matches!(&e.status, Status::Note(n) if n.contains("still finishing connections after 3s"))),
        "{events:#?}"
    );
    assert_eq!(snapshot(&w).waited_in_all() - before, s.deadlines.drain);
}

/// A run stopped in the middle of a step (its future dropped: the lock was lost) still ends
/// the step, as interrupted.
#[tokio::test]
async fn a_step_dropped_midway_says_it_was_interrupted() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    w.lock().expect("w").behaviour(&b, Behaviour::Hangs);
    let mut s = settings(OnDrainTimeout::Proceed);
    s.deadlines.start = Duration::from_secs(30);
    let events = Mutex::new(Vec::new());
    let sink = |e: Event| events.lock().expect("events").push(e);
    let run = run_observed(
        &w,
        Intent::Upgrade,
        &b,
        Cut::Never,
        &s,
        &ProcessChecksOnly,
        &sink,
    );
    let stopped = tokio::time::timeout(Duration::from_millis(300), run).await;
    assert!(stopped.is_err(), "the run waits for a hung binary");
    let events = events.into_inner().expect("events");
    let failed = closed_in_turn(&events, "dropped");
    // The host waits for the new master inside the install's command (install and USR2 are
    // one round trip).
    assert_eq!(failed, [(Step::Install, INTERRUPTED.to_owned())]);
}

/// A run resumed after USR2 (the controller died) with a new master that lost its workers
/// (nginx: "exited with fatal code 2 and cannot be respawned") never sends WINCH: the old
/// workers keep serving and the run goes back.
#[tokio::test]
async fn a_resumed_drain_never_winches_without_a_serving_new_master() {
    let (a, b) = (sha('a'), sha('b'));
    let s = settings(OnDrainTimeout::Proceed);
    for k in 1..12 {
        let w = world_at(&a);
        let base = snapshot(&w).commands;
        // Check, record, install, record, USR2: then the connection drops.
        let _ = recorded(&w, Intent::Upgrade, &b, Cut::Inside(k, 5).from(base), &s).await;
        if snapshot(&w).masters() != 2 {
            continue;
        }
        // Modelled by WINCH to the new master: its workers leave.
        w.lock().expect("w").signal_master("WINCH");
        let (out, events) = recorded(&w, Intent::Upgrade, &b, Cut::Never, &s).await;
        let winched = events
            .iter()
            .any(|e| e.step == Step::Winch && e.status == Status::Done);
        assert!(!winched, "WINCH sent while the new master served nothing");
        assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
        super::walk_tests::assert_settled(&w, &a, "after the resumed run");
        return;
    }
    panic!("no cut left two masters");
}
