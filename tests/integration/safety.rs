//! Acceptance tests of the per-host safety contract, against real lab hosts:
//!
//! - every host keeps a record beside its binary, `DIR/.BASENAME.ngfleet-state`: `key value`
//!   lines; `history SHA256` lines list the versions it ran, oldest first (the last one runs
//!   when no operation is in flight); `op`, `from`, `to`, `step` lines while one is;
//! - `rollback` goes one step back in that history, never forward; with no earlier version
//!   the host is skipped ("no earlier version"); with no record, or a record that contradicts
//!   what runs, it is refused (failed, exit 1) and nothing changes;
//! - a host that could not be brought back is `unrestored` (exit 3), never reported restored;
//! - a stale lock of a partitioned controller does not outlive the partition;
//! - a slow drain is not a failure (`on_drain_timeout: proceed` by default).
//!
//! Every scenario checks the end state on the host itself (from /proc and the file system of
//! this machine, which the lab hosts share): exactly one master, the executable it runs, the
//! binary on disk, no `.oldbin` pid file, no staged files; and the run's JSON summary and exit
//! code. Every wait is bounded.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Output, Running, Test, status};
use crate::lab::{Lab, LabHost, wait_until};
use crate::slow::{BIG, SlowDownloads, rate_for};

const OLD: &str = "nginx-old";
const NEW: &str = "nginx-new";
const NEW2: &str = "nginx-new2";

/// Canary of one, then the rest in one batch.
const SPEC: &str = "\
hosts: lab
canary: {hosts: 1, then: continue}
batches: [\"100%\"]
parallel: 3
timeouts: {connect: 5s, command: 20s, start: 5s, drain: 10s, quit: 5s}
";

/// The longest any one `ngfleet` run of these tests may take.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn sha(path: &Path) -> String {
    ngfleet::inputs::sha256_file(path).expect("sha256")
}

fn version_sha(lab: &Lab, file: &str) -> String {
    sha(&lab.dir.join("versions").join(file))
}

// ------------------------------------------------------------------ runs ---

/// `ngfleet roll|rollback` runs against a lab with one spec (which a test may change).
struct Controller<'l> {
    lab: &'l Lab,
    spec: String,
}

impl<'l> Controller<'l> {
    fn new(lab: &'l Lab, spec: &str) -> Controller<'l> {
        Controller {
            lab,
            spec: spec.to_owned(),
        }
    }

    fn set_spec(&mut self, spec: &str) {
        self.spec = spec.to_owned();
    }

    /// `ngfleet VERB -i INVENTORY -p SPEC --binary versions/BINARY --json --journal … EXTRA…`
    /// (rollback with `--yes`: more than one host, no terminal), within [`RUN_LIMIT`].
    fn test(&self, verb: &str, binary: &str, extra: &[&str]) -> Test<'l> {
        let test = Test::new()
            .lab(self.lab)
            .spec(&self.spec)
            .binary(binary)
            .args([verb, "--json"])
            .journal("run.jsonl")
            .args(extra.iter().copied())
            .within(RUN_LIMIT);
        if verb == "rollback" {
            test.arg("--yes")
        } else {
            test
        }
    }
}

fn is_step(e: &Value, host: &str, step: &str, status: &str) -> bool {
    e["event"] == "step"
        && e["host"] == host
        && e["status"] == status
        && e["step"].as_str().is_some_and(|s| s.starts_with(step))
}

