//! `ngfleet roll` and `rollback` on lab fleets: waves and barriers, the failure budget, the
//! rollback scopes, deferred commits, windows, interruption and a killed controller.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::lab::Lab;

/// A rollout run in a scratch directory.
struct Roll<'l> {
    lab: &'l Lab,
    dir: tempfile::TempDir,
    runs: usize,
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    journal: Vec<serde_json::Value>,
}

impl<'l> Roll<'l> {
    fn new(lab: &'l Lab, spec: &str) -> Roll<'l> {
        let dir = tempfile::tempdir().expect("tmp");
        fs::write(dir.path().join("spec.yaml"), spec).expect("spec");
        Roll { lab, dir, runs: 0 }
    }

    fn journal_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("run-{n}.jsonl"))
    }

    fn command(&mut self, verb: &str, extra: &[&str]) -> (Command, PathBuf) {
        self.runs += 1;
        let journal = self.journal_path(self.runs);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngfleet"));
        cmd.arg(verb)
            .args(["-i", &self.lab.inventory()])
            .arg("-p")
            .arg(self.dir.path().join("spec.yaml"))
            .arg("--binary")
            .arg(self.lab.dir.join("versions/nginx-new"))
            .arg("--journal")
            .arg(&journal)
            .args(extra)
            .stdin(Stdio::null())
            .env_remove("SSH_AUTH_SOCK");
        if verb == "rollback" {
            // More than one host, no terminal: rollback needs the operator's --yes.
            cmd.arg("--yes");
        }
        (cmd, journal)
    }

    fn run(&mut self, verb: &str, extra: &[&str]) -> Ran {
        let (mut cmd, journal) = self.command(verb, extra);
        let out = cmd.output().expect("run ngfleet");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            journal: read_journal(&journal),
        }
    }

    fn spawn(&mut self, extra: &[&str]) -> (Child, PathBuf) {
        let (mut cmd, journal) = self.command("roll", extra);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        (cmd.spawn().expect("spawn"), journal)
    }
}

