//! Ansible inventories (YAML or INI, a file or a directory, with `group_vars/` and
//! `host_vars/` beside them), read unchanged: groups nested to any depth, host ranges,
//! variable precedence, and the connection and nginx variables ngfleet understands.
//!
//! Precedence follows ansible-core 2.19: the inventory's `all` < its groups ordered by depth
//! (parents before children), then `ansible_group_priority`, then name < `group_vars/all` <
//! the other groups' `group_vars/` (same order) < the inventory's host variables <
//! `host_vars/`. Every other variable is kept verbatim (gates may use it) and is never an
//! error.
//!
//! Reading is linear in the number of hosts: the document is walked once into group and host
//! drafts ([`walk`]), then every host is built from what it shares with others ([`build`]):
//! variables are layers shared by every host they apply to, never copied per host, and the
//! connection settings are worked out once per distinct set of layers. An inventory may hold
//! at most [`DEFAULT_MAX_HOSTS`] hosts unless [`Limits::max_hosts`] says otherwise.

mod build;
mod connection;
mod ini;
mod order;
mod sources;
mod vars_files;
mod walk;

use std::collections::BTreeMap;
use std::sync::Arc;

use yaml_serde::Value;

use super::diagnostic::Diagnostics;
use super::keypath::KeyPath;
use super::pattern::HostUniverse;
use super::reader::scalar_text;
use super::ssh_config::ProxyJump;
use super::values::{Port, RemotePath};

pub use sources::SourceFile;
pub use vars_files::{VarsDirs, VarsEntry, VarsFile, VarsTree};
pub use walk::HostError;

/// The nginx binary when the inventory does not name one.
pub const DEFAULT_NGINX_BINARY: &str = "/usr/sbin/nginx";
/// The nginx pid file when the inventory does not name one.
pub const DEFAULT_NGINX_PID_FILE: &str = "/run/nginx.pid";
/// The most hosts an inventory may hold unless told otherwise (`--max-hosts`).
pub const DEFAULT_MAX_HOSTS: usize = 1_000_000;

/// Bounds on what an inventory may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most distinct hosts, after range expansion, over the whole inventory.
    pub max_hosts: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_hosts: DEFAULT_MAX_HOSTS,
        }
    }
}

/// One variable's value and where its winning definition sits in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    pub value: Value,
    pub origin: KeyPath,
}

/// The variables defined in one place (a group's `vars`, or one host entry), shared by every
/// host they apply to.
#[derive(Debug, Default, PartialEq)]
struct Layer(BTreeMap<String, Var>);

/// A host's variables: the layers that apply to it, lowest precedence first. Cloning shares
/// them.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    layers: Arc<[Arc<Layer>]>,
}

impl Vars {
    /// The winning definition of a variable.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.layers.iter().rev().find_map(|layer| layer.0.get(name))
    }

    /// A variable as text, when it is a scalar.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| scalar_text(&v.value))
    }

    /// Every variable with its winning definition, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        let mut merged = BTreeMap::new();
        for layer in self.layers.iter() {
            merged.extend(layer.0.iter());
        }
        merged.into_iter()
    }
}

impl PartialEq for Vars {
    fn eq(&self, other: &Vars) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Whether privileged commands need `sudo -n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Become {
    /// `ansible_become` is false or unset: sudo only when the login user is not root.
    Unset,
    /// `ansible_become: true`: always sudo.
    Sudo,
}

/// Host-key policy asked for by the inventory (`StrictHostKeyChecking`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeyChecking {
    /// Not set: the command line decides (strict unless `--accept-new`).
    Default,
    /// `yes`: unknown keys are refused.
    Strict,
    /// `accept-new`: unknown keys are recorded (and shown), changed keys are refused.
    AcceptNew,
    /// `no` (or `off`, `false`), which ngfleet reads as `accept-new`: keys are still checked
    /// and remembered. Host keys are never trusted silently.
    No,
}

/// A known_hosts path set in the inventory, and the variable that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHostsFile {
    /// As written (`~` is expanded by the controller).
    pub path: String,
    pub from: KnownHostsVar,
}

/// The inventory variable a known_hosts path comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KnownHostsVar {
    /// `ngfleet_known_hosts`.
    Ngfleet,
    /// `-o UserKnownHostsFile=` in `ansible_ssh_common_args`.
    UserKnownHostsFile,
}

/// How to reach a host over SSH (shared by the hosts with the same variables; the address is
/// [`Host::address`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `ansible_host`, checked to be a host name or an IP address.
    pub ansible_host: Option<String>,
    /// `ansible_port`; `None` leaves it to ssh_config, then 22.
    pub port: Option<Port>,
    /// `ansible_user`; `None` means the controller's user.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`, as written (`~` is expanded by the transport).
    pub identity_file: Option<String>,
    /// `ngfleet_ssh_certificate`: a user certificate file, as written (OpenSSH's
    /// `CertificateFile`; `~` is expanded by the transport).
    pub certificate_file: Option<String>,
    pub become_: Become,
    /// `ngfleet_known_hosts`, else `UserKnownHostsFile` from `ansible_ssh_common_args`.
    pub known_hosts: Option<KnownHostsFile>,
    pub host_key_checking: HostKeyChecking,
    /// `ngfleet_jump`, else `ProxyJump`/`-J` from `ansible_ssh_common_args` (hops or
    /// `none`); `None` leaves it to ssh_config.
    pub jump: Option<ProxyJump>,
    /// `ngfleet_ssh_config`, else `-F` from `ansible_ssh_common_args`: the ssh_config file
    /// read for this host instead of `~/.ssh/config` and `/etc/ssh/ssh_config`.
    pub ssh_config: Option<String>,
}

