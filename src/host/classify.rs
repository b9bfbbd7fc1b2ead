//! Judging an [`Observation`]: is the host steady, mid-upgrade, without a master, or in a
//! state that needs a person? Pure.

use std::fmt;

use super::decide::{accepting, draining};
use super::observe::{Master, Observation};
use super::record::OpStep;

/// Where a host stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostState {
    /// One live master named by the pid file, with workers, and no `.oldbin`.
    Steady,
    /// An `.oldbin` and two live masters, the new one a child of the old one.
    Upgrading,
    /// The new master serves; the old master of a committed upgrade is still finishing
    /// connections with this many workers (it exits by itself when they end).
    Draining(usize),
    /// One master serves, but the binary on disk is not the one it runs (an install that
    /// was not followed by USR2, or a change outside ngfleet). Never `steady`.
    DiskDiffers,
    /// No live master: the pid file is missing, or names a process that is gone.
    NoMaster,
    /// The host could not be reached or probed.
    Unreachable,
    /// Anything else (a master without workers, an `.oldbin` whose master is gone, a new
    /// master hanging without a pid file…). The reason says what was seen.
    Inconsistent(String),
}

impl HostState {
    /// The short name used in tables and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            HostState::Steady => "steady",
            HostState::Upgrading => "upgrading",
            HostState::Draining(_) => "draining",
            HostState::DiskDiffers => "disk-differs",
            HostState::NoMaster => "no-master",
            HostState::Unreachable => "unreachable",
            HostState::Inconsistent(_) => "inconsistent",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            HostState::Inconsistent(reason) => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostState::Inconsistent(reason) => write!(f, "inconsistent ({reason})"),
            HostState::Draining(n) => {
                write!(f, "draining ({n} old worker(s) finishing connections)")
            }
            other => f.write_str(other.name()),
        }
    }
}

fn alive(m: Option<&Master>) -> Option<&Master> {
    m.filter(|m| m.state.is_alive())
}

