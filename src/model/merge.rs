//! YAML merge keys (`<<`), resolved as PyYAML, and so Ansible, reads them.
//!
//! `yaml_serde` leaves `<<` as an ordinary key (its `Value::apply_merge` exists, but it does
//! not resolve a merge inside a merged mapping, and its errors carry no position). This module
//! follows PyYAML's `flatten_mapping`:
//!
//! - `<<: *a` or `<<: {…}` merges one mapping; `<<: [*a, *b]` merges several, and an earlier
//!   one wins over a later one; keys written in the mapping itself win over merged ones.
//! - A merged mapping's own `<<` is resolved first (nested merges).
//! - Only a plain `<<` merges: a quoted or tagged `'<<'` is an ordinary key.
//! - A `<<` whose value is not a mapping, an alias of one, or a list of those is an error.
//!
//! While resolving, every node of the resolved tree is given the placement of the node it was
//! written as: a merged key points at its line in the anchor (or in the inline mapping), so a
//! diagnostic on `all.hosts.lab-01.nginx_binary` names the line that set it.

use std::collections::{HashMap, HashSet};

use yaml_serde::{Mapping, Value};

use super::diagnostic::Position;
use super::keypath::KeyPath;
use super::layout::{Layout, Placement};
use super::reader::{describe, scalar_text};

/// The merge key.
const MERGE: &str = "<<";

/// Why a `<<` could not be merged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MergeError {
    #[error(
        "a merge key (`<<`) takes a mapping, an alias of a mapping, or a list of those; found {found}"
    )]
    NotAMapping { found: String },
    #[error("a merge list (`<<: [...]`) takes mappings or aliases of mappings; found {found}")]
    ItemNotAMapping { found: String },
}

/// One merge problem, placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeProblem {
    /// The key path in the resolved document.
    pub path: KeyPath,
    pub position: Option<Position>,
    pub error: MergeError,
}

/// The outcome of resolving a document's merges.
pub struct Resolved {
    /// Where each node of the resolved document was written, by its resolved key path.
    pub placements: HashMap<KeyPath, Placement>,
    pub problems: Vec<MergeProblem>,
}

/// Resolves every merge key under `root` in place, and places every node of the result.
pub fn resolve(root: &mut Value, layout: &Layout) -> Resolved {
    let mut resolver = Resolver {
        layout,
        placements: HashMap::new(),
        problems: Vec::new(),
        reported: HashSet::new(),
    };
    let top = KeyPath::root();
    resolver.walk(root, &top, Some(&top));
    Resolved {
        placements: resolver.placements,
        problems: resolver.problems,
    }
}

/// A mapping's entries with, for each, the written path of the mapping it comes from.
type Sourced = (Mapping, Vec<Option<KeyPath>>);

struct Resolver<'l> {
    layout: &'l Layout,
    placements: HashMap<KeyPath, Placement>,
    problems: Vec<MergeProblem>,
    /// Written paths already reported: an anchor merged in many places is reported once.
    reported: HashSet<(KeyPath, MergeError)>,
}

