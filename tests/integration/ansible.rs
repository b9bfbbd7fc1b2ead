//! ngfleet reads YAML merge keys (`<<`) and `group_vars/` and `host_vars/` as Ansible does.
//! Each inventory below is read by `ansible-inventory --list` (ansible-core, which
//! `scripts/test` installs) and by ngfleet; every host's variables and groups must agree.
//! Without `ansible-inventory` these tests fail: they never pass by skipping.

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

/// A tree of files (`path`, text) written in a scratch directory, the inventory at `source`
/// in it: `ansible-inventory --list` and `ngfleet inventory --list`, which must print the
/// same JSON (groups, children, every host's variables). ansible-inventory also reads the
/// `group_vars/` of its working directory (as a playbook's), so it runs in an empty one.
fn agree_on_tree(files: &[(&str, &str)], source: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let output = Command::new("ansible-inventory")
        .arg("-i")
        .arg(dir.path().join(source))
        .arg("--list")
        .current_dir(empty.path())
        .env("ANSIBLE_LOCAL_TEMP", empty.path())
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .output()
        .expect("ansible-inventory runs (scripts/test installs it)");
    assert!(
        output.status.success(),
        "ansible-inventory failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Value = serde_json::from_slice(&output.stdout).expect("ansible JSON");
    let inventory = ngfleet::inputs::load_inventory(&dir.path().join(source), Default::default())
        .unwrap_or_else(|e| panic!("ngfleet refused it: {e}"));
    let everyone: Vec<usize> = (0..inventory.hosts().len()).collect();
    let ours: Value =
        serde_json::from_str(&ngfleet::report::inventory::list(&inventory, &everyone))
            .expect("json");
    assert_eq!(ours, theirs, "ngfleet (left) and Ansible (right) disagree");
    ours
}

/// ngfleet's problems with a tree of files (it must refuse it).
fn refused(files: &[(&str, &str)], source: &str) -> (String, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let error = ngfleet::inputs::load_inventory(&dir.path().join(source), Default::default())
        .expect_err("ngfleet should refuse it");
    (error.to_string(), dir.keep())
}

const NESTED: &str = "\
all:
  vars: {a: all-inv, b: all-inv, c: all-inv, d: all-inv}
  hosts:
    h0: {d: h0-inv}
  children:
    web:
      vars: {b: web-inv, e: web-inv, f: web-inv, p: web-inv}
      hosts:
        h1: {f: h1-inv}
      children:
        eu:
          vars: {e: eu-inv, ansible_group_priority: 5}
          hosts: {h2: }
    db:
      vars: {p: db-inv}
      hosts: {h2: , h3: }
";

#[test]
fn any_group_vars_file_beats_any_group_variable_of_the_inventory() {
    let read = agree_on_tree(
        &[
            ("hosts.yml", NESTED),
            ("group_vars/all.yml", "c: all-file\na: all-file\n"),
            ("group_vars/web", "b: web-file\ne: web-file\n"),
            ("host_vars/h2.yml", "f: h2-file\nd: h2-file\n"),
            ("host_vars/h0.yaml", "d: h0-file\n"),
        ],
        "hosts.yml",
    );
    let h2 = &read["_meta"]["hostvars"]["h2"];
    // `eu` (deeper) sets `e` in the inventory, but `web`'s file wins over it.
    assert_eq!(h2["e"], "web-file");
    assert_eq!(h2["c"], "all-file");
    assert_eq!(read["_meta"]["hostvars"]["h0"]["d"], "h0-file");
}

#[test]
fn group_vars_files_go_by_depth_then_inventory_priority_then_name() {
    let read = agree_on_tree(
        &[
            ("hosts.yml", NESTED),
            ("group_vars/db.yml", "p: db-file\nq: db-file\n"),
            ("group_vars/web.yml", "p: web-file\nq: web-file\n"),
            // A priority in a file is a plain variable, not the group's priority.
            (
                "group_vars/eu.yml",
                "q: eu-file\nansible_group_priority: -7\n",
            ),
            ("group_vars/ungrouped.yml", "u: ungrouped\n"),
        ],
        "hosts.yml",
    );
    let h2 = &read["_meta"]["hostvars"]["h2"];
    assert_eq!(h2["p"], "web-file", "same depth: by name, `web` after `db`");
    assert_eq!(h2["q"], "eu-file");
    assert_eq!(h2["ansible_group_priority"], -7);
    assert_eq!(read["_meta"]["hostvars"]["h0"]["u"], "ungrouped");
}

#[test]
fn names_are_looked_up_as_ansible_does() {
    agree_on_tree(
        &[
            ("hosts.yml", NESTED),
            // Without an extension first; then .yml, .yaml, .json: the first found only.
            ("group_vars/web", "w: plain\n"),
            ("group_vars/web.yml", "w: yml\nignored: 1\n"),
            ("host_vars/h1.yaml", "x: yaml\n"),
            ("host_vars/h1.json", "{\"x\": \"json\", \"ignored\": 1}"),
            (
                "host_vars/h3.json",
                "{\"x\": {\"nested\": [1, 2.5, null, true]}}",
            ),
            // A directory stands for its files, sorted; hidden, `~`, other extensions and
            // subdirectories with an extension are skipped; other subdirectories read.
            ("group_vars/eu/b.yml", "g: b\nk: b\n"),
            ("group_vars/eu/a", "g: a\nk: a\nm: a\n"),
            ("group_vars/eu/.hidden.yml", "k: hidden\n"),
            ("group_vars/eu/z.txt", "k: txt\n"),
            ("group_vars/eu/z~", "k: tilde\n"),
            ("group_vars/eu/sub/x.json", "{\"m\": \"sub\"}"),
            ("group_vars/eu/sub.d/x", "m: subd\n"),
            ("group_vars/eu.yml", "n: beside-the-directory\n"),
            // Empty or false documents are skipped; files of unknown groups and hosts too.
            ("group_vars/db.yml", ""),
            ("group_vars/all", "~\n"),
            ("host_vars/h0", "# nothing\n"),
            ("host_vars/h2.yml", "false\n"),
            ("group_vars/nobody.yml", "x: [unclosed\n"),
            ("host_vars/ghost", "- not a mapping\n"),
        ],
        "hosts.yml",
    );
}

#[test]
fn a_group_without_hosts_has_its_files_never_read() {
    agree_on_tree(
        &[
            (
                "hosts.yml",
                "all:\n  hosts: {h1: }\n  children:\n    empty: {}\n",
            ),
            ("group_vars/empty.yml", "x: [unclosed\n"),
            ("group_vars/all.yml", "x: 1\n"),
        ],
        "hosts.yml",
    );
}

#[test]
fn a_directory_inventory_reads_its_own_vars_directories_only() {
    agree_on_tree(
        &[
            ("inv/a.ini", "[web]\nw1 x=1\n[web:vars]\ng=8080\n"),
            ("inv/b.yml", "db:\n  hosts: {d1: {x: 2}}\n"),
            ("inv/group_vars/web.yml", "g: 9090\nports: [80, 443]\n"),
            ("inv/host_vars/d1", "x: 3\n"),
            ("inv/sub/c.ini", "[web]\nw2\n"),
            ("inv/sub/group_vars/web.yml", "g: sub\n"),
            // Beside the directory is not beside its files.
            ("group_vars/all.yml", "outside: 1\n"),
        ],
        "inv",
    );
}

#[test]
fn an_ini_inventory_gets_typed_values_from_its_vars_files() {
    let read = agree_on_tree(
        &[
            (
                "inventory.ini",
                "lone\n[web]\nw1 ansible_port=2201\nw2:2202\n[web:vars]\nport=8080\n[all:vars]\nflag=yes\n",
            ),
            (
                "group_vars/web.yml",
                "port: 8081\nlist: [1, \"2\", 3.5]\nyes_value: yes\nquoted: 'no'\nb: &b {x: Off}\nc: *b\n",
            ),
            ("group_vars/all.json", "{\"flag\": false}"),
            ("host_vars/w2.yml", "ansible_port: 2299\n"),
        ],
        "inventory.ini",
    );
    assert_eq!(read["_meta"]["hostvars"]["w1"]["port"], 8081);
    assert_eq!(read["_meta"]["hostvars"]["w2"]["ansible_port"], 2299);
}

#[test]
fn vars_files_set_the_connection_ngfleet_uses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::create_dir_all(p.join("group_vars/web")).expect("mkdir");
    std::fs::create_dir_all(p.join("host_vars")).expect("mkdir");
    std::fs::write(
        p.join("hosts"),
        "[web]\nweb-01 ansible_host=10.0.0.1 ansible_port=22\n",
    )
    .expect("w");
    std::fs::write(
        p.join("group_vars/web/10-ssh.yml"),
        "ansible_user: deploy\n",
    )
    .expect("w");
    std::fs::write(
        p.join("group_vars/web/20-nginx.yml"),
        "ngfleet_nginx_binary: /opt/nginx/sbin/nginx\n",
    )
    .expect("w");
    std::fs::write(
        p.join("host_vars/web-01.yml"),
        "ansible_ssh_host: 10.0.0.9\nansible_port: 2222\n",
    )
    .expect("w");
    let inventory =
        ngfleet::inputs::load_inventory(&p.join("hosts"), Default::default()).expect("valid");
    let host = inventory.find("web-01").expect("web-01");
    assert_eq!(host.address(), "10.0.0.9");
    assert_eq!(host.connection.port.map(|p| p.get()), Some(2222));
    assert_eq!(host.connection.user.as_deref(), Some("deploy"));
}

