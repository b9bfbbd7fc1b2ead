//! A simulated host for tests: a faithful model of nginx's hot-upgrade signals (pid file and
//! `.oldbin`, masters as parent and child, workers, USR2/WINCH/HUP/QUIT/TERM/KILL as in
//! `shared/nginx-upgrade-facts.md`), the binary on disk, backups, staged files, the state
//! record and the lock, behind the same [`Remote`] seam as the SSH session. It recognises our
//! fixed scripts and carries out what each would do. It can drop the connection before or
//! after any command, to walk every interruption point.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::act::ACT_PROBE;
use super::decide::{self, Start};
use super::observe::{self, Depth, PROBE_SCRIPT};
use super::remote::{BoxFuture, Claim, Duplex, Lease, Remote};
use crate::ssh::{ExecOutput, ExitStatus, RemoteCommand, SshError, SshErrorKind, Step, Upload};

pub const BIN: &str = "/srv/sbin/nginx";
pub const PID_FILE: &str = "/srv/logs/nginx.pid";

/// What the check of a new binary prints when the host reads its ELF header: every simulated
/// binary is an x86-64 ELF and passes `-t` (`Exits` fails only when started).
const CHECKED_ON_HOST: &str = "magic 7f454c46\nclass 2\nemachine 62\ntest_rc 0\nend ok\n";
/// The same when the controller read the header: `-t` only.
const CHECKED_KNOWN: &str = "test_rc 0\nend ok\n";

/// How a binary behaves when nginx executes it on USR2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Starts, becomes the new master, spawns a worker.
    Good,
    /// Exits at once (bad config, wrong library…).
    Exits,
    /// Never becomes a master.
    Hangs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FileData {
    /// An executable, named by its sha256.
    Binary(String),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Master {
        sha: String,
        /// After WINCH: no workers until HUP.
        noaccept: bool,
        /// After QUIT: exits when its last worker ends.
        quitting: bool,
        /// The new binary's process, while one runs.
        new_binary: Option<u32>,
    },
    Worker {
        shutting_down: bool,
    },
    /// A new binary that never became a master.
    Hung,
}

/// How a master went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Graceful,
    /// SIGKILL: no clean-up of its own.
    Killed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Proc {
    ppid: u32,
    kind: Kind,
}

/// The host's state: files and processes.
#[derive(Clone, Debug)]
pub struct World {
    files: BTreeMap<String, FileData>,
    procs: BTreeMap<u32, Proc>,
    next_pid: u32,
    behaviours: BTreeMap<String, Behaviour>,
    /// Local files the controller can upload: path -> sha256.
    locals: BTreeMap<String, String>,
    /// Workers told to shut down keep running (a slow client) until released.
    pub slow_clients: bool,
    lock: Option<(u64, String)>,
    /// Commands run so far (for the interruption walk).
    pub commands: usize,
    /// How many sub-actions each step command (by its number) ran.
    pub acts: BTreeMap<usize, usize>,
    /// How long the last step command waited on the host (its unmet waits' deadlines).
    waited: Duration,
    /// How long every step command waited, in all.
    waited_in_all: Duration,
}

impl World {
    /// A steady host running `sha` (one master, one worker), with no record.
    pub fn steady(sha: &str) -> World {
        let mut w = World {
            files: BTreeMap::new(),
            procs: BTreeMap::new(),
            next_pid: 100,
            behaviours: BTreeMap::new(),
            locals: BTreeMap::new(),
            slow_clients: false,
            lock: None,
            commands: 0,
            acts: BTreeMap::new(),
            waited: Duration::ZERO,
            waited_in_all: Duration::ZERO,
        };
        w.put(BIN, FileData::Binary(sha.to_owned()));
        let m = w.spawn(
            1,
            Kind::Master {
                sha: sha.to_owned(),
                noaccept: false,
                quitting: false,
                new_binary: None,
            },
        );
        w.spawn_worker(m);
        w.put(PID_FILE, FileData::Text(m.to_string()));
        w
    }

    /// How `sha` behaves when executed (default: good).
    pub fn behaviour(&mut self, sha: &str, b: Behaviour) {
        self.behaviours.insert(sha.to_owned(), b);
    }

    /// A file on the controller that uploads as `sha`.
    pub fn local(&mut self, path: &str, sha: &str) {
        self.locals.insert(path.to_owned(), sha.to_owned());
    }

    /// Sends `sig` to the master named by the pid file, as someone on the host would.
    pub fn signal_master(&mut self, sig: &str) {
        if let Some(pid) = self.pid_in(PID_FILE) {
            self.signal(pid, sig);
        }
    }

