//! Random Ansible inventories and host patterns for the differential test against
//! ansible-core (`ansible_diff.rs`), written as YAML or as INI from one model.
//!
//! Groups form a *spine*: at each depth at most one group has children, and every other group
//! hangs off the spine (some with two parents). Ansible walks the levels below a group's
//! children from a Python set, so where two groups of one level both have children its order
//! depends on memory addresses; the spine keeps every order Ansible gives well defined.

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

/// One group: its parents (indices of earlier groups; none means top level), host entries
/// and variables.
pub struct Group {
    pub name: String,
    pub parents: Vec<usize>,
    pub entries: Vec<Entry>,
    pub vars: Vec<(String, Value)>,
}

/// A host entry: a name (maybe a range, maybe with a port) and its variables.
pub struct Entry {
    pub key: String,
    pub vars: Vec<(String, Value)>,
}

/// A variable value that reads the same way in YAML and (after Ansible's INI typing) in INI.
#[derive(Clone)]
pub enum Value {
    Int(i64),
    Word(String),
    Bool(bool),
    List(Vec<i64>),
}

/// An inventory model: groups (the first is `all`), plus hosts names for patterns.
pub struct Model {
    pub groups: Vec<Group>,
    /// Every host name the entries expand to (for patterns).
    pub names: Vec<String>,
}

const GROUP_NAMES: &[&str] = &[
    "web", "db", "eu", "us", "lb", "app", "canary", "edge", "cache", "blue", "green", "a1",
];
const VAR_NAMES: &[&str] = &["x", "tier", "n", "flag", "ports", "role", "ansible_port"];

pub fn model(rng: &mut ChaCha8Rng) -> Model {
    let mut names: Vec<&str> = GROUP_NAMES.to_vec();
    names.shuffle(rng);
    let group_count = rng.random_range(1..=7);
    let mut groups = vec![Group {
        name: "all".into(),
        parents: vec![],
        entries: vec![],
        vars: vars(rng, 0.5),
    }];
    // The spine: spine[d] is the one group at depth d+1 that may have children.
    let mut spine: Vec<usize> = Vec::new();
    for name in names.iter().take(group_count) {
        let index = groups.len();
        let parents = match rng.random_range(0..4) {
            0 => vec![],
            1 => vec![0],
            _ if !spine.is_empty() => {
                let mut parents = vec![*spine.choose(rng).expect("spine")];
                if rng.random_bool(0.3) {
                    let other = *spine.choose(rng).expect("spine");
                    if !parents.contains(&other) {
                        parents.push(other);
                    }
                }
                parents
            }
            _ => vec![],
        };
        // A group joins the spine when its parent is the spine's deepest group (or it is at
        // the top and the spine is empty).
        let deepest = spine.last().copied();
        let at_top = parents.is_empty() || parents == [0];
        if (at_top && spine.is_empty()) || (parents.len() == 1 && Some(parents[0]) == deepest) {
            spine.push(index);
        }
        let mut vars = vars(rng, 0.5);
        if rng.random_bool(0.25) {
            vars.push((
                "ansible_group_priority".into(),
                Value::Int(rng.random_range(1..4)),
            ));
        }
        groups.push(Group {
            name: (*name).into(),
            parents,
            entries: vec![],
            vars,
        });
    }
    let mut host_names = Vec::new();
    let host_count = rng.random_range(1..=9);
    for h in 0..host_count {
        let (key, expanded) = host_key(rng, h);
        host_names.extend(expanded);
        let placements = rng.random_range(1..=3);
        for _ in 0..placements {
            let group = rng.random_range(0..groups.len());
            if groups[group].entries.iter().any(|e| e.key == key) {
                continue;
            }
            groups[group].entries.push(Entry {
                key: key.clone(),
                vars: vars(rng, 0.4),
            });
        }
    }
    // Entries in a random order within each group, so creation order and group order differ.
    for group in &mut groups {
        group.entries.shuffle(rng);
    }
    // Sometimes a host named like a group, in a group (one in no group but `all` makes
    // Ansible add the *group* to `ungrouped`).
    if rng.random_bool(0.15) && groups.len() > 1 {
        let name = groups[1].name.clone();
        let home = rng.random_range(1..groups.len());
        groups[home].entries.retain(|e| e.key != name);
        groups[home].entries.push(Entry {
            key: name.clone(),
            vars: vec![],
        });
        host_names.push(name);
    }
    host_names.sort();
    host_names.dedup();
    Model {
        groups,
        names: host_names,
    }
}

