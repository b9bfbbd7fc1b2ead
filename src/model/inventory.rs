//! Ansible YAML inventories, read unchanged: groups nested to any depth, host ranges,
//! variable precedence, and the connection and nginx variables ngfleet understands.
//!
//! Precedence follows Ansible: `all` < groups ordered by depth (parents before children),
//! then `ansible_group_priority`, then name < host variables. Every other variable is kept
//! verbatim (gates may use it) and is never an error.

use std::collections::{BTreeMap, HashMap};

use yaml_serde::Value;

use super::diagnostic::Diagnostics;
use super::hostrange;
use super::keypath::KeyPath;
use super::pattern::HostUniverse;
use super::reader::{Reader, describe, scalar_text};
use super::source::Document;
use super::values::{JumpHost, Port, RemotePath};

/// The nginx binary when the inventory does not name one.
pub const DEFAULT_NGINX_BINARY: &str = "/usr/sbin/nginx";
/// The nginx pid file when the inventory does not name one.
pub const DEFAULT_NGINX_PID_FILE: &str = "/run/nginx.pid";

/// One variable's value and where its winning definition sits in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    pub value: Value,
    pub origin: KeyPath,
}

/// A host's merged variables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vars(BTreeMap<String, Var>);

impl Vars {
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.0.get(name)
    }

    /// A variable as text, when it is a scalar.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| scalar_text(&v.value))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.0.iter()
    }

    fn set(&mut self, name: &str, var: &Var) {
        self.0.insert(name.to_owned(), var.clone());
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

/// How to reach a host over SSH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `ansible_host`, or the inventory name.
    pub address: String,
    pub port: Port,
    /// `ansible_user`; `None` means the controller's user.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`, as written (`~` is expanded by the transport).
    pub identity_file: Option<String>,
    pub become_: Become,
    /// `ngfleet_known_hosts`, else `UserKnownHostsFile` from `ansible_ssh_common_args`.
    pub known_hosts: Option<KnownHostsFile>,
    pub host_key_checking: HostKeyChecking,
    /// `ngfleet_jump`, else `ProxyJump`/`-J` from `ansible_ssh_common_args`.
    pub jump: Option<JumpHost>,
}

/// Where nginx lives on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxPaths {
    pub binary: RemotePath,
    pub pid_file: RemotePath,
}

/// One host with everything ngfleet knows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: String,
    /// Every group the host belongs to, ancestors and `all` included, sorted by name.
    pub groups: Vec<String>,
    pub vars: Vars,
    pub connection: Connection,
    pub nginx: NginxPaths,
}

impl Host {
    /// A variable for `{{ name }}` templates: the host's vars, plus `inventory_hostname` and
    /// `ansible_host` (always there).
    pub fn template_var(&self, name: &str) -> Option<String> {
        match name {
            "inventory_hostname" => Some(self.name.clone()),
            "ansible_host" => Some(self.connection.address.clone()),
            other => self.vars.text(other),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Group {
    name: String,
    /// Indices of member hosts (direct or through descendants), in inventory order.
    members: Vec<usize>,
}

/// A whole inventory: hosts in inventory order and groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    file: String,
    hosts: Vec<Host>,
    host_names: Vec<String>,
    groups: Vec<Group>,
}

impl Inventory {
    /// Parses and validates an inventory; `file` names it in diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Inventory, Diagnostics> {
        let doc = Document::parse(file, text).map_err(Diagnostics::single)?;
        let mut builder = Builder::new(&doc);
        builder.walk_root();
        builder.finish()
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

    pub fn find(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// How many groups there are, `all` and `ungrouped` included.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Members of a group, in inventory order.
    pub fn group(&self, name: &str) -> Option<&[usize]> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.members.as_slice())
    }
}

impl HostUniverse for Inventory {
    fn host_names(&self) -> &[String] {
        &self.host_names
    }

    fn group_members(&self, group: &str) -> Option<Vec<usize>> {
        self.group(group).map(<[usize]>::to_vec)
    }

    fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }
}

