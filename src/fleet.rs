//! From inventory hosts to SSH targets, and running one async job per host with bounded
//! concurrency. This is where the controller's environment (the user, `~`, default key
//! files, ssh_config) meets the pure inventory model (`fleet/target.rs` resolves each host),
//! and where host key trust is judged before any connection: accept-new is refused for a
//! known_hosts that cannot remember a key.

mod target;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;

use crate::model::inventory::{Host, KnownHostsVar};
use crate::model::ssh_config::{Config, Local, Location};
use crate::ssh::config_file::ConfigChoice;
use crate::ssh::{self, HostKeyPolicy, Target, Unrememberable};

/// What the controller's command line and environment add to every host.
#[derive(Clone, Debug)]
pub struct ControllerEnv {
    /// `--known-hosts`, which beats the inventory's.
    pub known_hosts: Option<PathBuf>,
    /// `--accept-new`.
    pub host_key_policy: HostKeyPolicy,
    /// The controller's user name, used when `ansible_user` is unset.
    pub local_user: String,
    /// `$HOME`, for `~` and the default key files and known_hosts.
    pub home: Option<PathBuf>,
    /// `--ssh-config`, which beats the inventory's `ngfleet_ssh_config`.
    pub ssh_config: Option<PathBuf>,
    /// The ssh_config files read so far ([`ControllerEnv::read_ssh_configs`]).
    pub configs: HashMap<ConfigChoice, Arc<Config>>,
    /// What ssh_config's tokens say about the controller.
    pub local: Local,
}

impl ControllerEnv {
    /// Reads `USER`/`LOGNAME` and `HOME` from the process environment, the host name and
    /// the user id from `/proc`. No ssh_config is read until
    /// [`ControllerEnv::read_ssh_configs`]; until then hosts are resolved without one.
    pub fn from_process(
        known_hosts: Option<PathBuf>,
        host_key_policy: HostKeyPolicy,
    ) -> ControllerEnv {
        let local_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "root".to_owned());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let local = Local {
            user: local_user.clone(),
            home: home
                .as_ref()
                .map(|h| h.display().to_string())
                .unwrap_or_default(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            uid: std::fs::metadata("/proc/self").map_or(0, |m| m.uid()),
        };
        ControllerEnv {
            known_hosts,
            host_key_policy,
            local_user,
            home,
            ssh_config: None,
            configs: HashMap::new(),
            local,
        }
    }

    /// With `--ssh-config FILE`.
    #[must_use]
    pub fn with_ssh_config(mut self, file: Option<PathBuf>) -> ControllerEnv {
        self.ssh_config = file;
        self
    }

    fn expand(&self, path: &str) -> PathBuf {
        match (path.strip_prefix("~/"), &self.home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ if path == "~" => self.home.clone().unwrap_or_else(|| PathBuf::from(path)),
            _ => PathBuf::from(path),
        }
    }

    fn default_keys(&self) -> Vec<PathBuf> {
        let Some(home) = &self.home else {
            return Vec::new();
        };
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| home.join(".ssh").join(k))
            .filter(|p| p.is_file())
            .collect()
    }

    /// How a host's keys are checked: its known_hosts file and whether unknown keys are
    /// recorded, each with where it comes from.
    pub fn key_trust(&self, host: &Host) -> KeyTrust {
        self.plan(host).trust
    }

    /// The SSH target for an inventory host (its ssh_config read by
    /// [`ControllerEnv::read_ssh_configs`]).
    pub fn target(&self, host: &Host) -> Target {
        self.plan(host).target
    }
}

/// Where a host's known_hosts path comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KnownHostsSource {
    /// `--known-hosts`.
    Flag,
    /// `ngfleet_known_hosts` or `UserKnownHostsFile` in the inventory.
    Inventory(KnownHostsVar),
    /// `UserKnownHostsFile` in ssh_config (its first file).
    SshConfig(Location),
    /// `~/.ssh/known_hosts`.
    Home,
    /// `/etc/ssh/ssh_known_hosts` (no `$HOME`).
    System,
}

