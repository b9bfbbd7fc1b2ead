//! Tests of `group_vars/` and `host_vars/`: lookup, precedence, skipped and refused files,
//! problems placed in the vars file.

use super::super::super::diagnostic::Diagnostics;
use super::super::{Inventory, Source, SourceFile};
use super::*;
use crate::model::inventory::Limits;

fn file(name: &str, text: &str) -> VarsFile {
    VarsFile {
        name: name.to_owned(),
        text: Ok(text.to_owned()),
    }
}

/// A tree of entries: `(entry name, files)`; one file whose name is the entry's is a file
/// entry, anything else a directory.
fn tree(entries: &[(&str, &[(&str, &str)])]) -> VarsTree {
    let mut tree = VarsTree::default();
    for (name, files) in entries {
        let entry = match files {
            [(only, text)] if only == name => VarsEntry::File(file(only, text)),
            _ => VarsEntry::Dir(files.iter().map(|(n, t)| file(n, t)).collect()),
        };
        tree.insert((*name).to_owned(), entry);
    }
    tree
}

fn read(inventory: &str, vars: &VarsDirs) -> Result<Inventory, Diagnostics> {
    let source = SourceFile {
        name: "hosts.yml".to_owned(),
        text: inventory.to_owned(),
    };
    Inventory::read(Source::File(&source), vars, Limits::default())
}

fn valid(inventory: &str, vars: &VarsDirs) -> Inventory {
    read(inventory, vars).unwrap_or_else(|e| panic!("{e}"))
}

fn text(inv: &Inventory, host: &str, var: &str) -> Option<String> {
    inv.find(host).and_then(|h| h.vars.text(var))
}

const INVENTORY: &str = "\
all:
  vars: {a: all-inv, b: all-inv}
  hosts:
    h0: {h: h0-inv}
  children:
    web:
      vars: {b: web-inv, c: web-inv, p: web-inv}
      hosts: {h1: {h: h1-inv}}
      children:
        eu:
          vars: {c: eu-inv, ansible_group_priority: 3}
          hosts: {h2: }
    db:
      vars: {ansible_group_priority: 2}
      hosts: {h2: }
";

#[test]
fn lookup_takes_the_first_ending_that_exists() {
    let t = tree(&[
        ("web.yml", &[("web.yml", "x: yml\n")]),
        ("web", &[("web", "x: plain\n")]),
        ("db.json", &[("db.json", "{\"x\": \"json\"}")]),
        ("db.yaml", &[("db.yaml", "x: yaml\n")]),
        ("eu", &[("eu/a", "x: a\n"), ("eu/b.yml", "x: b\n")]),
        ("eu.yml", &[("eu.yml", "x: beside\n")]),
    ]);
    let names = |n: &str| -> Vec<&str> { t.lookup(n).iter().map(|f| f.name.as_str()).collect() };
    assert_eq!(names("web"), ["web"]);
    assert_eq!(names("db"), ["db.yaml"]);
    assert_eq!(names("eu"), ["eu/a", "eu/b.yml"]);
    assert!(names("nobody").is_empty());
}

#[test]
fn group_vars_files_come_after_every_inventory_group_and_host_vars_last() {
    let vars = VarsDirs {
        group_vars: Some(tree(&[
            ("all.yml", &[("all.yml", "a: all-file\nb: all-file\n")]),
            // `db` ranks below `eu` (depth 1 < 2): `eu`'s file wins for h2.
            ("db", &[("db", "d: db-file\nc: db-file\n")]),
            ("eu.yml", &[("eu.yml", "d: eu-file\n")]),
            ("web", &[("web/1", "p: web-1\n"), ("web/2", "p: web-2\n")]),
        ])),
        host_vars: Some(tree(&[("h1", &[("h1", "h: h1-file\n")])])),
    };
    let inv = valid(INVENTORY, &vars);
    assert_eq!(text(&inv, "h0", "a").as_deref(), Some("all-file"));
    // `all`'s file beats `web`'s inventory variables.
    assert_eq!(text(&inv, "h1", "b").as_deref(), Some("all-file"));
    assert_eq!(text(&inv, "h1", "p").as_deref(), Some("web-2"));
    assert_eq!(text(&inv, "h1", "h").as_deref(), Some("h1-file"));
    assert_eq!(text(&inv, "h0", "h").as_deref(), Some("h0-inv"));
    // `db`'s file beats `eu`'s inventory variable, though `eu` is deeper.
    assert_eq!(text(&inv, "h2", "c").as_deref(), Some("db-file"));
    assert_eq!(text(&inv, "h2", "d").as_deref(), Some("eu-file"));
}

