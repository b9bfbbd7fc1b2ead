//! The top-level error of a command, and the one place that maps errors to exit codes.

use crate::inputs::InputError;
use crate::plan::PlanError;

/// The documented exit codes (README, `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Success = 0,
    /// The rollout failed and every failed host was restored; for `status`: some host is
    /// unreachable or not steady; for `unlock`: a held lock was not broken (declined,
    /// refused, unreachable).
    Failed = 1,
    /// Invalid input: usage, inventory, spec, binary, or host key trust that cannot be kept
    /// (accept-new with a known_hosts that cannot remember keys). Nothing was changed.
    InvalidInput = 2,
    /// Halted with at least one host that could not be restored (named in the output).
    Unrestored = 3,
    /// Paused: a maintenance window closed. Re-run to resume.
    Paused = 4,
    /// Interrupted by the operator (Ctrl-C or SIGTERM).
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("failed to plan the rollout")]
    Plan(#[source] Box<PlanError>),
    #[error("failed to parse --limit")]
    Limit(#[from] crate::model::pattern::PatternError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Trust(#[from] crate::fleet::TrustError),
    #[error("failed to create the journal {path}")]
    Journal {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to write output")]
    Output(#[source] std::io::Error),
    #[error("failed to read the answer from the terminal")]
    Prompt(#[source] std::io::Error),
    #[error("failed to read the become password from the terminal (--ask-become-pass)")]
    BecomePrompt(#[source] std::io::Error),
    #[error("failed to use the become password from {from}")]
    BecomePassword {
        from: &'static str,
        #[source]
        source: crate::ssh::BecomePasswordError,
    },
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Error {
        Error::Plan(Box::new(e))
    }
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Input(_)
            | Error::Plan(_)
            | Error::Limit(_)
            | Error::Invalid(_)
            | Error::Trust(_)
            | Error::Journal { .. }
            | Error::BecomePrompt(_)
            | Error::BecomePassword { .. } => Exit::InvalidInput,
            Error::Output(_) | Error::Runtime(_) | Error::Prompt(_) => Exit::Failed,
        }
    }
}
