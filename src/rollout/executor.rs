//! The executor over SSH: runs one host's procedure ([`crate::host::upgrade::converge`]) with
//! the run's settings and gates, sends its step events to the sink, and turns its outcome
//! into the host's result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use futures::future::LocalBoxFuture;

use super::check::Verdict;
use super::config::RunConfig;
use super::event::{RolloutEvent, Sink, StepStatus};
use super::outcome::{HostResult, JobKind};
use super::seams::{Executor, HostRun, Readiness};
use crate::fleet::ControllerEnv;
use crate::host::event::{Event, Status};
use crate::host::prepare::{Leftover, Prepared, prepare};
use crate::host::ready::Verdict as Ready;
use crate::host::round_trips::RoundTrips;
use crate::host::upgrade::{Gate, Intent, Job as HostJob, Outcome, Source, UpgradeError};
use crate::model::inventory::Inventory;
use crate::ssh::Target;
use crate::ssh::Transport;

/// What each planned host needs for the whole run, made once before it starts: where to
/// connect, and its round-trip counters (a prepared host borrows both until its turn).
pub struct Slots {
    index: HashMap<usize, usize>,
    by_name: HashMap<String, usize>,
    targets: Vec<Target>,
    trips: Vec<RoundTrips>,
}

impl Slots {
    pub fn new(inventory: &Inventory, env: &ControllerEnv, hosts: &[usize]) -> Slots {
        let mut slots = Slots {
            index: HashMap::new(),
            by_name: HashMap::new(),
            targets: Vec::new(),
            trips: Vec::new(),
        };
        for &h in hosts {
            let host = inventory.host(h);
            slots.index.insert(h, slots.targets.len());
            slots.by_name.insert(host.name.clone(), slots.targets.len());
            slots.targets.push(env.target(host));
            slots.trips.push(RoundTrips::default());
        }
        slots
    }

    /// The step events of every host, sent to `sink`; a step that changes the host marks its
    /// turn in its counters.
    pub fn events<'a>(&'a self, sink: &'a dyn Sink) -> impl Fn(Event) + Sync + 'a {
        move |e: Event| {
            if e.status == Status::Started
                && e.step.changes_the_host()
                && let Some(&i) = self.by_name.get(&e.host)
            {
                self.trips[i].mark_turn();
            }
            sink.emit(step_event(e));
        }
    }
}

pub struct SshExecutor<'a> {
    pub inventory: &'a Inventory,
    pub slots: &'a Slots,
    pub transport: &'a Transport,
    pub gate: &'a dyn Gate,
    pub config: &'a RunConfig,
    pub source: &'a Source,
    pub events: &'a (dyn Fn(Event) + Sync),
    /// Hosts prepared ahead of their turn.
    pub prepared: Mutex<HashMap<usize, Prepared<'a>>>,
    /// Hosts whose result is known and whose lock is still being released (with the
    /// connection closed after it), in tasks of their own so that the next wave need not
    /// wait: a host's next run waits for its own, and [`SshExecutor::settle`] for all.
    pub leaving: Mutex<HashMap<usize, tokio::task::JoinHandle<()>>>,
}

impl<'a> SshExecutor<'a> {
    fn job(&self, h: usize, intent: Intent) -> Option<(HostJob<'a>, &'a Target)> {
        let i = *self.slots.index.get(&h)?;
        let job = HostJob {
            host: self.inventory.host(h),
            source: self.source,
            intent,
            settings: &self.config.host,
            gate: self.gate,
            round_trips: &self.slots.trips[i],
        };
        Some((job, &self.slots.targets[i]))
    }

    fn finish(
        &self,
        h: usize,
        started: Instant,
        outcome: Result<Outcome, UpgradeError>,
    ) -> HostRun {
        let (result, error) = host_result(self.config.kind(), outcome);
        let round_trips = self
            .slots
            .index
            .get(&h)
            .map(|&i| self.slots.trips[i].trips())
            .unwrap_or_default();
        HostRun {
            result,
            error,
            elapsed: started.elapsed(),
            round_trips,
        }
    }

    /// `h`'s switch; its lock release and connection close are left to go on by themselves.
    async fn switched(&self, h: usize, prepared: Prepared<'a>) -> Result<Outcome, UpgradeError> {
        let (outcome, leftover) = prepared.switch_leaving(self.events).await;
        self.leave(h, leftover);
        outcome
    }

    /// Lets `h`'s lock release and connection close go on in a task of their own.
    fn leave(&self, h: usize, leftover: Leftover) {
        let task = tokio::spawn(leftover);
        match self.leaving.lock() {
            Ok(mut map) => {
                map.insert(h, task);
            }
            // Never poisoned (no code panics while holding it); the task runs regardless.
            Err(_) => drop(task),
        }
    }

