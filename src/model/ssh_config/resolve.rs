//! What a config says for one host, as `ssh -G HOST` would: blocks selected by `Host`
//! patterns and `Match` criteria, the first value of each option winning, included files
//! read where they are included, a second (`final`) pass when a `Match canonical`/`final`
//! asks for it, and `%` tokens and `~` expanded. Options ngfleet does not apply, and
//! `Match` criteria it cannot evaluate, become warnings naming their file and line.

use sha1::{Digest, Sha1};

use super::matching::{self, Case, ListMatch};
use super::{
    Config, Criterion, Item, Location, Other, ProxyCommand, ProxyJump, Sense, Setting, Strictness,
    YesNo,
};
use crate::model::values::Port;

/// The controller's side of the tokens (`%u`, `%d`, `%l`, `%L`, `%i`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub user: String,
    pub home: String,
    pub hostname: String,
    pub uid: u32,
}

/// Values that beat the config, as OpenSSH's command line does (`-l`, `-p`): they are what
/// `Match user` and the `%r`/`%p` tokens see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preset {
    pub user: Option<String>,
    pub port: Option<Port>,
}

/// One host to resolve: the name `ssh` would be given.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub host: &'a str,
    pub preset: &'a Preset,
    pub local: &'a Local,
}

/// A value and the line it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<T> {
    pub value: T,
    pub at: Location,
}

/// Something in the config that applies to the host and that ngfleet does not follow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Warning {
    pub at: Location,
    pub message: String,
}

/// What the config says for one host; `None` where it says nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// `HostName` with `%h` expanded, lowercased (as OpenSSH connects to it).
    pub hostname: Option<Found<String>>,
    pub port: Option<Found<Port>>,
    pub user: Option<Found<String>>,
    /// Every `IdentityFile` that applies, in order, `~` and tokens expanded.
    pub identity_files: Vec<Found<String>>,
    pub identities_only: Option<Found<YesNo>>,
    /// Every `CertificateFile` that applies, expanded.
    pub certificate_files: Vec<Found<String>>,
    pub proxy_jump: Option<Found<ProxyJump>>,
    /// `UserKnownHostsFile`, every file expanded.
    pub user_known_hosts: Option<Found<Vec<String>>>,
    pub strict_host_key_checking: Option<Found<Strictness>>,
    pub connect_timeout: Option<Found<u64>>,
    pub server_alive_interval: Option<Found<u64>>,
    pub server_alive_count_max: Option<Found<u64>>,
    pub warnings: Vec<Warning>,
}

/// Where the walk is: the pass, the host name `Host` lines see, and whether a `Match
/// final` asked for a second pass.
struct Walk<'q> {
    query: Query<'q>,
    /// `Host` lines match this: the name as given, then (final pass) the host name.
    host: String,
    final_pass: bool,
    want_final: bool,
    /// Raw values, first wins; files accumulate.
    raw: Raw,
}

#[derive(Default)]
struct Raw {
    hostname: Option<Found<String>>,
    port: Option<Found<Port>>,
    user: Option<Found<String>>,
    identity_files: Vec<Found<String>>,
    identities_only: Option<Found<YesNo>>,
    certificate_files: Vec<Found<String>>,
    /// OpenSSH 9.2's rules: a `ProxyJump` applies while neither is set; a `ProxyCommand`
    /// while no command is set and the jump is unset or `none`.
    jump: Option<Found<ProxyJump>>,
    command: Option<Found<ProxyCommand>>,
    user_known_hosts: Option<Found<Vec<String>>>,
    strict: Option<Found<Strictness>>,
    connect_timeout: Option<Found<u64>>,
    server_alive_interval: Option<Found<u64>>,
    server_alive_count_max: Option<Found<u64>>,
    ignore_unknown: Option<String>,
    warnings: Vec<Warning>,
}

/// Resolves `query` against `config`.
pub fn resolve(config: &Config, query: Query<'_>) -> Resolved {
    let mut walk = Walk {
        query,
        host: query.host.to_owned(),
        final_pass: false,
        want_final: false,
        raw: Raw::default(),
    };
    for file in &config.files {
        walk.items(&file.items, Mode::Live);
    }
    if walk.want_final {
        walk.final_pass = true;
        walk.host = walk.current_host();
        for file in &config.files {
            walk.items(&file.items, Mode::Live);
        }
    }
    walk.finish()
}

/// How a file is walked: for real, or (a file included where no block applies) only for
/// the second pass its `Match final` lines ask for, as OpenSSH reads such files.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    NeverMatch,
}

