//! Host key verification during the handshake: the russh client `Handler`
//! that checks the presented key against the target's known_hosts file and
//! applies the [`HostKeyPolicy`] (record unknown keys or refuse them; a
//! changed or revoked key is always refused).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::Handler;
use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};
use tokio::sync::Mutex;

use super::known_hosts::{self, HostKeyStatus, KnownHosts};

/// What to do with a host whose key is not in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (`StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Record it in the known_hosts file and continue
    /// (`StrictHostKeyChecking accept-new`). A changed key is still refused.
    AcceptNew,
}

/// Everything needed to judge one server's key.
#[derive(Debug, Clone)]
pub(crate) struct HostKeyCheck {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) file: PathBuf,
    pub(crate) policy: HostKeyPolicy,
    /// Serialises read-check-append across all connections of a transport,
    /// so 200 parallel first contacts with one bastion record it once.
    pub(crate) lock: Arc<Mutex<()>>,
}

/// Why the server's key was not accepted.
#[derive(Debug)]
pub(crate) enum Rejection {
    Unknown,
    Changed { line: usize },
    Revoked { line: usize },
    Unreadable(io::Error),
    NotRecorded(io::Error),
}

/// The error type of [`ClientHandler`]: russh's, or our host key verdict.
#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    HostKey(Rejection),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl HostKeyCheck {
    /// Checks `key` and, under `AcceptNew`, records it if unknown.
    pub(crate) async fn verify(&self, key: PublicKey) -> Result<(), Rejection> {
        let _guard = self.lock.lock().await;
        let check = self.clone();
        let verdict = tokio::task::spawn_blocking(move || check.verify_blocking(&key)).await;
        verdict.unwrap_or_else(|join| Err(Rejection::Unreadable(io::Error::other(join))))
    }

    fn verify_blocking(&self, key: &PublicKey) -> Result<(), Rejection> {
        let known = KnownHosts::load(&self.file).map_err(Rejection::Unreadable)?;
        match known.check(&self.host, self.port, key) {
            HostKeyStatus::Known { .. } => Ok(()),
            HostKeyStatus::Changed { line } => Err(Rejection::Changed { line }),
            HostKeyStatus::Revoked { line } => Err(Rejection::Revoked { line }),
            HostKeyStatus::Unknown => match self.policy {
                HostKeyPolicy::Strict => Err(Rejection::Unknown),
                HostKeyPolicy::AcceptNew => {
                    known_hosts::learn(&self.file, &self.host, self.port, key)
                        .map_err(Rejection::NotRecorded)
                }
            },
        }
    }
}

/// Host key algorithms to ask for, most preferred first: the types already
/// recorded for this host go first, so a server that has several keys shows
/// the one we can verify (as OpenSSH's client does).
pub(crate) fn preferred_host_key_algorithms(known: &[Algorithm]) -> Vec<Algorithm> {
    let defaults = russh::Preferred::DEFAULT.key;
    let mut ordered: Vec<Algorithm> = Vec::with_capacity(defaults.len());
    for known_alg in known {
        for candidate in defaults.iter() {
            if same_key_type(candidate, known_alg) && !ordered.contains(candidate) {
                ordered.push(candidate.clone());
            }
        }
    }
    for candidate in defaults.iter() {
        // Never SHA-1 RSA signatures for the host key.
        let sha1_rsa = matches!(candidate, Algorithm::Rsa { hash: None });
        if !sha1_rsa && !ordered.contains(candidate) {
            ordered.push(candidate.clone());
        }
    }
    ordered
}

fn same_key_type(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { hash }, Algorithm::Rsa { .. }) => {
            matches!(hash, Some(HashAlg::Sha256 | HashAlg::Sha512))
        }
        _ => a == b,
    }
}

/// The russh client handler of one connection.
pub(crate) struct ClientHandler {
    check: HostKeyCheck,
}

impl ClientHandler {
    pub(crate) fn new(check: HostKeyCheck) -> Self {
        Self { check }
    }
}

impl Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // We never ask for host certificates; if one comes anyway, judge
            // the plain key inside it.
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        self.check
            .verify(key)
            .await
            .map(|()| true)
            .map_err(HandlerError::HostKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::EcdsaCurve;

    #[test]
    fn known_types_first_and_no_sha1_rsa() {
        let p256 = Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        };
        let order = preferred_host_key_algorithms(&[Algorithm::Rsa { hash: None }]);
        assert_eq!(
            order[0],
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512)
            }
        );
        assert_eq!(
            order[1],
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256)
            }
        );
        assert!(!order.contains(&Algorithm::Rsa { hash: None }));
        assert!(order.contains(&Algorithm::Ed25519));
        let order = preferred_host_key_algorithms(std::slice::from_ref(&p256));
        assert_eq!(order[0], p256);
        let order = preferred_host_key_algorithms(&[]);
        assert_eq!(order[0], Algorithm::Ed25519);
    }
}
