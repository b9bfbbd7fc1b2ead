//! The dispatcher: runs the plan's waves through the per-host procedure (the executor), keeps
//! the failure budget, rolls back by scope, commits deferred hosts when their batch or the
//! rollout passes, honours maintenance windows and the canary pause, and reports every event.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream;

use super::policy::{self, Stopped, WindowDecision};
use super::stop::{Reason, Stop};
use crate::fleet::ControllerEnv;
use crate::host::event::{Event, Status};
use crate::host::upgrade::{
    Deadlines, Gate, Intent, Job as HostJob, Outcome, Settings, Source, UpgradeError, converge,
};
use crate::model::inventory::Inventory;
use crate::model::spec::{CanaryThen, KeepOldMaster, Spec};
use crate::plan::Plan;
use crate::report::events::{HostResult, RolloutEvent, Summary};
use crate::report::live::Reporter;
use crate::ssh::Transport;

/// What the run is: roll out a binary, or take hosts back from one (by its sha256: hosts
/// that run something else are left alone).
#[derive(Clone, Debug)]
pub enum Job {
    Roll(Source),
    Rollback { from_sha256: String },
}

/// How the operator answers the canary pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryPause {
    /// `--yes`: do not stop.
    Skip,
    /// Ask on the terminal.
    Ask,
}

/// Whether maintenance windows apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowPolicy {
    Respect,
    /// `--ignore-windows`.
    Ignore,
}

pub struct Dispatcher<'a> {
    pub inventory: &'a Inventory,
    pub spec: &'a Spec,
    pub plan: &'a Plan,
    pub job: Job,
    pub transport: &'a Transport,
    pub env: &'a ControllerEnv,
    pub gate: &'a dyn Gate,
    pub reporter: &'a Reporter,
    pub stop: Arc<Stop>,
    pub owner: String,
    /// The run's id, written into each host's record.
    pub run_id: String,
    pub canary_pause: CanaryPause,
    pub windows: WindowPolicy,
}

/// The end of a run.
pub struct RunEnd {
    pub stopped: Stopped,
    pub results: Vec<(usize, HostResult, Option<String>)>,
    pub summary: Summary,
    /// Failures, counted the way this job counts them (for the result and exit code).
    pub tally: policy::Tally,
    /// The slowest hosts, slowest first.
    pub slowest: Vec<(usize, Duration)>,
}

struct Ledger {
    /// Touched hosts in the order they finished, with their result.
    touched: Vec<(usize, HostResult)>,
    errors: Vec<(usize, String)>,
    failed: usize,
    durations: Vec<Duration>,
    /// How long each host took (its last run in this rollout).
    times: Vec<(usize, Duration)>,
}

