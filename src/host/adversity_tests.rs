//! Adversarial scenarios on the simulated host, beyond the single-interruption walk: two
//! interruptions in a row, failing binaries and slow clients combined with an interruption,
//! a retry after a turn-back, a rollback of a version not in flight, a revert before WINCH.

use std::sync::{Arc, Mutex};

use super::failure::{Blocker, Fault};
use super::remote::Remote;
use super::sim::{Behaviour, Cut, World};
use super::upgrade::{Gate, GateFuture, Intent, Outcome, Phase, UpgradeError};
use super::walk_tests::{assert_settled, fork, run, run_gated, sha, snapshot, world_at};
use crate::gate::failure::{GateFailure, Saw};
use crate::model::inventory::Host;
use crate::model::spec::OnDrainTimeout;

/// A spec gate that fails in one phase.
struct FailAt(Phase);

impl Gate for FailAt {
    fn check<'a>(
        &'a self,
        _: &'a dyn Remote,
        _: &'a Host,
        phase: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        let fail = phase == self.0;
        Box::pin(async move {
            if fail {
                Err(GateFailure::Failed {
                    gate: format!("{phase:?}"),
                    saw: Saw::Remote("says no".into()),
                    tries: 1,
                    elapsed: std::time::Duration::ZERO,
                })
            } else {
                Ok(())
            }
        })
    }
}

fn cut_at(world: &Arc<Mutex<World>>, k: usize) -> Cut {
    Cut::After(snapshot(world).commands + k)
}

/// 1. A roll left a hung new binary (cut right after USR2); `rollback` then takes the host
/// back to A as asked, but reports an error.
#[tokio::test]
async fn a_rollback_that_kills_a_leftover_hung_binary_is_a_rollback() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    w.lock().unwrap().behaviour(&b, Behaviour::Hangs);
    for k in 1..60 {
        let cw = fork(&w);
        let at = cut_at(&cw, k);
        let _ = run(&cw, Intent::Upgrade, &b, at).await;
        if snapshot(&cw).strays() == 0 {
            continue;
        }
        let out = run(&cw, Intent::Rollback, &b, Cut::Never).await;
        assert_settled(&cw, &a, "rollback after a hung binary");
        println!("host is back on A, settled; outcome = {out:?}");
        assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
        return;
    }
    panic!("no hung binary found");
}

/// 2. A roll whose final (after-commit) gate fails turns back (reverse upgrade to A). The
/// connection drops during the reverse upgrade; `converge` runs the procedure again with
/// the same job (roll B). The host ends on B, reported Upgraded, gates never re-run.
#[tokio::test]
async fn a_retry_after_a_failed_final_gate_never_lands_on_the_failed_build() {
    let (a, b) = (sha('a'), sha('b'));
    let gate = FailAt(Phase::AfterCommit);
    let mut bad = Vec::new();
    for k in 1..80 {
        let cw = world_at(&a);
        let at = cut_at(&cw, k);
        let first = run_gated(&cw, Intent::Upgrade, &b, at, OnDrainTimeout::Proceed, &gate).await;
        if first.is_ok() {
            break; // past the end of the run
        }
        // Only points inside the turn-back (the reverse upgrade's op is in flight).
        if !snapshot(&cw)
            .record()
            .unwrap_or_default()
            .contains("op rollback")
        {
            continue;
        }
        // converge: same job, new connection.
        let again = run_gated(
            &cw,
            Intent::Upgrade,
            &b,
            Cut::Never,
            OnDrainTimeout::Proceed,
            &gate,
        )
        .await;
        let s = snapshot(&cw);
        if matches!(again, Ok(Outcome::Upgraded { .. })) || s.running() == Some(b.clone()) {
            bad.push(format!(
                "cut after cmd {k}: retry -> {again:?}, running {:?}",
                s.running().map(|x| x[..4].to_owned())
            ));
        }
    }
    for l in &bad {
        println!("{l}");
    }
    assert!(
        bad.is_empty(),
        "{} retries ended on the build that failed its final gate",
        bad.len()
    );
}

/// 3. Slow clients (on_drain_timeout: proceed, the default) and a final gate that fails: the
/// turn-back waits for the old master's drain and gives up. That is not "refused before any
/// change": the error says the host was touched, so `converge` judges it (two masters:
/// unrestored).
#[tokio::test]
async fn a_failed_final_gate_with_a_slow_client_is_unrestored_not_refused() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    w.lock().unwrap().slow_clients = true;
    let gate = FailAt(Phase::AfterCommit);
    let out = run_gated(
        &w,
        Intent::Upgrade,
        &b,
        Cut::Never,
        OnDrainTimeout::Proceed,
        &gate,
    )
    .await;
    match out {
        Err(e) => assert!(e.touched(), "a touched host's error is judged: {e}"),
        Ok(o) => panic!("{o:?}"),
    }
    let s = snapshot(&w);
    assert_eq!(
        s.masters(),
        2,
        "the old master is still finishing its connection"
    );
}

