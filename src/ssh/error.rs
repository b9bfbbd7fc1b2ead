//! The transport's error type: every failure is an [`SshError`] that names
//! the inventory host, the [`Step`] that failed and a matchable
//! [`SshErrorKind`], with the underlying cause chained as its `source()`.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::host_cert::CertRefusal;
use super::known_hosts::Unrememberable;

/// The underlying cause of an [`SshError`], if there is one.
pub type ErrorSource = Box<dyn StdError + Send + Sync + 'static>;

/// A failure talking to one host.
///
/// Displays as `NAME[ (ENDPOINT)]: MESSAGE`, e.g.
/// `web-03 (10.0.0.3:22): failed to connect: connection refused`. The
/// message never repeats the source's text: walk `source()` for details.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SshError(Box<Repr>);

#[derive(Debug, thiserror::Error)]
#[error("{host}{}: {}", EndpointSuffix(.endpoint), Message(.kind, .step))]
struct Repr {
    host: String,
    endpoint: Option<String>,
    step: Step,
    kind: SshErrorKind,
    #[source]
    source: Option<ErrorSource>,
}

impl SshError {
    /// A new error for inventory host `host`.
    pub fn new(host: impl Into<String>, step: Step, kind: SshErrorKind) -> Self {
        Self(Box::new(Repr {
            host: host.into(),
            endpoint: None,
            step,
            kind,
            source: None,
        }))
    }

    /// Attaches the network endpoint (shown in parentheses after the name).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.0.endpoint = Some(endpoint.into());
        self
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<ErrorSource>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// The inventory name of the host this error is about.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// The network endpoint, when the failure happened while reaching it.
    pub fn endpoint(&self) -> Option<&str> {
        self.0.endpoint.as_deref()
    }

    /// What the transport was doing.
    pub fn step(&self) -> &Step {
        &self.0.step
    }

    /// What went wrong, for matching.
    pub fn kind(&self) -> &SshErrorKind {
        &self.0.kind
    }
}

/// What the transport was doing when an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Resolving the address and opening the TCP connection.
    Connect,
    /// SSH version exchange, key exchange and host key check.
    Handshake,
    /// User authentication.
    Authenticate,
    /// Running a remote command; holds the command's label.
    Exec(String),
    /// Uploading a file; holds the remote path.
    Upload(String),
    /// Opening a direct-tcpip stream; holds `host:port`.
    Tunnel(String),
    /// Closing the connection.
    Close,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Connect => f.write_str("connect"),
            Step::Handshake => f.write_str("handshake"),
            Step::Authenticate => f.write_str("authentication"),
            Step::Exec(label) => f.write_str(label),
            Step::Upload(path) => write!(f, "upload to {path}"),
            Step::Tunnel(dest) => write!(f, "tunnel to {dest}"),
            Step::Close => f.write_str("disconnect"),
        }
    }
}

/// How sudo was asked on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SudoAuth {
    /// `sudo -n`: no password to give.
    NoPassword,
    /// A become password was given (`--ask-become-pass`, `NGFLEET_BECOME_PASSWORD`).
    Password,
}

/// Why a key file could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialProblem {
    /// The file could not be read.
    Unreadable,
    /// The file is not a private key russh understands.
    Unparseable,
    /// The key is encrypted, `NGFLEET_KEY_PASSPHRASE` is unset and stdin is
    /// not a terminal.
    NoPassphrase,
    /// The passphrase did not decrypt the key.
    WrongPassphrase,
    /// Reading the passphrase from the terminal failed.
    PromptFailed,
    /// A certificate file (`CertificateFile`, `ngfleet_ssh_certificate`) could not be read.
    CertificateUnreadable,
    /// A certificate file is not an OpenSSH certificate.
    CertificateUnparseable,
}

/// Why an argument of a remote command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentProblem {
    /// It contains a NUL byte, which no shell can carry.
    Nul,
    /// It contains a newline.
    Newline,
}

impl fmt::Display for ArgumentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgumentProblem::Nul => "contains a nul byte",
            ArgumentProblem::Newline => "contains a newline",
        })
    }
}