    /// Ends the slow clients: shutting-down workers exit.
    pub fn release_slow_clients(&mut self) {
        self.slow_clients = false;
        let slow: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| {
                matches!(
                    p.kind,
                    Kind::Worker {
                        shutting_down: true
                    }
                )
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in slow {
            self.end_worker(pid);
        }
    }

    fn put(&mut self, path: &str, data: FileData) {
        self.files.insert(path.to_owned(), data);
    }

    fn spawn(&mut self, ppid: u32, kind: Kind) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.procs.insert(pid, Proc { ppid, kind });
        pid
    }

    fn spawn_worker(&mut self, master: u32) -> u32 {
        self.spawn(
            master,
            Kind::Worker {
                shutting_down: false,
            },
        )
    }

    fn text(&self, path: &str) -> Option<String> {
        match self.files.get(path) {
            Some(FileData::Text(t)) => Some(t.clone()),
            _ => None,
        }
    }

    fn sha_of(&self, path: &str) -> Option<String> {
        match self.files.get(path)? {
            FileData::Binary(sha) => Some(sha.clone()),
            FileData::Text(t) => Some(format!("text:{t}")),
        }
    }

    fn pid_in(&self, path: &str) -> Option<u32> {
        self.text(path)?.trim().parse().ok()
    }

    fn workers_of(&self, master: u32) -> Vec<u32> {
        self.procs
            .iter()
            .filter(|(_, p)| p.ppid == master && matches!(p.kind, Kind::Worker { .. }))
            .map(|(pid, _)| *pid)
            .collect()
    }

    fn children_of(&self, master: u32) -> Vec<u32> {
        self.procs
            .iter()
            .filter(|(_, p)| p.ppid == master)
            .map(|(pid, _)| *pid)
            .collect()
    }

    fn master_mut(&mut self, pid: u32) -> Option<(&mut bool, &mut bool, &mut Option<u32>)> {
        match &mut self.procs.get_mut(&pid)?.kind {
            Kind::Master {
                noaccept,
                quitting,
                new_binary,
                ..
            } => Some((noaccept, quitting, new_binary)),
            _ => None,
        }
    }

    fn title(&self, pid: u32) -> String {
        match &self.procs[&pid].kind {
            Kind::Master { .. } => format!("nginx: master process {BIN} -p /srv"),
            Kind::Worker {
                shutting_down: true,
            } => "nginx: worker process is shutting down".into(),
            Kind::Worker { .. } => "nginx: worker process".into(),
            Kind::Hung => BIN.into(),
        }
    }

    // --- nginx's signal semantics -------------------------------------------------------

    fn signal(&mut self, pid: u32, sig: &str) {
        let Some(proc) = self.procs.get(&pid).cloned() else {
            return;
        };
        match (&proc.kind, sig) {
            (_, "KILL") => self.killed(pid),
            (Kind::Hung, _) => {} // blocked signal mask: only KILL ends it
            (Kind::Worker { .. }, "TERM" | "QUIT") => self.end_worker(pid),
            (Kind::Worker { .. }, _) => {}
            (Kind::Master { .. }, "USR2") => self.usr2(pid),
            (Kind::Master { .. }, "WINCH") => {
                for w in self.workers_of(pid) {
                    self.shut_down_worker(w);
                }
                if let Some((noaccept, ..)) = self.master_mut(pid) {
                    *noaccept = true;
                }
            }
            // Rollback path: old workers again, config not re-read (ignored while quitting).
            (
                Kind::Master {
                    new_binary,
                    quitting: false,
                    ..
                },
                "HUP",
            ) if new_binary.is_some() => {
                self.spawn_worker(pid);
                if let Some((noaccept, ..)) = self.master_mut(pid) {
                    *noaccept = false;
                }
            }
            (Kind::Master { .. }, "QUIT") => {
                for w in self.workers_of(pid) {
                    self.shut_down_worker(w);
                }
                if let Some((_, quitting, _)) = self.master_mut(pid) {
                    *quitting = true;
                }
                self.maybe_exit(pid);
            }
            (Kind::Master { .. }, "TERM") => {
                for w in self.workers_of(pid) {
                    self.procs.remove(&w);
                }
                self.exit_master(pid);
            }
            _ => {}
        }
    }