/// 4. A rollback acts only on an operation that takes on the version it names: on a host
/// mid B -> C (deferred commit), `rollback --binary A` and `--binary B` leave it alone;
/// `--binary C` undoes the upgrade to C, back to B.
#[tokio::test]
async fn a_rollback_acts_only_on_the_version_it_names() {
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    let w = world_at(&a);
    assert!(matches!(
        run(&w, Intent::Upgrade, &b, Cut::Never).await,
        Ok(Outcome::Upgraded { .. })
    ));
    let out = run(&w, Intent::UpgradeDeferCommit, &c, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::AwaitingCommit { .. })), "{out:?}");
    for other in [&a, &b] {
        let f = fork(&w);
        let out = run(&f, Intent::Rollback, other, Cut::Never).await;
        assert!(matches!(out, Ok(Outcome::NotApplicable { .. })), "{out:?}");
        assert_eq!(snapshot(&f).masters(), 2, "left alone");
        assert_eq!(snapshot(&f).running(), Some(c.clone()));
    }
    let out = run(&w, Intent::Rollback, &c, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
    assert_settled(&w, &b, "rollback of C");
}

fn describe(w: &World) -> String {
    format!(
        "running {:?} disk {:?} masters {} oldbin {} staged {} strays {}",
        w.running().map(|x| x[..4].to_owned()),
        w.on_disk().map(|x| x[..4].to_owned()),
        w.masters(),
        w.has_oldbin(),
        w.staged(),
        w.strays()
    )
}

/// Command count of a clean run (from a copy).
async fn count(world: &Arc<Mutex<World>>, intent: Intent, sha256: &str) -> usize {
    let w = fork(world);
    let before = snapshot(&w).commands;
    let _ = run(&w, intent, sha256, Cut::Never).await;
    snapshot(&w).commands - before
}

/// Follow-ups from a state: roll B -> B; rollback B -> A (or left alone on A); roll C -> C.
async fn follow_ups(w: &Arc<Mutex<World>>, ctx: &str, failures: &mut Vec<String>) {
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    for (intent, s, want) in [
        (Intent::Upgrade, &b, &b),
        (Intent::Rollback, &b, &a),
        (Intent::Upgrade, &c, &c),
    ] {
        let f = fork(w);
        let out = run(&f, intent, s, Cut::Never).await;
        let ok_out = matches!(
            (intent, &out),
            (
                Intent::Rollback,
                Ok(Outcome::RolledBack { .. } | Outcome::NotApplicable { .. })
            ) | (Intent::Upgrade, Ok(_))
        );
        let r = std::panic::catch_unwind(|| assert_settled(&f, want, "x"));
        if !ok_out || r.is_err() {
            failures.push(format!(
                "{ctx}; then {intent:?} {}: {out:?}; host: {}",
                &s[..4],
                describe(&snapshot(&f))
            ));
        }
    }
}

/// 5. Two interruptions in a row: an upgrade A->B cut at k1, then roll B or rollback B cut
/// at k2, then roll B / rollback B / roll C.
#[tokio::test]
async fn two_interruptions_in_a_row_converge() {
    let (a, b) = (sha('a'), sha('b'));
    let mut failures = Vec::new();
    let mut points = 0;
    let starts: Vec<(&str, Arc<Mutex<World>>, Intent)> = {
        let fresh = world_at(&a);
        let deferred = world_at(&a);
        let _ = run(&deferred, Intent::UpgradeDeferCommit, &b, Cut::Never).await;
        let committed = world_at(&a);
        let _ = run(&committed, Intent::Upgrade, &b, Cut::Never).await;
        vec![
            ("roll A->B", fresh, Intent::Upgrade),
            ("deferred, rollback", deferred, Intent::Rollback),
            ("committed, rollback", committed, Intent::Rollback),
        ]
    };
    for (name, start, first) in &starts {
        let n1 = count(start, *first, &b).await;
        for k1 in 1..=n1 {
            for c1 in [Cut::Before(k1), Cut::After(k1)] {
                let s1 = fork(start);
                let base = snapshot(&s1).commands;
                let at = c1.from(base);
                let _ = run(&s1, *first, &b, at).await;
                for second in [Intent::Upgrade, Intent::Rollback] {
                    let n2 = count(&s1, second, &b).await;
                    for k2 in 1..=n2 {
                        for c2 in [Cut::Before(k2), Cut::After(k2)] {
                            let s2 = fork(&s1);
                            let base = snapshot(&s2).commands;
                            let at = c2.from(base);
                            let _ = run(&s2, second, &b, at).await;
                            points += 1;
                            let ctx = format!("{name} cut {c1:?}, then {second:?} cut {c2:?}");
                            follow_ups(&s2, &ctx, &mut failures).await;
                        }
                    }
                }
            }
        }
    }
    println!(
        "walked {points} double interruptions; {} failures",
        failures.len()
    );
    for f in failures.iter().take(25) {
        println!("{f}");
    }
    assert!(failures.is_empty());
}

