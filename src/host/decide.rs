//! Pure decisions of the per-host upgrade: given what a probe observed (and what the
//! procedure knows: the target sha256, the old master's pid), what holds and what to do next.
//! No I/O; every function here is tested against recorded observations.

use std::time::Duration;

use super::observe::{Master, Observation};
use super::record::short;
use crate::model::elf::{self, machine_for_uname as elf_machine};

/// A failed preflight check: why the host is not touched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the pid file names pid {pid}, which is not an nginx master ({argv:?})")]
    NotAMaster { pid: u32, argv: String },
    #[error(
        "master {pid} was started as {argv0:?}, not by absolute path: USR2 would fail to execute it"
    )]
    RelativeArgv0 { pid: u32, argv0: String },
    #[error("master {pid} runs {argv0}, but nginx_binary is {binary}")]
    OtherBinary {
        pid: u32,
        argv0: String,
        binary: String,
    },
    #[error("master {pid} has no command line")]
    NoCommandLine { pid: u32 },
    #[error("master {pid} runs with `daemon off`: WINCH does not work without daemon mode")]
    DaemonOff { pid: u32 },
    #[error("master {pid} has no workers")]
    NoWorkers { pid: u32 },
    #[error("an .oldbin pid file exists: another upgrade is in progress")]
    Oldbin,
    #[error(
        "systemd unit {unit} is Type={kind}: the old master's exit would stop the service (needs Type=forking with PIDFile={pid_file})"
    )]
    UnitNotForking {
        unit: String,
        kind: String,
        pid_file: String,
    },
    #[error(
        "systemd unit {unit} has PIDFile={got:?}, not {want}: systemd would not follow the new master"
    )]
    UnitPidFile {
        unit: String,
        got: String,
        want: String,
    },
    #[error("only {free_kb} KiB free beside {binary}; {needed_kb} KiB needed")]
    NoRoom {
        free_kb: u64,
        binary: String,
        needed_kb: u64,
    },
    #[error(
        "the new binary is for {} (ELF machine {machine}), this host ({uname}) needs {} (ELF machine {want})",
        machine_name(*machine),
        machine_name(*want)
    )]
    WrongMachine {
        machine: u16,
        uname: String,
        want: u16,
    },
    #[error("no backup of {} ({path}) is left beside the binary", short(sha))]
    NoBackup { sha: String, path: String },
}

fn machine_name(m: u16) -> &'static str {
    elf::machine_name(m).unwrap_or("another machine")
}

/// Why the staged binary failed its check on the host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadBinary {
    #[error("the new binary is not an ELF executable")]
    NotElf,
    #[error("the new binary is for ELF machine {got}, this host ({uname}) needs {want}")]
    WrongMachine { got: u16, uname: String, want: u16 },
    #[error("the new binary's ELF header is unreadable")]
    UnreadableHeader,
    #[error("`nginx -t` with the new binary failed (exit {rc}): {}", output.join(" | "))]
    TestFailed { rc: i32, output: Vec<String> },
    #[error("`nginx -t` with the new binary did not run")]
    TestDidNotRun,
}

/// Why the always-on process gate failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcessFailure {
    #[error("new master {pid} is gone")]
    Gone { pid: u32 },
    #[error("new master {pid} died")]
    Died { pid: u32 },
    #[error("new master {pid} has no workers")]
    NoWorkers { pid: u32 },
    #[error("new master {pid}'s workers are respawning ({before:?} then {after:?})")]
    Respawning {
        pid: u32,
        before: Vec<u32>,
        after: Vec<u32>,
    },
}

fn live(m: Option<&Master>) -> Option<&Master> {
    m.filter(|m| m.state.is_alive())
}

/// Children of a master that are neither workers nor helper processes.
pub fn strange_children(master: &Master) -> Vec<u32> {
    master
        .children
        .iter()
        .filter(|c| c.state.is_alive())
        .filter(|c| !c.title.contains("worker process") && !c.title.contains("cache "))
        .map(|c| c.pid)
        .collect()
}