    /// Waits until `h`'s last lock is released (before `h` is locked again).
    async fn settled(&self, h: usize) {
        let task = self.leaving.lock().ok().and_then(|mut m| m.remove(&h));
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Waits until every host's lock is released and its connection closed: before the run
    /// reports its end.
    pub async fn settle(&self) {
        let tasks: Vec<_> = match self.leaving.lock() {
            Ok(mut map) => map.drain().map(|(_, t)| t).collect(),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Prepares `h` and hands back what its preparation found, without keeping it: the
    /// staged file and the lock are let go at once (`roll --check`).
    pub async fn check(&self, h: usize) -> Verdict {
        let Some((job, target)) = self.job(h, self.config.wave_intent()) else {
            return Verdict::Unreachable("not in the plan".into());
        };
        match prepare(self.transport, target, job, self.events).await {
            Ok(prepared) => {
                let verdict = match prepared.verdict() {
                    Ready::WouldUpgrade => Verdict::WouldUpgrade,
                    Ready::AlreadyAtTarget | Ready::NotApplicable(_) => Verdict::AlreadyAtTarget,
                    Ready::InFlight => Verdict::InFlight,
                    Ready::Refused(why) => Verdict::Refused(why.to_string()),
                };
                prepared.release().await;
                verdict
            }
            Err(e @ UpgradeError::Refused { .. } | e @ UpgradeError::Locked { .. }) => {
                Verdict::Refused(e.to_string())
            }
            Err(e) => Verdict::Unreachable(e.to_string()),
        }
    }
}

impl Executor for SshExecutor<'_> {
    fn run(&self, h: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        Box::pin(async move {
            let started = Instant::now();
            let Some((job, target)) = self.job(h, intent) else {
                // Every host the dispatcher runs is in the plan the slots were made for.
                return HostRun {
                    result: HostResult::Failed,
                    error: Some(format!("{}: not in the plan", self.inventory.host(h).name)),
                    elapsed: started.elapsed(),
                    round_trips: Default::default(),
                };
            };
            self.settled(h).await;
            let outcome = match prepare(self.transport, target, job, self.events).await {
                Ok(prepared) => self.switched(h, prepared).await,
                Err(e) => Err(e),
            };
            self.finish(h, started, outcome)
        })
    }

    fn prepare(&self, h: usize) -> LocalBoxFuture<'_, Readiness> {
        Box::pin(async move {
            let Some((job, target)) = self.job(h, self.config.wave_intent()) else {
                return Readiness::NotReady;
            };
            self.settled(h).await;
            match prepare(self.transport, target, job, self.events).await {
                // Only a host with its binary staged is worth holding; any other verdict is
                // found again, and reported, at its turn.
                Ok(prepared) if *prepared.verdict() == Ready::WouldUpgrade => {
                    if let Ok(mut map) = self.prepared.lock() {
                        map.insert(h, prepared);
                        return Readiness::Ready;
                    }
                    prepared.release().await;
                    Readiness::NotReady
                }
                Ok(prepared) => {
                    prepared.release().await;
                    Readiness::NotReady
                }
                Err(_) => Readiness::NotReady,
            }
        })
    }

    fn switch(&self, h: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        Box::pin(async move {
            let started = Instant::now();
            let prepared = self.prepared.lock().ok().and_then(|mut m| m.remove(&h));
            match prepared {
                Some(p) => {
                    let outcome = self.switched(h, p).await;
                    self.finish(h, started, outcome)
                }
                None => self.run(h, intent).await,
            }
        })
    }

    fn release(&self, h: usize) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            let prepared = self.prepared.lock().ok().and_then(|mut m| m.remove(&h));
            if let Some(p) = prepared {
                p.release().await;
            }
        })
    }
}

fn step_event(e: Event) -> RolloutEvent {
    let (status, error) = match e.status {
        Status::Started => (StepStatus::Started, None),
        Status::Done => (StepStatus::Done, None),
        Status::Failed(why) => (StepStatus::Failed, Some(why)),
        Status::Note(text) => (StepStatus::Note, Some(text)),
    };
    RolloutEvent::Step {
        host: e.host,
        step: e.step.name().to_owned(),
        status,
        elapsed_ms: e.elapsed.as_millis(),
        error,
    }
}

/// A host's result in a run of `job`, and the text that explains it.
pub fn host_result(
    job: JobKind,
    outcome: Result<Outcome, UpgradeError>,
) -> (HostResult, Option<String>) {
    match (job, outcome) {
        (JobKind::Rollback, Ok(Outcome::Upgraded { .. } | Outcome::RolledBack { .. })) => {
            (HostResult::RolledBack, None)
        }
        (_, Ok(Outcome::Upgraded { .. })) => (HostResult::Upgraded, None),
        (_, Ok(Outcome::AlreadyAtTarget)) => (HostResult::Skipped, None),
        (_, Ok(Outcome::NotApplicable { reason })) => {
            (HostResult::Skipped, Some(reason.to_string()))
        }
        (_, Ok(Outcome::AwaitingCommit { .. })) => (HostResult::AwaitingCommit, None),
        (_, Ok(Outcome::RolledBack { reason })) => {
            (HostResult::RolledBack, Some(reason.to_string()))
        }
        (_, Err(e @ UpgradeError::Unrestored { .. })) => {
            (HostResult::Unrestored, Some(e.to_string()))
        }
        (_, Err(e)) => (HostResult::Failed, Some(e.to_string())),
    }
}
