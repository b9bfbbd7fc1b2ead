//! Ansible's host order. A group's hosts are its own hosts (in the order they were added),
//! then those of its children, breadth first (`Group.get_hosts`: the group, its children in
//! order, then each further level); a host counts once, where it first appears. The
//! inventory's order is the order of `all`, so hosts written directly under `all` come first.
//!
//! Ansible walks the levels below a group's children from a Python set of groups, so where
//! two groups of one level both have children, the order of their children's hosts depends
//! on memory addresses there. Here the level is walked in order, one of the orders Ansible
//! may give.

use super::walk::{ALL, GroupDraft};
use super::{Group, Host, Inventory};

/// The inventory with hosts in `all`'s order: host indices are positions in that order.
/// `hosts` and `own` use the walk's indices (the order hosts were first written).
pub(super) fn arrange(
    file: String,
    hosts: Vec<Host>,
    drafts: &[GroupDraft],
    own: Vec<Vec<usize>>,
) -> Inventory {
    let count = hosts.len();
    let children: Vec<&[usize]> = drafts.iter().map(|g| g.children.as_slice()).collect();
    let mut group_stamp = vec![0usize; drafts.len()];
    let mut host_stamp = vec![0usize; count];
    let mut members: Vec<Vec<usize>> = (0..drafts.len())
        .map(|g| {
            let stamp = g + 1;
            let mut list = Vec::new();
            for group in levels(g, &children, &mut group_stamp, stamp) {
                for &h in &own[group] {
                    if host_stamp[h] != stamp {
                        host_stamp[h] = stamp;
                        list.push(h);
                    }
                }
            }
            list
        })
        .collect();
    // Every host is under `all`; one that is not (a cycle, already reported) goes last.
    let mut order = members[ALL].clone();
    let mut placed = vec![false; count];
    for &h in &order {
        placed[h] = true;
    }
    order.extend((0..count).filter(|&h| !placed[h]));
    let mut position = vec![0usize; count];
    for (at, &h) in order.iter().enumerate() {
        position[h] = at;
    }
    let mut slots: Vec<Option<Host>> = hosts.into_iter().map(Some).collect();
    let hosts = order
        .iter()
        .filter_map(|&h| slots.get_mut(h).and_then(Option::take))
        .collect();
    let renumber = |list: &mut Vec<usize>| list.iter_mut().for_each(|h| *h = position[*h]);
    members.iter_mut().for_each(renumber);
    let groups = drafts
        .iter()
        .zip(own)
        .zip(members)
        .map(|((draft, mut own), members)| {
            renumber(&mut own);
            Group {
                name: draft.name.clone(),
                hosts: own,
                children: draft.children.clone(),
                members,
            }
        })
        .collect();
    Inventory {
        file,
        hosts,
        groups,
        creation: position,
    }
}

/// The groups whose own hosts make up `group`'s: itself, its children in order, then each
/// further level, each group once (`stamp` marks the ones taken).
fn levels(group: usize, children: &[&[usize]], taken: &mut [usize], stamp: usize) -> Vec<usize> {
    let mut ordered = vec![group];
    taken[group] = stamp;
    for &child in children[group] {
        if taken[child] != stamp {
            taken[child] = stamp;
            ordered.push(child);
        }
    }
    let mut level: Vec<usize> = ordered.clone();
    while !level.is_empty() {
        let mut next = Vec::new();
        for &parent in &level {
            for &child in children[parent] {
                if taken[child] != stamp {
                    taken[child] = stamp;
                    next.push(child);
                }
            }
        }
        ordered.extend(&next);
        level = next;
    }
    ordered
}
