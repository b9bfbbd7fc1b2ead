//! What one host's hot upgrade takes and gives (source, settings, gates, outcome, errors),
//! and `converge`: connect, run the procedure ([`super::procedure`]), reconnect after a lost
//! connection, and judge a failed host by what a last observation shows, never by intent.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::direction::Skip;
use super::event::{Event, Step};
use super::failure::{Blocker, Fault, Judged};
use super::record::short;
use super::remote::Remote;
use super::round_trips::RoundTrips;
use crate::gate::failure::GateFailure;
use crate::model::inventory::Host;
use crate::model::spec::OnDrainTimeout;
use crate::ssh::{SshError, SshErrorKind, Target, Transport};

/// Where the new binary comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A file on the controller, uploaded and verified.
    Local {
        path: std::path::PathBuf,
        sha256: String,
        size: u64,
        /// The ELF machine read from the file's header on the controller, checked against
        /// each host's `uname -m` in preflight, before the upload. `None`: not read there
        /// (the staged file is still checked on the host).
        machine: Option<u16>,
    },
    /// A file already on the host (a backup, for rollback after commit).
    Remote { path: String, sha256: String },
}

impl Source {
    pub fn sha256(&self) -> &str {
        match self {
            Source::Local { sha256, .. } | Source::Remote { sha256, .. } => sha256,
        }
    }
}

/// Deadlines of the steps (from the spec's `timeouts`).
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub command: Duration,
    pub start: Duration,
    pub drain: Duration,
    pub quit: Duration,
}

/// When a gate check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the host is touched at all (the spec's `pre` gates).
    Pre,
    /// After USR2, both generations serving: only checks that cannot be fooled by the old
    /// workers (the error log).
    BothServing,
    /// After WINCH, only the new workers serve: every gate, with its retries.
    AfterWinch,
    /// Repeated during the soak: every gate, one try each.
    Soak,
    /// After commit: a final pass; a failure rolls the host back to its backup.
    AfterCommit,
}

/// A boxed future, for the gate trait.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<(), GateFailure>> + Send + 'a>>;

/// Health gates. The process gate (new master and workers alive, not respawning) is always on
/// and built into the procedure; these are the spec's.
pub trait Gate: Sync {
    /// Called once before the host changes (e.g. to note where the error log ends).
    fn prepare<'a>(&'a self, _remote: &'a dyn Remote, _host: &'a Host) -> GateFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn check<'a>(
        &'a self,
        remote: &'a dyn Remote,
        host: &'a Host,
        phase: Phase,
        new_master: Option<u32>,
    ) -> GateFuture<'a>;

    /// How long to keep re-running the gates after WINCH.
    fn soak(&self) -> Duration {
        Duration::ZERO
    }

    /// Where the first check at `phase` connects through the host, when that connection
    /// may be opened ahead of its request (see [`super::tunnel_ahead`]).
    fn first_tunnel(&self, _host: &Host, _phase: Phase) -> Option<super::tunnel_ahead::Tunnel> {
        None
    }

    /// Whether anything is checked at `phase` (a phase with nothing to check lets the steps
    /// around it share one command: WINCH follows USR2 on the host when nothing is checked
    /// with both generations serving).
    fn checks(&self, _phase: Phase) -> bool {
        true
    }
}

/// No gates but the built-in process checks.
pub struct ProcessChecksOnly;

impl Gate for ProcessChecksOnly {
    fn check<'a>(
        &'a self,
        _: &'a dyn Remote,
        _: &'a Host,
        _: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn checks(&self, _phase: Phase) -> bool {
        false
    }
}

/// What a run is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Upgrade to the source and commit (QUIT to the old master) at once.
    Upgrade,
    /// Upgrade to the source, but stop before commit: the old master stays alive without
    /// workers, so a rollback is an instant HUP + QUIT. A later `Upgrade` run commits it.
    UpgradeDeferCommit,
    /// Take a host that runs the source back one version in its recorded history: an
    /// operation in flight is undone (upgrade) or finished (rollback); otherwise a reverse
    /// upgrade to the version before.
    Rollback,
}

/// Settings of the per-host procedure, resolved once per run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub deadlines: Deadlines,
    pub on_drain_timeout: OnDrainTimeout,
    /// The run's id, written into the host's record.
    pub run_id: String,
    /// Who holds the lock and writes the record (controller host, user, pid).
    pub owner: String,
    /// Connection attempts per host (a lost connection is retried on a new one).
    pub attempts: u32,
    /// How many versions of the host's history keep their backup beside the binary (the
    /// running one's included); older backups are removed at install. A rollback needs the
    /// backup of the version before. Default: [`KEEP_BACKUPS`] (the whole history).
    pub keep_backups: usize,
    /// The shortest deadline an upload gets, however short the command deadline is.
    /// Default: [`UPLOAD_FLOOR`] (60 s).
    pub upload_floor: Duration,
}

