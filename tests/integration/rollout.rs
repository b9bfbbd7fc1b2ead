//! `ngfleet roll` and `rollback` on lab fleets: waves and barriers, the failure budget, the
//! rollback scopes, deferred commits, windows, interruption and a killed controller.

use std::path::Path;
use std::time::Duration;

use crate::harness::{Test, rollout as ngfleet, status};
use crate::lab::Lab;

fn sha(path: &Path) -> String {
    ngfleet::inputs::sha256_file(path).expect("sha256")
}

/// (name, state, running sha) of every host, from `ngfleet status --json`.
fn fleet(lab: &Lab) -> Vec<(String, String, String)> {
    let v = status(lab);
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

const BASE: &str = "\
hosts: lab
canary: {hosts: 1, then: continue}
batches: [3]
parallel: 3
timeouts: {connect: 5s, command: 20s, start: 5s, drain: 10s, quit: 5s}
";

#[test]
fn a_full_rollout_respects_the_order_and_the_wave_barriers() {
    let lab = lab!(10);
    let spec = format!(
        "{BASE}gates:\n  - http: {{url: \"http://127.0.0.1:{{{{ lab_http_port }}}}/health\", body: ok}}\n"
    );
    let ran = ngfleet(&lab, &spec, "roll").run();
    assert_eq!(on(&lab, "nginx-new"), names(1..=10));
    assert!(
        ran.stdout.contains("result: succeeded: 10 upgraded"),
        "{}",
        ran.stdout
    );
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("upgraded"), names(1..=10));
    let j = &ran.journal;
    assert_eq!(j[0]["event"], "run_started");
    assert_eq!(
        j[0]["binary_sha256"],
        sha(&lab.dir.join("versions/nginx-new")).as_str()
    );
    let waves: Vec<_> = ran
        .events("wave_started")
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
    // From a host's turn on, one remote operation per command and per gate check: install
    // + USR2 + WINCH (nothing is checked with both generations serving, so WINCH follows
    // USR2 on the host), the gate after WINCH, QUIT, the gate after commit. The host waits
    // for itself; the controller never has to poll it on a clean roll.
    for e in ran.events("host_finished") {
        assert_eq!(
            e["round_trips"]["critical"], 4,
            "{} went back and forth: {e}",
            e["host"]
        );
    }
    // A second run skips every host.
    let again = ngfleet(&lab, &spec, "roll").run();
    assert!(again.stdout.contains("10 skipped"), "{}", again.stdout);
    again.expect_result("succeeded");
    assert_eq!(again.hosts("skipped"), names(1..=10));
}

#[test]
fn a_failing_canary_touches_no_other_host() {
    let lab = lab!(4);
    let spec = format!(
        "{BASE}gates:\n  - local: {{run: \"test {{{{ inventory_hostname }}}} != lab-01\", retries: 1}}\n"
    );
    let ran = ngfleet(&lab, &spec, "roll").code(1).run();
    assert!(on(&lab, "nginx-new").is_empty(), "the canary is restored");
    let touched: Vec<_> = ran
        .events("host_finished")
        .iter()
        .map(|e| e["host"].clone())
        .collect();
    assert_eq!(touched, ["lab-01"]);
    assert_eq!(ran.result_of("lab-01"), "rolled_back");
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
    let lab = lab!(10);
    let ran = ngfleet(
        &lab,
        &fail_lab03("max_failed: 0\nrollback: batch\n"),
        "roll",
    )
    .code(1)
    .run();
    // The canary stays upgraded; the failing batch is restored; later batches untouched.
    assert_eq!(on(&lab, "nginx-new"), ["lab-01"]);
    assert_eq!(ran.events("halted").len(), 1);
    let started: Vec<_> = ran
        .events("wave_started")
        .iter()
        .map(|w| w["wave"].clone())
        .collect();
    assert_eq!(started, [0, 1]);
    let summary = ran.summary();
    assert_eq!(
        summary["hosts"]["untouched"],
        serde_json::json!(names(5..=10))
    );
}

#[test]
fn a_failure_in_the_second_batch_with_rollout_rollback() {
    let lab = lab!(7);
    let ran = ngfleet(
        &lab,
        &fail_lab03("max_failed: 0\nrollback: rollout\n"),
        "roll",
    )
    .code(1)
    .run();
    assert!(
        on(&lab, "nginx-new").is_empty(),
        "every touched host is restored"
    );
    ran.expect_result("failed");
    assert!(ran.hosts("upgraded").is_empty(), "{}", ran.show());
}