    fn usr2(&mut self, old: u32) {
        let Some(Proc {
            ppid,
            kind: Kind::Master { new_binary, .. },
        }) = self.procs.get(&old).cloned()
        else {
            return;
        };
        // Ignored while a new binary runs, and by a new master whose old master lives.
        let parent_is_master = matches!(
            self.procs.get(&ppid).map(|p| &p.kind),
            Some(Kind::Master { .. })
        );
        if new_binary.is_some() || parent_is_master {
            return;
        }
        let oldbin = format!("{PID_FILE}.oldbin");
        if let Some(data) = self.files.remove(PID_FILE) {
            self.put(&oldbin, data);
        }
        let sha = self.sha_of(BIN).unwrap_or_default();
        match self
            .behaviours
            .get(&sha)
            .copied()
            .unwrap_or(Behaviour::Good)
        {
            Behaviour::Good => {
                let new = self.spawn(
                    old,
                    Kind::Master {
                        sha,
                        noaccept: false,
                        quitting: false,
                        new_binary: None,
                    },
                );
                self.spawn_worker(new);
                self.put(PID_FILE, FileData::Text(new.to_string()));
                if let Some((.., nb)) = self.master_mut(old) {
                    *nb = Some(new);
                }
            }
            Behaviour::Exits => self.pid_file_back(old),
            Behaviour::Hangs => {
                let hung = self.spawn(old, Kind::Hung);
                if let Some((.., nb)) = self.master_mut(old) {
                    *nb = Some(hung);
                }
            }
        }
    }

    fn shut_down_worker(&mut self, w: u32) {
        if self.slow_clients {
            if let Some(p) = self.procs.get_mut(&w) {
                p.kind = Kind::Worker {
                    shutting_down: true,
                };
            }
        } else {
            self.end_worker(w);
        }
    }

    fn end_worker(&mut self, w: u32) {
        if let Some(p) = self.procs.remove(&w) {
            self.maybe_exit(p.ppid);
        }
    }

    fn maybe_exit(&mut self, master: u32) {
        let quitting = matches!(
            self.procs.get(&master).map(|p| &p.kind),
            Some(Kind::Master { quitting: true, .. })
        );
        if quitting && self.workers_of(master).is_empty() {
            self.exit_master(master);
        }
    }

    /// The old master takes its pid file back when its new binary is gone.
    fn pid_file_back(&mut self, old: u32) {
        let oldbin = format!("{PID_FILE}.oldbin");
        if self.pid_in(&oldbin) == Some(old) {
            self.files.remove(&oldbin);
            self.put(PID_FILE, FileData::Text(old.to_string()));
        }
        let restart = match self.master_mut(old) {
            Some((noaccept, _, nb)) => {
                *nb = None;
                std::mem::take(noaccept)
            }
            None => false,
        };
        if restart {
            self.spawn_worker(old);
        }
    }

    fn exit_master(&mut self, pid: u32) {
        self.master_gone(pid, Exit::Graceful);
    }

    /// A master gone: its orphans re-parented; as the new binary, its old master takes the
    /// pid file back; gracefully, it removes its own pid file (a killed one leaves it stale).
    fn master_gone(&mut self, pid: u32, how: Exit) {
        let Some(proc) = self.procs.remove(&pid) else {
            return;
        };
        // Its remaining children are orphans (a killed master's workers keep serving).
        for c in self.children_of(pid) {
            if let Some(p) = self.procs.get_mut(&c) {
                p.ppid = 1;
            }
        }
        let parent_new = matches!(
            self.procs.get(&proc.ppid).map(|p| &p.kind),
            Some(Kind::Master { new_binary: Some(n), .. }) if *n == pid
        );
        if parent_new {
            // A new master gone: the old one renames .oldbin back and restarts workers.
            if self.pid_in(PID_FILE) == Some(pid) {
                self.files.remove(PID_FILE);
            }
            self.pid_file_back(proc.ppid);
            return;
        }
        if how == Exit::Killed {
            return;
        }
        let oldbin = format!("{PID_FILE}.oldbin");
        if self.pid_in(&oldbin) == Some(pid) {
            // The old master committed: its pid file (now .oldbin) goes with it.
            self.files.remove(&oldbin);
        } else if self.pid_in(PID_FILE) == Some(pid) {
            self.files.remove(PID_FILE);
        }
    }

    fn killed(&mut self, pid: u32) {
        match self.procs.get(&pid).map(|p| p.kind.clone()) {
            Some(Kind::Master { .. }) => self.master_gone(pid, Exit::Killed),
            Some(Kind::Hung) => {
                let ppid = self.procs.remove(&pid).map(|p| p.ppid).unwrap_or(0);
                self.pid_file_back(ppid);
            }
            Some(Kind::Worker { .. }) => self.end_worker(pid),
            None => {}
        }
    }

    // --- what the host looks like ------------------------------------------------------

