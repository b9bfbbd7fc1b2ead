//! What the per-host loop knows about its run beyond the host: where it is going (the aim),
//! why it turned back, whether it changed the host, and a WINCH the last command sent.

use super::direction::{Aim, Commit, Drive};
use super::failure::Judged;
use super::observe::Observation;
use super::record::{Op, OpKind, Record};

/// What the loop knows about this run beyond the host.
pub(super) struct Course {
    pub(super) aim: Aim,
    /// Why the run turned back, when it did.
    pub(super) failure: Option<Judged>,
    /// Something failed again while going back.
    pub(super) failed_going_back: Option<Judged>,
    /// A move that changes the host was made.
    pub(super) changed: bool,
    /// WINCH sent by the last move's command (after USR2, on the host), for the drain.
    pub(super) winched: Option<Winched>,
}

/// A WINCH that the start command sent itself, once the host saw the new master ready: the
/// command's result, and where in it the WINCH and the wait for the drain are.
pub(super) struct Winched {
    pub(super) old: u32,
    pub(super) acted: super::act::Acted,
    /// The index of the WINCH act (the wait for the drain follows it).
    pub(super) at: usize,
}

impl Course {
    /// A judged failure: from here the run goes back to where the operation started.
    pub(super) fn turn_back(&mut self, op: Option<&Op>, obs: &Observation, reason: Judged) {
        let back_to = match op {
            Some(op) => op.from.clone(),
            // The operation was completed (a gate failed after commit): back to what ran
            // before it.
            None => obs
                .record
                .record()
                .and_then(Record::previous)
                .map(str::to_owned)
                .unwrap_or_else(|| self.aim.sha.clone()),
        };
        if self.failure.is_none() {
            self.failure = Some(reason);
        } else {
            self.failed_going_back = Some(reason);
        }
        self.aim = Aim {
            sha: back_to,
            kind: OpKind::Rollback,
            commit: Commit::Now,
            drive: Drive::TurnedBack,
        };
    }
}