impl Walk<'_> {
    /// The items of one file; a file starts active and its blocks end with it.
    fn items(&mut self, items: &[Item], mode: Mode) {
        let mut active = mode == Mode::Live;
        for item in items {
            match item {
                Item::Host { patterns, .. } => {
                    active = mode == Mode::Live && matching::host_line(&self.host, patterns);
                }
                Item::Match { criteria, at } => {
                    let matched = match mode {
                        Mode::Live => self.criteria(criteria, at),
                        Mode::NeverMatch => {
                            self.want_final |=
                                criteria.iter().any(|c| matches!(c, Criterion::Final(_)));
                            false
                        }
                    };
                    active = matched;
                }
                Item::Include { files, .. } => {
                    let inner = if active { Mode::Live } else { Mode::NeverMatch };
                    for file in files {
                        self.items(&file.items, inner);
                    }
                }
                Item::Set { setting, at } if active => self.set(setting, at),
                Item::Other { keyword, kind, at } if active => self.other(keyword, *kind, at),
                Item::Set { .. } | Item::Other { .. } => {}
            }
        }
    }

    /// The host name as configured so far, as `Match host` sees it.
    fn current_host(&self) -> String {
        match &self.raw.hostname {
            Some(found) => expand_hostname(&found.value, self.query.host),
            None => self.query.host.to_ascii_lowercase(),
        }
    }

    fn remote_user(&self) -> String {
        self.query
            .preset
            .user
            .clone()
            .or_else(|| self.raw.user.as_ref().map(|f| f.value.clone()))
            .unwrap_or_else(|| self.query.local.user.clone())
    }

    /// Every criterion is evaluated (a `final` asks for the second pass even after a
    /// criterion failed), as OpenSSH does.
    fn criteria(&mut self, criteria: &[Criterion], at: &Location) -> bool {
        let mut result = true;
        let judge = |sense: Sense, outcome: bool| match sense {
            Sense::Is => outcome,
            Sense::Not => !outcome,
        };
        for criterion in criteria {
            let outcome = match criterion {
                Criterion::All => true,
                Criterion::Final(sense) => {
                    self.want_final = true;
                    judge(*sense, self.final_pass)
                }
                Criterion::Canonical(sense) => judge(*sense, self.final_pass),
                Criterion::Host(sense, list) => {
                    let host = self.current_host();
                    judge(
                        *sense,
                        matching::list(&host, list, Case::Folded) == ListMatch::Matched,
                    )
                }
                Criterion::OriginalHost(sense, list) => {
                    let host = self.query.host.to_ascii_lowercase();
                    judge(
                        *sense,
                        matching::list(&host, list, Case::Folded) == ListMatch::Matched,
                    )
                }
                Criterion::User(sense, list) => {
                    let user = self.remote_user();
                    judge(
                        *sense,
                        matching::list(&user, list, Case::Exact) == ListMatch::Matched,
                    )
                }
                Criterion::LocalUser(sense, list) => {
                    let user = &self.query.local.user;
                    judge(
                        *sense,
                        matching::list(user, list, Case::Exact) == ListMatch::Matched,
                    )
                }
                Criterion::Unsupported(name) => {
                    self.warn(
                        at,
                        format!(
                            "Match {name} is not supported by ngfleet; the settings of this block are not applied"
                        ),
                    );
                    false
                }
            };
            result &= outcome;
        }
        result
    }

    fn warn(&mut self, at: &Location, message: String) {
        self.raw.warnings.push(Warning {
            at: at.clone(),
            message,
        });
    }

    fn set(&mut self, setting: &Setting, at: &Location) {
        fn first<T: Clone>(slot: &mut Option<Found<T>>, value: &T, at: &Location) {
            if slot.is_none() {
                *slot = Some(Found {
                    value: value.clone(),
                    at: at.clone(),
                });
            }
        }
        let found = |value: &String| Found {
            value: value.clone(),
            at: at.clone(),
        };
        let raw = &mut self.raw;
        match setting {
            // Before the second pass OpenSSH fixes the host name: a HostName met then is late.
            Setting::HostName(v) if !self.final_pass => first(&mut raw.hostname, v, at),
            Setting::HostName(_) => {}
            Setting::Port(v) => first(&mut raw.port, v, at),
            Setting::User(v) => first(&mut raw.user, v, at),
            // OpenSSH keeps each file once (a second pass meets them again).
            Setting::IdentityFile(v) => {
                if !raw.identity_files.iter().any(|f| f.value == *v) {
                    raw.identity_files.push(found(v));
                }
            }
            Setting::CertificateFile(v) => {
                if !raw.certificate_files.iter().any(|f| f.value == *v) {
                    raw.certificate_files.push(found(v));
                }
            }
            Setting::IdentitiesOnly(v) => first(&mut raw.identities_only, v, at),
            Setting::ProxyJump(v) => {
                if raw.jump.is_none() && raw.command.is_none() {
                    first(&mut raw.jump, v, at);
                }
            }
            Setting::ProxyCommand(v) => {
                let jump_free = raw.jump.as_ref().is_none_or(|j| j.value == ProxyJump::None);
                if raw.command.is_none() && jump_free {
                    first(&mut raw.command, v, at);
                    if let ProxyCommand::Command(_) = v {
                        self.warn(
                            at,
                            "ProxyCommand is not supported by ngfleet (use ProxyJump); the host \
                             is connected to directly"
                                .to_owned(),
                        );
                    }
                }
            }
            Setting::UserKnownHostsFile(v) => first(&mut raw.user_known_hosts, v, at),
            Setting::StrictHostKeyChecking(v) => first(&mut raw.strict, v, at),
            Setting::ConnectTimeout(v) => first(&mut raw.connect_timeout, v, at),
            Setting::ServerAliveInterval(v) => first(&mut raw.server_alive_interval, v, at),
            Setting::ServerAliveCountMax(v) => first(&mut raw.server_alive_count_max, v, at),
            Setting::IgnoreUnknown(v) => {
                if raw.ignore_unknown.is_none() {
                    raw.ignore_unknown = Some(v.clone());
                }
            }
        }
    }

    fn other(&mut self, keyword: &str, kind: Other, at: &Location) {
        match kind {
            Other::Quiet => {}
            Other::Unsupported => self.warn(
                at,
                format!("{keyword} is not supported by ngfleet and is not applied"),
            ),
            Other::Unknown => {
                let ignored = self.raw.ignore_unknown.as_deref().is_some_and(|list| {
                    matching::list(&keyword.to_ascii_lowercase(), list, Case::Folded)
                        == ListMatch::Matched
                });
                if !ignored {
                    self.warn(
                        at,
                        format!("{keyword} is not an option ngfleet knows; it is not applied"),
                    );
                }
            }
        }
    }

    fn finish(self) -> Resolved {
        let raw = self.raw;
        let hostname_at = raw.hostname.as_ref().map(|f| f.at.clone());
        let host = match &raw.hostname {
            Some(found) => expand_hostname(&found.value, self.query.host),
            None => self.query.host.to_ascii_lowercase(),
        };
        let port = self
            .query
            .preset
            .port
            .or(raw.port.as_ref().map(|f| f.value))
            .unwrap_or(Port::SSH);
        let user = self
            .query
            .preset
            .user
            .clone()
            .or_else(|| raw.user.as_ref().map(|f| f.value.clone()))
            .unwrap_or_else(|| self.query.local.user.clone());
        let tokens = Tokens {
            local: self.query.local,
            host: &host,
            original: self.query.host,
            port,
            user: &user,
        };
        let file = |f: &Found<String>| Found {
            value: tokens.file(&f.value),
            at: f.at.clone(),
        };
        let mut warnings = raw.warnings;
        warnings.sort();
        warnings.dedup();
        Resolved {
            hostname: hostname_at.map(|at| Found {
                value: host.clone(),
                at,
            }),
            port: raw.port,
            user: raw.user,
            identity_files: raw.identity_files.iter().map(file).collect(),
            identities_only: raw.identities_only,
            certificate_files: raw.certificate_files.iter().map(file).collect(),
            proxy_jump: match raw.command.map(|f| f.value) {
                Some(ProxyCommand::Command(_)) => None,
                _ => raw.jump,
            },
            user_known_hosts: raw.user_known_hosts.map(|f| Found {
                value: f.value.iter().map(|p| tokens.file(p)).collect(),
                at: f.at,
            }),
            strict_host_key_checking: raw.strict,
            connect_timeout: raw.connect_timeout,
            server_alive_interval: raw.server_alive_interval,
            server_alive_count_max: raw.server_alive_count_max,
            warnings,
        }
    }
}

