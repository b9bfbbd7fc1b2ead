//! Client credentials and public-key authentication: ssh-agent identities
//! first (its certificates too), then key files, each key's certificates
//! (`CertificateFile`) before the plain key, as OpenSSH offers them. Key files
//! are decrypted at most once per path for the whole run (shared by every
//! connection), with the passphrase taken from `NGFLEET_KEY_PASSPHRASE` or,
//! only when stdin is a terminal, a prompt; certificate files are read once.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use russh::client::{AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{MethodKind, MethodSet};
use tokio::sync::{Mutex, OnceCell};

use super::deadline::Deadline;
use super::error::{CredentialProblem, ErrorSource, SshError, SshErrorKind, Step};
use super::host_key::ClientHandler;
use super::sudo_password::BecomePassword;
use super::target::Identities;

/// Environment variable holding the passphrase of encrypted key files.
pub const PASSPHRASE_ENV: &str = "NGFLEET_KEY_PASSPHRASE";

/// Where agent identities come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// Do not use an agent.
    Disabled,
    /// The agent listening on this Unix socket.
    Socket(PathBuf),
}

/// Where the passphrase of an encrypted key file comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// This passphrase (e.g. from `NGFLEET_KEY_PASSPHRASE`), for every key.
    Given(String),
    /// Ask on the terminal, once per key file, if stdin is a terminal.
    TerminalPrompt,
    /// Encrypted key files cannot be used.
    Unavailable,
}

impl fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassphraseSource::Given(_) => f.write_str("Given(<redacted>)"),
            PassphraseSource::TerminalPrompt => f.write_str("TerminalPrompt"),
            PassphraseSource::Unavailable => f.write_str("Unavailable"),
        }
    }
}

