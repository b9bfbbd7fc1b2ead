//! Ansible's INI inventories (`plugins/inventory/ini.py`, ansible-core 2.19), read line by
//! line as Ansible does: hosts before any section are in `ungrouped`; `[group]` lists hosts
//! (a name or range, an optional `:port`, then `key=value` words split as Python's `shlex`
//! splits them), `[group:vars]` lists `key = value` lines, `[group:children]` names child
//! groups, which may be declared further down. Every value is typed by Python's
//! `literal_eval` ([`pyliteral`]): `8080` is a number, `'8080'` text. `#` and `;` start comment
//! lines; `#` also ends a host line. Problems carry the file, line and column; the key paths
//! read as in a YAML inventory (`web.hosts.web-01.http_port`).

use std::collections::HashMap;

use yaml_serde::Value;

use super::super::diagnostic::{Diagnostic, Position};
use super::super::keypath::KeyPath;
use super::super::layout::Placement;
use super::super::pyliteral;
use super::super::pyshlex;
use super::super::source::Document;
use super::walk::{Drafts, UNGROUPED, Walker};
use super::{Limits, Var};

/// What a section holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hosts,
    Children,
    Vars,
}

/// One meaningful line.
enum Line {
    Section {
        name: String,
        kind: Kind,
        line: usize,
    },
    Host {
        pattern: String,
        vars: Vec<(String, Value)>,
        path: KeyPath,
    },
    Var {
        name: String,
        value: Value,
        path: KeyPath,
    },
    Child {
        name: String,
        line: usize,
    },
}

/// Whether `text` reads as an INI inventory rather than YAML: its first line that is not
/// blank or a comment is a `[section]`, or it is not a YAML mapping at all (a list of hosts).
pub(super) fn looks_like_ini(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']));
    match first {
        None => false,
        Some(line) if section(line).is_some() => true,
        Some(line) => !line.contains(": ") && !line.ends_with(':') && !line.starts_with("---"),
    }
}

/// `[name]` or `[name:kind]`, an optional `#` comment after it.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let (inside, after) = (&rest[..close], rest[close + 1..].trim_start());
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, kind) = match inside.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (inside, None),
    };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let name_ok = !name.is_empty() && !name.contains(|c: char| c == ']' || c.is_whitespace());
    let kind_ok = kind.is_none_or(|k| !k.is_empty() && k.chars().all(word));
    (name_ok && kind_ok).then_some((name, kind))
}

/// Applies scanned lines to new drafts of `doc`.
pub(super) fn walk(doc: &Document, lines: Lines, limits: Limits) -> Drafts<'_> {
    let mut walker = Walker::new(doc, limits);
    apply(&mut walker, lines);
    walker.finish()
}

/// The meaningful lines of an INI inventory, in order, to be applied to a walker.
pub(super) struct Lines(Vec<Line>);

/// Reads an INI inventory's lines: the document holds where each key path was written and
/// the line problems.
pub(super) fn scan(file: &str, text: &str) -> (Document, Lines) {
    let mut lines = Vec::new();
    let mut placements = HashMap::new();
    let mut problems = Vec::new();
    let mut group = "ungrouped".to_owned();
    let mut kind = Kind::Hosts;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let number = index + 1;
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        let at = |offset: usize| Position {
            line: number,
            column: indent + offset + 1,
        };
        let mut problem = |offset: usize, message: String| {
            problems.push(Diagnostic {
                file: file.to_owned(),
                position: Some(at(offset)),
                path: KeyPath::root().key(&group),
                message,
            });
        };
        if let Some((name, tag)) = section(line) {
            let parsed = match tag {
                None | Some("hosts") => Some(Kind::Hosts),
                Some("children") => Some(Kind::Children),
                Some("vars") => Some(Kind::Vars),
                Some(other) => {
                    problem(
                        0,
                        format!("section [{name}:{other}] has unknown type: {other}"),
                    );
                    None
                }
            };
            if let Some(parsed) = parsed {
                group = name.to_owned();
                kind = parsed;
                let place = Placement {
                    key: at(1),
                    value: at(1),
                };
                placements.insert(KeyPath::root().key(name), place);
                lines.push(Line::Section {
                    name: group.clone(),
                    kind,
                    line: number,
                });
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            problem(
                0,
                format!(
                    "invalid section entry {line:?}: a section has no spaces and no other invalid characters"
                ),
            );
            continue;
        }
        let base = KeyPath::root().key(&group);
        match kind {
            Kind::Hosts => {
                let words = match pyshlex::split(line) {
                    Ok(words) => words,
                    Err(e) => {
                        problem(0, format!("failed to read host line {line:?}: {e}"));
                        continue;
                    }
                };
                let Some(((pattern, _), rest)) = words.split_first() else {
                    continue;
                };
                if pattern.trim() == "---" {
                    problem(
                        0,
                        "a host named `---` is a sign this is a YAML file".to_owned(),
                    );
                    continue;
                }
                if pattern.ends_with(':') {
                    problem(
                        0,
                        format!("host {pattern:?} ends in `:`, which is reserved for a port"),
                    );
                    continue;
                }
                let path = base.key("hosts").key(pattern);
                placements.insert(
                    path.clone(),
                    Placement {
                        key: at(0),
                        value: at(0),
                    },
                );
                let mut vars = Vec::new();
                for (word, offset) in rest {
                    let Some((key, value)) = word.split_once('=') else {
                        problem(
                            *offset,
                            format!("expected key=value host variable assignment, found {word:?}"),
                        );
                        continue;
                    };
                    let place = Placement {
                        key: at(*offset),
                        value: at(*offset + key.len() + 1),
                    };
                    placements.insert(path.key(key), place);
                    vars.push((key.to_owned(), typed(value)));
                }
                lines.push(Line::Host {
                    pattern: pattern.clone(),
                    vars,
                    path,
                });
            }
            Kind::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    problem(0, format!("expected key=value, found {line:?}"));
                    continue;
                };
                let (key, value) = (key.trim(), value.trim());
                let path = base.key("vars").key(key);
                let value_at =
                    line.len() - line[line.find('=').unwrap_or(0) + 1..].trim_start().len();
                placements.insert(
                    path.clone(),
                    Placement {
                        key: at(0),
                        value: at(value_at),
                    },
                );
                lines.push(Line::Var {
                    name: key.to_owned(),
                    value: typed(value),
                    path,
                });
            }
            Kind::Children => {
                let name = line.split('#').next().unwrap_or_default().trim();
                if name.is_empty()
                    || name.contains(|c: char| c == ':' || c == ']' || c.is_whitespace())
                {
                    problem(0, format!("expected a group name, found {line:?}"));
                    continue;
                }
                placements.insert(
                    base.key("children").key(name),
                    Placement {
                        key: at(0),
                        value: at(0),
                    },
                );
                lines.push(Line::Child {
                    name: name.to_owned(),
                    line: number,
                });
            }
        }
    }
    (
        Document::placed(file, Value::Null, placements, problems),
        Lines(lines),
    )
}

