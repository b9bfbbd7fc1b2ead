//! Where and as whom to connect: the per-host description the transport is
//! given ([`Target`], the [`JumpHost`]s crossed to reach it, per-host [`Timing`] and
//! [`Identities`]) and how privileged commands are run there ([`Privilege`]).

use std::path::PathBuf;
use std::time::Duration;

use super::host_key::HostKeyPolicy;

/// One host of the fleet, as the transport needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Inventory name, used in every error about this host.
    pub name: String,
    /// Address or DNS name to connect to (from the jump host, if any).
    pub host: String,
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key files, tried in order after the ssh-agent's keys.
    pub identity_files: Vec<PathBuf>,
    /// User certificate files (OpenSSH CertificateFile).
    pub certificate_files: Vec<PathBuf>,
    /// The known_hosts file checked (and, with `AcceptNew`, appended to).
    pub known_hosts: PathBuf,
    /// Bastions to tunnel through, in the order they are crossed: the first is reached
    /// directly, each next one through the one before, the host through the last.
    pub jumps: Vec<JumpHost>,
    /// Whether the agent's keys are offered too (OpenSSH `IdentitiesOnly`).
    pub identities: Identities,
    /// Per-host connect timeout and keepalive (ssh_config); unset means the transport's.
    pub timing: Timing,
    /// How commands marked privileged are run.
    pub privilege: Privilege,
    /// What to do with a host key that is not in `known_hosts` (a changed key is always
    /// refused). Applies to the jump host too.
    pub host_key_policy: HostKeyPolicy,
}

/// A bastion host: its key is checked under its own `host`/`port` in its `known_hosts`,
/// and it is authenticated with its own user and keys (each resolved through ssh_config
/// by the caller). Its connection is shared by every host reached through the same hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    /// User certificate files (OpenSSH CertificateFile).
    pub certificate_files: Vec<PathBuf>,
    pub known_hosts: PathBuf,
    pub identities: Identities,
    pub timing: Timing,
}

/// Which keys are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Identities {
    /// The agent's keys, then the key files.
    #[default]
    AgentAndFiles,
    /// Only the key files (`IdentitiesOnly yes`): the agent is not asked.
    FilesOnly,
}

/// Connection timing for one host or hop; `None` keeps the transport's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Timing {
    /// Bounds the TCP connect, and separately the handshake (`ConnectTimeout`).
    pub connect_timeout: Option<Duration>,
    /// Keepalive after this much silence (`ServerAliveInterval`).
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalives before the connection is dropped (`ServerAliveCountMax`).
    pub keepalive_max: Option<usize>,
}

/// How privileged commands are run on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Privilege {
    /// Run as the login user (e.g. the login user is root).
    #[default]
    AsLoginUser,
    /// Wrap privileged commands in `sudo -n --`: passwordless sudo, or the become password
    /// when one is given (`sudo_password.rs`).
    Sudo,
}

/// Formats `host:port` the way OpenSSH prints endpoints (`[v6]:port`).
pub(crate) fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("10.0.0.3", 22), "10.0.0.3:22");
        assert_eq!(endpoint("::1", 2222), "[::1]:2222");
    }
}