fn read_journal(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn sha(path: &Path) -> String {
    ngfleet::inputs::sha256_file(path).expect("sha256")
}

/// (state, running sha) of every host, from `ngfleet status --json`.
fn fleet(lab: &Lab) -> Vec<(String, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_ngfleet"))
        .args(["status", "-i", &lab.inventory(), "--json"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("").to_owned(),
                h["state"].as_str().unwrap_or("").to_owned(),
                h["exe_sha256"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Host names running `version` (a file in versions/), all others must be on nginx-old.
fn on(lab: &Lab, version: &str) -> Vec<String> {
    let want = sha(&lab.dir.join("versions").join(version));
    let old = sha(&lab.dir.join("versions/nginx-old"));
    let hosts = fleet(lab);
    for (name, state, running) in &hosts {
        assert_eq!(state, "steady", "{name} is not steady: {hosts:?}");
        assert!(
            running == &want || running == &old,
            "{name} runs something else"
        );
    }
    hosts
        .into_iter()
        .filter(|(_, _, r)| *r == want)
        .map(|(n, _, _)| n)
        .collect()
}

fn names(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("lab-{i:02}")).collect()
}

fn events<'a>(journal: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    journal.iter().filter(|e| e["event"] == kind).collect()
}

const BASE: &str = "\
hosts: lab
canary: {hosts: 1, then: continue}
batches: [3]
parallel: 3
timeouts: {connect: 5s, command: 20s, start: 5s, drain: 10s, quit: 5s}
";

#[test]
fn a_full_rollout_respects_the_order_and_the_wave_barriers() {
    let lab = Lab::up(10);
    let spec = format!(
        "{BASE}gates:\n  - http: {{url: \"http://127.0.0.1:{{{{ lab_http_port }}}}/health\", body: ok}}\n"
    );
    let mut roll = Roll::new(&lab, &spec);
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(on(&lab, "nginx-new"), names(1..=10));
    assert!(
        ran.stdout.contains("result: succeeded: 10 upgraded"),
        "{}",
        ran.stdout
    );
    let j = &ran.journal;
    assert_eq!(j[0]["event"], "run_started");
    assert_eq!(
        j[0]["binary_sha256"],
        sha(&lab.dir.join("versions/nginx-new")).as_str()
    );
    let waves: Vec<_> = events(j, "wave_started")
        .iter()
        .map(|w| w["hosts"].clone())
        .collect();
    assert_eq!(
        waves,
        [
            serde_json::json!(["lab-01"]),
            serde_json::json!(["lab-02", "lab-03", "lab-04"]),
            serde_json::json!(["lab-05", "lab-06", "lab-07"]),
            serde_json::json!(["lab-08", "lab-09", "lab-10"]),
        ]
    );
    // Barriers: no host of wave k+1 starts before every host of wave k finished.
    let position =
        |pred: &dyn Fn(&serde_json::Value) -> bool| j.iter().position(pred).expect("event");
    for w in 0..3 {
        let next_start = position(&|e| e["event"] == "wave_started" && e["wave"] == w + 1);
        let last_finish = j
            .iter()
            .rposition(|e| e["event"] == "host_finished" && e["wave"] == w)
            .expect("finished");
        assert!(last_finish < next_start, "wave {w} overlaps wave {}", w + 1);
    }
    assert_eq!(j.last().map(|e| e["event"].clone()), Some("summary".into()));
    // A second run skips every host.
    let again = roll.run("roll", &[]);
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("10 skipped"), "{}", again.stdout);
}

#[test]
fn a_failing_canary_touches_no_other_host() {
    let lab = Lab::up(4);
    let spec = format!(
        "{BASE}gates:\n  - local: {{run: \"test {{{{ inventory_hostname }}}} != lab-01\", retries: 1}}\n"
    );
    let mut roll = Roll::new(&lab, &spec);
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(on(&lab, "nginx-new").is_empty(), "the canary is restored");
    let touched: Vec<_> = events(&ran.journal, "host_finished")
        .iter()
        .map(|e| e["host"].clone())
        .collect();
    assert_eq!(touched, ["lab-01"]);
    assert!(
        ran.stdout
            .contains("lab-01: rolled_back: gate failed: gate local"),
        "{}",
        ran.stdout
    );
}

fn fail_lab03(extra: &str) -> String {
    format!(
        "{BASE}{extra}gates:\n  - local: {{run: \"test {{{{ inventory_hostname }}}} != lab-03\", retries: 1}}\n"
    )
}

#[test]
fn a_failure_in_the_second_batch_with_batch_rollback() {
    let lab = Lab::up(10);
    let mut roll = Roll::new(&lab, &fail_lab03("max_failed: 0\nrollback: batch\n"));
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    // The canary stays upgraded; the failing batch is restored; later batches untouched.
    assert_eq!(on(&lab, "nginx-new"), ["lab-01"]);
    assert_eq!(events(&ran.journal, "halted").len(), 1);
    let started: Vec<_> = events(&ran.journal, "wave_started")
        .iter()
        .map(|w| w["wave"].clone())
        .collect();
    assert_eq!(started, [0, 1]);
    let summary = events(&ran.journal, "summary")[0];
    assert_eq!(
        summary["hosts"]["untouched"],
        serde_json::json!(names(5..=10))
    );
}

#[test]
fn a_failure_in_the_second_batch_with_rollout_rollback() {
    let lab = Lab::up(7);
    let mut roll = Roll::new(&lab, &fail_lab03("max_failed: 0\nrollback: rollout\n"));
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        on(&lab, "nginx-new").is_empty(),
        "every touched host is restored"
    );
}

#[test]
fn a_budget_of_one_goes_on_past_one_failure() {
    let lab = Lab::up(7);
    let mut roll = Roll::new(&lab, &fail_lab03("max_failed: 1\n"));
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 1, "one host failed: {}", ran.stdout);
    let mut expected = names(1..=7);
    expected.retain(|n| n != "lab-03");
    assert_eq!(on(&lab, "nginx-new"), expected);
    assert!(events(&ran.journal, "halted").is_empty());
}

#[test]
fn until_rollout_passes_restores_the_whole_fleet_on_a_late_failure() {
    let lab = Lab::up(7);
    let spec = format!(
        "{BASE}keep_old_master: until_rollout_passes\nrollback: rollout\ngates:\n  - local: {{run: \"test {{{{ inventory_hostname }}}} != lab-06\", retries: 1}}\n"
    );
    let mut roll = Roll::new(&lab, &spec);
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    // `on` also checks that every host is steady: no host is left with two masters.
    assert!(on(&lab, "nginx-new").is_empty());
    let steps: Vec<_> = events(&ran.journal, "step")
        .into_iter()
        .filter(|e| e["host"] == "lab-01" && e["status"] == "done")
        .map(|e| e["step"].as_str().unwrap_or("").to_owned())
        .collect();
    // lab-01 was never committed: its rollback was HUP/QUIT, not a second upgrade.
    assert!(!steps.contains(&"commit".to_owned()), "{steps:?}");
    assert!(steps.contains(&"revert".to_owned()), "{steps:?}");
}