struct GroupDraft {
    name: String,
    path: KeyPath,
    parents: Vec<usize>,
    hosts: Vec<usize>,
    vars: Vec<(String, Var)>,
}

struct HostDraft {
    name: String,
    vars: Vec<(String, Var)>,
}

struct Builder<'d> {
    reader: Reader<'d>,
    groups: Vec<GroupDraft>,
    group_index: HashMap<String, usize>,
    hosts: Vec<HostDraft>,
    host_index: HashMap<String, usize>,
}

const GROUP_KEYS: &[&str] = &["hosts", "vars", "children"];
const ALL: usize = 0;

impl<'d> Builder<'d> {
    fn new(doc: &'d Document) -> Builder<'d> {
        let mut builder = Builder {
            reader: Reader::new(doc),
            groups: Vec::new(),
            group_index: HashMap::new(),
            hosts: Vec::new(),
            host_index: HashMap::new(),
        };
        builder.group_id("all", &KeyPath::root().key("all"));
        builder
    }

    fn group_id(&mut self, name: &str, path: &KeyPath) -> usize {
        if let Some(&id) = self.group_index.get(name) {
            return id;
        }
        let id = self.groups.len();
        self.groups.push(GroupDraft {
            name: name.to_owned(),
            path: path.clone(),
            parents: Vec::new(),
            hosts: Vec::new(),
            vars: Vec::new(),
        });
        self.group_index.insert(name.to_owned(), id);
        id
    }

    fn host_id(&mut self, name: &str) -> usize {
        if let Some(&id) = self.host_index.get(name) {
            return id;
        }
        let id = self.hosts.len();
        self.hosts.push(HostDraft {
            name: name.to_owned(),
            vars: Vec::new(),
        });
        self.host_index.insert(name.to_owned(), id);
        id
    }

    fn walk_root(&mut self) {
        let doc = self.reader.doc();
        let root = KeyPath::root();
        let entries = self.reader.mapping(
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
            && !self.groups[id].parents.contains(&p)
        {
            self.groups[id].parents.push(p);
        }
        let entries = self.reader.struct_mapping(
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
                    self.groups[id].vars.extend(vars);
                }
                _ => {
                    let children = self.reader.mapping(&at, value, "a mapping of child groups");
                    for (child, child_value) in children {
                        self.walk_group(&child, child_value, &at.key(&child), Some(id));
                    }
                }
            }
        }
    }

    fn walk_hosts(&mut self, group: usize, value: &Value, path: &KeyPath) {
        let entries = self.reader.mapping(path, value, "a mapping of host names");
        for (pattern, host_value) in entries {
            let at = path.key(&pattern);
            let names = match hostrange::expand(&pattern) {
                Ok(names) => names,
                Err(e) => {
                    self.reader.key_error(&at, e.to_string());
                    continue;
                }
            };
            let vars = self.vars(host_value, &at, "a mapping of host variables");
            for name in names {
                if name.chars().any(char::is_whitespace) || name.is_empty() {
                    self.reader
                        .key_error(&at, format!("invalid host name {name:?}"));
                    continue;
                }
                let id = self.host_id(&name);
                self.hosts[id].vars.extend(vars.iter().cloned());
                if !self.groups[group].hosts.contains(&id) {
                    self.groups[group].hosts.push(id);
                }
            }
        }
    }

