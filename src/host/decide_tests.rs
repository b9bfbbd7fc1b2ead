//! Tests of the pure step conditions and policies in `decide.rs`.

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
    assert!(
        matches!(
            problems.as_slice(),
            [
                Problem::RelativeArgv0 { pid: 10, argv0 },
                Problem::DaemonOff { pid: 10 },
                Problem::NoWorkers { pid: 10 },
                Problem::NoRoom {
                    free_kb: 1,
                    needed_kb: 8,
                    ..
                },
            ] if argv0 == "nginx"
        ),
        "{problems:?}"
    );
    // How they read (one of them).
    assert_eq!(
        problems[0].to_string(),
        "master 10 was started as \"nginx\", not by absolute path: USR2 would fail to execute it"
    );

    let mut other = master(10, 1, "old", &[11]);
    other.nginx_master = false;
    other.argv = vec!["/usr/bin/sleep".into(), "1000".into()];
    let o = obs(Some(other.clone()), None, "old");
    assert!(matches!(
        preflight(&o, &other, "/usr/sbin/nginx", 10).as_slice(),
        [Problem::NotAMaster { pid: 10, argv }] if argv == "/usr/bin/sleep 1000"
    ));
    let mut simple = obs(Some(good.clone()), None, "old");
    simple.unit = Some(crate::host::observe::Unit {
        name: "nginx.service".into(),
        kind: "simple".into(),
        pid_file: String::new(),
        our_pid_file: "/run/nginx.pid".into(),
    });
    assert!(matches!(
        preflight(&simple, &good, "/usr/sbin/nginx", 10).as_slice(),
        [Problem::UnitNotForking { kind, .. }] if kind == "simple"
    ));
    let mut forking = simple.clone();
    if let Some(u) = forking.unit.as_mut() {
        u.kind = "forking".into();
        u.pid_file = "/run/nginx.pid".into();
    }
    assert!(preflight(&forking, &good, "/usr/sbin/nginx", 10).is_empty());
    if let Some(u) = forking.unit.as_mut() {
        u.pid_file = "/var/run/other.pid".into();
    }
    assert!(matches!(
        preflight(&forking, &good, "/usr/sbin/nginx", 10).as_slice(),
        [Problem::UnitPidFile { got, want, .. }] if got == "/var/run/other.pid" && want == "/run/nginx.pid"
    ));
    let elsewhere = master(10, 1, "old", &[11]);
    assert_eq!(
        preflight(
            &obs(Some(elsewhere.clone()), None, "old"),
            &elsewhere,
            "/opt/nginx",
            10
        ),
        [Problem::OtherBinary {
            pid: 10,
            argv0: "/usr/sbin/nginx".into(),
            binary: "/opt/nginx".into()
        }]
    );
}

#[test]
fn new_binary_checks() {
    let host = ElfRead::Host { uname: "x86_64" };
    let ok = "magic 7f454c46\nclass 2\nemachine 62\ntest_rc 0\ntest_out nginx: configuration file ok\nend ok\n";
    assert_eq!(check_new(ok, host), Ok(()));
    assert_eq!(
        check_new("magic 23212f62\nemachine 0\nend ok\n", host),
        Err(BadBinary::NotElf)
    );
    assert_eq!(
        check_new("magic 7f454c46\nemachine 183\nend ok\n", host),
        Err(BadBinary::WrongMachine {
            got: 183,
            uname: "x86_64".into(),
            want: 62
        })
    );
    // A machine not known here is left to `-t`.
    let odd = ElfRead::Host { uname: "mystery" };
    assert_eq!(check_new(ok, odd), Ok(()));
    let failed = check_new(
        "magic 7f454c46\nemachine 62\ntest_rc 1\ntest_out nginx: [emerg] unknown directive \"x\"\ntest_out nginx: configuration file test failed\n",
        host,
    );
    assert!(
        matches!(&failed, Err(BadBinary::TestFailed { rc: 1, output }) if output.len() == 2),
        "{failed:?}"
    );
    assert_eq!(
        failed.expect_err("failed").to_string(),
        "`nginx -t` with the new binary failed (exit 1): nginx: [emerg] unknown directive \"x\" | nginx: configuration file test failed"
    );
    assert_eq!(
        check_new("magic 7f454c46\nemachine 62\nend ok\n", host),
        Err(BadBinary::TestDidNotRun)
    );
    // The header read on the controller: only `-t` is judged here.
    assert_eq!(
        check_new("test_rc 0\nend ok\n", ElfRead::Controller),
        Ok(())
    );
    assert_eq!(
        check_new("test_rc 0\nend ok\n", host),
        Err(BadBinary::NotElf),
        "the host must read the header when the controller did not"
    );
    assert!(matches!(
        check_new("test_rc 2\ntest_out bad\nend ok\n", ElfRead::Controller),
        Err(BadBinary::TestFailed { rc: 2, .. })
    ));
    assert_eq!(
        check_new("end ok\n", ElfRead::Controller),
        Err(BadBinary::TestDidNotRun)
    );
}

#[test]
fn the_binary_must_be_for_the_host_machine() {
    let good = master(10, 1, "old", &[11]);
    let mut o = obs(Some(good), None, "old");
    assert_eq!(machine_fits(&o, 62), None);
    let wrong = machine_fits(&o, 183);
    assert!(
        matches!(&wrong, Some(Problem::WrongMachine { machine: 183, want: 62, uname }) if uname == "x86_64"),
        "{wrong:?}"
    );
    assert_eq!(
        wrong.map(|p| p.to_string()).as_deref(),
        Some(
            "the new binary is for AArch64 (ELF machine 183), this host (x86_64) needs x86-64 (ELF machine 62)"
        )
    );
    o.machine = "aarch64".into();
    assert_eq!(machine_fits(&o, 183), None);
    assert!(matches!(
        machine_fits(&o, 62),
        Some(Problem::WrongMachine { want: 183, .. })
    ));
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
        Err(ProcessFailure::Respawning {
            pid: 20,
            before: vec![21],
            after: vec![22]
        })
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

#[test]
fn a_new_master_leaves_by_quit_then_term_then_kill_within_the_quit_deadline() {
    let ladder = exit_ladder(Duration::from_secs(8));
    let signals: Vec<&str> = ladder.iter().map(|r| r.signal).collect();
    assert_eq!(signals, ["QUIT", "TERM", "KILL"]);
    let total: Duration = ladder.iter().map(|r| r.wait).sum();
    assert_eq!(total, Duration::from_secs(8));
    // A QUIT that found no process still waits; a TERM or KILL that found none is done.
    assert_eq!(after_signal(ladder[0], Delivery::Gone), AfterSignal::Wait);
    assert_eq!(after_signal(ladder[1], Delivery::Gone), AfterSignal::Gone);
    assert_eq!(after_signal(ladder[2], Delivery::Gone), AfterSignal::Gone);
    assert_eq!(after_signal(ladder[2], Delivery::Sent), AfterSignal::Wait);
}

#[test]
fn the_error_log_is_looked_for_under_the_prefix_first() {
    let mut m = master(10, 1, "old", &[11]);
    assert_eq!(error_log_candidates(&m), ["/var/log/nginx/error.log"]);
    m.argv = vec!["/srv/sbin/nginx".into(), "-p".into(), "/srv/".into()];
    assert_eq!(
        error_log_candidates(&m),
        ["/srv/logs/error.log", "/var/log/nginx/error.log"]
    );
    assert_eq!(evidence("a\nb\n\nc\nd\n"), ["b", "c", "d"]);
    assert!(evidence("  \n").is_empty());
}