type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A key file that could not be loaded (cached like a success, so a bad key
/// fails every host at once instead of prompting 200 times).
#[derive(Debug)]
pub(crate) struct KeyError {
    path: PathBuf,
    problem: CredentialProblem,
    cause: Option<Cause>,
}

impl KeyError {
    fn new(path: &Path, problem: CredentialProblem, cause: Option<Cause>) -> Self {
        Self {
            path: path.to_path_buf(),
            problem,
            cause,
        }
    }
}

type KeyResult = Result<Arc<PrivateKey>, Arc<KeyError>>;
type CertResult = Result<Arc<Certificate>, Arc<KeyError>>;

/// Credentials shared by every connection of a run.
pub struct Credentials {
    agent: AgentSource,
    passphrase: PassphraseSource,
    keys: Mutex<HashMap<PathBuf, Arc<OnceCell<KeyResult>>>>,
    certificates: Mutex<HashMap<PathBuf, Arc<OnceCell<CertResult>>>>,
    /// One terminal prompt at a time.
    prompt: Mutex<()>,
    /// The sudo password for every host, if one was given.
    become_password: Option<BecomePassword>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("agent", &self.agent)
            .field("passphrase", &self.passphrase)
            .field("become_password", &self.become_password)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn new(agent: AgentSource, passphrase: PassphraseSource) -> Self {
        Self {
            agent,
            passphrase,
            keys: Mutex::new(HashMap::new()),
            certificates: Mutex::new(HashMap::new()),
            prompt: Mutex::new(()),
            become_password: None,
        }
    }

    /// Gives sudo `password` on every host (`--ask-become-pass`, `NGFLEET_BECOME_PASSWORD`);
    /// `None` keeps `sudo -n`.
    #[must_use]
    pub fn with_become_password(mut self, password: Option<BecomePassword>) -> Self {
        self.become_password = password;
        self
    }

    pub(crate) fn become_password(&self) -> Option<&BecomePassword> {
        self.become_password.as_ref()
    }

    /// The agent at `SSH_AUTH_SOCK` (if set), the passphrase from
    /// `NGFLEET_KEY_PASSPHRASE` (if set) or else a terminal prompt.
    pub fn from_env() -> Self {
        let agent = match std::env::var_os("SSH_AUTH_SOCK") {
            Some(sock) if !sock.is_empty() => AgentSource::Socket(PathBuf::from(sock)),
            _ => AgentSource::Disabled,
        };
        let passphrase = match std::env::var(PASSPHRASE_ENV) {
            Ok(p) => PassphraseSource::Given(p),
            Err(_) => PassphraseSource::TerminalPrompt,
        };
        Self::new(agent, passphrase)
    }

    /// The decrypted key at `path`, loading (and maybe prompting) only on
    /// first use; concurrent callers wait for that first load.
    pub(crate) async fn key(&self, path: &Path) -> KeyResult {
        let cell = {
            let mut keys = self.keys.lock().await;
            Arc::clone(keys.entry(path.to_path_buf()).or_default())
        };
        cell.get_or_init(|| async { self.load(path).await.map_err(Arc::new) })
            .await
            .clone()
    }

    /// The certificate at `path`, read on first use.
    pub(crate) async fn certificate(&self, path: &Path) -> CertResult {
        let cell = {
            let mut certificates = self.certificates.lock().await;
            Arc::clone(certificates.entry(path.to_path_buf()).or_default())
        };
        cell.get_or_init(|| async {
            let fail = |problem, cause: Cause| Arc::new(KeyError::new(path, problem, Some(cause)));
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| fail(CredentialProblem::CertificateUnreadable, Arc::new(e)))?;
            Certificate::from_openssh(text.trim())
                .map(Arc::new)
                .map_err(|e| fail(CredentialProblem::CertificateUnparseable, Arc::new(e)))
        })
        .await
        .clone()
    }

    async fn load(&self, path: &Path) -> Result<Arc<PrivateKey>, KeyError> {
        let fail = |problem, cause: Option<Cause>| KeyError::new(path, problem, cause);
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| fail(CredentialProblem::Unreadable, Some(Arc::new(e))))?;
        match russh::keys::decode_secret_key(&text, None) {
            Ok(key) => return Ok(Arc::new(key)),
            Err(russh::keys::Error::KeyIsEncrypted) => {}
            Err(e) => return Err(fail(CredentialProblem::Unparseable, Some(Arc::new(e)))),
        }
        let passphrase = self.passphrase_for(path).await?;
        // bcrypt-pbkdf is deliberately slow: keep it off the async workers.
        let decoded = tokio::task::spawn_blocking(move || {
            russh::keys::decode_secret_key(&text, Some(&passphrase))
        })
        .await;
        match decoded {
            Ok(Ok(key)) => Ok(Arc::new(key)),
            Ok(Err(e)) => Err(fail(CredentialProblem::WrongPassphrase, Some(Arc::new(e)))),
            Err(join) => Err(fail(
                CredentialProblem::WrongPassphrase,
                Some(Arc::new(join)),
            )),
        }
    }

    async fn passphrase_for(&self, path: &Path) -> Result<String, KeyError> {
        let fail = |problem, cause: Option<Cause>| KeyError::new(path, problem, cause);
        match &self.passphrase {
            PassphraseSource::Given(p) => Ok(p.clone()),
            PassphraseSource::Unavailable => Err(fail(CredentialProblem::NoPassphrase, None)),
            PassphraseSource::TerminalPrompt => {
                if !std::io::stdin().is_terminal() {
                    return Err(fail(CredentialProblem::NoPassphrase, None));
                }
                let _one_at_a_time = self.prompt.lock().await;
                let prompt = format!("passphrase for {}: ", path.display());
                match tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt)).await
                {
                    Ok(Ok(p)) => Ok(p),
                    Ok(Err(e)) => Err(fail(CredentialProblem::PromptFailed, Some(Arc::new(e)))),
                    Err(join) => Err(fail(CredentialProblem::PromptFailed, Some(Arc::new(join)))),
                }
            }
        }
    }
}

/// Who to authenticate as, for errors and for the server.
pub(crate) struct Login<'a> {
    pub(crate) name: &'a str,
    pub(crate) user: &'a str,
    pub(crate) identity_files: &'a [PathBuf],
    pub(crate) certificate_files: &'a [PathBuf],
    /// Whether the agent is asked (`IdentitiesOnly`).
    pub(crate) identities: Identities,
}

/// Tracks one connection's attempts to build the final error.
struct Attempts<'a> {
    login: &'a Login<'a>,
    tried: usize,
    methods: Option<MethodSet>,
    key_error: Option<Arc<KeyError>>,
    /// RSA signature hash, asked of the server once.
    rsa_hash: Option<Option<HashAlg>>,
}