    fn vars(&mut self, value: &Value, path: &KeyPath, what: &str) -> Vec<(String, Var)> {
        self.reader
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

    /// Depth of every group (`all` is 0), or a diagnostic for a cycle.
    fn depths(&mut self) -> Vec<usize> {
        let mut depth: Vec<Option<usize>> = vec![None; self.groups.len()];
        for id in 0..self.groups.len() {
            let mut trail = Vec::new();
            self.depth_of(id, &mut depth, &mut trail);
        }
        depth.into_iter().map(|d| d.unwrap_or(1)).collect()
    }

    fn depth_of(&mut self, id: usize, memo: &mut [Option<usize>], trail: &mut Vec<usize>) -> usize {
        if let Some(d) = memo[id] {
            return d;
        }
        if trail.contains(&id) {
            let cycle: Vec<&str> = trail
                .iter()
                .skip_while(|&&g| g != id)
                .chain(std::iter::once(&id))
                .map(|&g| self.groups[g].name.as_str())
                .collect();
            let message = format!("group cycle: {}", cycle.join(" -> "));
            let path = self.groups[id].path.clone();
            self.reader.key_error(&path, message);
            memo[id] = Some(1);
            return 1;
        }
        trail.push(id);
        let parents = self.groups[id].parents.clone();
        let d = parents
            .iter()
            .map(|&p| self.depth_of(p, memo, trail) + 1)
            .max()
            .unwrap_or(0);
        trail.pop();
        memo[id] = Some(d);
        d
    }

    /// Every group containing `group`, itself included.
    fn ancestors(&self, group: usize, out: &mut Vec<usize>) {
        if out.contains(&group) {
            return;
        }
        out.push(group);
        for &p in &self.groups[group].parents {
            self.ancestors(p, out);
        }
    }

    fn finish(mut self) -> Result<Inventory, Diagnostics> {
        let depth = self.depths();
        let ungrouped = self.group_id("ungrouped", &KeyPath::root().key("all"));
        let mut host_groups: Vec<Vec<usize>> = vec![Vec::new(); self.hosts.len()];
        for (gid, group) in self.groups.iter().enumerate() {
            for &h in &group.hosts {
                let mut found = Vec::new();
                self.ancestors(gid, &mut found);
                for g in found {
                    if !host_groups[h].contains(&g) {
                        host_groups[h].push(g);
                    }
                }
            }
        }
        for groups in &mut host_groups {
            if !groups.contains(&ALL) {
                groups.push(ALL);
            }
            if groups.len() == 1 {
                groups.push(ungrouped);
            }
        }
        let priorities: Vec<i64> = self
            .groups
            .iter()
            .map(|g| {
                g.vars
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "ansible_group_priority")
                    .and_then(|(_, v)| scalar_text(&v.value))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(1)
            })
            .collect();

        let mut hosts = Vec::with_capacity(self.hosts.len());
        for (hid, draft) in self.hosts.iter().enumerate() {
            let mut order = host_groups[hid].clone();
            order.sort_by(|&a, &b| {
                let key = |g: usize| {
                    (
                        depth.get(g).copied().unwrap_or(1),
                        priorities.get(g).copied().unwrap_or(1),
                        self.groups[g].name.as_str(),
                    )
                };
                key(a).cmp(&key(b))
            });
            let mut vars = Vars::default();
            for g in &order {
                for (k, v) in &self.groups[*g].vars {
                    vars.set(k, v);
                }
            }
            for (k, v) in &draft.vars {
                vars.set(k, v);
            }
            let mut groups: Vec<String> =
                order.iter().map(|&g| self.groups[g].name.clone()).collect();
            groups.sort();
            hosts.push((draft.name.clone(), groups, vars));
        }

        let mut built = Vec::with_capacity(hosts.len());
        for (name, groups, vars) in hosts {
            let connection = connection(&mut self.reader, &name, &vars);
            let nginx = nginx_paths(&mut self.reader, &vars);
            if let (Some(connection), Some(nginx)) = (connection, nginx) {
                built.push(Host {
                    name,
                    groups,
                    vars,
                    connection,
                    nginx,
                });
            }
        }

        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(gid, g)| Group {
                name: g.name.clone(),
                members: host_groups
                    .iter()
                    .enumerate()
                    .filter(|(_, gs)| gs.contains(&gid))
                    .map(|(h, _)| h)
                    .collect(),
            })
            .collect();
        let file = self.reader.doc().file().to_owned();
        if let Some(problems) = Diagnostics::from_vec(self.reader.into_problems()) {
            return Err(problems);
        }
        let host_names = built.iter().map(|h| h.name.clone()).collect();
        Ok(Inventory {
            file,
            hosts: built,
            host_names,
            groups,
        })
    }
}

