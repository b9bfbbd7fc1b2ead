//! The moves of the per-host procedure that go forward: begin an operation (preflight, pre
//! gates, stage, check, record, install), start the new binary (USR2), drain (WINCH, the
//! `on_drain_timeout` policy, gates, soak) and commit (QUIT, the record completed, the final
//! gate). The moves that go back live in [`super::revert`].

use std::time::Instant;

use super::decide::{self, Start};
use super::direction::{Aim, Commit};
use super::event::{Status, Step};
use super::observe::{Master, Observation};
use super::probe::Depth;
use super::procedure::{Flow, Procedure};
use super::record::{Op, OpKind, OpStep, Record, short};
use super::scripts::{self, Layout, SignalTarget};
use super::upgrade::{Gate, Phase, SOAK_ROUND, Source, UpgradeError};
use crate::model::spec::OnDrainTimeout;

impl Procedure<'_> {
    /// A new operation from a steady master: preflight, pre gates, stage, check, record,
    /// install. Nothing live changes before the record says where the host is going.
    pub(super) async fn begin(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        record: &Record,
        gate: &dyn Gate,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Preflight, Status::Started, t);
        let layout = self.layout_at(obs);
        let source = self.source_for(&layout, op)?;
        let size = match &source {
            Source::Local { size, .. } => *size,
            Source::Remote { .. } => obs.binary.as_ref().and_then(|b| b.size).unwrap_or(0),
        };
        let mut problems = decide::preflight(obs, master, layout.binary.as_str(), size);
        // The binary's machine against the host's, before anything is uploaded.
        if let Source::Local {
            machine: Some(machine),
            ..
        } = &source
        {
            problems.extend(decide::machine_fits(obs, *machine));
        }
        if let Source::Remote { path, .. } = &source
            && !obs.backups.iter().any(|b| &b.path == path)
        {
            problems.push(format!(
                "no backup of {} ({path}) is left beside the binary",
                short(&op.to)
            ));
        }
        if !problems.is_empty() {
            let reason = problems.join("; ");
            self.emit(Step::Preflight, Status::Failed(reason.clone()), t);
            return Err(self.refused(reason));
        }
        self.cleanup(obs).await?;
        self.emit(Step::Preflight, Status::Done, t);
        if let Err(reason) = gate
            .check(self.remote, self.job.host, Phase::Pre, None)
            .await
        {
            let reason = format!("pre gate failed: {reason}");
            self.emit(Step::Gate, Status::Failed(reason.clone()), t);
            return Err(self.refused(reason));
        }
        let staged = self.stage(&layout, &source).await?;
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
            return Err(self.refused(reason));
        }
        self.emit(Step::CheckNew, Status::Done, t);
        let t = Instant::now();
        self.emit(Step::Install, Status::Started, t);
        let written = record.with_op(
            Op {
                step: OpStep::Install,
                ..op.clone()
            },
            &self.job.settings.run_id,
            &self.job.settings.owner,
        );
        self.write_record(&written).await?;
        let keep = decide::backups_to_keep(&record.history, self.job.settings.keep_backups);
        let cmd = scripts::install(&layout, &staged, &layout.backup(&op.from), &keep, &op.to);
        if let Err(e) = self.exec(Step::Install, &cmd).await {
            self.emit(Step::Install, Status::Failed(e.to_string()), t);
            return Err(e);
        }
        self.emit(Step::Install, Status::Done, t);
        Ok(Flow::Continue)
    }

    /// Where the binary of `op.to` comes from: the controller's file for a new version, the
    /// backup beside the binary for a version the host ran before.
    fn source_for(&self, layout: &Layout, op: &Op) -> Result<Source, UpgradeError> {
        match self.job.source {
            Source::Local { sha256, .. } if *sha256 == op.to => Ok(self.job.source.clone()),
            _ if op.kind == OpKind::Rollback || op.to != self.job.source.sha256() => {
                Ok(Source::Remote {
                    path: layout.backup(&op.to),
                    sha256: op.to.clone(),
                })
            }
            other => Ok(other.clone()),
        }
    }

    /// Puts the new binary in a temp file beside the old one; returns its path.
    async fn stage(&self, layout: &Layout, source: &Source) -> Result<String, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Upload, Status::Started, t);
        let tag = format!("{:08x}", rand::random::<u32>());
        let staged = layout.stage(&tag);
        let result = match source {
            Source::Local { path, sha256, .. } => {
                let deadline = self.deadlines().command.max(self.job.settings.upload_floor);
                match self.remote.upload(path, &staged, deadline).await {
                    Ok(got) if got == *sha256 => Ok(()),
                    Ok(got) => Err(self.remote_error(
                        Step::Upload,
                        format!("uploaded {got} but expected {sha256}"),
                    )),
                    Err(e) => Err(e.into()),
                }
            }
            Source::Remote { path, .. } => self
                .exec(Step::Upload, &scripts::stage_copy(path, &staged))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {
                self.emit(Step::Upload, Status::Done, t);
                Ok(staged)
            }
            Err(e) => {
                self.emit(Step::Upload, Status::Failed(e.to_string()), t);
                Err(e)
            }
        }
    }

    /// USR2 to the master whose binary was replaced on disk; wait for the new master.
    pub(super) async fn start(
        &self,
        obs: &Observation,
        old: &Master,
        op: &Op,
        gate: &dyn Gate,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Start, Status::Started, t);
        self.advance(obs, op, OpStep::Start).await?;
        if !self
            .signal(Step::Start, old.pid, "USR2", SignalTarget::Master)
            .await?
        {
            return Err(self.remote_error(Step::Start, format!("master {} is gone", old.pid)));
        }
        let waited = self
            .poll(self.deadlines().start, |obs| {
                match decide::start(obs, old.pid) {
                    Start::Waiting => None,
                    other => Some(other),
                }
            })
            .await?;
        let reason = match waited {
            Ok(Start::Ready(new)) => {
                self.emit(Step::Start, Status::Done, t);
                match gate
                    .check(
                        self.remote,
                        self.job.host,
                        Phase::BothServing,
                        Some(new.pid),
                    )
                    .await
                {
                    Ok(()) => return Ok(Flow::Continue),
                    Err(reason) => {
                        self.emit(Step::Gate, Status::Failed(reason.clone()), t);
                        format!("gate failed with both generations serving: {reason}")
                    }
                }
            }
            Ok(_) => format!(
                "the new binary exited at start{}",
                self.error_log(old).await
            ),
            Err(_) => format!(
                "the new binary did not become ready within {:?}",
                self.deadlines().start
            ),
        };
        self.emit(Step::Start, Status::Failed(reason.clone()), t);
        Ok(Flow::Failed(reason))
    }

    /// Rewrites the record's operation at a later step (before the step is taken).
    pub(super) async fn advance(
        &self,
        obs: &Observation,
        op: &Op,
        step: OpStep,
    ) -> Result<(), UpgradeError> {
        let record = obs.record.record().cloned().unwrap_or_default();
        if record.op.as_ref().is_some_and(|o| o.step == step) {
            return Ok(());
        }
        let next = record.with_op(
            Op { step, ..op.clone() },
            &self.job.settings.run_id,
            &self.job.settings.owner,
        );
        self.write_record(&next).await
    }

    /// WINCH, wait for the old workers (the deadline ends the wait, not the host, unless
    /// `on_drain_timeout: fail`), then the gates and the soak; then commit or hold.
    pub(super) async fn drain(
        &self,
        obs: &Observation,
        old: &Master,
        new: &Master,
        op: &Op,
        aim: &Aim,
        gate: &dyn Gate,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Drain, Status::Started, t);
        self.signal(Step::Drain, old.pid, "WINCH", SignalTarget::Master)
            .await?;
        let drained = self
            .poll(self.deadlines().drain, |obs| {
                decide::drained(obs, old.pid).then_some(())
            })
            .await?;
        match drained {
            Ok(()) => self.emit(Step::Drain, Status::Done, t),
            Err(last) => {
                let busy = decide::find(&last, old.pid)
                    .map(|m| {
                        m.children
                            .iter()
                            .filter(|c| c.is_worker())
                            .map(|c| c.pid)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                let waited = self.deadlines().drain;
                match self.job.settings.on_drain_timeout {
                    OnDrainTimeout::Fail => {
                        let reason = format!(
                            "old workers did not finish within {waited:?} (on_drain_timeout: fail)"
                        );
                        self.emit(Step::Drain, Status::Failed(reason.clone()), t);
                        return Ok(Flow::Failed(reason));
                    }
                    OnDrainTimeout::Proceed => self.note(
                        Step::Drain,
                        format!(
                            "{} old worker(s) still finishing connections after {waited:?}; new connections reach only the new workers: proceeding (the old master exits when they end)",
                            busy.len()
                        ),
                    ),
                    OnDrainTimeout::Terminate => {
                        for pid in &busy {
                            let _ = self
                                .signal(Step::Drain, *pid, "TERM", SignalTarget::Worker)
                                .await?;
                        }
                        self.note(
                            Step::Drain,
                            format!(
                                "terminated {} old worker(s) still serving after {waited:?} (on_drain_timeout: terminate): their connections were cut",
                                busy.len()
                            ),
                        );
                    }
                }
            }
        }
        if let Some(reason) = self.gates(gate, new).await? {
            return Ok(Flow::Failed(reason));
        }
        if aim.commit == Commit::Deferred {
            self.advance(obs, op, OpStep::Passed).await?;
            return Ok(Flow::Continue);
        }
        self.commit(obs, old, new, op, gate).await
    }

    /// The gates after WINCH, the process gate and the soak; `Some(reason)` when one failed.
    async fn gates(&self, gate: &dyn Gate, new: &Master) -> Result<Option<String>, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Gate, Status::Started, t);
        let before = self.observe_at(Depth::Quick).await?;
        let mut verdict = gate
            .check(self.remote, self.job.host, Phase::AfterWinch, Some(new.pid))
            .await;
        let mut after = self.observe_at(Depth::Quick).await?;
        verdict = verdict.and_then(|()| decide::process_gate(&before, &after, new.pid));
        let soak = gate.soak();
        let soak_started = Instant::now();
        while verdict.is_ok() && soak_started.elapsed() < soak {
            tokio::time::sleep(SOAK_ROUND.min(soak)).await;
            verdict = gate
                .check(self.remote, self.job.host, Phase::Soak, Some(new.pid))
                .await
                .map_err(|e| format!("during the soak ({:?} in): {e}", soak_started.elapsed()));
            let now = self.observe_at(Depth::Quick).await?;
            verdict = verdict.and_then(|()| decide::process_gate(&after, &now, new.pid));
            after = now;
        }
        match verdict {
            Ok(()) => {
                self.emit(Step::Gate, Status::Done, t);
                Ok(None)
            }
            Err(reason) => {
                self.emit(Step::Gate, Status::Failed(reason.clone()), t);
                Ok(Some(format!("gate failed: {reason}")))
            }
        }
    }

    /// QUIT to the old master: the record says so first (no signal path back after it).
    /// Done when the old master is gone, or is finishing its last connections with the new
    /// master named by the pid file; then the record is completed and the final gate runs.
    pub(super) async fn commit(
        &self,
        obs: &Observation,
        old: &Master,
        new: &Master,
        op: &Op,
        gate: &dyn Gate,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Commit, Status::Started, t);
        let resuming = obs
            .record
            .record()
            .and_then(|r| r.op.as_ref())
            .is_some_and(|o| o.step == OpStep::Commit);
        if !resuming {
            // Never commit to a new master that is no longer there to serve: QUIT would leave
            // no nginx at all.
            let now = self.observe_at(Depth::Quick).await?;
            let alive = decide::find(&now, new.pid)
                .is_some_and(|m| decide::accepting(m) > 0 && now.pid_file == Some(m.pid));
            if !alive {
                let reason = format!(
                    "new master {} is gone or has no workers before commit",
                    new.pid
                );
                self.emit(Step::Commit, Status::Failed(reason.clone()), t);
                return Ok(Flow::Failed(reason));
            }
        }
        self.advance(obs, op, OpStep::Commit).await?;
        self.signal(Step::Commit, old.pid, "QUIT", SignalTarget::Master)
            .await?;
        let done = self
            .poll(self.deadlines().quit, |obs| {
                decide::committed(obs, old.pid, new.pid).then_some(())
            })
            .await?;
        if done.is_err() {
            let reason = format!("old master {} did not exit", old.pid);
            self.emit(Step::Commit, Status::Failed(reason.clone()), t);
            return Err(self.remote_error(Step::Commit, reason));
        }
        let now = self.observe().await?;
        let runs = now.master.as_ref().and_then(|m| m.exe_sha256.as_deref());
        if runs != Some(op.to.as_str()) {
            return Err(self.remote_error(
                Step::Commit,
                format!(
                    "the running master's binary is {} not the target {}",
                    short(runs.unwrap_or("?")),
                    short(&op.to)
                ),
            ));
        }
        let record = now.record.record().cloned().unwrap_or_default();
        self.write_record(&record.completed()).await?;
        self.emit(Step::Commit, Status::Done, t);
        if let Err(reason) = gate
            .check(
                self.remote,
                self.job.host,
                Phase::AfterCommit,
                Some(new.pid),
            )
            .await
        {
            self.emit(Step::Gate, Status::Failed(reason.clone()), t);
            return Ok(Flow::Failed(format!(
                "gate failed after commit, rolled back to the version before: {reason}"
            )));
        }
        Ok(Flow::Continue)
    }
}