/// Authenticates `handle` as `login.user`: agent identities, then key files.
pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    login: &Login<'_>,
    creds: &Credentials,
    deadline: &mut Deadline,
) -> Result<(), SshError> {
    let mut attempts = Attempts {
        login,
        tried: 0,
        methods: None,
        key_error: None,
        rsa_hash: None,
    };
    if let AgentSource::Socket(sock) = &creds.agent
        && login.identities == Identities::AgentAndFiles
        && attempts.with_agent(handle, sock, deadline).await?
    {
        return Ok(());
    }
    for path in login.identity_files {
        let started = Instant::now();
        let key = creds.key(path).await;
        // Loading may have waited for a prompt: not the server's fault.
        deadline.extend(started.elapsed());
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                attempts.key_error.get_or_insert(e);
                continue;
            }
        };
        for cert in attempts.certificates_of(creds, key.public_key()).await {
            let result = deadline
                .run(handle.authenticate_openssh_cert(login.user, Arc::clone(&key), cert))
                .await
                .map_err(|_| attempts.timed_out(deadline))?
                .map_err(|e| attempts.failed(handle, e))?;
            if attempts.record(result) {
                return Ok(());
            }
        }
        let hash = attempts
            .hash_for(handle, key.public_key(), deadline)
            .await?;
        let key = PrivateKeyWithHashAlg::new(key, hash);
        let result = deadline
            .run(handle.authenticate_publickey(login.user, key))
            .await
            .map_err(|_| attempts.timed_out(deadline))?
            .map_err(|e| attempts.failed(handle, e))?;
        if attempts.record(result) {
            return Ok(());
        }
    }
    Err(attempts.denied())
}