fn host_key(rng: &mut ChaCha8Rng, h: usize) -> (String, Vec<String>) {
    match rng.random_range(0..10) {
        0 => (
            "r[01:03]".into(),
            vec!["r01".into(), "r02".into(), "r03".into()],
        ),
        1 => ("n[a:c]".into(), vec!["na".into(), "nb".into(), "nc".into()]),
        2 => (
            "s[1:9:4]".into(),
            vec!["s1".into(), "s5".into(), "s9".into()],
        ),
        3 => (format!("p{h}:22{h}"), vec![format!("p{h}")]),
        4 => (format!("2001:db8::{h}"), vec![format!("2001:db8::{h}")]),
        5 => (
            format!("h{h}.example.com"),
            vec![format!("h{h}.example.com")],
        ),
        _ => (format!("h{h}"), vec![format!("h{h}")]),
    }
}

fn vars(rng: &mut ChaCha8Rng, chance: f64) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while rng.random_bool(chance) && out.len() < 4 {
        let name = *VAR_NAMES.choose(rng).expect("names");
        if out.iter().any(|(n, _)| n == name) {
            continue;
        }
        let value = match name {
            "ansible_port" => Value::Int(rng.random_range(1..65536)),
            _ => match rng.random_range(0..4) {
                0 => Value::Int(rng.random_range(-5..9000)),
                1 => {
                    Value::Word(["alpha", "beta", "web tier", "x-1"][rng.random_range(0..4)].into())
                }
                2 => Value::Bool(rng.random_bool(0.5)),
                _ => Value::List((0..rng.random_range(0..3)).map(|i| i * 7).collect()),
            },
        };
        out.push((name.into(), value));
    }
    out
}

/// Patterns over the model's names: names, globs, regexes, subscripts, unions with `:` and
/// `,`, intersections, exclusions, and names that match nothing.
pub fn patterns(rng: &mut ChaCha8Rng, model: &Model, count: usize) -> Vec<String> {
    let groups: Vec<&str> = model.groups.iter().map(|g| g.name.as_str()).collect();
    let term = |rng: &mut ChaCha8Rng| -> String {
        let group = *groups.choose(rng).expect("groups");
        let host = model.names.choose(rng).map_or("h0", String::as_str);
        match rng.random_range(0..14) {
            0 | 1 => group.to_owned(),
            2 | 3 => host.to_owned(),
            4 => format!("{}*", &group[..1]),
            5 => ["*", "a*", "u*", "*e*", "h?", "[hr]*"][rng.random_range(0..6)].to_owned(),
            6 => format!("~{}", &host[..1]),
            7 => format!("{group}[{}]", rng.random_range(-2..3)),
            8 => format!("{group}[{}:]", rng.random_range(0..3)),
            9 => format!(
                "{group}[{}:{}]",
                rng.random_range(0..2),
                rng.random_range(2..5)
            ),
            10 => "ungrouped".to_owned(),
            11 => "nosuch".to_owned(),
            _ => "all".to_owned(),
        }
    };
    (0..count)
        .map(|_| {
            let terms = rng.random_range(1..=4);
            let mut out = String::new();
            let comma = rng.random_bool(0.5);
            for i in 0..terms {
                let mut t = term(rng);
                // Colons inside a term (IPv6 names) only work with commas.
                if !comma && t.contains(':') && !t.ends_with(']') && terms > 1 {
                    t = group_or_all(&groups, rng);
                }
                if i > 0 {
                    out.push(if comma { ',' } else { ':' });
                    match rng.random_range(0..4) {
                        0 => out.push('&'),
                        1 => out.push('!'),
                        _ => {}
                    }
                } else if rng.random_bool(0.1) {
                    out.push('!');
                }
                out.push_str(&t);
            }
            out
        })
        .collect()
}

fn group_or_all(groups: &[&str], rng: &mut ChaCha8Rng) -> String {
    groups.choose(rng).copied().unwrap_or("all").to_owned()
}