/// `ngfleet status --json`: (name, state) of every host.
fn states(lab: &Lab) -> Vec<(String, String)> {
    let v = status(lab);
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("").to_owned(),
                h["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// `GET /` from this machine: (Server header, body).
fn served(host: &LabHost) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "-D", "-"])
        .arg(format!("http://{}/", host.http()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let server = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("server")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (server, body.to_owned())
}

// --------------------------------------------------------- on the host ---

/// What the host itself shows, read directly (not through ngfleet).
#[derive(Debug)]
struct OnHost {
    /// Live nginx masters of the host.
    masters: Vec<u32>,
    /// The pid in the pid file.
    pid_file: Option<u32>,
    /// sha256 of each master's /proc/PID/exe, in the order of `masters`.
    running: Vec<String>,
    /// sha256 of `nginx_binary` on disk.
    disk: String,
    /// `nginx.pid.oldbin` exists.
    oldbin: bool,
    /// `.nginx.ngfleet-stage.*` files beside the binary.
    staged: Vec<String>,
    /// The host record, verbatim.
    record: Option<String>,
}

fn record_path(host: &LabHost) -> std::path::PathBuf {
    host.dir.join("sbin/.nginx.ngfleet-state")
}

fn on_host(host: &LabHost) -> OnHost {
    let masters = host.masters();
    let running = masters
        .iter()
        .map(|pid| {
            ngfleet::inputs::sha256_file(Path::new(&format!("/proc/{pid}/exe")))
                .unwrap_or_else(|e| format!("unreadable: {e}"))
        })
        .collect();
    let staged = fs::read_dir(host.dir.join("sbin"))
        .expect("sbin")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nginx.ngfleet-stage."))
        .collect();
    let mut oldbin = host.pid_file().into_os_string();
    oldbin.push(".oldbin");
    OnHost {
        masters,
        pid_file: host.master_pid(),
        running,
        disk: sha(&host.binary()),
        oldbin: Path::new(&oldbin).exists(),
        staged,
        record: fs::read_to_string(record_path(host)).ok(),
    }
}

impl OnHost {
    /// The sha256 the master named by `pid` runs.
    fn runs(&self, pid: Option<u32>) -> Option<&str> {
        let i = self.masters.iter().position(|&m| Some(m) == pid)?;
        Some(&self.running[i])
    }

    /// `history` values of the record, oldest first.
    fn history(&self) -> Vec<String> {
        self.lines("history")
    }

    fn lines(&self, key: &str) -> Vec<String> {
        self.record
            .as_deref()
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// Names a sha256 by the test binary it belongs to, for readable failures.
fn name_of(lab: &Lab, sha256: &str) -> String {
    [OLD, NEW, NEW2]
        .into_iter()
        .find(|f| version_sha(lab, f) == sha256)
        .map_or_else(|| sha256.to_owned(), str::to_owned)
}

/// The processes and files of a host at rest on `version`: exactly one master, named by the
/// pid file, running `version`; `version` on disk; no `.oldbin`; nothing staged.
fn assert_steady_on(lab: &Lab, host: &str, version: &str, when: &str) {
    let h = lab.host(host);
    let want = version_sha(lab, version);
    let f = on_host(h);
    let running: Vec<String> = f.running.iter().map(|s| name_of(lab, s)).collect();
    assert_eq!(
        f.masters.len(),
        1,
        "{when}: {host} must have exactly one master, runs {running:?}: {f:?}"
    );
    assert_eq!(
        f.pid_file,
        Some(f.masters[0]),
        "{when}: {host}: the pid file names the master: {f:?}"
    );
    assert_eq!(
        running[0], version,
        "{when}: {host} runs {} instead of {version}: {f:?}",
        running[0]
    );
    assert_eq!(
        f.disk,
        want,
        "{when}: {host} has {} on disk instead of {version}: {f:?}",
        name_of(lab, &f.disk)
    );
    assert!(
        !f.oldbin,
        "{when}: {host} still has nginx.pid.oldbin: {f:?}"
    );
    assert!(
        f.staged.is_empty(),
        "{when}: {host} has staged files left: {f:?}"
    );
}

/// Where the host record disagrees with a host at rest on `version` (its last `history` is
/// what runs, no operation in flight) or, when given, with the whole expected history.
fn record_problem(
    lab: &Lab,
    host: &str,
    version: &str,
    history: Option<&[&str]>,
) -> Option<String> {
    let f = on_host(lab.host(host));
    let Some(record) = f.record.as_deref() else {
        return Some(format!(
            "{host}: no host record at {}",
            record_path(lab.host(host)).display()
        ));
    };
    let got: Vec<String> = f.history().iter().map(|s| name_of(lab, s)).collect();
    if got.last().map(String::as_str) != Some(version) {
        return Some(format!(
            "{host}: the record's last history is not {version}: {got:?}\n{record}"
        ));
    }
    if let Some(want) = history
        && got != want
    {
        return Some(format!(
            "{host}: the record's history is {got:?}, expected {want:?}\n{record}"
        ));
    }
    if !f.lines("op").is_empty() {
        return Some(format!(
            "{host}: the record still has an operation in flight\n{record}"
        ));
    }
    None
}

/// At rest on `version`, with a record that says so.
fn assert_settled(lab: &Lab, host: &str, version: &str, when: &str) {
    assert_steady_on(lab, host, version, when);
    if let Some(problem) = record_problem(lab, host, version, None) {
        panic!("{when}: {problem}");
    }
}

/// Waits (bounded) until `host` has one master and no `.oldbin`, then [`assert_settled`].
fn wait_settled(lab: &Lab, host: &str, version: &str, limit: Duration, when: &str) {
    let h = lab.host(host);
    wait_until(limit, || {
        let f = on_host(h);
        f.masters.len() == 1 && !f.oldbin
    });
    assert_settled(lab, host, version, when);
}

// ------------------------------------------------------------ scenarios ---

/// Scenario 1: `rollback` goes one step back in the host's history, never forward.
#[test]
fn rollback_goes_one_step_back_never_forward() {
    let lab = lab!(1);
    let c = Controller::new(&lab, SPEC);
    // Record problems are gathered and asserted at the end, so that the first failure
    // reported is about what runs.
    let mut records = Vec::new();

    let ran = c.test("roll", NEW, &[]).run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("upgraded"), ["lab-01"], "{}", ran.show());
    assert_steady_on(&lab, "lab-01", NEW, "after roll to new");
    records.extend(record_problem(&lab, "lab-01", NEW, Some(&[OLD, NEW])));

    let ran = c.test("roll", NEW2, &[]).run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("upgraded"), ["lab-01"], "{}", ran.show());
    assert_steady_on(&lab, "lab-01", NEW2, "after roll to new2");
    records.extend(record_problem(
        &lab,
        "lab-01",
        NEW2,
        Some(&[OLD, NEW, NEW2]),
    ));

    let ran = c.test("rollback", NEW2, &[]).run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("rolled_back"), ["lab-01"], "{}", ran.show());
    assert_steady_on(&lab, "lab-01", NEW, "after rollback from new2");
    records.extend(record_problem(&lab, "lab-01", NEW, Some(&[OLD, NEW])));

    // One step back from new is the lab's original, not new2 (the newest backup).
    let ran = c.test("rollback", NEW, &[]).run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("rolled_back"), ["lab-01"], "{}", ran.show());
    let f = on_host(lab.host("lab-01"));
    let runs: Vec<String> = f.running.iter().map(|s| name_of(&lab, s)).collect();
    assert!(
        !runs.iter().any(|r| r == NEW2),
        "rollback from new moved the host FORWARD: it runs {runs:?}: {f:?}\n{}",
        ran.show()
    );
    assert_steady_on(&lab, "lab-01", OLD, "after rollback from new");
    records.extend(record_problem(&lab, "lab-01", OLD, Some(&[OLD])));

    // Nothing earlier than the original: skipped, said so, nothing touched.
    let master = lab.host("lab-01").master_pid();
    let ran = c.test("rollback", OLD, &[]).run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("skipped"), ["lab-01"], "{}", ran.show());
    assert!(
        ran.text().contains("no earlier version"),
        "the skip says why\n{}",
        ran.show()
    );
    assert_steady_on(&lab, "lab-01", OLD, "after rollback from old");
    assert_eq!(lab.host("lab-01").master_pid(), master, "the same master");
    records.extend(record_problem(&lab, "lab-01", OLD, Some(&[OLD])));

    assert!(records.is_empty(), "host record: {records:#?}");
}

