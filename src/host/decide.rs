//! Pure decisions of the per-host upgrade: given what a probe observed (and what the
//! procedure knows: the target sha256, the old master's pid), what holds and what to do next.
//! No I/O; every function here is tested against recorded observations.

use super::observe::{Master, Observation};
use crate::model::elf::{self, machine_for_uname as elf_machine};

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
pub fn preflight(obs: &Observation, master: &Master, binary: &str, new_size: u64) -> Vec<String> {
    let mut problems = Vec::new();
    if !master.nginx_master {
        problems.push(format!(
            "the pid file names pid {}, which is not an nginx master ({:?})",
            master.pid,
            master.argv.join(" ")
        ));
        return problems;
    }
    match master.binary() {
        Some(argv0) if !argv0.starts_with('/') => problems.push(format!(
            "master {} was started as {argv0:?}, not by absolute path: USR2 would fail to execute it",
            master.pid
        )),
        Some(argv0) if argv0 != binary => problems.push(format!(
            "master {} runs {argv0}, but nginx_binary is {binary}",
            master.pid
        )),
        Some(_) => {}
        None => problems.push(format!("master {} has no command line", master.pid)),
    }
    let args = master.argv.join(" ");
    if args.contains("daemon off") {
        problems.push(format!(
            "master {} runs with `daemon off`: WINCH does not work without daemon mode",
            master.pid
        ));
    }
    if master.workers() == 0 {
        problems.push(format!("master {} has no workers", master.pid));
    }
    if obs.oldbin.is_some() {
        problems.push("an .oldbin pid file exists: another upgrade is in progress".into());
    }
    if let Some(unit) = &obs.unit {
        if unit.kind != "forking" {
            problems.push(format!(
                "systemd unit {} is Type={}: the old master's exit would stop the service (needs Type=forking with PIDFile={})",
                unit.name, unit.kind, unit.our_pid_file
            ));
        } else if unit.pid_file != unit.our_pid_file {
            problems.push(format!(
                "systemd unit {} has PIDFile={:?}, not {}: systemd would not follow the new master",
                unit.name, unit.pid_file, unit.our_pid_file
            ));
        }
    }
    // Room for the staged file and, where a hard link is impossible, a copied backup.
    if let Some(free) = obs.free_kb
        && free.saturating_mul(1024) < new_size.saturating_mul(2)
    {
        problems.push(format!(
            "only {free} KiB free beside {binary}; {} KiB needed",
            new_size.saturating_mul(2) / 1024
        ));
    }
    problems
}

/// The new binary's ELF machine, read on the controller, against this host's `uname -m`:
/// judged in preflight, before anything is uploaded. A `uname -m` not known here is left to
/// the check of the staged file on the host.
pub fn machine_fits(obs: &Observation, machine: u16) -> Option<String> {
    let want = elf_machine(&obs.machine)?;
    let name = |m: u16| elf::machine_name(m).unwrap_or("another machine");
    (want != machine).then(|| {
        format!(
            "the new binary is for {} (ELF machine {machine}), this host ({}) needs {} (ELF machine {want})",
            name(machine),
            obs.machine,
            name(want)
        )
    })
}

