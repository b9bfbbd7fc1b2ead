//! Pure: where a run takes a host (its aim, resolved once from the goal and the host's
//! record) and the next move toward it, from (observation, record, aim). Direction is read
//! from the record, never inferred: an operation in flight is finished or undone according to
//! the aim, and a rollback goes to the version the host ran before, never to "a backup".

use super::decide::{accepting, draining, strange_children};
use super::observe::{Master, Observation, RecordSeen};
use super::record::{Op, OpKind, OpStep, Record, short};
pub use super::refusal::{Refusal, Skip};

/// What the operator asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Run this binary (sha256).
    Roll { target: String },
    /// Take hosts that run this binary (sha256) back one version.
    Rollback { from: String },
}

/// Whether a passed upgrade is committed at once or waits for the orchestrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    Now,
    /// `keep_old_master`: stop with the old master alive and without workers.
    Deferred,
}

/// Why a run goes where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// The operator's goal: an interrupted rollback is finished, never undone (undoing it
    /// would land on the version being left without its gates having passed).
    Asked,
    /// The run turned back after a judged failure: straight back to where it came from.
    TurnedBack,
}

/// Where this run takes the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aim {
    /// The binary (sha256) the host should run at the end.
    pub sha: String,
    /// What a new operation toward it is.
    pub kind: OpKind,
    pub commit: Commit,
    pub drive: Drive,
}

/// The goal resolved against the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Aim(Aim),
    /// Nothing for this run to do on this host.
    Skip(Skip),
    /// The host cannot be taken anywhere safely.
    Refuse(Refusal),
}

fn live(m: Option<&Master>) -> Option<&Master> {
    m.filter(|m| m.state.is_alive())
}

fn sha(m: &Master) -> &str {
    m.exe_sha256.as_deref().unwrap_or("")
}

fn disk(obs: &Observation) -> &str {
    obs.binary
        .as_ref()
        .and_then(|b| b.sha256.as_deref())
        .unwrap_or("")
}