    /// What the probe prints at `depth`: what a depth leaves out has no line.
    fn probe(&self, depth: Depth) -> String {
        let sums = depth != Depth::Quick;
        let facts = depth.has_preflight_facts();
        let mut out = format!("probe 1\ndepth {}\nmachine x86_64\n", depth.word());
        let proc_lines = |out: &mut String, tag: &str, pid: u32| {
            let Some(p) = self.procs.get(&pid) else {
                let _ = writeln!(out, "{tag}.state gone");
                return;
            };
            let _ = writeln!(out, "{tag}.state S");
            let _ = writeln!(out, "{tag}.ppid {}", p.ppid);
            // nginx's titles as text, anything else as hex (as the probe does).
            let title = self.title(pid);
            if title.starts_with("nginx: ") {
                let _ = writeln!(out, "{tag}.title {title}");
            } else {
                let hex: String = title
                    .bytes()
                    .chain([0])
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let _ = writeln!(out, "{tag}.cmdline {hex}");
            }
            let _ = writeln!(out, "{tag}.exe {BIN}");
            if sums && let Kind::Master { sha, .. } = &p.kind {
                let _ = writeln!(out, "{tag}.sha256 {sha}");
            }
            for c in self.children_of(pid) {
                let _ = writeln!(out, "{tag}.child {c} S {}", self.title(c));
            }
        };
        match self.pid_in(PID_FILE) {
            Some(pid) => {
                let _ = writeln!(out, "pidfile {pid}");
                proc_lines(&mut out, "master", pid);
            }
            None => out.push_str("pidfile none\n"),
        }
        match self.pid_in(&format!("{PID_FILE}.oldbin")) {
            Some(pid) => {
                let _ = writeln!(out, "oldbin {pid}");
                proc_lines(&mut out, "oldmaster", pid);
            }
            None => out.push_str("oldbin none\n"),
        }
        match self.sha_of(BIN) {
            Some(sha) => {
                if sums {
                    let _ = writeln!(out, "bin.sha256 {sha}");
                }
                if facts {
                    out.push_str("bin.size 1000\n");
                }
            }
            None => out.push_str("bin.missing yes\n"),
        }
        for path in self.files.keys() {
            if path.starts_with("/srv/sbin/.nginx.ngfleet-stage.") {
                let _ = writeln!(out, "stage {path}");
            }
            if path.starts_with("/srv/sbin/nginx.ngfleet-backup.") {
                let _ = writeln!(out, "backup {path}");
            }
        }
        if let Some(text) = self.text("/srv/sbin/.nginx.ngfleet-state") {
            for line in text.lines() {
                let _ = writeln!(out, "record {line}");
            }
        }
        if sums {
            for (pid, p) in &self.procs {
                if p.ppid == 1 && matches!(p.kind, Kind::Worker { .. }) {
                    let _ = writeln!(out, "orphan {pid}");
                }
            }
        }
        if facts {
            out.push_str("free_kb 1000000\n");
        }
        out.push_str("end ok\n");
        out
    }

    // --- our scripts -------------------------------------------------------------------

    /// Carries out one of our fixed scripts; `(exit code, stdout)`.
    fn run(&mut self, cmd: &RemoteCommand, budget: Option<usize>) -> (u32, String) {
        let a = cmd.args();
        let arg = |i: usize| a.get(i).cloned().unwrap_or_default();
        let script = cmd.source();
        if script == PROBE_SCRIPT {
            return (0, self.probe(depth(&arg(2))));
        }
        if script == ACT_PROBE {
            return (0, self.acts(a, budget));
        }
        match cmd.label() {
            "stage backup and check" => match self.files.get(&arg(0)).cloned() {
                Some(data) => {
                    self.put(&arg(1), data);
                    // The host reads the copy's header (`elf`).
                    assert_eq!(arg(4), "elf", "a copy's header is read on the host");
                    (0, CHECKED_ON_HOST.to_owned())
                }
                None => (1, String::new()),
            },
            "restore binary" => {
                let (src, bin, want) = (arg(0), arg(1), arg(2));
                match self.files.get(&src).cloned() {
                    Some(FileData::Binary(sha)) if sha == want => {
                        self.put(&bin, FileData::Binary(sha));
                        (0, "restored\n".into())
                    }
                    _ => (73, format!("backup {src} is not {want}")),
                }
            }
            "remove staged files" => {
                for p in a {
                    self.files.remove(p);
                }
                (0, "cleaned\n".into())
            }
            "read error log" => (0, String::new()),
            label if label.starts_with("send ") => {
                self.checked_signal(&arg(0), &arg(1), &arg(2), &arg(3))
            }
            other => panic!("the simulated host does not know the command {other:?}"),
        }
    }