/// What went wrong; match on this.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshErrorKind {
    /// The TCP connection was actively refused.
    ConnectRefused,
    /// The TCP connection did not complete in time.
    ConnectTimeout { after: Duration },
    /// The host presented a key that `known_hosts` does not list.
    HostKeyUnknown { endpoint: String, file: PathBuf },
    /// `known_hosts` lists a different key for this host (first such line).
    HostKeyChanged { file: PathBuf, line: usize },
    /// The host's key is marked `@revoked` in `known_hosts`.
    HostKeyRevoked { file: PathBuf, line: usize },
    /// The host presented a certificate that is not trusted (`reason` says why).
    HostCertificateRefused {
        endpoint: String,
        file: PathBuf,
        reason: CertRefusal,
    },
    /// The known_hosts file could not be read or appended to.
    KnownHostsFile { file: PathBuf },
    /// An unknown key was not accepted under accept-new: `file` cannot remember it.
    HostKeyNotRemembered {
        endpoint: String,
        file: PathBuf,
        why: Unrememberable,
    },
    /// An unknown key was not accepted under accept-new: nothing in this run shows
    /// recorded keys ([`crate::ssh::Transport::recorded_keys`]).
    HostKeyUnshown { endpoint: String },
    /// The server refused every credential we offered.
    AuthDenied { user: String, methods: String },
    /// No credential could be offered at all (no agent keys, no key files).
    NoCredentials { user: String },
    /// A key file could not be used.
    Credentials {
        path: PathBuf,
        problem: CredentialProblem,
    },
    /// sudo refused to run the command; `detail` is sudo's reason; `auth` says whether a
    /// become password was given.
    SudoDenied {
        user: String,
        detail: String,
        auth: SudoAuth,
    },
    /// A step did not finish before its deadline.
    Timeout { after: Duration },
    /// The connection is gone.
    Disconnected,
    /// A held command's lease ended (see [`crate::ssh::Held`]): `reason` says how.
    HoldLost { reason: String },
    /// The uploaded file's sha256 on the host differs from what was sent.
    ChecksumMismatch { expected: String, found: String },
    /// An argument (`$index`; 0 is the script) cannot be passed safely.
    ArgumentRejected {
        index: usize,
        problem: ArgumentProblem,
    },
    /// A remote helper command needed by the step failed (e.g. `sha256sum`).
    RemoteCommandFailed { status: String },
    /// An I/O error, locally or on the channel.
    Io,
    /// The SSH protocol failed (negotiation, channel refused, ...).
    Protocol,
}

/// Renders a duration as `30s`, `1.5s` or `250ms`.
pub(crate) fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

struct EndpointSuffix<'a>(&'a Option<String>);

impl fmt::Display for EndpointSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(endpoint) => write!(f, " ({endpoint})"),
            None => Ok(()),
        }
    }
}