/// Resolves the goal: a roll aims at its target; a rollback finishes or undoes an operation in
/// flight, or else goes one version back in the host's history.
pub fn resolve(goal: &Goal, obs: &Observation, commit: Commit) -> Resolved {
    let from = match goal {
        Goal::Roll { target } => {
            return Resolved::Aim(Aim {
                sha: target.clone(),
                kind: OpKind::Upgrade,
                commit,
                drive: Drive::Asked,
            });
        }
        Goal::Rollback { from } => from,
    };
    let back = |sha: &str| {
        Resolved::Aim(Aim {
            sha: sha.to_owned(),
            kind: OpKind::Rollback,
            commit: Commit::Now,
            drive: Drive::Asked,
        })
    };
    let record = match &obs.record {
        RecordSeen::Read(r) => Some(r),
        RecordSeen::Missing => None,
        RecordSeen::Unreadable(why) => {
            return Resolved::Refuse(Refusal::UnreadableRecord { why: why.clone() });
        }
    };
    if let Some(op) = record.and_then(|r| r.op.as_ref()) {
        // Only an operation that takes on the version being rolled back is ours to settle.
        let taking_on = match op.kind {
            OpKind::Upgrade => &op.to,
            OpKind::Rollback => &op.from,
        };
        if !from.is_empty() && taking_on != from {
            return Resolved::Skip(Skip::OtherOperation {
                op: op.clone(),
                of: from.clone(),
            });
        }
        // An interrupted upgrade is undone; an interrupted rollback is finished.
        return match op.kind {
            OpKind::Upgrade => back(&op.from),
            OpKind::Rollback => back(&op.to),
        };
    }
    let Some(running) = live(obs.master.as_ref()).map(sha) else {
        return Resolved::Refuse(Refusal::NoLiveMaster);
    };
    if !from.is_empty() && running != from {
        return Resolved::Skip(Skip::RunsOther {
            running: running.to_owned(),
            of: from.clone(),
        });
    }
    let Some(record) = record else {
        return Resolved::Refuse(Refusal::NoRecord);
    };
    if record.current() != Some(running) {
        return Resolved::Refuse(Refusal::RecordDisagrees {
            recorded: record.current().map(str::to_owned),
            running: running.to_owned(),
        });
    }
    if disk(obs) != running {
        return Resolved::Refuse(Refusal::DiskChanged {
            disk: disk(obs).to_owned(),
            running: running.to_owned(),
        });
    }
    match record.previous() {
        Some(prev) => back(prev),
        None => Resolved::Skip(Skip::NoEarlier {
            running: running.to_owned(),
        }),
    }
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Move {
    /// The host runs the aim, on disk too, one master, nothing in flight.
    Arrived,
    /// Remove the staged leftovers the observation lists.
    Cleanup,
    /// Write this record; nothing else changes (finish or abandon an operation, start a
    /// history). `note` says why, when it is news for the operator.
    Write {
        record: Record,
        note: Option<String>,
    },
    /// Start a new operation from a steady master: preflight, stage, check, install. `base`
    /// is the record it extends (a new history when the host had none that fits, with a
    /// `note` saying so).
    Begin {
        master: Master,
        op: Op,
        base: Record,
        note: Option<String>,
    },
    /// The operation's binary is on disk under its origin master: USR2.
    Start {
        master: Master,
    },
    /// Two masters, the new one on the operation's target: WINCH, drain, gates.
    Drain {
        old: Master,
        new: Master,
    },
    /// The new master passed: QUIT to the old one.
    Commit {
        old: Master,
        new: Master,
    },
    /// Stop with the old master waiting (deferred commit).
    Hold {
        old: Master,
        new: Master,
    },
    /// Two masters, going back: HUP the old master, the new one out.
    Revert {
        old: Master,
        new: Master,
    },
    /// A new binary that never became a master: kill it.
    KillHung {
        old: Master,
        children: Vec<u32>,
    },
    /// The operation's binary is on disk under the origin master: put the origin back.
    RestoreDisk {
        sha: String,
    },
    /// Workers of a killed master still accept on the shared sockets: kill them first.
    KillOrphans(Vec<u32>),
    /// The old master of a committed upgrade is still finishing connections.
    AwaitDrain {
        old: Master,
    },
    Refuse(Refusal),
}

/// Whether an operation in flight is finished (toward its `to`) for this aim.
pub fn forward(op: &Op, aim: &Aim) -> bool {
    match (aim.drive, op.kind) {
        (Drive::TurnedBack, _) => op.to == aim.sha,
        // A rollback that was asked for is finished first, whatever comes next: undoing it
        // would put the version being left back in service without its gates.
        (Drive::Asked, OpKind::Rollback) => true,
        // An upgrade is finished when it goes where this run goes, else undone first.
        (Drive::Asked, OpKind::Upgrade) => op.to == aim.sha,
    }
}

/// The next move toward `aim`.
pub fn next(obs: &Observation, aim: &Aim, run: &str, controller: &str) -> Move {
    if !obs.orphans.is_empty() {
        return Move::KillOrphans(obs.orphans.clone());
    }
    let record = match &obs.record {
        RecordSeen::Read(r) => Some(r),
        RecordSeen::Missing => None,
        RecordSeen::Unreadable(why) => {
            return Move::Refuse(Refusal::UnreadableRecord { why: why.clone() });
        }
    };
    match record.and_then(|r| r.op.as_ref().map(|op| (r, op))) {
        None => settled(obs, record, aim, run, controller),
        Some((r, op)) => in_flight(obs, r, op, aim),
    }
}

/// No operation in flight.
fn settled(
    obs: &Observation,
    record: Option<&Record>,
    aim: &Aim,
    run: &str,
    controller: &str,
) -> Move {
    let master = live(obs.master.as_ref());
    let old = live(obs.old_master.as_ref());
    let Some(m) = master else {
        return Move::Refuse(no_master(obs));
    };
    if !m.nginx_master {
        return Move::Refuse(Refusal::NotAMaster {
            pid: m.pid,
            argv: m.argv.join(" "),
        });
    }
    let running = sha(m);
    let on_disk = disk(obs);
    let history_ok = record.is_some_and(|r| r.current() == Some(running));
    match (old, obs.oldbin) {
        (None, None) => {}
        (Some(o), Some(_))
            if m.ppid == Some(o.pid) && draining(o) && accepting(m) > 0 && history_ok =>
        {
            if running == aim.sha && on_disk == running {
                if obs.staged.is_empty() {
                    return Move::Arrived;
                }
                return Move::Cleanup;
            }
            return Move::AwaitDrain { old: o.clone() };
        }
        (Some(o), _) => {
            return Move::Refuse(Refusal::ForeignUpgrade {
                pid: m.pid,
                old: o.pid,
            });
        }
        (None, Some(stale)) => {
            return Move::Refuse(Refusal::StaleOldbin { stale, pid: m.pid });
        }
    }
    if on_disk != running {
        return Move::Refuse(Refusal::DiskChanged {
            disk: on_disk.to_owned(),
            running: running.to_owned(),
        });
    }
    let op = Op {
        kind: aim.kind,
        from: running.to_owned(),
        to: aim.sha.clone(),
        step: OpStep::Install,
    };
    if history_ok {
        if running == aim.sha {
            if obs.staged.is_empty() {
                return Move::Arrived;
            }
            return Move::Cleanup;
        }
        let base = record.cloned().unwrap_or_default();
        return Move::Begin {
            master: m.clone(),
            op,
            base,
            note: None,
        };
    }
    let note = match record.and_then(Record::current) {
        None => format!(
            "no state record on this host: starting its history at {}",
            short(running)
        ),
        Some(said) => format!(
            "the state record said {} runs but {} does (changed outside ngfleet): starting a new history",
            short(said),
            short(running)
        ),
    };
    let mut base = Record::starting_at(running);
    base.run = run.to_owned();
    base.controller = controller.to_owned();
    if running == aim.sha {
        return Move::Write {
            record: base,
            note: Some(note),
        };
    }
    Move::Begin {
        master: m.clone(),
        op,
        base,
        note: Some(note),
    }
}

/// An operation in flight: finish it or undo it.
fn in_flight(obs: &Observation, record: &Record, op: &Op, aim: &Aim) -> Move {
    let fwd = forward(op, aim);
    let master = live(obs.master.as_ref());
    let old = live(obs.old_master.as_ref());
    let on_disk = disk(obs);
    match (master, old) {
        (Some(m), None) if obs.oldbin.is_none() => {
            let running = sha(m);
            if running == op.from {
                if on_disk == op.from {
                    if fwd {
                        Move::Begin {
                            master: m.clone(),
                            op: op.clone(),
                            base: record.abandoned(),
                            note: None,
                        }
                    } else {
                        Move::Write {
                            record: record.abandoned(),
                            note: None,
                        }
                    }
                } else if on_disk == op.to {
                    if fwd {
                        Move::Start { master: m.clone() }
                    } else {
                        Move::RestoreDisk {
                            sha: op.from.clone(),
                        }
                    }
                } else {
                    Move::Refuse(Refusal::DiskOutsideOp {
                        disk: on_disk.to_owned(),
                        op: op.clone(),
                    })
                }
            } else if running == op.to && on_disk == op.to {
                // Committed; the record was not finished.
                Move::Write {
                    record: record.completed(),
                    note: None,
                }
            } else {
                Move::Refuse(Refusal::MasterOutsideOp {
                    pid: m.pid,
                    running: running.to_owned(),
                    disk: on_disk.to_owned(),
                    op: op.clone(),
                })
            }
        }
        (Some(new), Some(o)) if new.pid != o.pid && new.ppid == Some(o.pid) => {
            // The new master may run another executable than the file it was started from
            // (a wrapper that execs nginx): the file on disk names the operation's target.
            if sha(o) != op.from || (sha(new) != op.to && on_disk != op.to) {
                return Move::Refuse(Refusal::MastersOutsideOp {
                    old: sha(o).to_owned(),
                    new: sha(new).to_owned(),
                    op: op.clone(),
                });
            }
            let quitting = accepting(new) == 0 && draining(new);
            let (old, new) = (o.clone(), new.clone());
            match op.step {
                // QUIT may have reached the new master: it is on its way out, go back.
                OpStep::Revert => Move::Revert { old, new },
                _ if quitting => Move::Revert { old, new },
                // QUIT may have reached the old master: no signal path back is left.
                OpStep::Commit => Move::Commit { old, new },
                _ if !fwd => Move::Revert { old, new },
                OpStep::Passed if aim.commit == Commit::Deferred => Move::Hold { old, new },
                OpStep::Passed => Move::Commit { old, new },
                _ => Move::Drain { old, new },
            }
        }
        (None, Some(o)) => Move::KillHung {
            old: o.clone(),
            children: strange_children(o),
        },
        (Some(m), Some(o)) => Move::Refuse(Refusal::NotAChild {
            pid: m.pid,
            old: o.pid,
        }),
        (Some(m), None) => Move::Refuse(Refusal::StaleOldbin {
            stale: obs.oldbin.unwrap_or_default(),
            pid: m.pid,
        }),
        (None, None) => Move::Refuse(no_master(obs)),
    }
}

fn no_master(obs: &Observation) -> Refusal {
    match (obs.pid_file, obs.oldbin) {
        (None, None) => Refusal::NoPidFile,
        (pid_file, oldbin) => Refusal::NoLiveMasterNamed { pid_file, oldbin },
    }
}