/// 6. A failing new binary (Exits / Hangs) combined with an interruption anywhere, then roll
/// B / rollback B / roll C.
#[tokio::test]
async fn a_failing_binary_and_an_interruption_converge() {
    let (a, b) = (sha('a'), sha('b'));
    let mut failures = Vec::new();
    for beh in [Behaviour::Exits, Behaviour::Hangs] {
        let start = world_at(&a);
        start.lock().unwrap().behaviour(&b, beh);
        let n = count(&start, Intent::Upgrade, &b).await;
        for k in 1..=n {
            for c in [Cut::Before(k), Cut::After(k)] {
                let s1 = fork(&start);
                let base = snapshot(&s1).commands;
                let at = c.from(base);
                let _ = run(&s1, Intent::Upgrade, &b, at).await;
                // roll B again must end back on A (B fails again), reported RolledBack.
                let f = fork(&s1);
                let out = run(&f, Intent::Upgrade, &b, Cut::Never).await;
                let ok = matches!(
                    out,
                    Ok(Outcome::RolledBack { .. }) | Ok(Outcome::AlreadyAtTarget)
                ) && std::panic::catch_unwind(|| assert_settled(&f, &a, "x")).is_ok();
                if !ok {
                    failures.push(format!(
                        "{beh:?} cut {c:?}; roll B: {out:?}; {}",
                        describe(&snapshot(&f))
                    ));
                }
                let f = fork(&s1);
                let out = run(&f, Intent::Rollback, &b, Cut::Never).await;
                let ok = matches!(
                    out,
                    Ok(Outcome::RolledBack { .. }) | Ok(Outcome::NotApplicable { .. })
                ) && std::panic::catch_unwind(|| assert_settled(&f, &a, "x")).is_ok();
                if !ok {
                    failures.push(format!(
                        "{beh:?} cut {c:?}; rollback B: {out:?}; {}",
                        describe(&snapshot(&f))
                    ));
                }
                let f = fork(&s1);
                let cc = sha('c');
                let out = run(&f, Intent::Upgrade, &cc, Cut::Never).await;
                let ok = matches!(out, Ok(Outcome::Upgraded { .. }))
                    && std::panic::catch_unwind(|| assert_settled(&f, &cc, "x")).is_ok();
                if !ok {
                    failures.push(format!(
                        "{beh:?} cut {c:?}; roll C: {out:?}; {}",
                        describe(&snapshot(&f))
                    ));
                }
            }
        }
    }
    for f in &failures {
        println!("{f}");
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
}

/// 7. Slow clients everywhere: an upgrade A->B cut at every point (proceed / terminate),
/// then roll B, rollback B, roll C with the slow client still there; then the client ends.
#[tokio::test]
async fn slow_clients_and_interruptions_converge() {
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    let mut failures = Vec::new();
    let mut points = 0;
    for (label, deferred) in [("roll", false), ("deferred", true)] {
        let start = world_at(&a);
        start.lock().unwrap().slow_clients = true;
        if deferred {
            let out = run(&start, Intent::UpgradeDeferCommit, &b, Cut::Never).await;
            assert!(matches!(out, Ok(Outcome::AwaitingCommit { .. })), "{out:?}");
        }
        let first = if deferred {
            Intent::Rollback
        } else {
            Intent::Upgrade
        };
        let n = count(&start, first, &b).await;
        for k in 1..=n {
            for cut in [Cut::Before(k), Cut::After(k)] {
                let s1 = fork(&start);
                let base = snapshot(&s1).commands;
                let at = cut.from(base);
                let _ = run(&s1, first, &b, at).await;
                points += 1;
                for (intent, s, want) in [
                    (Intent::Upgrade, &b, &b),
                    (Intent::Rollback, &b, &a),
                    (Intent::Upgrade, &c, &c),
                ] {
                    let f = fork(&s1);
                    let out = run(&f, intent, s, Cut::Never).await;
                    let mid = describe(&snapshot(&f));
                    f.lock().unwrap().release_slow_clients();
                    let ok = match &out {
                        Ok(Outcome::NotApplicable { .. }) | Err(UpgradeError::Refused { .. }) => {
                            // left alone / waiting for a drain: the host must still be sane.
                            std::panic::catch_unwind(|| {
                                let w = snapshot(&f);
                                assert!(
                                    w.serving()
                                        && w.strays() == 0
                                        && w.masters() == 1
                                        && !w.has_oldbin()
                                );
                                assert!(w.running() == w.on_disk());
                            })
                            .is_ok()
                        }
                        // Waiting for the old master's drain gave up: the host must be sane.
                        Err(UpgradeError::Remote { fault, .. })
                            if matches!(**fault, Fault::Refused(Blocker::StillDraining { .. })) =>
                        {
                            std::panic::catch_unwind(|| {
                                let w = snapshot(&f);
                                assert!(
                                    w.serving()
                                        && w.strays() == 0
                                        && w.masters() == 1
                                        && !w.has_oldbin()
                                );
                                assert!(w.running() == w.on_disk());
                            })
                            .is_ok()
                        }
                        Ok(_) => std::panic::catch_unwind(|| assert_settled(&f, want, "x")).is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        failures.push(format!(
                            "{label} {first:?} cut {cut:?}; then {intent:?} {}: {out:?}; host (slow client on): {mid}; after it ended: {}",
                            &s[..4],
                            describe(&snapshot(&f))
                        ));
                    }
                }
            }
        }
    }
    println!(
        "walked {points} points with slow clients; {} failures",
        failures.len()
    );
    for f in failures.iter().take(30) {
        println!("{f}");
    }
    assert!(failures.is_empty());
}

/// 8. Deferred commit A->B while a slow client holds one of B's connections. A rollback is
/// cut right after it sent QUIT to the new master B (B now shuts down gracefully, waiting
/// for that client). `roll B` then "commits": QUIT to A as well. Nothing accepts any more,
/// the run says Upgraded, and when the clients end no nginx is left.
#[tokio::test]
async fn a_quitting_new_master_is_never_committed() {
    let (a, b) = (sha('a'), sha('b'));
    let start = world_at(&a);
    start.lock().unwrap().slow_clients = true;
    let out = run(&start, Intent::UpgradeDeferCommit, &b, Cut::Never).await;
    assert!(matches!(out, Ok(Outcome::AwaitingCommit { .. })), "{out:?}");
    for k in super::walk_tests::cuts(&start, Intent::Rollback, &b).await {
        let w = fork(&start);
        let at = k.from(snapshot(&w).commands);
        let _ = run(&w, Intent::Rollback, &b, at).await;
        // Stop right after the QUIT to the new master (it is shutting down, still named by
        // the pid file, with its worker finishing a slow connection).
        let s = snapshot(&w);
        if !(s.masters() == 2 && s.running() == Some(b.clone())) {
            continue;
        }
        let probe = format!("{s:?}");
        if !probe.contains("quitting: true") {
            continue;
        }
        println!("rollback cut at {k:?}: {}", describe(&s));
        let out = run(&w, Intent::Upgrade, &b, Cut::Never).await;
        let s = snapshot(&w);
        println!(
            "roll B -> {out:?}\n  then: {} serving={}",
            describe(&s),
            s.serving()
        );
        w.lock().unwrap().release_slow_clients();
        let s = snapshot(&w);
        println!(
            "  after the slow clients end: {} serving={}",
            describe(&s),
            s.serving()
        );
        assert!(s.serving(), "no nginx left");
        return;
    }
    panic!("state not reached");
}

/// 9. A failure while both generations serve (before WINCH): the revert HUPs an old master
/// that still has all its workers; nginx then starts a second set (worker_processes more).
#[tokio::test]
async fn a_revert_before_winch_keeps_one_set_of_workers() {
    let (a, b) = (sha('a'), sha('b'));
    let w = world_at(&a);
    let workers = |w: &World| format!("{w:?}").matches("Worker {").count();
    println!("workers before: {}", workers(&snapshot(&w)));
    let gate = FailAt(Phase::BothServing);
    let out = run_gated(
        &w,
        Intent::Upgrade,
        &b,
        Cut::Never,
        OnDrainTimeout::Proceed,
        &gate,
    )
    .await;
    assert!(matches!(out, Ok(Outcome::RolledBack { .. })), "{out:?}");
    assert_settled(&w, &a, "rolled back");
    println!("workers after the revert: {}", workers(&snapshot(&w)));
    assert_eq!(workers(&snapshot(&w)), 1);
}
