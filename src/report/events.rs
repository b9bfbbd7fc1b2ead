//! The events of a rollout, as the journal and `--json` write them (one JSON object a line).

use serde::Serialize;

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
