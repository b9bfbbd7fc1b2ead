//! The moves of the per-host procedure that go forward after the start: winch (one command:
//! WINCH and the wait for the old workers on the host, unless the start command sent it;
//! then the `on_drain_timeout` policy),
//! the gates and the soak over the open connection, and commit (one command: the new master
//! checked, the record, QUIT, the wait, the running binary checked, the record completed),
//! then the final gate. Each step runs in [`Procedure::step`]. The moves that begin an
//! operation live in [`super::begin`], the ones that go back in [`super::revert`].

use std::time::Instant;

use super::act::{Act, Acted, Cond, Miss, Said};
use super::acted::next_obs;
use super::decide;
use super::direction::{Aim, Commit};
use super::event::Step;
use super::failure::{Fault, Judged};
use super::observe::{Master, Observation};
use super::probe::Depth;
use super::procedure::{Procedure, Winched};
use super::record::{Op, OpStep};
use super::scripts::SignalTarget;
use super::step::Stop;
use super::tunnel_ahead::{Opening, TunnelAhead};
use super::upgrade::{FOLDED_DRAIN, Gate, Phase, SOAK_ROUND};
use crate::model::spec::OnDrainTimeout;

impl Procedure<'_> {
    /// WINCH and the old workers' drain, the gates and the soak; then commit, or hold
    /// (deferred commit: the record says the new binary passed).
    pub(super) async fn drain(
        &self,
        obs: &Observation,
        (old, new): (&Master, &Master),
        op: &Op,
        aim: &Aim,
        gate: &dyn Gate,
        winched: Option<Winched>,
    ) -> Result<Option<Observation>, Stop> {
        let before = self
            .step(Step::Winch, self.winch((old, new), winched))
            .await?;
        let deferred = aim.commit == Commit::Deferred;
        let last = self
            .step(Step::Gate, async {
                let last = self.gates(gate, new, before).await?;
                if !deferred {
                    return Ok::<_, Stop>(last);
                }
                let acts: Vec<Act> = self.advanced(obs, op, OpStep::Passed).into_iter().collect();
                let acted = self.act(Step::Gate, &acts, Depth::Step).await?;
                self.wrote(Step::Gate, acted.said(0), "write the state record")?;
                Ok(acted.obs)
            })
            .await?;
        if deferred {
            return Ok(Some(last));
        }
        self.commit(obs, old, new, op, gate, &last).await
    }

    /// WINCH, then the wait for the old workers on the host: the deadline ends the wait, not
    /// the host, unless `on_drain_timeout: fail`. The observation after it. A WINCH the start
    /// command sent ([`Winched`]) is judged from that command's result, not sent again; a
    /// drain longer than that command waited goes on here, for the rest of the deadline.
    async fn winch(
        &self,
        (old, new): (&Master, &Master),
        winched: Option<Winched>,
    ) -> Result<Observation, Stop> {
        let limit = self.deadlines().drain;
        let drain = Act::Wait {
            cond: Cond::Drained { old: old.pid },
            limit,
        };
        let (acted, wait) = match winched {
            Some(w) if *w.acted.said(w.at) != Said::Skipped => {
                self.sent(Step::Winch, w.acted.said(w.at), "WINCH")?;
                let short = *w.acted.said(w.at + 1) == Said::Unmet
                    && limit > FOLDED_DRAIN
                    && !decide::drained(&w.acted.obs, old.pid);
                if short {
                    let rest = Act::Wait {
                        cond: Cond::Drained { old: old.pid },
                        limit: limit - FOLDED_DRAIN,
                    };
                    (self.act(Step::Winch, &[rest], Depth::Quick).await?, 0)
                } else {
                    (w.acted, w.at + 1)
                }
            }
            _ => {
                // Only while the new master serves (a resumed run may find it without
                // workers): the old workers stop accepting at WINCH.
                let ready = Act::Check(Cond::Ready { old: old.pid });
                let signal = Act::Signal {
                    pid: old.pid,
                    signal: "WINCH",
                    target: SignalTarget::Master,
                    miss: Miss::GoneIsFine,
                };
                let acted = self
                    .act(Step::Winch, &[ready, signal, drain], Depth::Quick)
                    .await?;
                if *acted.said(0) != Said::Done {
                    return Err(Judged::NotServing { pid: new.pid }.into());
                }
                self.sent(Step::Winch, acted.said(1), "WINCH")?;
                (acted, 2)
            }
        };
        let drained = self
            .settle(&acted, wait, limit, |obs| {
                decide::drained(obs, old.pid).then(|| obs.clone())
            })
            .await?;
        let last = match drained {
            Ok((now, _)) => return Ok(now),
            Err(last) => last,
        };
        let busy = decide::find(&last, old.pid)
            .map(decide::workers)
            .unwrap_or_default();
        let waited = limit;
        match self.job.settings.on_drain_timeout {
            OnDrainTimeout::Fail => Err(Judged::Drain { waited }.into()),
            OnDrainTimeout::Proceed => {
                self.note(
                    Step::Winch,
                    format!(
                        "{} old worker(s) still finishing connections after {waited:?}; new connections reach only the new workers: proceeding (the old master exits when they end)",
                        busy.len()
                    ),
                );
                Ok(last)
            }
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
                Ok(self.observe_at(Depth::Quick).await?)
            }
        }
    }

    /// The gates after WINCH and the process gate, then the soak (every gate, one try a
    /// round, and the process gate again). The last observation: commit checks on the host
    /// that the new master still has exactly its workers then (no respawn, still serving).
    async fn gates(
        &self,
        gate: &dyn Gate,
        new: &Master,
        before: Observation,
    ) -> Result<Observation, Stop> {
        let (remote, host, pid) = (self.remote, self.job.host, Some(new.pid));
        decide::process_gate(&before, &before, new.pid).map_err(Judged::Process)?;
        gate.check(remote, host, Phase::AfterWinch, pid)
            .await
            .map_err(Judged::Gate)?;
        let mut after = before;
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
        Ok(after)
    }

    /// QUIT to the old master, in one command: the new master checked (named by the pid file,
    /// the workers it had at `last`, all accepting: never commit to a master that no longer
    /// serves), the record says commit (no signal path back after it), QUIT, the wait until
    /// the old master is gone or only finishing its last connections, the new master checked
    /// to run the target, the record completed. Then the final gate.
    pub(super) async fn commit(
        &self,
        obs: &Observation,
        old: &Master,
        new: &Master,
        op: &Op,
        gate: &dyn Gate,
        last: &Observation,
    ) -> Result<Option<Observation>, Stop> {
        let (run, owner) = (&self.job.settings.run_id, &self.job.settings.owner);
        let seen = obs.record.record().cloned().unwrap_or_default();
        let resuming = seen.op.as_ref().is_some_and(|o| o.step == OpStep::Commit);
        let mut acts = Vec::new();
        if !resuming {
            let workers = decide::find(last, new.pid)
                .map(decide::workers)
                .unwrap_or_default();
            acts.push(Act::Check(Cond::Serves {
                new: new.pid,
                workers,
            }));
        }
        let committing = match self.advanced(obs, op, OpStep::Commit) {
            Some(Act::Record(r)) => {
                acts.push(Act::Record(r.clone()));
                r
            }
            _ => seen.with_op(
                Op {
                    step: OpStep::Commit,
                    ..op.clone()
                },
                run,
                owner,
            ),
        };
        let quit = acts.len();
        acts.extend([
            Act::Signal {
                pid: old.pid,
                signal: "QUIT",
                target: SignalTarget::Master,
                miss: Miss::GoneIsFine,
            },
            Act::Wait {
                cond: Cond::Committed {
                    old: old.pid,
                    new: new.pid,
                },
                limit: self.deadlines().quit,
            },
            Act::Check(Cond::Runs {
                pid: new.pid,
                sha: op.to.clone(),
            }),
            Act::Record(committing.completed()),
        ]);
        let commit = self.step(
            Step::Commit,
            self.committed(&acts, quit, old, new, op, last),
        );
        // The final gate's connection opens while the commit runs; its request waits for the
        // commit, and the gate waits for the opening (within its own deadline) if it is not
        // done by then.
        let first = gate.first_tunnel(self.job.host, Phase::AfterCommit);
        let to = first.as_ref().map(|t| t.host.clone()).unwrap_or_default();
        let ahead = TunnelAhead::new(self.remote);
        let acted = match first {
            Some(tunnel) => {
                let mut opening = self.remote.open_tcp(&to, tunnel.port);
                let mut opened = None;
                let mut commit = std::pin::pin!(commit);
                let acted = loop {
                    tokio::select! {
                        acted = &mut commit => break acted,
                        got = &mut opening, if opened.is_none() => opened = Some(got),
                    }
                };
                if acted.is_ok() {
                    let opening: Opening<'_> = match opened {
                        Some(got) => Box::pin(async move { got }),
                        None => opening,
                    };
                    ahead.keep(tunnel, opening);
                }
                acted?
            }
            None => commit.await?,
        };
        self.step(Step::Gate, async {
            gate.check(&ahead, self.job.host, Phase::AfterCommit, Some(new.pid))
                .await
                .map_err(|f| Judged::AfterCommit(f).into())
        })
        .await
        .map(|()| acted)
    }

    /// Runs the commit command and judges what it said (QUIT is act `quit`).
    async fn committed(
        &self,
        acts: &[Act],
        quit: usize,
        old: &Master,
        new: &Master,
        op: &Op,
        last: &Observation,
    ) -> Result<Option<Observation>, Stop> {
        let acted: Acted = self.act(Step::Commit, acts, Depth::Step).await?;
        if quit > 0 && *acted.said(0) == Said::Unmet {
            decide::process_gate(last, &acted.obs, new.pid).map_err(Judged::Process)?;
            return Err(Stop::Judged(Judged::NotServing { pid: new.pid }));
        }
        if quit > 1 {
            self.wrote(Step::Commit, acted.said(quit - 1), "write the state record")?;
        }
        self.sent(Step::Commit, acted.said(quit), "QUIT")?;
        let limit = self.deadlines().quit;
        let done = self
            .settle(&acted, quit + 1, limit, |obs| {
                decide::committed(obs, old.pid, new.pid).then_some(())
            })
            .await?;
        let proof = match done {
            Ok(((), proof)) => proof,
            Err(_) => {
                let fault = Fault::OldMasterStayed { pid: old.pid };
                return Err(self.remote_error(Step::Commit, fault).into());
            }
        };
        if *acted.said(quit + 2) == Said::Unmet {
            let runs = acted.obs.master.as_ref().and_then(|m| m.exe_sha256.clone());
            let fault = Fault::WrongBinary {
                runs,
                target: op.to.clone(),
            };
            return Err(self.remote_error(Step::Commit, fault).into());
        }
        self.wrote(Step::Commit, acted.said(quit + 3), "write the state record")?;
        Ok(next_obs(acted, proof))
    }
}
