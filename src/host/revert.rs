//! The moves of the per-host procedure that go back, each one command: the two-master revert
//! (HUP the old master and wait for its workers; the record; the new master out by the exit
//! ladder of [`decide::exit_ladder`] and its workers killed; the wait for the old master to
//! take its pid file back), killing a hung new binary or orphaned workers, putting the origin
//! binary back on disk, and waiting for an old master that is finishing its last connections.
//! Each runs in [`Procedure::step`].

use super::act::{Act, Cond, Miss, Said};
use super::acted::next_obs;
use super::decide::{self, accepting};
use super::event::Step;
use super::failure::{Blocker, Evidence, Fault};
use super::observe::{Master, Observation};
use super::probe::Depth;
use super::procedure::Procedure;
use super::record::{Op, OpStep};
use super::scripts::{self, SignalTarget};
use super::step::Stop;

impl Procedure<'_> {
    /// Rollback while two masters exist: old workers back (HUP), new master out (the exit
    /// ladder), its orphaned workers killed, until the old master alone is named by the pid
    /// file.
    pub(super) async fn revert(
        &self,
        obs: &Observation,
        op: &Op,
        old: &Master,
        new: &Master,
    ) -> Result<Option<Observation>, Stop> {
        self.step(Step::Revert, async {
            let evidence = self.error_log(old).await;
            if !evidence.is_empty() {
                let text = format!("new master {}{}", new.pid, Evidence(&evidence));
                self.note(Step::Revert, text);
            }
            let mut acts = Vec::new();
            // HUP only an old master that no longer accepts (after WINCH): one that still has
            // its workers would start a second set.
            if accepting(old) == 0 {
                acts.push(Act::Signal {
                    pid: old.pid,
                    signal: "HUP",
                    target: SignalTarget::Master,
                    miss: Miss::GoneIsFine,
                });
            }
            let serving = acts.len();
            acts.push(Act::Wait {
                cond: Cond::Serving { old: old.pid },
                limit: self.deadlines().start,
            });
            // From the first QUIT to the new master on, the rollback is finished whatever
            // comes.
            acts.extend(self.advanced(obs, op, OpStep::Revert));
            let out = acts.len();
            acts.extend([
                Act::TakeOut {
                    pid: new.pid,
                    workers: decide::workers(new),
                    ladder: decide::exit_ladder(self.deadlines().quit),
                },
                Act::Wait {
                    cond: Cond::Reverted {
                        old: old.pid,
                        new: Some(new.pid),
                    },
                    limit: self.deadlines().quit,
                },
            ]);
            let acted = self.act(Step::Revert, &acts, Depth::Step).await?;
            if serving > 0 {
                self.sent(Step::Revert, acted.said(0), "HUP")?;
            }
            let limit = self.deadlines().start;
            let served = self
                .settle(&acted, serving, limit, |obs| {
                    decide::old_serving(obs, old.pid).then_some(())
                })
                .await?;
            if served.is_err() {
                let fault = Fault::NoWorkersAfterHup { pid: old.pid };
                return Err(self.unrestored(Step::Revert, fault).into());
            }
            if out > serving + 1 {
                self.wrote(Step::Revert, acted.said(out - 1), "write the state record")?;
            }
            if *acted.said(out) == Said::Unmet {
                let fault = Fault::NewMasterStayed { pid: new.pid };
                return Err(self.unrestored(Step::Revert, fault).into());
            }
            self.back_on_old(acted, out + 1, old, Some(new.pid)).await
        })
        .await
    }

    /// A new binary that never became a master: KILL it (it keeps nginx's blocked signal
    /// mask), then wait for the old master to take its pid file back.
    pub(super) async fn kill_hung(
        &self,
        old: &Master,
        children: &[u32],
    ) -> Result<Option<Observation>, Stop> {
        self.step(Step::Revert, async {
            let mut acts: Vec<Act> = children
                .iter()
                .map(|&pid| Act::Signal {
                    pid,
                    signal: "KILL",
                    target: SignalTarget::ChildOf(old.pid),
                    miss: Miss::GoneIsFine,
                })
                .collect();
            acts.push(Act::Wait {
                cond: Cond::Reverted {
                    old: old.pid,
                    new: None,
                },
                limit: self.deadlines().quit,
            });
            let acted = self.act(Step::Revert, &acts, Depth::Step).await?;
            for i in 0..children.len() {
                self.sent(Step::Revert, acted.said(i), "KILL")?;
            }
            self.back_on_old(acted, children.len(), old, None).await
        })
        .await
    }

    /// Workers of a killed master that still accept on the shared sockets: KILL them.
    pub(super) async fn kill_orphans(&self, pids: &[u32]) -> Result<Option<Observation>, Stop> {
        self.step(Step::Revert, async {
            let acts: Vec<Act> = pids
                .iter()
                .map(|&pid| Act::Signal {
                    pid,
                    signal: "KILL",
                    target: SignalTarget::Worker,
                    miss: Miss::GoneIsFine,
                })
                .collect();
            let acted = self.act(Step::Revert, &acts, Depth::Step).await?;
            for i in 0..pids.len() {
                self.sent(Step::Revert, acted.said(i), "KILL")?;
            }
            Ok(Some(acted.obs))
        })
        .await
    }

    /// Judges the wait (act `wait`) until the old master is the only master again (pid file
    /// back, `.oldbin` gone, its workers serving, the new master gone).
    async fn back_on_old(
        &self,
        acted: super::act::Acted,
        wait: usize,
        old: &Master,
        new_pid: Option<u32>,
    ) -> Result<Option<Observation>, Stop> {
        let limit = self.deadlines().quit;
        let back = self
            .settle(&acted, wait, limit, |obs| {
                decide::reverted(obs, old.pid, new_pid).then_some(())
            })
            .await?;
        match back {
            Ok(((), proof)) => Ok(next_obs(acted, proof)),
            Err(_) => {
                let fault = Fault::PidFileNotBack { pid: old.pid };
                Err(self.unrestored(Step::Revert, fault).into())
            }
        }
    }

    /// Renames the backup of `sha` over the binary (the master already runs `sha`).
    pub(super) async fn restore_disk(
        &self,
        obs: &Observation,
        sha: &str,
    ) -> Result<Option<Observation>, Stop> {
        self.step(Step::Restore, async {
            let layout = self.layout_at(obs);
            let backup = layout.backup(sha);
            if !obs.backups.iter().any(|b| b.path == backup) {
                let fault = Fault::NoBackup { path: backup };
                return Err(self.unrestored(Step::Restore, fault).into());
            }
            self.exec(Step::Restore, &scripts::restore(&layout, &backup, sha))
                .await?;
            Ok(None)
        })
        .await
    }

    /// The old master of a committed upgrade still finishes connections; nginx ignores USR2
    /// until it exits. Waits for it on the host within the drain deadline, else refuses.
    pub(super) async fn await_drain(&self, old: &Master) -> Result<Option<Observation>, Stop> {
        self.step(Step::Commit, async {
            let limit = self.deadlines().drain;
            let acts = [Act::Wait {
                cond: Cond::Gone { pid: old.pid },
                limit,
            }];
            let acted = self.act(Step::Commit, &acts, Depth::Step).await?;
            let gone = self
                .settle(&acted, 0, limit, |obs| {
                    decide::find(obs, old.pid).is_none().then_some(())
                })
                .await?;
            let last = match gone {
                Ok(((), proof)) => return Ok(next_obs(acted, proof)),
                Err(last) => last,
            };
            let reason = Blocker::StillDraining {
                pid: old.pid,
                sha: old.exe_sha256.clone().unwrap_or_else(|| "?".into()),
                workers: decide::find(&last, old.pid).map_or(0, Master::workers),
                waited: limit,
            };
            Err(self.refused(reason).into())
        })
        .await
    }

    /// The last lines of nginx's error log, when one is found (evidence for a failure).
    pub(super) async fn error_log(&self, master: &Master) -> Vec<String> {
        let candidates = decide::error_log_candidates(master);
        match self
            .exec(Step::Observe, &scripts::error_log_tail(&candidates))
            .await
        {
            Ok(text) => decide::evidence(&text),
            Err(_) => Vec::new(),
        }
    }
}
