//! Reading an inventory document into drafts: groups with their parents and variables; hosts
//! (names expanded from ranges and checked, at most [`Limits::max_hosts`]) with their direct
//! groups and the variable layers of the entries that name them. Per host, only its name is
//! stored, once; memberships are two flat lists of index pairs.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use thiserror::Error;
use yaml_serde::Value;

use super::super::address;
use super::super::diagnostic::{Diagnostic, Position};
use super::super::hostname::{self, HostNameError};
use super::super::hostrange::{self, RangeError};
use super::super::keypath::KeyPath;
use super::super::reader::Reader;
use super::super::source::Document;
use super::{Layer, Limits, Var};

/// Why a host entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HostError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Name(#[from] HostNameError),
    #[error(
        "host pattern expands to more than {limit} names, the most hosts an inventory may have (raise the limit with --max-hosts N)"
    )]
    PatternOverLimit { limit: usize },
    #[error(
        "the inventory has more than {limit} hosts, the most it may have (raise the limit with --max-hosts N)"
    )]
    OverLimit { limit: usize },
}

pub(super) struct GroupDraft {
    pub name: String,
    pub path: KeyPath,
    pub parents: Vec<usize>,
    /// Child groups, in the order they were added (Ansible's `child_groups`).
    pub children: Vec<usize>,
    /// Variables in the order written; a later definition wins.
    pub vars: Vec<(String, Var)>,
}

/// What the walk found, and every problem so far.
pub(super) struct Drafts<'d> {
    pub reader: Reader<'d>,
    pub groups: Vec<GroupDraft>,
    pub group_index: HashMap<String, usize>,
    /// Host names, in inventory order (a host's index is its place here).
    pub hosts: Vec<String>,
    /// (host, group) for every group that lists a host directly, by host, in the order
    /// written (may repeat).
    pub direct: Vec<(usize, usize)>,
    /// (host, layer) for every entry that names a host, by host, in the order written.
    pub host_layers: Vec<(usize, usize)>,
    /// The variables of host entries, shared by every host an entry names.
    pub layers: Vec<Arc<Layer>>,
    /// Whether the host limit was crossed (the hosts are then incomplete).
    pub over_limit: bool,
}

const GROUP_KEYS: &[&str] = &["hosts", "vars", "children"];
pub(super) const ALL: usize = 0;
/// `ungrouped`, made with `all` and its first child, as Ansible does.
pub(super) const UNGROUPED: usize = 1;

/// Walks the document from its root.
pub(super) fn walk(doc: &Document, limits: Limits) -> Drafts<'_> {
    let mut walker = Walker::new(doc, limits);
    walker.walk_root(doc);
    walker.finish()
}

/// Fills the drafts: groups, edges and host entries, in the order Ansible adds them.
pub(super) struct Walker<'d> {
    drafts: Drafts<'d>,
    /// Host name -> index.
    host_index: HashMap<String, usize>,
    limits: Limits,
}

impl<'d> Walker<'d> {
    /// A walker of `doc` (whose root it does not read), with `all` and its child `ungrouped`.
    pub fn new(doc: &'d Document, limits: Limits) -> Walker<'d> {
        let mut walker = Walker {
            drafts: Drafts {
                reader: Reader::new(doc),
                groups: Vec::new(),
                group_index: HashMap::new(),
                hosts: Vec::new(),
                direct: Vec::new(),
                host_layers: Vec::new(),
                layers: Vec::new(),
                over_limit: false,
            },
            host_index: HashMap::new(),
            limits,
        };
        let all = KeyPath::root().key("all");
        walker.group_id("all", &all);
        walker.group_id("ungrouped", &all);
        walker.add_child(ALL, UNGROUPED);
        walker
    }

    /// The drafts, host names in order. Memberships and host layers stay in the order
    /// written.
    pub fn finish(self) -> Drafts<'d> {
        let mut drafts = self.drafts;
        // Each name is kept once, as the index's key, until the walk is over.
        drafts.hosts = vec![String::new(); self.host_index.len()];
        for (name, id) in self.host_index {
            drafts.hosts[id] = name;
        }
        drafts
    }