#[test]
fn a_budget_of_one_goes_on_past_one_failure() {
    let lab = lab!(7);
    let ran = ngfleet(&lab, &fail_lab03("max_failed: 1\n"), "roll")
        .code(1)
        .run();
    let mut expected = names(1..=7);
    expected.retain(|n| n != "lab-03");
    assert_eq!(on(&lab, "nginx-new"), expected);
    assert!(ran.events("halted").is_empty());
    assert_eq!(ran.hosts("upgraded"), expected, "{}", ran.show());
}

#[test]
fn until_rollout_passes_restores_the_whole_fleet_on_a_late_failure() {
    let lab = lab!(7);
    let spec = format!(
        "{BASE}keep_old_master: until_rollout_passes\nrollback: rollout\ngates:\n  - local: {{run: \"test {{{{ inventory_hostname }}}} != lab-06\", retries: 1}}\n"
    );
    let ran = ngfleet(&lab, &spec, "roll").code(1).run();
    // `on` also checks that every host is steady: no host is left with two masters.
    assert!(on(&lab, "nginx-new").is_empty());
    let steps: Vec<_> = ran
        .events("step")
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
    let lab = lab!(4);
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let into_minute = now.second() as u64;
    let spec = format!(
        "hosts: lab\ncanary: {{hosts: 1, then: 4s}}\nbatches: [3]\nparallel: 3\nwindows:\n  - {{days: [mon, tue, wed, thu, fri, sat, sun], start: \"{:02}:{:02}\", duration: {}s, tz: UTC}}\n",
        now.hour(),
        now.minute(),
        into_minute + 3
    );
    let ran = ngfleet(&lab, &spec, "roll").code(4).run();
    assert_eq!(on(&lab, "nginx-new"), ["lab-01"]);
    ran.expect_result("paused");
    let again = ngfleet(&lab, &spec, "roll").arg("--ignore-windows").run();
    assert_eq!(on(&lab, "nginx-new"), names(1..=4));
    let summary = again.summary();
    assert_eq!(summary["hosts"]["skipped"], serde_json::json!(["lab-01"]));
}

#[test]
fn sigint_mid_wave_leaves_no_two_masters_and_a_rerun_completes() {
    let lab = lab!(8);
    let spec = format!("{BASE}soak: 1s\n");
    let mut run = ngfleet(&lab, &spec, "roll").code(130).spawn();
    assert!(
        run.wait_for(Duration::from_secs(30), |e| e["event"] == "step"
            && e["step"] == "winch"
            && e["host"] != "lab-01")
    );
    run.signal("INT");
    let stopped = run.wait();
    stopped.expect_result("interrupted");
    let hosts = fleet(&lab);
    assert!(hosts.iter().all(|(_, s, _)| s == "steady"), "{hosts:?}");
    let again = ngfleet(&lab, &spec, "roll").run();
    again.expect_result("succeeded");
    assert_eq!(on(&lab, "nginx-new"), names(1..=8));
}

#[test]
fn a_second_sigint_ends_at_once_names_the_hosts_in_flight_and_a_rerun_completes() {
    let lab = lab!(8);
    let spec = format!("{BASE}soak: 20s\n");
    let mut run = ngfleet(&lab, &spec, "roll").code(130).spawn();
    assert!(
        run.wait_for(Duration::from_secs(60), |e| e["event"] == "step"
            && e["step"] == "gate"
            && e["status"] == "started"
            && e["host"] != "lab-01")
    );
    run.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    run.signal("INT");
    let started = std::time::Instant::now();
    let stopped = run.wait();
    // It did not wait for the 20 s soak of the hosts in flight.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{}",
        stopped.show()
    );
    stopped.expect_result("interrupted");
    let abandoned = stopped.hosts("abandoned");
    assert!(!abandoned.is_empty(), "{}", stopped.show());
    assert!(
        !abandoned.contains(&"lab-01".to_owned()),
        "{}",
        stopped.show()
    );
    assert!(
        stopped.stderr.contains("interrupted twice")
            && abandoned
                .iter()
                .all(|h| stopped.stderr.contains(h.as_str())),
        "{}",
        stopped.show()
    );
    let again = ngfleet(&lab, &spec.replace("soak: 20s", "soak: 1s"), "roll").run();
    again.expect_result("succeeded");
    assert_eq!(on(&lab, "nginx-new"), names(1..=8));
}

