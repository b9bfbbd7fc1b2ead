//! ngfleet on a real Debian 12 host booted with systemd as PID 1 (`debian_lab!`): Debian's
//! packaged nginx under its packaged `nginx.service` (`Type=forking`,
//! `PIDFile=/run/nginx.pid`), reached over real SSH as the non-root `deploy` with
//! `ansible_become: true`, driven by the real `ngfleet` binary.
//!
//! After `status`, `roll`, a rollback while two masters live and a rollback after commit,
//! systemd must still own the service: `systemctl is-active nginx` says `active`, its
//! `MainPID` is the pid in `/run/nginx.pid` (and the master `status` reports), the master and
//! `/usr/sbin/nginx` are the version they should be, and `systemctl reload nginx` (new
//! workers under the same master) and `systemctl restart nginx` (a new master, still followed
//! by systemd) work. The next operation then starts from the master systemd restarted.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Output, Running, rollout, status};
use crate::lab::{Kind, Lab, wait_until};

const OLD: &str = "nginx-old";
const NEW: &str = "nginx-new";
const HOST: &str = "lab-01";

/// Generous for a loaded 2-core machine; the upgrade steps take milliseconds here.
const SPEC: &str = "\
hosts: lab
timeouts: {connect: 10s, command: 30s, start: 10s, drain: 20s, quit: 10s}
";

fn sha(lab: &Lab, version: &str) -> String {
    ngfleet::inputs::sha256_file(&lab.dir.join("versions").join(version)).expect("sha256")
}