/// Where nginx lives on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxPaths {
    pub binary: RemotePath,
    pub pid_file: RemotePath,
}

/// Where an inventory's text comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// One file.
    File(&'a SourceFile),
    /// A directory's files in Ansible's order; `name` (the directory) names problems that no
    /// one file shows.
    Directory {
        name: &'a str,
        files: &'a [SourceFile],
    },
}

/// One host with everything ngfleet knows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: String,
    /// Every group the host belongs to, ancestors and `all` included, sorted by name (shared
    /// by the hosts of the same groups).
    pub groups: Arc<[String]>,
    pub vars: Vars,
    pub connection: Arc<Connection>,
    pub nginx: NginxPaths,
}

impl Host {
    /// Where to connect: `ansible_host`, or the inventory name.
    pub fn address(&self) -> &str {
        self.connection
            .ansible_host
            .as_deref()
            .unwrap_or(&self.name)
    }

    /// A variable for `{{ name }}` templates: the host's vars, plus `inventory_hostname` and
    /// `ansible_host` (always there).
    pub fn template_var(&self, name: &str) -> Option<String> {
        match name {
            "inventory_hostname" => Some(self.name.clone()),
            "ansible_host" => Some(self.address().to_owned()),
            other => self.vars.text(other),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Group {
    name: String,
    /// The group's own hosts, in the order they were added.
    hosts: Vec<usize>,
    /// Child groups (indices into the groups), in the order they were added.
    children: Vec<usize>,
    /// Every member host (its own, then its descendants'), in Ansible's order.
    members: Vec<usize>,
}

/// A whole inventory: hosts in Ansible's order (that of `all`) and groups in the order they
/// were defined.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    file: String,
    hosts: Vec<Host>,
    groups: Vec<Group>,
    /// Host indices in the order the hosts were first written.
    creation: Vec<usize>,
}

impl Inventory {
    /// Parses and validates an inventory within the default [`Limits`]; `file` names it in
    /// diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Inventory, Diagnostics> {
        Inventory::parse_within(file, text, Limits::default())
    }

    /// Parses and validates an inventory within `limits`.
    /// The format is told by content: a YAML mapping is a YAML inventory; `[section]`s or
    /// host lines make an INI one.
    pub fn parse_within(file: &str, text: &str, limits: Limits) -> Result<Inventory, Diagnostics> {
        let file = SourceFile {
            name: file.to_owned(),
            text: text.to_owned(),
        };
        Inventory::read(Source::File(&file), &VarsDirs::default(), limits)
    }

    /// Reads an inventory with the `group_vars/` and `host_vars/` beside it, within `limits`.
    pub fn read(
        source: Source<'_>,
        vars: &VarsDirs,
        limits: Limits,
    ) -> Result<Inventory, Diagnostics> {
        match source {
            Source::File(file) => match sources::read(&file.name, &file.text)? {
                sources::Parsed::Yaml(doc) => build::build(walk::walk(&doc, limits), vars),
                sources::Parsed::Ini(doc, lines) => {
                    build::build(ini::walk(&doc, lines, limits), vars)
                }
            },
            Source::Directory { name, files } => sources::parse(name, files, vars, limits),
        }
    }

    /// Reads several inventory files, in order, as one (Ansible's directory inventory); `name`
    /// (the directory) names problems that no one file shows.
    pub fn parse_files(
        name: &str,
        files: &[SourceFile],
        limits: Limits,
    ) -> Result<Inventory, Diagnostics> {
        Inventory::read(
            Source::Directory { name, files },
            &VarsDirs::default(),
            limits,
        )
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn host(&self, index: usize) -> &Host {
        &self.hosts[index]
    }

    /// The host of that name (a linear search).
    pub fn find(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// How many groups there are, `all` and `ungrouped` included.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Group names, `all` and `ungrouped` first, in the order they were defined.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// A group's own hosts (in the order added) and its child groups' names (in the order
    /// added), as `ansible-inventory` shows them.
    pub fn group_layout(&self, name: &str) -> Option<(&[usize], Vec<&str>)> {
        let group = self.groups.iter().find(|g| g.name == name)?;
        let children = group
            .children
            .iter()
            .map(|&c| self.groups[c].name.as_str())
            .collect();
        Some((&group.hosts, children))
    }

    /// Members of a group, in Ansible's order (its own hosts, then its children's).
    pub fn group(&self, name: &str) -> Option<&[usize]> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.members.as_slice())
    }
}

impl HostUniverse for Inventory {
    fn host_count(&self) -> usize {
        self.hosts.len()
    }

    fn host_name(&self, index: usize) -> &str {
        &self.hosts[index].name
    }

    fn group_members(&self, group: &str) -> Option<Vec<usize>> {
        self.group(group).map(<[usize]>::to_vec)
    }

    fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    fn creation_order(&self) -> Vec<usize> {
        self.creation.clone()
    }
}

#[cfg(test)]
mod tests;
