//! Host key verification during the handshake: the russh client `Handler`
//! that checks the presented key against the target's known_hosts file and
//! applies the [`HostKeyPolicy`] (record unknown keys or refuse them; a
//! changed or revoked key is always refused), or judges the host certificate
//! presented against the file's `@cert-authority` lines (`host_cert.rs`). A key is recorded only when it
//! can be shown: each one goes up as a [`RecordedKey`] to the run's
//! [`RecordedKeys`], and the caller renders it; this layer prints nothing.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::Handler;
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey, PublicKeyOrCertificate};
use tokio::sync::{Mutex, mpsc};

use super::host_cert::{self, CertRefusal};
use super::known_hosts::{self, HostKeyStatus, KnownHosts, Unrememberable};
use super::target::endpoint;

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

/// A host key recorded in a known_hosts file under `AcceptNew`: what the
/// operator is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedKey {
    /// The inventory host whose connection met the key (for its jump host's
    /// key too).
    pub host: String,
    /// `address:port` that presented the key.
    pub endpoint: String,
    /// OpenSSH key type: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...
    pub key_type: String,
    /// `SHA256:` and the unpadded base64 digest, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// The known_hosts file it was appended to.
    pub file: PathBuf,
}

impl RecordedKey {
    fn new(host: &str, endpoint: String, key: &PublicKey, file: PathBuf) -> Self {
        Self {
            host: host.to_owned(),
            endpoint,
            key_type: key.algorithm().as_str().to_owned(),
            fingerprint: fingerprint(key),
            file,
        }
    }
}

/// OpenSSH's fingerprint of a key: `SHA256:` + base64 without padding.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Where a transport sends the keys it records.
pub(crate) type KeySender = mpsc::UnboundedSender<RecordedKey>;

/// The keys a transport records, as they are recorded (see
/// [`crate::ssh::Transport::recorded_keys`]).
#[derive(Debug)]
pub struct RecordedKeys(mpsc::UnboundedReceiver<RecordedKey>);

impl RecordedKeys {
    pub(crate) fn channel() -> (KeySender, RecordedKeys) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, RecordedKeys(rx))
    }

    /// Runs `work`, handing each key recorded meanwhile to `show` as it
    /// arrives; every key recorded before `work` ended has been shown when
    /// this returns.
    pub async fn show_while<F: Future>(
        &mut self,
        work: F,
        mut show: impl FnMut(RecordedKey),
    ) -> F::Output {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                Some(key) = self.0.recv() => show(key),
                out = &mut work => {
                    while let Ok(key) = self.0.try_recv() {
                        show(key);
                    }
                    return out;
                }
            }
        }
    }
}

/// Everything needed to judge one server's key.
#[derive(Debug, Clone)]
pub(crate) struct HostKeyCheck {
    /// The inventory host this connection is for.
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) file: PathBuf,
    pub(crate) policy: HostKeyPolicy,
    /// Serialises read-check-append across all connections of a transport,
    /// so 200 parallel first contacts with one bastion record it once.
    pub(crate) lock: Arc<Mutex<()>>,
    /// Where recorded keys are shown; without a live receiver no key is recorded.
    pub(crate) shown: Option<KeySender>,
}

/// Why the server's key was not accepted.
#[derive(Debug)]
pub(crate) enum Rejection {
    Unknown,
    Changed {
        line: usize,
    },
    Revoked {
        line: usize,
    },
    Unreadable(io::Error),
    NotRecorded(io::Error),
    /// The known_hosts file cannot keep a key: accepting it would trust it unremembered.
    CannotRemember(Unrememberable),
    /// Nothing in this run shows recorded keys: accepting it would trust it unseen.
    Unshown,
    /// The host presented a certificate that is not trusted.
    Certificate(CertRefusal),
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
    /// Checks `key` and, under `AcceptNew`, records it if unknown and sends
    /// it to be shown.
    pub(crate) async fn verify(&self, key: PublicKey) -> Result<(), Rejection> {
        let _guard = self.lock.lock().await;
        let check = self.clone();
        let verdict = tokio::task::spawn_blocking(move || check.verify_blocking(&key)).await;
        let recorded =
            verdict.unwrap_or_else(|join| Err(Rejection::Unreadable(io::Error::other(join))))?;
        match (recorded, &self.shown) {
            (None, _) => Ok(()),
            (Some(key), Some(shown)) => shown.send(key).map_err(|_| Rejection::Unshown),
            (Some(_), None) => Err(Rejection::Unshown),
        }
    }