/// `HostName` with `%h` (the name as given) and `%%`, lowercased.
fn expand_hostname(raw: &str, original: &str) -> String {
    percent(raw, |t| match t {
        'h' => Some(original.to_owned()),
        _ => None,
    })
    .to_ascii_lowercase()
}

/// Replaces `%x` by `value(x)` (unknown tokens were refused by the parser; left as is).
fn percent(raw: &str, value: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match value(t) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// The values of the file tokens for one host.
struct Tokens<'a> {
    local: &'a Local,
    host: &'a str,
    original: &'a str,
    port: Port,
    user: &'a str,
}

impl Tokens<'_> {
    /// A file option: a leading `~` is the controller's home, then the tokens.
    fn file(&self, raw: &str) -> String {
        let raw = match raw.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                format!("{}{rest}", self.local.home)
            }
            _ => raw.to_owned(),
        };
        let short = self.local.hostname.split('.').next().unwrap_or_default();
        percent(&raw, |t| {
            Some(match t {
                'C' => self.connection_hash(),
                'd' => self.local.home.clone(),
                'h' => self.host.to_owned(),
                'i' => self.local.uid.to_string(),
                'k' | 'n' => self.original.to_owned(),
                'L' => short.to_owned(),
                'l' => self.local.hostname.clone(),
                'p' => self.port.to_string(),
                'r' => self.user.to_owned(),
                'u' => self.local.user.clone(),
                _ => return None,
            })
        })
    }

    /// `%C`: SHA-1 of `%l%h%p%r`, in hex (OpenSSH 9.2).
    fn connection_hash(&self) -> String {
        let text = format!(
            "{}{}{}{}",
            self.local.hostname, self.host, self.port, self.user
        );
        Sha1::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
