//! One host's run as an observe-decide-act loop: observe (one probe, the host's record
//! included), ask [`super::direction`] for the next move toward the aim, act with one checked
//! remote command or a bounded wait, observe again. The record is written before every
//! irreversible step, so a run killed anywhere leaves a host the next run recognises.
//! The moves that go forward live here; the ones that go back in [`super::revert`].

use std::time::{Duration, Instant};

use super::decide::{self, Start};
use super::direction::{self, Aim, Commit, Goal, Move, Resolved};
use super::event::{Event, Status, Step};
use super::lock;
use super::observe::{Master, Observation};
use super::probe::{self, Depth, ProbeError};
use super::record::{Op, OpKind, OpStep, Record, short};
use super::remote::{Claim, Remote};
use super::scripts::{self, Layout, SignalTarget};
use super::upgrade::{Intent, Job, Outcome, Phase, ProcessChecksOnly, Source, UpgradeError};
use crate::model::spec::OnDrainTimeout;
use crate::ssh::{Heartbeat, RemoteCommand};

/// One run of the procedure on one host, over one connection.
pub struct Procedure<'a> {
    pub remote: &'a dyn Remote,
    pub job: Job<'a>,
    pub events: &'a (dyn Fn(Event) + Sync),
}

/// How a move ended.
pub(super) enum Flow {
    /// Observe again and go on.
    Continue,
    /// The new binary was judged and failed (start, drain, gates): go back.
    Failed(String),
}

const POLL: Duration = Duration::from_millis(25);
/// How often gates are re-run during a soak.
const SOAK_ROUND: Duration = Duration::from_millis(500);
/// A run that has not arrived after this many moves is stuck: it stops with an error.
const MAX_MOVES: usize = 24;

/// What the loop knows about this run beyond the host.
struct Course {
    aim: Aim,
    /// Why the run turned back, when it did.
    failure: Option<String>,
    /// Something failed again while going back.
    failed_going_back: Option<String>,
    /// A move that changes the host was made.
    changed: bool,
}

