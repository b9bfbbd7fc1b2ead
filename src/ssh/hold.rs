//! A command held open for the life of a session: it prints one line when it is ready and
//! then runs until its channel closes. Used for the per-host lock, whose holder is then the
//! session's own remote process: when the controller or its connection dies, sshd ends the
//! process and the lock is released.

use std::time::Duration;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::SshError;
use super::command::RemoteCommand;
use super::error::{SshErrorKind, Step};
use super::session::{ExecOutput, ExitStatus, Session};

/// A running command that answered its first line.
pub struct Held {
    writer: ChannelWriteHalf<Msg>,
    _reader: ChannelReadHalf,
}

impl Held {
    /// Closes the command's standard input and the channel: the command ends.
    pub async fn release(self) {
        let _ = self.writer.eof().await;
        let _ = self.writer.close().await;
    }
}

/// What a held command said instead of its ready line.
#[derive(Debug)]
pub enum HoldOutcome {
    Held(Held),
    /// The command ended (or printed something else first): its output.
    Refused(ExecOutput),
}

impl Session {
    /// Runs `cmd` and waits (up to `deadline`) for its first stdout line. If that line is
    /// `ready`, the command keeps running until [`Held::release`] or the session ends.
    pub async fn hold(
        &self,
        cmd: &RemoteCommand,
        ready: &str,
        deadline: Duration,
    ) -> Result<HoldOutcome, SshError> {
        let step = Step::Exec(cmd.label().to_owned());
        let line = cmd.render(&self.privilege()).map_err(|e| {
            let kind = SshErrorKind::ArgumentRejected {
                index: e.index,
                problem: e.problem,
            };
            self.error(step.clone(), kind).with_source(e)
        })?;
        let timed_out = || self.error(step.clone(), SshErrorKind::Timeout { after: deadline });
        let work = async {
            let channel = self
                .handle()
                .channel_open_session()
                .await
                .map_err(|e| self.channel_error(&step, e))?;
            let (mut reader, writer) = channel.split();
            writer
                .exec(true, line.into_bytes())
                .await
                .map_err(|e| self.channel_error(&step, e))?;
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let mut status = ExitStatus::Unknown;
            while let Some(msg) = reader.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        stdout.extend_from_slice(&data);
                        if let Some(end) = stdout.iter().position(|b| *b == b'\n')
                            && stdout[..end] == *ready.as_bytes()
                        {
                            return Ok(HoldOutcome::Held(Held {
                                writer,
                                _reader: reader,
                            }));
                        }
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = ExitStatus::Code(exit_status)
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            Ok(HoldOutcome::Refused(ExecOutput {
                status,
                stdout,
                stderr,
            }))
        };
        tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| timed_out())?
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}
