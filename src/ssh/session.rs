//! One authenticated connection to a host and running commands on it: each
//! command gets its own channel (so a [`Session`] can be used from several
//! tasks at once), its stdin fed while its output is collected, everything
//! bounded by a deadline after which the channel is signalled and closed.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{Handle, Msg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Disconnect, Sig};
use tokio::sync::Semaphore;

use super::ahead::Ahead;
use super::command::{RemoteCommand, sudo_refusal};
use super::error::{SshError, SshErrorKind, Step, SudoAuth};
use super::host_key::ClientHandler;
use super::sudo_password::BecomePassword;
use super::target::Privilege;
use super::trace::{self, Ending, Verbosity};

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit-status` from the server.
    Code(u32),
    /// `exit-signal` from the server: the signal name without `SIG`.
    Signal(String),
    /// The channel closed without either.
    Unknown,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(sig) => write!(f, "killed by signal {sig}"),
            ExitStatus::Unknown => f.write_str("no exit status"),
        }
    }
}

/// What a remote command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn stdout_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    pub fn stderr_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }
}

/// An authenticated connection to one host. Cheap to clone; clones share
/// the connection and may run commands concurrently.
#[derive(Clone)]
pub struct Session {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) name: String,
    pub(super) user: String,
    pub(super) privilege: Privilege,
    /// Bound for opening auxiliary channels (tunnels).
    pub(super) open_timeout: Duration,
    pub(super) handle: Handle<ClientHandler>,
    /// The bastion connections the main one runs through, in hop order, kept alive with
    /// it (shared with the other hosts behind the same hops).
    pub(super) jumps: Vec<Arc<Handle<ClientHandler>>>,
    /// Caps concurrent command channels below sshd's `MaxSessions` (10).
    pub(super) channels: Semaphore,
    /// What `-v` asked to see of each command.
    pub(super) verbosity: Verbosity,
    /// Given to sudo before each privileged command, if set (`sudo_password.rs`).
    pub(super) become_password: Option<BecomePassword>,
    /// The channel opened ahead of the next command (`ahead.rs`).
    pub(super) ahead: Ahead,
}

/// Concurrent commands per connection; more wait for a free slot (within
/// their deadline) instead of being refused by sshd's `MaxSessions 10`: these
/// eight, the lock's channel and the channel opened ahead make ten.
pub(super) const MAX_CONCURRENT_COMMANDS: usize = 8;

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.inner.name)
            .field("user", &self.inner.user)
            .field("privilege", &self.inner.privilege)
            .field("jumps", &self.inner.jumps.len())
            .finish_non_exhaustive()
    }
}

/// A failure while feeding a command's stdin.
pub(super) enum FeedError {
    /// Reading our side failed: abort the command.
    Local(io::Error),
    /// The channel stopped taking data (the command exited or the connection
    /// broke): the collected output tells which.
    Channel,
}

/// Something that writes a command's stdin.
pub(super) trait Stdin {
    type Output;
    async fn feed(self, channel: &ChannelWriteHalf<Msg>) -> Result<Self::Output, FeedError>;
}

struct NoInput;

impl Stdin for NoInput {
    type Output = ();
    async fn feed(self, _: &ChannelWriteHalf<Msg>) -> Result<(), FeedError> {
        Ok(())
    }
}

/// A command's result plus what its stdin feeder returned (`None` if the
/// channel closed before all input was taken).
pub(super) struct Ran<T> {
    pub(super) output: ExecOutput,
    pub(super) fed: Option<T>,
}

impl Session {
    /// A session for a new connection; the first command's channel starts opening at once.
    pub(super) fn new(inner: Inner) -> Self {
        let session = Self {
            inner: Arc::new(inner),
        };
        session.open_ahead();
        session
    }

    /// The inventory name of the host.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn privilege(&self) -> Privilege {
        self.inner.privilege
    }

    /// Whether the connection has ended (e.g. keepalives went unanswered).
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Runs `cmd` with empty stdin. A non-zero exit is not an error (look at
    /// `status`), except sudo refusing a privileged command (`SudoDenied`).
    pub async fn exec(
        &self,
        cmd: &RemoteCommand,
        deadline: Duration,
    ) -> Result<ExecOutput, SshError> {
        let step = Step::Exec(cmd.label().to_owned());
        Ok(self.run(cmd, step, deadline, NoInput).await?.output)
    }

    /// Disconnects. Other clones of this session fail with `Disconnected` afterwards.
    /// Bastions stay up for the other hosts behind them; each closes when the transport
    /// and the last session through it are gone.
    pub async fn close(self) {
        // Already gone is fine.
        let _ = self
            .inner
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }

    /// The line for `cmd` on this host and what its stdin starts with (the become password,
    /// for a sudo command when one is given); an argument that cannot be sent is an error.
    pub(super) fn line_for(
        &self,
        cmd: &RemoteCommand,
        step: &Step,
    ) -> Result<(String, Option<Vec<u8>>), SshError> {
        let password = self.inner.become_password.as_ref();
        cmd.render_for(&self.inner.privilege, password)
            .map_err(|e| {
                let kind = SshErrorKind::ArgumentRejected {
                    index: e.index,
                    problem: e.problem,
                };
                self.error(step.clone(), kind).with_source(e)
            })
    }

    /// The error for a sudo command that sudo refused, if it did.
    pub(super) fn sudo_denied(
        &self,
        cmd: &RemoteCommand,
        step: &Step,
        output: &ExecOutput,
    ) -> Option<SshError> {
        if !cmd.uses_sudo(&self.inner.privilege) {
            return None;
        }
        let detail = sudo_refusal(&output.status, &output.stderr)?;
        let auth = match self.inner.become_password {
            Some(_) => SudoAuth::Password,
            None => SudoAuth::NoPassword,
        };
        let user = self.inner.user.clone();
        Some(self.error(
            step.clone(),
            SshErrorKind::SudoDenied { user, detail, auth },
        ))
    }

    pub(super) fn error(&self, step: Step, kind: SshErrorKind) -> SshError {
        SshError::new(self.inner.name.clone(), step, kind)
    }

    /// Maps a russh failure on this connection.
    pub(super) fn channel_error(&self, step: &Step, e: russh::Error) -> SshError {
        let lost = self.inner.handle.is_closed()
            || matches!(
                e,
                russh::Error::SendError
                    | russh::Error::Disconnect
                    | russh::Error::HUP
                    | russh::Error::ConnectionTimeout
                    | russh::Error::KeepaliveTimeout
                    | russh::Error::InactivityTimeout
            );
        let kind = if lost {
            SshErrorKind::Disconnected
        } else {
            SshErrorKind::Protocol
        };
        self.error(step.clone(), kind).with_source(e)
    }

    /// Opens a channel, runs `cmd`, feeds `stdin` while collecting output,
    /// all within `deadline`; on expiry the command is sent SIGTERM and the
    /// channel closed. Traced at `-v`.
    pub(super) async fn run<S: Stdin>(
        &self,
        cmd: &RemoteCommand,
        step: Step,
        deadline: Duration,
        stdin: S,
    ) -> Result<Ran<S::Output>, SshError> {
        let started = Instant::now();
        let result = self.run_untraced(cmd, step, deadline, stdin).await;
        if self.inner.verbosity > Verbosity::Off {
            let ending = match &result {
                Ok(ran) => Ending::Ran(&ran.output),
                Err(e) => Ending::Failed(e),
            };
            self.trace(cmd, started.elapsed(), ending);
        }
        result
    }

    /// Reports a command's end on stderr (`-v`).
    pub(super) fn trace(&self, cmd: &RemoteCommand, elapsed: Duration, ending: Ending<'_>) {
        if self.inner.verbosity > Verbosity::Off {
            trace::emit(&trace::command_text(
                &self.inner.name,
                cmd.label(),
                elapsed,
                ending,
                self.inner.verbosity,
            ));
        }
    }

    async fn run_untraced<S: Stdin>(
        &self,
        cmd: &RemoteCommand,
        step: Step,
        deadline: Duration,
        stdin: S,
    ) -> Result<Ran<S::Output>, SshError> {
        let (line, password) = self.line_for(cmd, &step)?;
        let timed_out = || self.error(step.clone(), SshErrorKind::Timeout { after: deadline });
        let started = Instant::now();
        let _slot = tokio::time::timeout(deadline, self.inner.channels.acquire())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| self.error(step.clone(), SshErrorKind::Disconnected))?;
        let remaining = deadline.saturating_sub(started.elapsed());
        let channel = tokio::time::timeout(remaining, self.open_channel())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| self.channel_error(&step, e))?;
        let (mut reader, writer) = channel.split();
        let work = async {
            writer
                .exec(true, line.into_bytes())
                .await
                .map_err(|e| self.channel_error(&step, e))?;
            if let Some(password) = password {
                // Before any other input; a channel that refuses it fails the command below.
                let _ = writer.data(&password[..]).await;
            }
            feed_and_collect(stdin, &writer, &mut reader)
                .await
                .map_err(|e| self.error(step.clone(), SshErrorKind::Io).with_source(e))
        };
        let remaining = deadline.saturating_sub(started.elapsed());
        let (collected, fed) = match tokio::time::timeout(remaining, work).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                let _ = writer.close().await;
                return Err(e);
            }
            Err(_) => {
                // Best effort: OpenSSH delivers the signal to the command's
                // process group; closing the channel closes its pipes.
                let _ = writer.signal(Sig::TERM).await;
                let _ = writer.close().await;
                return Err(timed_out());
            }
        };
        let output = self.finish(&step, collected)?;
        if let Some(denied) = self.sudo_denied(cmd, &step, &output) {
            return Err(denied);
        }
        Ok(Ran { output, fed })
    }

    fn finish(&self, step: &Step, collected: Collected) -> Result<ExecOutput, SshError> {
        if collected.refused {
            let refusal = io::Error::other("the server refused the exec request");
            return Err(self
                .error(step.clone(), SshErrorKind::Protocol)
                .with_source(refusal));
        }
        let status = match collected.status {
            Some(status) => status,
            // The channel vanished without a close: the connection is gone.
            None if collected.end == ChannelEnd::Dropped || self.is_closed() => {
                return Err(self.error(step.clone(), SshErrorKind::Disconnected));
            }
            None => ExitStatus::Unknown,
        };
        Ok(ExecOutput {
            status,
            stdout: collected.stdout,
            stderr: collected.stderr,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelEnd {
    /// The server closed the channel.
    Closed,
    /// The connection's event loop went away.
    Dropped,
}

struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
    refused: bool,
    end: ChannelEnd,
}

/// Feeds stdin and collects output concurrently, so a command that writes a
/// lot before reading (or never reads) cannot deadlock us. Returns the
/// feeder's result if it finished before the channel closed.
async fn feed_and_collect<S: Stdin>(
    stdin: S,
    writer: &ChannelWriteHalf<Msg>,
    reader: &mut ChannelReadHalf,
) -> Result<(Collected, Option<S::Output>), io::Error> {
    let feeding = async {
        let fed = stdin.feed(writer).await;
        if fed.is_ok() {
            writer.eof().await.map_err(|_| FeedError::Channel)?;
        }
        fed
    };
    let collecting = collect(reader);
    tokio::pin!(feeding, collecting);
    let mut fed = None;
    let mut feeding_done = false;
    loop {
        tokio::select! {
            result = &mut feeding, if !feeding_done => {
                feeding_done = true;
                match result {
                    Ok(output) => fed = Some(output),
                    Err(FeedError::Local(e)) => return Err(e),
                    Err(FeedError::Channel) => {}
                }
            }
            collected = &mut collecting => return Ok((collected, fed)),
        }
    }
}

async fn collect(reader: &mut ChannelReadHalf) -> Collected {
    let mut out = Collected {
        stdout: Vec::new(),
        stderr: Vec::new(),
        status: None,
        refused: false,
        end: ChannelEnd::Dropped,
    };
    while let Some(msg) = reader.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => {
                out.status = Some(ExitStatus::Code(exit_status));
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                out.status = Some(ExitStatus::Signal(signal_text(&signal_name)));
            }
            ChannelMsg::Failure => out.refused = true,
            ChannelMsg::Close => {
                out.end = ChannelEnd::Closed;
                break;
            }
            _ => {}
        }
    }
    out
}

fn signal_text(sig: &Sig) -> String {
    let name = match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(other) => other,
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_text() {
        assert_eq!(ExitStatus::Code(3).to_string(), "exit code 3");
        assert_eq!(
            ExitStatus::Signal("TERM".into()).to_string(),
            "killed by signal TERM"
        );
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Unknown.success());
        assert_eq!(signal_text(&Sig::Custom("USR2".into())), "USR2");
        assert_eq!(signal_text(&Sig::TERM), "TERM");
    }
}