/// The default of [`Settings::keep_backups`]: every version the history holds.
pub const KEEP_BACKUPS: usize = super::record::HISTORY_MAX;

/// The default of [`Settings::upload_floor`].
pub const UPLOAD_FLOOR: Duration = Duration::from_secs(60);

/// How often a waiting step observes the host again.
pub const POLL: Duration = Duration::from_millis(25);

/// How long the start command, when it sends WINCH itself, waits for the old workers: most
/// drains end within it. A longer one (slow clients) goes on in the winch step's own command
/// for the rest of the drain deadline, so the progress shows the host draining, not
/// installing.
pub const FOLDED_DRAIN: Duration = Duration::from_secs(1);

/// A run that has not arrived after this many moves is stuck: it stops with an error.
pub const MAX_MOVES: usize = 24;

/// How often gates are re-run during a soak.
pub const SOAK_ROUND: Duration = Duration::from_millis(500);

/// How long the new binary's `-t` may take on the host (the check script's `timeout`).
pub const CONFIG_TEST_LIMIT: Duration = Duration::from_secs(20);

/// How a run ended when it did not fail outright.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The host runs the target; one master; the old binary kept as `backup`.
    Upgraded { from: String, backup: String },
    /// It already did; nothing was changed (leftover temp files removed).
    AlreadyAtTarget,
    /// The new master serves and passed its gates; the old master waits, without workers,
    /// for the orchestrator to commit or roll back.
    AwaitingCommit { old_pid: u32, new_pid: u32 },
    /// Something failed after the host was touched, and the host is back on its old binary
    /// with its old master serving; or a rollback took it back as asked.
    RolledBack { reason: Back },
    /// Nothing for this run on this host (a rollback of a host that runs another version, or
    /// has no earlier version recorded).
    NotApplicable { reason: Skip },
}

/// Why a host went back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Back {
    /// The new binary was judged and failed.
    #[error("{0}")]
    Failed(Judged),
    /// A rollback, as asked: the host runs this sha256.
    #[error("back on {}", short(to))]
    Asked { to: String },
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{host}: refused before any change: {reason}")]
    Refused { host: String, reason: Box<Blocker> },
    #[error("{host}: locked by another controller ({owner})")]
    Locked { host: String, owner: String },
    #[error("{host}: failed to {}: {fault}", step.action())]
    Remote {
        host: String,
        step: Step,
        fault: Box<Fault>,
    },
    #[error("{host}: failed to restore the host during {}: {fault}", step.action())]
    Unrestored {
        host: String,
        step: Step,
        fault: Box<Fault>,
    },
    #[error("{host}: lost the lock: another controller may act on this host, stopped")]
    LockLost { host: String },
    #[error(transparent)]
    Ssh(#[from] SshError),
}

impl UpgradeError {
    /// What went wrong, without the host's name (for a step's event).
    pub fn cause(&self) -> String {
        match self {
            UpgradeError::Refused { reason, .. } => reason.to_string(),
            UpgradeError::Locked { owner, .. } => {
                format!("locked by another controller ({owner})")
            }
            UpgradeError::Remote { fault, .. } | UpgradeError::Unrestored { fault, .. } => {
                fault.to_string()
            }
            UpgradeError::LockLost { .. } => {
                "lost the lock: another controller may act on this host, stopped".into()
            }
            UpgradeError::Ssh(e) => e.to_string(),
        }
    }

    /// A lost connection or lock: re-running the procedure on a new connection (which takes
    /// the lock again) is safe.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, UpgradeError::Ssh(e) if matches!(e.kind(), SshErrorKind::Disconnected | SshErrorKind::Timeout { .. } | SshErrorKind::HoldLost { .. }))
    }
}

/// Connects (again, after a lost connection) and runs the procedure until the host
/// converges: a dropped connection is retried by re-reading the host, never by repeating a
/// signal blindly. [`super::prepare::prepare`], then [`super::prepare::Prepared::switch`].
pub async fn converge(
    transport: &Transport,
    target: &Target,
    job: &Job<'_>,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Outcome, UpgradeError> {
    super::prepare::prepare(transport, target, *job, events)
        .await?
        .switch(events)
        .await
}

/// What one host's run is: the host, the binary, the intent, the settings and the gates.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub host: &'a Host,
    pub source: &'a Source,
    pub intent: Intent,
    pub settings: &'a Settings,
    pub gate: &'a dyn Gate,
    /// Where the run's round trips are counted.
    pub round_trips: &'a RoundTrips,
}

impl UpgradeError {
    /// Whether the host may have been changed before this error (so its state must be
    /// observed before the error is believed).
    pub fn touched(&self) -> bool {
        !matches!(
            self,
            UpgradeError::Refused { .. } | UpgradeError::Locked { .. }
        ) && !matches!(self, UpgradeError::Ssh(e) if matches!(e.step(), crate::ssh::Step::Connect | crate::ssh::Step::Handshake | crate::ssh::Step::Authenticate))
    }
}
