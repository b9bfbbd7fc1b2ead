//! The seam between the per-host procedure and a host: the remote operations the procedure
//! needs (run one of our fixed scripts, upload a file, hold the lock, open a TCP stream
//! through the host) as one trait. The SSH session implements it; the simulated host of the
//! tests implements it too, so every interruption point can be walked without a network.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::ssh::{ExecOutput, Held, HoldOutcome, RemoteCommand, Session, SshError, Upload};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream through the host (for HTTP and TCP gates).
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A held lock: alive while the holder's command runs on the host.
pub trait Lease: Send + Sync {
    /// Resolves when the lock is lost (the holder ended, or its heartbeats went unanswered):
    /// from then on the controller must not act on the host.
    fn lost(&self) -> BoxFuture<'_, SshError>;

    /// Ends the holder (the lock is released on the host).
    fn release(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// What asking for the lock gave.
pub enum Claim {
    /// Held; `said` is what the holder printed before its ready line (the first observation).
    Held { lease: Box<dyn Lease>, said: String },
    /// The holder command ended (or said something else first): its output.
    Refused(ExecOutput),
}

/// The remote operations of the per-host procedure.
pub trait Remote: Sync {
    /// Runs a command (one of our fixed scripts with quoted arguments) within `deadline`.
    fn exec<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>>;

    /// Streams `local` to `remote` by `cmd` (the upload script, maybe with a function run
    /// after it: [`Session::upload_with`]) and verifies it there; returns the sha256 written
    /// and what ran after.
    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
        cmd: &'a RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Upload, SshError>>;

    /// Runs `cmd` and keeps it running once it printed `ready` (the lock).
    fn hold<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        ready: &'a str,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Claim, SshError>>;

    /// A TCP stream to `host:port` as seen from the host.
    fn open_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, SshError>>;
}

impl Lease for Held {
    fn lost(&self) -> BoxFuture<'_, SshError> {
        Box::pin(Held::lost(self))
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { Held::release(*self).await })
    }
}

impl Remote for Session {
    fn exec<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(Session::exec(self, cmd, deadline))
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
        cmd: &'a RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Upload, SshError>> {
        Box::pin(Session::upload_with(self, local, remote, cmd, deadline))
    }

    fn hold<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        ready: &'a str,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Claim, SshError>> {
        Box::pin(async move {
            Ok(match Session::hold(self, cmd, ready, deadline).await? {
                HoldOutcome::Held(mut h) => {
                    let said = String::from_utf8_lossy(&h.take_said()).into_owned();
                    Claim::Held {
                        lease: Box::new(h),
                        said,
                    }
                }
                HoldOutcome::Refused(out) => Claim::Refused(out),
            })
        })
    }

    fn open_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, SshError>> {
        Box::pin(async move {
            let tunnel = Session::open_tcp(self, host, port).await?;
            Ok(Box::new(tunnel) as Box<dyn Duplex>)
        })
    }
}
