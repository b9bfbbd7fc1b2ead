//! One host's run as an observe-decide-act loop: observe (one probe, the host's record
//! included), ask [`super::direction`] for the next move toward the aim, act with one checked
//! remote command or a bounded wait, observe again. The record is written before every
//! irreversible step, so a run killed anywhere leaves a host the next run recognises.
//! The moves live in [`super::forward`] and [`super::revert`].

use std::time::{Duration, Instant};

use super::act::Act;
pub(super) use super::course::{Course, Winched};
use super::direction::{self, Commit, Goal, Move};
use super::event::{Event, Step};
use super::failure::{Blocker, CommandFailed, Fault, Judged};
use super::lock;
use super::observe::{self, Observation};
use super::probe::{self, Depth, ProbeError};
pub use super::ready::Ready;
use super::record::{Op, OpKind};
use super::remote::{Claim, Lease, Remote};
use super::scripts::{self, Layout, SignalTarget};
use super::step::Stop;
use super::upgrade::{
    Back, Intent, Job, MAX_MOVES, Outcome, POLL, ProcessChecksOnly, UpgradeError,
};
use crate::ssh::{Heartbeat, RemoteCommand};

/// One run of the procedure on one host, over one connection.
pub struct Procedure<'a> {
    pub remote: &'a dyn Remote,
    pub job: Job<'a>,
    pub events: &'a (dyn Fn(Event) + Sync),
}

