//! What the dispatcher runs through, so its tests can stand in for each: the executor (one
//! host), the operator (the canary question) and the wall clock (maintenance windows).

use std::time::Duration;

use futures::future::LocalBoxFuture;
use jiff::Timestamp;

use super::outcome::HostResult;
use crate::host::round_trips::Trips;
use crate::host::upgrade::Intent;

/// What one host's run came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRun {
    pub result: HostResult,
    pub error: Option<String>,
    pub elapsed: Duration,
    /// What the run cost in round trips.
    pub round_trips: Trips,
}

/// Whether a host was made ready for its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Connected, locked, checked, the new binary staged: only the switch is left.
    Ready,
    /// Not prepared (unreachable, refused, or nothing to prepare): its turn runs it whole,
    /// and reports what it finds then.
    NotReady,
}

/// Runs one host (an index into the inventory) with an intent. An executor may prepare a host
/// ahead of its turn (everything that changes nothing live); the defaults do not.
pub trait Executor: Sync {
    fn run(&self, host: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun>;

    /// Gets `host` ready for its turn without changing anything live.
    fn prepare(&self, _host: usize) -> LocalBoxFuture<'_, Readiness> {
        Box::pin(async { Readiness::NotReady })
    }

    /// Takes the turn of a host that [`Executor::prepare`] made ready.
    fn switch(&self, host: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        self.run(host, intent)
    }

    /// Lets go of a prepared host whose turn will not come (staged file removed, lock
    /// released): nothing live was changed.
    fn release(&self, _host: usize) -> LocalBoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The operator, asked at the canary pause.
pub trait Operator: Sync {
    /// Whether to go on; the future may never resolve (a signal ends the wait).
    fn ask(&self, question: &str) -> LocalBoxFuture<'static, bool>;
}

/// Wall-clock time, for maintenance windows.
pub trait Clock: Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
