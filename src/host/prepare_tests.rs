//! Prepare and switch on the simulated host: prepare then release leaves the host as it was;
//! prepare then switch upgrades within the critical-path budget of round trips; a refused
//! host is reported with its typed reason and left alone.

use std::sync::Arc;

use super::decide::Problem;
use super::event::{Event, Status};
use super::failure::Blocker;
use super::prepare::{Verdict, prepare_via};
use super::round_trips::RoundTrips;
use super::sim::SimConnect;
use super::upgrade::{Intent, Job, Outcome, ProcessChecksOnly, Settings, Source, UpgradeError};
use super::walk_tests::{assert_settled, host, settings, sha, snapshot, world_at};
use crate::model::inventory::Host;
use crate::model::spec::OnDrainTimeout;

/// The most remote operations a host may cost from its turn (install) to the end.
const CRITICAL_MAX: u32 = 6;

fn source(c: char, machine: u16) -> Source {
    let sha256 = sha(c);
    Source::Local {
        path: format!("/local/{}", &sha256[..4]).into(),
        sha256,
        size: 1000,
        machine: Some(machine),
    }
}

/// What a prepared job borrows: the host, the binary, the settings and the counters.
struct Parts {
    host: Host,
    source: Source,
    settings: Settings,
    trips: RoundTrips,
}

impl Parts {
    fn new(source: Source) -> Parts {
        Parts {
            host: host(),
            source,
            settings: settings(OnDrainTimeout::Proceed),
            trips: RoundTrips::default(),
        }
    }

    fn job(&self) -> Job<'_> {
        Job {
            host: &self.host,
            source: &self.source,
            intent: Intent::Upgrade,
            settings: &self.settings,
            gate: &ProcessChecksOnly,
            round_trips: &self.trips,
        }
    }

    fn connector(&self, w: &Arc<std::sync::Mutex<super::sim::World>>) -> Box<SimConnect> {
        Box::new(SimConnect {
            world: Arc::clone(w),
        })
    }
}

#[tokio::test]
async fn prepare_then_release_leaves_the_host_as_it_was() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    // A host with a history (a record), as after an earlier roll.
    let first = super::walk_tests::run(&w, Intent::Upgrade, &b, super::sim::Cut::Never).await;
    assert!(matches!(first, Ok(Outcome::Upgraded { .. })), "{first:?}");
    let before = snapshot(&w).fingerprint();
    let parts = Parts::new(source('c', 62));
    let trips = &parts.trips;
    let (job, connector) = (parts.job(), parts.connector(&w));
    let prepared = prepare_via(connector, job, &|_| {}).await.expect("prepare");
    assert_eq!(*prepared.verdict(), Verdict::WouldUpgrade);
    assert_eq!(snapshot(&w).staged(), 1, "the new binary is staged");
    assert_eq!(trips.trips().critical, 0, "nothing live changed");
    prepared.release().await;
    assert_eq!(
        snapshot(&w).fingerprint(),
        before,
        "byte-identical after release"
    );
    assert_settled(&w, &b, "released");
}

#[tokio::test]
async fn prepare_then_switch_upgrades_within_the_critical_path_budget() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    let parts = Parts::new(source('b', 62));
    let trips = &parts.trips;
    let events = |e: Event| {
        if e.status == Status::Started && e.step.changes_the_host() {
            trips.mark_turn();
        }
    };
    let (job, connector) = (parts.job(), parts.connector(&w));
    let prepared = prepare_via(connector, job, &events).await.expect("prepare");
    assert_eq!(*prepared.verdict(), Verdict::WouldUpgrade);
    let prepared_ops = trips.trips().total;
    let out = prepared.switch(&events).await;
    assert!(matches!(out, Ok(Outcome::Upgraded { .. })), "{out:?}");
    assert_settled(&w, &b, "switched");
    let t = trips.trips();
    println!(
        "round trips: {} in all ({prepared_ops} to prepare), {} after the turn, {} connection(s)",
        t.total, t.critical, t.connections
    );
    assert!(t.critical <= CRITICAL_MAX, "{t:?}");
    assert_eq!(t.connections, 1, "{t:?}");
    assert_eq!(
        t.total,
        prepared_ops + t.critical,
        "no operation between prepare and the turn"
    );
}

#[tokio::test]
async fn prepare_refuses_with_the_typed_reason_and_changes_nothing() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    let before = snapshot(&w).fingerprint();
    // An aarch64 binary for an x86_64 host.
    let parts = Parts::new(source('b', 183));
    let trips = &parts.trips;
    let (job, connector) = (parts.job(), parts.connector(&w));
    let prepared = prepare_via(connector, job, &|_| {}).await.expect("prepare");
    match prepared.verdict() {
        Verdict::Refused(Blocker::Preflight(problems))
            if matches!(
                problems.as_slice(),
                [Problem::WrongMachine { machine: 183, .. }]
            ) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        prepared
            .verdict()
            .to_string()
            .starts_with("would be refused: the new binary is for"),
        "{}",
        prepared.verdict()
    );
    // Only the lock is held (by the prepared session) until the switch or the release.
    assert_eq!(snapshot(&w).staged(), 0, "nothing staged");
    let out = prepared.switch(&|_| {}).await;
    match out {
        Err(e) => assert!(!e.touched(), "a refused host is not touched: {e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&w).fingerprint(), before, "nothing changed");
    assert_eq!(trips.trips().critical, 0);
    let _ = b;
}

/// nginx stopped while a prepared host waited for its turn: the turn finds the master no
/// longer serving before it changes anything, refuses, and removes its staged file.
#[tokio::test]
async fn a_host_changed_since_its_preparation_is_refused_untouched() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    let parts = Parts::new(source('b', 62));
    let (job, connector) = (parts.job(), parts.connector(&w));
    let prepared = prepare_via(connector, job, &|_| {}).await.expect("prepare");
    assert_eq!(*prepared.verdict(), Verdict::WouldUpgrade);
    let record = snapshot(&w).record();
    w.lock().expect("w").signal_master("QUIT");
    let out = prepared.switch(&|_| {}).await;
    match &out {
        Err(UpgradeError::Refused { reason, .. }) if matches!(**reason, Blocker::Moved { .. }) => {}
        other => panic!("{other:?}"),
    }
    let snap = snapshot(&w);
    assert_eq!(snap.on_disk().as_deref(), Some(a.as_str()), "{b} installed");
    assert_eq!(snap.record(), record, "the record changed");
    assert_eq!(snap.staged(), 0, "a staged file was left");
}
