//! A host made ready for its turn, and what that found: the goal resolved against the host,
//! the spec's gates prepared, and, when the next move begins an operation, preflight (with
//! the pre gates) passed and the new binary staged and checked. Nothing live changes here;
//! [`Procedure::go`] takes it from there with the same observation and the staged file.

use super::direction::{self, Goal, Move, Resolved, Skip};
use super::event::Step;
use super::failure::{Blocker, Fault};
use super::observe::Observation;
use super::procedure::{Course, Procedure};
use super::upgrade::{Outcome, UpgradeError};

/// What a host would do in this run, as prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Preflight passed and the new binary is staged: the switch upgrades (or takes back) the
    /// host.
    WouldUpgrade,
    /// The host already runs the target: nothing to switch.
    AlreadyAtTarget,
    /// Refused before any change, and why.
    Refused(Blocker),
    /// An operation is in flight on the host: the switch finishes (or undoes) it.
    InFlight,
    /// Nothing for this run on this host (a rollback of a host that runs another version).
    NotApplicable(Skip),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::WouldUpgrade => f.write_str("would upgrade"),
            Verdict::AlreadyAtTarget => f.write_str("already at target"),
            Verdict::Refused(why) => write!(f, "would be refused: {why}"),
            Verdict::InFlight => f.write_str("an operation is in flight: it would be finished"),
            Verdict::NotApplicable(why) => write!(f, "nothing to do: {why}"),
        }
    }
}

/// A host made ready: the observation the switch starts from and what was staged.
#[derive(Debug)]
pub struct Ready {
    pub(super) verdict: Verdict,
    pub(super) obs: Observation,
    /// The goal, resolved to an aim, when there is one.
    pub(super) course: Option<(Goal, String, direction::Aim)>,
    /// The staged new binary (for the first move, `Begin`).
    pub(super) staged: Option<String>,
}

impl Ready {
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The staged file, when one was staged.
    pub fn staged(&self) -> Option<&str> {
        self.staged.as_deref()
    }
}

impl Procedure<'_> {
    /// From the first observation (the lock's): resolves the goal, prepares the gates and,
    /// when the next move begins an operation, runs preflight and stages the new binary.
    /// Changes nothing live.
    pub(super) async fn ready(&self, obs: Observation) -> Result<Ready, UpgradeError> {
        let (goal, commit) = self.goal();
        let done = |verdict, obs| Ready {
            verdict,
            obs,
            course: None,
            staged: None,
        };
        let aim = match direction::resolve(&goal, &obs, commit) {
            Resolved::Aim(aim) => aim,
            Resolved::Skip(reason) => return Ok(done(Verdict::NotApplicable(reason), obs)),
            Resolved::Refuse(refusal) => {
                return Ok(done(Verdict::Refused(Blocker::Host(refusal)), obs));
            }
        };
        if matches!(goal, Goal::Roll { .. }) {
            self.job
                .gate
                .prepare(self.remote, self.job.host)
                .await
                .map_err(|f| self.remote_error(Step::Gate, Fault::Gate(f)))?;
        }
        // Where the host comes from: the origin of an operation in flight, else what runs.
        let origin = match obs.record.record().and_then(|r| r.op.as_ref()) {
            Some(op) => op.from.clone(),
            None => obs
                .master
                .as_ref()
                .and_then(|m| m.exe_sha256.clone())
                .unwrap_or_default(),
        };
        let (run, owner) = (&self.job.settings.run_id, &self.job.settings.owner);
        let mut staged = None;
        let verdict = match direction::next(&obs, &aim, run, owner) {
            Move::Begin { master, op, .. } => {
                let course = fresh(aim.clone());
                let gate = self.gate_for(&op, &course);
                match self.get_ready(&obs, &master, &op, gate).await {
                    Ok(path) => {
                        staged = Some(path);
                        Verdict::WouldUpgrade
                    }
                    Err(UpgradeError::Refused { reason, .. }) => Verdict::Refused(*reason),
                    Err(e) => return Err(e),
                }
            }
            Move::Refuse(refusal) => Verdict::Refused(Blocker::Host(refusal)),
            Move::Arrived | Move::Cleanup => Verdict::AlreadyAtTarget,
            Move::Write { .. } if obs.record.record().is_none_or(|r| r.op.is_none()) => {
                Verdict::AlreadyAtTarget
            }
            _ => Verdict::InFlight,
        };
        Ok(Ready {
            verdict,
            obs,
            course: Some((goal, origin, aim)),
            staged,
        })
    }

    /// From a host made ready to its arrival: the moves, starting with the observation and
    /// the staged file of [`Procedure::ready`].
    pub(super) async fn go(&self, ready: Ready) -> Result<Outcome, UpgradeError> {
        let Ready {
            verdict,
            obs,
            course,
            staged,
        } = ready;
        let (goal, origin, aim) = match (verdict, course) {
            (Verdict::NotApplicable(reason), _) => {
                // Our own leftovers (an upload cut short) go, whatever the host runs.
                self.cleanup(&obs).await?;
                return Ok(Outcome::NotApplicable { reason });
            }
            (Verdict::Refused(reason), _) => return Err(self.refused(reason)),
            (_, Some(course)) => course,
            (_, None) => return Err(self.refused(Blocker::NoOperation)),
        };
        let mut course = fresh(aim);
        let result = self.drive(&goal, &mut course, &origin, obs, staged).await;
        match result {
            // Refused after the host was changed is not "refused before any change": the
            // error must be judged by what the host looks like.
            Err(UpgradeError::Refused { host, reason }) if course.changed => {
                Err(UpgradeError::Remote {
                    host,
                    step: Step::Observe,
                    fault: Box::new(Fault::Refused(*reason)),
                })
            }
            other => other,
        }
    }
}

fn fresh(aim: direction::Aim) -> Course {
    Course {
        aim,
        failure: None,
        failed_going_back: None,
        changed: false,
        winched: None,
    }
}