impl Attempts<'_> {
    /// Offers every agent identity. Ok(true) when one was accepted.
    async fn with_agent(
        &mut self,
        handle: &mut Handle<ClientHandler>,
        sock: &Path,
        deadline: &Deadline,
    ) -> Result<bool, SshError> {
        // An unreachable or empty agent is not an error: key files follow.
        let Ok(Ok(mut agent)) = deadline.run(AgentClient::connect_uds(sock)).await else {
            return Ok(false);
        };
        if let Some(binding) = handle.agent_session_binding().cloned() {
            // Needed for destination-constrained keys; older agents refuse it.
            let _ = deadline.run(agent.bind_session(&binding, false)).await;
        }
        let Ok(Ok(identities)) = deadline.run(agent.request_identities()).await else {
            return Ok(false);
        };
        for identity in identities {
            let user = self.login.user;
            let outcome = match identity {
                AgentIdentity::PublicKey { key, .. } => {
                    let hash = self.hash_for(handle, &key, deadline).await?;
                    deadline
                        .run(handle.authenticate_publickey_with(user, key, hash, &mut agent))
                        .await
                }
                AgentIdentity::Certificate { certificate, .. } => {
                    let key = PublicKey::from(certificate.public_key().clone());
                    let hash = self.hash_for(handle, &key, deadline).await?;
                    deadline
                        .run(handle.authenticate_certificate_with(
                            user,
                            certificate,
                            hash,
                            &mut agent,
                        ))
                        .await
                }
            }
            .map_err(|_| self.timed_out(deadline))?;
            match outcome {
                Ok(result) => {
                    if self.record(result) {
                        return Ok(true);
                    }
                }
                // The agent declined to sign: try its next key.
                Err(_) if !handle.is_closed() => continue,
                Err(e) => return Err(self.failed(handle, e)),
            }
        }
        Ok(false)
    }

    /// The certificates among the login's certificate files that certify `key`; a file that
    /// cannot be used is noted (reported if nothing is accepted) and skipped.
    async fn certificates_of(&mut self, creds: &Credentials, key: &PublicKey) -> Vec<Certificate> {
        let mut found = Vec::new();
        for path in self.login.certificate_files {
            match creds.certificate(path).await {
                Ok(cert) if cert.public_key() == key.key_data() => found.push((*cert).clone()),
                Ok(_) => {}
                Err(e) => {
                    self.key_error.get_or_insert(e);
                }
            }
        }
        found
    }

    /// `None` for non-RSA keys; for RSA the best SHA-2 hash the server takes
    /// (rsa-sha2-512 or -256; SHA-1 `ssh-rsa` is never used).
    async fn hash_for(
        &mut self,
        handle: &Handle<ClientHandler>,
        key: &PublicKey,
        deadline: &Deadline,
    ) -> Result<Option<HashAlg>, SshError> {
        if !key.algorithm().is_rsa() {
            return Ok(None);
        }
        if let Some(known) = self.rsa_hash {
            return Ok(known);
        }
        let best = deadline
            .run(handle.best_supported_rsa_hash())
            .await
            .map_err(|_| self.timed_out(deadline))?
            .map_err(|e| self.failed(handle, e))?;
        let hash = match best {
            Some(Some(hash @ (HashAlg::Sha256 | HashAlg::Sha512))) => Some(hash),
            // No server-sig-algs, or only ssh-rsa: still insist on SHA-2.
            _ => Some(HashAlg::Sha256),
        };
        self.rsa_hash = Some(hash);
        Ok(hash)
    }

    /// Notes a server answer; true on success.
    fn record(&mut self, result: AuthResult) -> bool {
        self.tried += 1;
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.methods = Some(remaining_methods);
                false
            }
        }
    }

    fn timed_out(&self, deadline: &Deadline) -> SshError {
        SshError::new(
            self.login.name,
            Step::Authenticate,
            SshErrorKind::Timeout {
                after: deadline.total(),
            },
        )
    }

    fn failed(&self, handle: &Handle<ClientHandler>, e: impl Into<ErrorSource>) -> SshError {
        let kind = if handle.is_closed() {
            SshErrorKind::Disconnected
        } else {
            SshErrorKind::Protocol
        };
        SshError::new(self.login.name, Step::Authenticate, kind).with_source(e)
    }

    fn denied(self) -> SshError {
        let name = self.login.name;
        if let Some(e) = self.key_error {
            let kind = SshErrorKind::Credentials {
                path: e.path.clone(),
                problem: e.problem,
            };
            let err = SshError::new(name, Step::Authenticate, kind);
            return match &e.cause {
                Some(cause) => err.with_source(Box::new(Arc::clone(cause)) as ErrorSource),
                None => err,
            };
        }
        if self.tried == 0 {
            let user = self.login.user.to_owned();
            return SshError::new(
                name,
                Step::Authenticate,
                SshErrorKind::NoCredentials { user },
            );
        }
        let methods = match self.methods {
            Some(set) if !set.is_empty() => {
                set.iter().map(<&str>::from).collect::<Vec<_>>().join(",")
            }
            _ => <&str>::from(&MethodKind::PublicKey).to_owned(),
        };
        let kind = SshErrorKind::AuthDenied {
            user: self.login.user.to_owned(),
            methods,
        };
        SshError::new(name, Step::Authenticate, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENCRYPTED_ED25519: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABD1phlku5
A2G7Q9iP+DcOc9AAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIHeLC1lWiCYrXsf/
85O/pkbUFZ6OGIt49PX3nw8iRoXEAAAAkKRF0st5ZI7xxo9g6A4m4l6NarkQre3mycqNXQ
dP3jryYgvsCIBAA5jMWSjrmnOTXhidqcOy4xYCrAttzSnZ/cUadfBenL+DQq6neffw7j8r
0tbCxVGp6yCQlKrgSZf6c0Hy7dNEIU2bJFGxLe6/kWChcUAt/5Ll5rI7DVQPJdLgehLzvv
sJWR7W+cGvJ/vLsw==
-----END OPENSSH PRIVATE KEY-----
";

    fn write_key(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ngssh-auth-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        let _ = std::fs::write(&path, ENCRYPTED_ED25519);
        path
    }

    #[tokio::test]
    async fn encrypted_key_is_decrypted_once_and_shared() {
        let path = write_key("enc-ok");
        let creds = Arc::new(Credentials::new(
            AgentSource::Disabled,
            PassphraseSource::Given("test".into()),
        ));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let creds = Arc::clone(&creds);
            let path = path.clone();
            tasks.push(tokio::spawn(async move { creds.key(&path).await }));
        }
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.expect("task").expect("decrypts"));
        }
        assert!(keys.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    }

    #[tokio::test]
    async fn wrong_or_missing_passphrase_is_a_clear_error() {
        let path = write_key("enc-bad");
        let wrong = Credentials::new(
            AgentSource::Disabled,
            PassphraseSource::Given("nope".into()),
        );
        let err = wrong.key(&path).await.expect_err("wrong passphrase");
        assert_eq!(err.problem, CredentialProblem::WrongPassphrase);
        let none = Credentials::new(AgentSource::Disabled, PassphraseSource::Unavailable);
        let err = none.key(&path).await.expect_err("no passphrase");
        assert_eq!(err.problem, CredentialProblem::NoPassphrase);
        let missing = none.key(Path::new("/nonexistent/ngssh-key")).await;
        assert_eq!(
            missing.expect_err("missing").problem,
            CredentialProblem::Unreadable
        );
    }

    #[test]
    fn passphrase_is_not_debug_printed() {
        let become_password = BecomePassword::new("sudo-secret").ok();
        assert!(become_password.is_some());
        let creds = Credentials::new(
            AgentSource::Disabled,
            PassphraseSource::Given("hunter2".into()),
        )
        .with_become_password(become_password);
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("sudo-secret"),
            "{shown}"
        );
        assert!(creds.become_password().is_some());
    }
}