impl Procedure<'_> {
    pub(super) fn host_name(&self) -> &str {
        &self.job.host.name
    }

    pub(super) fn layout(&self) -> Layout {
        Layout {
            binary: self.job.host.nginx.binary.clone(),
        }
    }

    pub(super) fn emit(&self, step: Step, status: Status, since: Instant) {
        (self.events)(Event {
            host: self.host_name().to_owned(),
            step,
            status,
            elapsed: since.elapsed(),
        });
    }

    /// A note for the operator, as a step event that is done at once.
    pub(super) fn note(&self, step: Step, text: String) {
        let t = Instant::now();
        self.emit(step, Status::Started, t);
        self.emit(step, Status::Failed(text), t);
    }

    pub(super) fn remote_error(&self, step: Step, reason: impl Into<String>) -> UpgradeError {
        UpgradeError::Remote {
            host: self.host_name().to_owned(),
            step,
            reason: reason.into(),
        }
    }

    pub(super) fn refused(&self, reason: impl Into<String>) -> UpgradeError {
        UpgradeError::Refused {
            host: self.host_name().to_owned(),
            reason: reason.into(),
        }
    }

    pub(super) fn deadlines(&self) -> super::upgrade::Deadlines {
        self.job.settings.deadlines
    }

    /// Takes the lock, runs the procedure, releases the lock.
    pub async fn run(&self) -> Result<Outcome, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Lock, Status::Started, t);
        let cmd = lock::lock(&self.layout(), &self.job.settings.owner, Heartbeat::DEFAULT);
        let lease = match self
            .remote
            .hold(&cmd, lock::READY, self.deadlines().command)
            .await?
        {
            Claim::Held(lease) => lease,
            Claim::Refused(out) => {
                let text = out.stdout_lossy().trim().to_owned();
                let err = match text.strip_prefix("busy ") {
                    Some(owner) => UpgradeError::Locked {
                        host: self.host_name().to_owned(),
                        owner: owner.trim().to_owned(),
                    },
                    None => self.remote_error(
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
            result = self.steer() => result,
            lost = lease.lost() => Err(lost.into()),
        };
        lease.release().await;
        result
    }

    /// A full observation: checksums, versions and the record included.
    pub(super) async fn observe(&self) -> Result<Observation, UpgradeError> {
        self.observe_at(Depth::Full).await
    }

    pub(super) async fn observe_at(&self, depth: Depth) -> Result<Observation, UpgradeError> {
        let cmd = probe::command(self.job.host, depth);
        let out = self.remote.exec(&cmd, self.deadlines().command).await?;
        match probe::parse_output(&out) {
            Ok(obs) => Ok(obs),
            Err(ProbeError::Ssh(e)) => Err(e.into()),
            Err(e) => Err(self.remote_error(Step::Observe, e.to_string())),
        }
    }

    /// Observes until `cond` holds (its value) or `limit` passes (the last observation).
    pub(super) async fn poll<T>(
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

    pub(super) async fn exec(
        &self,
        step: Step,
        cmd: &RemoteCommand,
    ) -> Result<String, UpgradeError> {
        let out = self.remote.exec(cmd, self.deadlines().command).await?;
        if !out.success() {
            let text = format!(
                "{} {}",
                out.stdout_lossy().trim(),
                out.stderr_lossy().trim()
            );
            return Err(self.remote_error(step, format!("{}: {}", out.status, text.trim())));
        }
        Ok(out.stdout_lossy().into_owned())
    }

    /// Sends a signal to a checked process; `Ok(false)` when the process is already gone.
    pub(super) async fn signal(
        &self,
        step: Step,
        pid: u32,
        sig: &str,
        target: SignalTarget,
    ) -> Result<bool, UpgradeError> {
        let out = self
            .remote
            .exec(&scripts::signal(pid, sig, target), self.deadlines().command)
            .await?;
        match out.stdout_lossy().trim() {
            "sent" => Ok(true),
            "gone" => Ok(false),
            other => Err(self.remote_error(step, other.to_owned())),
        }
    }

    /// Writes the host's record (atomically, by rename).
    pub(super) async fn write_record(&self, record: &Record) -> Result<(), UpgradeError> {
        self.exec(Step::Record, &scripts::write_record(&self.layout(), record))
            .await
            .map(drop)
    }

    fn goal(&self) -> (Goal, Commit) {
        let sha = self.job.source.sha256().to_owned();
        match self.job.intent {
            Intent::Upgrade => (Goal::Roll { target: sha }, Commit::Now),
            Intent::UpgradeDeferCommit => (Goal::Roll { target: sha }, Commit::Deferred),
            Intent::Rollback => (Goal::Rollback { from: sha }, Commit::Now),
        }
    }

    /// The spec's gates for an upgrade going forward; only the built-in process checks for
    /// anything that goes back (the spec's gates judged the new version).
    fn gate_for(&self, op: &Op, course: &Course) -> &dyn super::upgrade::Gate {
        let rolling = matches!(
            self.job.intent,
            Intent::Upgrade | Intent::UpgradeDeferCommit
        );
        if rolling && op.kind == OpKind::Upgrade && course.failure.is_none() {
            self.job.gate
        } else {
            &ProcessChecksOnly
        }
    }

    /// The loop: observe, decide, act, until the host arrives or the run must stop.
    async fn steer(&self) -> Result<Outcome, UpgradeError> {
        let mut obs = self.observe().await?;
        let (goal, commit) = self.goal();
        let aim = match direction::resolve(&goal, &obs, commit) {
            Resolved::Aim(aim) => aim,
            Resolved::Skip(reason) => {
                // Our own leftovers (an upload cut short) go, whatever the host runs.
                self.cleanup(&obs.staged).await?;
                return Ok(Outcome::NotApplicable { reason });
            }
            Resolved::Refuse(reason) => return Err(self.refused(reason)),
        };
        if matches!(goal, Goal::Roll { .. }) {
            self.job
                .gate
                .prepare(self.remote, self.job.host)
                .await
                .map_err(|reason| self.remote_error(Step::Gate, reason))?;
        }
        let origin = obs
            .master
            .as_ref()
            .and_then(|m| m.exe_sha256.clone())
            .unwrap_or_default();
        let mut course = Course {
            aim,
            failure: None,
            failed_going_back: None,
            changed: false,
        };
        let (run, owner) = (&self.job.settings.run_id, &self.job.settings.owner);
        for _ in 0..MAX_MOVES {
            let op = obs.record.record().and_then(|r| r.op.clone());
            let flow = match direction::next(&obs, &course.aim, run, owner) {
                Move::Arrived => return self.arrived(&goal, &course, &origin),
                Move::Hold { old, new } => {
                    return Ok(Outcome::AwaitingCommit {
                        old_pid: old.pid,
                        new_pid: new.pid,
                    });
                }
                Move::Refuse(reason) if !course.changed => return Err(self.refused(reason)),
                Move::Refuse(reason) => {
                    return Err(UpgradeError::Unrestored {
                        host: self.host_name().to_owned(),
                        step: Step::Observe,
                        reason,
                    });
                }
                Move::Cleanup(paths) => {
                    self.cleanup(&paths).await?;
                    Flow::Continue
                }
                Move::Write { record, note } => {
                    if let Some(note) = note {
                        self.note(Step::Record, note);
                    }
                    self.write_record(&record).await?;
                    Flow::Continue
                }
                Move::Begin {
                    master,
                    op,
                    base,
                    note,
                } => {
                    if let Some(note) = note {
                        self.note(Step::Record, note);
                    }
                    let gate = self.gate_for(&op, &course);
                    self.begin(&obs, &master, &op, &base, gate).await?
                }
                Move::Start { master } => {
                    let op = op.clone().ok_or_else(|| self.refused("no operation"))?;
                    course.changed = true;
                    self.start(&obs, &master, &op, self.gate_for(&op, &course))
                        .await?
                }
                Move::Drain { old, new } => {
                    let op = op.clone().ok_or_else(|| self.refused("no operation"))?;
                    course.changed = true;
                    let gate = self.gate_for(&op, &course);
                    self.drain(&obs, &old, &new, &op, &course.aim, gate).await?
                }
                Move::Commit { old, new } => {
                    let op = op.clone().ok_or_else(|| self.refused("no operation"))?;
                    course.changed = true;
                    let gate = self.gate_for(&op, &course);
                    self.commit(&obs, &old, &new, &op, gate).await?
                }
                Move::Revert { old, new } => {
                    course.changed = true;
                    self.revert(&old, &new).await?
                }
                Move::KillHung { old, children } => {
                    course.changed = true;
                    self.kill_hung(&old, &children).await?;
                    match course.failure {
                        None => Flow::Failed(
                            "found a new binary that never became ready; killed it".into(),
                        ),
                        Some(_) => Flow::Continue,
                    }
                }
                Move::RestoreDisk { sha } => {
                    course.changed = true;
                    self.restore_disk(&obs, &sha).await?;
                    Flow::Continue
                }
                Move::KillOrphans(pids) => {
                    course.changed = true;
                    for pid in pids {
                        self.signal(Step::Rollback, pid, "KILL", SignalTarget::Worker)
                            .await?;
                    }
                    Flow::Continue
                }
                Move::AwaitDrain { old } => {
                    self.await_drain(&old).await?;
                    Flow::Continue
                }
            };
            if let Flow::Failed(reason) = flow {
                self.turn_back(&mut course, op.as_ref(), &obs, reason);
            }
            obs = self.observe().await?;
        }
        Err(self.remote_error(
            Step::Observe,
            format!("did not settle after {MAX_MOVES} moves"),
        ))
    }

    /// A judged failure: from here the run goes back to where the operation started.
    fn turn_back(&self, course: &mut Course, op: Option<&Op>, obs: &Observation, reason: String) {
        let back_to = match op {
            Some(op) => op.from.clone(),
            // The operation was completed (a gate failed after commit): back to what ran
            // before it.
            None => obs
                .record
                .record()
                .and_then(Record::previous)
                .map(str::to_owned)
                .unwrap_or_else(|| course.aim.sha.clone()),
        };
        if course.failure.is_none() {
            course.failure = Some(reason);
        } else {
            course.failed_going_back = Some(reason);
        }
        course.aim = Aim {
            sha: back_to,
            kind: OpKind::Rollback,
            commit: Commit::Now,
        };
    }

    fn arrived(&self, goal: &Goal, course: &Course, origin: &str) -> Result<Outcome, UpgradeError> {
        if let Some(again) = &course.failed_going_back {
            return Err(self.remote_error(
                Step::Rollback,
                format!(
                    "{}; then, going back: {again}",
                    course.failure.as_deref().unwrap_or("failed")
                ),
            ));
        }
        if let (Goal::Rollback { .. }, Some(reason)) = (goal, &course.failure) {
            return Err(self.remote_error(
                Step::Rollback,
                format!(
                    "going back failed, the host stays on {}: {reason}",
                    short(&course.aim.sha)
                ),
            ));
        }
        if let Some(reason) = &course.failure {
            return Ok(Outcome::RolledBack {
                reason: reason.clone(),
            });
        }
        match goal {
            Goal::Rollback { .. } => Ok(Outcome::RolledBack {
                reason: format!("back on {}", short(&course.aim.sha)),
            }),
            Goal::Roll { .. } if !course.changed => Ok(Outcome::AlreadyAtTarget),
            Goal::Roll { .. } => Ok(Outcome::Upgraded {
                from: origin.to_owned(),
                backup: self.layout().backup(origin),
            }),
        }
    }

    pub(super) async fn cleanup(&self, paths: &[String]) -> Result<(), UpgradeError> {
        let layout = self.layout();
        let ours: Vec<String> = paths
            .iter()
            .filter(|p| layout.is_stage(p))
            .cloned()
            .collect();
        if !ours.is_empty() {
            self.exec(Step::Cleanup, &scripts::cleanup(&ours)).await?;
        }
        Ok(())
    }

    /// A new operation from a steady master: preflight, pre gates, stage, check, record,
    /// install. Nothing live changes before the record says where the host is going.
    async fn begin(
        &self,
        obs: &Observation,
        master: &Master,
        op: &Op,
        record: &Record,
        gate: &dyn super::upgrade::Gate,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Preflight, Status::Started, t);
        let layout = self.layout();
        let source = self.source_for(op)?;
        let size = match &source {
            Source::Local { size, .. } => *size,
            Source::Remote { .. } => obs.binary.as_ref().and_then(|b| b.size).unwrap_or(0),
        };
        let mut problems = decide::preflight(obs, master, layout.binary.as_str(), size);
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
        self.cleanup(&obs.staged).await?;
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
        let keep: Vec<String> = record.history.iter().map(|s| sha16(s)).collect();
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
    fn source_for(&self, op: &Op) -> Result<Source, UpgradeError> {
        match self.job.source {
            Source::Local { sha256, .. } if *sha256 == op.to => Ok(self.job.source.clone()),
            _ if op.kind == OpKind::Rollback || op.to != self.job.source.sha256() => {
                Ok(Source::Remote {
                    path: self.layout().backup(&op.to),
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
                let deadline = self.deadlines().command.max(Duration::from_secs(60));
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
    async fn start(
        &self,
        obs: &Observation,
        old: &Master,
        op: &Op,
        gate: &dyn super::upgrade::Gate,
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
    async fn advance(&self, obs: &Observation, op: &Op, step: OpStep) -> Result<(), UpgradeError> {
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
    async fn drain(
        &self,
        obs: &Observation,
        old: &Master,
        new: &Master,
        op: &Op,
        aim: &Aim,
        gate: &dyn super::upgrade::Gate,
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
    async fn gates(
        &self,
        gate: &dyn super::upgrade::Gate,
        new: &Master,
    ) -> Result<Option<String>, UpgradeError> {
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
    async fn commit(
        &self,
        obs: &Observation,
        old: &Master,
        new: &Master,
        op: &Op,
        gate: &dyn super::upgrade::Gate,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Commit, Status::Started, t);
        self.advance(obs, op, OpStep::Commit).await?;
        self.signal(Step::Commit, old.pid, "QUIT", SignalTarget::Master)
            .await?;
        let done = self
            .poll(self.deadlines().quit, |obs| {
                let quitting = decide::find(obs, old.pid).is_none_or(direction::draining);
                (obs.pid_file == Some(new.pid) && quitting).then_some(())
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

/// The first 16 hex digits of a sha256: how backups are named.
fn sha16(sha: &str) -> String {
    sha[..sha.len().min(16)].to_owned()
}
