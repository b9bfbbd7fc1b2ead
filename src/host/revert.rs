//! The moves of the per-host procedure that go back: the two-master revert (HUP the old
//! master, the new one out by the exit ladder of [`decide::exit_ladder`]), killing a hung new
//! binary, orphaned workers, putting the origin binary back on disk, and waiting for an old
//! master that is finishing its last connections. Each runs in [`Procedure::step`].

use super::decide::{self, AfterSignal, Delivery, accepting};
use super::event::Step;
use super::failure::{Blocker, Evidence, Fault};
use super::observe::{Master, Observation};
use super::procedure::Procedure;
use super::record::{Op, OpStep};
use super::scripts::{self, SignalTarget};
use super::step::Stop;
use super::upgrade::UpgradeError;

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
    ) -> Result<(), Stop> {
        self.step(Step::Revert, async {
            let evidence = self.error_log(old).await;
            if !evidence.is_empty() {
                let text = format!("new master {}{}", new.pid, Evidence(&evidence));
                self.note(Step::Revert, text);
            }
            // HUP only an old master that no longer accepts (after WINCH): one that still has
            // its workers would start a second set.
            if accepting(old) == 0 {
                self.signal(Step::Revert, old.pid, "HUP", SignalTarget::Master)
                    .await?;
            }
            let serving = self
                .poll(self.deadlines().start, |obs| {
                    decide::old_serving(obs, old.pid).then_some(obs.clone())
                })
                .await?;
            let now = serving.map_err(|_| {
                self.unrestored(Step::Revert, Fault::NoWorkersAfterHup { pid: old.pid })
            })?;
            let mut new_workers = decide::workers(new);
            for pid in decide::find(&now, new.pid)
                .map(decide::workers)
                .unwrap_or_default()
            {
                if !new_workers.contains(&pid) {
                    new_workers.push(pid);
                }
            }
            // From the first QUIT to the new master on, the rollback is finished whatever
            // comes.
            self.advance(obs, op, OpStep::Revert).await?;
            self.take_out(new.pid).await?;
            for pid in new_workers {
                // Orphans of a killed new master keep accepting on the shared socket.
                let _ = self
                    .signal(Step::Revert, pid, "KILL", SignalTarget::Worker)
                    .await;
            }
            self.back_on_old(old, Some(new.pid)).await?;
            Ok(())
        })
        .await
    }

    /// Signals the new master down the exit ladder until it is gone.
    async fn take_out(&self, pid: u32) -> Result<(), UpgradeError> {
        for rung in decide::exit_ladder(self.deadlines().quit) {
            let sent = self
                .signal(Step::Revert, pid, rung.signal, SignalTarget::Master)
                .await
                .unwrap_or(false);
            let delivery = if sent { Delivery::Sent } else { Delivery::Gone };
            if decide::after_signal(rung, delivery) == AfterSignal::Gone {
                return Ok(());
            }
            let left = self
                .poll(rung.wait, |obs| {
                    decide::find(obs, pid).is_none().then_some(())
                })
                .await?;
            if left.is_ok() {
                return Ok(());
            }
        }
        Err(self.unrestored(Step::Revert, Fault::NewMasterStayed { pid }))
    }

    /// A new binary that never became a master: KILL it (it keeps nginx's blocked signal
    /// mask), then wait for the old master to take its pid file back.
    pub(super) async fn kill_hung(&self, old: &Master, children: &[u32]) -> Result<(), Stop> {
        self.step(Step::Revert, async {
            for &pid in children {
                let target = SignalTarget::ChildOf(old.pid);
                self.signal(Step::Revert, pid, "KILL", target).await?;
            }
            self.back_on_old(old, None).await?;
            Ok(())
        })
        .await
    }

    /// Workers of a killed master that still accept on the shared sockets: KILL them.
    pub(super) async fn kill_orphans(&self, pids: &[u32]) -> Result<(), Stop> {
        self.step(Step::Revert, async {
            for &pid in pids {
                self.signal(Step::Revert, pid, "KILL", SignalTarget::Worker)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Waits until the old master is the only master again (pid file back, `.oldbin` gone,
    /// its workers serving, the new master gone).
    async fn back_on_old(&self, old: &Master, new_pid: Option<u32>) -> Result<(), UpgradeError> {
        let back = self
            .poll(self.deadlines().quit, |obs| {
                decide::reverted(obs, old.pid, new_pid).then_some(())
            })
            .await?;
        back.map_err(|_| self.unrestored(Step::Revert, Fault::PidFileNotBack { pid: old.pid }))
    }

    /// Renames the backup of `sha` over the binary (the master already runs `sha`).
    pub(super) async fn restore_disk(&self, obs: &Observation, sha: &str) -> Result<(), Stop> {
        self.step(Step::Restore, async {
            let layout = self.layout_at(obs);
            let backup = layout.backup(sha);
            if !obs.backups.iter().any(|b| b.path == backup) {
                let fault = Fault::NoBackup { path: backup };
                return Err(self.unrestored(Step::Restore, fault).into());
            }
            self.exec(Step::Restore, &scripts::restore(&layout, &backup, sha))
                .await?;
            Ok(())
        })
        .await
    }

    /// The old master of a committed upgrade still finishes connections; nginx ignores USR2
    /// until it exits. Waits for it within the drain deadline, else refuses.
    pub(super) async fn await_drain(&self, old: &Master) -> Result<(), Stop> {
        self.step(Step::Commit, async {
            let gone = self
                .poll(self.deadlines().drain, |obs| {
                    decide::find(obs, old.pid).is_none().then_some(())
                })
                .await?;
            let Err(last) = gone else {
                return Ok(());
            };
            let reason = Blocker::StillDraining {
                pid: old.pid,
                sha: old.exe_sha256.clone().unwrap_or_else(|| "?".into()),
                workers: decide::find(&last, old.pid).map_or(0, Master::workers),
                waited: self.deadlines().drain,
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