struct Message<'a>(&'a SshErrorKind, &'a Step);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Message(kind, step) = self;
        match kind {
            SshErrorKind::ConnectRefused => f.write_str("failed to connect: connection refused"),
            SshErrorKind::ConnectTimeout { after } => {
                write!(
                    f,
                    "failed to connect: timed out after {}",
                    human_duration(*after)
                )
            }
            SshErrorKind::HostKeyUnknown { endpoint, file } => write!(
                f,
                "unknown host key for {endpoint} (not in {}; use --accept-new to record it)",
                file.display()
            ),
            SshErrorKind::HostKeyChanged { file, line } => {
                write!(f, "host key changed ({}:{line})", file.display())
            }
            SshErrorKind::HostKeyRevoked { file, line } => {
                write!(f, "host key is revoked ({}:{line})", file.display())
            }
            SshErrorKind::HostCertificateRefused {
                endpoint,
                file,
                reason,
            } => write!(
                f,
                "host certificate of {endpoint} refused: {reason} (@cert-authority in {})",
                file.display()
            ),
            SshErrorKind::KnownHostsFile { file } => {
                write!(f, "cannot use known_hosts file {}", file.display())
            }
            SshErrorKind::HostKeyNotRemembered {
                endpoint,
                file,
                why,
            } => write!(
                f,
                "new host key for {endpoint} not accepted: {} {why} (give --known-hosts a real file)",
                file.display()
            ),
            SshErrorKind::HostKeyUnshown { endpoint } => write!(
                f,
                "new host key for {endpoint} not accepted: this run has no way to show it"
            ),
            SshErrorKind::AuthDenied { user, methods } => {
                write!(f, "permission denied ({methods}) for user {user}")
            }
            SshErrorKind::NoCredentials { user } => write!(
                f,
                "no credentials to offer for user {user} (ssh-agent has no keys and no identity file is usable)"
            ),
            SshErrorKind::Credentials { path, problem } => {
                let path = path.display();
                match problem {
                    CredentialProblem::Unreadable => write!(f, "cannot read identity file {path}"),
                    CredentialProblem::Unparseable => {
                        write!(f, "cannot parse identity file {path}")
                    }
                    CredentialProblem::NoPassphrase => write!(
                        f,
                        "identity file {path} is encrypted and no passphrase is available (set NGFLEET_KEY_PASSPHRASE or run from a terminal)"
                    ),
                    CredentialProblem::WrongPassphrase => {
                        write!(f, "cannot decrypt identity file {path} (wrong passphrase?)")
                    }
                    CredentialProblem::PromptFailed => {
                        write!(f, "cannot read the passphrase for identity file {path}")
                    }
                    CredentialProblem::CertificateUnreadable => {
                        write!(f, "cannot read certificate file {path}")
                    }
                    CredentialProblem::CertificateUnparseable => {
                        write!(f, "cannot parse certificate file {path}")
                    }
                }
            }
            SshErrorKind::SudoDenied {
                user,
                detail,
                auth: SudoAuth::NoPassword,
            } => write!(
                f,
                "sudo refused for user {user} ({detail}; passwordless sudo is required, or give \
                 --ask-become-pass): {step}"
            ),
            SshErrorKind::SudoDenied {
                user,
                detail,
                auth: SudoAuth::Password,
            } => write!(f, "sudo refused for user {user} ({detail}): {step}"),
            SshErrorKind::Timeout { after } => match step {
                Step::Exec(label) => {
                    write!(
                        f,
                        "command timed out after {}: {label}",
                        human_duration(*after)
                    )
                }
                other => write!(f, "{other} timed out after {}", human_duration(*after)),
            },
            SshErrorKind::Disconnected => f.write_str("connection lost"),
            SshErrorKind::HoldLost { reason } => write!(f, "{step} lost: {reason}"),
            SshErrorKind::ChecksumMismatch { expected, found } => write!(
                f,
                "checksum mismatch after {step}: expected sha256 {expected}, found {found}"
            ),
            SshErrorKind::ArgumentRejected { index, problem } => {
                if *index == 0 {
                    write!(f, "command script {problem}: {step}")
                } else {
                    write!(f, "argument ${index} {problem}: {step}")
                }
            }
            SshErrorKind::RemoteCommandFailed { status } => {
                write!(f, "remote helper failed ({status}) during {step}")
            }
            SshErrorKind::Io => match step {
                Step::Connect => f.write_str("failed to connect"),
                other => write!(f, "i/o error during {other}"),
            },
            SshErrorKind::Protocol => write!(f, "ssh protocol error during {step}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: &SshError) -> String {
        e.to_string()
    }

    #[test]
    fn connect_refused_names_host_and_endpoint() {
        let e = SshError::new("web-03", Step::Connect, SshErrorKind::ConnectRefused)
            .with_endpoint("10.0.0.3:22");
        assert_eq!(
            text(&e),
            "web-03 (10.0.0.3:22): failed to connect: connection refused"
        );
        assert_eq!(e.host(), "web-03");
    }

    #[test]
    fn host_key_messages() {
        let changed = SshError::new(
            "web-07",
            Step::Handshake,
            SshErrorKind::HostKeyChanged {
                file: "/path/known_hosts".into(),
                line: 12,
            },
        );
        assert_eq!(
            text(&changed),
            "web-07: host key changed (/path/known_hosts:12)"
        );
        let unknown = SshError::new(
            "web-07",
            Step::Handshake,
            SshErrorKind::HostKeyUnknown {
                endpoint: "10.0.0.7:22".into(),
                file: "/path/known_hosts".into(),
            },
        );
        assert_eq!(
            text(&unknown),
            "web-07: unknown host key for 10.0.0.7:22 (not in /path/known_hosts; use --accept-new to record it)"
        );
        let unremembered = SshError::new(
            "web-07",
            Step::Handshake,
            SshErrorKind::HostKeyNotRemembered {
                endpoint: "10.0.0.7:22".into(),
                file: "/dev/null".into(),
                why: Unrememberable::NotAFile {
                    kind: "a character device",
                },
            },
        );
        assert_eq!(
            text(&unremembered),
            "web-07: new host key for 10.0.0.7:22 not accepted: /dev/null is a character device, not a file (give --known-hosts a real file)"
        );
        let unshown = SshError::new(
            "web-07",
            Step::Handshake,
            SshErrorKind::HostKeyUnshown {
                endpoint: "10.0.0.7:22".into(),
            },
        );
        assert_eq!(
            text(&unshown),
            "web-07: new host key for 10.0.0.7:22 not accepted: this run has no way to show it"
        );
    }

    #[test]
    fn auth_timeout_and_disconnect_messages() {
        let auth = SshError::new(
            "web-09",
            Step::Authenticate,
            SshErrorKind::AuthDenied {
                user: "deploy".into(),
                methods: "publickey".into(),
            },
        );
        assert_eq!(
            text(&auth),
            "web-09: permission denied (publickey) for user deploy"
        );
        let timeout = SshError::new(
            "web-02",
            Step::Exec("reload nginx".into()),
            SshErrorKind::Timeout {
                after: Duration::from_secs(30),
            },
        );
        assert_eq!(
            text(&timeout),
            "web-02: command timed out after 30s: reload nginx"
        );
        let lost = SshError::new("web-02", Step::Exec("x".into()), SshErrorKind::Disconnected);
        assert_eq!(text(&lost), "web-02: connection lost");
        let gone = SshError::new(
            "web-02",
            Step::Exec("lock".into()),
            SshErrorKind::HoldLost {
                reason: "no heartbeat answered for 25s".into(),
            },
        );
        assert_eq!(
            text(&gone),
            "web-02: lock lost: no heartbeat answered for 25s"
        );
        let hs = SshError::new(
            "web-02",
            Step::Handshake,
            SshErrorKind::Timeout {
                after: Duration::from_millis(1500),
            },
        );
        assert_eq!(text(&hs), "web-02: handshake timed out after 1.5s");
    }

    #[test]
    fn source_is_chained_not_repeated() {
        let io = std::io::Error::other("no route to host");
        let e = SshError::new("web-01", Step::Connect, SshErrorKind::Io)
            .with_endpoint("10.0.0.1:22")
            .with_source(io);
        assert_eq!(text(&e), "web-01 (10.0.0.1:22): failed to connect");
        let src = StdError::source(&e).map(ToString::to_string);
        assert_eq!(src.as_deref(), Some("no route to host"));
    }

    #[test]
    fn messages_are_lowercase() {
        let kinds = [
            SshErrorKind::ConnectTimeout {
                after: Duration::from_secs(5),
            },
            SshErrorKind::SudoDenied {
                user: "deploy".into(),
                detail: "a password is required".into(),
                auth: SudoAuth::NoPassword,
            },
            SshErrorKind::SudoDenied {
                user: "deploy".into(),
                detail: "sudo refused the password".into(),
                auth: SudoAuth::Password,
            },
            SshErrorKind::ChecksumMismatch {
                expected: "aa".into(),
                found: "bb".into(),
            },
            SshErrorKind::ArgumentRejected {
                index: 2,
                problem: ArgumentProblem::Newline,
            },
            SshErrorKind::Credentials {
                path: "/k".into(),
                problem: CredentialProblem::NoPassphrase,
            },
            SshErrorKind::Protocol,
        ];
        for kind in kinds {
            let e = SshError::new("h", Step::Upload("/tmp/x".into()), kind);
            let msg = text(&e);
            let body = msg.trim_start_matches("h: ");
            assert!(body.starts_with(|c: char| c.is_lowercase()), "{msg}");
        }
    }
}