    /// Reads what follows from `doc`: its problems, and those found while reading it, are
    /// placed there. The problems found so far are kept.
    pub fn read_in(&mut self, doc: &'d Document) {
        let before = std::mem::replace(&mut self.drafts.reader, Reader::new(doc));
        let mut problems = before.into_problems();
        problems.extend_from_slice(doc.problems());
        self.drafts.reader = Reader::from_problems(doc, problems);
    }

    /// Walks another YAML document into the same drafts: groups and hosts accumulate, later
    /// variables override earlier ones.
    pub fn walk_document(&mut self, doc: &'d Document) {
        self.read_in(doc);
        self.walk_root(doc);
    }

    /// Whether a group of that name exists.
    pub fn has_group(&self, name: &str) -> bool {
        self.drafts.group_index.contains_key(name)
    }

    pub fn group_name(&self, group: usize) -> &str {
        &self.drafts.groups[group].name
    }

    /// Adds a group's variables, in the order written (a later one wins).
    pub fn group_vars(&mut self, group: usize, vars: Vec<(String, Var)>) {
        self.drafts.groups[group].vars.extend(vars);
    }

    /// Records a problem at the start of a line, about group `name`.
    pub fn line_error(&mut self, line: usize, name: &str, message: String) {
        let file = self.drafts.reader.doc().file().to_owned();
        self.drafts.reader.push(Diagnostic {
            file,
            position: Some(Position { line, column: 1 }),
            path: KeyPath::root().key(name),
            message,
        });
    }

    /// Makes `child` a child of `parent` (once), as Ansible's `add_child`.
    pub fn add_child(&mut self, parent: usize, child: usize) {
        if parent == child {
            let path = self.drafts.groups[child].path.clone();
            let name = self.drafts.groups[child].name.clone();
            self.drafts
                .reader
                .key_error(&path, format!("group cycle: {name} -> {name}"));
            return;
        }
        if !self.drafts.groups[parent].children.contains(&child) {
            self.drafts.groups[parent].children.push(child);
        }
        if !self.drafts.groups[child].parents.contains(&parent) {
            self.drafts.groups[child].parents.push(parent);
        }
    }
}

impl Drafts<'_> {
    /// The group of that name, created (at `path`) if new.
    pub fn group_id(&mut self, name: &str, path: &KeyPath) -> usize {
        if let Some(&id) = self.group_index.get(name) {
            return id;
        }
        let id = self.groups.len();
        self.groups.push(GroupDraft {
            name: name.to_owned(),
            path: path.clone(),
            parents: Vec::new(),
            children: Vec::new(),
            vars: Vec::new(),
        });
        self.group_index.insert(name.to_owned(), id);
        id
    }
}

