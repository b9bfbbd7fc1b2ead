//! The dispatcher: one event loop, one `select!` over host completions, the operator's
//! signals, the operator's answer at the canary pause and a timer (a window opening, a soak, a
//! pause between batches). It starts hosts wave by wave, at most `parallel` at once, keeps the
//! failure budget, rolls back by scope after a halt, commits deferred hosts when their batch
//! or the rollout passes, and records every result. Hosts run in an [`Executor`]; what it
//! does on a host is not the dispatcher's business.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::ahead::{Ahead, Stopping, WAVES_AHEAD};
use super::config::{CanaryPause, RunConfig};
use super::event::{RolloutEvent, Sink};
use super::outcome::{self, HostResult, JobKind, Ledger, RunEnd};
use super::policy::{self, WindowDecision};
use super::run_state::{Phase, Purpose, Run, Stops, Then};
use super::seams::{Clock, Executor, HostRun, Operator, Readiness};
use crate::host::upgrade::Intent;
use crate::model::spec::{CanaryThen, KeepOldMaster};
use crate::plan::Plan;

pub struct Dispatcher<'a> {
    pub config: &'a RunConfig,
    pub plan: &'a Plan,
    /// A host's name by its inventory index.
    pub names: &'a (dyn Fn(usize) -> String + Sync),
    pub executor: &'a dyn Executor,
    pub sink: &'a dyn Sink,
    pub operator: &'a dyn Operator,
    pub clock: &'a dyn Clock,
}

type Running<'a> = FuturesUnordered<LocalBoxFuture<'a, (usize, Purpose, HostRun)>>;

/// What the loop does with its question to the operator.
type Asking = Option<LocalBoxFuture<'static, bool>>;

/// Stopping twice ends the loop at once.
enum Signal {
    First,
    Again,
}

impl<'a> Dispatcher<'a> {
    fn kind(&self) -> JobKind {
        self.config.kind()
    }

    fn name(&self, h: usize) -> String {
        (self.names)(h)
    }

    /// Runs the plan to its end. `signals` delivers the operator's Ctrl-C / SIGTERM: the
    /// first stops new hosts from starting (hosts in flight finish, a halt's rollback and the
    /// deferred commits still run); the second ends the run at once, and the hosts in flight
    /// are reported abandoned.
    pub async fn run(&self, mut signals: mpsc::UnboundedReceiver<()>) -> RunEnd {
        let mut run = Run {
            phase: Phase::Before(0),
            stops: Stops::default(),
            ledger: Ledger::default(),
            durations: Vec::new(),
            awaiting: Vec::new(),
            wave_of: HashMap::new(),
            in_flight: BTreeSet::new(),
            signals: 0,
        };
        for w in &self.plan.waves {
            for &h in &w.hosts {
                run.wave_of.insert(h, w.index);
            }
        }
        let mut running: Running<'a> = FuturesUnordered::new();
        let mut ahead = Ahead::new(self.executor, &self.plan.hosts, self.ahead_limit());
        let mut asking: Asking = None;
        let mut signals_open = true;
        loop {
            self.advance(&mut run, &mut running, &mut asking, &mut ahead);
            if matches!(run.phase, Phase::Done) && running.is_empty() && ahead.idle() {
                break;
            }
            let wake = match run.phase {
                Phase::Wait { until, .. } => Some(until),
                _ => None,
            };
            tokio::select! {
                Some((h, purpose, ran)) = running.next(), if !running.is_empty() => {
                    self.finished(&mut run, h, purpose, ran);
                }
                Some((h, readiness)) = ahead.preparing.next(), if !ahead.preparing.is_empty() => {
                    let stopping = if run.stops.any() { Stopping::Yes } else { Stopping::No };
                    ahead.prepared(h, readiness, stopping);
                }
                Some(()) = ahead.releasing.next(), if !ahead.releasing.is_empty() => {}
                signal = signals.recv(), if signals_open => match signal {
                    None => signals_open = false,
                    Some(()) => {
                        if let Signal::Again = self.signal(&mut run, &mut asking) {
                            break;
                        }
                    }
                },
                () = sleep_until(wake) => {
                    if let Phase::Wait { next, .. } = run.phase {
                        run.phase = Phase::Before(next);
                    }
                }
                answer = answer(&mut asking) => {
                    asking = None;
                    if let Phase::Ask { next, pause } = run.phase {
                        run.phase = if !answer {
                            run.stops.interrupted = true;
                            Phase::Finish
                        } else {
                            self.wait_or_go(pause, next)
                        };
                    }
                }
            }
        }
        let stopped = run.stops.stopped();
        outcome::conclude(self.kind(), stopped, &self.plan.hosts, &run.ledger, |h| {
            self.name(h)
        })
    }