impl fmt::Display for KnownHostsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KnownHostsSource::Flag => "--known-hosts",
            KnownHostsSource::Inventory(KnownHostsVar::Ngfleet) => "ngfleet_known_hosts",
            KnownHostsSource::Inventory(KnownHostsVar::UserKnownHostsFile) => {
                "UserKnownHostsFile in ansible_ssh_common_args"
            }
            KnownHostsSource::SshConfig(at) => {
                return write!(f, "UserKnownHostsFile in ssh_config at {at}");
            }
            KnownHostsSource::Home => "the default, ~/.ssh/known_hosts",
            KnownHostsSource::System => "the default without $HOME",
        })
    }
}

/// What makes a host's unknown keys be recorded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AcceptNewSource {
    /// `--accept-new`.
    Flag,
    /// `StrictHostKeyChecking=accept-new` in `ansible_ssh_common_args`.
    StrictAcceptNew,
    /// `StrictHostKeyChecking=no` in `ansible_ssh_common_args`, read as accept-new.
    StrictNo,
    /// `StrictHostKeyChecking accept-new` in ssh_config.
    SshConfigAcceptNew(Location),
    /// `StrictHostKeyChecking no` in ssh_config, read as accept-new.
    SshConfigNo(Location),
}

impl fmt::Display for AcceptNewSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcceptNewSource::Flag => "--accept-new",
            AcceptNewSource::StrictAcceptNew => {
                "StrictHostKeyChecking=accept-new in ansible_ssh_common_args"
            }
            AcceptNewSource::StrictNo => {
                "StrictHostKeyChecking=no in ansible_ssh_common_args, read as accept-new"
            }
            AcceptNewSource::SshConfigAcceptNew(at) => {
                return write!(f, "StrictHostKeyChecking accept-new in ssh_config at {at}");
            }
            AcceptNewSource::SshConfigNo(at) => {
                return write!(
                    f,
                    "StrictHostKeyChecking no in ssh_config at {at}, read as accept-new"
                );
            }
        })
    }
}

/// How one host's keys are checked, with where each setting comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTrust {
    /// The file checked (and, under accept-new, appended to); the jump host's key too.
    pub known_hosts: PathBuf,
    pub known_hosts_from: KnownHostsSource,
    /// Why unknown keys are recorded; empty when they are refused.
    pub accept_new_from: Vec<AcceptNewSource>,
}

impl KeyTrust {
    pub fn policy(&self) -> HostKeyPolicy {
        if self.accept_new_from.is_empty() {
            HostKeyPolicy::Strict
        } else {
            HostKeyPolicy::AcceptNew
        }
    }
}

/// The selected hosts' key trust, judged safe to connect with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// Hosts whose inventory says `StrictHostKeyChecking=no` (read as accept-new).
    pub read_as_accept_new: Vec<String>,
    /// Hosts whose ssh_config says `StrictHostKeyChecking no` (read as accept-new).
    pub ssh_config_no: Vec<String>,
}

/// Hosts whose unknown keys would be recorded where they cannot be remembered, grouped by
/// file and settings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "failed to trust new host keys safely: accept-new would record them where they cannot be \
     remembered, so every run would accept whatever key a host presents, a changed one \
     included{}\n  to trust keys safely: point --known-hosts, ngfleet_known_hosts or \
     UserKnownHostsFile at a real file (accept-new then records each new key there and prints \
     its fingerprint), or drop accept-new and pre-load the keys: \
     `ssh-keyscan -p PORT HOST >> FILE`, then check each against the host's own \
     (`ssh-keygen -lf FILE` here, `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there)",
    Groups(.refused)
)]
pub struct TrustError {
    pub refused: Vec<Unremembered>,
}

/// Hosts sharing one known_hosts file that cannot remember keys, and one accept-new setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unremembered {
    pub file: PathBuf,
    pub file_from: KnownHostsSource,
    pub why: Unrememberable,
    pub accept_new_from: Vec<AcceptNewSource>,
    pub hosts: Vec<String>,
}

struct Groups<'a>(&'a [Unremembered]);

