//! Building the hosts from the drafts, in time and memory linear in the number of hosts.
//!
//! Hosts in the same groups share one *membership*: its groups (ancestors and `all`
//! included), their names, and their variable layers in precedence order, all worked out
//! once. Hosts with the same membership and the same host-entry layers share one [`Vars`] and
//! one [`Connection`], validated once (so a bad group variable is reported once, not once per
//! host). A host itself holds its name and shared pointers.
//!
//! The layers of a host, lowest precedence first, as ansible-core 2.19's `VariableManager`
//! stacks them for `ansible-inventory`: the inventory's `all` and group variables (groups by
//! depth, `ansible_group_priority`, name), then `group_vars/all`, then `group_vars/` of the
//! host's other groups (the same order), then the inventory's host variables, then
//! `host_vars/`. So any `group_vars/` file beats any group variable written in the inventory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::super::diagnostic::{Diagnostic, Diagnostics};
use super::super::keypath::KeyPath;
use super::super::reader::{Reader, scalar_text};
use super::connection::{connection, nginx_paths};
use super::order;
use super::vars_files::VarsDirs;
use super::walk::{ALL, Drafts, GroupDraft, UNGROUPED};
use super::{Connection, Host, Inventory, Layer, NginxPaths, Vars};

/// What Ansible's `reconcile_inventory` does to a host's place in `ungrouped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ungrouped {
    Unchanged,
    /// In no group but `all`: added to `ungrouped`.
    Added,
    /// Listed under `ungrouped` and in another group: taken out of it.
    Removed,
}

/// Groups shared by some hosts.
struct Membership {
    ungrouped: Ungrouped,
    /// Group names, sorted.
    names: Arc<[String]>,
    /// The groups' variable layers, lowest precedence first (empty ones left out).
    layers: Vec<Arc<Layer>>,
}

/// What hosts with the same variables share: the variables, and the connection and nginx
/// paths, or `None` when a variable is invalid (already reported).
struct Shared {
    vars: Vars,
    settings: Option<(Arc<Connection>, NginxPaths)>,
}

/// Per-group facts the memberships are made from.
struct GroupFacts {
    depth: Vec<usize>,
    priority: Vec<i64>,
    ancestors: Vec<Vec<usize>>,
    layers: Vec<Arc<Layer>>,
    /// Each group's `group_vars/` layer, read when a host of the group is first built (as
    /// Ansible reads a group's files only for its hosts: an empty group's are never read).
    file_layers: Vec<Option<Option<Arc<Layer>>>>,
}