    /// Hosts held at once when preparing ahead (`--forks`, at least `parallel`); none for a
    /// rollback, which goes back to a binary the hosts keep.
    fn ahead_limit(&self) -> usize {
        match self.kind() {
            JobKind::Roll => self.config.forks.get().max(self.config.parallel.get()),
            JobKind::Rollback => 0,
        }
    }

    /// Moves the run on as far as it can without waiting, then prepares the next hosts (or,
    /// once the run stops or ends, lets the prepared ones go).
    fn advance(
        &self,
        run: &mut Run,
        running: &mut Running<'a>,
        asking: &mut Asking,
        ahead: &mut Ahead<'a>,
    ) {
        self.advance_phases(run, running, asking, ahead);
        if run.stops.any() || matches!(run.phase, Phase::Finish | Phase::Done) {
            ahead.release_all();
        } else if matches!(run.phase, Phase::Wave { .. }) {
            // Only while a wave switches: never through a window wait, a soak or the canary
            // question, where a prepared host would hold its lock for an unbounded time.
            ahead.fill(running.len());
        } else if matches!(run.phase, Phase::Wait { .. } | Phase::Ask { .. }) {
            ahead.let_go();
        }
    }

    /// Starts hosts, ends waves, enters the next phase, until something must be waited for.
    fn advance_phases(
        &self,
        run: &mut Run,
        running: &mut Running<'a>,
        asking: &mut Asking,
        ahead: &mut Ahead<'a>,
    ) {
        let parallel = self.config.parallel.get();
        loop {
            match &mut run.phase {
                Phase::Before(i) => {
                    let i = *i;
                    if run.stops.any() || i >= self.plan.waves.len() {
                        run.phase = Phase::Finish;
                        continue;
                    }
                    match self.window(&run.durations, i > 0) {
                        WindowDecision::Go => {
                            let wave = &self.plan.waves[i];
                            // Prepared ahead: this wave and the next ones, no further.
                            let last = (i + 1 + WAVES_AHEAD).min(self.plan.waves.len());
                            let end: usize =
                                self.plan.waves[..last].iter().map(|w| w.hosts.len()).sum();
                            ahead.reach(end);
                            self.sink.emit(RolloutEvent::WaveStarted {
                                wave: wave.index,
                                canary: wave.canary,
                                hosts: wave.hosts.iter().map(|&h| self.name(h)).collect(),
                            });
                            run.phase = Phase::Wave {
                                i,
                                queue: wave.hosts.iter().copied().collect(),
                            };
                        }
                        WindowDecision::Stop => {
                            run.stops.paused = true;
                            run.phase = Phase::Finish;
                        }
                        WindowDecision::WaitUntil(t) => {
                            self.sink.emit(RolloutEvent::WaitingForWindow {
                                opens_at: t.to_string(),
                            });
                            let wait = t.duration_since(self.clock.now()).as_secs_f64();
                            run.phase = Phase::Wait {
                                until: tokio::time::Instant::now()
                                    + Duration::from_secs_f64(wait.max(0.0)),
                                next: i,
                            };
                            return;
                        }
                    }
                }
                Phase::Wave { i, queue } => {
                    let i = *i;
                    while running.len() < parallel && !run.stops.any() {
                        // A host being prepared takes its turn once it is ready.
                        let Some(at) = queue.iter().position(|&h| !ahead.is_preparing(h)) else {
                            break;
                        };
                        if self.window(&run.durations, true) != WindowDecision::Go {
                            run.stops.paused = true;
                            break;
                        }
                        let Some(h) = queue.remove(at) else { break };
                        let readiness = ahead.take(h);
                        self.start(&mut run.in_flight, running, h, Purpose::Wave, readiness);
                    }
                    if !running.is_empty() || (!queue.is_empty() && !run.stops.any()) {
                        return;
                    }
                    run.phase = self.end_wave(run, i, asking);
                }
                Phase::Revert(queue) => {
                    if !self.fill(queue, &mut run.in_flight, running, Purpose::Revert) {
                        return;
                    }
                    run.phase = Phase::Finish;
                }
                Phase::Commit { queue, then } => {
                    let then = *then;
                    if !self.fill(queue, &mut run.in_flight, running, Purpose::Commit) {
                        return;
                    }
                    run.phase = match then {
                        Then::AfterWave(i) => self.after_wave(run, i, asking),
                        Then::Done => Phase::Done,
                    };
                }
                Phase::Finish => {
                    // No host is left with two masters: what waits for a commit gets it.
                    run.phase = if run.awaiting.is_empty() {
                        Phase::Done
                    } else {
                        Phase::Commit {
                            queue: std::mem::take(&mut run.awaiting).into(),
                            then: Then::Done,
                        }
                    };
                }
                Phase::Wait { .. } | Phase::Ask { .. } | Phase::Done => return,
            }
        }
    }