impl fmt::Display for Groups<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for group in self.0 {
            let sources: Vec<String> = group
                .accept_new_from
                .iter()
                .map(ToString::to_string)
                .collect();
            write!(
                f,
                "\n  {} (from {}) {}: {} (accept-new from {})",
                group.file.display(),
                group.file_from,
                group.why,
                host_list(&group.hosts),
                sources.join(" and ")
            )?;
        }
        Ok(())
    }
}

/// Host names, the first ten of them and how many more.
pub fn host_list(hosts: &[String]) -> String {
    const SHOWN: usize = 10;
    if hosts.len() <= SHOWN {
        hosts.join(", ")
    } else {
        format!(
            "{} and {} more",
            hosts[..SHOWN].join(", "),
            hosts.len() - SHOWN
        )
    }
}

/// Judges the key trust of `hosts` before anything connects: a host whose unknown keys
/// would be recorded (accept-new, from any source) in a known_hosts that cannot remember
/// them (`/dev/null`, a device, a directory, an unwritable place) is refused, every such
/// host at once. Without accept-new such a file only means every key is unknown (refused
/// when met), so it is allowed.
pub fn check_trust(env: &ControllerEnv, hosts: &[&Host]) -> Result<Trust, TrustError> {
    let mut remembers: HashMap<PathBuf, Result<(), Unrememberable>> = HashMap::new();
    let mut refused: Vec<Unremembered> = Vec::new();
    let mut trust = Trust::default();
    for host in hosts {
        let keys = env.key_trust(host);
        if keys.accept_new_from.contains(&AcceptNewSource::StrictNo) {
            trust.read_as_accept_new.push(host.name.clone());
        }
        if keys
            .accept_new_from
            .iter()
            .any(|s| matches!(s, AcceptNewSource::SshConfigNo(_)))
        {
            trust.ssh_config_no.push(host.name.clone());
        }
        if keys.policy() == HostKeyPolicy::Strict {
            continue;
        }
        let verdict = remembers
            .entry(keys.known_hosts.clone())
            .or_insert_with(|| ssh::can_remember(&keys.known_hosts));
        let Err(why) = verdict else {
            continue;
        };
        let same = |g: &&mut Unremembered| {
            g.file == keys.known_hosts
                && g.file_from == keys.known_hosts_from
                && g.accept_new_from == keys.accept_new_from
        };
        match refused.iter_mut().find(same) {
            Some(group) => group.hosts.push(host.name.clone()),
            None => refused.push(Unremembered {
                file: keys.known_hosts,
                file_from: keys.known_hosts_from,
                why: why.clone(),
                accept_new_from: keys.accept_new_from,
                hosts: vec![host.name.clone()],
            }),
        }
    }
    if refused.is_empty() {
        Ok(trust)
    } else {
        Err(TrustError { refused })
    }
}

