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

/// Runs one host (an index into the inventory) with an intent.
pub trait Executor: Sync {
    fn run(&self, host: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun>;
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