impl Resolver<'_> {
    /// Places the node at `path` (written at `written`, when known), then its children.
    fn walk(&mut self, value: &mut Value, path: &KeyPath, written: Option<&KeyPath>) {
        if let Some(placement) = written.and_then(|w| self.layout.place(w)) {
            self.placements.insert(path.clone(), placement);
        }
        let base = written.map(|w| self.layout.target(w));
        self.children(value, path, base.as_ref());
    }

    fn children(&mut self, value: &mut Value, path: &KeyPath, base: Option<&KeyPath>) {
        match value {
            Value::Tagged(tagged) => self.children(&mut tagged.value, path, base),
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let written = base.map(|b| b.index(i));
                    self.walk(item, &path.index(i), written.as_ref());
                }
            }
            Value::Mapping(map) => {
                let origins = self.flatten(map, path, base);
                for ((key, item), origin) in map.iter_mut().zip(origins) {
                    let Some(text) = scalar_text(key) else {
                        continue;
                    };
                    let written = origin.map(|o| o.key(&text));
                    self.walk(item, &path.key(&text), written.as_ref());
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }

    /// Resolves the `<<` of one mapping (PyYAML's `flatten_mapping`). Returns, for each entry
    /// of the resolved mapping, the written path of the mapping the entry comes from.
    fn flatten(
        &mut self,
        map: &mut Mapping,
        path: &KeyPath,
        base: Option<&KeyPath>,
    ) -> Vec<Option<KeyPath>> {
        let merges =
            map.contains_key(MERGE) && !base.is_some_and(|b| self.layout.literal_merge_key(b));
        if !merges {
            return vec![base.cloned(); map.len()];
        }
        let mut merge = Value::Null;
        let mut own = Vec::with_capacity(map.len());
        for (key, value) in std::mem::take(map) {
            if key.as_str() == Some(MERGE) {
                merge = value;
            } else {
                own.push((key, value));
            }
        }
        let written = base.map(|b| b.key(MERGE));
        let sources = self.sources(merge, &path.key(MERGE), written.as_ref());
        let mut out = Entries::default();
        // PyYAML puts the merged entries first, the last source first, then the mapping's own;
        // a later entry replaces an earlier one's value and keeps its place.
        for (source, origins) in sources.into_iter().rev() {
            for (entry, origin) in source.into_iter().zip(origins) {
                out.insert(entry, origin);
            }
        }
        for entry in own {
            out.insert(entry, base.cloned());
        }
        let (resolved, origins) = out.finish();
        *map = resolved;
        origins
    }

    /// The mappings a `<<` value merges, each flattened, in the order written.
    fn sources(&mut self, value: Value, path: &KeyPath, written: Option<&KeyPath>) -> Vec<Sourced> {
        match untag(value) {
            Value::Mapping(map) => vec![self.source(map, path, written)],
            Value::Sequence(items) => {
                let base = written.map(|w| self.layout.target(w));
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let at = path.index(i);
                    let item_written = base.as_ref().map(|b| b.index(i));
                    match untag(item) {
                        Value::Mapping(map) => {
                            out.push(self.source(map, &at, item_written.as_ref()))
                        }
                        other => self.problem(
                            &at,
                            item_written.as_ref(),
                            MergeError::ItemNotAMapping {
                                found: describe(&other),
                            },
                        ),
                    }
                }
                out
            }
            other => {
                self.problem(
                    path,
                    written,
                    MergeError::NotAMapping {
                        found: describe(&other),
                    },
                );
                Vec::new()
            }
        }
    }

    fn source(&mut self, mut map: Mapping, path: &KeyPath, written: Option<&KeyPath>) -> Sourced {
        let base = written.map(|w| self.layout.target(w));
        let origins = self.flatten(&mut map, path, base.as_ref());
        (map, origins)
    }

    fn problem(&mut self, path: &KeyPath, written: Option<&KeyPath>, error: MergeError) {
        if let Some(w) = written
            && !self.reported.insert((w.clone(), error.clone()))
        {
            return;
        }
        let position = match written {
            Some(w) => self.layout.nearest(w).map(|p| p.value),
            None => None,
        };
        self.problems.push(MergeProblem {
            path: path.clone(),
            position,
            error,
        });
    }
}

fn untag(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => untag(tagged.value),
        other => other,
    }
}

/// Mapping entries being merged: a later insert of a key replaces the value (and its origin)
/// in the earlier one's place, as a Python dict does.
#[derive(Default)]
struct Entries {
    entries: Vec<((Value, Value), Option<KeyPath>)>,
    index: HashMap<Value, usize>,
}

