//! Health gates from a real spec against lab hosts: every kind passing, and each failing the
//! way it should.

use std::fs;
use std::time::Duration;

use ngfleet::gate::runner::SpecGates;
use ngfleet::host::event::{Event, Status, Step};
use ngfleet::model::spec::Spec;

use crate::harness::Test;
use crate::lab::Lab;
use crate::upgrade::{
    assert_upgraded, new_version, rolled_back, run_with_gate, run_with_gate_and_events, served,
    snapshot,
};

fn gates(text: &str) -> SpecGates {
    let spec = Spec::parse("spec.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    SpecGates::new(spec.pre, spec.gates, spec.soak.get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_version_passes_every_kind() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let v = new_version(&lab);
    let spec = format!(
        "\
pre:
  - tcp: {{port: 80}}
gates:
  - http: {{url: \"http://127.0.0.1:80/health\", status: 200, body: ok}}
  - http: {{url: \"http://{{{{ ansible_host }}}}:{{{{ lab_http_port }}}}/\", via: direct, status: [200, 301], body_regex: \"^{v} lab-01 \", header: {{Server: \"nginx/{v}\"}}}}
  - tcp: {{port: 80}}
  - command: \"test -s {prefix}/conf/nginx.conf\"
  - local: \"test \\\"$inventory_hostname\\\" = lab-01 && test \\\"$lab_http_port\\\" = {port}\"
  - error_log: {{path: \"{prefix}/logs/error.log\"}}
  - version: \"nginx/{v}\"
",
        prefix = h.dir.join("nginx").display(),
        port = http_port(&lab),
    );
    let run = run_with_gate(&lab, "nginx-new", &gates(&spec)).await;
    assert_upgraded(&run);
}

fn http_port(lab: &Lab) -> String {
    fs::read_to_string(lab.dir.join("hosts.tsv"))
        .expect("hosts.tsv")
        .lines()
        .find(|l| l.starts_with("lab-01"))
        .and_then(|l| l.split('\t').nth(4))
        .expect("http port")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_version_fails_after_winch_and_the_old_one_serves_again() {
    let lab = lab!(1);
    let before = snapshot(&lab);
    let spec = "gates:\n  - http: {url: \"http://127.0.0.1:80/health\", status: 200, retries: 2, interval: 200ms}\n";
    let run = run_with_gate(&lab, "nginx-unhealthy-elf", &gates(spec)).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains(
            "gate http http://127.0.0.1:80/health: got 503 (expected 200) on 2/2 tries over"
        ),
        "{reason}"
    );
    assert_eq!(snapshot(&lab), before);
    assert!(!served(&lab, "lab-01").starts_with(&new_version(&lab)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_mismatch_is_caught() {
    let lab = lab!(1);
    let spec = "gates:\n  - version: {expect: \"nginx/0.0.1\", retries: 1}\n";
    let run = run_with_gate(&lab, "nginx-new", &gates(spec)).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains(&format!(
            "gate version nginx/0.0.1: reports \"nginx/{}\"",
            new_version(&lab)
        )),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_log_gate_sees_only_lines_written_after_the_upgrade_began() {
    let lab = lab!(1);
    let log = lab.host("lab-01").dir.join("nginx/logs/error.log");
    let mut text = fs::read_to_string(&log).unwrap_or_default();
    text.push_str("2026/01/01 00:00:00 [emerg] 1#1: an old problem\n");
    fs::write(&log, &text).expect("write log");
    let spec = format!(
        "gates:\n  - error_log: {{path: \"{}\", retries: 1}}\n",
        log.display()
    );
    let run = run_with_gate(&lab, "nginx-new", &gates(&spec)).await;
    assert_upgraded(&run);

    // Now an [emerg] written after this upgrade began (by a gate that runs before it).
    let spec = format!(
        "gates:\n  - command: \"echo '2026/01/01 00:00:01 [emerg] 2#2: a new problem' >> {log}\"\n  - error_log: {{path: \"{log}\", retries: 1}}\n",
        log = log.display()
    );
    let run = run_with_gate(&lab, "nginx-new2", &gates(&spec)).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains("a new problem") && !reason.contains("an old problem"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_ssh_reaches_nginx_that_listens_only_on_the_host_loopback() {
    let lab = lab!(1);
    // The namespace lab (Lab::up requires root): nginx on :80 of the host's own address.
    assert_eq!(http_port(&lab), "80", "a namespace lab");
    let h = lab.host("lab-01").clone();
    let conf = h.dir.join("nginx/conf/nginx.conf");
    let text = fs::read_to_string(&conf).expect("conf");
    let local_only = text.replace(
        "listen 80 default_server;",
        "listen 127.0.0.1:80 default_server;",
    );
    assert_ne!(local_only, text);
    fs::write(&conf, local_only).expect("write");
    // Restart nginx on the new config (a reload cannot rebind *:80 as 127.0.0.1:80).
    restart_nginx(&lab, &h);
    // From the controller, the host's address no longer answers on :80.
    assert!(std::net::TcpStream::connect((h.address.as_str(), 80)).is_err());
    let spec = "gates:\n  - http: {url: \"http://127.0.0.1:80/health\", via: ssh, body: ok}\n";
    let run = run_with_gate(&lab, "nginx-new", &gates(spec)).await;
    assert_upgraded(&run);
}

/// Stops the host's nginx and starts it again on its current config, by absolute path.
fn restart_nginx(lab: &Lab, h: &crate::lab::LabHost) {
    let pid = h.master_pid().expect("pid");
    std::process::Command::new("kill")
        .args(["-QUIT", &pid.to_string()])
        .status()
        .expect("quit");
    assert!(
        crate::lab::wait_until(Duration::from_secs(4), || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || h.master_pid().is_none()
        }),
        "the master {pid} did not quit"
    );
    std::thread::sleep(Duration::from_millis(200));
    let bin = h.dir.join("sbin/nginx").display().to_string();
    let prefix = format!("{}/", h.dir.join("nginx").display());
    lab.run(&[
        "exec",
        &h.name,
        "--",
        &bin,
        "-p",
        &prefix,
        "-c",
        "conf/nginx.conf",
    ]);
    std::thread::sleep(Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_gates_use_tls_and_verify_unless_told_not_to() {
    let lab = lab!(1);
    let h = lab.host("lab-01").clone();
    let conf_dir = h.dir.join("nginx/conf");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=lab-01",
        ])
        .arg("-keyout")
        .arg(conf_dir.join("lab.key"))
        .arg("-out")
        .arg(conf_dir.join("lab.crt"))
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let conf = conf_dir.join("nginx.conf");
    let text = fs::read_to_string(&conf).expect("conf");
    let tls = text.replacen(
        "    server {",
        "    server {\n        listen 127.0.0.1:8443 ssl;\n        ssl_certificate lab.crt;\n        ssl_certificate_key lab.key;\n        location = /tls { return 200 \"tls ok\"; }\n    }\n    server {",
        1,
    );
    fs::write(&conf, tls).expect("write");
    restart_nginx(&lab, &h);
    let spec = "gates:\n  - http: {url: \"https://127.0.0.1:8443/tls\", insecure: true, body: \"tls ok\"}\n";
    assert_upgraded(&run_with_gate(&lab, "nginx-new", &gates(spec)).await);
    let spec = "gates:\n  - http: {url: \"https://127.0.0.1:8443/tls\", retries: 1}\n";
    let run = run_with_gate(&lab, "nginx-new2", &gates(spec)).await;
    let reason = rolled_back(&run);
    assert!(reason.contains("TLS handshake failed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_failing_after_commit_rolls_back_to_the_backup() {
    let lab = lab!(1);
    let t = tempfile::tempdir().expect("tmp");
    let marker = t.path().join("broken");
    let spec = format!(
        "gates:\n  - local: {{run: \"test ! -e {}\", retries: 1}}\n",
        marker.display()
    );
    let m = marker.clone();
    let hook = move |e: &Event| {
        if e.step == Step::Commit && e.status == Status::Started {
            let _ = fs::write(&m, "x");
        }
    };
    let before = snapshot(&lab);
    let run = run_with_gate_and_events(&lab, "nginx-new", &gates(&spec), &hook).await;
    let reason = rolled_back(&run);
    assert!(
        reason.contains("gate failed after commit, rolled back to the version before"),
        "{reason}"
    );
    let (_, exe, disk) = snapshot(&lab);
    assert_eq!((exe, disk), (before.1, before.2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_gate_sees_the_host_vars() {
    let lab = lab!(1);
    let spec = "gates:\n  - local: {run: \"test \\\"$lab_http_port\\\" = 1\", retries: 1}\n";
    let run = run_with_gate(&lab, "nginx-new", &gates(spec)).await;
    let reason = rolled_back(&run);
    assert!(reason.contains("gate local"), "{reason}");
    let spec = format!(
        "gates:\n  - local: \"test \\\"$lab_http_port\\\" = {} && test \\\"$ansible_host\\\" = {}\"\n",
        http_port(&lab),
        lab.host("lab-01").address
    );
    assert_upgraded(&run_with_gate(&lab, "nginx-new", &gates(&spec)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_catches_a_failure_two_seconds_after_winch() {
    let lab = lab!(1);
    let t = tempfile::tempdir().expect("tmp");
    let marker = t.path().join("broken");
    let spec = format!(
        "soak: 6s\ngates:\n  - local: {{run: \"test ! -e {}\", retries: 1}}\n",
        marker.display()
    );
    let m = marker.clone();
    // Two seconds after the drain finishes, the gate's condition turns bad.
    let hook = move |e: &Event| {
        if e.step == Step::Winch && e.status == Status::Done {
            let m = m.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                let _ = fs::write(m, "x");
            });
        }
    };
    let before = snapshot(&lab);
    let run = run_with_gate_and_events(&lab, "nginx-new", &gates(&spec), &hook).await;
    let reason = rolled_back(&run);
    assert!(reason.contains("during the soak"), "{reason}");
    assert_eq!(snapshot(&lab), before);
}

#[test]
fn a_bad_gate_is_rejected_by_validate() {
    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    a:\n")
        .file(
            "spec.yaml",
            "gates:\n  - http: {url: \"http://{{ nope }}/\"}\n  - tcp: {port: ssh}\n",
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert!(
        out.stderr
            .contains("spec.yaml:3:17: gates[1].tcp.port: expected a port number from 1 to 65535, found \"ssh\""),
        "{}",
        out.stderr
    );
}

#[test]
fn gates_that_cannot_run_on_a_host_are_rejected_before_the_rollout() {
    let out = Test::new()
        .file("inv.yaml", "all:\n  hosts:\n    a:\n      port: 8080\n    b:\n")
        .file(
            "spec.yaml",
            "gates:\n  - http: {url: \"http://{{ inventory_hostname }}:{{ port }}/\"}\n  - local: \"./no-such-script {{ inventory_hostname }}\"\n  - local: \"test -n x\"\n",
        )
        .args(["validate", "-i", "inv.yaml", "-p", "spec.yaml"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: spec.yaml: gates[0].http: host b has no variable `port`\n\
spec.yaml: gates[1].local: program \"./no-such-script\" of the local gate is not found on this controller\n"
    );
}