#[test]
fn bad_vars_files_are_refused_with_file_and_line() {
    let inventory = ("hosts", "[web]\nweb-01\n");
    let (text, dir) = refused(
        &[inventory, ("group_vars/web.yml", "a: 1\nb: [unclosed\n")],
        "hosts",
    );
    let file = dir.join("group_vars/web.yml").display().to_string();
    assert!(text.contains(&format!("{file}:")), "{text}");
    assert!(text.contains(":2:") || text.contains(":3:"), "{text}");
    let _ = std::fs::remove_dir_all(dir);

    let vault = "$ANSIBLE_VAULT;1.1;AES256\n3661386338\n";
    let (text, dir) = refused(&[inventory, ("host_vars/web-01", vault)], "hosts");
    let file = dir.join("host_vars/web-01").display().to_string();
    assert!(
        text.contains(&format!("{file}:1:1: vault-encrypted")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);

    let inline = "ansible_become_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6638\n";
    let (text, dir) = refused(&[inventory, ("group_vars/all.yml", inline)], "hosts");
    assert!(text.contains("ansible_become_password"), "{text}");
    assert!(text.contains("!vault"), "{text}");
    let _ = std::fs::remove_dir_all(dir);

    // Ansible refuses a list too ("expected dicts").
    let (text, dir) = refused(&[inventory, ("group_vars/web/a.yml", "- 1\n")], "hosts");
    assert!(text.contains("expected a mapping of variables"), "{text}");
    let _ = std::fs::remove_dir_all(dir);

    let (text, dir) = refused(
        &[inventory, ("group_vars/web.yml", "ansible_port: many\n")],
        "hosts",
    );
    let file = dir.join("group_vars/web.yml").display().to_string();
    assert!(
        text.contains(&format!("{file}:1:15: ansible_port:")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