#[test]
fn a_controller_killed_mid_wave_converges_on_the_next_run() {
    let lab = lab!(8);
    let spec = format!("{BASE}soak: 2s\n");
    let mut run = ngfleet(&lab, &spec, "roll").spawn();
    assert!(
        run.wait_for(Duration::from_secs(30), |e| e["event"] == "step"
            && e["step"] == "gate"
            && e["status"] == "started"
            && e["host"] != "lab-01")
    );
    let killed = run.kill();
    assert_eq!(killed.code, None, "killed by SIGKILL\n{}", killed.show());
    let again = ngfleet(&lab, &spec, "roll").run();
    again.expect_result("succeeded");
    assert_eq!(on(&lab, "nginx-new"), names(1..=8));
}

#[test]
fn pause_without_a_terminal_or_yes_is_refused_before_anything() {
    let lab = lab!(2);
    let spec = "hosts: lab\ncanary: {hosts: 1, then: pause}\n";
    let ran = ngfleet(&lab, spec, "roll").code(2).run();
    assert!(
        ran.stderr.contains("no terminal to ask: give --yes"),
        "{}",
        ran.stderr
    );
    assert!(ran.journal.is_empty(), "nothing started");
    assert!(!ran.path("run.jsonl").exists(), "no journal was created");
    assert!(on(&lab, "nginx-new").is_empty());
    let ran = ngfleet(&lab, spec, "roll").arg("--yes").run();
    ran.expect_result("succeeded");
    assert_eq!(ran.hosts("upgraded"), ["lab-01", "lab-02"]);
}

#[test]
fn rollback_takes_the_fleet_back_and_leaves_others_alone() {
    let lab = lab!(4);
    let rolled = ngfleet(&lab, BASE, "roll")
        .args(["--limit", "lab-01:lab-02"])
        .run();
    assert_eq!(rolled.hosts("upgraded"), ["lab-01", "lab-02"]);
    assert_eq!(on(&lab, "nginx-new"), ["lab-01", "lab-02"]);
    let back = ngfleet(&lab, BASE, "rollback").run();
    assert!(on(&lab, "nginx-new").is_empty());
    let summary = back.summary();
    assert_eq!(
        summary["hosts"]["rolled_back"],
        serde_json::json!(["lab-01", "lab-02"])
    );
    assert_eq!(
        summary["hosts"]["skipped"],
        serde_json::json!(["lab-03", "lab-04"])
    );
}

#[test]
fn roll_check_says_what_a_roll_would_do_and_changes_nothing() {
    let lab = lab!(2);
    let before = fleet(&lab);
    let check = |binary: &str, code: i32| {
        Test::new()
            .lab(&lab)
            .spec(BASE)
            .binary(binary)
            .args(["roll", "--check", "--json"])
            .code(code)
            .run()
    };
    let ok = check("nginx-new", 0);
    let v: serde_json::Value = serde_json::from_str(ok.stdout.trim()).expect("json");
    assert_eq!(v["counts"]["would_upgrade"], 2, "{}", ok.show());
    // Nothing changed: the same masters on the same binary, no staged file left, no lock held.
    assert_eq!(fleet(&lab), before);
    for h in &lab.hosts {
        let sbin = std::fs::read_dir(lab.dir.join("hosts").join(&h.name).join("sbin"))
            .expect("sbin")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        assert!(
            sbin.iter().all(|f| !f.contains("stage")),
            "{}: {sbin:?}",
            h.name
        );
    }
    let bad = check("nginx-exit1", 1);
    let v: serde_json::Value = serde_json::from_str(bad.stdout.trim()).expect("json");
    assert_eq!(v["counts"]["refused"], 2, "{}", bad.show());
    assert_eq!(v["hosts"][0]["verdict"], "refused");
    assert_eq!(fleet(&lab), before);
    // The locks were let go: a roll goes through.
    ngfleet(&lab, BASE, "roll").run().expect_result("succeeded");
    assert_eq!(on(&lab, "nginx-new"), names(1..=2));
}
