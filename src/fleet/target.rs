//! One host's SSH target from its inventory variables, its ssh_config and ngfleet's
//! defaults, in that order of precedence (as Ansible passes its variables to `ssh` as
//! command-line options, which beat the config). ssh_config's `Host` patterns see the name
//! `ssh` would be given: `ansible_host` when set, else the inventory name. Each jump hop is
//! resolved through the same config under its own name, the first hop's own `ProxyJump`
//! prepended, as OpenSSH chains them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{AcceptNewSource, ControllerEnv, KeyTrust, KnownHostsSource};
use crate::model::diagnostic::{Diagnostic, Diagnostics};
use crate::model::inventory::{Become, Host, HostKeyChecking};
use crate::model::ssh_config::{
    self, Config, Found, Hop, Preset, ProxyJump, Query, Resolved, Strictness, Warning, YesNo,
};
use crate::ssh::config_file::{self, ConfigChoice};
use crate::ssh::{HostKeyPolicy, Identities, JumpHost, Privilege, Target, Timing};

/// Hops a chain may grow to through the first hops' own `ProxyJump`s (a loop otherwise).
const MAX_HOPS: usize = 8;

/// Everything worked out for one host.
pub(super) struct HostPlan {
    pub(super) target: Target,
    pub(super) trust: KeyTrust,
    /// What of the config applies to the host (or its hops) and is not followed.
    pub(super) warnings: Vec<Warning>,
    /// Settings that cannot be used (a `ProxyJump` loop).
    pub(super) problems: Vec<Diagnostic>,
}

impl ControllerEnv {
    /// Reads the ssh_config files `hosts` use (each once) and resolves every host, so that
    /// a bad file, line or value is an input error before anything connects. Returns what
    /// of the configs applies to these hosts and is not followed, each line once.
    pub fn read_ssh_configs(&mut self, hosts: &[&Host]) -> Result<Vec<Warning>, Diagnostics> {
        let mut problems = Vec::new();
        for host in hosts {
            let choice = self.choice(host);
            if self.configs.contains_key(&choice) {
                continue;
            }
            match config_file::load(&choice, self.home.as_deref()) {
                Ok(config) => {
                    self.configs.insert(choice, Arc::new(config));
                }
                Err(found) => {
                    problems.extend(found.iter().cloned());
                    self.configs.insert(choice, Arc::default());
                }
            }
        }
        let mut warnings = BTreeSet::new();
        for host in hosts {
            let plan = self.plan(host);
            warnings.extend(plan.warnings);
            problems.extend(plan.problems);
        }
        match Diagnostics::from_vec(problems) {
            Some(d) => Err(d),
            None => Ok(warnings.into_iter().collect()),
        }
    }

    /// The config files a host is resolved against: `--ssh-config`, else the host's
    /// `ngfleet_ssh_config` (or `-F`), else OpenSSH's defaults.
    pub(super) fn choice(&self, host: &Host) -> ConfigChoice {
        match (&self.ssh_config, &host.connection.ssh_config) {
            (Some(path), _) => ConfigChoice::File(path.clone()),
            (None, Some(path)) => ConfigChoice::File(self.expand(path)),
            (None, None) => ConfigChoice::Defaults,
        }
    }

    fn config(&self, host: &Host) -> Arc<Config> {
        self.configs
            .get(&self.choice(host))
            .cloned()
            .unwrap_or_default()
    }

    fn resolve(&self, config: &Config, name: &str, preset: &Preset) -> Resolved {
        ssh_config::resolve(
            config,
            Query {
                host: name,
                preset,
                local: &self.local,
            },
        )
    }