#[test]
fn a_window_closing_mid_rollout_pauses_and_a_rerun_finishes() {
    let lab = Lab::up(4);
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let into_minute = now.second() as u64;
    let spec = format!(
        "hosts: lab\ncanary: {{hosts: 1, then: 4s}}\nbatches: [3]\nparallel: 3\nwindows:\n  - {{days: [mon, tue, wed, thu, fri, sat, sun], start: \"{:02}:{:02}\", duration: {}s, tz: UTC}}\n",
        now.hour(),
        now.minute(),
        into_minute + 3
    );
    let mut roll = Roll::new(&lab, &spec);
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 4, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(on(&lab, "nginx-new"), ["lab-01"]);
    assert_eq!(events(&ran.journal, "summary")[0]["result"], "paused");
    let again = roll.run("roll", &["--ignore-windows"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(on(&lab, "nginx-new"), names(1..=4));
    let summary = events(&again.journal, "summary")[0];
    assert_eq!(summary["hosts"]["skipped"], serde_json::json!(["lab-01"]));
}

fn wait_for(journal: &Path, limit: Duration, pred: impl Fn(&serde_json::Value) -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if read_journal(journal).iter().any(&pred) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sigint_mid_wave_leaves_no_two_masters_and_a_rerun_completes() {
    let lab = Lab::up(8);
    let mut roll = Roll::new(&lab, &format!("{BASE}soak: 1s\n"));
    let (mut child, journal) = roll.spawn(&[]);
    assert!(wait_for(&journal, Duration::from_secs(30), |e| e["event"]
        == "step"
        && e["step"] == "winch"
        && e["host"] != "lab-01"));
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let hosts = fleet(&lab);
    assert!(hosts.iter().all(|(_, s, _)| s == "steady"), "{hosts:?}");
    let again = roll.run("roll", &[]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(on(&lab, "nginx-new"), names(1..=8));
}

#[test]
fn a_controller_killed_mid_wave_converges_on_the_next_run() {
    let lab = Lab::up(8);
    let mut roll = Roll::new(&lab, &format!("{BASE}soak: 2s\n"));
    let (mut child, journal) = roll.spawn(&[]);
    assert!(wait_for(&journal, Duration::from_secs(30), |e| e["event"]
        == "step"
        && e["step"] == "gate"
        && e["status"] == "started"
        && e["host"] != "lab-01"));
    let _ = child.kill();
    let _ = child.wait();
    let again = roll.run("roll", &[]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(on(&lab, "nginx-new"), names(1..=8));
}

#[test]
fn pause_without_a_terminal_or_yes_is_refused_before_anything() {
    let lab = Lab::up(2);
    let mut roll = Roll::new(&lab, "hosts: lab\ncanary: {hosts: 1, then: pause}\n");
    let ran = roll.run("roll", &[]);
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("no terminal to ask: give --yes"),
        "{}",
        ran.stderr
    );
    assert!(ran.journal.is_empty(), "nothing started");
    assert!(on(&lab, "nginx-new").is_empty());
    let ran = roll.run("roll", &["--yes"]);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
}

#[test]
fn rollback_takes_the_fleet_back_and_leaves_others_alone() {
    let lab = Lab::up(4);
    let mut roll = Roll::new(&lab, BASE);
    assert_eq!(roll.run("roll", &["--limit", "lab-01:lab-02"]).code, 0);
    assert_eq!(on(&lab, "nginx-new"), ["lab-01", "lab-02"]);
    let back = roll.run("rollback", &[]);
    assert_eq!(back.code, 0, "{}\n{}", back.stdout, back.stderr);
    assert!(on(&lab, "nginx-new").is_empty());
    let summary = events(&back.journal, "summary")[0];
    assert_eq!(
        summary["hosts"]["rolled_back"],
        serde_json::json!(["lab-01", "lab-02"])
    );
    assert_eq!(
        summary["hosts"]["skipped"],
        serde_json::json!(["lab-03", "lab-04"])
    );
}