#[test]
fn a_priority_in_a_vars_file_is_a_plain_variable() {
    let vars = VarsDirs {
        group_vars: Some(tree(&[(
            "web.yml",
            &[("web.yml", "ansible_group_priority: 9\n")],
        )])),
        host_vars: None,
    };
    let inv = valid(INVENTORY, &vars);
    assert_eq!(
        text(&inv, "h1", "ansible_group_priority").as_deref(),
        Some("9")
    );
    assert_eq!(text(&inv, "h0", "ansible_group_priority"), None);
}

#[test]
fn empty_and_false_files_are_skipped_and_unused_files_never_read() {
    let unreadable = VarsFile {
        name: "group_vars/nobody".to_owned(),
        text: Err(Diagnostic {
            file: "group_vars/nobody".to_owned(),
            position: None,
            path: KeyPath::root(),
            message: "failed to read".to_owned(),
        }),
    };
    let mut groups = tree(&[
        (
            "web",
            &[("web/a", ""), ("web/b", "~\n"), ("web/c", "false\n")],
        ),
        ("db", &[("db", "[]\n")]),
        ("eu", &[("eu", "0\n")]),
        ("all", &[("all", "# only a comment\n")]),
        ("bad.yml", &[("bad.yml", "x: [unclosed\n")]),
    ]);
    groups.insert("nobody".to_owned(), VarsEntry::File(unreadable.clone()));
    // A group without hosts: its files apply to no one and are never read.
    groups.insert("empty".to_owned(), VarsEntry::File(unreadable));
    let vars = VarsDirs {
        group_vars: Some(groups),
        host_vars: None,
    };
    let inventory = format!("{INVENTORY}    empty: {{}}\n");
    let inv = valid(&inventory, &vars);
    assert_eq!(inv, valid(&inventory, &VarsDirs::default()));
}

#[test]
fn refused_files_say_which_and_where() {
    let problems = |group_vars: VarsTree| -> Vec<String> {
        let vars = VarsDirs {
            group_vars: Some(group_vars),
            host_vars: None,
        };
        read(INVENTORY, &vars)
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let vault = "$ANSIBLE_VAULT;1.1;AES256\n6338\n";
    assert_eq!(
        problems(tree(&[("web", &[("gv/web", vault)])])),
        [
            "gv/web:1:1: vault-encrypted vars files are not supported: ngfleet cannot decrypt them (keep the variables ngfleet needs in a plain file beside it)"
        ]
    );
    let list = problems(tree(&[("web", &[("gv/web/a", "- 1\n- 2\n")])]));
    assert_eq!(
        list,
        ["gv/web/a:1:1: expected a mapping of variables, found a list"]
    );
    let syntax = problems(tree(&[("eu.yml", &[("gv/eu.yml", "a: 1\nb: [x\n")])]));
    assert!(syntax[0].starts_with("gv/eu.yml:"), "{syntax:?}");
    let inline = "x: 1\nansible_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n";
    let vaulted = problems(tree(&[("all", &[("gv/all", inline)])]));
    assert_eq!(vaulted.len(), 1, "{vaulted:?}");
    assert!(
        vaulted[0]
            .starts_with("gv/all:2:19: ansible_password: `ansible_password` is vault-encrypted"),
        "{vaulted:?}"
    );
    // A connection variable checked where the file wrote it.
    let port = problems(tree(&[(
        "web",
        &[("gv/web", "x: 1\nansible_port: 70000\n")],
    )]));
    assert_eq!(port.len(), 1, "{port:?}");
    assert!(
        port[0].starts_with("gv/web:2:15: ansible_port: "),
        "{port:?}"
    );
}

#[test]
fn a_group_name_that_would_leave_group_vars_is_refused() {
    let inventory = "all:\n  children:\n    \"a/b\":\n      hosts: {h1: }\n";
    let vars = VarsDirs {
        group_vars: Some(VarsTree::default()),
        host_vars: None,
    };
    let text = read(inventory, &vars).expect_err("invalid").to_string();
    assert!(text.contains("cannot name a file in group_vars/"), "{text}");
    // Without group_vars/ there is nothing to read, and the name is Ansible's to allow.
    valid(inventory, &VarsDirs::default());
}
