//! The differential test: generated inventories (`ansible_gen.rs`), in YAML and in INI, files
//! and directories, most with generated `group_vars/` and `host_vars/`, read by ngfleet and by
//! ansible-core itself (which `scripts/test` installs). For each inventory it compares the
//! hosts' order (`all`), every host's variables and groups, and for each generated pattern the
//! hosts selected and their order. One Python process reads every inventory. Seeded: `NGFLEET_DIFF_SEED=N` repeats a run; the seed, the number of
//! comparisons and of mismatches are printed, and any mismatch fails.
//!
//! The one deliberate difference: a pattern term that matches nothing (or a subscript that
//! picks nothing) is an error in ngfleet; such a run counts as agreeing only when Ansible
//! selects nothing for that term alone.

use std::collections::BTreeMap;
use std::process::Command;

use ngfleet::model::inventory::Inventory;
use ngfleet::model::pattern::{HostUniverse, Pattern, PatternError};
use ngfleet::report;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::ansible_gen;
use super::harness::Test;

/// Inventories per format.
const INVENTORIES: usize = 120;
/// Directory inventories.
const DIRECTORIES: usize = 40;
/// The share of inventories that get `group_vars/` and `host_vars/`.
const WITH_VARS: f64 = 0.6;
const PATTERNS: usize = 12;
/// Inventories per format also run through the `ngfleet inventory --list` command.
const CLI_RUNS: usize = 10;

/// Reads each job's inventory with ansible-core: load errors, `all`'s order, every host's
/// variables and groups, and each pattern's hosts (or error), each term's hosts.
const ORACLE: &str = r#"
import json, sys
from ansible import context
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.vars.manager import VariableManager
from ansible.cli.inventory import InventoryCLI
from ansible._internal._json._profiles import _inventory_legacy

context.CLIARGS = ImmutableDict(export=False, basedir=None, yaml=False, toml=False, show_vars=False)
jobs = json.load(open(sys.argv[1]))
out = []
for job in jobs:
    result = {}
    try:
        loader = DataLoader()
        inv = InventoryManager(loader=loader, sources=[job["path"]])
        vm = VariableManager(loader=loader, inventory=inv)
    except Exception as e:
        out.append({"error": str(e)})
        continue
    cli = InventoryCLI(["ansible-inventory", "--list"])
    cli.loader, cli.inventory, cli.vm = loader, inv, vm
    listed = cli.json_inventory(inv.groups["all"])
    result["list"] = json.loads(json.dumps(listed, cls=_inventory_legacy.Encoder, sort_keys=True))
    result["order"] = [h.name for h in inv.get_hosts("all")]
    result["groups"] = {h.name: sorted(g.name for g in h.get_groups()) for h in inv.get_hosts("all")}
    def select(pattern):
        inv.clear_pattern_cache()
        try:
            return {"hosts": [h.name for h in inv.get_hosts(pattern)]}
        except Exception as e:
            return {"error": str(e)}
    result["patterns"] = {p: select(p) for p in job["patterns"]}
    if job["limit"] is not None:
        inv.clear_pattern_cache()
        inv.subset(job["limit"])
        limited = cli.json_inventory(inv.groups["all"])
        result["limited"] = json.loads(json.dumps(limited, cls=_inventory_legacy.Encoder, sort_keys=True))
        inv.subset(None)
    result["terms"] = {t: select(t) for t in job["terms"]}
    out.append(result)
json.dump(out, sys.stdout)
"#;

/// What ngfleet makes of one pattern: the hosts, or the term it refuses and why.
enum Ours {
    Hosts(Vec<String>),
    Refused { term: String, error: PatternError },
}

fn ours(inventory: &Inventory, pattern: &str) -> Ours {
    let refused = |error: PatternError| {
        let term = match &error {
            PatternError::NoMatch { term } | PatternError::OutOfRange { term, .. } => term.clone(),
            other => format!("<parse error: {other}>"),
        };
        Ours::Refused { term, error }
    };
    match pattern.parse::<Pattern>() {
        Err(e) => refused(e),
        Ok(p) => match p.select(inventory) {
            Ok(hosts) => Ours::Hosts(
                hosts
                    .iter()
                    .map(|&h| inventory.host_name(h).to_owned())
                    .collect(),
            ),
            Err(e) => refused(e),
        },
    }
}