impl Walker<'_> {
    pub fn group_id(&mut self, name: &str, path: &KeyPath) -> usize {
        self.drafts.group_id(name, path)
    }

    fn walk_root(&mut self, doc: &Document) {
        let root = KeyPath::root();
        let entries = self.drafts.reader.mapping(
            &root,
            doc.root(),
            "an inventory (a mapping of groups, usually under `all`)",
        );
        // Top-level groups other than `all` become its children once every group is known,
        // unless they have a parent by then (Ansible's `reconcile_inventory`).
        for (name, value) in entries {
            self.walk_group(&name, value, &root.key(&name), None);
        }
    }

    fn walk_group(&mut self, name: &str, value: &Value, path: &KeyPath, parent: Option<usize>) {
        let id = self.group_id(name, path);
        let entries = self.drafts.reader.struct_mapping(
            path,
            value,
            "a group (a mapping with hosts, vars or children)",
            GROUP_KEYS,
        );
        for (key, value) in entries {
            let at = path.key(&key);
            // Ansible reads a section written as one string as a mapping of that one key.
            let one;
            let value = match value {
                Value::String(single) => {
                    let mut mapping = yaml_serde::Mapping::new();
                    mapping.insert(Value::String(single.clone()), Value::Null);
                    one = Value::Mapping(mapping);
                    &one
                }
                other => other,
            };
            match key.as_str() {
                "hosts" => self.walk_hosts(id, value, &at),
                "vars" => {
                    let vars = self.vars(value, &at, "a mapping of group variables");
                    self.drafts.groups[id].vars.extend(vars);
                }
                _ => {
                    let children =
                        self.drafts
                            .reader
                            .mapping(&at, value, "a mapping of child groups");
                    for (child, child_value) in children {
                        self.walk_group(&child, child_value, &at.key(&child), Some(id));
                    }
                }
            }
        }
        if let Some(p) = parent {
            self.add_child(p, id);
        }
    }

    fn walk_hosts(&mut self, group: usize, value: &Value, path: &KeyPath) {
        let entries = self
            .drafts
            .reader
            .mapping(path, value, "a mapping of host names");
        for (pattern, host_value) in entries {
            let at = path.key(&pattern);
            let vars = self.vars(host_value, &at, "a mapping of host variables");
            if !self.host_entry(group, &pattern, vars, &at) {
                return;
            }
        }
    }

    /// One host entry of a group (`pattern: vars` in YAML, a host line in INI): every name
    /// it expands to joins the group and gets the entry's variables; a `:port` is the
    /// `ansible_port` of the hosts it creates. A bad entry is reported at `at`; false once
    /// the host limit is crossed (the walk stops adding hosts).
    pub fn host_entry(
        &mut self,
        group: usize,
        pattern: &str,
        vars: Vec<(String, Var)>,
        at: &KeyPath,
    ) -> bool {
        if self.drafts.over_limit {
            return false;
        }
        if let Err(e) = self.try_host_entry(group, pattern, vars, at) {
            if matches!(e, HostError::OverLimit { .. }) {
                self.drafts.over_limit = true;
            }
            self.drafts.reader.key_error(at, e.to_string());
        }
        !self.drafts.over_limit
    }

    fn try_host_entry(
        &mut self,
        group: usize,
        pattern: &str,
        vars: Vec<(String, Var)>,
        at: &KeyPath,
    ) -> Result<(), HostError> {
        // As Ansible: a key that is not an address is taken whole (and refused below).
        let (pattern, port) = match address::parse(pattern) {
            Some(found) => (found.host, found.port),
            None => (pattern, None),
        };
        let expansion = hostrange::parse(pattern)?;
        let limit = self.limits.max_hosts;
        if expansion.len() > limit {
            return Err(HostError::PatternOverLimit { limit });
        }
        let layer_of = |vars: Vec<(String, Var)>, drafts: &mut Drafts<'_>| {
            (!vars.is_empty()).then(|| {
                drafts.layers.push(Arc::new(Layer(
                    vars.into_iter().collect::<BTreeMap<_, _>>(),
                )));
                drafts.layers.len() - 1
            })
        };
        let layer = layer_of(vars, &mut self.drafts);
        let port_layer = port.and_then(|port| {
            let value = match port.parse::<u64>() {
                Ok(number) => Value::Number(number.into()),
                Err(_) => Value::String(port.to_owned()),
            };
            let origin = at.clone();
            layer_of(
                vec![("ansible_port".to_owned(), Var { value, origin })],
                &mut self.drafts,
            )
        });
        // Room for the whole range at once, rather than rehashing as the index doubles.
        let room = limit.saturating_sub(self.host_index.len());
        self.host_index.reserve(expansion.len().min(room));
        for name in expansion.names() {
            hostname::check(&name)?;
            let count = self.host_index.len();
            let (id, new) = match self.host_index.entry(name) {
                Entry::Occupied(known) => (*known.get(), false),
                Entry::Vacant(_) if count >= limit => return Err(HostError::OverLimit { limit }),
                Entry::Vacant(new) => (*new.insert(count), true),
            };
            self.drafts.direct.push((id, group));
            // The port applies where Ansible creates the host, before its variables.
            if let (Some(port_layer), true) = (port_layer, new) {
                self.drafts.host_layers.push((id, port_layer));
            }
            if let Some(layer) = layer {
                self.drafts.host_layers.push((id, layer));
            }
        }
        Ok(())
    }

    pub fn vars(&mut self, value: &Value, path: &KeyPath, what: &str) -> Vec<(String, Var)> {
        self.drafts
            .reader
            .mapping(path, value, what)
            .into_iter()
            .map(|(key, v)| {
                let origin = path.key(&key);
                (
                    key,
                    Var {
                        value: v.clone(),
                        origin,
                    },
                )
            })
            .collect()
    }
}