    /// Judges a host certificate against the `@cert-authority` lines for the host. A
    /// certificate is never recorded; one whose CA is not trusted for the host is accepted
    /// only if its plain key is listed for the host (as OpenSSH falls back to the plain key).
    pub(crate) async fn verify_certificate(&self, cert: Certificate) -> Result<(), Rejection> {
        let check = self.clone();
        let verdict =
            tokio::task::spawn_blocking(move || check.verify_certificate_blocking(&cert)).await;
        verdict.unwrap_or_else(|join| Err(Rejection::Unreadable(io::Error::other(join))))
    }

    fn verify_certificate_blocking(&self, cert: &Certificate) -> Result<(), Rejection> {
        let known = KnownHosts::load(&self.file).map_err(Rejection::Unreadable)?;
        let plain = PublicKey::from(cert.public_key().clone());
        let ca = PublicKey::from(cert.signature_key().clone());
        for key in [&plain, &ca] {
            if let Some(line) = known.revoked(&self.host, self.port, key) {
                return Err(Rejection::Revoked { line });
            }
        }
        let authorities = known.authorities_for(&self.host, self.port);
        let keys: Vec<&PublicKey> = authorities.iter().map(|(_, key)| *key).collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        match host_cert::judge(cert, &keys, &self.host.to_ascii_lowercase(), now) {
            Ok(()) => Ok(()),
            Err(refusal @ (CertRefusal::NoAuthority | CertRefusal::UntrustedAuthority { .. })) => {
                match known.check(&self.host, self.port, &plain) {
                    HostKeyStatus::Known { .. } => Ok(()),
                    HostKeyStatus::Revoked { line } => Err(Rejection::Revoked { line }),
                    _ => Err(Rejection::Certificate(refusal)),
                }
            }
            Err(refusal) => Err(Rejection::Certificate(refusal)),
        }
    }

    /// The verdict; `Some` when the key was unknown and has just been recorded.
    fn verify_blocking(&self, key: &PublicKey) -> Result<Option<RecordedKey>, Rejection> {
        let known = KnownHosts::load(&self.file).map_err(Rejection::Unreadable)?;
        match known.check(&self.host, self.port, key) {
            HostKeyStatus::Known { .. } => Ok(None),
            HostKeyStatus::Changed { line } => Err(Rejection::Changed { line }),
            HostKeyStatus::Revoked { line } => Err(Rejection::Revoked { line }),
            HostKeyStatus::Unknown => match self.policy {
                HostKeyPolicy::Strict => Err(Rejection::Unknown),
                HostKeyPolicy::AcceptNew => self.record(key).map(Some),
            },
        }
    }