/// Every host's variables as JSON, by name.
fn our_vars(inventory: &Inventory) -> BTreeMap<String, Value> {
    inventory
        .hosts()
        .iter()
        .map(|h| {
            let vars: serde_json::Map<String, Value> = h
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(&v.value).expect("json")))
                .collect();
            (h.name.clone(), Value::Object(vars))
        })
        .collect()
}

/// One generated case: its file and text, and ngfleet's reading.
struct Case {
    path: std::path::PathBuf,
    /// The inventory's text (every file, for a directory).
    text: String,
    /// The vars files beside it (paths relative to its directory), and their texts.
    vars: Vec<(String, String)>,
    inventory: Inventory,
    patterns: Vec<(String, Ours)>,
}

#[derive(Default)]
struct Tally {
    comparisons: usize,
    refused: usize,
    mismatches: Vec<String>,
}

impl Tally {
    fn check(&mut self, case: &Case, what: &str, ours: &Value, theirs: &Value) {
        self.comparisons += 1;
        if ours != theirs {
            self.mismatches.push(format!(
                "{} ({what}):\n{}\nngfleet: {ours}\nansible: {theirs}",
                case.path.display(),
                shown(case)
            ));
        }
    }
}

/// A case's files, for a mismatch.
fn shown(case: &Case) -> String {
    let mut out = case.text.clone();
    for (path, text) in &case.vars {
        out.push_str(&format!("--- {path}\n{text}"));
    }
    out
}

