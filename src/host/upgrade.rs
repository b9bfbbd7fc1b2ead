//! One host's hot upgrade, as an observe-decide-act loop: every wait polls the host with the
//! probe until a pure condition from [`super::decide`] holds or its deadline passes; every
//! action is one checked remote command. A run starts from whatever the host looks like, so
//! re-running after a crash or a lost connection brings the host forward or back.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::decide::{self, Entry, Start};
use super::event::{Event, Status, Step};
use super::lock;
use super::observe::{Master, Observation};
use super::probe::{self, Depth, ProbeError};
use super::scripts::{self, Layout, SignalTarget};
use crate::model::inventory::Host;
use crate::ssh::{Heartbeat, HoldOutcome, Session, SshError, SshErrorKind, Target, Transport};

/// Where the new binary comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A file on the controller, uploaded and verified.
    Local {
        path: std::path::PathBuf,
        sha256: String,
        size: u64,
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
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Health gates. The process gate (new master and workers alive, not respawning) is always on
/// and built into the procedure; these are the spec's.
pub trait Gate: Sync {
    /// Called once before the host changes (e.g. to note where the error log ends).
    fn prepare<'a>(&'a self, _session: &'a Session, _host: &'a Host) -> GateFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn check<'a>(
        &'a self,
        session: &'a Session,
        host: &'a Host,
        phase: Phase,
        new_master: Option<u32>,
    ) -> GateFuture<'a>;

    /// How long to keep re-running the gates after WINCH.
    fn soak(&self) -> Duration {
        Duration::ZERO
    }
}

/// No gates but the built-in process checks.
pub struct ProcessChecksOnly;

impl Gate for ProcessChecksOnly {
    fn check<'a>(
        &'a self,
        _: &'a Session,
        _: &'a Host,
        _: Phase,
        _: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async { Ok(()) })
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
    /// Take the host back: the two-master rollback while both masters live, otherwise a
    /// second upgrade to the newest backup.
    Rollback,
}

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
    /// with its old master serving.
    RolledBack { reason: String },
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{host}: refused before any change: {reason}")]
    Refused { host: String, reason: String },
    #[error("{host}: locked by another controller ({owner})")]
    Locked { host: String, owner: String },
    #[error("{host}: failed to {step}: {reason}")]
    Remote {
        host: String,
        step: Step,
        reason: String,
    },
    #[error("{host}: failed to restore the host during {step}: {reason}")]
    Unrestored {
        host: String,
        step: Step,
        reason: String,
    },
    #[error(transparent)]
    Ssh(#[from] SshError),
}

impl UpgradeError {
    /// A lost connection or lock: re-running the procedure on a new connection (which takes
    /// the lock again) is safe.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, UpgradeError::Ssh(e) if matches!(e.kind(), SshErrorKind::Disconnected | SshErrorKind::Timeout { .. } | SshErrorKind::HoldLost { .. }))
    }
}

/// One run of the procedure on one host.
pub struct Procedure<'a> {
    pub session: &'a Session,
    pub host: &'a Host,
    pub source: &'a Source,
    pub intent: Intent,
    pub deadlines: Deadlines,
    /// Written into the lock file: who holds it.
    pub owner: &'a str,
    pub gate: &'a dyn Gate,
    /// How many backups to keep beside the binary.
    pub keep_backups: usize,
    pub events: &'a (dyn Fn(Event) + Sync),
}

const POLL: Duration = Duration::from_millis(25);
/// How often gates are re-run during a soak.
const SOAK_ROUND: Duration = Duration::from_millis(500);