    /// The host's target and key trust, from its inventory, its ssh_config and defaults.
    pub(super) fn plan(&self, host: &Host) -> HostPlan {
        let c = &host.connection;
        let config = self.config(host);
        let preset = Preset {
            user: c.user.clone(),
            port: c.port,
        };
        let r = self.resolve(&config, host.address(), &preset);
        let mut warnings = r.warnings.clone();
        let mut problems = Vec::new();
        let user = preset
            .user
            .clone()
            .or_else(|| r.user.as_ref().map(|f| f.value.clone()))
            .unwrap_or_else(|| self.local_user.clone());
        let mut identity_files: Vec<PathBuf> =
            c.identity_file.iter().map(|p| self.expand(p)).collect();
        identity_files.extend(r.identity_files.iter().map(|f| PathBuf::from(&f.value)));
        if identity_files.is_empty() {
            identity_files = self.default_keys();
        }
        // The inventory's certificate, ssh_config's, then OpenSSH's habit: `<identity>-cert.pub`
        // beside each identity file, if it is there.
        let certificate_files: Vec<PathBuf> = c
            .certificate_file
            .iter()
            .map(|path| self.expand(path))
            .chain(certificates(&r, &identity_files))
            .collect();
        let trust = self.trust(host, &r);
        let privilege = if c.become_ == Become::Sudo || user != "root" {
            Privilege::Sudo
        } else {
            Privilege::AsLoginUser
        };
        let chain = match (&c.jump, &r.proxy_jump) {
            (Some(jump), _) => jump.clone(),
            (None, Some(found)) => found.value.clone(),
            (None, None) => ProxyJump::None,
        };
        let fallback = Fallback {
            user: &user,
            identity_files: &identity_files,
            known_hosts: &trust.known_hosts,
            from_flag: self.known_hosts.is_some(),
        };
        let jumps = match chain {
            ProxyJump::None => Vec::new(),
            ProxyJump::Hops(hops) => {
                self.hops(&config, hops, &fallback, &mut warnings, &mut problems)
            }
        };
        let target = Target {
            name: host.name.clone(),
            host: r
                .hostname
                .as_ref()
                .map_or_else(|| host.address().to_owned(), |f| f.value.clone()),
            port: preset
                .port
                .or(r.port.as_ref().map(|f| f.value))
                .map_or(22, |p| p.get()),
            user,
            identity_files,
            certificate_files,
            known_hosts: trust.known_hosts.clone(),
            jumps,
            identities: identities(&r),
            timing: timing(&r),
            privilege,
            host_key_policy: trust.policy(),
        };
        HostPlan {
            target,
            trust,
            warnings,
            problems,
        }
    }

    /// How a host's keys are checked: `--known-hosts`, the inventory's file, ssh_config's
    /// `UserKnownHostsFile` (its first file), `~/.ssh/known_hosts`; accept-new from the flag,
    /// the inventory's `StrictHostKeyChecking`, or else ssh_config's.
    fn trust(&self, host: &Host, r: &Resolved) -> KeyTrust {
        let c = &host.connection;
        let config_file = r.user_known_hosts.as_ref().and_then(|f| {
            f.value
                .first()
                .map(|path| (PathBuf::from(path), f.at.clone()))
        });
        let (known_hosts, known_hosts_from) = match (&self.known_hosts, &c.known_hosts, config_file)
        {
            (Some(path), _, _) => (path.clone(), KnownHostsSource::Flag),
            (None, Some(file), _) => (
                self.expand(&file.path),
                KnownHostsSource::Inventory(file.from),
            ),
            (None, None, Some((path, at))) => (path, KnownHostsSource::SshConfig(at)),
            (None, None, None) => match &self.home {
                Some(home) => (home.join(".ssh/known_hosts"), KnownHostsSource::Home),
                None => (
                    Path::new("/etc/ssh/ssh_known_hosts").to_owned(),
                    KnownHostsSource::System,
                ),
            },
        };
        let mut accept_new_from = Vec::new();
        if self.host_key_policy == HostKeyPolicy::AcceptNew {
            accept_new_from.push(AcceptNewSource::Flag);
        }
        match (c.host_key_checking, &r.strict_host_key_checking) {
            (HostKeyChecking::AcceptNew, _) => {
                accept_new_from.push(AcceptNewSource::StrictAcceptNew);
            }
            (HostKeyChecking::No, _) => accept_new_from.push(AcceptNewSource::StrictNo),
            (HostKeyChecking::Strict, _) => {}
            (HostKeyChecking::Default, Some(found)) => match found.value {
                Strictness::AcceptNew => {
                    accept_new_from.push(AcceptNewSource::SshConfigAcceptNew(found.at.clone()));
                }
                Strictness::No => {
                    accept_new_from.push(AcceptNewSource::SshConfigNo(found.at.clone()));
                }
                Strictness::Yes | Strictness::Ask => {}
            },
            (HostKeyChecking::Default, None) => {}
        }
        KeyTrust {
            known_hosts,
            known_hosts_from,
            accept_new_from,
        }
    }