    fn install(&mut self, tmp: &str, bin: &str, backup: &str, want: &str, keep: &[String]) -> u32 {
        if !self.files.contains_key(backup) {
            let Some(data) = self.files.get(bin).cloned() else {
                return 72;
            };
            self.put(backup, data);
        }
        let keep: Vec<String> = keep
            .iter()
            .map(|k| format!("{bin}.ngfleet-backup.{k}"))
            .collect();
        let prune: Vec<String> = self
            .files
            .keys()
            .filter(|p| p.starts_with(&format!("{bin}.ngfleet-backup.")))
            .filter(|p| *p != backup && !keep.contains(p))
            .cloned()
            .collect();
        for p in prune {
            self.files.remove(&p);
        }
        if self.sha_of(tmp).as_deref() != Some(want) {
            return 73;
        }
        let data = self.files.remove(tmp).expect("staged file");
        self.put(bin, data);
        0
    }

    /// A step command (`scripts/act.sh` then the probe): each act in turn, as the script
    /// does it; with a `budget`, only that many acts run (the connection dropped inside the
    /// command) and nothing is printed.
    fn acts(&mut self, a: &[String], budget: Option<usize>) -> String {
        let mut out = String::new();
        let mut ok = true;
        let mut done = 0;
        let mut i = 0;
        let number = self.commands;
        let take = |i: &mut usize, n: usize| {
            let v = a[*i..*i + n].to_vec();
            *i += n;
            v
        };
        let num = |s: &str| s.parse::<usize>().expect("count");
        while i < a.len() {
            let act = take(&mut i, 1).remove(0);
            if act == "probe" {
                break;
            }
            if budget.is_some_and(|b| done >= b) {
                return String::new();
            }
            done += 1;
            self.acts.insert(number, done);
            match act.as_str() {
                "record" => {
                    let head = take(&mut i, 2);
                    let lines = take(&mut i, num(&head[1]));
                    if !ok {
                        out.push_str("step record skipped\n");
                        continue;
                    }
                    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                    self.put(&head[0], FileData::Text(text));
                    out.push_str("step record written\n");
                }
                "install" => {
                    let head = take(&mut i, 5);
                    let keep = take(&mut i, num(&head[4]));
                    if !ok {
                        out.push_str("step install skipped\n");
                        continue;
                    }
                    match self.install(&head[0], &head[1], &head[2], &head[3], &keep) {
                        0 => out.push_str("step install installed\n"),
                        rc => {
                            let _ = writeln!(out, "step install failed {rc}");
                            ok = false;
                        }
                    }
                }
                "signal" => {
                    let s = take(&mut i, 5);
                    if !ok {
                        let _ = writeln!(out, "step signal {} {} skipped", s[0], s[1]);
                        continue;
                    }
                    let (_, answer) = self.checked_signal(&s[0], &s[1], &s[2], &s[3]);
                    let answer = answer.trim().to_owned();
                    let _ = writeln!(out, "step signal {} {} {answer}", s[0], s[1]);
                    ok &= answer == "sent"
                        || s[4] == "ignore"
                        || (answer == "gone" && s[4] == "gone");
                }
                "check" | "wait" => {
                    let name = take(&mut i, 1).remove(0);
                    let limit = match act.as_str() {
                        "wait" => Duration::from_millis(take(&mut i, 1)[0].parse().expect("ms")),
                        _ => Duration::ZERO,
                    };
                    let args = take(&mut i, cond_arity(&name));
                    if !ok {
                        let _ = writeln!(out, "step {act} {name} skipped");
                        continue;
                    }
                    let met = self.cond(&name, &args);
                    let word = match (met, act.as_str()) {
                        (true, _) => "met",
                        (false, "check") => "unmet",
                        (false, _) => "timeout",
                    };
                    let _ = writeln!(out, "step {act} {name} {word}");
                    if !met {
                        // The host waited until the deadline.
                        self.waited += limit;
                    }
                    ok &= met;
                }
                "takeout" => {
                    let head = take(&mut i, 2);
                    let mut known = take(&mut i, num(&head[1]));
                    let rungs = num(&take(&mut i, 1)[0]);
                    let ladder = take(&mut i, rungs * 2);
                    if !ok {
                        let _ = writeln!(out, "step takeout {} skipped", head[0]);
                        continue;
                    }
                    let pid: u32 = head[0].parse().expect("pid");
                    known.extend(self.workers_of(pid).iter().map(u32::to_string));
                    let mut gone = false;
                    for (r, rung) in ladder.chunks(2).enumerate() {
                        // Each rung is a point the command can be cut at.
                        if r > 0 {
                            if budget.is_some_and(|b| done >= b) {
                                return String::new();
                            }
                            done += 1;
                            self.acts.insert(number, done);
                        }
                        let (_, answer) = self.checked_signal(&head[0], &rung[0], "master", "0");
                        if (answer.trim() == "gone" && rung[0] != "QUIT")
                            || !self.procs.contains_key(&pid)
                        {
                            gone = true;
                            break;
                        }
                    }
                    for w in known {
                        self.checked_signal(&w, "KILL", "worker", "0");
                    }
                    if !gone {
                        self.waited += ladder
                            .chunks(2)
                            .map(|r| Duration::from_millis(r[1].parse().expect("ms")))
                            .sum::<Duration>();
                    }
                    let word = if gone { "gone" } else { "stayed" };
                    let _ = writeln!(out, "step takeout {pid} {word}");
                    ok &= gone;
                }
                other => panic!("the simulated host does not know the act {other:?}"),
            }
        }
        if budget.is_some_and(|b| done >= b) {
            // Cut right after the last act: the probe never printed.
            return String::new();
        }
        let mode = a.get(i + 2).map(String::as_str).unwrap_or("full");
        out.push_str(&self.probe(depth(mode)));
        out
    }

