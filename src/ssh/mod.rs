//! SSH transport: connecting to fleet hosts (directly or through a jump
//! host) with known_hosts checking and agent/key authentication, running
//! quoted commands with deadlines, uploading files with checksum
//! verification, and tunnelling TCP through a host.

mod ahead;
mod auth;
mod command;
pub mod config_file;
mod deadline;
mod error;
mod hold;
mod host_cert;
mod host_key;
mod known_hosts;
mod session;
mod sudo_password;
mod target;
mod trace;
mod transport;
mod tunnel;
mod upload;

pub use auth::{AgentSource, Credentials, PASSPHRASE_ENV, PassphraseSource};
pub use command::{ArgumentError, RemoteCommand};
pub use error::{
    ArgumentProblem, CredentialProblem, ErrorSource, SshError, SshErrorKind, Step, SudoAuth,
};
pub use hold::{Heartbeat, Held, HoldOutcome};
pub use host_cert::CertRefusal;
pub use host_key::{HostKeyPolicy, RecordedKey, RecordedKeys};
pub use known_hosts::{Unrememberable, can_remember};
pub use session::{ExecOutput, ExitStatus, Session};
pub use sudo_password::{BECOME_PASSWORD_ENV, BecomePassword, BecomePasswordError};
pub use target::{Identities, JumpHost, Privilege, Target, Timing};
pub use trace::Verbosity;
pub use transport::{CIPHER_ORDER, KEX_ORDER, Transport, TransportConfig};
pub use tunnel::TcpTunnel;
pub use upload::{UPLOAD_SCRIPT, Upload, upload_command};
