//! What the per-host procedure reports as it goes: one event per step start and end, with
//! timing and, on failure, the evidence. The reporters turn these into progress and a journal.

use std::fmt;
use std::time::Duration;

/// A step of the per-host procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Connect,
    Lock,
    Observe,
    Preflight,
    Upload,
    CheckNew,
    Install,
    Start,
    Drain,
    Gate,
    Commit,
    Rollback,
    Restore,
    Cleanup,
    Record,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Lock => "lock",
            Step::Observe => "observe",
            Step::Preflight => "preflight",
            Step::Upload => "upload",
            Step::CheckNew => "check new binary",
            Step::Install => "install",
            Step::Start => "start (USR2)",
            Step::Drain => "drain (WINCH)",
            Step::Gate => "gate",
            Step::Commit => "commit (QUIT)",
            Step::Rollback => "rollback",
            Step::Restore => "restore binary",
            Step::Cleanup => "cleanup",
            Step::Record => "record",
        }
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
