//! Reading an inventory document into drafts: groups with their parents and variables; hosts
//! (names expanded from ranges and checked, at most [`Limits::max_hosts`]) with their direct
//! groups and the variable layers of the entries that name them. Per host, only its name is
//! stored, once; memberships are two flat lists of index pairs.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use thiserror::Error;
use yaml_serde::Value;

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

/// Walks the document from its root.
pub(super) fn walk(doc: &Document, limits: Limits) -> Drafts<'_> {
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
    walker.group_id("all", &KeyPath::root().key("all"));
    walker.walk_root(doc);
    let mut drafts = walker.drafts;
    // Each name is kept once, as the index's key, until the walk is over.
    drafts.hosts = vec![String::new(); walker.host_index.len()];
    for (name, id) in walker.host_index {
        drafts.hosts[id] = name;
    }
    drafts.direct.sort_by_key(|&(host, _)| host);
    drafts.host_layers.sort_by_key(|&(host, _)| host);
    drafts
}

struct Walker<'d> {
    drafts: Drafts<'d>,
    /// Host name -> index.
    host_index: HashMap<String, usize>,
    limits: Limits,
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
            vars: Vec::new(),
        });
        self.group_index.insert(name.to_owned(), id);
        id
    }
}

impl Walker<'_> {
    fn group_id(&mut self, name: &str, path: &KeyPath) -> usize {
        self.drafts.group_id(name, path)
    }

    fn walk_root(&mut self, doc: &Document) {
        let root = KeyPath::root();
        let entries = self.drafts.reader.mapping(
            &root,
            doc.root(),
            "an inventory (a mapping of groups, usually under `all`)",
        );
        for (name, value) in entries {
            let parent = (name != "all").then_some(ALL);
            self.walk_group(&name, value, &root.key(&name), parent);
        }
    }

    fn walk_group(&mut self, name: &str, value: &Value, path: &KeyPath, parent: Option<usize>) {
        let id = self.group_id(name, path);
        if let Some(p) = parent
            && !self.drafts.groups[id].parents.contains(&p)
        {
            self.drafts.groups[id].parents.push(p);
        }
        let entries = self.drafts.reader.struct_mapping(
            path,
            value,
            "a group (a mapping with hosts, vars or children)",
            GROUP_KEYS,
        );
        for (key, value) in entries {
            let at = path.key(&key);
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
    }

    fn walk_hosts(&mut self, group: usize, value: &Value, path: &KeyPath) {
        let entries = self
            .drafts
            .reader
            .mapping(path, value, "a mapping of host names");
        for (pattern, host_value) in entries {
            if self.drafts.over_limit {
                return;
            }
            let at = path.key(&pattern);
            if let Err(e) = self.host_entry(group, &pattern, host_value, &at) {
                if matches!(e, HostError::OverLimit { .. }) {
                    self.drafts.over_limit = true;
                }
                self.drafts.reader.key_error(&at, e.to_string());
            }
        }
    }

    /// One `pattern: vars` entry of a group's `hosts`: every name it expands to joins the group
    /// and gets the entry's variables. A bad name refuses the rest of the entry.
    fn host_entry(
        &mut self,
        group: usize,
        pattern: &str,
        value: &Value,
        at: &KeyPath,
    ) -> Result<(), HostError> {
        let expansion = hostrange::parse(pattern)?;
        let limit = self.limits.max_hosts;
        if expansion.len() > limit {
            return Err(HostError::PatternOverLimit { limit });
        }
        let vars = self.vars(value, at, "a mapping of host variables");
        let layer = (!vars.is_empty()).then(|| {
            self.drafts.layers.push(Arc::new(Layer(
                vars.into_iter().collect::<BTreeMap<_, _>>(),
            )));
            self.drafts.layers.len() - 1
        });
        // Room for the whole range at once, rather than rehashing as the index doubles.
        let room = limit.saturating_sub(self.host_index.len());
        self.host_index.reserve(expansion.len().min(room));
        for name in expansion.names() {
            hostname::check(&name)?;
            let count = self.host_index.len();
            let id = match self.host_index.entry(name) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(_) if count >= limit => return Err(HostError::OverLimit { limit }),
                Entry::Vacant(new) => *new.insert(count),
            };
            self.drafts.direct.push((id, group));
            if let Some(layer) = layer {
                self.drafts.host_layers.push((id, layer));
            }
        }
        Ok(())
    }

    fn vars(&mut self, value: &Value, path: &KeyPath, what: &str) -> Vec<(String, Var)> {
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