    /// Whether a host may start now; `durations` are how long passed hosts took.
    fn window(&self, durations: &[Duration], started_any: bool) -> WindowDecision {
        match &self.config.windows {
            None => WindowDecision::Go,
            Some(windows) => {
                policy::window_decision(windows, self.clock.now(), mean(durations), started_any)
            }
        }
    }

    /// Starts hosts from `queue` up to `parallel`; whether the queue is done (all started and
    /// finished). Rollbacks and commits are not stopped by an interrupt: they leave hosts in
    /// one version.
    fn fill(
        &self,
        queue: &mut VecDeque<usize>,
        in_flight: &mut BTreeSet<usize>,
        running: &mut Running<'a>,
        purpose: Purpose,
    ) -> bool {
        while running.len() < self.config.parallel.get() {
            let Some(h) = queue.pop_front() else { break };
            self.start(in_flight, running, h, purpose, Readiness::NotReady);
        }
        running.is_empty() && queue.is_empty()
    }

    fn start(
        &self,
        in_flight: &mut BTreeSet<usize>,
        running: &mut Running<'a>,
        h: usize,
        purpose: Purpose,
        readiness: Readiness,
    ) {
        let intent = match purpose {
            Purpose::Wave => self.config.wave_intent(),
            Purpose::Revert => Intent::Rollback,
            Purpose::Commit => Intent::Upgrade,
        };
        in_flight.insert(h);
        let executor = self.executor;
        running.push(Box::pin(async move {
            let ran = match readiness {
                Readiness::Ready => executor.switch(h, intent).await,
                Readiness::NotReady => executor.run(h, intent).await,
            };
            (h, purpose, ran)
        }));
    }

    fn finished(&self, run: &mut Run, h: usize, purpose: Purpose, ran: HostRun) {
        run.in_flight.remove(&h);
        let HostRun {
            result,
            error,
            elapsed,
            round_trips,
        } = ran;
        let result = match purpose {
            // Taken back because of another host: reverted, unless going back failed.
            Purpose::Revert if matches!(result, HostResult::Upgraded | HostResult::RolledBack) => {
                HostResult::Reverted
            }
            _ => result,
        };
        let error = match result {
            HostResult::Reverted => None,
            _ => error,
        };
        self.sink.emit(RolloutEvent::HostFinished {
            host: self.name(h),
            wave: run.wave_of.get(&h).copied().unwrap_or_default(),
            result,
            elapsed_ms: elapsed.as_millis(),
            round_trips,
            error: error.clone(),
        });
        run.ledger.times.push((h, elapsed));
        run.ledger.record(h, result, error);
        if purpose != Purpose::Wave {
            return;
        }
        if result.passed() {
            run.durations.push(elapsed);
        }
        if result == HostResult::AwaitingCommit {
            run.awaiting.push(h);
        }
        // A rollback is not halted: each host goes back on its own, and stopping would only
        // leave more hosts on the version being taken away.
        if self.kind() == JobKind::Roll
            && outcome::is_failure(self.kind(), result)
            && policy::over_budget(run.ledger.failures(self.kind()), self.config.max_failed)
        {
            run.stops.halted = true;
        }
    }