impl Procedure<'_> {
    fn layout(&self) -> Layout {
        Layout {
            binary: self.host.nginx.binary.clone(),
        }
    }

    fn emit(&self, step: Step, status: Status, since: Instant) {
        (self.events)(Event {
            host: self.host.name.clone(),
            step,
            status,
            elapsed: since.elapsed(),
        });
    }

    fn remote(&self, step: Step, reason: impl Into<String>) -> UpgradeError {
        UpgradeError::Remote {
            host: self.host.name.clone(),
            step,
            reason: reason.into(),
        }
    }

    fn unrestored(&self, step: Step, reason: impl Into<String>) -> UpgradeError {
        UpgradeError::Unrestored {
            host: self.host.name.clone(),
            step,
            reason: reason.into(),
        }
    }

    /// Takes the lock, runs the procedure, releases the lock.
    pub async fn run(&self) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Lock, Status::Started, t);
        let layout = self.layout();
        let beat = Heartbeat::DEFAULT;
        let taken = lock::take(
            self.session,
            &layout,
            self.owner,
            beat,
            self.deadlines.command,
        );
        let held = match taken.await? {
            HoldOutcome::Held(h) => h,
            HoldOutcome::Refused(out) => {
                let text = out.stdout_lossy().trim().to_owned();
                let err = match text.strip_prefix("busy ") {
                    Some(owner) => UpgradeError::Locked {
                        host: self.host.name.clone(),
                        owner: owner.trim().to_owned(),
                    },
                    None => self.remote(
                        Step::Lock,
                        format!("{text} {}", out.stderr_lossy().trim())
                            .trim()
                            .to_owned(),
                    ),
                };
                self.emit(Step::Lock, Status::Failed(err.to_string()), t);
                return Err(err);
            }
        };
        self.emit(Step::Lock, Status::Done, t);
        // A controller that has lost its lock does nothing more on the host.
        let result = tokio::select! {
            biased;
            result = self.locked() => result,
            lost = held.lost() => Err(lost.into()),
        };
        held.release().await;
        result
    }

    /// A full observation: checksums and versions included.
    async fn observe(&self) -> Result<Observation, UpgradeError> {
        self.observe_at(Depth::Full).await
    }

    async fn observe_at(&self, depth: Depth) -> Result<Observation, UpgradeError> {
        match probe::run(self.session, self.host, depth, self.deadlines.command).await {
            Ok(obs) => Ok(obs),
            Err(ProbeError::Ssh(e)) => Err(e.into()),
            Err(e) => Err(self.remote(Step::Observe, e.to_string())),
        }
    }

    /// Observes until `cond` holds (its value) or `limit` passes (the last observation).
    async fn poll<T>(
        &self,
        limit: Duration,
        mut cond: impl FnMut(&Observation) -> Option<T>,
    ) -> Result<Result<T, Observation>, UpgradeError> {
        let started = Instant::now();
        loop {
            let obs = self.observe_at(Depth::Quick).await?;
            if let Some(v) = cond(&obs) {
                return Ok(Ok(v));
            }
            if started.elapsed() >= limit {
                return Ok(Err(obs));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn exec(
        &self,
        step: Step,
        cmd: &crate::ssh::RemoteCommand,
    ) -> Result<String, UpgradeError> {
        let out = self.session.exec(cmd, self.deadlines.command).await?;
        if !out.success() {
            let text = format!(
                "{} {}",
                out.stdout_lossy().trim(),
                out.stderr_lossy().trim()
            );
            return Err(self.remote(step, format!("exit {}: {}", out.status, text.trim())));
        }
        Ok(out.stdout_lossy().into_owned())
    }

    /// Sends a signal to a checked process; `Ok(false)` when the process is already gone.
    async fn signal(
        &self,
        step: Step,
        pid: u32,
        sig: &str,
        target: SignalTarget,
    ) -> Result<bool, UpgradeError> {
        let out = self
            .session
            .exec(&scripts::signal(pid, sig, target), self.deadlines.command)
            .await?;
        match out.stdout_lossy().trim() {
            "sent" => Ok(true),
            "gone" => Ok(false),
            other => Err(self.remote(step, other.to_owned())),
        }
    }

    async fn cleanup(&self, obs: &Observation) -> Result<(), UpgradeError> {
        let layout = self.layout();
        let leftovers: Vec<String> = obs
            .staged
            .iter()
            .filter(|p| layout.is_stage(p))
            .cloned()
            .collect();
        if !leftovers.is_empty() {
            self.exec(Step::Cleanup, &scripts::cleanup(&leftovers))
                .await?;
        }
        Ok(())
    }

    async fn locked(&self) -> Result<Outcome, UpgradeError> {
        if self.intent == Intent::Rollback {
            return self.roll_back().await;
        }
        let obs = self.observe().await?;
        match decide::entry(&obs, self.source.sha256()) {
            Entry::AtTarget => {
                self.cleanup(&obs).await?;
                Ok(Outcome::AlreadyAtTarget)
            }
            Entry::Refuse(reason) => Err(UpgradeError::Refused {
                host: self.host.name.clone(),
                reason,
            }),
            Entry::Fresh(master) => self.fresh(&obs, &master).await,
            Entry::Resume { old, new } => self.after_start(&old, &new).await,
            Entry::Revert { old, new } => {
                let reason = format!(
                    "found two masters, the new one ({}) not running the target: took the host back",
                    new.pid
                );
                self.revert(&old, new.pid, &workers_of(&new), reason).await
            }
            Entry::Hung { old, children } => {
                self.kill_hung(&old, &children).await?;
                self.restore_after_failed_start(
                    &old,
                    "found a new binary that never became ready; killed it".into(),
                )
                .await
            }
        }
    }

    /// Rollback: two masters -> HUP/QUIT; one master -> a second upgrade to the newest
    /// backup that is not what runs now.
    async fn roll_back(&self) -> Result<Outcome, UpgradeError> {
        let obs = self.observe().await?;
        let running = |m: &Master| m.exe_sha256.clone().unwrap_or_default();
        match decide::entry(&obs, "") {
            Entry::Resume { old, new } | Entry::Revert { old, new } => {
                self.revert(
                    &old,
                    new.pid,
                    &workers_of(&new),
                    "rolled back on request".into(),
                )
                .await
            }
            Entry::Hung { old, children } => {
                self.kill_hung(&old, &children).await?;
                self.restore_after_failed_start(&old, "killed a hung new binary".into())
                    .await
            }
            Entry::Fresh(master) => {
                let now = running(&master);
                // Only a host that runs the binary being taken away is rolled back; any other
                // (never upgraded, or already back) is left alone.
                let from = self.source.sha256();
                if !from.is_empty() && now != from {
                    return Ok(Outcome::AlreadyAtTarget);
                }
                let Some(backup) = obs
                    .backups
                    .iter()
                    .find(|b| !b.path.ends_with(&format!(".{}", &now[..now.len().min(16)])))
                else {
                    return Err(UpgradeError::Refused {
                        host: self.host.name.clone(),
                        reason: "no backup of an earlier binary to go back to".into(),
                    });
                };
                let cmd =
                    crate::ssh::RemoteCommand::script("sha256sum < \"$1\"", [backup.path.clone()])
                        .privileged()
                        .labelled("hash backup");
                let out = self.exec(Step::Restore, &cmd).await?;
                let sha256 = out.split_whitespace().next().unwrap_or_default().to_owned();
                let source = Source::Remote {
                    path: backup.path.clone(),
                    sha256,
                };
                // Going back is not judged by the spec's gates (they judged the new version,
                // and may still fail): only the built-in process checks apply.
                let second = Procedure {
                    source: &source,
                    intent: Intent::Upgrade,
                    gate: &ProcessChecksOnly,
                    ..*self
                };
                Box::pin(second.locked()).await
            }
            Entry::AtTarget => unreachable_at_target(self),
            Entry::Refuse(reason) => Err(UpgradeError::Refused {
                host: self.host.name.clone(),
                reason,
            }),
        }
    }

    async fn fresh(&self, obs: &Observation, master: &Master) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Preflight, Status::Started, t);
        let layout = self.layout();
        let size = match self.source {
            Source::Local { size, .. } => *size,
            Source::Remote { .. } => obs.binary.as_ref().and_then(|b| b.size).unwrap_or(0),
        };
        let mut problems = decide::preflight(obs, master, layout.binary.as_str(), size);
        let running = master.exe_sha256.clone().unwrap_or_default();
        let on_disk = obs
            .binary
            .as_ref()
            .and_then(|b| b.sha256.clone())
            .unwrap_or_default();
        let backup = layout.backup(&running);
        // The disk already holds the target (a previous run installed it) only with the
        // running binary's backup beside it; any other difference is someone else's change.
        let installed =
            on_disk == self.source.sha256() && obs.backups.iter().any(|b| b.path == backup);
        if on_disk != running && !installed {
            problems.push(format!(
                "the binary on disk ({}) is not the one the master runs ({}): it was changed outside ngfleet",
                short(&on_disk),
                short(&running)
            ));
        }
        if !problems.is_empty() {
            let reason = problems.join("; ");
            self.emit(Step::Preflight, Status::Failed(reason.clone()), t);
            return Err(UpgradeError::Refused {
                host: self.host.name.clone(),
                reason,
            });
        }
        self.cleanup(obs).await?;
        self.emit(Step::Preflight, Status::Done, t);
        if let Err(reason) = self
            .gate
            .check(self.session, self.host, Phase::Pre, None)
            .await
        {
            let reason = format!("pre gate failed: {reason}");
            self.emit(Step::Gate, Status::Failed(reason.clone()), t);
            return Err(UpgradeError::Refused {
                host: self.host.name.clone(),
                reason,
            });
        }
        if let Err(reason) = self.gate.prepare(self.session, self.host).await {
            return Err(self.remote(Step::Gate, reason));
        }

        if !installed {
            let staged = self.stage(&layout).await?;
            let t = Instant::now();
            self.emit(Step::CheckNew, Status::Started, t);
            let out = self
                .exec(
                    Step::CheckNew,
                    &scripts::check_new(&staged, &master.argv[1..]),
                )
                .await?;
            if let Err(reason) = decide::check_new(&out) {
                self.exec(
                    Step::Cleanup,
                    &scripts::cleanup(std::slice::from_ref(&staged)),
                )
                .await?;
                self.emit(Step::CheckNew, Status::Failed(reason.clone()), t);
                return Err(UpgradeError::Refused {
                    host: self.host.name.clone(),
                    reason,
                });
            }
            self.emit(Step::CheckNew, Status::Done, t);
            let t = Instant::now();
            self.emit(Step::Install, Status::Started, t);
            let cmd = scripts::install(
                &layout,
                &staged,
                &backup,
                self.keep_backups,
                self.source.sha256(),
            );
            if let Err(e) = self.exec(Step::Install, &cmd).await {
                let _ = self
                    .exec(
                        Step::Cleanup,
                        &scripts::cleanup(std::slice::from_ref(&staged)),
                    )
                    .await;
                self.emit(Step::Install, Status::Failed(e.to_string()), t);
                return Err(e);
            }
            self.emit(Step::Install, Status::Done, t);
        }
        self.start(master).await
    }

    /// Puts the new binary in a temp file beside the old one; returns its path.
    async fn stage(&self, layout: &Layout) -> Result<String, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Upload, Status::Started, t);
        let tag = format!("{:08x}", rand::random::<u32>());
        let staged = layout.stage(&tag);
        match self.source {
            Source::Local { path, sha256, .. } => {
                let up = self
                    .session
                    .upload(
                        path,
                        &staged,
                        self.deadlines.command.max(Duration::from_secs(60)),
                    )
                    .await?;
                if up.sha256 != *sha256 {
                    return Err(self.remote(
                        Step::Upload,
                        format!("uploaded {} but expected {}", up.sha256, sha256),
                    ));
                }
            }
            Source::Remote { path, .. } => {
                let copy = crate::ssh::RemoteCommand::script(
                    "umask 077 && cp -- \"$1\" \"$2\"",
                    [path.clone(), staged.clone()],
                )
                .privileged()
                .labelled("stage backup");
                self.exec(Step::Upload, &copy).await?;
            }
        }
        self.emit(Step::Upload, Status::Done, t);
        Ok(staged)
    }

    async fn start(&self, old: &Master) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Start, Status::Started, t);
        if !self
            .signal(Step::Start, old.pid, "USR2", SignalTarget::Master)
            .await?
        {
            return Err(self.remote(Step::Start, format!("master {} is gone", old.pid)));
        }
        let waited = self
            .poll(self.deadlines.start, |obs| {
                match decide::start(obs, old.pid) {
                    Start::Waiting => None,
                    other => Some(other),
                }
            })
            .await?;
        match waited {
            Ok(Start::Ready(new)) => {
                self.emit(Step::Start, Status::Done, t);
                let both = self
                    .gate
                    .check(self.session, self.host, Phase::BothServing, Some(new.pid))
                    .await;
                if let Err(reason) = both {
                    self.emit(Step::Gate, Status::Failed(reason.clone()), t);
                    let reason = format!("gate failed with both generations serving: {reason}");
                    return self.revert(old, new.pid, &workers_of(&new), reason).await;
                }
                self.after_start(old, &new).await
            }
            Ok(_) => {
                let log = self.error_log(old).await;
                let reason = format!("the new binary exited at start{log}");
                self.emit(Step::Start, Status::Failed(reason.clone()), t);
                self.restore_after_failed_start(old, reason).await
            }
            Err(last) => {
                let hung = decide::find(&last, old.pid)
                    .map(decide::strange_children)
                    .unwrap_or_default();
                let reason = format!(
                    "the new binary did not become ready within {:?}; killed {:?}",
                    self.deadlines.start, hung
                );
                self.emit(Step::Start, Status::Failed(reason.clone()), t);
                if let Some(new) = last
                    .master
                    .as_ref()
                    .filter(|m| m.pid != old.pid && m.ppid == Some(old.pid))
                {
                    // It became a master but never got workers: a two-master rollback.
                    return self.revert(old, new.pid, &workers_of(new), reason).await;
                }
                self.kill_hung(old, &hung).await?;
                self.restore_after_failed_start(old, reason).await
            }
        }
    }

    async fn kill_hung(&self, old: &Master, children: &[u32]) -> Result<(), UpgradeError> {
        // A hung new binary keeps nginx's blocked signal mask: only KILL ends it.
        for &pid in children {
            self.signal(Step::Rollback, pid, "KILL", SignalTarget::ChildOf(old.pid))
                .await?;
        }
        Ok(())
    }

    /// The new binary never became a master: wait for the old master's pid file, put the
    /// old binary back.
    async fn restore_after_failed_start(
        &self,
        old: &Master,
        reason: String,
    ) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Rollback, Status::Started, t);
        self.back_on_old(old, None, reason, t).await
    }

    async fn after_start(&self, old: &Master, new: &Master) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Drain, Status::Started, t);
        self.signal(Step::Drain, old.pid, "WINCH", SignalTarget::Master)
            .await?;
        let drained = self
            .poll(self.deadlines.drain, |obs| {
                decide::drained(obs, old.pid).then_some(())
            })
            .await?;
        if drained.is_err() {
            let reason = format!(
                "old workers did not finish within {:?}",
                self.deadlines.drain
            );
            self.emit(Step::Drain, Status::Failed(reason.clone()), t);
            return self.revert(old, new.pid, &workers_of(new), reason).await;
        }
        self.emit(Step::Drain, Status::Done, t);

        let t = Instant::now();
        self.emit(Step::Gate, Status::Started, t);
        let before = self.observe_at(Depth::Quick).await?;
        let mut verdict = self
            .gate
            .check(self.session, self.host, Phase::AfterWinch, Some(new.pid))
            .await;
        // The process gate compares the new master before and after the gates ran.
        let mut after = self.observe_at(Depth::Quick).await?;
        verdict = verdict.and_then(|()| decide::process_gate(&before, &after, new.pid));
        let soak = self.gate.soak();
        let soak_started = Instant::now();
        while verdict.is_ok() && soak_started.elapsed() < soak {
            tokio::time::sleep(SOAK_ROUND.min(soak)).await;
            verdict = self
                .gate
                .check(self.session, self.host, Phase::Soak, Some(new.pid))
                .await
                .map_err(|e| format!("during the soak ({:?} in): {e}", soak_started.elapsed()));
            let now = self.observe_at(Depth::Quick).await?;
            verdict = verdict.and_then(|()| decide::process_gate(&after, &now, new.pid));
            after = now;
        }
        if let Err(reason) = verdict {
            self.emit(Step::Gate, Status::Failed(reason.clone()), t);
            let seen = decide::find(&before, new.pid)
                .map(workers_of)
                .unwrap_or_default();
            return self
                .revert(old, new.pid, &seen, format!("gate failed: {reason}"))
                .await;
        }
        self.emit(Step::Gate, Status::Done, t);
        if self.intent == Intent::UpgradeDeferCommit {
            return Ok(Outcome::AwaitingCommit {
                old_pid: old.pid,
                new_pid: new.pid,
            });
        }

        let t = Instant::now();
        self.emit(Step::Commit, Status::Started, t);
        self.signal(Step::Commit, old.pid, "QUIT", SignalTarget::Master)
            .await?;
        let done = self
            .poll(self.deadlines.quit, |obs| {
                decide::committed(obs, new.pid).then_some(obs.clone())
            })
            .await?;
        done.map_err(|_| {
            self.remote(Step::Commit, format!("old master {} did not exit", old.pid))
        })?;
        let obs = self.observe().await?;
        let runs = obs.master.as_ref().and_then(|m| m.exe_sha256.as_deref());
        if runs != Some(self.source.sha256()) {
            return Err(self.remote(
                Step::Commit,
                format!(
                    "the running master's binary is {} not the target {}",
                    short(runs.unwrap_or("?")),
                    short(self.source.sha256())
                ),
            ));
        }
        self.emit(Step::Commit, Status::Done, t);
        let last = self
            .gate
            .check(self.session, self.host, Phase::AfterCommit, Some(new.pid))
            .await;
        if let Err(reason) = last {
            self.emit(Step::Gate, Status::Failed(reason.clone()), t);
            return match Box::pin(self.roll_back()).await? {
                Outcome::Upgraded { .. } => Ok(Outcome::RolledBack {
                    reason: format!(
                        "gate failed after commit, rolled back to the backup: {reason}"
                    ),
                }),
                other => Ok(other),
            };
        }
        Ok(Outcome::Upgraded {
            from: old.exe_sha256.clone().unwrap_or_default(),
            backup: self
                .layout()
                .backup(old.exe_sha256.as_deref().unwrap_or_default()),
        })
    }

    /// Rollback while two masters exist: old workers back (HUP), new master out (QUIT, then
    /// TERM, then KILL), orphans killed, old pid file back, old binary back.
    async fn revert(
        &self,
        old: &Master,
        new_pid: u32,
        seen_workers: &[u32],
        reason: String,
    ) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Rollback, Status::Started, t);
        // Evidence first, while the new master's lines are the last in the log.
        let reason = format!("{reason}{}", self.error_log(old).await);
        self.signal(Step::Rollback, old.pid, "HUP", SignalTarget::Master)
            .await?;
        let serving = self
            .poll(self.deadlines.start, |obs| {
                decide::old_serving(obs, old.pid).then_some(obs.clone())
            })
            .await?;
        let obs = serving.map_err(|_| {
            self.unrestored(
                Step::Rollback,
                format!("old master {} did not start workers after HUP", old.pid),
            )
        })?;
        let mut new_workers: Vec<u32> = decide::find(&obs, new_pid)
            .map(workers_of)
            .unwrap_or_default();
        for pid in seen_workers {
            if !new_workers.contains(pid) {
                new_workers.push(*pid);
            }
        }
        let mut gone = false;
        for (sig, share) in [("QUIT", 2), ("TERM", 4), ("KILL", 4)] {
            if !self
                .signal(Step::Rollback, new_pid, sig, SignalTarget::Master)
                .await
                .unwrap_or(false)
                && sig != "QUIT"
            {
                gone = true;
                break;
            }
            let limit = self.deadlines.quit / share;
            if self
                .poll(limit, |obs| {
                    decide::find(obs, new_pid).is_none().then_some(())
                })
                .await?
                .is_ok()
            {
                gone = true;
                break;
            }
        }
        if !gone {
            return Err(self.unrestored(
                Step::Rollback,
                format!("new master {new_pid} would not exit"),
            ));
        }
        for pid in new_workers {
            // Orphans of a killed new master keep accepting on the shared socket.
            let _ = self
                .signal(Step::Rollback, pid, "KILL", SignalTarget::Worker)
                .await;
        }
        self.back_on_old(old, Some(new_pid), reason, t).await
    }

    /// The end of every rollback: wait until the old master is the only master again (pid
    /// file back, `.oldbin` gone, its workers serving, the new master gone), then put the old
    /// binary back.
    async fn back_on_old(
        &self,
        old: &Master,
        new_pid: Option<u32>,
        reason: String,
        t: Instant,
    ) -> Result<Outcome, UpgradeError> {
        let back = self
            .poll(self.deadlines.quit, |obs| {
                decide::reverted(obs, old.pid, new_pid).then_some(())
            })
            .await?;
        if back.is_err() {
            return Err(self.unrestored(
                Step::Rollback,
                format!("master {}'s pid file did not come back", old.pid),
            ));
        }
        self.restore_binary(old).await?;
        self.emit(Step::Rollback, Status::Done, t);
        Ok(Outcome::RolledBack { reason })
    }

    /// Renames the old master's backup into place, unless the disk already holds it.
    async fn restore_binary(&self, old: &Master) -> Result<(), UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Restore, Status::Started, t);
        let want = old.exe_sha256.clone().unwrap_or_default();
        let obs = self.observe().await?;
        let on_disk = obs
            .binary
            .as_ref()
            .and_then(|b| b.sha256.clone())
            .unwrap_or_default();
        if on_disk != want {
            let backup = self.layout().backup(&want);
            if !obs.backups.iter().any(|b| b.path == backup) {
                return Err(
                    self.unrestored(Step::Restore, format!("no backup {backup} to restore"))
                );
            }
            self.exec(Step::Restore, &scripts::restore(&self.layout(), &backup))
                .await?;
            let check = self.observe().await?;
            let now = check
                .binary
                .as_ref()
                .and_then(|b| b.sha256.clone())
                .unwrap_or_default();
            if now != want {
                return Err(self.unrestored(
                    Step::Restore,
                    format!("the binary on disk is {} after restoring", short(&now)),
                ));
            }
        }
        self.cleanup(&obs).await?;
        self.emit(Step::Restore, Status::Done, t);
        Ok(())
    }

    /// ` (error log: …)` with the last lines of nginx's error log, when one is found.
    async fn error_log(&self, master: &Master) -> String {
        let mut candidates = Vec::new();
        if let Some(i) = master.argv.iter().position(|a| a == "-p")
            && let Some(prefix) = master.argv.get(i + 1)
        {
            candidates.push(format!("{}/logs/error.log", prefix.trim_end_matches('/')));
        }
        candidates.push("/var/log/nginx/error.log".to_owned());
        match self
            .exec(Step::Start, &scripts::error_log_tail(&candidates))
            .await
        {
            Ok(text) if !text.trim().is_empty() => {
                let lines: Vec<&str> = text.lines().rev().take(3).collect();
                format!(
                    " (error log: {})",
                    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
            }
            _ => String::new(),
        }
    }
}

