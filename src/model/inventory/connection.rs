//! The connection and nginx variables of a host: `ansible_host`, `ansible_port`,
//! `ansible_user`, keys, `ansible_become`, `ansible_ssh_common_args`, jumps (several hops, or
//! `none`), the ssh_config file, and where nginx lives. Every problem is recorded against the
//! variable's own definition.

use yaml_serde::Value;

use super::super::hostname;
use super::super::reader::{Reader, describe, scalar_text};
use super::super::ssh_config::ProxyJump;
use super::super::values::{Port, RemotePath};
use super::{
    Become, Connection, DEFAULT_NGINX_BINARY, DEFAULT_NGINX_PID_FILE, HostKeyChecking,
    KnownHostsFile, KnownHostsVar, NginxPaths, Var, Vars,
};

/// Ansible's legacy names of connection variables. Where both are set, the `ansible_ssh_*`
/// one wins, as in Ansible's ssh connection plugin (the last of its names that is set).
const ALIASES: &[(&str, &str)] = &[
    ("ansible_host", "ansible_ssh_host"),
    ("ansible_port", "ansible_ssh_port"),
    ("ansible_user", "ansible_ssh_user"),
];

/// The winning definition of a connection variable, its legacy alias considered (a null
/// value counts as unset, as in Ansible's configuration), and the name it was set under.
pub(super) fn lookup<'v>(vars: &'v Vars, name: &'static str) -> Option<(&'static str, &'v Var)> {
    let alias = ALIASES
        .iter()
        .find(|(plain, _)| *plain == name)
        .map(|(_, alias)| *alias);
    alias
        .into_iter()
        .chain([name])
        .find_map(|n| vars.get(n).filter(|v| !v.value.is_null()).map(|v| (n, v)))
}

/// A connection variable as plain text; templates are refused rather than sent verbatim.
fn plain(reader: &mut Reader<'_>, vars: &Vars, name: &'static str, what: &str) -> Option<String> {
    let (name, var) = lookup(vars, name)?;
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
    config: Option<String>,
}

fn common_args(reader: &mut Reader<'_>, var: &Var, text: &str) -> CommonArgs {
    let mut out = CommonArgs::default();
    let Some(words) = shlex::split(text) else {
        reader.error(&var.origin, format!("unbalanced quotes in {text:?}"));
        return out;
    };
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = if word.len() > 2
            && (word.starts_with("-o") || word.starts_with("-J") || word.starts_with("-F"))
        {
            (word[..2].to_owned(), Some(word[2..].to_owned()))
        } else {
            (word, None)
        };
        match flag.as_str() {
            "-J" => out.jump = inline.or_else(|| words.next()),
            "-F" => out.config = inline.or_else(|| words.next()),
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

/// How to reach a host with these variables; `ansible_host` must be a host name or address.
pub(super) fn connection(reader: &mut Reader<'_>, vars: &Vars) -> Option<Connection> {
    let mut ok = true;
    let ansible_host = match plain(reader, vars, "ansible_host", "a host name or address") {
        None => None,
        Some(text) => match hostname::check(&text) {
            Ok(()) => Some(text),
            Err(e) => {
                if let Some((_, var)) = lookup(vars, "ansible_host") {
                    reader.error(&var.origin, e.to_string());
                }
                ok = false;
                None
            }
        },
    };
    let port = match lookup(vars, "ansible_port").map(|(_, var)| var) {
        None => None,
        Some(var) => match reader.parse::<Port>(&var.origin, &var.value, "a port number") {
            Some(p) => Some(p),
            None => {
                ok = false;
                None
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
    let certificate_file = plain(
        reader,
        vars,
        "ngfleet_ssh_certificate",
        "a certificate file path",
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
        Some(text) => match text.parse::<ProxyJump>() {
            Ok(j) => Some(j),
            Err(e) => {
                let origin = jump_var
                    .or_else(|| vars.get("ansible_ssh_common_args"))
                    .map(|v| v.origin.clone())
                    .unwrap_or_default();
                reader.error(&origin, e);
                ok = false;
                None
            }
        },
    };
    let ssh_config = match vars.get("ngfleet_ssh_config") {
        Some(_) => plain(reader, vars, "ngfleet_ssh_config", "an ssh_config path"),
        None => args.config,
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
        ansible_host,
        port,
        user,
        identity_file,
        certificate_file,
        become_,
        known_hosts,
        host_key_checking: args.checking.unwrap_or(HostKeyChecking::Default),
        jump,
        ssh_config,
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

pub(super) fn nginx_paths(reader: &mut Reader<'_>, vars: &Vars) -> Option<NginxPaths> {
    let binary = remote_path(reader, vars, "nginx_binary", DEFAULT_NGINX_BINARY);
    let pid_file = remote_path(reader, vars, "nginx_pid_file", DEFAULT_NGINX_PID_FILE);
    Some(NginxPaths {
        binary: binary?,
        pid_file: pid_file?,
    })
}
