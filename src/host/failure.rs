//! Why a host's run turned back or stopped, as values that carry their facts (pids, paths,
//! sha256 prefixes, exit codes, gate failures). `Display` renders the sentence a failure
//! shows; callers match on the variants.

use std::fmt;
use std::time::Duration;

use super::classify::HostState;
use super::decide::{BadBinary, Problem, ProcessFailure};
use super::direction::Refusal;
use super::probe::ProbeError;
use super::record::short;
use super::upgrade::UpgradeError;
use crate::gate::failure::GateFailure;
use crate::ssh::ExitStatus;

/// Why the new binary was judged and failed: the run turns back to where it started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Judged {
    #[error("the new binary exited at start{}", Evidence(log))]
    Exited {
        /// The last lines of nginx's error log, when one was found.
        log: Vec<String>,
    },
    #[error("the new binary did not become ready within {waited:?}")]
    NotReady { waited: Duration },
    #[error("found a new binary that never became ready; killed it")]
    Hung,
    #[error("gate failed with both generations serving: {0}")]
    BothServing(GateFailure),
    #[error("old workers did not finish within {waited:?} (on_drain_timeout: fail)")]
    Drain { waited: Duration },
    #[error("gate failed: {0}")]
    Gate(GateFailure),
    #[error("gate failed: during the soak ({after:?} in): {failure}")]
    Soak {
        after: Duration,
        failure: GateFailure,
    },
    #[error("gate failed: {0}")]
    Process(ProcessFailure),
    #[error("new master {pid} is gone or has no workers before commit")]
    NotServing { pid: u32 },
    #[error("gate failed after commit, rolled back to the version before: {0}")]
    AfterCommit(GateFailure),
}

/// ` (error log: a | b | c)`, or nothing without lines.
pub struct Evidence<'a>(pub &'a [String]);

impl fmt::Display for Evidence<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, " (error log: {})", self.0.join(" | "))
    }
}

/// Why a run was refused before it changed anything.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Blocker {
    /// Every failed preflight check.
    #[error("{}", Problems(.0))]
    Preflight(Vec<Problem>),
    #[error("pre gate failed: {0}")]
    PreGate(GateFailure),
    /// The staged binary failed its check on the host (it was removed).
    #[error("{0}")]
    NewBinary(BadBinary),
    /// The host is in a state no move leads out of safely.
    #[error("{0}")]
    Host(Refusal),
    #[error(
        "the old master {pid} (running {}) is still finishing connections with {workers} worker(s) after {waited:?}; nginx ignores USR2 until it exits: run again later (or set worker_shutdown_timeout in the old version's config)",
        short(sha)
    )]
    StillDraining {
        pid: u32,
        sha: String,
        workers: usize,
        waited: Duration,
    },
    /// At its turn, the master the preparation saw no longer serves as it did (stopped,
    /// restarted, or upgraded by someone else): nothing was changed; the next run sees it anew.
    #[error(
        "the host changed since it was prepared: master {pid} is no longer the one serving (named by the pid file, without .oldbin, with accepting workers); nothing was changed"
    )]
    Moved { pid: u32 },
    #[error("no operation")]
    NoOperation,
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A command that ran and failed: its exit status and what it printed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {output}")]
pub struct CommandFailed {
    pub status: ExitStatus,
    /// Its stdout and stderr, trimmed, joined by a space.
    pub output: String,
}

/// What went wrong in a step, once the run may have changed the host.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("{0}")]
    Command(CommandFailed),
    /// The lock's holder ended with something other than `busy`.
    #[error("{output}")]
    LockAnswer { status: ExitStatus, output: String },
    #[error("{0}")]
    Probe(ProbeError),
    /// The checked signal script refused (not the expected process).
    #[error("{answer}")]
    SignalRefused {
        pid: u32,
        signal: &'static str,
        answer: String,
    },
    #[error("master {pid} is gone")]
    MasterGone { pid: u32 },
    #[error("uploaded {got} but expected {expected}")]
    UploadMismatch { got: String, expected: String },
    #[error("old master {pid} did not exit")]
    OldMasterStayed { pid: u32 },
    #[error(
        "the running master's binary is {} not the target {}",
        short(runs.as_deref().unwrap_or("?")),
        short(target)
    )]
    WrongBinary {
        runs: Option<String>,
        target: String,
    },
    #[error("old master {pid} did not start workers after HUP")]
    NoWorkersAfterHup { pid: u32 },
    #[error("new master {pid} would not exit")]
    NewMasterStayed { pid: u32 },
    #[error("master {pid}'s pid file did not come back")]
    PidFileNotBack { pid: u32 },
    #[error("no backup {path} to restore")]
    NoBackup { path: String },
    #[error("did not settle after {moves} moves")]
    Unsettled { moves: usize },
    /// The spec's gates could not be prepared (before the host changed).
    #[error("{0}")]
    Gate(GateFailure),
    /// A refusal after the host was changed: no longer "before any change".
    #[error("{0}")]
    Refused(Blocker),
    #[error("{}; then, going back: {again}", first.as_ref().map_or("failed".to_owned(), ToString::to_string))]
    FailedGoingBack {
        first: Option<Judged>,
        again: Judged,
    },
    #[error("going back failed, the host stays on {}: {failure}", short(stays_on))]
    BackFailed { stays_on: String, failure: Judged },
    /// A failed run, judged by a last look at the host.
    #[error("{error}; last seen: {seen}")]
    LastSeen {
        error: Box<UpgradeError>,
        seen: Seen,
    },
}

/// What a last look at a failed host showed.
#[derive(Debug, thiserror::Error)]
pub enum Seen {
    #[error("could not observe the host ({0})")]
    Unobservable(String),
    #[error("{0}")]
    State(HostState),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_sentences() {
        let exited = Judged::Exited {
            log: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            exited.to_string(),
            "the new binary exited at start (error log: a | b)"
        );
        assert_eq!(
            Judged::Exited { log: vec![] }.to_string(),
            "the new binary exited at start"
        );
        let back = Fault::FailedGoingBack {
            first: Some(Judged::Hung),
            again: Judged::NotReady {
                waited: Duration::from_secs(1),
            },
        };
        assert_eq!(
            back.to_string(),
            "found a new binary that never became ready; killed it; then, going back: the new binary did not become ready within 1s"
        );
    }
}