/// An INI value as Ansible types it.
fn typed(text: &str) -> Value {
    pyliteral::eval(text).unwrap_or_else(|| Value::String(text.to_owned()))
}

/// A group named in a `[x:vars]` or `[x:children]` line before `[x]` declares it.
enum Pending {
    Vars { line: usize },
    Children { line: usize, parents: Vec<usize> },
}

/// Adds the lines' groups, hosts, variables and children in Ansible's order; hosts before
/// any section are in `ungrouped`.
pub(super) fn apply(walker: &mut Walker<'_>, Lines(lines): Lines) {
    let mut pending: Vec<(String, Pending)> = Vec::new();
    let mut group = UNGROUPED;
    for line in lines {
        match line {
            Line::Section { name, kind, line } => {
                let path = KeyPath::root().key(&name);
                if !walker.has_group(&name)
                    && kind == Kind::Vars
                    && !pending.iter().any(|(n, _)| *n == name)
                {
                    pending.push((name.clone(), Pending::Vars { line }));
                }
                group = walker.group_id(&name, &path);
                if kind != Kind::Vars {
                    resolve(walker, &mut pending, &name, group);
                }
            }
            Line::Host {
                pattern,
                vars,
                path,
            } => {
                let vars = vars
                    .into_iter()
                    .map(|(k, value)| {
                        let origin = path.key(&k);
                        (k, Var { value, origin })
                    })
                    .collect();
                if !walker.host_entry(group, &pattern, vars, &path) {
                    return;
                }
            }
            Line::Var { name, value, path } => {
                walker.group_vars(
                    group,
                    vec![(
                        name,
                        Var {
                            value,
                            origin: path,
                        },
                    )],
                );
            }
            Line::Child { name, line } => {
                if walker.has_group(&name) {
                    let child = walker.group_id(&name, &KeyPath::root().key(&name));
                    walker.add_child(group, child);
                } else if let Some((_, Pending::Children { parents, .. })) =
                    pending.iter_mut().find(|(n, _)| *n == name)
                {
                    parents.push(group);
                } else if !pending.iter().any(|(n, _)| *n == name) {
                    pending.push((
                        name,
                        Pending::Children {
                            line,
                            parents: vec![group],
                        },
                    ));
                }
            }
        }
    }
    for (name, waiting) in pending {
        let (line, message) = match waiting {
            Pending::Vars { line } => (
                line,
                format!("section [{name}:vars] is for a group that is never declared"),
            ),
            Pending::Children { line, .. } => (
                line,
                format!("group {name:?} is named as a child but never declared"),
            ),
        };
        walker.line_error(line, &name, message);
    }
}

/// `name` is declared: it becomes a child of the groups that named it (and so on up).
fn resolve(walker: &mut Walker<'_>, pending: &mut Vec<(String, Pending)>, name: &str, id: usize) {
    let Some(at) = pending.iter().position(|(n, _)| n == name) else {
        return;
    };
    let (_, waiting) = pending.remove(at);
    if let Pending::Children { parents, .. } = waiting {
        for parent in parents {
            walker.add_child(parent, id);
            let parent_name = walker.group_name(parent).to_owned();
            if pending
                .iter()
                .any(|(n, p)| *n == parent_name && matches!(p, Pending::Children { .. }))
            {
                resolve(walker, pending, &parent_name, parent);
            }
        }
    }
}

#[cfg(test)]
#[path = "ini_tests.rs"]
mod tests;
