//! `ngfleet plan`: waves as text and JSON, host selection with --limit.

use crate::harness::Test;

const INVENTORY: &str = "\
all:
  children:
    web:
      hosts:
        web-[01:05]:
    db:
      hosts:
        db-1:
        db-2:
    eu:
      hosts:
        web-01:
        web-02:
        db-1:
";

#[test]
fn json_plan_has_the_documented_shape() {
    let out = Test::new()
        .file("inv.yaml", INVENTORY)
        .file(
            "spec.yaml",
            "hosts: web\ncanary: {hosts: 1}\nbatches: [2, \"50%\"]\n",
        )
        .args(["plan", "-i", "inv.yaml", "-p", "spec.yaml", "--json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["hosts"], 5);
    assert_eq!(
        v["batches"],
        serde_json::json!([
            {"index": 0, "canary": true, "hosts": ["web-01"]},
            {"index": 1, "canary": false, "hosts": ["web-02", "web-03"]},
            {"index": 2, "canary": false, "hosts": ["web-04", "web-05"]},
        ])
    );
}

#[test]
fn limit_patterns_union_intersection_exclusion() {
    let out = Test::new()
        .file("inv.yaml", INVENTORY)
        .args([
            "plan",
            "-i",
            "inv.yaml",
            "--json",
            "--limit",
            "web:db:&eu:!web-02",
        ])
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["hosts"], 2);
    let hosts: Vec<&str> = v["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .flat_map(|b| {
            b["hosts"]
                .as_array()
                .expect("hosts")
                .iter()
                .map(|h| h.as_str().expect("str"))
        })
        .collect();
    assert_eq!(hosts, ["web-01", "db-1"]);
}

#[test]
fn shuffle_prints_its_seed_and_repeats_with_it() {
    let t = || {
        Test::new()
            .file("inv.yaml", INVENTORY)
            .file("spec.yaml", "order: shuffle\n")
    };
    let first = t()
        .args(["plan", "-i", "inv.yaml", "-p", "spec.yaml"])
        .run();
    let seed = first
        .stdout
        .split("seed ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the plan prints its seed")
        .to_owned();
    let again = t()
        .args(["plan", "-i", "inv.yaml", "-p", "spec.yaml", "--seed", &seed])
        .run();
    assert_eq!(first.stdout, again.stdout);
}

#[test]
fn text_plan_lists_waves() {
    let out = Test::new()
        .file("inv.yaml", INVENTORY)
        .args(["plan", "-i", "inv.yaml"])
        .run();
    assert!(
        out.stdout
            .starts_with("rollout: 7 hosts in 4 waves (order: inventory)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("wave 0 (canary)       1 host   web-01\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("windows: none"), "{}", out.stdout);
}

#[test]
fn a_limit_matching_nothing_is_an_error() {
    let out = Test::new()
        .file("inv.yaml", INVENTORY)
        .args(["plan", "-i", "inv.yaml", "--limit", "wbe"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: failed to plan the rollout: failed to select hosts with --limit wbe: pattern term \"wbe\" matches no host or group\n"
    );
}

/// Ten lines of 100,000 hosts, plus `extra` more in a group of their own.
fn million(extra: usize) -> String {
    let mut text = String::from("all:\n  vars: {ansible_user: deploy}\n  children:\n");
    for k in 0..10 {
        text += &format!(
            "    g{k}:\n      vars: {{dc: dc{k}}}\n      hosts:\n        w{k}-[000001:100000]:\n"
        );
    }
    if extra > 0 {
        text += &format!("    extra:\n      hosts:\n        x-[1:{extra}]:\n");
    }
    text
}

#[test]
fn one_host_over_the_default_limit_is_an_input_error() {
    let out = Test::new()
        .file("inv.yaml", &million(1))
        .args(["plan", "-i", "inv.yaml", "--json"])
        .code(2)
        .run();
    assert_eq!(
        out.stderr,
        "error: found 1 problem in the input:\n\
inv.yaml:46:9: all.children.extra.hosts[\"x-[1:1]\"]: the inventory has more than 1000000 hosts, the most it may have (raise the limit with --max-hosts N)\n"
    );
}

#[test]
fn a_million_hosts_plan_when_the_limit_allows() {
    let out = Test::new()
        .file("inv.yaml", &million(1))
        .args(["plan", "-i", "inv.yaml", "--json", "--max-hosts", "1000001"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["hosts"], 1_000_001);
    let sizes: Vec<usize> = v["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["hosts"].as_array().expect("hosts").len())
        .collect();
    // The default spec: a canary of 1, then batches of 25% (250,001).
    assert_eq!(sizes, [1, 250_001, 250_001, 250_001, 249_997]);
    assert_eq!(v["batches"][0]["hosts"][0], "w0-000001");
    assert_eq!(v["batches"][4]["hosts"][249_996], "x-1");
}
