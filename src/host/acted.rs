//! Running a step command ([`super::act`]) from the procedure and reading what its acts said:
//! a failed record or install is a command failure, a refused signal a refusal, and a wait's
//! result is judged again by the pure condition on the observation the command returned
//! (when the host and the controller disagree, the controller polls for the rest).

use std::time::Duration;

use super::act::{self, Act, ActError, Acted, Said};
use super::event::Step;
use super::failure::{CommandFailed, Fault};
use super::observe::Observation;
use super::probe::{Depth, ProbeError};
use super::procedure::Procedure;
use super::upgrade::UpgradeError;
use crate::ssh::ExitStatus;

/// Where the observation that met a condition came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proof {
    /// The step command's own probe: it can stand for the loop's next observation.
    Returned,
    /// A later quick probe (the host's wait and the pure condition disagreed).
    Polled,
}

impl Procedure<'_> {
    /// Runs `acts` and the probe (at `depth`) as one command.
    pub(super) async fn act(
        &self,
        step: Step,
        acts: &[Act],
        depth: Depth,
    ) -> Result<Acted, UpgradeError> {
        let cmd = act::command(self.job.host, &self.layout(), acts, depth);
        let deadline = act::deadline(self.deadlines().command, acts);
        let out = self.remote.exec(&cmd, deadline).await?;
        match act::parse(&out) {
            Ok(acted) => Ok(acted),
            Err(ActError::Probe(ProbeError::Ssh(e))) => Err(e.into()),
            Err(ActError::Probe(e)) => Err(self.remote_error(step, Fault::Probe(e))),
            Err(e) => Err(self.remote_error(step, Fault::Command(e.failed()))),
        }
    }

    /// A record write or install that failed is the step's failure.
    pub(super) fn wrote(&self, step: Step, said: &Said, what: &str) -> Result<(), UpgradeError> {
        match said {
            Said::Failed(rc) => Err(self.remote_error(
                step,
                Fault::Command(CommandFailed {
                    status: ExitStatus::Code(u32::try_from(*rc).unwrap_or(1)),
                    output: format!("failed to {what}"),
                }),
            )),
            _ => Ok(()),
        }
    }

    /// What a checked signal found: `Ok(true)` sent, `Ok(false)` gone (or not sent because
    /// an act before it failed), a refusal as the step's failure.
    pub(super) fn sent(
        &self,
        step: Step,
        said: &Said,
        sig: &'static str,
    ) -> Result<bool, UpgradeError> {
        match said {
            Said::Signal { answer, .. } if answer == "sent" => Ok(true),
            Said::Signal { answer, .. } if answer == "gone" => Ok(false),
            Said::Signal { pid, answer } => Err(self.remote_error(
                step,
                Fault::SignalRefused {
                    pid: *pid,
                    signal: sig,
                    answer: answer.clone(),
                },
            )),
            _ => Ok(false),
        }
    }

    /// Judges a wait of a step command: the pure `cond` on the returned observation; when it
    /// does not hold but the host said it did, polls for up to `limit` more. `Err` carries
    /// the last observation when the condition never held.
    pub(super) async fn settle<T>(
        &self,
        acted: &Acted,
        wait: usize,
        limit: Duration,
        mut cond: impl FnMut(&Observation) -> Option<T>,
    ) -> Result<Result<(T, Proof), Observation>, UpgradeError> {
        if let Some(v) = cond(&acted.obs) {
            return Ok(Ok((v, Proof::Returned)));
        }
        if *acted.said(wait) != Said::Done {
            return Ok(Err(acted.obs.clone()));
        }
        Ok(self.poll(limit, cond).await?.map(|v| (v, Proof::Polled)))
    }
}

/// The returned observation when it can stand for the loop's next one.
pub(super) fn next_obs(acted: Acted, proof: Proof) -> Option<Observation> {
    match proof {
        Proof::Returned => Some(acted.obs),
        Proof::Polled => None,
    }
}