/// Scenario 2: a rollback killed in its drain (two masters, the old one held by a slow client) is
/// finished by running it again.
#[test]
fn an_interrupted_rollback_is_finished_by_running_it_again() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let mut c = Controller::new(&lab, SPEC);
    c.test("roll", NEW, &[]).run().expect_result("succeeded");
    assert_settled(&lab, "lab-01", NEW, "after roll to new");

    c.set_spec(
        &SPEC
            .replace("drain: 10s", "drain: 60s")
            .replace("timeouts:", "on_drain_timeout: fail\ntimeouts:"),
    );
    // A download from new's worker, which the reverse upgrade's WINCH leaves draining.
    let downloads = SlowDownloads::start(&[h.http()], rate_for(20));
    assert!(
        downloads.wait_answered(Duration::from_secs(10)),
        "the download started"
    );
    let mut run = c.test("rollback", NEW, &[]).spawn();
    let draining = run.wait_for(Duration::from_secs(60), |e| {
        is_step(e, "lab-01", "winch", "started")
    });
    // Give the WINCH time to land, and look: the master that ran new (now `.oldbin`) keeps
    // its worker for the download, the reverse upgrade's master runs old.
    let two = draining
        && wait_until(Duration::from_secs(10), || {
            let f = on_host(&h);
            f.masters.len() == 2 && f.oldbin
        });
    std::thread::sleep(Duration::from_millis(500));
    let killed = run.kill();
    assert!(
        draining,
        "the rollback reached its drain\n{}",
        killed.show()
    );
    assert!(
        two,
        "two masters while the rollback drains: {:?}\n{}",
        on_host(&h),
        killed.show()
    );
    let f = on_host(&h);
    assert_eq!(
        f.runs(h.master_pid()).map(|s| name_of(&lab, s)).as_deref(),
        Some(OLD),
        "the pid file names the reverse upgrade's master, on old: {f:?}"
    );
    let draining_master = f
        .masters
        .iter()
        .copied()
        .find(|&m| Some(m) != h.master_pid());
    assert_eq!(
        f.runs(draining_master).map(|s| name_of(&lab, s)).as_deref(),
        Some(NEW),
        "the draining master is the one that ran new: {f:?}"
    );
    assert_eq!(
        downloads.running(),
        1,
        "the download still holds new's worker"
    );

    let again = c.test("rollback", NEW, &[]).run();
    again.expect_result("succeeded");
    assert_eq!(again.hosts("rolled_back"), ["lab-01"], "{}", again.show());
    let done = downloads.finish();
    assert!(done[0].complete, "the download completes: {done:?}");
    assert_eq!(done[0].server, format!("nginx/{}", lab.version(NEW)));
    wait_settled(
        &lab,
        "lab-01",
        OLD,
        Duration::from_secs(15),
        "after the re-run rollback",
    );
}

