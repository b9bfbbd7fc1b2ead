//! The probe and the step runner against real nginx on a lab host: what each depth reports
//! (checked against the files and processes themselves), and the checksums a step reuses
//! (the install's, the `runs` check's) counted and checked against the real ones.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ngfleet::fleet::ControllerEnv;
use ngfleet::host::act::{self, Act, Acted, Cond, Said};
use ngfleet::host::observe::Observation;
use ngfleet::host::probe::{self, Depth};
use ngfleet::host::scripts::Layout;
use ngfleet::model::inventory::{Host, Inventory};
use ngfleet::ssh::{Credentials, HostKeyPolicy, Session, Transport, TransportConfig};

use crate::lab::Lab;

const DEADLINE: Duration = Duration::from_secs(20);

fn sha(path: &Path) -> String {
    ngfleet::inputs::sha256_file(path).expect("sha256")
}

async fn connect(lab: &Lab, name: &str) -> (Host, Session) {
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("inventory");
    let host = inventory.find(name).expect("host").clone();
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    let session = transport
        .connect(&env.target(&host))
        .await
        .expect("connect");
    (host, session)
}

/// Runs `acts` and the probe at `depth` as one step command.
async fn step(session: &Session, host: &Host, acts: &[Act], depth: Depth) -> Acted {
    let layout = Layout::plain(host.nginx.binary.clone());
    let cmd = act::command(host, &layout, acts, depth);
    let out = ngfleet::host::remote::Remote::exec(session, &cmd, DEADLINE)
        .await
        .expect("step command");
    act::parse(&out).expect("step output")
}