/// Classifies what a probe saw.
pub fn classify(obs: &Observation) -> HostState {
    let master = alive(obs.master.as_ref());
    let old = alive(obs.old_master.as_ref());
    let running = master.and_then(|m| m.exe_sha256.as_deref());
    let on_disk = obs.binary.as_ref().and_then(|b| b.sha256.as_deref());
    let op_committing = match obs.record.record().map(|r| r.op.as_ref()) {
        Some(None) => true,
        Some(Some(op)) => op.step == OpStep::Commit,
        None => false,
    };
    if let Some(pid) = obs.orphans.first() {
        return HostState::Inconsistent(format!(
            "worker {pid} of a killed master still accepts connections (orphaned)"
        ));
    }
    match (master, old, obs.oldbin) {
        (Some(m), None, None) if m.workers() > 0 => match (running, on_disk) {
            (Some(r), Some(d)) if r != d => HostState::DiskDiffers,
            _ => HostState::Steady,
        },
        (Some(m), None, None) => {
            HostState::Inconsistent(format!("master {} has no workers", m.pid))
        }
        (None, None, None) => HostState::NoMaster,
        (Some(new), Some(old), Some(_)) if new.pid != old.pid && new.ppid == Some(old.pid) => {
            if op_committing && draining(old) && accepting(new) > 0 {
                HostState::Draining(old.workers())
            } else {
                HostState::Upgrading
            }
        }
        (Some(new), Some(old), Some(_)) if new.pid != old.pid => HostState::Inconsistent(format!(
            "two masters ({} and old {}) but the new one is not a child of the old one",
            new.pid, old.pid
        )),
        (_, Some(old), Some(_)) => HostState::Inconsistent(format!(
            "{} exists and master {} is alive, but no new master is running (a new binary hanging or failed)",
            ".oldbin", old.pid
        )),
        (Some(m), None, Some(oldpid)) => HostState::Inconsistent(format!(
            "stale .oldbin names {oldpid}, which is gone; master {} is running",
            m.pid
        )),
        (None, None, Some(oldpid)) => {
            HostState::Inconsistent(format!("no live master; stale .oldbin names {oldpid}"))
        }
        (_, Some(old), None) => HostState::Inconsistent(format!("unexpected master {}", old.pid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::observe::tests::steady_output;
    use crate::host::observe::{Child, ProcState, parse};

    fn master(pid: u32, ppid: u32, workers: usize) -> Master {
        Master {
            pid,
            state: ProcState::Alive('S'),
            ppid: Some(ppid),
            argv: vec!["/usr/sbin/nginx".into()],
            nginx_master: true,
            exe: "/usr/sbin/nginx".into(),
            exe_sha256: None,
            version: None,
            children: (0..workers)
                .map(|i| Child {
                    pid: pid + 1 + i as u32,
                    state: ProcState::Alive('S'),
                    title: "nginx: worker process".into(),
                })
                .collect(),
        }
    }

    fn obs(master: Option<Master>, old: Option<Master>) -> Observation {
        Observation {
            machine: "x86_64".into(),
            pid_file: master.as_ref().map(|m| m.pid),
            oldbin: old.as_ref().map(|m| m.pid),
            master,
            old_master: old,
            ..Observation::default()
        }
    }

    #[test]
    fn steady_from_real_probe_output() {
        assert_eq!(
            classify(&parse(&steady_output()).expect("parses")),
            HostState::Steady
        );
    }

    #[test]
    fn upgrading_needs_two_masters_parent_and_child() {
        assert_eq!(
            classify(&obs(Some(master(20, 10, 1)), Some(master(10, 1, 0)))),
            HostState::Upgrading
        );
        assert_eq!(
            classify(&obs(Some(master(20, 1, 1)), Some(master(10, 1, 0)))).name(),
            "inconsistent"
        );
    }

    #[test]
    fn no_master_and_zombies() {
        assert_eq!(classify(&obs(None, None)), HostState::NoMaster);
        let mut zombie = master(10, 1, 0);
        zombie.state = ProcState::Zombie;
        assert_eq!(classify(&obs(Some(zombie), None)), HostState::NoMaster);
    }

    #[test]
    fn hung_new_binary_and_stale_files_are_inconsistent() {
        // Pitfall 5: only .oldbin, its master alive, no pid file.
        let hung = classify(&obs(None, Some(master(10, 1, 1))));
        assert_eq!(hung.name(), "inconsistent");
        assert!(hung.to_string().contains("no new master"), "{hung}");
        let mut gone = master(10, 1, 0);
        gone.state = ProcState::Gone;
        let stale = classify(&obs(Some(master(20, 1, 1)), Some(gone)));
        assert!(
            stale.to_string().contains("stale .oldbin names 10"),
            "{stale}"
        );
        let idle = classify(&obs(Some(master(20, 1, 0)), None));
        assert_eq!(
            idle,
            HostState::Inconsistent("master 20 has no workers".into())
        );
    }

    #[test]
    fn disk_differs_and_draining_are_their_own_states() {
        let mut m = master(10, 1, 1);
        m.exe_sha256 = Some("aaaa".into());
        let mut o = obs(Some(m), None);
        o.binary = Some(crate::host::observe::DiskBinary {
            sha256: Some("bbbb".into()),
            version: None,
            size: None,
        });
        assert_eq!(classify(&o), HostState::DiskDiffers);

        let mut old = master(10, 1, 0);
        old.children.push(Child {
            pid: 11,
            state: ProcState::Alive('S'),
            title: "nginx: worker process is shutting down".into(),
        });
        let mut both = obs(Some(master(20, 10, 1)), Some(old));
        // Without a record (or mid-operation) it is an upgrade in progress.
        assert_eq!(classify(&both), HostState::Upgrading);
        both.record = crate::host::observe::RecordSeen::Read(
            crate::host::record::Record::starting_at("aaaa"),
        );
        assert_eq!(classify(&both), HostState::Draining(1));
        assert_eq!(classify(&both).name(), "draining");
    }
}