/// `entry` with an empty target never says "at target"; kept total for the compiler.
fn unreachable_at_target(p: &Procedure<'_>) -> Result<Outcome, UpgradeError> {
    Err(UpgradeError::Refused {
        host: p.host.name.clone(),
        reason: "nothing to roll back".into(),
    })
}

fn workers_of(master: &Master) -> Vec<u32> {
    master
        .children
        .iter()
        .filter(|c| c.is_worker())
        .map(|c| c.pid)
        .collect()
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Connects (again, after a lost connection) and runs the procedure until the host
/// converges: a dropped connection is retried by re-reading the host, never by repeating a
/// signal blindly.
#[allow(clippy::too_many_arguments)]
pub async fn converge(
    transport: &Transport,
    target: &Target,
    host: &Host,
    source: &Source,
    intent: Intent,
    deadlines: Deadlines,
    owner: &str,
    gate: &dyn Gate,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Outcome, UpgradeError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let t = Instant::now();
        let emit = |status: Status| {
            events(Event {
                host: host.name.clone(),
                step: Step::Connect,
                status,
                elapsed: t.elapsed(),
            })
        };
        emit(Status::Started);
        let session = match transport.connect(target).await {
            Ok(s) => s,
            Err(e) => {
                emit(Status::Failed(e.to_string()));
                return Err(e.into());
            }
        };
        emit(Status::Done);
        let procedure = Procedure {
            session: &session,
            host,
            source,
            intent,
            deadlines,
            owner,
            gate,
            keep_backups: 3,
            events,
        };
        let result = procedure.run().await;
        session.close().await;
        match result {
            Err(e) if e.is_disconnect() && attempts < 3 => continue,
            other => return other,
        }
    }
}