    /// A condition of `scripts/act.sh`, judged as the controller would from a probe.
    fn cond(&self, name: &str, a: &[String]) -> bool {
        let n = |i: usize| a[i].parse::<u32>().unwrap_or(0);
        let obs = observe::parse(&self.probe(Depth::Full)).expect("probe");
        match name {
            "start" => decide::start(&obs, n(1)) != Start::Waiting,
            "steady" => {
                obs.pid_file == Some(n(1))
                    && obs.oldbin.is_none()
                    && decide::find(&obs, n(1)).is_some_and(|m| decide::accepting(m) > 0)
            }
            "ready" => matches!(
                decide::start(&obs, n(1)),
                Start::Ready(m) if decide::accepting(&m) > 0 && obs.pid_file == Some(m.pid)
            ),
            "drained" => decide::drained(&obs, n(0)),
            "committed" => decide::committed(&obs, n(1), n(2)),
            "gone" => !self.procs.contains_key(&n(0)),
            "serving" => decide::old_serving(&obs, n(0)),
            "reverted" => {
                let new = Some(n(2)).filter(|p| *p != 0);
                decide::reverted(&obs, n(1), new)
            }
            "serves" => {
                let want: Vec<u32> = a[2]
                    .split_whitespace()
                    .map(|p| p.parse().expect("pid"))
                    .collect();
                let master = decide::find(&obs, n(1));
                let mut have = master.map(decide::workers).unwrap_or_default();
                have.sort_unstable();
                obs.pid_file == Some(n(1))
                    && master.is_some_and(|m| decide::accepting(m) == have.len())
                    && !have.is_empty()
                    && have == want
            }
            "runs" => matches!(
                self.procs.get(&n(0)).map(|p| &p.kind),
                Some(Kind::Master { sha, .. }) if *sha == a[1]
            ),
            other => panic!("unknown condition {other:?}"),
        }
    }

    fn checked_signal(&mut self, pid: &str, sig: &str, kind: &str, parent: &str) -> (u32, String) {
        let pid: u32 = pid.parse().expect("pid");
        let Some(p) = self.procs.get(&pid) else {
            return (3, "gone\n".into());
        };
        let title = self.title(pid);
        let ok = match kind {
            "master" => title.starts_with("nginx: master process"),
            "worker" => title.starts_with("nginx: worker process"),
            _ => p.ppid.to_string() == parent,
        };
        if !ok {
            return (4, format!("refused: {pid} is not {kind}\n"));
        }
        self.signal(pid, sig);
        (0, "sent\n".into())
    }

    // --- facts for assertions ----------------------------------------------------------

    /// How long the host's waits ran to their deadlines, in all.
    pub fn waited_in_all(&self) -> Duration {
        self.waited_in_all
    }

    /// The sha256 the master named by the pid file runs.
    pub fn running(&self) -> Option<String> {
        match &self.procs.get(&self.pid_in(PID_FILE)?)?.kind {
            Kind::Master { sha, .. } => Some(sha.clone()),
            _ => None,
        }
    }

    pub fn on_disk(&self) -> Option<String> {
        self.sha_of(BIN)
    }

