//! What `ngfleet inventory` prints: the `ansible-inventory --list` JSON (groups with their own
//! `hosts` and `children`, empty groups left out; `_meta.hostvars` with each host's resolved
//! variables), one host's variables (`--host`), and the `--graph` tree. Keys sorted, four
//! spaces of indent, as Ansible prints them.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::inventory::{Host, Inventory};

/// `ansible-inventory --list`, for the hosts in `shown` (all of them without a limit).
pub fn list(inventory: &Inventory, shown: &[usize]) -> String {
    let mut available = vec![false; inventory.hosts().len()];
    for &h in shown {
        available[h] = true;
    }
    let mut out = Map::new();
    let mut seen = Vec::new();
    group(inventory, "all", &available, &mut seen, &mut out);
    let hostvars: Map<String, Value> = shown
        .iter()
        .map(|&h| inventory.host(h))
        .map(|h| (h.name.clone(), vars(h)))
        .filter(|(_, v)| v.as_object().is_some_and(|o| !o.is_empty()))
        .collect();
    out.insert(
        "_meta".into(),
        json!({"hostvars": hostvars, "profile": "inventory_legacy"}),
    );
    pretty(&Value::Object(out))
}

/// One group and, the first time each is met, its descendants (Ansible's `format_group`).
fn group(
    inventory: &Inventory,
    name: &str,
    available: &[bool],
    seen: &mut Vec<String>,
    out: &mut Map<String, Value>,
) {
    let Some((own, children)) = inventory.group_layout(name) else {
        return;
    };
    let mut entry = Map::new();
    if name != "all" {
        let hosts: Vec<&str> = own
            .iter()
            .filter(|&&h| available[h])
            .map(|&h| inventory.host(h).name.as_str())
            .collect();
        if !hosts.is_empty() {
            entry.insert("hosts".into(), json!(hosts));
        }
    }
    if !children.is_empty() {
        entry.insert("children".into(), json!(children));
    }
    for child in children {
        if !seen.iter().any(|s| s == child) {
            group(inventory, child, available, seen, out);
            seen.push(child.to_owned());
        }
    }
    if !entry.is_empty() {
        out.insert(name.to_owned(), Value::Object(entry));
    }
}

/// A host's resolved variables, by name.
pub fn vars(host: &Host) -> Value {
    Value::Object(
        host.vars
            .iter()
            .map(|(k, v)| {
                let value = serde_json::to_value(&v.value).unwrap_or(Value::Null);
                (k.clone(), value)
            })
            .collect(),
    )
}

/// `ansible-inventory --host NAME`.
pub fn host(host: &Host) -> String {
    pretty(&vars(host))
}

/// `ansible-inventory --graph [GROUP]`: child groups first, then the group's own hosts (in
/// `shown`); `all` lists no host of its own.
pub fn graph(inventory: &Inventory, top: &str, shown: &[usize]) -> String {
    let mut available = vec![false; inventory.hosts().len()];
    for &h in shown {
        available[h] = true;
    }
    let mut lines = Vec::new();
    graph_group(inventory, top, 0, &available, &mut lines);
    lines.join("\n") + "\n"
}

fn graph_group(
    inventory: &Inventory,
    name: &str,
    depth: usize,
    available: &[bool],
    lines: &mut Vec<String>,
) {
    let line = |text: String, depth: usize| {
        if depth == 0 {
            text
        } else {
            format!("{}--{text}", "  |".repeat(depth))
        }
    };
    lines.push(line(format!("@{name}:"), depth));
    let Some((own, children)) = inventory.group_layout(name) else {
        return;
    };
    for child in children {
        graph_group(inventory, child, depth + 1, available, lines);
    }
    if name != "all" {
        for &h in own.iter().filter(|&&h| available[h]) {
            lines.push(line(inventory.host(h).name.clone(), depth + 1));
        }
    }
}

/// JSON with sorted keys and four spaces of indent, as Python's `json.dumps(indent=4)`.
fn pretty(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a JSON value to memory cannot fail.
    let _ = value.serialize(&mut serializer);
    String::from_utf8(out).unwrap_or_default() + "\n"
}