/// Runs `job` for every item, at most `forks` at once; results come back in input order.
pub async fn for_each_bounded<I, T, F, Fut>(items: Vec<I>, forks: usize, job: F) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = T>,
{
    let mut indexed: Vec<(usize, T)> = stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| {
            let fut = job(item);
            async move { (i, fut.await) }
        })
        .buffer_unordered(forks.max(1))
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inventory::Inventory;
    use std::path::Path;

    fn inventory(vars: &str) -> Inventory {
        let text = format!(
            "all:\n  vars:\n{vars}  hosts:\n    web-01:\n    web-02:\n      ansible_ssh_common_args: '-o StrictHostKeyChecking=yes'\n"
        );
        Inventory::parse("inv.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn env(known_hosts: Option<&str>, policy: HostKeyPolicy, home: &Path) -> ControllerEnv {
        ControllerEnv {
            known_hosts: known_hosts.map(PathBuf::from),
            host_key_policy: policy,
            local_user: "root".into(),
            home: Some(home.to_owned()),
            ssh_config: None,
            configs: HashMap::new(),
            local: Local {
                user: "root".into(),
                home: home.display().to_string(),
                hostname: "ctl".into(),
                uid: 0,
            },
        }
    }

    fn check(env: &ControllerEnv, inv: &Inventory) -> Result<Trust, TrustError> {
        let hosts: Vec<&Host> = inv.hosts().iter().collect();
        check_trust(env, &hosts)
    }

    #[test]
    fn accept_new_into_dev_null_is_refused_naming_hosts_and_sources() {
        let home = std::env::temp_dir();
        let inv = inventory("    ansible_user: root\n");
        let refused = check(
            &env(Some("/dev/null"), HostKeyPolicy::AcceptNew, &home),
            &inv,
        );
        let expected = TrustError {
            refused: vec![Unremembered {
                file: "/dev/null".into(),
                file_from: KnownHostsSource::Flag,
                why: Unrememberable::NotAFile {
                    kind: "a character device",
                },
                accept_new_from: vec![AcceptNewSource::Flag],
                hosts: vec!["web-01".into(), "web-02".into()],
            }],
        };
        assert_eq!(refused, Err(expected.clone()));
        let text = expected.to_string();
        assert!(
            text.starts_with("failed to trust new host keys safely: "),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  /dev/null (from --known-hosts) is a character device, not a file: web-01, web-02 (accept-new from --accept-new)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ssh-keyscan") && text.contains("ssh-keygen -lf"),
            "{text}"
        );

        // Without accept-new, /dev/null only means every key is unknown: allowed.
        let strict = check(&env(Some("/dev/null"), HostKeyPolicy::Strict, &home), &inv);
        assert_eq!(strict, Ok(Trust::default()));
    }

    #[test]
    fn the_common_ansible_setting_is_refused_from_the_inventory_alone() {
        let home = std::env::temp_dir();
        let inv = inventory(
            "    ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n",
        );
        // web-02 says StrictHostKeyChecking=yes (its own common args replace the group's).
        let refused = check(&env(None, HostKeyPolicy::Strict, &home), &inv);
        let Err(e) = refused else {
            panic!("accepted: {refused:?}");
        };
        assert_eq!(e.refused.len(), 1, "{e}");
        assert_eq!(e.refused[0].hosts, vec!["web-01".to_owned()]);
        assert_eq!(
            e.refused[0].file_from,
            KnownHostsSource::Inventory(KnownHostsVar::UserKnownHostsFile)
        );
        assert!(
            e.to_string().contains(
                "/dev/null (from UserKnownHostsFile in ansible_ssh_common_args) is a character device, not a file: web-01 (accept-new from StrictHostKeyChecking=no in ansible_ssh_common_args, read as accept-new)"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_real_file_is_accepted_and_no_is_noted() {
        let dir = std::env::temp_dir().join(format!("ngfleet-trust-{}", std::process::id()));
        let kh = dir.join("known_hosts").display().to_string();
        let inv = inventory(&format!(
            "    ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile={kh}'\n"
        ));
        let trust = check(&env(None, HostKeyPolicy::Strict, &dir), &inv);
        assert_eq!(
            trust,
            Ok(Trust {
                read_as_accept_new: vec!["web-01".into()],
                ssh_config_no: Vec::new(),
            })
        );
        let keys = env(None, HostKeyPolicy::Strict, &dir).key_trust(&inv.hosts()[0]);
        assert_eq!(keys.policy(), HostKeyPolicy::AcceptNew);
        assert_eq!(keys.known_hosts, PathBuf::from(&kh));
        // The default file lives in $HOME; a directory there cannot remember keys.
        let home_dir = dir.join("home-as-dir");
        assert!(std::fs::create_dir_all(home_dir.join(".ssh/known_hosts")).is_ok());
        let plain = inventory("    ansible_user: root\n");
        let refused = check(&env(None, HostKeyPolicy::AcceptNew, &home_dir), &plain);
        let Err(e) = refused else {
            panic!("accepted: {refused:?}");
        };
        assert_eq!(e.refused[0].file_from, KnownHostsSource::Home);
        assert_eq!(
            e.refused[0].why,
            Unrememberable::NotAFile {
                kind: "a directory"
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_host_lists_are_cut() {
        let hosts: Vec<String> = (1..=12).map(|i| format!("h{i}")).collect();
        assert_eq!(
            host_list(&hosts),
            "h1, h2, h3, h4, h5, h6, h7, h8, h9, h10 and 2 more"
        );
        assert_eq!(host_list(&hosts[..2]), "h1, h2");
    }
}