/// Judges the output of the check-new script: an ELF for this machine that passes `-t`.
pub fn check_new(output: &str) -> Result<(), String> {
    let mut magic = "";
    let mut emachine = None;
    let mut host = "";
    let mut test_rc = None;
    let mut test_out = Vec::new();
    for line in output.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "magic" => magic = v,
            "emachine" => emachine = v.parse::<u16>().ok(),
            "hostmachine" => host = v,
            "test_rc" => test_rc = v.parse::<i32>().ok(),
            "test_out" => test_out.push(v),
            _ => {}
        }
    }
    if magic != "7f454c46" {
        return Err("the new binary is not an ELF executable".into());
    }
    match (emachine, elf_machine(host)) {
        (Some(got), Some(want)) if got != want => {
            return Err(format!(
                "the new binary is for ELF machine {got}, this host ({host}) needs {want}"
            ));
        }
        (None, _) => return Err("the new binary's ELF header is unreadable".into()),
        _ => {}
    }
    match test_rc {
        Some(0) => Ok(()),
        Some(rc) => Err(format!(
            "`nginx -t` with the new binary failed (exit {rc}): {}",
            test_out.join(" | ")
        )),
        None => Err("`nginx -t` with the new binary did not run".into()),
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
pub fn process_gate(before: &Observation, after: &Observation, new_pid: u32) -> Result<(), String> {
    let a = find(before, new_pid).ok_or_else(|| format!("new master {new_pid} is gone"))?;
    let b = find(after, new_pid).ok_or_else(|| format!("new master {new_pid} died"))?;
    let workers = |m: &Master| -> Vec<u32> {
        m.children
            .iter()
            .filter(|c| c.is_worker())
            .map(|c| c.pid)
            .collect()
    };
    if workers(b).is_empty() {
        return Err(format!("new master {new_pid} has no workers"));
    }
    if workers(a) != workers(b) {
        return Err(format!(
            "new master {new_pid}'s workers are respawning ({:?} then {:?})",
            workers(a),
            workers(b)
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::observe::{Child, DiskBinary, ProcState};

    fn master(pid: u32, ppid: u32, sha: &str, workers: &[u32]) -> Master {
        Master {
            pid,
            state: ProcState::Alive('S'),
            ppid: Some(ppid),
            argv: vec![
                "/usr/sbin/nginx".into(),
                "-c".into(),
                "/etc/nginx/nginx.conf".into(),
            ],
            nginx_master: true,
            exe: "/usr/sbin/nginx".into(),
            exe_sha256: Some(sha.into()),
            version: None,
            children: workers
                .iter()
                .map(|&pid| Child {
                    pid,
                    state: ProcState::Alive('S'),
                    title: "nginx: worker process".into(),
                })
                .collect(),
        }
    }

    fn obs(pid_file: Option<Master>, oldbin: Option<Master>, disk: &str) -> Observation {
        Observation {
            machine: "x86_64".into(),
            pid_file: pid_file.as_ref().map(|m| m.pid),
            oldbin: oldbin.as_ref().map(|m| m.pid),
            master: pid_file,
            old_master: oldbin,
            binary: Some(DiskBinary {
                sha256: Some(disk.into()),
                version: None,
                size: Some(1000),
            }),
            free_kb: Some(100_000),
            ..Observation::default()
        }
    }

    #[test]
    fn preflight_lists_every_problem() {
        let good = master(10, 1, "old", &[11]);
        let o = obs(Some(good.clone()), None, "old");
        assert!(preflight(&o, &good, "/usr/sbin/nginx", 1000).is_empty());

        let mut bad = master(10, 1, "old", &[]);
        bad.argv = vec!["nginx".into(), "-g".into(), "daemon".into(), "off;".into()];
        let mut o = obs(Some(bad.clone()), None, "old");
        o.free_kb = Some(1);
        let problems = preflight(&o, &bad, "/usr/sbin/nginx", 4096);
        assert_eq!(
            problems,
            [
                "master 10 was started as \"nginx\", not by absolute path: USR2 would fail to execute it",
                "master 10 runs with `daemon off`: WINCH does not work without daemon mode",
                "master 10 has no workers",
                "only 1 KiB free beside /usr/sbin/nginx; 8 KiB needed",
            ]
        );

        let mut other = master(10, 1, "old", &[11]);
        other.nginx_master = false;
        other.argv = vec!["/usr/bin/sleep".into(), "1000".into()];
        let o = obs(Some(other.clone()), None, "old");
        assert_eq!(
            preflight(&o, &other, "/usr/sbin/nginx", 10),
            ["the pid file names pid 10, which is not an nginx master (\"/usr/bin/sleep 1000\")"]
        );
        let mut simple = obs(Some(good.clone()), None, "old");
        simple.unit = Some(crate::host::observe::Unit {
            name: "nginx.service".into(),
            kind: "simple".into(),
            pid_file: String::new(),
            our_pid_file: "/run/nginx.pid".into(),
        });
        assert_eq!(
            preflight(&simple, &good, "/usr/sbin/nginx", 10),
            [
                "systemd unit nginx.service is Type=simple: the old master's exit would stop the service (needs Type=forking with PIDFile=/run/nginx.pid)"
            ]
        );
        let mut forking = simple.clone();
        if let Some(u) = forking.unit.as_mut() {
            u.kind = "forking".into();
            u.pid_file = "/run/nginx.pid".into();
        }
        assert!(preflight(&forking, &good, "/usr/sbin/nginx", 10).is_empty());
        if let Some(u) = forking.unit.as_mut() {
            u.pid_file = "/var/run/other.pid".into();
        }
        assert_eq!(
            preflight(&forking, &good, "/usr/sbin/nginx", 10),
            [
                "systemd unit nginx.service has PIDFile=\"/var/run/other.pid\", not /run/nginx.pid: systemd would not follow the new master"
            ]
        );
        let elsewhere = master(10, 1, "old", &[11]);
        assert_eq!(
            preflight(
                &obs(Some(elsewhere.clone()), None, "old"),
                &elsewhere,
                "/opt/nginx",
                10
            ),
            ["master 10 runs /usr/sbin/nginx, but nginx_binary is /opt/nginx"]
        );
    }

    #[test]
    fn new_binary_checks() {
        let ok = "magic 7f454c46\nclass 2\nemachine 62\nhostmachine x86_64\ntest_rc 0\ntest_out nginx: configuration file ok\nend ok\n";
        assert_eq!(check_new(ok), Ok(()));
        assert_eq!(
            check_new("magic 23212f62\nemachine 0\nhostmachine x86_64\nend ok\n"),
            Err("the new binary is not an ELF executable".into())
        );
        assert_eq!(
            check_new("magic 7f454c46\nemachine 183\nhostmachine x86_64\nend ok\n"),
            Err("the new binary is for ELF machine 183, this host (x86_64) needs 62".into())
        );
        assert_eq!(
            check_new("magic 7f454c46\nemachine 62\nhostmachine x86_64\ntest_rc 1\ntest_out nginx: [emerg] unknown directive \"x\"\ntest_out nginx: configuration file test failed\n"),
            Err("`nginx -t` with the new binary failed (exit 1): nginx: [emerg] unknown directive \"x\" | nginx: configuration file test failed".into())
        );
    }

    #[test]
    fn the_binary_must_be_for_the_host_machine() {
        let good = master(10, 1, "old", &[11]);
        let mut o = obs(Some(good), None, "old");
        assert_eq!(machine_fits(&o, 62), None);
        assert_eq!(
            machine_fits(&o, 183).as_deref(),
            Some(
                "the new binary is for AArch64 (ELF machine 183), this host (x86_64) needs x86-64 (ELF machine 62)"
            )
        );
        o.machine = "aarch64".into();
        assert_eq!(machine_fits(&o, 183), None);
        assert!(machine_fits(&o, 62).is_some_and(|p| p.contains("needs AArch64")));
        o.machine = "pdp11".into();
        assert_eq!(
            machine_fits(&o, 62),
            None,
            "an unknown uname is left to the host's check"
        );
    }

    #[test]
    fn start_drain_commit_and_revert() {
        let old = master(10, 1, "old", &[11]);
        let waiting = obs(None, Some(old.clone()), "new");
        assert_eq!(start(&waiting, 10), Start::Waiting);
        let no_workers_yet = obs(Some(master(20, 10, "new", &[])), Some(old.clone()), "new");
        assert_eq!(start(&no_workers_yet, 10), Start::Waiting);
        let ready = obs(Some(master(20, 10, "new", &[21])), Some(old.clone()), "new");
        assert!(matches!(start(&ready, 10), Start::Ready(m) if m.pid == 20));
        let exited = obs(Some(old.clone()), None, "new");
        assert_eq!(start(&exited, 10), Start::Exited);

        assert!(!drained(&ready, 10));
        let after_winch = obs(
            Some(master(20, 10, "new", &[21])),
            Some(master(10, 1, "old", &[])),
            "new",
        );
        assert!(drained(&after_winch, 10));
        assert_eq!(process_gate(&after_winch, &after_winch, 20), Ok(()));
        let respawned = obs(
            Some(master(20, 10, "new", &[22])),
            Some(master(10, 1, "old", &[])),
            "new",
        );
        assert_eq!(
            process_gate(&after_winch, &respawned, 20),
            Err("new master 20's workers are respawning ([21] then [22])".into())
        );
        assert!(!committed(&after_winch, 10, 20));
        let done = obs(Some(master(20, 1, "new", &[21])), None, "new");
        assert!(committed(&done, 10, 20));

        assert!(!reverted(&after_winch, 10, Some(20)));
        let back = obs(Some(master(10, 1, "old", &[12])), None, "old");
        assert!(reverted(&back, 10, Some(20)));
        assert!(reverted(&back, 10, None));
        let mut zombie_new = master(20, 10, "new", &[]);
        zombie_new.state = ProcState::Zombie;
        let mut with_zombie = back.clone();
        with_zombie.old_master = Some(zombie_new);
        // A new master that exited but is not reaped yet is gone for every decision.
        assert!(find(&with_zombie, 20).is_none());
        assert!(reverted(&with_zombie, 10, Some(20)));
    }

    #[test]
    fn backups_follow_the_end_of_the_history() {
        let history: Vec<String> = ["a", "b", "c"].iter().map(|c| c.repeat(64)).collect();
        assert_eq!(
            backups_to_keep(&history, 2),
            ["b".repeat(16), "c".repeat(16)]
        );
        assert_eq!(backups_to_keep(&history, 8).len(), 3);
        assert!(backups_to_keep(&history, 0).is_empty());
    }
}
