//! Where and as whom to connect: the per-host description the transport is
//! given ([`Target`], its optional [`JumpHost`]) and how privileged commands
//! are run there ([`Privilege`]).

use std::path::PathBuf;

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
    /// Bastion to tunnel through.
    pub jump: Option<JumpHost>,
    /// How commands marked privileged are run.
    pub privilege: Privilege,
    /// What to do with a host key that is not in `known_hosts` (a changed key is always
    /// refused). Applies to the jump host too.
    pub host_key_policy: HostKeyPolicy,
}

/// A bastion host. Its key is checked in the target's known_hosts file under
/// its own `host`/`port`, and it is authenticated with the same credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub host: String,
    pub port: u16,
    pub user: String,
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