fn yaml_value(value: &Value) -> String {
    match value {
        Value::Int(i) => i.to_string(),
        Value::Word(w) => format!("\"{w}\""),
        Value::Bool(b) => b.to_string(),
        Value::List(l) => format!("{l:?}"),
    }
}

fn ini_value(value: &Value) -> String {
    match value {
        Value::Int(i) => i.to_string(),
        Value::Word(w) => format!("'{w}'"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::List(l) => format!("{l:?}").replace(' ', ""),
    }
}

fn yaml_map(vars: &[(String, Value)]) -> String {
    let inner: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k}: {}", yaml_value(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// The model as a YAML inventory: `all` and the top-level groups at the root, every child
/// group under the first of its parents and named (empty) under the others.
pub fn yaml(model: &Model) -> String {
    let mut out = String::new();
    let children_of = |g: usize| -> Vec<usize> {
        (0..model.groups.len())
            .filter(|&c| model.groups[c].parents.contains(&g))
            .collect()
    };
    fn write(
        model: &Model,
        g: usize,
        depth: usize,
        body: bool,
        out: &mut String,
        children_of: &dyn Fn(usize) -> Vec<usize>,
    ) {
        let group = &model.groups[g];
        let pad = "  ".repeat(depth);
        out.push_str(&format!("{pad}{}:\n", group.name));
        if !body {
            return;
        }
        if !group.vars.is_empty() {
            out.push_str(&format!("{pad}  vars: {}\n", yaml_map(&group.vars)));
        }
        if !group.entries.is_empty() {
            out.push_str(&format!("{pad}  hosts:\n"));
            for entry in &group.entries {
                let vars = if entry.vars.is_empty() {
                    String::new()
                } else {
                    yaml_map(&entry.vars)
                };
                out.push_str(&format!("{pad}    \"{}\": {vars}\n", entry.key));
            }
        }
        let kids = children_of(g);
        if !kids.is_empty() {
            out.push_str(&format!("{pad}  children:\n"));
            for c in kids {
                let first = model.groups[c].parents.first() == Some(&g);
                write(model, c, depth + 2, first, out, children_of);
            }
        }
    }
    write(model, 0, 0, true, &mut out, &children_of);
    for g in 1..model.groups.len() {
        if model.groups[g].parents.is_empty() {
            write(model, g, 0, true, &mut out, &children_of);
        }
    }
    out
}

/// The model as an INI inventory, sections in a random order (children may be named before
/// they are declared).
pub fn ini(model: &Model, rng: &mut ChaCha8Rng) -> String {
    let mut sections: Vec<String> = Vec::new();
    for group in &model.groups {
        let mut hosts = format!("[{}]\n", group.name);
        for entry in &group.entries {
            hosts.push_str(&entry.key);
            for (k, v) in &entry.vars {
                hosts.push_str(&format!(" {k}={}", ini_value(v)));
            }
            hosts.push('\n');
        }
        sections.push(hosts);
        if !group.vars.is_empty() {
            let mut vars = format!("[{}:vars]\n", group.name);
            for (k, v) in &group.vars {
                vars.push_str(&format!("{k} = {}\n", ini_value(v)));
            }
            sections.push(vars);
        }
    }
    for (g, group) in model.groups.iter().enumerate() {
        let kids: Vec<&str> = model
            .groups
            .iter()
            .filter(|c| c.parents.contains(&g))
            .map(|c| c.name.as_str())
            .collect();
        if !kids.is_empty() {
            sections.push(format!("[{}:children]\n{}\n", group.name, kids.join("\n")));
        }
    }
    // `[x:vars]` before `[x]` is fine; `[x:children]` may name groups declared later.
    sections[1..].shuffle(rng);
    format!("# generated\n{}", sections.join("\n"))
}

/// Another file of the same inventory: `base`'s groups and parents (so the spine holds
/// across files), with new host entries and variables. Host names repeat across files.
pub fn variant(base: &Model, rng: &mut ChaCha8Rng) -> Model {
    let mut other = model(rng);
    let mut groups = Vec::new();
    for (i, group) in base.groups.iter().enumerate() {
        let (entries, vars) = match other.groups.get_mut(i) {
            Some(g) => (std::mem::take(&mut g.entries), std::mem::take(&mut g.vars)),
            None => (Vec::new(), vars(rng, 0.5)),
        };
        groups.push(Group {
            name: group.name.clone(),
            parents: group.parents.clone(),
            entries,
            vars,
        });
    }
    // Hosts of `other`'s dropped groups are not in the file: patterns naming them are
    // refused by ngfleet and must select nothing in Ansible.
    let mut names: Vec<String> = base.names.iter().chain(&other.names).cloned().collect();
    names.sort();
    names.dedup();
    Model { groups, names }
}

/// `group_vars/` and `host_vars/` for an inventory of `model` (paths relative to the
/// inventory's directory, and texts): files with every ending Ansible looks up (and one it
/// shadows), per-group directories of several files (with files Ansible skips), `all`,
/// `ungrouped`, files for groups and hosts that do not exist, empty files, JSON and YAML,
/// the same keys at several levels, and `ansible_group_priority` as a plain variable.
pub fn vars_files(rng: &mut ChaCha8Rng, model: &Model) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut groups: Vec<&str> = model.groups.iter().map(|g| g.name.as_str()).collect();
    groups.push("ungrouped");
    for name in groups {
        if rng.random_bool(0.5) {
            vars_entry(rng, &format!("group_vars/{name}"), &mut out);
        }
    }
    for name in &model.names {
        if rng.random_bool(0.3) {
            vars_entry(rng, &format!("host_vars/{name}"), &mut out);
        }
    }
    if rng.random_bool(0.3) {
        // Never read: no such group or host.
        out.push(("group_vars/nobody.yml".into(), "x: [unclosed\n".into()));
        out.push(("host_vars/ghost-1".into(), "- a list\n".into()));
    }
    out
}