/// A connection variable as plain text; templates are refused rather than sent verbatim.
fn plain(reader: &mut Reader<'_>, vars: &Vars, name: &str, what: &str) -> Option<String> {
    let var = vars.get(name)?;
    let text = reader.text(&var.origin, &var.value, what)?;
    if text.contains("{{") || text.contains("{%") {
        reader.error(
            &var.origin,
            format!("templated values are not supported in {name}, found {text:?}"),
        );
        return None;
    }
    Some(text)
}

fn boolean(reader: &mut Reader<'_>, var: &Var) -> Option<bool> {
    let parsed = match &var.value {
        Value::Bool(b) => Some(*b),
        other => scalar_text(other).and_then(|t| match t.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" => Some(true),
            "no" | "false" | "off" | "0" | "n" => Some(false),
            _ => None,
        }),
    };
    if parsed.is_none() {
        reader.error(
            &var.origin,
            format!(
                "expected a boolean (true/false/yes/no), found {}",
                describe(&var.value)
            ),
        );
    }
    parsed
}

/// What `ansible_ssh_common_args` says about host keys and jumps.
#[derive(Default)]
struct CommonArgs {
    known_hosts: Option<String>,
    checking: Option<HostKeyChecking>,
    jump: Option<String>,
}

fn common_args(reader: &mut Reader<'_>, var: &Var, text: &str) -> CommonArgs {
    let mut out = CommonArgs::default();
    let Some(words) = shlex::split(text) else {
        reader.error(&var.origin, format!("unbalanced quotes in {text:?}"));
        return out;
    };
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = if word.len() > 2 && (word.starts_with("-o") || word.starts_with("-J"))
        {
            (word[..2].to_owned(), Some(word[2..].to_owned()))
        } else {
            (word, None)
        };
        match flag.as_str() {
            "-J" => out.jump = inline.or_else(|| words.next()),
            "-o" => {
                let Some(option) = inline.or_else(|| words.next()) else {
                    continue;
                };
                let (key, value) = match option.split_once('=') {
                    Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
                    None => match option.split_once(' ') {
                        Some((k, v)) => (k.to_owned(), v.trim().to_owned()),
                        None => (option.clone(), words.next().unwrap_or_default()),
                    },
                };
                match key.to_ascii_lowercase().as_str() {
                    "userknownhostsfile" => {
                        out.known_hosts = value.split_whitespace().next().map(str::to_owned);
                    }
                    "stricthostkeychecking" => {
                        out.checking = match value.to_ascii_lowercase().as_str() {
                            "yes" | "true" => Some(HostKeyChecking::Strict),
                            "accept-new" => Some(HostKeyChecking::AcceptNew),
                            "no" | "off" | "false" => Some(HostKeyChecking::No),
                            "ask" => Some(HostKeyChecking::Default),
                            _ => {
                                reader.error(
                                    &var.origin,
                                    format!("unknown StrictHostKeyChecking value {value:?}"),
                                );
                                None
                            }
                        }
                    }
                    "proxyjump" => out.jump = Some(value),
                    "proxycommand" => reader.error(
                        &var.origin,
                        "ProxyCommand is not supported; use ProxyJump or ngfleet_jump",
                    ),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

fn connection(reader: &mut Reader<'_>, name: &str, vars: &Vars) -> Option<Connection> {
    let mut ok = true;
    let address = plain(reader, vars, "ansible_host", "a host name or address")
        .unwrap_or_else(|| name.to_owned());
    let port = match vars.get("ansible_port") {
        None => Port::SSH,
        Some(var) => match reader.parse::<Port>(&var.origin, &var.value, "a port number") {
            Some(p) => p,
            None => {
                ok = false;
                Port::SSH
            }
        },
    };
    let user = plain(reader, vars, "ansible_user", "a user name");
    let identity_file = plain(
        reader,
        vars,
        "ansible_ssh_private_key_file",
        "a key file path",
    );
    let become_ = match vars.get("ansible_become") {
        None => Become::Unset,
        Some(var) => match boolean(reader, var) {
            Some(true) => Become::Sudo,
            Some(false) => Become::Unset,
            None => {
                ok = false;
                Become::Unset
            }
        },
    };
    let args = match vars.get("ansible_ssh_common_args") {
        None => CommonArgs::default(),
        Some(var) => match plain(reader, vars, "ansible_ssh_common_args", "ssh arguments") {
            Some(text) => common_args(reader, var, &text),
            None => CommonArgs::default(),
        },
    };
    let known_hosts = plain(reader, vars, "ngfleet_known_hosts", "a known_hosts path")
        .map(|path| KnownHostsFile {
            path,
            from: KnownHostsVar::Ngfleet,
        })
        .or(args.known_hosts.map(|path| KnownHostsFile {
            path,
            from: KnownHostsVar::UserKnownHostsFile,
        }));
    let jump_var = vars.get("ngfleet_jump");
    let jump_text = match jump_var {
        Some(_) => plain(reader, vars, "ngfleet_jump", "a jump host"),
        None => args.jump,
    };
    let jump = match jump_text {
        None => None,
        Some(text) => match text.parse::<JumpHost>() {
            Ok(j) => Some(j),
            Err(e) => {
                let origin = jump_var
                    .or_else(|| vars.get("ansible_ssh_common_args"))
                    .map(|v| v.origin.clone())
                    .unwrap_or_default();
                reader.error(&origin, e.to_string());
                ok = false;
                None
            }
        },
    };
    if let Some(var) = vars.get("ansible_connection") {
        let kind = scalar_text(&var.value).unwrap_or_default();
        if !matches!(kind.as_str(), "ssh" | "smart" | "paramiko") {
            reader.error(
                &var.origin,
                format!("ansible_connection {kind:?} is not supported; ngfleet connects over ssh"),
            );
            ok = false;
        }
    }
    ok.then_some(Connection {
        address,
        port,
        user,
        identity_file,
        become_,
        known_hosts,
        host_key_checking: args.checking.unwrap_or(HostKeyChecking::Default),
        jump,
    })
}

fn remote_path(
    reader: &mut Reader<'_>,
    vars: &Vars,
    name: &str,
    default: &str,
) -> Option<RemotePath> {
    match vars.get(name) {
        None => default.parse().ok(),
        Some(var) => reader.parse::<RemotePath>(&var.origin, &var.value, "an absolute path"),
    }
}

fn nginx_paths(reader: &mut Reader<'_>, vars: &Vars) -> Option<NginxPaths> {
    let binary = remote_path(reader, vars, "nginx_binary", DEFAULT_NGINX_BINARY);
    let pid_file = remote_path(reader, vars, "nginx_pid_file", DEFAULT_NGINX_PID_FILE);
    Some(NginxPaths {
        binary: binary?,
        pid_file: pid_file?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pattern::HostUniverse;

    fn parse(text: &str) -> Inventory {
        Inventory::parse("inv.yaml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(text: &str) -> Vec<String> {
        Inventory::parse("inv.yaml", text)
            .expect_err("should be invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn var(inv: &Inventory, host: &str, name: &str) -> Option<String> {
        inv.find(host).and_then(|h| h.vars.text(name))
    }

    #[test]
    fn nested_groups_and_ranges() {
        let inv = parse(
            "all:\n  children:\n    web:\n      children:\n        eu:\n          hosts:\n            web-[01:03]:\n    db:\n      hosts:\n        db-[a:b]:\n",
        );
        assert_eq!(
            inv.host_names(),
            ["web-01", "web-02", "web-03", "db-a", "db-b"]
        );
        assert_eq!(inv.group("web"), Some(&[0, 1, 2][..]));
        assert_eq!(inv.group("eu"), Some(&[0, 1, 2][..]));
        assert_eq!(inv.group("all").map(<[usize]>::len), Some(5));
        assert_eq!(
            inv.find("web-02").map(|h| h.groups.clone()),
            Some(vec!["all".to_owned(), "eu".to_owned(), "web".to_owned()])
        );
    }

    #[test]
    fn a_host_in_several_groups_is_one_host() {
        let inv = parse(
            "all:\n  children:\n    a:\n      hosts:\n        h1: {x: 1}\n    b:\n      hosts:\n        h1: {y: 2}\n        h2:\n",
        );
        assert_eq!(inv.host_names(), ["h1", "h2"]);
        assert_eq!(var(&inv, "h1", "x").as_deref(), Some("1"));
        assert_eq!(var(&inv, "h1", "y").as_deref(), Some("2"));
        assert_eq!(inv.group("a"), Some(&[0][..]));
        assert_eq!(inv.group("b"), Some(&[0, 1][..]));
    }

    #[test]
    fn precedence_all_then_parent_then_child_then_host() {
        let inv = parse(
            "\
all:
  vars: {v: all, a: all, p: all, c: all}
  children:
    parent:
      vars: {v: parent, p: parent, c: parent}
      children:
        child:
          vars: {v: child, c: child}
          hosts:
            h1: {v: host}
            h2:
",
        );
        assert_eq!(var(&inv, "h1", "v").as_deref(), Some("host"));
        assert_eq!(var(&inv, "h2", "v").as_deref(), Some("child"));
        assert_eq!(var(&inv, "h2", "c").as_deref(), Some("child"));
        assert_eq!(var(&inv, "h2", "p").as_deref(), Some("parent"));
        assert_eq!(var(&inv, "h2", "a").as_deref(), Some("all"));
    }

    #[test]
    fn same_depth_groups_merge_by_name_and_priority() {
        let text = "\
all:
  children:
    zeta:
      vars: {v: zeta}
      hosts: {h: }
    alpha:
      vars: {v: alpha}
      hosts: {h: }
";
        assert_eq!(var(&parse(text), "h", "v").as_deref(), Some("zeta"));
        let prioritised = text.replace("{v: zeta}", "{v: zeta, ansible_group_priority: 0}");
        assert_eq!(
            var(&parse(&prioritised), "h", "v").as_deref(),
            Some("alpha")
        );
    }

    #[test]
    fn connection_vars_and_defaults() {
        let inv = parse(
            "\
all:
  vars:
    ansible_user: deploy
    ansible_become: yes
    ansible_ssh_common_args: '-o UserKnownHostsFile=/etc/kh -o StrictHostKeyChecking=no -J jump@bastion:2200'
  hosts:
    web-01:
      ansible_host: 10.0.0.1
      ansible_port: \"2222\"
      ansible_ssh_private_key_file: ~/.ssh/id
    web-02:
      ngfleet_jump: other:22
      ngfleet_known_hosts: /srv/kh
      nginx_binary: /opt/nginx/sbin/nginx
      nginx_pid_file: /opt/nginx/logs/nginx.pid
      team: payments
",
        );
        let h1 = inv.find("web-01").expect("web-01");
        let c = &h1.connection;
        assert_eq!((c.address.as_str(), c.port.get()), ("10.0.0.1", 2222));
        assert_eq!(c.user.as_deref(), Some("deploy"));
        assert_eq!(c.identity_file.as_deref(), Some("~/.ssh/id"));
        assert_eq!(c.become_, Become::Sudo);
        assert_eq!(
            c.known_hosts,
            Some(KnownHostsFile {
                path: "/etc/kh".into(),
                from: KnownHostsVar::UserKnownHostsFile
            })
        );
        assert_eq!(c.host_key_checking, HostKeyChecking::No);
        assert_eq!(
            c.jump.as_ref().map(ToString::to_string).as_deref(),
            Some("jump@bastion:2200")
        );
        assert_eq!(h1.nginx.binary.as_str(), DEFAULT_NGINX_BINARY);
        assert_eq!(h1.nginx.pid_file.as_str(), DEFAULT_NGINX_PID_FILE);

        let h2 = inv.find("web-02").expect("web-02");
        assert_eq!(h2.connection.address, "web-02");
        assert_eq!(h2.connection.port, Port::SSH);
        assert_eq!(
            h2.connection.known_hosts,
            Some(KnownHostsFile {
                path: "/srv/kh".into(),
                from: KnownHostsVar::Ngfleet
            })
        );
        assert_eq!(
            h2.connection
                .jump
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("other:22")
        );
        assert_eq!(h2.nginx.binary.as_str(), "/opt/nginx/sbin/nginx");
        assert_eq!(h2.vars.text("team").as_deref(), Some("payments"));
    }

    #[test]
    fn top_level_groups_without_all() {
        let inv = parse("web:\n  hosts:\n    w1:\ndb:\n  hosts:\n    d1:\n");
        assert_eq!(inv.host_names(), ["w1", "d1"]);
        assert_eq!(inv.group("all").map(<[usize]>::len), Some(2));
    }

    #[test]
    fn ungrouped_hosts() {
        let inv = parse(
            "all:\n  hosts:\n    lonely:\n  children:\n    g:\n      hosts:\n        member:\n",
        );
        assert_eq!(inv.group("ungrouped"), Some(&[0][..]));
    }

    #[test]
    fn every_problem_with_file_line_column_and_path() {
        let got = problems(
            "\
all:
  vars:
    ansible_become: maybe
  children:
    web:
      hostz:
        web-01:
      hosts:
        web-03:
          ansible_port: ssh
          nginx_binary: sbin/nginx
        web-[05:01]:
        web-04:
          ngfleet_jump: 'a,b'
          ansible_ssh_common_args: '-o ProxyCommand=nc %h %p'
          ansible_host: '{{ lookup(\"x\") }}'
",
        );
        assert_eq!(
            got,
            [
                "inv.yaml:3:21: all.vars.ansible_become: expected a boolean (true/false/yes/no), found \"maybe\"",
                "inv.yaml:6:7: all.children.web.hostz: unknown key `hostz` (did you mean `hosts`?)",
                "inv.yaml:10:25: all.children.web.hosts.web-03.ansible_port: expected a port number from 1 to 65535, found \"ssh\"",
                "inv.yaml:11:25: all.children.web.hosts.web-03.nginx_binary: expected an absolute path, found \"sbin/nginx\"",
                "inv.yaml:12:9: all.children.web.hosts[\"web-[05:01]\"]: range start 05 is after its end 01",
                "inv.yaml:14:25: all.children.web.hosts.web-04.ngfleet_jump: only one jump host is supported, found \"a,b\"",
                "inv.yaml:15:36: all.children.web.hosts.web-04.ansible_ssh_common_args: ProxyCommand is not supported; use ProxyJump or ngfleet_jump",
                "inv.yaml:16:25: all.children.web.hosts.web-04.ansible_host: templated values are not supported in ansible_host, found \"{{ lookup(\\\"x\\\") }}\"",
            ]
        );
    }

    #[test]
    fn wrong_shapes_are_reported() {
        assert_eq!(
            problems("all:\n  hosts: [a, b]\n"),
            ["inv.yaml:2:10: all.hosts: expected a mapping of host names, found a list"]
        );
        assert_eq!(
            problems("all:\n  children:\n    web: 3\n"),
            [
                "inv.yaml:3:10: all.children.web: expected a group (a mapping with hosts, vars or children), found 3"
            ]
        );
        assert_eq!(
            problems("- a\n- b\n"),
            [
                "inv.yaml:1:1: expected an inventory (a mapping of groups, usually under `all`), found a list"
            ]
        );
    }

    #[test]
    fn group_cycles_are_errors() {
        let got = problems(
            "all:\n  children:\n    a:\n      children:\n        b:\n    b:\n      children:\n        a:\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("group cycle: a -> b -> a")
                || got[0].contains("group cycle: b -> a -> b"),
            "{got:?}"
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let got = problems("all:\n  hosts:\n    a: [\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("inv.yaml:"), "{got:?}");
        assert!(got[0].contains("invalid YAML"), "{got:?}");
    }
}