/// Writes `files` under `dir`.
fn write_tree(dir: &std::path::Path, files: &[(String, String)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

/// Vars files for a share of the cases.
fn maybe_vars(rng: &mut ChaCha8Rng, model: &ansible_gen::Model) -> Vec<(String, String)> {
    if rng.random_bool(WITH_VARS) {
        ansible_gen::vars_files(rng, model)
    } else {
        Vec::new()
    }
}

fn seeded(format: &str) -> (u64, ChaCha8Rng) {
    let seed: u64 = std::env::var("NGFLEET_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!(
        "ansible differential test ({format}): seed {seed} (NGFLEET_DIFF_SEED={seed} repeats it)"
    );
    (seed, ChaCha8Rng::seed_from_u64(seed))
}

/// The case's patterns, with ngfleet's answers.
fn patterns_of(
    rng: &mut ChaCha8Rng,
    model: &ansible_gen::Model,
    inventory: &Inventory,
) -> Vec<(String, Ours)> {
    let count = rng.random_range(PATTERNS / 2..=PATTERNS);
    ansible_gen::patterns(rng, model, count)
        .into_iter()
        .map(|p| {
            let ours = ours(inventory, &p);
            (p, ours)
        })
        .collect()
}

fn run(format: &str) {
    let (seed, mut rng) = seeded(format);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cases = Vec::new();
    for n in 0..INVENTORIES {
        let model = ansible_gen::model(&mut rng);
        let (text, name) = match format {
            "yaml" => (ansible_gen::yaml(&model), format!("inv{n}.yaml")),
            _ => (ansible_gen::ini(&model, &mut rng), format!("inv{n}.ini")),
        };
        // Each inventory in its own directory, with its vars files.
        let home = dir.path().join(format!("case{n}"));
        std::fs::create_dir(&home).expect("mkdir");
        let vars = maybe_vars(&mut rng, &model);
        write_tree(&home, &vars);
        let path = home.join(&name);
        std::fs::write(&path, &text).expect("write");
        let inventory = ngfleet::inputs::load_inventory(&path, Default::default())
            .unwrap_or_else(|e| panic!("ngfleet refused {name}:\n{text}\n{vars:?}\n{e}"));
        let patterns = patterns_of(&mut rng, &model, &inventory);
        cases.push(Case {
            path,
            text,
            vars,
            inventory,
            patterns,
        });
    }
    compare(format, seed, dir.path(), &cases, CLI_RUNS);
}

/// Directory inventories: each 2 to 4 files of one inventory (YAML or INI, the same groups,
/// different hosts and variables), in sorted order, maybe in a subdirectory, beside files
/// Ansible skips.
fn run_directories() {
    let (seed, mut rng) = seeded("directories");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cases = Vec::new();
    for n in 0..DIRECTORIES {
        let root = dir.path().join(format!("inv{n}"));
        std::fs::create_dir(&root).expect("mkdir");
        let base = ansible_gen::model(&mut rng);
        let files = rng.random_range(2..=4);
        let mut shown = String::new();
        let mut models = vec![];
        for f in 0..files {
            let model = ansible_gen::variant(&base, &mut rng);
            let yaml = rng.random_bool(0.5);
            let (text, ending) = if yaml {
                let ending = *[".yml", ".yaml", ""].choose(&mut rng).expect("ending");
                (ansible_gen::yaml(&model), ending)
            } else {
                (
                    ansible_gen::ini(&model, &mut rng),
                    *[".ini", ""].choose(&mut rng).expect("ending"),
                )
            };
            let stem = *["a", "B", "10-hosts", "9-hosts", "prod", "z_last"]
                .choose(&mut rng)
                .expect("stem");
            let name = if rng.random_bool(0.2) {
                std::fs::create_dir_all(root.join("sub")).expect("mkdir");
                format!("sub/{stem}{f}{ending}")
            } else {
                format!("{stem}{f}{ending}")
            };
            std::fs::write(root.join(&name), &text).expect("write");
            shown.push_str(&format!("--- {name}\n{text}"));
            models.push(model);
        }
        // What Ansible skips: never read (they are not inventories).
        for skipped in ["notes.md", "old.bak", ".hidden", "x~", "ansible.cfg"] {
            if rng.random_bool(0.3) {
                std::fs::write(root.join(skipped), "[broken\n: : :\n").expect("write");
            }
        }
        let mut everyone = ansible_gen::variant(&base, &mut rng);
        everyone.names = models.iter().flat_map(|m| m.names.clone()).collect();
        everyone.names.sort();
        everyone.names.dedup();
        let vars = maybe_vars(&mut rng, &everyone);
        write_tree(&root, &vars);
        let inventory = match ngfleet::inputs::load_inventory(&root, Default::default()) {
            Ok(inventory) => inventory,
            Err(e) => panic!(
                "ngfleet refused {}:\n{shown}\n{vars:?}\n{e}",
                root.display()
            ),
        };
        let model = models.pop().expect("a file");
        let patterns = patterns_of(&mut rng, &model, &inventory);
        cases.push(Case {
            path: root,
            text: shown,
            vars,
            inventory,
            patterns,
        });
    }
    compare("directories", seed, dir.path(), &cases, 0);
}

/// Runs the oracle on the cases and compares; `cli_runs` cases also go through the command.
fn compare(format: &str, seed: u64, dir: &std::path::Path, cases: &[Case], cli_runs: usize) {
    let jobs: Vec<Value> = cases
        .iter()
        .map(|c| {
            let terms: Vec<String> = c
                .patterns
                .iter()
                .filter_map(|(_, o)| match o {
                    Ours::Refused { term, .. } => {
                        Some(term.trim_start_matches(['&', '!']).to_owned())
                    }
                    Ours::Hosts(_) => None,
                })
                .collect();
            let patterns: Vec<&str> = c.patterns.iter().map(|(p, _)| p.as_str()).collect();
            let limit = c.patterns.iter().find_map(|(p, o)| match o {
                Ours::Hosts(_) => Some(p.as_str()),
                Ours::Refused { .. } => None,
            });
            json!({"path": c.path, "patterns": patterns, "terms": terms, "limit": limit})
        })
        .collect();
    let jobs_file = dir.join("jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(&jobs).expect("json")).expect("write");
    let script = dir.join("oracle.py");
    std::fs::write(&script, ORACLE).expect("write");
    let output = Command::new("python3")
        .arg(&script)
        .arg(&jobs_file)
        // Never a working directory with its own `group_vars/`.
        .current_dir(dir)
        .env("ANSIBLE_LOCAL_TEMP", dir)
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_HOST_PATTERN_MISMATCH", "ignore")
        .env("ANSIBLE_INVENTORY_ENABLED", "yaml,ini")
        .output()
        .expect("python3 runs (ansible-core is installed by scripts/test)");
    assert!(
        output.status.success(),
        "the ansible-core oracle failed (install ansible-core: scripts/test does):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).expect("oracle JSON");
    let mut tally = Tally::default();
    for (case, theirs) in cases.iter().zip(&results) {
        assert!(
            theirs.get("error").is_none(),
            "ansible-core refused {}:\n{}\n{}",
            case.path.display(),
            shown(case),
            theirs["error"]
        );
        let names = |hosts: Vec<&str>| json!(hosts);
        let order: Vec<&str> = case
            .inventory
            .hosts()
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        tally.check(case, "order of all", &names(order), &theirs["order"]);
        let groups: BTreeMap<&str, Vec<&String>> = case
            .inventory
            .hosts()
            .iter()
            .map(|h| (h.name.as_str(), h.groups.iter().collect()))
            .collect();
        tally.check(case, "groups", &json!(groups), &theirs["groups"]);
        let mut vars = our_vars(&case.inventory);
        vars.retain(|_, v| v.as_object().is_some_and(|o| !o.is_empty()));
        tally.check(
            case,
            "host variables",
            &json!(vars),
            &theirs["list"]["_meta"]["hostvars"],
        );
        // `ngfleet inventory --list` (its report) against `ansible-inventory --list`, whole and
        // with the case's first accepted pattern as `--limit`.
        let everyone: Vec<usize> = (0..case.inventory.hosts().len()).collect();
        let list = |shown: &[usize]| -> Value {
            serde_json::from_str(&report::inventory::list(&case.inventory, shown)).expect("json")
        };
        tally.check(case, "inventory --list", &list(&everyone), &theirs["list"]);
        let accepted = case.patterns.iter().find_map(|(p, o)| match o {
            Ours::Hosts(_) => Some(p),
            Ours::Refused { .. } => None,
        });
        if let Some(limit) = accepted {
            let shown = limit
                .parse::<Pattern>()
                .and_then(|p| p.select(&case.inventory))
                .expect("accepted before");
            let what = format!("inventory --list --limit {limit:?}");
            tally.check(case, &what, &list(&shown), &theirs["limited"]);
        }
        for (pattern, ours) in &case.patterns {
            let their = &theirs["patterns"][pattern];
            match ours {
                Ours::Hosts(hosts) => {
                    tally.check(
                        case,
                        &format!("pattern {pattern:?}"),
                        &json!({"hosts": hosts}),
                        their,
                    );
                }
                Ours::Refused { term, error } => {
                    // Deliberate: ngfleet refuses a term that selects nothing; Ansible must
                    // select nothing for it (or fail on it).
                    tally.refused += 1;
                    let alone = &theirs["terms"][term.trim_start_matches(['&', '!'])];
                    let nothing = alone.get("error").is_some()
                        || alone["hosts"].as_array().is_some_and(Vec::is_empty);
                    let agreed = if nothing {
                        json!("refused")
                    } else {
                        alone.clone()
                    };
                    tally.check(
                        case,
                        &format!("pattern {pattern:?}: ngfleet refused it ({error})"),
                        &json!("refused"),
                        &agreed,
                    );
                }
            }
        }
    }
    // The command itself, on a few of them: its output is the library's report.
    for (case, theirs) in cases.iter().zip(&results).take(cli_runs) {
        let name = case
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name");
        let run = case
            .vars
            .iter()
            .fold(Test::new(), |test, (path, text)| test.file(path, text))
            .file(name, &case.text)
            .args(["inventory", "-i", name, "--list"])
            .run();
        let printed: Value = serde_json::from_str(&run.stdout).expect("inventory --list JSON");
        tally.check(
            case,
            "ngfleet inventory --list (command)",
            &printed,
            &theirs["list"],
        );
    }
    println!(
        "ansible differential test ({format}): {} inventories ({} with group_vars/ or host_vars/, {} vars files), {} comparisons ({} patterns refused deliberately), {} mismatches",
        cases.len(),
        cases.iter().filter(|c| !c.vars.is_empty()).count(),
        cases.iter().map(|c| c.vars.len()).sum::<usize>(),
        tally.comparisons,
        tally.refused,
        tally.mismatches.len()
    );
    for m in tally.mismatches.iter().take(5) {
        println!("MISMATCH {m}\n");
    }
    assert!(
        tally.mismatches.is_empty(),
        "{} mismatches (seed {seed})",
        tally.mismatches.len()
    );
}

#[test]
fn yaml_inventories_read_as_ansible_reads_them() {
    run("yaml");
}

#[test]
fn ini_inventories_read_as_ansible_reads_them() {
    run("ini");
}

#[test]
fn directory_inventories_read_as_ansible_reads_them() {
    run_directories();
}

/// `ngfleet inventory` prints what `ansible-inventory` prints, byte for byte.
#[test]
fn inventory_command_prints_what_ansible_inventory_prints() {
    let files = [
        (
            "inventory.yaml",
            "all:\n  hosts:\n    h0:\n    \"web9:2222\": {tier: edge}\n  children:\n    web:\n      hosts: {h2: {x: 1}, h1: }\n      children:\n        webeu: {hosts: {h5: }}\n    db:\n      hosts: {h3: }\n      vars: {p: \"8080\", q: [1, 2]}\n    empty: {}\n",
        ),
        (
            "hosts",
            "h0 a=1\n[web]\nw1:2222 http_port=8080 s=\"8080\" t='x y' u=yes\nw2 ansible_port=22\n[web:vars]\ngp=8080\ngs=\"8080\"\n[db:children]\nweb\n[db]\nd1\n",
        ),
    ];
    let views: [&[&str]; 4] = [
        &["--list"],
        &["--graph"],
        &["--host", "h0"],
        &["--list", "--limit", "web[0],h0"],
    ];
    for (name, text) in files {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(name), text).expect("write");
        for view in views {
            let theirs = Command::new("ansible-inventory")
                .arg("-i")
                .arg(dir.path().join(name))
                .args(view)
                .env("ANSIBLE_LOCAL_TEMP", dir.path())
                .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
                .output()
                .expect("ansible-inventory runs (scripts/test installs it)");
            assert!(theirs.status.success(), "ansible-inventory {view:?} failed");
            let ours = Test::new()
                .file(name, text)
                .args(["inventory", "-i", name])
                .args(view.iter().copied())
                .run();
            assert_eq!(
                ours.stdout,
                String::from_utf8_lossy(&theirs.stdout),
                "{name} {view:?}: ngfleet (left), ansible-inventory (right)"
            );
        }
    }
}

/// With `group_vars/` and `host_vars/`: `ngfleet inventory` prints what `ansible-inventory`
/// prints, byte for byte (ansible-inventory run where no other `group_vars/` is).
#[test]
fn inventory_command_with_vars_files_prints_what_ansible_inventory_prints() {
    let files = [
        (
            "inv/hosts",
            "lone\n[web]\nw1:2222 http_port=8080\nw2\n[web:vars]\ngp=8080\n[db:children]\nweb\n",
        ),
        ("inv/group_vars/all.yml", "gp: all-file\nq: [1, 2]\n"),
        ("inv/group_vars/web/a.yml", "gp: web-a\nnested: {k: v}\n"),
        ("inv/group_vars/web/b.json", "{\"gp\": 9090}"),
        ("inv/group_vars/ungrouped", "u: true\n"),
        (
            "inv/host_vars/w1.yml",
            "http_port: 8443\nansible_port: 2200\n",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let views: [&[&str]; 4] = [
        &["--list"],
        &["--graph"],
        &["--host", "w1"],
        &["--list", "--limit", "web[1],lone"],
    ];
    // The directory form only for `--list`: the views share the reading.
    let runs = views
        .iter()
        .map(|&view| ("inv/hosts", view))
        .chain([("inv", views[0])]);
    for (source, view) in runs {
        let theirs = Command::new("ansible-inventory")
            .arg("-i")
            .arg(dir.path().join(source))
            .args(view)
            .current_dir(empty.path())
            .env("ANSIBLE_LOCAL_TEMP", empty.path())
            .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
            .output()
            .expect("ansible-inventory runs (scripts/test installs it)");
        assert!(theirs.status.success(), "ansible-inventory {view:?} failed");
        let ours = files
            .iter()
            .fold(Test::new(), |test, (path, text)| test.file(path, text))
            .args(["inventory", "-i", source])
            .args(view.iter().copied())
            .run();
        assert_eq!(
            ours.stdout,
            String::from_utf8_lossy(&theirs.stdout),
            "{source} {view:?}: ngfleet (left), ansible-inventory (right)"
        );
    }
}
