//! The moves of the per-host procedure that go forward: begin an operation (preflight with
//! the pre gates, stage, install), start the new binary (usr2), winch (the
//! `on_drain_timeout` policy), the gates and the soak, and commit (QUIT, the record
//! completed, the final gate). Each step runs in [`Procedure::step`]. The moves that go back
//! live in [`super::revert`].

use std::time::Instant;

use super::decide::{self, Problem, Start};
use super::direction::{Aim, Commit};
use super::event::Step;
use super::failure::{Blocker, Fault, Judged};
use super::observe::{Master, Observation};
use super::probe::Depth;
use super::procedure::Procedure;
use super::record::{Op, OpKind, OpStep, Record};
use super::scripts::{self, Layout, SignalTarget};
use super::step::Stop;
use super::upgrade::{Gate, Phase, SOAK_ROUND, Source};
use crate::model::spec::OnDrainTimeout;

impl Procedure<'_> {
    /// A new operation from a steady master: preflight (and the pre gates), stage, install.
    /// Nothing live changes before the record says where the host is going.
    pub(super) async fn begin(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        record: &Record,
        gate: &dyn Gate,
    ) -> Result<(), Stop> {
        let layout = self.layout_at(obs);
        let source = self.source_for(&layout, op);
        self.step(Step::Preflight, async {
            let problems = self.preflight(obs, master, op, &source);
            if !problems.is_empty() {
                return Err(self.refused(Blocker::Preflight(problems)));
            }
            gate.check(self.remote, self.job.host, Phase::Pre, None)
                .await
                .map_err(|f| self.refused(Blocker::PreGate(f)))
        })
        .await?;
        self.cleanup(obs).await?;
        let staged = self.stage(&layout, &source, master).await?;
        self.step(Step::Install, async {
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
            self.exec(Step::Install, &cmd).await?;
            Ok(())
        })
        .await
    }

    /// Every preflight problem: the master and host ([`decide::preflight`]), the binary's
    /// machine (before anything is uploaded), and a backup to stage from.
    fn preflight(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        source: &Source,
    ) -> Vec<Problem> {
        let layout = self.layout_at(obs);
        let size = match source {
            Source::Local { size, .. } => *size,
            Source::Remote { .. } => obs.binary.as_ref().and_then(|b| b.size).unwrap_or(0),
        };
        let mut problems = decide::preflight(obs, master, layout.binary.as_str(), size);
        if let Source::Local {
            machine: Some(machine),
            ..
        } = source
        {
            problems.extend(decide::machine_fits(obs, *machine));
        }
        if let Source::Remote { path, .. } = source
            && !obs.backups.iter().any(|b| &b.path == path)
        {
            problems.push(Problem::NoBackup {
                sha: op.to.clone(),
                path: path.clone(),
            });
        }
        problems
    }

    /// Where the binary of `op.to` comes from: the controller's file for a new version, the
    /// backup beside the binary for a version the host ran before.
    fn source_for(&self, layout: &Layout, op: &Op) -> Source {
        match self.job.source {
            Source::Local { sha256, .. } if *sha256 == op.to => self.job.source.clone(),
            _ if op.kind == OpKind::Rollback || op.to != self.job.source.sha256() => {
                Source::Remote {
                    path: layout.backup(&op.to),
                    sha256: op.to.clone(),
                }
            }
            other => other.clone(),
        }
    }

    /// Puts the new binary in a temp file beside the old one (uploaded and verified, or
    /// copied from a backup) and checks it there (ELF, machine, `-t` with the master's own
    /// arguments); returns its path. A binary that fails its check is removed and refused.
    async fn stage(
        &self,
        layout: &Layout,
        source: &Source,
        master: &Master,
    ) -> Result<String, Stop> {
        self.step(Step::Stage, async {
            let tag = format!("{:08x}", rand::random::<u32>());
            let staged = layout.stage(&tag);
            match source {
                Source::Local { path, sha256, .. } => {
                    let deadline = self.deadlines().command.max(self.job.settings.upload_floor);
                    let got = self.remote.upload(path, &staged, deadline).await?;
                    if got != *sha256 {
                        let fault = Fault::UploadMismatch {
                            got,
                            expected: sha256.clone(),
                        };
                        return Err(self.remote_error(Step::Stage, fault).into());
                    }
                }
                Source::Remote { path, .. } => {
                    self.exec(Step::Stage, &scripts::stage_copy(path, &staged))
                        .await?;
                }
            }
            let check = scripts::check_new(&staged, &master.argv[1..]);
            let out = self.exec(Step::Stage, &check).await?;
            if let Err(bad) = decide::check_new(&out) {
                let remove = scripts::cleanup(std::slice::from_ref(&staged));
                self.exec(Step::Cleanup, &remove).await?;
                return Err(self.refused(Blocker::NewBinary(bad)).into());
            }
            Ok(staged)
        })
        .await
    }

    /// USR2 to the master whose binary was replaced on disk; wait for the new master; the
    /// gates that hold with both generations serving.
    pub(super) async fn start(
        &self,
        obs: &Observation,
        old: &Master,
        op: &Op,
        gate: &dyn Gate,
    ) -> Result<(), Stop> {
        self.step(Step::Usr2, async {
            self.advance(obs, op, OpStep::Start).await?;
            if !self
                .signal(Step::Usr2, old.pid, "USR2", SignalTarget::Master)
                .await?
            {
                let fault = Fault::MasterGone { pid: old.pid };
                return Err(self.remote_error(Step::Usr2, fault).into());
            }
            let waited = self
                .poll(self.deadlines().start, |obs| {
                    match decide::start(obs, old.pid) {
                        Start::Waiting => None,
                        other => Some(other),
                    }
                })
                .await?;
            let new = match waited {
                Ok(Start::Ready(new)) => new,
                Ok(_) => {
                    let log = self.error_log(old).await;
                    return Err(Judged::Exited { log }.into());
                }
                Err(_) => {
                    let waited = self.deadlines().start;
                    return Err(Judged::NotReady { waited }.into());
                }
            };
            let phase = Phase::BothServing;
            gate.check(self.remote, self.job.host, phase, Some(new.pid))
                .await
                .map_err(|f| Judged::BothServing(f).into())
        })
        .await
    }

    /// Rewrites the record's operation at a later step (before the step is taken).
    pub(super) async fn advance(
        &self,
        obs: &Observation,
        op: &Op,
        step: OpStep,
    ) -> Result<(), Stop> {
        let record = obs.record.record().cloned().unwrap_or_default();
        if record.op.as_ref().is_some_and(|o| o.step == step) {
            return Ok(());
        }
        let next = record.with_op(
            Op { step, ..op.clone() },
            &self.job.settings.run_id,
            &self.job.settings.owner,
        );
        Ok(self.write_record(&next).await?)
    }

    /// WINCH and the old workers' drain, the gates and the soak; then commit, or hold
    /// (deferred commit: the record says the new binary passed).
    pub(super) async fn drain(
        &self,
        obs: &Observation,
        old: &Master,
        new: &Master,
        op: &Op,
        aim: &Aim,
        gate: &dyn Gate,
    ) -> Result<(), Stop> {
        self.step(Step::Winch, self.winch(old)).await?;
        let deferred = aim.commit == Commit::Deferred;
        self.step(Step::Gate, async {
            self.gates(gate, new).await?;
            if deferred {
                self.advance(obs, op, OpStep::Passed).await?;
            }
            Ok::<_, Stop>(())
        })
        .await?;
        if deferred {
            return Ok(());
        }
        self.commit(obs, old, new, op, gate).await
    }

    /// WINCH, then wait for the old workers: the deadline ends the wait, not the host, unless
    /// `on_drain_timeout: fail`.
    async fn winch(&self, old: &Master) -> Result<(), Stop> {
        self.signal(Step::Winch, old.pid, "WINCH", SignalTarget::Master)
            .await?;
        let drained = self
            .poll(self.deadlines().drain, |obs| {
                decide::drained(obs, old.pid).then_some(())
            })
            .await?;
        let Err(last) = drained else {
            return Ok(());
        };
        let busy = decide::find(&last, old.pid)
            .map(decide::workers)
            .unwrap_or_default();
        let waited = self.deadlines().drain;
        match self.job.settings.on_drain_timeout {
            OnDrainTimeout::Fail => return Err(Judged::Drain { waited }.into()),
            OnDrainTimeout::Proceed => self.note(
                Step::Winch,
                format!(
                    "{} old worker(s) still finishing connections after {waited:?}; new connections reach only the new workers: proceeding (the old master exits when they end)",
                    busy.len()
                ),
            ),
            OnDrainTimeout::Terminate => {
                for &pid in &busy {
                    self.signal(Step::Winch, pid, "TERM", SignalTarget::Worker)
                        .await?;
                }
                self.note(
                    Step::Winch,
                    format!(
                        "terminated {} old worker(s) still serving after {waited:?} (on_drain_timeout: terminate): their connections were cut",
                        busy.len()
                    ),
                );
            }
        }
        Ok(())
    }

    /// The gates after WINCH, the process gate, then the soak (every gate, one try a round,
    /// and the process gate again).
    async fn gates(&self, gate: &dyn Gate, new: &Master) -> Result<(), Stop> {
        let (remote, host, pid) = (self.remote, self.job.host, Some(new.pid));
        let before = self.observe_at(Depth::Quick).await?;
        let checked = gate.check(remote, host, Phase::AfterWinch, pid).await;
        let mut after = self.observe_at(Depth::Quick).await?;
        checked.map_err(Judged::Gate)?;
        decide::process_gate(&before, &after, new.pid).map_err(Judged::Process)?;
        let soak = gate.soak();
        let soak_started = Instant::now();
        while soak_started.elapsed() < soak {
            tokio::time::sleep(SOAK_ROUND.min(soak)).await;
            let checked = gate.check(remote, host, Phase::Soak, pid).await;
            let now = self.observe_at(Depth::Quick).await?;
            checked.map_err(|failure| Judged::Soak {
                after: soak_started.elapsed(),
                failure,
            })?;
            decide::process_gate(&after, &now, new.pid).map_err(Judged::Process)?;
            after = now;
        }
        Ok(())
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
    ) -> Result<(), Stop> {
        self.step(Step::Commit, async {
            let resuming = obs
                .record
                .record()
                .and_then(|r| r.op.as_ref())
                .is_some_and(|o| o.step == OpStep::Commit);
            if !resuming {
                // Never commit to a new master that is no longer there to serve: QUIT would
                // leave no nginx at all.
                let now = self.observe_at(Depth::Quick).await?;
                let alive = decide::find(&now, new.pid)
                    .is_some_and(|m| decide::accepting(m) > 0 && now.pid_file == Some(m.pid));
                if !alive {
                    return Err(Stop::Judged(Judged::NotServing { pid: new.pid }));
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
                let fault = Fault::OldMasterStayed { pid: old.pid };
                return Err(self.remote_error(Step::Commit, fault).into());
            }
            let now = self.observe().await?;
            let runs = now.master.as_ref().and_then(|m| m.exe_sha256.as_deref());
            if runs != Some(op.to.as_str()) {
                let fault = Fault::WrongBinary {
                    runs: runs.map(str::to_owned),
                    target: op.to.clone(),
                };
                return Err(self.remote_error(Step::Commit, fault).into());
            }
            let record = now.record.record().cloned().unwrap_or_default();
            self.write_record(&record.completed()).await?;
            Ok(())
        })
        .await?;
        self.step(Step::Gate, async {
            let phase = Phase::AfterCommit;
            gate.check(self.remote, self.job.host, phase, Some(new.pid))
                .await
                .map_err(|f| Judged::AfterCommit(f).into())
        })
        .await
    }
}