pub(super) fn build(mut drafts: Drafts<'_>, vars: &VarsDirs) -> Result<Inventory, Diagnostics> {
    if drafts.over_limit {
        return Err(problems(drafts.reader));
    }
    // Groups with no parent are children of `all`, in the order they were made.
    for g in 1..drafts.groups.len() {
        if drafts.groups[g].parents.is_empty() {
            drafts.groups[g].parents.push(ALL);
            drafts.groups[ALL].children.push(g);
        }
    }
    let mut facts = group_facts(&mut drafts);
    let mut own_lists = own_hosts(&drafts);
    // `host_vars/` comes after the inventory's host entries (the sort below keeps the order).
    if vars.host_vars.is_some() {
        for (h, name) in drafts.hosts.iter().enumerate() {
            if let Some(layer) = vars.host_layer(&mut drafts.reader, name) {
                drafts.layers.push(layer);
                drafts.host_layers.push((h, drafts.layers.len() - 1));
            }
        }
    }
    drafts.direct.sort_by_key(|&(host, _)| host);
    // Stable: each host's layers stay in the order written.
    drafts.host_layers.sort_by_key(|&(host, _)| host);
    let mut added = Vec::new();
    let mut removed = vec![false; drafts.hosts.len()];
    let mut memberships: Vec<Membership> = Vec::new();
    let mut membership_index: HashMap<(Vec<usize>, Ungrouped), usize> = HashMap::new();
    let mut shared: Vec<Shared> = Vec::new();
    let mut shared_index: HashMap<(usize, Vec<usize>), usize> = HashMap::new();
    let mut hosts = Vec::with_capacity(drafts.hosts.len());
    // Hosts of one range come one after another with the same groups and layers: the last
    // lookups are remembered.
    let mut direct: Vec<usize> = Vec::new();
    let mut own: Vec<usize> = Vec::new();
    let mut last: Option<(Vec<usize>, Vec<usize>, usize, usize)> = None;
    let (mut at_direct, mut at_layer) = (0, 0);
    for (h, name) in std::mem::take(&mut drafts.hosts).into_iter().enumerate() {
        direct.clear();
        while let Some(&(_, g)) = drafts.direct.get(at_direct).filter(|(host, _)| *host == h) {
            direct.push(g);
            at_direct += 1;
        }
        own.clear();
        while let Some(&(_, l)) = drafts
            .host_layers
            .get(at_layer)
            .filter(|(host, _)| *host == h)
        {
            own.push(l);
            at_layer += 1;
        }
        let (m, s) = match &last {
            Some((d, o, m, s)) if *d == direct && *o == own => (*m, *s),
            _ => {
                let found = groups_of(&direct, &facts);
                let key = found.clone();
                let m = match membership_index.get(&key) {
                    Some(&m) => m,
                    None => {
                        let files = GroupFiles {
                            vars,
                            reader: &mut drafts.reader,
                        };
                        let made = membership(&drafts.groups, &mut facts, files, found);
                        memberships.push(made);
                        membership_index.insert(key, memberships.len() - 1);
                        memberships.len() - 1
                    }
                };
                let key = (m, own.clone());
                let s = match shared_index.get(&key) {
                    Some(&s) => s,
                    None => {
                        let made = share(&mut drafts, &memberships[m], &own);
                        shared.push(made);
                        shared_index.insert(key, shared.len() - 1);
                        shared.len() - 1
                    }
                };
                last = Some((direct.clone(), own.clone(), m, s));
                (m, s)
            }
        };
        match memberships[m].ungrouped {
            Ungrouped::Unchanged => {}
            Ungrouped::Added => added.push(h),
            Ungrouped::Removed => removed[h] = true,
        }
        if let Some((connection, nginx)) = &shared[s].settings {
            hosts.push(Host {
                name,
                groups: Arc::clone(&memberships[m].names),
                vars: shared[s].vars.clone(),
                connection: Arc::clone(connection),
                nginx: nginx.clone(),
            });
        }
    }
    let file = drafts.reader.doc().file().to_owned();
    if let Some(problems) = Diagnostics::from_vec(drafts.reader.into_problems()) {
        return Err(problems);
    }
    own_lists[UNGROUPED].retain(|&h| !removed[h]);
    own_lists[UNGROUPED].extend(added);
    Ok(order::arrange(file, hosts, &drafts.groups, own_lists))
}

/// Each group's own hosts, in the order they were added, each once.
fn own_hosts(drafts: &Drafts<'_>) -> Vec<Vec<usize>> {
    let mut own: Vec<Vec<usize>> = vec![Vec::new(); drafts.groups.len()];
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    for &(host, group) in &drafts.direct {
        if seen.insert((host, group)) {
            own[group].push(host);
        }
    }
    own
}

fn problems(reader: Reader<'_>) -> Diagnostics {
    let file = reader.doc().file().to_owned();
    Diagnostics::from_vec(reader.into_problems()).unwrap_or_else(|| {
        Diagnostics::single(Diagnostic {
            file,
            position: None,
            path: KeyPath::root(),
            message: "the inventory is over its host limit".to_owned(),
        })
    })
}

/// Depths, priorities, ancestors and variable layers of every group.
fn group_facts(drafts: &mut Drafts<'_>) -> GroupFacts {
    let depth = depths(drafts);
    let file_layers = vec![None; drafts.groups.len()];
    // A group defined in several places keeps the last definition of each variable.
    let mut layers: Vec<Layer> = drafts
        .groups
        .iter()
        .map(|g| Layer(g.vars.iter().cloned().collect()))
        .collect();
    // `ansible_group_priority` orders the group; Ansible keeps it out of the variables.
    let priority = layers
        .iter_mut()
        .map(|layer| {
            layer
                .0
                .remove("ansible_group_priority")
                .and_then(|v| scalar_text(&v.value))
                .and_then(|t| t.parse().ok())
                .unwrap_or(1)
        })
        .collect();
    let layers = layers.into_iter().map(Arc::new).collect();
    GroupFacts {
        depth,
        priority,
        ancestors: ancestors(&drafts.groups),
        layers,
        file_layers,
    }
}

/// Every group of a host listed directly in `direct` (their ancestors and `all`), sorted, and
/// what Ansible's reconciliation does with `ungrouped`: a host in no other group joins it, a
/// host listed in it and in another group leaves it.
fn groups_of(direct: &[usize], facts: &GroupFacts) -> (Vec<usize>, Ungrouped) {
    let closure = |direct: &mut dyn Iterator<Item = usize>| {
        let mut groups: Vec<usize> = direct
            .flat_map(|g| facts.ancestors[g].iter().copied())
            .chain([ALL])
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    };
    let groups = closure(&mut direct.iter().copied());
    let others = groups.iter().any(|&g| g != ALL && g != UNGROUPED);
    if direct.contains(&UNGROUPED) && others {
        let rest = closure(&mut direct.iter().copied().filter(|&g| g != UNGROUPED));
        return (rest, Ungrouped::Removed);
    }
    if !others && !groups.contains(&UNGROUPED) {
        return (vec![ALL, UNGROUPED], Ungrouped::Added);
    }
    (groups, Ungrouped::Unchanged)
}

