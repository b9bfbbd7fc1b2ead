//! The dispatcher's state: where the run is (its phase), why it stops, and what it has seen
//! (the ledger, the hosts awaiting a commit, the hosts in flight).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use super::outcome::{Ledger, Stopped};

/// Why a host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Its turn in a wave.
    Wave,
    /// Rolled back after a halt.
    Revert,
    /// Its deferred commit.
    Commit,
}

/// What comes after a batch of commits.
#[derive(Clone, Copy, Debug)]
pub(super) enum Then {
    AfterWave(usize),
    Done,
}

/// Where the run is.
pub(super) enum Phase {
    /// About to start wave `i` (the window is checked first).
    Before(usize),
    Wave {
        i: usize,
        queue: VecDeque<usize>,
    },
    /// Rolling back after a halt, then finishing.
    Revert(VecDeque<usize>),
    Commit {
        queue: VecDeque<usize>,
        then: Then,
    },
    /// Waiting for the timer, then wave `next`.
    Wait {
        until: tokio::time::Instant,
        next: usize,
    },
    /// Waiting for the operator's answer, then (after `pause`) wave `next`.
    Ask {
        next: usize,
        pause: Duration,
    },
    /// Committing what still waits, then done.
    Finish,
    Done,
}

/// Why new wave hosts stop starting (each can be true; all are reported).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Stops {
    pub(super) halted: bool,
    pub(super) paused: bool,
    pub(super) interrupted: bool,
}

impl Stops {
    pub(super) fn any(self) -> bool {
        self.halted || self.paused || self.interrupted
    }

    pub(super) fn stopped(self) -> Stopped {
        if self.interrupted {
            Stopped::Interrupted
        } else if self.halted {
            Stopped::Halted
        } else if self.paused {
            Stopped::Paused
        } else {
            Stopped::Completed
        }
    }
}

/// The loop's state; everything but the futures in flight.
pub(super) struct Run {
    pub(super) phase: Phase,
    pub(super) stops: Stops,
    pub(super) ledger: Ledger,
    /// How long passed hosts took, for the window estimate.
    pub(super) durations: Vec<Duration>,
    pub(super) awaiting: Vec<usize>,
    pub(super) wave_of: HashMap<usize, usize>,
    pub(super) in_flight: BTreeSet<usize>,
    pub(super) signals: u32,
}