    /// Appends an unknown key, once it is sure to be shown and remembered.
    fn record(&self, key: &PublicKey) -> Result<RecordedKey, Rejection> {
        if self.shown.as_ref().is_none_or(KeySender::is_closed) {
            return Err(Rejection::Unshown);
        }
        known_hosts::can_remember(&self.file).map_err(Rejection::CannotRemember)?;
        known_hosts::learn(&self.file, &self.host, self.port, key)
            .map_err(Rejection::NotRecorded)?;
        let reread = KnownHosts::load(&self.file).map_err(Rejection::Unreadable)?;
        match reread.check(&self.host, self.port, key) {
            HostKeyStatus::Known { .. } => Ok(RecordedKey::new(
                &self.name,
                endpoint(&self.host, self.port),
                key,
                self.file.clone(),
            )),
            _ => Err(Rejection::CannotRemember(Unrememberable::Forgot)),
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
        let verdict = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.check.verify(key.clone()).await,
            PublicKeyOrCertificate::Certificate(cert) => {
                self.check.verify_certificate(cert.clone()).await
            }
        };
        verdict.map(|()| true).map_err(HandlerError::HostKey)
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

    /// A fresh key pair from `ssh-keygen`: the public key and what `ssh-keygen -lf` prints
    /// as its fingerprint.
    fn keygen(dir: &std::path::Path, kind: &[&str]) -> (PublicKey, String, String) {
        let file = dir.join(kind.join("-"));
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", "test", "-t"])
            .args(kind)
            .arg("-f")
            .arg(&file)
            .status();
        assert!(made.is_ok_and(|s| s.success()), "ssh-keygen {kind:?}");
        let public = std::fs::read_to_string(file.with_extension("pub")).unwrap_or_default();
        let mut fields = public.split_whitespace();
        let key_type = fields.next().unwrap_or_default().to_owned();
        let key = russh::keys::parse_public_key_base64(fields.next().unwrap_or_default())
            .expect("ssh-keygen's key parses");
        let listed = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(file.with_extension("pub"))
            .output()
            .expect("ssh-keygen -lf");
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        let printed = listed
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        (key, key_type, printed)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ngssh-hk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        dir
    }

    #[test]
    fn fingerprints_read_as_ssh_keygen_prints_them() {
        let dir = scratch("fp");
        for kind in [
            &["ed25519"][..],
            &["ecdsa", "-b", "384"],
            &["rsa", "-b", "2048"],
        ] {
            let (key, key_type, printed) = keygen(&dir, kind);
            assert!(printed.starts_with("SHA256:"), "{printed}");
            assert_eq!(fingerprint(&key), printed, "{kind:?}");
            let recorded = RecordedKey::new("web-01", "10.0.0.1:22".into(), &key, dir.clone());
            assert_eq!(recorded.key_type, key_type, "{kind:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn check(file: PathBuf, shown: Option<KeySender>) -> HostKeyCheck {
        HostKeyCheck {
            name: "web-01".into(),
            host: "10.0.0.1".into(),
            port: 2222,
            file,
            policy: HostKeyPolicy::AcceptNew,
            lock: Arc::new(Mutex::new(())),
            shown,
        }
    }

    #[tokio::test]
    async fn a_new_key_is_recorded_only_where_it_is_shown_and_remembered() {
        let dir = scratch("record");
        let (key, _, printed) = keygen(&dir, &["ed25519"]);
        let file = dir.join("known_hosts");

        // Nobody to show it to: refused, and nothing written.
        let refused = check(file.clone(), None).verify(key.clone()).await;
        assert!(matches!(refused, Err(Rejection::Unshown)), "{refused:?}");
        let (tx, rx) = RecordedKeys::channel();
        drop(rx);
        let refused = check(file.clone(), Some(tx)).verify(key.clone()).await;
        assert!(matches!(refused, Err(Rejection::Unshown)), "{refused:?}");
        assert!(!file.exists());

        // /dev/null cannot remember it: refused.
        let (tx, _rx) = RecordedKeys::channel();
        let refused = check("/dev/null".into(), Some(tx))
            .verify(key.clone())
            .await;
        assert!(
            matches!(
                refused,
                Err(Rejection::CannotRemember(Unrememberable::NotAFile { .. }))
            ),
            "{refused:?}"
        );

        // A real file: recorded, and shown once.
        let (tx, mut keys) = RecordedKeys::channel();
        let verifier = check(file.clone(), Some(tx));
        let mut shown = Vec::new();
        let verdicts = keys
            .show_while(
                async {
                    let first = verifier.verify(key.clone()).await;
                    let second = verifier.verify(key.clone()).await;
                    (first, second)
                },
                |k| shown.push(k),
            )
            .await;
        assert!(matches!(verdicts, (Ok(()), Ok(()))), "{verdicts:?}");
        assert_eq!(
            shown,
            vec![RecordedKey {
                host: "web-01".into(),
                endpoint: "10.0.0.1:2222".into(),
                key_type: "ssh-ed25519".into(),
                fingerprint: printed,
                file: file.clone(),
            }]
        );
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(text.starts_with("[10.0.0.1]:2222 ssh-ed25519 "), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