/// `mv` on the host that does the real rename, then hangs while `MARKER` exists if it renamed
/// onto `BIN`: a controller "crashing" right after the install.
fn hanging_mv(bin: &Path, marker: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # ngfleet test: mv that hangs after renaming onto the nginx binary while a marker exists\n\
         /bin/mv \"$@\" || exit\n\
         for last; do :; done\n\
         if [ \"$last\" = '{}' ] && [ -e '{}' ]; then sleep 60; fi\n\
         exit 0\n",
        bin.display(),
        marker.display()
    )
}

/// Runs `roll --limit HOST` until the host's binary on disk is the new one, then kills the
/// controller (the remote `mv` hangs after its rename, so nothing after the install ran).
fn crash_after_install(lab: &Lab, c: &Controller<'_>, host: &str) {
    let h = lab.host(host);
    let marker = h.dir.join("mv-hangs");
    fs::write(&marker, "").expect("marker");
    let before = on_host(h);
    let new = version_sha(lab, NEW);
    let mut run = c.test("roll", NEW, &["--limit", host]).spawn();
    let installed = wait_until(Duration::from_secs(60), || {
        sha(&h.binary()) == new || run.exited()
    }) && sha(&h.binary()) == new;
    let killed = run.kill();
    fs::remove_file(&marker).expect("remove marker");
    assert!(
        installed,
        "{host}: the new binary was installed before the crash\n{}",
        killed.show()
    );
    let f = on_host(h);
    assert_eq!(
        f.masters, before.masters,
        "{host}: no USR2 came, the old master alone runs"
    );
    assert_eq!(f.running, [version_sha(lab, OLD)], "{host}: old runs");
}

/// Scenario 3: a controller that dies right after the install leaves a host whose disk differs from
/// what runs: `status` says so, `rollback` puts the old binary back, `roll` finishes.
#[test]
fn a_crash_right_after_install_is_seen_and_recovered_both_ways() {
    let lab = lab!(2);
    for host in ["lab-01", "lab-02"] {
        let h = lab.host(host);
        let script = hanging_mv(&h.binary(), &h.dir.join("mv-hangs"));
        lab.shadow_command(host, "mv", &script);
    }
    let c = Controller::new(&lab, SPEC);
    crash_after_install(&lab, &c, "lab-01");
    crash_after_install(&lab, &c, "lab-02");

    let seen = states(&lab);
    assert_eq!(
        seen,
        [
            ("lab-01".to_owned(), "disk-differs".to_owned()),
            ("lab-02".to_owned(), "disk-differs".to_owned())
        ],
        "status sees the binary on disk is not the one running"
    );

    let back = c.test("rollback", NEW, &["--limit", "lab-01"]).run();
    back.expect_result("succeeded");
    assert_settled(&lab, "lab-01", OLD, "after rollback of the crashed install");

    let forward = c.test("roll", NEW, &["--limit", "lab-02"]).run();
    forward.expect_result("succeeded");
    assert!(
        !forward.text().contains("changed outside ngfleet"),
        "ngfleet's own interrupted install is not a change by someone else\n{}",
        forward.show()
    );
    assert_eq!(forward.hosts("upgraded"), ["lab-02"], "{}", forward.show());
    assert_settled(&lab, "lab-02", NEW, "after roll over the crashed install");
    assert_settled(&lab, "lab-01", OLD, "lab-01 untouched by lab-02's roll");
}

