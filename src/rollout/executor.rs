//! The executor over SSH: runs one host's procedure ([`crate::host::upgrade::converge`]) with
//! the run's settings and gates, sends its step events to the sink, and turns its outcome
//! into the host's result.

use std::time::Instant;

use futures::future::LocalBoxFuture;

use super::config::RunConfig;
use super::event::{RolloutEvent, Sink, StepStatus};
use super::outcome::{HostResult, JobKind};
use super::seams::{Executor, HostRun};
use crate::fleet::ControllerEnv;
use crate::host::event::{Event, Status};
use crate::host::round_trips::RoundTrips;
use crate::host::upgrade::{Gate, Intent, Job as HostJob, Outcome, Source, UpgradeError, converge};
use crate::model::inventory::Inventory;
use crate::ssh::Transport;

pub struct SshExecutor<'a> {
    pub inventory: &'a Inventory,
    pub env: &'a ControllerEnv,
    pub transport: &'a Transport,
    pub gate: &'a dyn Gate,
    pub config: &'a RunConfig,
    pub source: Source,
    pub sink: &'a dyn Sink,
}

impl Executor for SshExecutor<'_> {
    fn run(&self, h: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        Box::pin(async move {
            let host = self.inventory.host(h);
            let started = Instant::now();
            let sink = self.sink;
            let trips = RoundTrips::default();
            let events = |e: Event| {
                if e.status == Status::Started && e.step.changes_the_host() {
                    trips.mark_turn();
                }
                sink.emit(step_event(e));
            };
            let job = HostJob {
                host,
                source: &self.source,
                intent,
                settings: &self.config.host,
                gate: self.gate,
                round_trips: &trips,
            };
            let target = self.env.target(host);
            let outcome = converge(self.transport, &target, &job, &events).await;
            let (result, error) = host_result(self.config.kind(), outcome);
            HostRun {
                result,
                error,
                elapsed: started.elapsed(),
                round_trips: trips.trips(),
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
