//! What the per-host procedure reports as it goes: one event per step start and end, with
//! timing and, on failure, the evidence. The reporters turn these into progress and a journal.

use std::fmt;
use std::time::Duration;

/// A step of the per-host procedure, named as nginx's upgrade procedure reads: connect, lock,
/// observe, preflight, stage (upload, verify, `-t`), install, usr2, winch, gate, commit; and
/// going back: revert (the new master out), restore (the old binary on disk); around them,
/// cleanup and record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Connect,
    Lock,
    Observe,
    Preflight,
    Stage,
    Install,
    Usr2,
    Winch,
    Gate,
    Commit,
    Revert,
    Restore,
    Cleanup,
    Record,
}

impl Step {
    /// The step's name in events and the journal.
    pub fn name(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Lock => "lock",
            Step::Observe => "observe",
            Step::Preflight => "preflight",
            Step::Stage => "stage",
            Step::Install => "install",
            Step::Usr2 => "usr2",
            Step::Winch => "winch",
            Step::Gate => "gate",
            Step::Commit => "commit",
            Step::Revert => "revert",
            Step::Restore => "restore",
            Step::Cleanup => "cleanup",
            Step::Record => "record",
        }
    }

    /// What the step does, as an error says it failed to (`failed to start (USR2)`).
    pub fn action(self) -> &'static str {
        match self {
            Step::Stage => "stage the new binary",
            Step::Usr2 => "start (USR2)",
            Step::Winch => "drain (WINCH)",
            Step::Commit => "commit (QUIT)",
            Step::Revert => "rollback",
            Step::Restore => "restore binary",
            other => other.name(),
        }
    }
}

impl Step {
    /// The steps that change the live host: from the first of them on, the host's turn has
    /// come (the critical path of a rollout).
    pub fn changes_the_host(self) -> bool {
        matches!(
            self,
            Step::Install | Step::Usr2 | Step::Winch | Step::Commit | Step::Revert | Step::Restore
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Started,
    Done,
    Failed(String),
    /// Something the operator should know that is not a failure (a new history started, a
    /// slow drain proceeding, old workers terminated).
    Note(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub host: String,
    pub step: Step,
    pub status: Status,
    /// Time since the step started (zero for `Started`).
    pub elapsed: Duration,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            Status::Started => write!(f, "{}: {} ...", self.host, self.step),
            Status::Done => write!(f, "{}: {} done in {:?}", self.host, self.step, self.elapsed),
            Status::Note(text) => write!(f, "{}: {}: {text}", self.host, self.step),
            Status::Failed(why) => write!(
                f,
                "{}: {} failed after {:?}: {why}",
                self.host, self.step, self.elapsed
            ),
        }
    }
}