/// Starts `roll` with `spec` and waits until lab-01 sits in its gates with two masters.
/// The run must end with one of `codes`.
fn roll_into_the_gate<'l>(
    lab: &'l Lab,
    h: &LabHost,
    spec: &str,
    codes: &[i32],
) -> (Controller<'l>, Running) {
    let c = Controller::new(lab, spec);
    let mut run = c.test("roll", NEW, &[]).codes(codes).spawn();
    let gating = run.wait_for(Duration::from_secs(60), |e| {
        is_step(e, "lab-01", "gate", "started")
    });
    let two = gating && wait_until(Duration::from_secs(5), || on_host(h).masters.len() == 2);
    if !two {
        let ran = run.kill();
        panic!(
            "the roll did not reach its gates with two masters: {:?}\n{}",
            on_host(h),
            ran.show()
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    (c, run)
}

/// Scenario 4: a host lost after WINCH (sshd and its sessions gone) cannot be restored: the run
/// says `unrestored` (exit 3) with what it last saw, the host keeps both masters, and once it is
/// reachable again `rollback` converges it.
#[test]
fn a_host_lost_mid_gate_is_unrestored_not_restored() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let old_master = h.master_pid().expect("master");
    let spec = format!("{SPEC}soak: 120s\ngates:\n  - command: \"true\"\n");
    let (mut c, run) = roll_into_the_gate(&lab, &h, &spec, &[3]);
    lab.run(&["sshd-stop", "lab-01"]);
    let ran = run.wait();
    ran.expect_result("failed");
    assert_eq!(ran.hosts("unrestored"), ["lab-01"], "{}", ran.show());
    assert!(ran.hosts("rolled_back").is_empty(), "{}", ran.show());
    let finished = ran.finished("lab-01");
    assert_eq!(finished["result"], "unrestored", "{}", ran.show());
    let error = finished["error"].as_str().unwrap_or("");
    assert!(
        error.to_lowercase().contains("last seen") || error.contains(&old_master.to_string()),
        "the error says what was last seen on the host: {error:?}"
    );
    let f = on_host(&h);
    assert_eq!(
        f.masters.len(),
        2,
        "nothing could reach the host: both masters are still there: {f:?}"
    );
    assert!(f.masters.contains(&old_master), "{f:?}");

    lab.run(&["sshd-start", "lab-01"]);
    c.set_spec(SPEC);
    let back = c.test("rollback", NEW, &[]).run();
    back.expect_result("succeeded");
    assert_eq!(back.hosts("rolled_back"), ["lab-01"], "{}", back.show());
    assert_settled(&lab, "lab-01", OLD, "after rollback of the lost host");
}

/// Scenario 5: a partition (40 s) longer than the lock's silence limit (30 s) and than three
/// missed 10 s keepalives: the run ends failed or unrestored, and the next `roll` is not refused
/// by a stale lock.
#[test]
fn a_partition_leaves_no_stale_lock_behind() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let spec = format!("{SPEC}soak: 300s\ngates:\n  - command: \"true\"\n");
    // The partitioned run fails (1) or leaves the host unrestored (3).
    let (mut c, run) = roll_into_the_gate(&lab, &h, &spec, &[1, 3]);
    lab.link_down("lab-01");
    std::thread::sleep(Duration::from_secs(40));
    lab.link_up("lab-01");
    let ran = run.wait();
    assert!(
        matches!(ran.code, Some(1) | Some(3)),
        "the partitioned run fails (1) or leaves the host unrestored (3)\n{}",
        ran.show()
    );
    assert_eq!(ran.summary()["result"], "failed", "{}", ran.show());
    assert!(ran.hosts("upgraded").is_empty(), "{}", ran.show());

    // At once: the lock of the partitioned session must not refuse the next controller.
    c.set_spec(SPEC);
    let again = c.test("roll", NEW, &[]).run();
    assert!(
        !again.text().contains("locked by another controller"),
        "a stale lock outlived the partition\n{}",
        again.show()
    );
    again.expect_result("succeeded");
    assert_settled(
        &lab,
        "lab-01",
        NEW,
        "after the roll following the partition",
    );
}