/// Runs `script` with `sh -c` inside the container, as root; its stdout. Fails the test when it
/// fails.
#[track_caller]
fn inside(lab: &Lab, script: &str) -> String {
    let out = lab.inside(HOST, &["sh", "-c", script]);
    assert!(
        out.status.success(),
        "in the container: `{script}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// nginx as systemd and the container's /proc see it, in one look.
#[derive(Debug, Default)]
struct Service {
    /// `systemctl is-active nginx`.
    active: String,
    /// `systemctl show -p MainPID --value nginx`.
    main_pid: u32,
    /// The pid in /run/nginx.pid.
    pid_file: u32,
    /// The pid in /run/nginx.pid.oldbin, if there is one.
    oldbin: Option<u32>,
    /// sha256 of the master's executable, and of /usr/sbin/nginx.
    running: String,
    on_disk: String,
    /// The master's children (its workers).
    workers: Vec<u32>,
    /// How many processes are titled `nginx: master process`.
    masters: usize,
}

/// Reads [`Service`] inside the container.
#[track_caller]
fn service(lab: &Lab) -> Service {
    let text = inside(
        lab,
        "echo active $(systemctl is-active nginx)
         echo main $(systemctl show -p MainPID --value nginx)
         p=$(cat /run/nginx.pid 2>/dev/null)
         echo pidfile $p
         [ -e /run/nginx.pid.oldbin ] && echo oldbin $(cat /run/nginx.pid.oldbin)
         [ -n \"$p\" ] && echo running $(sha256sum </proc/$p/exe | cut -d' ' -f1)
         echo disk $(sha256sum </usr/sbin/nginx | cut -d' ' -f1)
         [ -n \"$p\" ] && echo workers $(cat /proc/$p/task/$p/children)
         echo masters $(pgrep -c -f '^nginx: master process')
         true",
    );
    let mut s = Service::default();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        let pid = || value.parse::<u32>().unwrap_or(0);
        match key {
            "active" => s.active = value.to_owned(),
            "main" => s.main_pid = pid(),
            "pidfile" => s.pid_file = pid(),
            "oldbin" => s.oldbin = Some(pid()),
            "running" => s.running = value.to_owned(),
            "disk" => s.on_disk = value.to_owned(),
            "workers" => {
                s.workers = value
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
            }
            "masters" => s.masters = pid() as usize,
            _ => {}
        }
    }
    s
}

/// The one host of `ngfleet status --json`.
#[track_caller]
fn status_of(lab: &Lab) -> Value {
    let v = status(lab);
    v["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == HOST))
        .cloned()
        .unwrap_or_else(|| panic!("no {HOST} in {v}"))
}

/// systemd owns one steady nginx running `version` from /usr/sbin/nginx, and `ngfleet status`
/// agrees.
#[track_caller]
fn assert_steady_under_systemd(lab: &Lab, version: &str, when: &str) -> Service {
    let s = service(lab);
    assert_eq!(
        s.active, "active",
        "{when}: systemctl is-active nginx: {s:?}"
    );
    assert!(s.main_pid > 0, "{when}: MainPID: {s:?}");
    assert_eq!(
        s.main_pid, s.pid_file,
        "{when}: systemd's MainPID is the pid in /run/nginx.pid: {s:?}"
    );
    assert_eq!(s.oldbin, None, "{when}: no /run/nginx.pid.oldbin: {s:?}");
    assert_eq!(s.masters, 1, "{when}: one master: {s:?}");
    assert!(
        !s.workers.is_empty(),
        "{when}: the master has workers: {s:?}"
    );
    assert_eq!(
        s.running,
        sha(lab, version),
        "{when}: the master runs {version}: {s:?}"
    );
    assert_eq!(
        s.on_disk,
        sha(lab, version),
        "{when}: /usr/sbin/nginx is {version}: {s:?}"
    );
    let st = status_of(lab);
    assert_eq!(st["state"], "steady", "{when}: ngfleet status: {st}");
    assert_eq!(st["master_pid"], s.main_pid, "{when}: ngfleet status: {st}");
    assert_eq!(st["exe_sha256"], sha(lab, version).as_str(), "{when}: {st}");
    assert_eq!(
        st["version"],
        format!("nginx/{}", lab.version(version)).as_str(),
        "{when}: {st}"
    );
    s
}

/// After an operation: systemd owns the service ([`assert_steady_under_systemd`]), then
/// `systemctl reload nginx` gives the same master new workers and `systemctl restart nginx`
/// a new master that systemd follows, still running `version`.
#[track_caller]
fn assert_systemd_in_charge(lab: &Lab, version: &str, when: &str) {
    let before = assert_steady_under_systemd(lab, version, when);

    inside(lab, "systemctl reload nginx");
    let mut after = Service::default();
    let reloaded = wait_until(Duration::from_secs(10), || {
        after = service(lab);
        after.main_pid == before.main_pid
            && !after.workers.is_empty()
            && after.workers.iter().all(|w| !before.workers.contains(w))
    });
    assert!(
        reloaded,
        "{when}: systemctl reload nginx: the same master with new workers: before {before:?}, after {after:?}"
    );
    assert_steady_under_systemd(lab, version, &format!("{when}, after systemctl reload"));

    inside(lab, "systemctl restart nginx");
    let restarted =
        assert_steady_under_systemd(lab, version, &format!("{when}, after systemctl restart"));
    assert_ne!(
        restarted.main_pid, before.main_pid,
        "{when}: systemctl restart nginx started a new master: {restarted:?}"
    );
}

#[track_caller]
fn assert_only(ran: &Output, list: &str) {
    assert_eq!(ran.hosts(list), [HOST], "{list}\n{}", ran.show());
}

/// `status`, `roll` (its gate sees the new version serve) and a rollback after commit, each
/// leaving systemd in charge of nginx.
#[test]
fn status_roll_and_rollback_after_commit_keep_systemd_in_charge() {
    let lab = debian_lab!(1);
    assert_systemd_in_charge(&lab, OLD, "before any run");

    let spec = format!(
        "{SPEC}gates:\n  - http: {{url: \"http://127.0.0.1:80/\", status: 200, via: ssh, header: {{Server: \"nginx/{}\"}}}}\n",
        lab.version(NEW)
    );
    let ran = rollout(&lab, &spec, "roll").run();
    ran.expect_result("succeeded");
    assert_only(&ran, "upgraded");
    assert_systemd_in_charge(&lab, NEW, "after roll");

    let back = rollout(&lab, SPEC, "rollback").run();
    back.expect_result("succeeded");
    assert_only(&back, "rolled_back");
    assert_systemd_in_charge(&lab, OLD, "after rollback after commit");
}

fn is_step(e: &Value, step: &str, state: &str) -> bool {
    e["event"] == "step"
        && e["host"] == HOST
        && e["status"] == state
        && e["step"].as_str().is_some_and(|s| s.starts_with(step))
}

/// Two rollbacks while both masters live: a failing gate turns `roll` back, and `rollback`
/// undoes an upgrade whose controller was killed in its soak. Meanwhile systemd keeps
/// following the old master; afterwards it is in charge of nginx as before.
#[test]
fn rollbacks_while_two_masters_live_keep_systemd_in_charge() {
    let lab = debian_lab!(1);
    let old = assert_steady_under_systemd(&lab, OLD, "before any run");

    // A gate that fails after WINCH: the roll turns back (HUP the old master, QUIT the new).
    let failing = format!("{SPEC}gates:\n  - command: {{run: \"false\", retries: 1}}\n");
    let ran = rollout(&lab, &failing, "roll").code(1).run();
    ran.expect_result("failed");
    assert_only(&ran, "rolled_back");
    assert!(
        ran.events("step")
            .iter()
            .any(|e| is_step(e, "winch", "done")),
        "the gate failed with both masters alive (after WINCH)\n{}",
        ran.show()
    );
    let s = service(&lab);
    assert_eq!(
        s.main_pid, old.main_pid,
        "the old master stayed systemd's main process through the turn-back: {s:?}"
    );
    assert_systemd_in_charge(&lab, OLD, "after the gate turned the roll back");

    // A roll killed in its soak (two masters: the new one serving, the old one without
    // workers), then `rollback`.
    let main = service(&lab).main_pid;
    let soaking = format!("{SPEC}soak: 120s\ngates:\n  - command: \"true\"\n");
    let mut run: Running = rollout(&lab, &soaking, "roll").spawn();
    let gating = run.wait_for(Duration::from_secs(60), |e| is_step(e, "gate", "started"));
    let mut mid = Service::default();
    let two = gating
        && wait_until(Duration::from_secs(10), || {
            mid = service(&lab);
            mid.masters == 2 && mid.oldbin.is_some()
        });
    let killed = run.kill();
    assert!(
        two,
        "the roll reached its soak with two masters: {mid:?}\n{}",
        killed.show()
    );
    assert_eq!(mid.active, "active", "mid-upgrade: {mid:?}");
    assert_eq!(
        (mid.main_pid, mid.oldbin),
        (main, Some(main)),
        "while both masters live, systemd's MainPID is the old master (/run/nginx.pid.oldbin): {mid:?}"
    );
    assert_eq!(
        mid.running,
        sha(&lab, NEW),
        "the new master runs new: {mid:?}"
    );

    let back = rollout(&lab, SPEC, "rollback").run();
    back.expect_result("succeeded");
    assert_only(&back, "rolled_back");
    let s = assert_steady_under_systemd(&lab, OLD, "after rollback of the interrupted roll");
    assert_eq!(
        s.main_pid, main,
        "the old master, systemd's main process all along, serves again: {s:?}"
    );
    assert_systemd_in_charge(&lab, OLD, "after rollback of the interrupted roll");
}

/// ngfleet reads the unit from the real systemd: a `nginx.service` whose `PIDFile=` is not the
/// inventory's `nginx_pid_file` (systemd would lose the new master after the old one exits) is
/// refused before anything changes, and rolls once the unit is right again.
#[test]
fn a_unit_systemd_would_not_follow_is_refused() {
    let lab = debian_lab!(1);
    refuses_a_unit_systemd_would_not_follow(&lab);
}

/// The same under the legacy cgroup v1 layout, where `/proc/PID/cgroup` names the unit only on
/// its `name=systemd` line. (ngfleet read only the cgroup v2 line: it found no unit there,
/// skipped the check, and the roll's QUIT made systemd stop the service, new master and all.)
#[test]
fn on_cgroup_v1_a_unit_systemd_would_not_follow_is_refused() {
    let Some(lab) = Lab::up_kind(1, Kind::DebianCgroupV1) else {
        return;
    };
    let cgroup = inside(&lab, "cat /proc/$(cat /run/nginx.pid)/cgroup");
    assert!(
        cgroup
            .lines()
            .any(|l| l.ends_with(":name=systemd:/system.slice/nginx.service"))
            && !cgroup.lines().any(|l| l.starts_with("0::/system.slice")),
        "the master's cgroups are the v1 layout: {cgroup}"
    );
    refuses_a_unit_systemd_would_not_follow(&lab);
}

#[track_caller]
fn refuses_a_unit_systemd_would_not_follow(lab: &Lab) {
    let before = assert_steady_under_systemd(lab, OLD, "before any run");
    inside(
        lab,
        "mkdir -p /etc/systemd/system/nginx.service.d
         printf '[Service]\\nPIDFile=/run/nginx-elsewhere.pid\\n' >/etc/systemd/system/nginx.service.d/pidfile.conf
         systemctl daemon-reload",
    );
    assert_eq!(
        inside(lab, "systemctl show -p PIDFile --value nginx").trim(),
        "/run/nginx-elsewhere.pid"
    );
    let ran = rollout(lab, SPEC, "roll").code(1).run();
    ran.expect_result("failed");
    let error = ran.finished(HOST)["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        error.contains("nginx.service") && error.contains("/run/nginx-elsewhere.pid"),
        "the refusal names the unit and its PIDFile: {error:?}\n{}",
        ran.show()
    );
    let s = service(lab);
    assert_eq!(
        (
            s.main_pid,
            s.pid_file,
            s.running.as_str(),
            s.on_disk.as_str()
        ),
        (
            before.main_pid,
            before.pid_file,
            before.running.as_str(),
            before.on_disk.as_str()
        ),
        "nothing changed: {s:?}"
    );

    inside(
        lab,
        "rm -r /etc/systemd/system/nginx.service.d && systemctl daemon-reload",
    );
    let ran = rollout(lab, SPEC, "roll").run();
    ran.expect_result("succeeded");
    assert_only(&ran, "upgraded");
    assert_systemd_in_charge(lab, NEW, "after roll with the unit put right");
}