impl Entries {
    fn insert(&mut self, (key, value): (Value, Value), origin: Option<KeyPath>) {
        match self.index.get(&key) {
            Some(&at) => self.entries[at] = ((key, value), origin),
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push(((key, value), origin));
            }
        }
    }

    fn finish(self) -> (Mapping, Vec<Option<KeyPath>>) {
        self.entries.into_iter().unzip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(text: &str) -> (Value, Resolved) {
        let mut root: Value = yaml_serde::from_str(text).expect("yaml");
        let layout = Layout::scan(text);
        let out = resolve(&mut root, &layout);
        (root, out)
    }

    fn keys(value: &Value) -> Vec<String> {
        value
            .as_mapping()
            .expect("mapping")
            .keys()
            .filter_map(scalar_text)
            .collect()
    }

    const ANCHORS: &str = "\
base: &base {x: base, y: base}
other: &other {x: other, z: other}
";

    #[test]
    fn one_alias_and_own_keys_win() {
        let (root, out) = resolved(&format!("{ANCHORS}h: {{<<: *base, y: own}}\n"));
        assert!(out.problems.is_empty());
        assert_eq!(root["h"]["x"], "base");
        assert_eq!(root["h"]["y"], "own");
        assert!(root["h"].get(MERGE).is_none(), "the merge key is gone");
    }

    #[test]
    fn earlier_list_items_win_and_order_follows_pyyaml() {
        let (root, _) = resolved(&format!("{ANCHORS}h: {{<<: [*base, *other], w: own}}\n"));
        assert_eq!(root["h"]["x"], "base");
        assert_eq!(root["h"]["z"], "other");
        // PyYAML: the last source's keys first, then earlier ones, then the mapping's own.
        assert_eq!(keys(&root["h"]), ["x", "z", "y", "w"]);
        let (root, _) = resolved(&format!("{ANCHORS}h: {{<<: [*other, *base]}}\n"));
        assert_eq!(root["h"]["x"], "other");
    }

    #[test]
    fn nested_merges_are_resolved_first() {
        let (root, out) = resolved(
            "a: &a {x: a, y: a}\nb: &b {<<: *a, y: b}\nc: &c {<<: *b, z: c}\nh: {<<: *c}\n",
        );
        assert!(out.problems.is_empty());
        assert_eq!(
            (&root["h"]["x"], &root["h"]["y"], &root["h"]["z"]),
            (&Value::from("a"), &Value::from("b"), &Value::from("c"))
        );
    }

    #[test]
    fn quoted_merge_keys_are_plain_keys() {
        let (root, _) = resolved(&format!("{ANCHORS}h: {{'<<': *base}}\n"));
        assert_eq!(root["h"][MERGE]["x"], "base");
        assert!(root["h"].get("x").is_none());
    }

    #[test]
    fn merged_keys_are_placed_where_they_were_written() {
        let (_, out) = resolved(&format!(
            "{ANCHORS}h:\n  <<: [*other, {{q: 1}}]\n  y: own\n"
        ));
        let at = |path: KeyPath| {
            out.placements
                .get(&path)
                .map(|p| (p.value.line, p.value.column))
        };
        let h = KeyPath::root().key("h");
        assert_eq!(at(h.key("x")), Some((2, 19)), "from the anchor `other`");
        assert_eq!(at(h.key("y")), Some((5, 6)), "its own key");
        assert_eq!(at(h.key("q")), Some((4, 20)), "from the inline mapping");
    }

    #[test]
    fn bad_merge_values_are_placed_errors() {
        let (_, out) = resolved("a: &a [1]\nh: {<<: 3}\ni: {<<: [{x: 1}, *a, null]}\n");
        let got: Vec<String> = out
            .problems
            .iter()
            .map(|p| {
                let pos = p.position.expect("placed");
                format!("{}:{}: {}: {}", pos.line, pos.column, p.path, p.error)
            })
            .collect();
        assert_eq!(
            got,
            [
                "2:9: h[\"<<\"]: a merge key (`<<`) takes a mapping, an alias of a mapping, or a list of those; found 3",
                "3:18: i[\"<<\"][1]: a merge list (`<<: [...]`) takes mappings or aliases of mappings; found a list",
                "3:22: i[\"<<\"][2]: a merge list (`<<: [...]`) takes mappings or aliases of mappings; found null",
            ]
        );
    }

    #[test]
    fn an_anchor_merged_in_many_places_is_reported_once() {
        let (_, out) = resolved("bad: &bad {<<: 1}\nh1: {<<: *bad}\nh2: {<<: *bad}\n");
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert_eq!(out.problems[0].path, KeyPath::root().key("bad").key(MERGE));
    }
}
