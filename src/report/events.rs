//! The events of a rollout, as the journal and `--json` write them (one JSON object a line).

use serde::Serialize;

use crate::ssh::RecordedKey;

/// What became of one host in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostResult {
    Upgraded,
    /// Already at the target (or, for rollback, nothing to do).
    Skipped,
    /// Failed, and restored to its old binary.
    RolledBack,
    /// Upgraded, then rolled back because of another host (batch or rollout scope).
    Reverted,
    /// Failed before any change (refused, locked, unreachable).
    Failed,
    /// Failed and could not be restored: needs a person.
    Unrestored,
    /// Passed, old master kept (keep_old_master) until its batch or the rollout passes.
    AwaitingCommit,
}

impl HostResult {
    pub fn name(self) -> &'static str {
        match self {
            HostResult::Upgraded => "upgraded",
            HostResult::Skipped => "skipped",
            HostResult::RolledBack => "rolled_back",
            HostResult::Reverted => "reverted",
            HostResult::Failed => "failed",
            HostResult::Unrestored => "unrestored",
            HostResult::AwaitingCommit => "awaiting_commit",
        }
    }
}

/// One line of the journal / `--json` stream.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RolloutEvent {
    RunStarted {
        run_id: String,
        command: String,
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
        status: String,
        elapsed_ms: u128,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    HostFinished {
        host: String,
        wave: usize,
        result: HostResult,
        elapsed_ms: u128,
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

/// Host names by what became of them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub upgraded: Vec<String>,
    pub rolled_back: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    pub untouched: Vec<String>,
    pub unrestored: Vec<String>,
}
