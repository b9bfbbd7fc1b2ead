//! The one wrapper every step of the per-host procedure runs in: it emits `started`, then
//! `done` or `failed` (with the rendered failure) on every path out, including a `?` inside
//! the step and the step's future being dropped (the run stopped: the lock was lost). A step
//! ends either with an error (the run stops) or with a judged failure of the new binary (the
//! run turns back): [`Stop`].

use std::future::Future;
use std::time::Instant;

use super::event::{Event, Status, Step};
use super::failure::Judged;
use super::procedure::Procedure;
use super::upgrade::UpgradeError;
use crate::ssh::SshError;

/// Why a step did not finish.
#[derive(Debug)]
pub(super) enum Stop {
    /// The new binary was judged and failed: the run turns back.
    Judged(Judged),
    /// The run stops.
    Error(UpgradeError),
}

impl From<UpgradeError> for Stop {
    fn from(e: UpgradeError) -> Stop {
        Stop::Error(e)
    }
}

impl From<SshError> for Stop {
    fn from(e: SshError) -> Stop {
        Stop::Error(e.into())
    }
}

impl From<Judged> for Stop {
    fn from(j: Judged) -> Stop {
        Stop::Judged(j)
    }
}

/// What a failed step's event says.
pub(super) trait Rendered {
    fn render(&self) -> String;
}

impl Rendered for UpgradeError {
    fn render(&self) -> String {
        self.cause()
    }
}

impl Rendered for Stop {
    fn render(&self) -> String {
        match self {
            Stop::Judged(j) => j.to_string(),
            Stop::Error(e) => e.cause(),
        }
    }
}

/// What a step's event says when the step never finished.
pub const INTERRUPTED: &str = "interrupted: the run stopped during this step";

/// A step that has started: it ends exactly once, by [`Open::close`] or, if dropped first, as
/// interrupted.
struct Open<'p> {
    events: &'p (dyn Fn(Event) + Sync),
    host: &'p str,
    step: Step,
    since: Instant,
    closed: bool,
}

impl Open<'_> {
    fn emit(&self, status: Status) {
        (self.events)(Event {
            host: self.host.to_owned(),
            step: self.step,
            status,
            elapsed: self.since.elapsed(),
        });
    }

    fn close(mut self, status: Status) {
        self.closed = true;
        self.emit(status);
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.closed {
            self.emit(Status::Failed(INTERRUPTED.to_owned()));
        }
    }
}

impl Procedure<'_> {
    /// Runs `body` as `step`: `started`, then `done` or `failed` however it ends.
    pub(super) async fn step<T, E: Rendered>(
        &self,
        step: Step,
        body: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let open = Open {
            events: self.events,
            host: self.host_name(),
            step,
            since: Instant::now(),
            closed: false,
        };
        open.emit(Status::Started);
        let result = body.await;
        open.close(match &result {
            Ok(_) => Status::Done,
            Err(e) => Status::Failed(e.render()),
        });
        result
    }

    /// A note for the operator (not a failure).
    pub(super) fn note(&self, step: Step, text: String) {
        (self.events)(Event {
            host: self.host_name().to_owned(),
            step,
            status: Status::Note(text),
            elapsed: std::time::Duration::ZERO,
        });
    }
}
