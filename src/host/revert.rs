//! The moves of the per-host procedure that go back: the two-master rollback (HUP the old
//! master, the new one out), killing a hung new binary, putting the origin binary back on
//! disk, and waiting for an old master that is finishing its last connections.

use std::time::Instant;

use super::decide;
use super::decide::accepting;
use super::event::{Status, Step};
use super::observe::{Master, Observation};
use super::procedure::{Flow, Procedure};
use super::record::{Op, OpStep, short};
use super::scripts::{self, SignalTarget};
use super::upgrade::UpgradeError;

impl Procedure<'_> {
    fn unrestored(&self, step: Step, reason: impl Into<String>) -> UpgradeError {
        UpgradeError::Unrestored {
            host: self.host_name().to_owned(),
            step,
            reason: reason.into(),
        }
    }

    /// Rollback while two masters exist: old workers back (HUP), new master out (QUIT, then
    /// TERM, then KILL), its orphaned workers killed, until the old master alone is named by
    /// the pid file.
    pub(super) async fn revert(
        &self,
        obs: &Observation,
        op: &Op,
        old: &Master,
        new: &Master,
    ) -> Result<Flow, UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Rollback, Status::Started, t);
        let evidence = self.error_log(old).await;
        if !evidence.is_empty() {
            self.note(Step::Rollback, format!("new master {}{evidence}", new.pid));
        }
        // HUP only an old master that no longer accepts (after WINCH): one that still has its
        // workers would start a second set.
        if accepting(old) == 0 {
            self.signal(Step::Rollback, old.pid, "HUP", SignalTarget::Master)
                .await?;
        }
        let serving = self
            .poll(self.deadlines().start, |obs| {
                decide::old_serving(obs, old.pid).then_some(obs.clone())
            })
            .await?;
        let now = serving.map_err(|_| {
            self.unrestored(
                Step::Rollback,
                format!("old master {} did not start workers after HUP", old.pid),
            )
        })?;
        let mut new_workers = workers_of(new);
        for pid in decide::find(&now, new.pid)
            .map(workers_of)
            .unwrap_or_default()
        {
            if !new_workers.contains(&pid) {
                new_workers.push(pid);
            }
        }
        // From the first QUIT to the new master on, the rollback is finished whatever comes.
        self.advance(obs, op, OpStep::Revert).await?;
        let quit = self.deadlines().quit;
        let mut gone = false;
        for (sig, share) in [("QUIT", 2), ("TERM", 4), ("KILL", 4)] {
            if !self
                .signal(Step::Rollback, new.pid, sig, SignalTarget::Master)
                .await
                .unwrap_or(false)
                && sig != "QUIT"
            {
                gone = true;
                break;
            }
            let left = self
                .poll(quit / share, |obs| {
                    decide::find(obs, new.pid).is_none().then_some(())
                })
                .await?;
            if left.is_ok() {
                gone = true;
                break;
            }
        }
        if !gone {
            return Err(self.unrestored(
                Step::Rollback,
                format!("new master {} would not exit", new.pid),
            ));
        }
        for pid in new_workers {
            // Orphans of a killed new master keep accepting on the shared socket.
            let _ = self
                .signal(Step::Rollback, pid, "KILL", SignalTarget::Worker)
                .await;
        }
        self.back_on_old(old, Some(new.pid)).await?;
        self.emit(Step::Rollback, Status::Done, t);
        Ok(Flow::Continue)
    }

    /// A new binary that never became a master: KILL it (it keeps nginx's blocked signal
    /// mask), then wait for the old master to take its pid file back.
    pub(super) async fn kill_hung(
        &self,
        old: &Master,
        children: &[u32],
    ) -> Result<(), UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Rollback, Status::Started, t);
        for &pid in children {
            self.signal(Step::Rollback, pid, "KILL", SignalTarget::ChildOf(old.pid))
                .await?;
        }
        self.back_on_old(old, None).await?;
        self.emit(Step::Rollback, Status::Done, t);
        Ok(())
    }

    /// Waits until the old master is the only master again (pid file back, `.oldbin` gone,
    /// its workers serving, the new master gone).
    async fn back_on_old(&self, old: &Master, new_pid: Option<u32>) -> Result<(), UpgradeError> {
        let back = self
            .poll(self.deadlines().quit, |obs| {
                decide::reverted(obs, old.pid, new_pid).then_some(())
            })
            .await?;
        back.map_err(|_| {
            self.unrestored(
                Step::Rollback,
                format!("master {}'s pid file did not come back", old.pid),
            )
        })
    }

    /// Renames the backup of `sha` over the binary (the master already runs `sha`).
    pub(super) async fn restore_disk(
        &self,
        obs: &Observation,
        sha: &str,
    ) -> Result<(), UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Restore, Status::Started, t);
        let layout = self.layout_at(obs);
        let backup = layout.backup(sha);
        if !obs.backups.iter().any(|b| b.path == backup) {
            let reason = format!("no backup {backup} to restore");
            self.emit(Step::Restore, Status::Failed(reason.clone()), t);
            return Err(self.unrestored(Step::Restore, reason));
        }
        self.exec(Step::Restore, &scripts::restore(&layout, &backup, sha))
            .await?;
        self.emit(Step::Restore, Status::Done, t);
        Ok(())
    }

    /// The old master of a committed upgrade still finishes connections; nginx ignores USR2
    /// until it exits. Waits for it within the drain deadline, else refuses.
    pub(super) async fn await_drain(&self, old: &Master) -> Result<(), UpgradeError> {
        let t = Instant::now();
        self.emit(Step::Drain, Status::Started, t);
        let gone = self
            .poll(self.deadlines().drain, |obs| {
                decide::find(obs, old.pid).is_none().then_some(())
            })
            .await?;
        match gone {
            Ok(()) => {
                self.emit(Step::Drain, Status::Done, t);
                Ok(())
            }
            Err(last) => {
                let left = decide::find(&last, old.pid).map_or(0, Master::workers);
                let reason = format!(
                    "the old master {} (running {}) is still finishing connections with {left} worker(s) after {:?}; nginx ignores USR2 until it exits: run again later (or set worker_shutdown_timeout in the old version's config)",
                    old.pid,
                    short(old.exe_sha256.as_deref().unwrap_or("?")),
                    self.deadlines().drain
                );
                self.emit(Step::Drain, Status::Failed(reason.clone()), t);
                Err(self.refused(reason))
            }
        }
    }

    /// ` (error log: …)` with the last lines of nginx's error log, when one is found.
    pub(super) async fn error_log(&self, master: &Master) -> String {
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

fn workers_of(master: &Master) -> Vec<u32> {
    master
        .children
        .iter()
        .filter(|c| c.is_worker())
        .map(|c| c.pid)
        .collect()
}