    /// Wave `i` has no host left to start and none running.
    fn end_wave(&self, run: &mut Run, i: usize, asking: &mut Asking) -> Phase {
        let wave = &self.plan.waves[i];
        let failed = wave
            .hosts
            .iter()
            .filter(|&&h| {
                run.ledger
                    .last(h)
                    .is_some_and(|r| outcome::is_failure(self.kind(), r))
            })
            .count();
        self.sink.emit(RolloutEvent::WaveFinished {
            wave: wave.index,
            failed,
        });
        if run.stops.halted {
            self.sink.emit(RolloutEvent::Halted {
                reason: format!(
                    "{} failed host(s), more than max_failed {}",
                    run.ledger.failures(self.kind()),
                    self.config.max_failed
                ),
            });
            let targets =
                policy::rollback_targets(self.config.rollback, &wave.hosts, &run.ledger.latest());
            // A host the halt wants back is never committed forward, even when going back
            // fails (it is then failed or unrestored, as its last observation says).
            run.awaiting.retain(|h| !targets.contains(h));
            return Phase::Revert(targets.into());
        }
        if run.stops.any() {
            return Phase::Finish;
        }
        if self.config.commit == KeepOldMaster::UntilBatchPasses {
            let (now, later): (Vec<usize>, Vec<usize>) =
                run.awaiting.iter().partition(|h| wave.hosts.contains(h));
            run.awaiting = later;
            return Phase::Commit {
                queue: now.into(),
                then: Then::AfterWave(i),
            };
        }
        self.after_wave(run, i, asking)
    }

    /// Wave `i` passed (and its commits are done): the canary's pause or soak, the pause
    /// between batches, or the end.
    fn after_wave(&self, run: &mut Run, i: usize, asking: &mut Asking) -> Phase {
        let wave = &self.plan.waves[i];
        if i + 1 >= self.plan.waves.len() || run.stops.any() {
            return Phase::Finish;
        }
        let pause = self.config.pause_between_batches;
        if wave.canary && self.kind() == JobKind::Roll {
            match self.config.canary {
                CanaryThen::Continue => {}
                CanaryThen::Soak(d) => {
                    self.sink.say(&format!("canary passed; soaking for {d}"));
                    return self.wait_or_go(d.get() + pause, i + 1);
                }
                CanaryThen::Pause if self.config.canary_pause == CanaryPause::Ask => {
                    *asking = Some(
                        self.operator
                            .ask("canary passed. Continue with the next waves? [y/N]"),
                    );
                    return Phase::Ask { next: i + 1, pause };
                }
                CanaryThen::Pause => {}
            }
        }
        self.wait_or_go(pause, i + 1)
    }

    fn wait_or_go(&self, wait: Duration, next: usize) -> Phase {
        if wait.is_zero() {
            Phase::Before(next)
        } else {
            Phase::Wait {
                until: tokio::time::Instant::now() + wait,
                next,
            }
        }
    }

    fn signal(&self, run: &mut Run, asking: &mut Asking) -> Signal {
        run.signals += 1;
        run.stops.interrupted = true;
        if run.signals == 1 {
            self.sink
                .say("interrupted: no new host starts; hosts in flight finish (again to exit now)");
            if matches!(run.phase, Phase::Wait { .. } | Phase::Ask { .. }) {
                *asking = None;
                run.phase = Phase::Finish;
            }
            return Signal::First;
        }
        let list = |hosts: &[usize]| {
            if hosts.is_empty() {
                "none".to_owned()
            } else {
                hosts
                    .iter()
                    .map(|&h| self.name(h))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let in_flight: Vec<usize> = std::mem::take(&mut run.in_flight).into_iter().collect();
        // Hosts whose commit or rollback was still to come: left with two masters, or on the
        // version the halt wanted gone.
        let mut left: Vec<usize> = std::mem::take(&mut run.awaiting);
        if let Phase::Commit { queue, .. } | Phase::Revert(queue) = &mut run.phase {
            left.extend(queue.drain(..));
        }
        left.retain(|h| !in_flight.contains(h));
        self.sink.say(&format!(
            "interrupted twice: exiting now. These hosts were in flight and may need `ngfleet status`, `ngfleet rollback` or a re-run: {}; these were still to be committed or rolled back: {}",
            list(&in_flight),
            list(&left)
        ));
        for h in in_flight.into_iter().chain(left) {
            run.ledger.record(h, HostResult::Abandoned, None);
        }
        Signal::Again
    }
}

async fn sleep_until(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn answer(asking: &mut Asking) -> bool {
    match asking.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn mean(durations: &[Duration]) -> Option<Duration> {
    if durations.is_empty() {
        return None;
    }
    Some(durations.iter().sum::<Duration>() / durations.len() as u32)
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
