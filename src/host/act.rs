//! One nginx step as one round trip: a list of fixed sub-actions ([`Act`]: write the record,
//! install, a checked signal, a fact that must hold, a bounded wait on the host, the exit
//! ladder) run in order by `scripts/act.sh`, followed by the probe, so the command returns
//! what each act did ([`Said`]) and the observation that proves the result. The host only
//! reports facts: the controller judges them with the pure functions of [`super::decide`].

use std::time::Duration;

use super::decide::Rung;
use super::failure::CommandFailed;
use super::observe::Observation;
use super::probe::{self, Depth, ProbeError};
use super::record::Record;
use super::scripts::{Layout, SignalTarget};
use crate::model::inventory::Host;
use crate::ssh::{ExecOutput, ExitStatus, RemoteCommand};

/// The step runner followed by the probe: one script, the acts' arguments then the probe's,
/// both after the /proc helpers they share.
pub const ACT_PROBE: &str = concat!(
    include_str!("scripts/procfs.sh"),
    include_str!("scripts/act.sh"),
    include_str!("probe.sh")
);

/// What a signal that finds nothing (or the wrong process) does to the acts after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// A process gone, or refused: the acts after it are skipped.
    Stops,
    /// Gone is fine (it may have been signalled before); refused stops.
    GoneIsFine,
    /// Nothing stops (orphans that may be gone already).
    Ignored,
}

/// A condition of the steps, as the host checks it (the controller judges the same facts
/// again from the probe with [`super::decide`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// After USR2: a new master with workers, child of `old`, or the new binary exited.
    Start {
        old: u32,
    },
    /// Before anything changes: the pid file names `pid`, no `.oldbin`, `pid` alive with
    /// accepting workers (the master an observation saw still serves).
    Steady {
        pid: u32,
    },
    /// After USR2, strictly: a new master, child of `old`, named by the pid file, with
    /// accepting workers (never "the new binary exited"). WINCH may follow it in one command.
    Ready {
        old: u32,
    },
    /// After WINCH: `old` alive without workers.
    Drained {
        old: u32,
    },
    /// After QUIT to `old`: the pid file names `new`, `old` gone or only finishing.
    Committed {
        old: u32,
        new: u32,
    },
    Gone {
        pid: u32,
    },
    /// `old` has accepting workers.
    Serving {
        old: u32,
    },
    /// The pid file names `old` again, no `.oldbin`, `new` gone, `old` serving.
    Reverted {
        old: u32,
        new: Option<u32>,
    },
    /// The pid file names `new`, whose workers are exactly `workers`, all accepting.
    Serves {
        new: u32,
        workers: Vec<u32>,
    },
    /// `pid` runs the executable with this sha256.
    Runs {
        pid: u32,
        sha: String,
    },
}

impl Cond {
    fn words(&self, pid_file: &str) -> Vec<String> {
        let s = |v: &[&dyn ToString]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self {
            Cond::Start { old } => s(&[&"start", &pid_file, old]),
            Cond::Steady { pid } => s(&[&"steady", &pid_file, pid]),
            Cond::Ready { old } => s(&[&"ready", &pid_file, old]),
            Cond::Drained { old } => s(&[&"drained", old]),
            Cond::Committed { old, new } => s(&[&"committed", &pid_file, old, new]),
            Cond::Gone { pid } => s(&[&"gone", pid]),
            Cond::Serving { old } => s(&[&"serving", old]),
            Cond::Reverted { old, new } => s(&[&"reverted", &pid_file, old, &new.unwrap_or(0)]),
            Cond::Serves { new, workers } => {
                let mut sorted = workers.clone();
                sorted.sort_unstable();
                let list: String = sorted.iter().map(|p| format!("{p} ")).collect();
                s(&[&"serves", &pid_file, new, &list])
            }
            Cond::Runs { pid, sha } => s(&[&"runs", pid, sha]),
        }
    }
}

/// One sub-action of a step.
#[derive(Clone, Debug)]
pub enum Act {
    /// Write the record (atomically, by rename).
    Record(Record),
    /// Give the staged file the binary's owner and mode, link the binary to its backup name,
    /// remove backups not in `keep` (sha16s), check the staged file's sha256 once more and
    /// rename it over the binary's file: the only way the binary is ever replaced.
    Install {
        staged: String,
        /// The file the binary resolves to (what is replaced).
        file: String,
        backup: String,
        keep: Vec<String>,
        sha256: String,
    },
    Signal {
        pid: u32,
        signal: &'static str,
        target: SignalTarget,
        miss: Miss,
    },
    /// A fact that must hold now, else the acts after it are skipped.
    Check(Cond),
    /// Waits on the host, polling every 10 ms, until the condition holds or `limit` passes
    /// (then the acts after it are skipped).
    Wait { cond: Cond, limit: Duration },
    /// A new master out by the exit ladder, then KILL to its workers (the ones listed and
    /// the ones it has when the ladder starts).
    TakeOut {
        pid: u32,
        workers: Vec<u32>,
        ladder: [Rung; 3],
    },
}

impl Act {
    /// How long the act may wait on the host.
    fn waits(&self) -> Duration {
        match self {
            Act::Wait { limit, .. } => *limit,
            Act::TakeOut { ladder, .. } => ladder.iter().map(|r| r.wait).sum(),
            _ => Duration::ZERO,
        }
    }
}