impl Dispatcher<'_> {
    fn settings(&self) -> Settings {
        let t = &self.spec.timeouts;
        Settings {
            deadlines: Deadlines {
                command: t.command.get(),
                start: t.start.get(),
                drain: t.drain.get(),
                quit: t.quit.get(),
            },
            on_drain_timeout: self.spec.on_drain_timeout,
            run_id: self.run_id.clone(),
            owner: self.owner.clone(),
            attempts: 3,
            keep_backups: crate::host::upgrade::KEEP_BACKUPS,
            upload_floor: crate::host::upgrade::UPLOAD_FLOOR,
        }
    }

    fn source(&self) -> Source {
        match &self.job {
            Job::Roll(s) => s.clone(),
            // Rollback reads only the sha256: the binary being taken away.
            Job::Rollback { from_sha256 } => Source::Remote {
                path: String::new(),
                sha256: from_sha256.clone(),
            },
        }
    }

    /// Whether a host's result counts against the budget: in a rollback run, being rolled
    /// back is the goal.
    fn is_failure(&self, result: HostResult) -> bool {
        match self.job {
            Job::Rollback { .. } => matches!(result, HostResult::Failed | HostResult::Unrestored),
            Job::Roll(_) => policy::is_failure(result),
        }
    }

    fn upgrade_intent(&self) -> Intent {
        match (&self.job, self.spec.keep_old_master) {
            (Job::Rollback { .. }, _) => Intent::Rollback,
            (_, KeepOldMaster::UntilHostPasses) => Intent::Upgrade,
            _ => Intent::UpgradeDeferCommit,
        }
    }

    /// Runs one host with `intent`; returns its result and error text.
    async fn host(
        &self,
        h: usize,
        wave: usize,
        intent: Intent,
    ) -> (HostResult, Option<String>, Duration) {
        let host = self.inventory.host(h);
        let started = Instant::now();
        self.stop.started(&host.name);
        let reporter = self.reporter;
        let events = |e: Event| {
            let (status, error) = match &e.status {
                Status::Started => ("started", None),
                Status::Done => ("done", None),
                Status::Failed(why) => ("failed", Some(why.clone())),
                Status::Note(text) => ("note", Some(text.clone())),
            };
            reporter.emit(RolloutEvent::Step {
                host: e.host.clone(),
                step: e.step.name().to_owned(),
                status: status.to_owned(),
                elapsed_ms: e.elapsed.as_millis(),
                error,
            });
        };
        let target = self.env.target(host);
        let source = self.source();
        let settings = self.settings();
        let job = HostJob {
            host,
            source: &source,
            intent,
            settings: &settings,
            gate: self.gate,
        };
        let outcome = converge(self.transport, &target, &job, &events).await;
        let rollback = matches!(self.job, Job::Rollback { .. });
        let (result, error) = match outcome {
            Ok(Outcome::Upgraded { .. }) if rollback => (HostResult::RolledBack, None),
            Ok(Outcome::RolledBack { .. }) if rollback => (HostResult::RolledBack, None),
            Ok(Outcome::Upgraded { .. }) => (HostResult::Upgraded, None),
            Ok(Outcome::AlreadyAtTarget) => (HostResult::Skipped, None),
            Ok(Outcome::NotApplicable { reason }) => {
                (HostResult::Skipped, Some(reason.to_string()))
            }
            Ok(Outcome::AwaitingCommit { .. }) => (HostResult::AwaitingCommit, None),
            Ok(Outcome::RolledBack { reason }) => {
                (HostResult::RolledBack, Some(reason.to_string()))
            }
            Err(e @ UpgradeError::Unrestored { .. }) => {
                (HostResult::Unrestored, Some(e.to_string()))
            }
            Err(e) => (HostResult::Failed, Some(e.to_string())),
        };
        let elapsed = started.elapsed();
        self.stop.finished(&host.name);
        reporter.emit(RolloutEvent::HostFinished {
            host: host.name.clone(),
            wave,
            result,
            elapsed_ms: elapsed.as_millis(),
            error: error.clone(),
        });
        (result, error, elapsed)
    }

    /// Runs `hosts` with at most `parallel` at once; later hosts do not start once the run
    /// stops. Returns the results of the hosts that ran.
    async fn batch(
        &self,
        hosts: &[usize],
        wave: usize,
        intent: Intent,
        ledger: &Mutex<Ledger>,
        window_gated: bool,
    ) -> Vec<(usize, HostResult)> {
        let parallel = self.spec.parallel.max(1);
        stream::iter(hosts.iter().copied())
            .map(|h| async move {
                if self.stop.reason().is_some() {
                    return None;
                }
                if window_gated && self.windows == WindowPolicy::Respect {
                    let expected = ledger.lock().ok().and_then(|l| mean(&l.durations));
                    let decision = policy::window_decision(
                        &self.spec.windows,
                        jiff::Timestamp::now(),
                        expected,
                        true,
                    );
                    if decision != WindowDecision::Go {
                        self.stop.set(Reason::Paused);
                        return None;
                    }
                }
                let (result, error, elapsed) = self.host(h, wave, intent).await;
                if let Ok(mut l) = ledger.lock() {
                    l.touched.push((h, result));
                    l.times.push((h, elapsed));
                    if let Some(e) = error {
                        l.errors.push((h, e));
                    }
                    if matches!(result, HostResult::Upgraded | HostResult::AwaitingCommit) {
                        l.durations.push(elapsed);
                    }
                    if self.is_failure(result) {
                        l.failed += 1;
                        if policy::over_budget(l.failed, self.plan.max_failed) {
                            self.stop.set(Reason::Halted);
                        }
                    }
                }
                Some((h, result))
            })
            .buffer_unordered(parallel)
            .filter_map(|r| async move { r })
            .collect()
            .await
    }

    pub async fn run(&self) -> RunEnd {
        let ledger = Mutex::new(Ledger {
            touched: Vec::new(),
            errors: Vec::new(),
            failed: 0,
            durations: Vec::new(),
            times: Vec::new(),
        });
        let intent = self.upgrade_intent();
        let mut awaiting: Vec<usize> = Vec::new();
        let mut reverted: Vec<usize> = Vec::new();
        let waves = &self.plan.waves;
        for (i, wave) in waves.iter().enumerate() {
            if self.stop.reason().is_some() {
                break;
            }
            if self.windows == WindowPolicy::Respect {
                let started_any = i > 0;
                let expected = ledger.lock().ok().and_then(|l| mean(&l.durations));
                match policy::window_decision(
                    &self.spec.windows,
                    jiff::Timestamp::now(),
                    expected,
                    started_any,
                ) {
                    WindowDecision::Go => {}
                    WindowDecision::Stop => {
                        self.stop.set(Reason::Paused);
                        break;
                    }
                    WindowDecision::WaitUntil(t) => {
                        self.reporter.emit(RolloutEvent::WaitingForWindow {
                            opens_at: t.to_string(),
                        });
                        let wait = t.duration_since(jiff::Timestamp::now());
                        self.stop
                            .sleep(Duration::from_secs_f64(wait.as_secs_f64().max(0.0)))
                            .await;
                        if self.stop.reason().is_some() {
                            break;
                        }
                    }
                }
            }
            let names: Vec<String> = wave
                .hosts
                .iter()
                .map(|&h| self.inventory.host(h).name.clone())
                .collect();
            self.reporter.emit(RolloutEvent::WaveStarted {
                wave: wave.index,
                canary: wave.canary,
                hosts: names,
            });
            let done = self
                .batch(&wave.hosts, wave.index, intent, &ledger, true)
                .await;
            let failed_here = done.iter().filter(|(_, r)| self.is_failure(*r)).count();
            awaiting.extend(
                done.iter()
                    .filter(|(_, r)| *r == HostResult::AwaitingCommit)
                    .map(|(h, _)| *h),
            );
            self.reporter.emit(RolloutEvent::WaveFinished {
                wave: wave.index,
                failed: failed_here,
            });

            if self.stop.reason() == Some(Reason::Halted) {
                let reason = format!(
                    "{} failed host(s), more than max_failed {}",
                    ledger.lock().map(|l| l.failed).unwrap_or(0),
                    self.plan.max_failed
                );
                self.reporter.emit(RolloutEvent::Halted { reason });
                let touched = ledger.lock().map(|l| l.touched.clone()).unwrap_or_default();
                let targets = policy::rollback_targets(self.spec.rollback, &wave.hosts, &touched);
                reverted = self.revert(&targets, wave.index, &ledger).await;
                // A host the halt wanted back is never committed forward, even when going
                // back failed (it is then failed or unrestored, as its last observation says).
                awaiting.retain(|h| !targets.contains(h));
                break;
            }
            // A wave passed: commit what waited for it.
            if self.spec.keep_old_master == KeepOldMaster::UntilBatchPasses
                && self.stop.reason().is_none()
            {
                let wave_awaiting: Vec<usize> = awaiting
                    .iter()
                    .copied()
                    .filter(|h| wave.hosts.contains(h))
                    .collect();
                self.commit(&wave_awaiting, wave.index, &ledger).await;
                awaiting.retain(|h| !wave_awaiting.contains(h));
            }
            let last = i + 1 == waves.len();
            if last || self.stop.reason().is_some() {
                continue;
            }
            if wave.canary && matches!(self.job, Job::Roll(_)) {
                match self.spec.canary.then {
                    CanaryThen::Continue => {}
                    CanaryThen::Soak(d) => {
                        self.reporter
                            .say(&format!("canary passed; soaking for {d}"));
                        self.stop.sleep(d.get()).await;
                    }
                    CanaryThen::Pause => {
                        if self.canary_pause == CanaryPause::Ask && !self.ask_to_continue().await {
                            self.stop.set(Reason::Interrupted);
                        }
                    }
                }
            }
            if !self.spec.pause_between_batches.get().is_zero() {
                self.stop.sleep(self.spec.pause_between_batches.get()).await;
            }
        }

        // Hosts still waiting for a commit (the halt's rollback targets were taken out above):
        // commit them. No host is left with two masters.
        if !awaiting.is_empty() {
            self.commit(&awaiting, usize::MAX, &ledger).await;
        }
        self.finish(ledger, &reverted)
    }

    async fn commit(&self, hosts: &[usize], wave: usize, ledger: &Mutex<Ledger>) {
        if hosts.is_empty() {
            return;
        }
        let results = stream::iter(hosts.iter().copied())
            .map(|h| async move { (h, self.host(h, wave, Intent::Upgrade).await) })
            .buffer_unordered(self.spec.parallel.max(1))
            .collect::<Vec<_>>()
            .await;
        if let Ok(mut l) = ledger.lock() {
            for (h, (result, error, _)) in results {
                if let Some(entry) = l.touched.iter_mut().find(|(t, _)| *t == h) {
                    entry.1 = result;
                }
                if let Some(e) = error {
                    l.errors.push((h, e));
                }
            }
        }
    }

    /// Rolls `hosts` back (newest first, `parallel` at a time); returns the ones restored.
    /// A host whose rollback failed keeps that result in the ledger, never its earlier
    /// "upgraded". (Within a roll, the source is the binary being taken away.)
    async fn revert(&self, hosts: &[usize], wave: usize, ledger: &Mutex<Ledger>) -> Vec<usize> {
        let results = stream::iter(hosts.iter().copied())
            .map(|h| async move { (h, self.host(h, wave, Intent::Rollback).await) })
            .buffer_unordered(self.spec.parallel.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut restored = Vec::new();
        let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        for (h, (result, error, _)) in results {
            if matches!(result, HostResult::Failed | HostResult::Unrestored) {
                l.touched.push((h, result));
                if let Some(e) = error {
                    l.errors.push((h, e));
                }
            } else {
                restored.push(h);
            }
        }
        restored
    }

    async fn ask_to_continue(&self) -> bool {
        self.reporter
            .say("canary passed. Continue with the next waves? [y/N]");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).is_ok()
                && matches!(line.trim(), "y" | "Y" | "yes")
        })
        .await
        .unwrap_or(false)
    }

    fn finish(&self, ledger: Mutex<Ledger>, reverted: &[usize]) -> RunEnd {
        let ledger = ledger.into_inner().unwrap_or_else(|p| p.into_inner());
        let stopped = match self.stop.reason() {
            None => Stopped::Completed,
            Some(Reason::Halted) => Stopped::Halted,
            Some(Reason::Paused) => Stopped::Paused,
            Some(Reason::Interrupted) => Stopped::Interrupted,
        };
        let mut results = Vec::new();
        let mut summary = Summary::default();
        for &h in &self.plan.hosts {
            let name = self.inventory.host(h).name.clone();
            let error = ledger
                .errors
                .iter()
                .rev()
                .find(|(e, _)| *e == h)
                .map(|(_, m)| m.clone());
            let result = ledger
                .touched
                .iter()
                .rev()
                .find(|(t, _)| *t == h)
                .map(|(_, r)| *r);
            let result = match result {
                Some(_) if reverted.contains(&h) => Some(HostResult::Reverted),
                other => other,
            };
            match result {
                None => summary.untouched.push(name),
                Some(r) => {
                    match r {
                        HostResult::Upgraded | HostResult::AwaitingCommit => {
                            summary.upgraded.push(name)
                        }
                        HostResult::Skipped => summary.skipped.push(name),
                        HostResult::RolledBack | HostResult::Reverted => {
                            summary.rolled_back.push(name)
                        }
                        HostResult::Failed => summary.failed.push(name),
                        HostResult::Unrestored => summary.unrestored.push(name),
                    }
                    results.push((h, r, error));
                }
            }
        }
        let tally = policy::Tally {
            failed: results.iter().filter(|r| self.is_failure(r.1)).count(),
            unrestored: results
                .iter()
                .filter(|r| r.1 == HostResult::Unrestored)
                .count(),
        };
        let mut slowest = ledger.times.clone();
        slowest.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
        slowest.truncate(3);
        RunEnd {
            stopped,
            results,
            summary,
            tally,
            slowest,
        }
    }
}

fn mean(durations: &[Duration]) -> Option<Duration> {
    if durations.is_empty() {
        return None;
    }
    Some(durations.iter().sum::<Duration>() / durations.len() as u32)
}