/// Read-only checks before anything on the host changes. Every failed check is listed.
/// (The lock is taken before this, by the session itself.)
pub fn preflight(obs: &Observation, master: &Master, binary: &str, new_size: u64) -> Vec<Problem> {
    let pid = master.pid;
    if !master.nginx_master {
        return vec![Problem::NotAMaster {
            pid,
            argv: master.argv.join(" "),
        }];
    }
    let mut problems = Vec::new();
    match master.binary() {
        Some(argv0) if !argv0.starts_with('/') => problems.push(Problem::RelativeArgv0 {
            pid,
            argv0: argv0.to_owned(),
        }),
        Some(argv0) if argv0 != binary => problems.push(Problem::OtherBinary {
            pid,
            argv0: argv0.to_owned(),
            binary: binary.to_owned(),
        }),
        Some(_) => {}
        None => problems.push(Problem::NoCommandLine { pid }),
    }
    if master.argv.join(" ").contains("daemon off") {
        problems.push(Problem::DaemonOff { pid });
    }
    if master.workers() == 0 {
        problems.push(Problem::NoWorkers { pid });
    }
    if obs.oldbin.is_some() {
        problems.push(Problem::Oldbin);
    }
    if let Some(unit) = &obs.unit {
        if unit.kind != "forking" {
            problems.push(Problem::UnitNotForking {
                unit: unit.name.clone(),
                kind: unit.kind.clone(),
                pid_file: unit.our_pid_file.clone(),
            });
        } else if unit.pid_file != unit.our_pid_file {
            problems.push(Problem::UnitPidFile {
                unit: unit.name.clone(),
                got: unit.pid_file.clone(),
                want: unit.our_pid_file.clone(),
            });
        }
    }
    // Room for the staged file and, where a hard link is impossible, a copied backup.
    if let Some(free) = obs.free_kb
        && free.saturating_mul(1024) < new_size.saturating_mul(2)
    {
        problems.push(Problem::NoRoom {
            free_kb: free,
            binary: binary.to_owned(),
            needed_kb: new_size.saturating_mul(2) / 1024,
        });
    }
    problems
}

/// The new binary's ELF machine, read on the controller, against this host's `uname -m`:
/// judged in preflight, before anything is uploaded. A `uname -m` not known here is left to
/// the check of the staged file on the host.
pub fn machine_fits(obs: &Observation, machine: u16) -> Option<Problem> {
    let want = elf_machine(&obs.machine)?;
    (want != machine).then(|| Problem::WrongMachine {
        machine,
        uname: obs.machine.clone(),
        want,
    })
}

/// Who read the new binary's ELF header, for [`check_new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfRead<'a> {
    /// The controller, from the very file: magic and machine were judged before the upload
    /// ([`machine_fits`]); the output has `-t` only.
    Controller,
    /// The host, whose machine (`uname -m`, as the probe saw it) is `uname`.
    Host { uname: &'a str },
}

/// Judges the output of the check-new script: an ELF for this machine that passes `-t`.
pub fn check_new(output: &str, read: ElfRead<'_>) -> Result<(), BadBinary> {
    let mut magic = "";
    let mut emachine = None;
    let mut test_rc = None;
    let mut test_out = Vec::new();
    for line in output.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "magic" => magic = v,
            "emachine" => emachine = v.parse::<u16>().ok(),
            "test_rc" => test_rc = v.parse::<i32>().ok(),
            "test_out" => test_out.push(v),
            _ => {}
        }
    }
    if let ElfRead::Host { uname } = read {
        if magic != "7f454c46" {
            return Err(BadBinary::NotElf);
        }
        match (emachine, elf_machine(uname)) {
            (Some(got), Some(want)) if got != want => {
                return Err(BadBinary::WrongMachine {
                    got,
                    uname: uname.to_owned(),
                    want,
                });
            }
            (None, _) => return Err(BadBinary::UnreadableHeader),
            _ => {}
        }
    }
    match test_rc {
        Some(0) => Ok(()),
        Some(rc) => Err(BadBinary::TestFailed {
            rc,
            output: test_out.into_iter().map(str::to_owned).collect(),
        }),
        None => Err(BadBinary::TestDidNotRun),
    }
}

/// Progress after USR2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// The pid file names a new master, child of the old one, with workers; `.oldbin` names
    /// the old master.
    Ready(Master),
    /// The new binary exited: the pid file names the old master again and `.oldbin` is gone.
    Exited,
    Waiting,
}

pub fn start(obs: &Observation, old_pid: u32) -> Start {
    let master = live(obs.master.as_ref());
    match master {
        Some(m) if m.pid == old_pid && obs.oldbin.is_none() => Start::Exited,
        Some(m)
            if m.pid != old_pid
                && m.ppid == Some(old_pid)
                && obs.oldbin == Some(old_pid)
                && m.workers() > 0 =>
        {
            Start::Ready(m.clone())
        }
        _ => Start::Waiting,
    }
}

/// The old master (by pid), wherever its pid file now is.
pub fn find(obs: &Observation, pid: u32) -> Option<&Master> {
    [obs.master.as_ref(), obs.old_master.as_ref()]
        .into_iter()
        .flatten()
        .find(|m| m.pid == pid && m.state.is_alive())
}

/// After WINCH: the old master is alive and has no workers left.
pub fn drained(obs: &Observation, old_pid: u32) -> bool {
    find(obs, old_pid).is_some_and(|m| m.workers() == 0)
}