    /// The hops of a chain, each resolved under its own name: its address, port and user
    /// as written, else from its Host block, else (user, keys, known_hosts) the target's.
    fn hops(
        &self,
        config: &Config,
        mut chain: Vec<Hop>,
        fallback: &Fallback<'_>,
        warnings: &mut Vec<Warning>,
        problems: &mut Vec<Diagnostic>,
    ) -> Vec<JumpHost> {
        let preset = |hop: &Hop| Preset {
            user: hop.user.clone(),
            port: hop.port,
        };
        // The first hop is reached as `ssh FIRST`: its own ProxyJump applies.
        while let Some(first) = chain.first() {
            let r = self.resolve(config, &first.host, &preset(first));
            let Some(Found {
                value: ProxyJump::Hops(before),
                at,
            }) = r.proxy_jump
            else {
                break;
            };
            if chain.len() + before.len() > MAX_HOPS {
                problems.push(ssh_config::problem(
                    &at,
                    &format!(
                        "ProxyJump: the jump chain grows past {MAX_HOPS} hops through the first \
                         hops' own ProxyJump (a loop?)"
                    ),
                ));
                break;
            }
            chain.splice(0..0, before);
        }
        chain
            .iter()
            .map(|hop| {
                let r = self.resolve(config, &hop.host, &preset(hop));
                warnings.extend(r.warnings.iter().cloned());
                let own_keys: Vec<PathBuf> = r
                    .identity_files
                    .iter()
                    .map(|f| PathBuf::from(&f.value))
                    .collect();
                let keys = if own_keys.is_empty() {
                    fallback.identity_files.to_vec()
                } else {
                    own_keys
                };
                let certificate_files = certificates(&r, &keys).collect();
                let known_hosts = match (&r.user_known_hosts, fallback.from_flag) {
                    (Some(found), false) => found
                        .value
                        .first()
                        .map_or_else(|| fallback.known_hosts.to_owned(), PathBuf::from),
                    _ => fallback.known_hosts.to_owned(),
                };
                JumpHost {
                    host: r
                        .hostname
                        .as_ref()
                        .map_or_else(|| hop.host.clone(), |f| f.value.clone()),
                    port: hop
                        .port
                        .or(r.port.as_ref().map(|f| f.value))
                        .map_or(22, |p| p.get()),
                    user: hop
                        .user
                        .clone()
                        .or_else(|| r.user.as_ref().map(|f| f.value.clone()))
                        .unwrap_or_else(|| fallback.user.to_owned()),
                    identity_files: keys,
                    certificate_files,
                    known_hosts,
                    identities: identities(&r),
                    timing: timing(&r),
                }
            })
            .collect()
    }
}

/// ssh_config's CertificateFile values, then OpenSSH's habit: `<identity>-cert.pub` beside
/// each identity file, if it is there.
fn certificates<'a>(r: &'a Resolved, keys: &'a [PathBuf]) -> impl Iterator<Item = PathBuf> + 'a {
    let beside = keys.iter().filter_map(|key| {
        let mut cert = key.clone().into_os_string();
        cert.push("-cert.pub");
        let cert = PathBuf::from(cert);
        cert.is_file().then_some(cert)
    });
    r.certificate_files
        .iter()
        .map(|f| PathBuf::from(&f.value))
        .chain(beside)
}

/// What a hop takes from its target when its own Host block says nothing.
struct Fallback<'a> {
    user: &'a str,
    identity_files: &'a [PathBuf],
    known_hosts: &'a Path,
    /// `--known-hosts` beats every hop's `UserKnownHostsFile` too.
    from_flag: bool,
}

fn identities(r: &Resolved) -> Identities {
    match r.identities_only.as_ref().map(|f| f.value) {
        Some(YesNo::Yes) => Identities::FilesOnly,
        Some(YesNo::No) | None => Identities::AgentAndFiles,
    }
}

/// `ConnectTimeout`, `ServerAliveInterval` (0, OpenSSH's "off", keeps ngfleet's keepalive:
/// a dead peer must be noticed) and `ServerAliveCountMax`.
fn timing(r: &Resolved) -> Timing {
    Timing {
        connect_timeout: r
            .connect_timeout
            .as_ref()
            .filter(|f| f.value > 0)
            .map(|f| Duration::from_secs(f.value)),
        keepalive_interval: r
            .server_alive_interval
            .as_ref()
            .filter(|f| f.value > 0)
            .map(|f| Duration::from_secs(f.value)),
        keepalive_max: r
            .server_alive_count_max
            .as_ref()
            .filter(|f| f.value > 0)
            .map(|f| usize::try_from(f.value).unwrap_or(usize::MAX)),
    }
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