    pub fn masters(&self) -> usize {
        self.procs
            .values()
            .filter(|p| matches!(p.kind, Kind::Master { .. }))
            .count()
    }

    /// Processes that are neither a master nor a worker of a live master.
    pub fn strays(&self) -> usize {
        self.procs
            .values()
            .filter(|p| !matches!(p.kind, Kind::Master { .. }) && p.ppid == 1)
            .count()
            + self
                .procs
                .values()
                .filter(|p| matches!(p.kind, Kind::Hung))
                .count()
    }

    pub fn has_oldbin(&self) -> bool {
        self.files.contains_key(&format!("{PID_FILE}.oldbin"))
    }

    pub fn staged(&self) -> usize {
        self.files
            .keys()
            .filter(|p| p.starts_with("/srv/sbin/.nginx.ngfleet-stage."))
            .count()
    }

    pub fn record(&self) -> Option<String> {
        self.text("/srv/sbin/.nginx.ngfleet-state")
    }

    /// Whether the master serves (has a worker that accepts).
    pub fn serving(&self) -> bool {
        self.pid_in(PID_FILE).is_some_and(|m| {
            self.workers_of(m).iter().any(|w| {
                matches!(
                    self.procs[w].kind,
                    Kind::Worker {
                        shutting_down: false
                    }
                )
            })
        })
    }
}

/// The probe's depth from its `$3`.
fn depth(word: &str) -> Depth {
    [Depth::Full, Depth::Sums, Depth::Step, Depth::Quick]
        .into_iter()
        .find(|d| d.word() == word)
        .unwrap_or_else(|| panic!("the simulated host does not know the probe depth {word:?}"))
}

fn cond_arity(name: &str) -> usize {
    match name {
        "drained" | "gone" | "serving" => 1,
        "start" | "steady" | "ready" | "runs" => 2,
        _ => 3,
    }
}

/// Where the walk drops the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    Never,
    /// Command number k (from 1) is not run.
    Before(usize),
    /// Command number k runs, then the connection drops.
    After(usize),
    /// Command number k (a step command) runs its first j acts, then the connection drops
    /// (the controller died, or sshd ended the command with the session).
    Inside(usize, usize),
}

impl Cut {
    /// The same cut, counted from `base` commands already run on the host.
    pub fn from(self, base: usize) -> Cut {
        match self {
            Cut::Before(k) => Cut::Before(base + k),
            Cut::After(k) => Cut::After(base + k),
            Cut::Inside(k, j) => Cut::Inside(base + k, j),
            Cut::Never => Cut::Never,
        }
    }
}

/// How much of a command runs when the connection drops at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runs {
    Not,
    Partly(usize),
    Fully,
}

/// One connection to a simulated host.
pub struct SimSession {
    world: Arc<Mutex<World>>,
    id: u64,
    cut: Cut,
    dead: Arc<Mutex<bool>>,
}

impl SimSession {
    pub fn new(world: Arc<Mutex<World>>, id: u64, cut: Cut) -> SimSession {
        SimSession {
            world,
            id,
            cut,
            dead: Arc::new(Mutex::new(false)),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lost(&self) -> SshError {
        SshError::new("sim", Step::Exec("sim".into()), SshErrorKind::Disconnected)
    }

    /// Counts a command; `Err` when the connection is (now) gone, with how much of it runs.
    fn gate(&self) -> Result<(), (SshError, Runs)> {
        let mut dead = self.dead.lock().unwrap_or_else(|p| p.into_inner());
        if *dead {
            return Err((self.lost(), Runs::Not));
        }
        let mut w = self.world();
        w.commands += 1;
        let n = w.commands;
        let drop_now = |w: &mut World| {
            // sshd ends the session's processes: the lock holder goes.
            if w.lock.as_ref().is_some_and(|(id, _)| *id == self.id) {
                w.lock = None;
            }
        };
        let runs = match self.cut {
            Cut::Before(k) if k == n => Runs::Not,
            Cut::After(k) if k == n => Runs::Fully,
            Cut::Inside(k, j) if k == n => Runs::Partly(j),
            _ => return Ok(()),
        };
        *dead = true;
        drop_now(&mut w);
        Err((self.lost(), runs))
    }

    fn output(code: u32, stdout: String) -> ExecOutput {
        ExecOutput {
            status: ExitStatus::Code(code),
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
        }
    }
}

struct SimLease {
    world: Arc<Mutex<World>>,
    id: u64,
}

impl Lease for SimLease {
    fn lost(&self) -> BoxFuture<'_, SshError> {
        Box::pin(std::future::pending())
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
            if w.lock.as_ref().is_some_and(|(id, _)| *id == self.id) {
                w.lock = None;
            }
        })
    }
}