/// A step's acts and the probe after them, as one remote command.
pub fn command(host: &Host, layout: &Layout, acts: &[Act], depth: Depth) -> RemoteCommand {
    let pid_file = host.nginx.pid_file.as_str();
    let mut args: Vec<String> = Vec::new();
    let mut names = Vec::new();
    for act in acts {
        match act {
            Act::Record(record) => {
                names.push("record".to_owned());
                let text = record.encode();
                let lines: Vec<&str> = text.lines().collect();
                args.extend(["record".into(), layout.record(), lines.len().to_string()]);
                args.extend(lines.into_iter().map(str::to_owned));
            }
            Act::Install {
                staged,
                file,
                backup,
                keep,
                sha256,
            } => {
                names.push("install".to_owned());
                args.extend([
                    "install".into(),
                    staged.clone(),
                    file.clone(),
                    backup.clone(),
                    sha256.clone(),
                    keep.len().to_string(),
                ]);
                args.extend(keep.iter().cloned());
            }
            Act::Signal {
                pid,
                signal,
                target,
                miss,
            } => {
                names.push(format!("{signal} {pid}"));
                let (kind, parent) = match target {
                    SignalTarget::Master => ("master", 0),
                    SignalTarget::Worker => ("worker", 0),
                    SignalTarget::ChildOf(p) => ("child", *p),
                };
                let miss = match miss {
                    Miss::Stops => "stop",
                    Miss::GoneIsFine => "gone",
                    Miss::Ignored => "ignore",
                };
                args.extend([
                    "signal".into(),
                    pid.to_string(),
                    (*signal).to_owned(),
                    kind.to_owned(),
                    parent.to_string(),
                    miss.to_owned(),
                ]);
            }
            Act::Check(cond) => {
                let words = cond.words(pid_file);
                names.push(format!("check {}", words[0]));
                args.push("check".into());
                args.extend(words);
            }
            Act::Wait { cond, limit } => {
                let mut words = cond.words(pid_file);
                names.push(format!("wait {}", words[0]));
                let rest = words.split_off(1);
                args.push("wait".into());
                args.extend(words);
                args.push(limit.as_millis().to_string());
                args.extend(rest);
            }
            Act::TakeOut {
                pid,
                workers,
                ladder,
            } => {
                names.push(format!("take out {pid}"));
                args.extend(["takeout".into(), pid.to_string(), workers.len().to_string()]);
                args.extend(workers.iter().map(u32::to_string));
                args.push(ladder.len().to_string());
                for rung in ladder {
                    args.extend([rung.signal.to_owned(), rung.wait.as_millis().to_string()]);
                }
            }
        }
    }
    let probe = probe::command(host, depth);
    args.push("probe".into());
    args.extend(probe.args().iter().cloned());
    RemoteCommand::script(ACT_PROBE, args)
        .privileged()
        .labelled(format!("step: {}", names.join(", ")))
}

/// How long a step's command may take: the command deadline plus every wait on the host.
pub fn deadline(command: Duration, acts: &[Act]) -> Duration {
    command + acts.iter().map(Act::waits).sum::<Duration>()
}

/// What one act did, as the host said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    /// The act did not run: an act before it failed.
    Skipped,
    /// A record written, a binary installed, a check or a wait met, a master taken out.
    Done,
    /// A record or install failed (exit code of the failed part).
    Failed(i32),
    /// A check or wait not met (by its deadline).
    Unmet,
    /// A signal: `sent`, `gone` or `refused …`.
    Signal { pid: u32, answer: String },
}

/// A step's acts and the observation after them.
#[derive(Clone, Debug)]
pub struct Acted {
    /// What each act said, in order (a take-out's signals are not listed).
    pub said: Vec<Said>,
    pub obs: Observation,
}

impl Acted {
    /// What act `i` said (skipped when the host said nothing of it).
    pub fn said(&self, i: usize) -> &Said {
        self.said.get(i).unwrap_or(&Said::Skipped)
    }
}

/// Why a step's output could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("unexpected step output: {0:?}")]
    Output(String),
}

impl ActError {
    /// The failure as a command failure (status and output), for a step's fault.
    pub fn failed(&self) -> CommandFailed {
        CommandFailed {
            status: ExitStatus::Code(0),
            output: self.to_string(),
        }
    }
}

/// Parses a step command's output: the acts' lines, then the probe's.
pub fn parse(out: &ExecOutput) -> Result<Acted, ActError> {
    let text = out.stdout_lossy();
    let mut said = Vec::new();
    let mut rest = String::new();
    for line in text.lines() {
        let Some(step) = line.strip_prefix("step ") else {
            rest.push_str(line);
            rest.push('\n');
            continue;
        };
        // A take-out's own rungs are part of its one act.
        if step.starts_with("rung ") {
            continue;
        }
        let words: Vec<&str> = step.splitn(4, ' ').collect();
        let bad = || ActError::Output(line.to_owned());
        let s = match words.as_slice() {
            ["takeout", _, "stayed"] => Said::Unmet,
            ["takeout", _, "gone"] => Said::Done,
            [_, .., "skipped"] => Said::Skipped,
            ["record" | "install", "written" | "installed"] => Said::Done,
            ["record" | "install", "failed", rc] => Said::Failed(rc.parse().map_err(|_| bad())?),
            ["check" | "wait", _, "met"] => Said::Done,
            ["check" | "wait", _, "unmet" | "timeout"] => Said::Unmet,
            ["signal", pid, _sig, answer] => {
                let pid = pid.parse().map_err(|_| bad())?;
                Said::Signal {
                    pid,
                    answer: (*answer).to_owned(),
                }
            }
            _ => return Err(bad()),
        };
        said.push(s);
    }
    let out = ExecOutput {
        status: out.status.clone(),
        stdout: rest.into_bytes(),
        stderr: out.stderr.clone(),
    };
    let obs = probe::parse_output(&out)?;
    Ok(Acted { said, obs })
}
