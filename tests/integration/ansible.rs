//! ngfleet reads YAML merge keys (`<<`) as Ansible does. Each inventory below is read by
//! `ansible-inventory --list` (ansible-core, which `scripts/test` installs) and by ngfleet's
//! library; every host's variables and groups must agree. Without `ansible-inventory` these
//! tests fail: they never pass by skipping.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use ngfleet::model::inventory::Inventory;
use serde_json::Value;

/// Host -> (variables, groups), as one reader sees an inventory.
type Reading = BTreeMap<String, (BTreeMap<String, Value>, BTreeSet<String>)>;

/// What `ansible-inventory --list` says.
fn ansible(text: &str) -> Reading {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("inventory.yaml");
    std::fs::write(&file, text).expect("write");
    let output = Command::new("ansible-inventory")
        .arg("-i")
        .arg(&file)
        .arg("--list")
        .env("ANSIBLE_LOCAL_TEMP", dir.path())
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "ansible-inventory could not run ({e}): install ansible-core (scripts/test does)"
            )
        });
    assert!(
        output.status.success(),
        "ansible-inventory failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: Value = serde_json::from_slice(&output.stdout).expect("ansible-inventory JSON");
    let groups = list.as_object().expect("an object");
    // Every host of a group, its children's included. ansible-inventory names `ungrouped`
    // among `all`'s children even when it has no host, but then does not list it: a group
    // named but not listed has no members.
    fn members(groups: &serde_json::Map<String, Value>, group: &str, out: &mut BTreeSet<String>) {
        let listed = groups.get(group);
        assert!(
            listed.is_some() || group == "ungrouped",
            "ansible-inventory names group {group} but does not list it"
        );
        if let Some(g) = listed {
            for h in g["hosts"].as_array().into_iter().flatten() {
                out.insert(h.as_str().expect("host name").to_owned());
            }
            for child in g["children"].as_array().into_iter().flatten() {
                members(groups, child.as_str().expect("group name"), out);
            }
        }
    }
    let mut reading = Reading::new();
    for group in groups.keys().filter(|g| *g != "_meta") {
        let mut hosts = BTreeSet::new();
        members(groups, group, &mut hosts);
        for host in hosts {
            reading.entry(host).or_default().1.insert(group.clone());
        }
    }
    let hostvars = list["_meta"]["hostvars"]
        .as_object()
        .cloned()
        .expect("ansible-inventory --list has _meta.hostvars");
    for (host, vars) in hostvars {
        let vars = vars
            .as_object()
            .expect("vars")
            .clone()
            .into_iter()
            .collect();
        reading.entry(host).or_default().0 = vars;
    }
    reading
}

/// What ngfleet reads.
fn ngfleet(text: &str) -> Reading {
    let inventory = Inventory::parse("inventory.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    inventory
        .hosts()
        .iter()
        .map(|h| {
            let vars = h
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(&v.value).expect("json")))
                .collect();
            (h.name.clone(), (vars, h.groups.iter().cloned().collect()))
        })
        .collect()
}

fn agree(text: &str) -> Reading {
    let ours = ngfleet(text);
    assert_eq!(
        ours,
        ansible(text),
        "ngfleet (left) and Ansible (right) disagree"
    );
    ours
}

#[test]
fn a_merged_mapping_gives_its_variables_own_keys_winning() {
    let read = agree(
        "\
all:
  vars:
    common: &common
      nginx_binary: /opt/nginx/sbin/nginx
      nginx_pid_file: /opt/nginx/logs/nginx.pid
      team: web
  hosts:
    lab-01: {<<: *common, ansible_host: 10.0.0.1}
    lab-02:
      <<: *common
      team: own
",
    );
    let lab01 = &read["lab-01"].0;
    assert_eq!(lab01["nginx_binary"], "/opt/nginx/sbin/nginx");
    assert_eq!(lab01["nginx_pid_file"], "/opt/nginx/logs/nginx.pid");
    assert_eq!(read["lab-02"].0["team"], "own");
}

#[test]
fn merge_lists_let_earlier_mappings_win_and_nested_merges_resolve() {
    let read = agree(
        "\
all:
  vars:
    a: &a {x: a, y: a, port: 1}
    b: &b {<<: *a, x: b, z: b}
    c: &c {x: c, w: c}
  hosts:
    h1: {<<: [*b, *c]}
    h2: {<<: [*c, *b], y: own}
    h3: {<<: [*c, {x: inline, v: inline}]}
",
    );
    assert_eq!(read["h1"].0["x"], "b");
    assert_eq!(read["h2"].0["x"], "c");
    assert_eq!(read["h2"].0["port"], 1);
}

#[test]
fn merged_groups_and_a_quoted_merge_key_read_the_same() {
    let read = agree(
        "\
all:
  children:
    web: &web
      vars: {tier: web, ansible_port: 2222}
      hosts:
        web-[1:3]:
    canary:
      <<: *web
      hosts: {web-2: }
    odd:
      hosts:
        odd-1:
          '<<': {literal: true}
",
    );
    assert!(read["web-2"].1.contains("canary"));
    assert!(!read["web-1"].1.contains("canary"));
    assert!(read["odd-1"].0.contains_key("<<"), "a quoted `<<` is a key");
}