impl Remote for SimSession {
    fn exec<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        _deadline: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(async move {
            match self.gate() {
                Ok(()) => {
                    let (code, out, waited) = {
                        let mut w = self.world();
                        w.waited = Duration::ZERO;
                        let (code, out) = w.run(cmd, None);
                        let waited = std::mem::take(&mut w.waited);
                        w.waited_in_all += waited;
                        (code, out, waited)
                    };
                    // The host's waits take their time (a hung binary is waited for).
                    if !waited.is_zero() {
                        tokio::time::sleep(waited).await;
                    }
                    Ok(SimSession::output(code, out))
                }
                Err((e, runs)) => {
                    match runs {
                        Runs::Not => {}
                        Runs::Partly(j) => {
                            self.world().run(cmd, Some(j));
                        }
                        Runs::Fully => {
                            self.world().run(cmd, None);
                        }
                    }
                    Err(e)
                }
            }
        })
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
        cmd: &'a RemoteCommand,
        _deadline: Duration,
    ) -> BoxFuture<'a, Result<Upload, SshError>> {
        Box::pin(async move {
            assert_eq!(cmd.label(), "upload and check new binary", "{cmd:?}");
            let a = cmd.args();
            assert_eq!(a.first().map(String::as_str), Some(remote), "{cmd:?}");
            let put = |w: &mut World| {
                let sha = w.locals[&local.display().to_string()].clone();
                w.put(remote, FileData::Binary(sha.clone()));
                // The check runs when the file has the sha256 it was given.
                let after = match a.get(4).map(String::as_str) {
                    _ if a.get(1) != Some(&sha) => "",
                    Some("known") => CHECKED_KNOWN,
                    Some("elf") => CHECKED_ON_HOST,
                    other => panic!("the upload's check is told {other:?}"),
                };
                Upload {
                    sha256: sha,
                    bytes: 1000,
                    after: after.to_owned(),
                }
            };
            match self.gate() {
                Ok(()) => Ok(put(&mut self.world())),
                Err((e, runs)) => {
                    if runs != Runs::Not {
                        put(&mut self.world());
                    }
                    Err(e)
                }
            }
        })
    }

    fn hold<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        _ready: &'a str,
        _deadline: Duration,
    ) -> BoxFuture<'a, Result<Claim, SshError>> {
        Box::pin(async move {
            assert!(super::lock::is_lock_script(cmd.source()), "{cmd:?}");
            let owner = cmd.args().get(1).cloned().unwrap_or_default();
            // With the probe's arguments, the holder prints the probe before `locked`.
            let probe = cmd.args().get(5).map(|mode| depth(mode));
            let take = |w: &mut World| match &w.lock {
                Some((_, holder)) => Err(holder.clone()),
                None => {
                    w.lock = Some((self.id, owner.clone()));
                    Ok(())
                }
            };
            let claim = match self.gate() {
                Ok(()) => match take(&mut self.world()) {
                    Ok(()) => Ok(Claim::Held {
                        lease: Box::new(SimLease {
                            world: Arc::clone(&self.world),
                            id: self.id,
                        }),
                        said: String::new(),
                    }),
                    Err(holder) => Ok(Claim::Refused(SimSession::output(
                        75,
                        format!("busy {holder}\n"),
                    ))),
                },
                Err((e, _)) => Err(e),
            };
            claim.map(|claim| match claim {
                // Taken: the probe runs under the lock, after the take.
                Claim::Held { lease, .. } => Claim::Held {
                    lease,
                    said: probe
                        .map(|depth| self.world().probe(depth))
                        .unwrap_or_default(),
                },
                refused => refused,
            })
        })
    }

    fn open_tcp<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, SshError>> {
        Box::pin(async move { Err(self.lost()) })
    }
}

impl super::prepare::Connection for SimSession {
    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Connects to a simulated host: each connection a new session.
pub struct SimConnect {
    pub world: Arc<Mutex<World>>,
}

impl super::prepare::Connect for SimConnect {
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn super::prepare::Connection>, SshError>> {
        let id = super::walk_tests::SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let session = SimSession::new(Arc::clone(&self.world), id, Cut::Never);
        Box::pin(async move { Ok(Box::new(session) as Box<dyn super::prepare::Connection>) })
    }
}

impl World {
    /// Files, processes and the lock, for "nothing changed" (not clocks or counters).
    pub fn fingerprint(&self) -> String {
        format!("{:?}\n{:?}\n{:?}", self.files, self.procs, self.lock)
    }
}
