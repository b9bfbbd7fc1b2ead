//! From inventory hosts to SSH targets, and running one async job per host with bounded
//! concurrency. This is where the controller's environment (the user, `~`, default key
//! files) meets the pure inventory model, and where host key trust is judged before any
//! connection: accept-new is refused for a known_hosts that cannot remember a key.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use futures::stream;

use crate::model::inventory::{Become, Host, HostKeyChecking, KnownHostsVar};
use crate::ssh::{self, HostKeyPolicy, JumpHost, Privilege, Target, Unrememberable};

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
}

impl ControllerEnv {
    /// Reads `USER`/`LOGNAME` and `HOME` from the process environment.
    pub fn from_process(
        known_hosts: Option<PathBuf>,
        host_key_policy: HostKeyPolicy,
    ) -> ControllerEnv {
        let local_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "root".to_owned());
        ControllerEnv {
            known_hosts,
            host_key_policy,
            local_user,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
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
        let c = &host.connection;
        let (known_hosts, known_hosts_from) = match (&self.known_hosts, &c.known_hosts) {
            (Some(path), _) => (path.clone(), KnownHostsSource::Flag),
            (None, Some(file)) => (
                self.expand(&file.path),
                KnownHostsSource::Inventory(file.from),
            ),
            (None, None) => match &self.home {
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
        match c.host_key_checking {
            HostKeyChecking::AcceptNew => accept_new_from.push(AcceptNewSource::StrictAcceptNew),
            HostKeyChecking::No => accept_new_from.push(AcceptNewSource::StrictNo),
            HostKeyChecking::Default | HostKeyChecking::Strict => {}
        }
        KeyTrust {
            known_hosts,
            known_hosts_from,
            accept_new_from,
        }
    }

    /// The SSH target for an inventory host.
    pub fn target(&self, host: &Host) -> Target {
        let c = &host.connection;
        let user = c.user.clone().unwrap_or_else(|| self.local_user.clone());
        let identity_files = match &c.identity_file {
            Some(path) => vec![self.expand(path)],
            None => self.default_keys(),
        };
        // OpenSSH's habit: `<identity>-cert.pub` beside each identity file, if it is there.
        let beside = identity_files.iter().filter_map(|key| {
            let mut cert = key.clone().into_os_string();
            cert.push("-cert.pub");
            let cert = PathBuf::from(cert);
            cert.is_file().then_some(cert)
        });
        let certificate_files = c
            .certificate_file
            .iter()
            .map(|path| self.expand(path))
            .chain(beside)
            .collect();
        let trust = self.key_trust(host);
        let host_key_policy = trust.policy();
        let known_hosts = trust.known_hosts;
        let privilege = if c.become_ == Become::Sudo || user != "root" {
            Privilege::Sudo
        } else {
            Privilege::AsLoginUser
        };
        Target {
            name: host.name.clone(),
            host: host.address().to_owned(),
            port: c.port.get(),
            jump: c.jump.as_ref().map(|j| JumpHost {
                host: j.host.clone(),
                port: j.port.get(),
                user: j.user.clone().unwrap_or_else(|| user.clone()),
            }),
            user,
            identity_files,
            certificate_files,
            known_hosts,
            privilege,
            host_key_policy,
        }
    }
}

/// Where a host's known_hosts path comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KnownHostsSource {
    /// `--known-hosts`.
    Flag,
    /// `ngfleet_known_hosts` or `UserKnownHostsFile` in the inventory.
    Inventory(KnownHostsVar),
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
            KnownHostsSource::Home => "the default, ~/.ssh/known_hosts",
            KnownHostsSource::System => "the default without $HOME",
        })
    }
}

/// What makes a host's unknown keys be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcceptNewSource {
    /// `--accept-new`.
    Flag,
    /// `StrictHostKeyChecking=accept-new` in `ansible_ssh_common_args`.
    StrictAcceptNew,
    /// `StrictHostKeyChecking=no` in `ansible_ssh_common_args`, read as accept-new.
    StrictNo,
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
                read_as_accept_new: vec!["web-01".into()]
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
