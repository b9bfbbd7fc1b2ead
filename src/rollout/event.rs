//! The events of a rollout, as the journal and `--json` write them (one JSON object a line),
//! and the sink the dispatcher and the executor send them to.

use serde::Serialize;

use super::outcome::{HostResult, JobKind, Summary};
use crate::host::round_trips::Trips;
use crate::ssh::RecordedKey;

/// Where a step of one host stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Done,
    Failed,
    /// Something the operator should know that is not a failure.
    Note,
}

impl StepStatus {
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::Started => "started",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Note => "note",
        }
    }
}

/// One line of the journal / `--json` stream.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RolloutEvent {
    RunStarted {
        run_id: String,
        command: JobKind,
        spec: String,
        spec_file: Option<String>,
        binary: Option<String>,
        binary_sha256: Option<String>,
        hosts: usize,
        waves: usize,
        journal: String,
    },
    WaitingForWindow {
        opens_at: String,
    },
    /// A host key recorded under accept-new (also shown on stderr whatever the display).
    HostKeyRecorded {
        host: String,
        endpoint: String,
        key_type: String,
        fingerprint: String,
        file: String,
    },
    WaveStarted {
        wave: usize,
        canary: bool,
        hosts: Vec<String>,
    },
    Step {
        host: String,
        step: String,
        status: StepStatus,
        elapsed_ms: u128,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    HostFinished {
        host: String,
        wave: usize,
        result: HostResult,
        elapsed_ms: u128,
        /// Remote operations (in all, and on the critical path) and connections.
        round_trips: Trips,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    WaveFinished {
        wave: usize,
        failed: usize,
    },
    Halted {
        reason: String,
    },
    Summary {
        result: String,
        hosts: Summary,
        journal: String,
    },
}

impl From<RecordedKey> for RolloutEvent {
    fn from(key: RecordedKey) -> RolloutEvent {
        RolloutEvent::HostKeyRecorded {
            host: key.host,
            endpoint: key.endpoint,
            key_type: key.key_type,
            fingerprint: key.fingerprint,
            file: key.file.display().to_string(),
        }
    }
}

/// Where events go (the reporter; a recorder in tests). It shows and records; it decides
/// nothing.
pub trait Sink: Sync {
    fn emit(&self, event: RolloutEvent);
    /// A line for the operator that is not an event (a question, a note on stopping).
    fn say(&self, text: &str);
}