/// The always-on process gate: between two observations the new master stayed alive with
/// workers, and its workers are the same processes (no respawn loop).
pub fn process_gate(
    before: &Observation,
    after: &Observation,
    new_pid: u32,
) -> Result<(), ProcessFailure> {
    let pid = new_pid;
    let a = find(before, pid).ok_or(ProcessFailure::Gone { pid })?;
    let b = find(after, pid).ok_or(ProcessFailure::Died { pid })?;
    let (before, after) = (workers(a), workers(b));
    if after.is_empty() {
        return Err(ProcessFailure::NoWorkers { pid });
    }
    if before != after {
        return Err(ProcessFailure::Respawning { pid, before, after });
    }
    Ok(())
}

/// A master's live workers (pids).
pub fn workers(master: &Master) -> Vec<u32> {
    master
        .children
        .iter()
        .filter(|c| c.is_worker())
        .map(|c| c.pid)
        .collect()
}

/// Workers that accept connections (not ones finishing their last connections).
pub fn accepting(m: &Master) -> usize {
    m.children
        .iter()
        .filter(|c| c.is_worker() && !c.title.contains("is shutting down"))
        .count()
}

/// The old master of a committed upgrade, still finishing connections: it has workers, and
/// every one of them is shutting down (the new master, its child, does not count).
pub fn draining(m: &Master) -> bool {
    let workers: Vec<_> = m.children.iter().filter(|c| c.is_worker()).collect();
    !workers.is_empty()
        && workers
            .iter()
            .all(|c| c.title.contains("worker process is shutting down"))
}

/// After QUIT to the old master: the pid file names the new master, and the old master is
/// gone or only finishing its last connections (it exits by itself when they end).
pub fn committed(obs: &Observation, old_pid: u32, new_pid: u32) -> bool {
    obs.pid_file == Some(new_pid)
        && live(obs.master.as_ref()).is_some_and(|m| m.pid == new_pid)
        && find(obs, old_pid).is_none_or(draining)
}

/// After HUP to the old master during a rollback: it has accepting workers again (not only
/// workers still finishing connections after WINCH).
pub fn old_serving(obs: &Observation, old_pid: u32) -> bool {
    find(obs, old_pid).is_some_and(|m| accepting(m) > 0)
}

/// After the new master left (or never became one): the pid file names the old master again,
/// `.oldbin` is gone, the old master serves, and the new master (if there was one) is absent
/// or a zombie.
pub fn reverted(obs: &Observation, old_pid: u32, new_pid: Option<u32>) -> bool {
    obs.oldbin.is_none()
        && obs.pid_file == Some(old_pid)
        && new_pid.is_none_or(|p| find(obs, p).is_none())
        && old_serving(obs, old_pid)
}

/// The sha16s (how backups are named) of the last `keep` versions of `history` (oldest
/// first): the backups an install keeps beside the binary.
pub fn backups_to_keep(history: &[String], keep: usize) -> Vec<String> {
    let skip = history.len().saturating_sub(keep);
    history[skip..]
        .iter()
        .map(|s| s[..s.len().min(16)].to_owned())
        .collect()
}

/// One rung of the ladder that takes a new master out during a revert: a signal, and how
/// long to wait for the master to go before the next rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    pub signal: &'static str,
    pub wait: Duration,
}

/// QUIT (graceful, half of `quit`), then TERM and KILL (a quarter each): the new master out
/// within the quit deadline whatever it does.
pub fn exit_ladder(quit: Duration) -> [Rung; 3] {
    [
        Rung {
            signal: "QUIT",
            wait: quit / 2,
        },
        Rung {
            signal: "TERM",
            wait: quit / 4,
        },
        Rung {
            signal: "KILL",
            wait: quit / 4,
        },
    ]
}

/// What to do after a rung's signal: the master is gone, or wait for it to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterSignal {
    Gone,
    Wait,
}

/// Whether a checked signal reached its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// No such process (or a zombie).
    Gone,
}

/// A TERM or KILL that found no process: the master is gone. A QUIT that found none still
/// waits (the pid file and `.oldbin` must settle before the revert goes on).
pub fn after_signal(rung: Rung, delivery: Delivery) -> AfterSignal {
    if delivery == Delivery::Gone && rung.signal != "QUIT" {
        AfterSignal::Gone
    } else {
        AfterSignal::Wait
    }
}

/// Where nginx's error log may be, most likely first: `PREFIX/logs/error.log` when the master
/// was started with `-p PREFIX`, then Debian's default.
pub fn error_log_candidates(master: &Master) -> Vec<String> {
    let mut candidates = Vec::new();
    if let Some(i) = master.argv.iter().position(|a| a == "-p")
        && let Some(prefix) = master.argv.get(i + 1)
    {
        candidates.push(format!("{}/logs/error.log", prefix.trim_end_matches('/')));
    }
    candidates.push("/var/log/nginx/error.log".to_owned());
    candidates
}

/// The lines of an error log's tail worth showing as evidence: the last three.
pub fn evidence(tail: &str) -> Vec<String> {
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    let skip = lines.len().saturating_sub(3);
    lines[skip..].iter().map(|l| (*l).to_owned()).collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