fn uname_m() -> String {
    let out = Command::new("uname").arg("-m").output().expect("uname");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// How many times the host ran `sha256sum` (its shadow logs each run).
fn hashes(log: &Path) -> usize {
    fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_depth_reports_what_it_promises() {
    let lab = lab!(1);
    let (host, session) = connect(&lab, "lab-01").await;
    let lab_host = lab.host("lab-01");
    let binary = lab_host.binary();
    let want_sha = sha(&binary);
    let want_size = fs::metadata(&binary).expect("binary").len();
    let pid = lab_host.master_pid().expect("a master");
    for depth in [Depth::Full, Depth::Sums, Depth::Step, Depth::Quick] {
        let obs: Observation = probe::run(&session, &host, depth, DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("{depth:?}: {e}"));
        assert_eq!(obs.depth, Some(depth));
        // From /proc/sys/kernel/arch (or uname -m): the same word as uname -m here.
        assert_eq!(obs.machine, uname_m(), "{depth:?}");
        let master = obs.master.as_ref().expect("master");
        assert_eq!(master.pid, pid);
        assert!(master.nginx_master, "{depth:?}: {master:?}");
        // The title, read as text, split back into the master's arguments.
        assert_eq!(master.binary(), Some(binary.to_str().expect("utf-8")));
        assert!(master.argv.iter().any(|a| a == "-p"), "{:?}", master.argv);
        assert_eq!(master.exe, binary.to_str().expect("utf-8"));
        assert!(master.workers() >= 1, "{depth:?}: {master:?}");
        let disk = obs.binary.as_ref().expect("binary on disk");
        let sums = depth != Depth::Quick;
        let facts = matches!(depth, Depth::Full | Depth::Sums);
        let expect_sha = sums.then(|| want_sha.clone());
        assert_eq!(disk.sha256, expect_sha, "{depth:?}");
        assert_eq!(master.exe_sha256, expect_sha, "{depth:?}");
        assert_eq!(disk.size, facts.then_some(want_size), "{depth:?}");
        assert_eq!(obs.free_kb.is_some_and(|kb| kb > 0), facts, "{depth:?}");
        let versions = depth == Depth::Full;
        assert_eq!(master.version.is_some(), versions, "{depth:?}");
        assert_eq!(disk.version.is_some(), versions, "{depth:?}");
    }
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_reuses_the_checksums_it_took_and_they_are_true() {
    let lab = lab!(1);
    let dir = lab.host("lab-01").dir.clone();
    let log = dir.join("sha256sum.log");
    lab.shadow_command(
        "lab-01",
        "sha256sum",
        &format!(
            "#!/bin/sh\necho run >> '{}'\nexec /usr/bin/sha256sum \"$@\"\n",
            log.display()
        ),
    );
    let (host, session) = connect(&lab, "lab-01").await;
    let layout = Layout::plain(host.nginx.binary.clone());
    let binary = lab.host("lab-01").binary();
    let old_sha = sha(&binary);
    let new = lab.dir.join("versions/nginx-new");
    let new_sha = sha(&new);
    let pid = lab.host("lab-01").master_pid().expect("a master");

    // Install: the staged file is hashed once (by the install); the probe reuses that sum
    // for the file now under the binary's name and hashes only the old master's executable.
    let staged = layout.stage("probetest");
    fs::copy(&new, &staged).expect("stage");
    let install = |staged: &str, sha256: &str| Act::Install {
        staged: staged.to_owned(),
        file: layout.file.as_str().to_owned(),
        backup: layout.backup(&old_sha),
        keep: Vec::new(),
        sha256: sha256.to_owned(),
    };
    let before = hashes(&log);
    let acted = step(&session, &host, &[install(&staged, &new_sha)], Depth::Step).await;
    assert_eq!(acted.said(0), &Said::Done);
    assert_eq!(sha(&binary), new_sha, "the new binary is installed");
    let disk = acted.obs.binary.as_ref().expect("binary");
    assert_eq!(disk.sha256.as_deref(), Some(new_sha.as_str()));
    let master = acted.obs.master.as_ref().expect("master");
    assert_eq!(master.pid, pid);
    assert_eq!(master.exe_sha256.as_deref(), Some(old_sha.as_str()));
    assert_eq!(
        hashes(&log) - before,
        2,
        "install + the old master's executable"
    );
    // A step probe leaves out what only preflight reads.
    assert_eq!((disk.size, acted.obs.free_kb), (None, None));

    // An install that fails its check renames nothing; the probe hashes the binary afresh
    // (the failed file's sum is not the binary's).
    let other = layout.stage("probetest2");
    fs::copy(lab.dir.join("versions/nginx-new2"), &other).expect("stage");
    let acted = step(&session, &host, &[install(&other, &new_sha)], Depth::Step).await;
    assert_eq!(acted.said(0), &Said::Failed(73));
    let disk = acted.obs.binary.as_ref().expect("binary");
    assert_eq!(disk.sha256.as_deref(), Some(new_sha.as_str()));
    fs::remove_file(&other).expect("remove");

    // `runs` hashes the master's executable; the probe reuses it for that master.
    let before = hashes(&log);
    let runs = |sha: &str| {
        Act::Check(Cond::Runs {
            pid,
            sha: sha.to_owned(),
        })
    };
    let acted = step(&session, &host, &[runs(&old_sha)], Depth::Step).await;
    assert_eq!(acted.said(0), &Said::Done);
    let master = acted.obs.master.as_ref().expect("master");
    assert_eq!(master.exe_sha256.as_deref(), Some(old_sha.as_str()));
    let disk = acted.obs.binary.as_ref().expect("binary");
    assert_eq!(disk.sha256.as_deref(), Some(new_sha.as_str()));
    assert_eq!(hashes(&log) - before, 2, "runs + the binary on disk");
    let acted = step(&session, &host, &[runs(&new_sha)], Depth::Step).await;
    assert_eq!(acted.said(0), &Said::Unmet);
    // An unmet check is still a true sum of what the master runs.
    let master = acted.obs.master.as_ref().expect("master");
    assert_eq!(master.exe_sha256.as_deref(), Some(old_sha.as_str()));

    // `serves`: exactly the master's workers, in any order the controller lists them.
    let workers: Vec<u32> = master
        .children
        .iter()
        .filter(|c| c.is_worker())
        .map(|c| c.pid)
        .collect();
    assert!(!workers.is_empty());
    let serves = |workers: Vec<u32>| Act::Check(Cond::Serves { new: pid, workers });
    let acted = step(&session, &host, &[serves(workers.clone())], Depth::Quick).await;
    assert_eq!(acted.said(0), &Said::Done);
    let mut more = workers.clone();
    more.push(1);
    let acted = step(&session, &host, &[serves(more)], Depth::Quick).await;
    assert_eq!(acted.said(0), &Said::Unmet, "a pid that is not a worker");
    let acted = step(
        &session,
        &host,
        &[serves(workers[1..].to_vec())],
        Depth::Quick,
    )
    .await;
    assert_eq!(acted.said(0), &Said::Unmet, "a worker left out");
    session.close().await;
}