/// A membership: its groups in precedence order give the variable layers: the inventory's,
/// then `group_vars/all`, then the other groups' `group_vars/`.
/// Where the groups' `group_vars/` layers are read from, and their problems recorded.
struct GroupFiles<'a, 'd> {
    vars: &'a VarsDirs,
    reader: &'a mut Reader<'d>,
}

fn membership(
    groups: &[GroupDraft],
    facts: &mut GroupFacts,
    files: GroupFiles<'_, '_>,
    (ids, ungrouped): (Vec<usize>, Ungrouped),
) -> Membership {
    let rank = |g: usize| (facts.depth[g], facts.priority[g], groups[g].name.as_str());
    let mut order = ids.clone();
    order.sort_by(|&a, &b| rank(a).cmp(&rank(b)));
    let mut names: Vec<String> = ids.iter().map(|&g| groups[g].name.clone()).collect();
    names.sort();
    let mut layers: Vec<Arc<Layer>> = order
        .iter()
        .filter(|&&g| !facts.layers[g].0.is_empty())
        .map(|&g| Arc::clone(&facts.layers[g]))
        .collect();
    // `order` starts with `all` (depth 0): its file, then the other groups' in order.
    for &g in &order {
        let GroupDraft { name, path, .. } = &groups[g];
        let layer = facts.file_layers[g]
            .get_or_insert_with(|| files.vars.group_layer(files.reader, name, path));
        layers.extend(layer.clone());
    }
    Membership {
        ungrouped,
        names: names.into(),
        layers,
    }
}

/// The variables of a membership plus host-entry layers, and their settings.
fn share(drafts: &mut Drafts<'_>, membership: &Membership, own: &[usize]) -> Shared {
    let layers: Vec<Arc<Layer>> = membership
        .layers
        .iter()
        .cloned()
        .chain(own.iter().map(|&l| Arc::clone(&drafts.layers[l])))
        .collect();
    let vars = Vars {
        layers: layers.into(),
    };
    let connection = connection(&mut drafts.reader, &vars);
    let nginx = nginx_paths(&mut drafts.reader, &vars);
    let settings = match (connection, nginx) {
        (Some(c), Some(n)) => Some((Arc::new(c), n)),
        _ => None,
    };
    Shared { vars, settings }
}

/// Every group containing each group, itself included, sorted.
fn ancestors(groups: &[GroupDraft]) -> Vec<Vec<usize>> {
    (0..groups.len())
        .map(|g| {
            let mut found = Vec::new();
            let mut stack = vec![g];
            while let Some(next) = stack.pop() {
                if found.contains(&next) {
                    continue;
                }
                found.push(next);
                stack.extend(groups[next].parents.iter().copied());
            }
            found.sort_unstable();
            found
        })
        .collect()
}

/// Depth of every group (`all` is 0), reporting each cycle.
fn depths(drafts: &mut Drafts<'_>) -> Vec<usize> {
    let mut depth: Vec<Option<usize>> = vec![None; drafts.groups.len()];
    for id in 0..drafts.groups.len() {
        let mut trail = Vec::new();
        depth_of(drafts, id, &mut depth, &mut trail);
    }
    depth.into_iter().map(|d| d.unwrap_or(1)).collect()
}

fn depth_of(
    drafts: &mut Drafts<'_>,
    id: usize,
    memo: &mut [Option<usize>],
    trail: &mut Vec<usize>,
) -> usize {
    if let Some(d) = memo[id] {
        return d;
    }
    if trail.contains(&id) {
        let cycle: Vec<&str> = trail
            .iter()
            .skip_while(|&&g| g != id)
            .chain(std::iter::once(&id))
            .map(|&g| drafts.groups[g].name.as_str())
            .collect();
        let message = format!("group cycle: {}", cycle.join(" -> "));
        let path = drafts.groups[id].path.clone();
        drafts.reader.key_error(&path, message);
        memo[id] = Some(1);
        return 1;
    }
    trail.push(id);
    let parents = drafts.groups[id].parents.clone();
    let d = parents
        .iter()
        .map(|&p| depth_of(drafts, p, memo, trail) + 1)
        .max()
        .unwrap_or(0);
    trail.pop();
    memo[id] = Some(d);
    d
}
