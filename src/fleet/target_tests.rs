//! Tests of a host's target from its inventory, its ssh_config and the defaults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::model::inventory::Inventory;
use crate::model::ssh_config::{Config, Local};

const CONFIG: &str = "\
Host web-1 10.0.0.9
  HostName web-1.internal
  Port 2201
  User cfg-user
  IdentityFile ~/.ssh/web
  CertificateFile ~/.ssh/web-cert.pub
  IdentitiesOnly yes
  ConnectTimeout 7
  ServerAliveInterval 0
  ServerAliveCountMax 5
Host web-2
  ProxyJump hop2
Host hop1
  HostName 10.1.0.1
  Port 2022
  User jumper
  IdentityFile /keys/jump
  UserKnownHostsFile /kh/jump
Host hop2
  HostName 10.1.0.2
  User h2
  ProxyJump hop1
Host loop
  ProxyJump loop
Host *
  UserKnownHostsFile /kh/%h
  StrictHostKeyChecking accept-new
";

fn env(config: &str) -> ControllerEnv {
    let file = crate::model::ssh_config::parse("cfg", config).unwrap_or_else(|e| panic!("{e:?}"));
    let mut configs = HashMap::new();
    configs.insert(
        ConfigChoice::Defaults,
        Arc::new(Config { files: vec![file] }),
    );
    ControllerEnv {
        known_hosts: None,
        host_key_policy: HostKeyPolicy::Strict,
        local_user: "me".into(),
        home: Some(PathBuf::from("/home/me")),
        ssh_config: None,
        configs,
        local: Local {
            user: "me".into(),
            home: "/home/me".into(),
            hostname: "ctl".into(),
            uid: 1000,
        },
    }
}

fn inventory(hosts: &str) -> Inventory {
    Inventory::parse("inv.yaml", &format!("all:\n  hosts:\n{hosts}"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn inventory_beats_config_which_beats_defaults() {
    let env = env(CONFIG);
    let inv = inventory(
        "    web-1:\n    web-9:\n      ansible_host: 10.0.0.9\n      ansible_user: inv-user\n      ansible_port: 2300\n      ansible_ssh_private_key_file: ~/inv-key\n",
    );
    let t = env.target(&inv.hosts()[0]);
    assert_eq!(
        (t.host.as_str(), t.port, t.user.as_str()),
        ("web-1.internal", 2201, "cfg-user")
    );
    assert_eq!(t.identity_files, [PathBuf::from("/home/me/.ssh/web")]);
    assert_eq!(
        t.certificate_files,
        [PathBuf::from("/home/me/.ssh/web-cert.pub")]
    );
    assert_eq!(t.identities, Identities::FilesOnly);
    assert_eq!(t.known_hosts, PathBuf::from("/kh/web-1.internal"));
    assert_eq!(t.host_key_policy, HostKeyPolicy::AcceptNew);
    assert_eq!(
        t.timing,
        Timing {
            connect_timeout: Some(Duration::from_secs(7)),
            keepalive_interval: None,
            keepalive_max: Some(5),
        }
    );
    // ansible_host is what Host patterns see; the inventory's user, port and key win, the
    // config's key comes after the inventory's.
    let t = env.target(&inv.hosts()[1]);
    assert_eq!(
        (t.host.as_str(), t.port, t.user.as_str()),
        ("web-1.internal", 2300, "inv-user")
    );
    assert_eq!(
        t.identity_files,
        [
            PathBuf::from("/home/me/inv-key"),
            PathBuf::from("/home/me/.ssh/web")
        ]
    );
    assert!(t.jumps.is_empty());
}

#[test]
fn every_hop_is_resolved_under_its_own_name() {
    let env = env(CONFIG);
    let inv = inventory(
        "    web-2:\n      ansible_user: deploy\n    web-3:\n      ngfleet_jump: 'hop1,u@hop2:2200'\n    web-4:\n      ngfleet_jump: none\n      ansible_host: web-2\n",
    );
    // web-2: ProxyJump hop2, whose own Host block adds hop1 in front.
    let t = env.target(&inv.hosts()[0]);
    let hops: Vec<(String, u16, String)> = t
        .jumps
        .iter()
        .map(|j| (j.host.clone(), j.port, j.user.clone()))
        .collect();
    assert_eq!(
        hops,
        [
            ("10.1.0.1".to_owned(), 2022, "jumper".to_owned()),
            ("10.1.0.2".to_owned(), 22, "h2".to_owned()),
        ]
    );
    assert_eq!(t.jumps[0].identity_files, [PathBuf::from("/keys/jump")]);
    assert_eq!(t.jumps[0].known_hosts, PathBuf::from("/kh/jump"));
    // A hop without keys of its own uses the target's (here none: the default keys).
    assert_eq!(t.jumps[1].identity_files, t.identity_files);
    assert_eq!(t.jumps[1].known_hosts, PathBuf::from("/kh/10.1.0.2"));
    // From the inventory: the hop's own user and port win over its Host block.
    let t = env.target(&inv.hosts()[1]);
    let hops: Vec<String> = t
        .jumps
        .iter()
        .map(|j| format!("{}@{}:{}", j.user, j.host, j.port))
        .collect();
    assert_eq!(hops, ["jumper@10.1.0.1:2022", "u@10.1.0.2:2200"]);
    // ngfleet_jump: none beats the config's ProxyJump.
    assert!(env.target(&inv.hosts()[2]).jumps.is_empty());
}

#[test]
fn a_jump_loop_is_an_input_error_at_its_line() {
    let mut env = env(CONFIG);
    let inv = inventory("    web-5:\n      ngfleet_jump: loop\n");
    let hosts: Vec<&Host> = inv.hosts().iter().collect();
    let err = env
        .read_ssh_configs(&hosts)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("cfg:24:1: ProxyJump: the jump chain grows past 8 hops"),
        "{err}"
    );
}

#[test]
fn the_flag_beats_the_inventory_file() {
    let inv = inventory(
        "    web-1:\n      ngfleet_ssh_config: ~/fleet.conf\n    web-2:\n      ansible_ssh_common_args: -F /etc/fleet.conf\n",
    );
    let env = env("");
    assert_eq!(
        env.choice(&inv.hosts()[0]),
        ConfigChoice::File(PathBuf::from("/home/me/fleet.conf"))
    );
    assert_eq!(
        env.choice(&inv.hosts()[1]),
        ConfigChoice::File(PathBuf::from("/etc/fleet.conf"))
    );
    let env = env.with_ssh_config(Some(PathBuf::from("/x")));
    assert_eq!(
        env.choice(&inv.hosts()[0]),
        ConfigChoice::File(PathBuf::from("/x"))
    );
}

#[test]
fn several_hops_from_ansible_ssh_common_args() {
    let env = env("");
    let inv = inventory(
        "    web-1:\n      ansible_user: deploy\n      ansible_ssh_common_args: '-J a,u@b:2200 -o StrictHostKeyChecking=yes'\n",
    );
    let t = env.target(&inv.hosts()[0]);
    let hops: Vec<String> = t
        .jumps
        .iter()
        .map(|j| format!("{}@{}:{}", j.user, j.host, j.port))
        .collect();
    assert_eq!(hops, ["deploy@a:22", "u@b:2200"]);
}