impl Procedure<'_> {
    pub(super) fn host_name(&self) -> &str {
        &self.job.host.name
    }

    /// The layout by the configured path (the lock and the record).
    pub(super) fn layout(&self) -> Layout {
        Layout::plain(self.job.host.nginx.binary.clone())
    }

    /// The layout as the host shows it: a symlinked binary's file is what gets replaced.
    pub(super) fn layout_at(&self, obs: &Observation) -> Layout {
        let binary = self.job.host.nginx.binary.clone();
        match obs.binary_file.as_deref().map(str::parse) {
            Some(Ok(file)) => Layout { binary, file },
            _ => Layout::plain(binary),
        }
    }

    pub(super) fn remote_error(&self, step: Step, fault: Fault) -> UpgradeError {
        UpgradeError::Remote {
            host: self.host_name().to_owned(),
            step,
            fault: Box::new(fault),
        }
    }

    pub(super) fn unrestored(&self, step: Step, fault: Fault) -> UpgradeError {
        UpgradeError::Unrestored {
            host: self.host_name().to_owned(),
            step,
            fault: Box::new(fault),
        }
    }

    pub(super) fn refused(&self, reason: Blocker) -> UpgradeError {
        UpgradeError::Refused {
            host: self.host_name().to_owned(),
            reason: Box::new(reason),
        }
    }

    pub(super) fn deadlines(&self) -> super::upgrade::Deadlines {
        self.job.settings.deadlines
    }

    /// Takes the lock, runs the procedure, releases the lock.
    pub async fn run(&self) -> Result<Outcome, UpgradeError> {
        let (lease, ready) = self.prepare().await?;
        let (result, lease) = self.switch(lease, ready).await;
        lease.release().await;
        result
    }

    /// Takes the lock (with the first observation) and gets the host ready: everything up
    /// to the first change to the live binary ([`Procedure::ready`]). The lock stays held
    /// for [`Procedure::switch`].
    pub async fn prepare(&self) -> Result<(Box<dyn Lease>, Ready), UpgradeError> {
        let (lease, said) = self.lock().await?;
        let ready = async {
            let obs = observe::parse(&said).map_err(|e| {
                self.remote_error(Step::Observe, Fault::Probe(ProbeError::Output(e)))
            })?;
            self.ready(obs).await
        };
        // A controller that has lost its lock does nothing more on the host.
        let result = tokio::select! {
            biased;
            result = ready => result,
            lost = lease.lost() => Err(lost.into()),
        };
        match result {
            Ok(ready) => Ok((lease, ready)),
            Err(e) => {
                lease.release().await;
                Err(e)
            }
        }
    }

    /// Goes on from [`Procedure::prepare`] until the host arrives. The lock comes back still
    /// held: the caller releases it (off the critical path, when the next hosts need not wait
    /// for that).
    pub async fn switch(
        &self,
        lease: Box<dyn Lease>,
        ready: Ready,
    ) -> (Result<Outcome, UpgradeError>, Box<dyn Lease>) {
        // The lock may have been lost while the host waited for its turn.
        if let Some(lost) = futures::FutureExt::now_or_never(lease.lost()) {
            return (Err(lost.into()), lease);
        }
        let result = tokio::select! {
            biased;
            result = self.go(ready) => result,
            lost = lease.lost() => Err(lost.into()),
        };
        (result, lease)
    }

    /// Takes the lock; the holder's first output is the probe's (at [`Depth::Sums`], as
    /// [`Procedure::observe`]), so the first observation costs no command of its own.
    async fn lock(&self) -> Result<(Box<dyn Lease>, String), UpgradeError> {
        let cmd = lock::lock_observing(
            &self.layout(),
            &self.job.settings.owner,
            Heartbeat::DEFAULT,
            probe::args(self.job.host, Depth::Sums),
        );
        self.step(Step::Lock, async {
            match self
                .remote
                .hold(&cmd, lock::READY, self.deadlines().command)
                .await?
            {
                Claim::Held { lease, said } => Ok((lease, said)),
                Claim::Refused(out) => {
                    let text = out.stdout_lossy().trim().to_owned();
                    Err(match text.strip_prefix("busy ") {
                        Some(owner) => UpgradeError::Locked {
                            host: self.host_name().to_owned(),
                            owner: owner.trim().to_owned(),
                        },
                        None => self.remote_error(
                            Step::Lock,
                            Fault::LockAnswer {
                                status: out.status.clone(),
                                output: format!("{text} {}", out.stderr_lossy().trim())
                                    .trim()
                                    .to_owned(),
                            },
                        ),
                    })
                }
            }
        })
        .await
    }

    /// An observation for a decision: checksums, orphans, the record and what preflight
    /// reads (no `-v` runs).
    pub(super) async fn observe(&self) -> Result<Observation, UpgradeError> {
        self.observe_at(Depth::Sums).await
    }

    pub(super) async fn observe_at(&self, depth: Depth) -> Result<Observation, UpgradeError> {
        let cmd = probe::command(self.job.host, depth);
        let out = self.remote.exec(&cmd, self.deadlines().command).await?;
        match probe::parse_output(&out) {
            Ok(obs) => Ok(obs),
            Err(ProbeError::Ssh(e)) => Err(e.into()),
            Err(e) => Err(self.remote_error(Step::Observe, Fault::Probe(e))),
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
            let failed = CommandFailed {
                status: out.status.clone(),
                output: text.trim().to_owned(),
            };
            return Err(self.remote_error(step, Fault::Command(failed)));
        }
        Ok(out.stdout_lossy().into_owned())
    }

    /// Sends a signal to a checked process; `Ok(false)` when the process is already gone.
    pub(super) async fn signal(
        &self,
        step: Step,
        pid: u32,
        sig: &'static str,
        target: SignalTarget,
    ) -> Result<bool, UpgradeError> {
        let out = self
            .remote
            .exec(&scripts::signal(pid, sig, target), self.deadlines().command)
            .await?;
        match out.stdout_lossy().trim() {
            "sent" => Ok(true),
            "gone" => Ok(false),
            other => Err(self.remote_error(
                step,
                Fault::SignalRefused {
                    pid,
                    signal: sig,
                    answer: other.to_owned(),
                },
            )),
        }
    }

    pub(super) fn goal(&self) -> (Goal, Commit) {
        let sha = self.job.source.sha256().to_owned();
        match self.job.intent {
            Intent::Upgrade => (Goal::Roll { target: sha }, Commit::Now),
            Intent::UpgradeDeferCommit => (Goal::Roll { target: sha }, Commit::Deferred),
            Intent::Rollback => (Goal::Rollback { from: sha }, Commit::Now),
        }
    }

    /// The spec's gates for an upgrade going forward; only the built-in process checks for
    /// anything that goes back (the spec's gates judged the new version).
    pub(super) fn gate_for(&self, op: &Op, course: &Course) -> &dyn super::upgrade::Gate {
        let rolling = matches!(
            self.job.intent,
            Intent::Upgrade | Intent::UpgradeDeferCommit
        );
        // The spec's gates describe the binary being rolled out, and nothing else.
        let ours = op.to == self.job.source.sha256();
        if rolling && ours && op.kind == OpKind::Upgrade && course.failure.is_none() {
            self.job.gate
        } else {
            &ProcessChecksOnly
        }
    }

    /// The moves, until the host arrives; `staged` is the new binary [`Procedure::ready`]
    /// staged for the first move.
    pub(super) async fn drive(
        &self,
        goal: &Goal,
        course: &mut Course,
        origin: &str,
        mut obs: Observation,
        mut staged: Option<String>,
    ) -> Result<Outcome, UpgradeError> {
        let (run, owner) = (&self.job.settings.run_id, &self.job.settings.owner);
        for _ in 0..MAX_MOVES {
            let op = obs.record.record().and_then(|r| r.op.clone());
            let need_op = || op.clone().ok_or_else(|| self.refused(Blocker::NoOperation));
            // The operation a judged failure turns back from (one begun by this move).
            let mut turning = op.clone();
            // Only the move right after the start command may use the WINCH it sent.
            let winched = course.winched.take();
            let done: Result<Option<Observation>, Stop> =
                match direction::next(&obs, &course.aim, run, owner) {
                    Move::Arrived => return self.arrived(goal, course, origin),
                    Move::Hold { old, new } => {
                        return Ok(Outcome::AwaitingCommit {
                            old_pid: old.pid,
                            new_pid: new.pid,
                        });
                    }
                    Move::Refuse(refusal) if !course.changed => {
                        return Err(self.refused(Blocker::Host(refusal)));
                    }
                    Move::Refuse(refusal) => {
                        let fault = Fault::Refused(Blocker::Host(refusal));
                        return Err(self.unrestored(Step::Observe, fault));
                    }
                    Move::Cleanup => self.cleanup(&obs).await.map(|()| None).map_err(Stop::from),
                    Move::Write { record, note } => {
                        if let Some(note) = note {
                            self.note(Step::Record, note);
                        }
                        // A new operation often follows a record written alone: its probe
                        // sees what preflight reads too.
                        let write = async {
                            let acted = self
                                .act(Step::Record, &[Act::Record(record)], Depth::Sums)
                                .await?;
                            self.wrote(Step::Record, acted.said(0), "write the state record")?;
                            Ok::<_, Stop>(Some(acted.obs))
                        };
                        self.step(Step::Record, write).await
                    }
                    // The probe that ends a step leaves out what only preflight reads (the
                    // binary's size, free space): a new operation starts from a new look.
                    Move::Begin { .. }
                        if staged.is_none()
                            && !obs.depth.is_some_and(Depth::has_preflight_facts) =>
                    {
                        Ok(None)
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
                        let gate = self.gate_for(&op, course);
                        turning = Some(op.clone());
                        let done = match staged.take() {
                            Some(path) => {
                                let turn = super::begin::Turn {
                                    master: &master,
                                    op: &op,
                                    record: &base,
                                    staged: &path,
                                };
                                self.install_start(&obs, turn, gate, &mut course.winched)
                                    .await
                            }
                            None => {
                                let winched = &mut course.winched;
                                self.begin(&obs, &master, &op, &base, gate, winched).await
                            }
                        };
                        course.changed |= !matches!(done, Err(Stop::Error(_)));
                        done
                    }
                    Move::Start { master } => {
                        let op = need_op()?;
                        course.changed = true;
                        let gate = self.gate_for(&op, course);
                        self.start(&obs, &master, &op, gate, &mut course.winched)
                            .await
                    }
                    Move::Drain { old, new } => {
                        let op = need_op()?;
                        course.changed = true;
                        let gate = self.gate_for(&op, course);
                        let winched = winched.filter(|w| w.old == old.pid);
                        self.drain(&obs, (&old, &new), &op, &course.aim, gate, winched)
                            .await
                    }
                    Move::Commit { old, new } => {
                        let op = need_op()?;
                        course.changed = true;
                        let gate = self.gate_for(&op, course);
                        self.commit(&obs, &old, &new, &op, gate, &obs).await
                    }
                    Move::Revert { old, new } => {
                        let op = need_op()?;
                        course.changed = true;
                        self.revert(&obs, &op, &old, &new).await
                    }
                    Move::KillHung { old, children } => {
                        course.changed = true;
                        // A failure of this run only when this run was taking that binary on.
                        let ours = op
                            .as_ref()
                            .is_some_and(|op| direction::forward(op, &course.aim));
                        match self.kill_hung(&old, &children).await {
                            Ok(_) if ours && course.failure.is_none() => Err(Judged::Hung.into()),
                            other => other,
                        }
                    }
                    Move::RestoreDisk { sha } => {
                        course.changed = true;
                        self.restore_disk(&obs, &sha).await
                    }
                    Move::KillOrphans(pids) => {
                        course.changed = true;
                        self.kill_orphans(&pids).await
                    }
                    Move::AwaitDrain { old } => self.await_drain(&old).await,
                };
            obs = match done {
                Ok(Some(seen)) => seen,
                Ok(None) => self.observe().await?,
                Err(Stop::Judged(failure)) => {
                    course.turn_back(turning.as_ref(), &obs, failure);
                    self.observe().await?
                }
                Err(Stop::Error(e)) => return Err(e),
            };
        }
        Err(self.remote_error(Step::Observe, Fault::Unsettled { moves: MAX_MOVES }))
    }

    fn arrived(&self, goal: &Goal, course: &Course, origin: &str) -> Result<Outcome, UpgradeError> {
        if let Some(again) = &course.failed_going_back {
            let fault = Fault::FailedGoingBack {
                first: course.failure.clone(),
                again: again.clone(),
            };
            return Err(self.remote_error(Step::Revert, fault));
        }
        if let (Goal::Rollback { .. }, Some(failure)) = (goal, &course.failure) {
            let fault = Fault::BackFailed {
                stays_on: course.aim.sha.clone(),
                failure: failure.clone(),
            };
            return Err(self.remote_error(Step::Revert, fault));
        }
        if let Some(failure) = &course.failure {
            return Ok(Outcome::RolledBack {
                reason: Back::Failed(failure.clone()),
            });
        }
        match goal {
            Goal::Rollback { .. } => Ok(Outcome::RolledBack {
                reason: Back::Asked {
                    to: course.aim.sha.clone(),
                },
            }),
            Goal::Roll { .. } if !course.changed => Ok(Outcome::AlreadyAtTarget),
            Goal::Roll { .. } => Ok(Outcome::Upgraded {
                from: origin.to_owned(),
                backup: self.layout().backup(origin),
            }),
        }
    }

    /// Removes the staged temp files the observation lists (ours only).
    pub(super) async fn cleanup(&self, obs: &Observation) -> Result<(), UpgradeError> {
        let layout = self.layout_at(obs);
        let ours: Vec<String> = obs
            .staged
            .iter()
            .filter(|p| layout.is_stage(p))
            .cloned()
            .collect();
        if ours.is_empty() {
            return Ok(());
        }
        self.step(Step::Cleanup, async {
            self.exec(Step::Cleanup, &scripts::cleanup(&ours))
                .await
                .map(drop)
        })
        .await
    }
}