/// Scenario 6: slow clients are not failures: with downloads far longer than `timeouts.drain`, the
/// roll (default `on_drain_timeout: proceed`) succeeds long before they end, every host serves the
/// new build, every download completes, and the old masters leave afterwards.
#[test]
fn slow_clients_are_not_failures() {
    let lab = lab!(3);
    let names: Vec<String> = lab.hosts.iter().map(|h| h.name.clone()).collect();
    let c = Controller::new(&lab, &SPEC.replace("drain: 10s", "drain: 2s"));
    let addrs: Vec<String> = lab.hosts.iter().map(|h| h.http()).collect();
    let downloads = SlowDownloads::start(&addrs, rate_for(25));
    assert!(
        downloads.wait_answered(Duration::from_secs(10)),
        "the downloads started"
    );
    let started = Instant::now();
    let ran = c.test("roll", NEW, &[]).run();
    let took = started.elapsed();
    let running = downloads.running();
    let progress = downloads.bytes();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("upgraded"), names, "{}", ran.show());
    assert_eq!(
        running, 3,
        "the roll ends long before the downloads: took {took:?}, at {progress:?} of {BIG}"
    );
    let new_version = lab.version(NEW);
    for h in &lab.hosts {
        let (server, body) = served(h);
        assert_eq!(server, format!("nginx/{new_version}"), "{}: {body}", h.name);
        assert!(body.starts_with(&new_version), "{}: {body}", h.name);
    }
    // The old masters are still finishing their downloads.
    let seen = states(&lab);
    for (name, state) in &seen {
        assert_eq!(
            state, "draining",
            "{name} while its download runs: {seen:?}"
        );
    }

    let done = downloads.finish();
    let old_version = lab.version(OLD);
    for d in &done {
        assert!(d.complete, "every download completes in full: {d:?}");
        assert_eq!(d.bytes, BIG, "{d:?}");
        assert_eq!(
            d.server,
            format!("nginx/{old_version}"),
            "served to the end by the old worker: {d:?}"
        );
    }
    for name in &names {
        wait_settled(
            &lab,
            name,
            NEW,
            Duration::from_secs(15),
            "after the downloads ended",
        );
    }
}

/// The `error` of `host`'s finished event mentions the host record.
fn assert_refused_for_the_record(ran: &Output, host: &str) {
    let finished = ran.finished(host);
    let error = finished["error"].as_str().unwrap_or("");
    assert!(
        error.to_lowercase().contains("record"),
        "{host}: the refusal names the host record: {error:?}\n{}",
        ran.show()
    );
}

/// Scenario 7: `rollback` trusts only a record that matches the host: with none, or a wrong one,
/// the host is refused (failed, exit 1) and nothing changes.
#[test]
fn rollback_refuses_a_host_whose_record_is_missing_or_wrong() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let c = Controller::new(&lab, SPEC);

    // No record: the lab's original nginx, never touched by ngfleet.
    let before = on_host(&h);
    assert!(before.record.is_none(), "a fresh lab host has no record");
    let ran = c.test("rollback", OLD, &[]).code(1).run();
    ran.expect_result("failed");
    assert_eq!(ran.hosts("failed"), ["lab-01"], "{}", ran.show());
    assert_refused_for_the_record(&ran, "lab-01");
    let after = on_host(&h);
    assert_eq!(after.masters, before.masters, "the same master");
    assert_steady_on(&lab, "lab-01", OLD, "after the refused rollback");
    assert!(after.record.is_none(), "no record was made up: {after:?}");

    // A record whose last version is not what runs.
    c.test("roll", NEW, &[]).run().expect_result("succeeded");
    let path = record_path(&h);
    let record = fs::read_to_string(&path).expect("roll writes the host record");
    let mut lines: Vec<String> = record.lines().map(str::to_owned).collect();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("history "))
        .expect("a history line");
    lines[last] = format!("history {}", version_sha(&lab, NEW2));
    let forged = lines.join("\n") + "\n";
    fs::write(&path, &forged).expect("write record");
    let before = on_host(&h);
    let ran = c.test("rollback", NEW, &[]).code(1).run();
    ran.expect_result("failed");
    assert_eq!(ran.hosts("failed"), ["lab-01"], "{}", ran.show());
    assert_refused_for_the_record(&ran, "lab-01");
    let after = on_host(&h);
    assert_eq!(after.masters, before.masters, "the same master");
    assert_steady_on(&lab, "lab-01", NEW, "after the refused rollback");
    assert_eq!(
        after.record.as_deref(),
        Some(forged.as_str()),
        "the record is left as it was"
    );
}
