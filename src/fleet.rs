//! From inventory hosts to SSH targets, and running one async job per host with bounded
//! concurrency. This is where the controller's environment (the user, `~`, default key
//! files) meets the pure inventory model.

use std::future::Future;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use futures::stream;

use crate::model::inventory::{Become, Host, HostKeyChecking};
use crate::ssh::{HostKeyPolicy, JumpHost, Privilege, Target};

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

    /// The SSH target for an inventory host.
    pub fn target(&self, host: &Host) -> Target {
        let c = &host.connection;
        let user = c.user.clone().unwrap_or_else(|| self.local_user.clone());
        let identity_files = match &c.identity_file {
            Some(path) => vec![self.expand(path)],
            None => self.default_keys(),
        };
        let known_hosts = self
            .known_hosts
            .clone()
            .or_else(|| c.known_hosts.as_deref().map(|p| self.expand(p)))
            .or_else(|| self.home.as_ref().map(|h| h.join(".ssh/known_hosts")))
            .unwrap_or_else(|| Path::new("/etc/ssh/ssh_known_hosts").to_owned());
        let privilege = if c.become_ == Become::Sudo || user != "root" {
            Privilege::Sudo
        } else {
            Privilege::AsLoginUser
        };
        let host_key_policy = match (self.host_key_policy, c.host_key_checking) {
            (HostKeyPolicy::AcceptNew, _) | (_, HostKeyChecking::AcceptNew) => {
                HostKeyPolicy::AcceptNew
            }
            _ => HostKeyPolicy::Strict,
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
            known_hosts,
            privilege,
            host_key_policy,
        }
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