/// One group's or host's vars: a file (some ending) or a directory of files.
fn vars_entry(rng: &mut ChaCha8Rng, stem: &str, out: &mut Vec<(String, String)>) {
    if rng.random_bool(0.35) {
        let names = [
            "10-first.yml",
            "20-second",
            "05.json",
            "sub/30.yaml",
            "a.yml",
        ];
        let count = rng.random_range(2..=4);
        for name in names.choose_multiple(rng, count) {
            out.push((
                format!("{stem}/{name}"),
                vars_text(rng, name.ends_with(".json")),
            ));
        }
        for skipped in [".hidden.yml", "notes.txt", "old~", "x.d/y.yml"] {
            if rng.random_bool(0.3) {
                out.push((format!("{stem}/{skipped}"), "x: skipped\n".into()));
            }
        }
        return;
    }
    let ending = *["", ".yml", ".yaml", ".json"].choose(rng).expect("ending");
    out.push((format!("{stem}{ending}"), vars_text(rng, ending == ".json")));
    // A later ending is shadowed by the one found first.
    if ending != ".json" && rng.random_bool(0.2) {
        out.push((format!("{stem}.json"), "{\"x\": \"shadowed\"}".into()));
    }
}

/// A vars file's text: YAML or JSON, sometimes empty.
fn vars_text(rng: &mut ChaCha8Rng, json: bool) -> String {
    if rng.random_bool(0.08) {
        return String::new();
    }
    let mut vars = vars(rng, 0.8);
    if rng.random_bool(0.1) {
        vars.push((
            "ansible_group_priority".into(),
            Value::Int(rng.random_range(1..9)),
        ));
    }
    // The YAML 1.1 booleans PyYAML reads (plain), and one quoted (text).
    let yaml11 = (!json && rng.random_bool(0.3)).then(|| {
        *["yes", "No", "OFF", "on", "'yes'"]
            .choose(rng)
            .expect("word")
    });
    if json {
        let inner: Vec<String> = vars
            .iter()
            .map(|(k, v)| format!("\"{k}\": {}", yaml_value(v)))
            .collect();
        format!("{{{}}}\n", inner.join(", "))
    } else {
        let mut text: String = vars
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", yaml_value(v)))
            .collect();
        if let Some(word) = yaml11 {
            text.push_str(&format!("enabled: {word}\n"));
        }
        text
    }
}
