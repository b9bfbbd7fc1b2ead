//! A TCP stream through the host opened while another command runs, handed to the first gate
//! check that asks for that endpoint: the gate after commit has its connection opened during
//! the commit command and sends its request once the command has returned, one round trip
//! sooner. (The gate after WINCH cannot: a connection opened before the old workers stopped
//! accepting could reach one of them.)

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::remote::{BoxFuture, Claim, Duplex, Remote};
use crate::ssh::{ExecOutput, RemoteCommand, SshError, Upload};

/// Where a gate's first check connects through the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub host: String,
    pub port: u16,
}

/// The opening of a stream, begun earlier (maybe done by now).
pub type Opening<'a> = BoxFuture<'a, Result<Box<dyn Duplex>, SshError>>;

/// `inner`, with one stream to `tunnel` opened (or being opened) already.
pub struct TunnelAhead<'a> {
    inner: &'a dyn Remote,
    opened: Mutex<Option<(Tunnel, Opening<'a>)>>,
}

impl<'a> TunnelAhead<'a> {
    /// Nothing opened yet: every call goes to `inner`.
    pub fn new(inner: &'a dyn Remote) -> TunnelAhead<'a> {
        TunnelAhead {
            inner,
            opened: Mutex::new(None),
        }
    }

    /// Keeps `opening` for the first [`Remote::open_tcp`] to `tunnel`, which then waits for it
    /// (within that caller's own deadline) instead of opening another.
    pub fn keep(&self, tunnel: Tunnel, opening: Opening<'a>) {
        if let Ok(mut opened) = self.opened.lock() {
            *opened = Some((tunnel, opening));
        }
    }

    fn take(&self, host: &str, port: u16) -> Option<Opening<'a>> {
        let mut opened = self.opened.lock().ok()?;
        match opened.as_ref() {
            Some((t, _)) if t.host == host && t.port == port => opened.take().map(|(_, s)| s),
            _ => None,
        }
    }
}

impl Remote for TunnelAhead<'_> {
    fn exec<'b>(
        &'b self,
        cmd: &'b RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'b, Result<ExecOutput, SshError>> {
        self.inner.exec(cmd, deadline)
    }

    fn upload<'b>(
        &'b self,
        local: &'b Path,
        remote: &'b str,
        cmd: &'b RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'b, Result<Upload, SshError>> {
        self.inner.upload(local, remote, cmd, deadline)
    }

    fn hold<'b>(
        &'b self,
        cmd: &'b RemoteCommand,
        ready: &'b str,
        deadline: Duration,
    ) -> BoxFuture<'b, Result<Claim, SshError>> {
        self.inner.hold(cmd, ready, deadline)
    }

    fn open_tcp<'b>(
        &'b self,
        host: &'b str,
        port: u16,
    ) -> BoxFuture<'b, Result<Box<dyn Duplex>, SshError>> {
        match self.take(host, port) {
            Some(opening) => opening,
            None => self.inner.open_tcp(host, port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A host whose every `open_tcp` is refused: only the kept stream can be had.
    struct NoTcp;

    impl Remote for NoTcp {
        fn exec<'b>(
            &'b self,
            _: &'b RemoteCommand,
            _: Duration,
        ) -> BoxFuture<'b, Result<ExecOutput, SshError>> {
            unreachable!("not used")
        }
        fn upload<'b>(
            &'b self,
            _: &'b Path,
            _: &'b str,
            _: &'b RemoteCommand,
            _: Duration,
        ) -> BoxFuture<'b, Result<Upload, SshError>> {
            unreachable!("not used")
        }
        fn hold<'b>(
            &'b self,
            _: &'b RemoteCommand,
            _: &'b str,
            _: Duration,
        ) -> BoxFuture<'b, Result<Claim, SshError>> {
            unreachable!("not used")
        }
        fn open_tcp<'b>(
            &'b self,
            host: &'b str,
            port: u16,
        ) -> BoxFuture<'b, Result<Box<dyn Duplex>, SshError>> {
            let e = SshError::new(
                "sim",
                crate::ssh::Step::Tunnel(format!("{host}:{port}")),
                crate::ssh::SshErrorKind::Disconnected,
            );
            Box::pin(async move { Err(e) })
        }
    }

    #[tokio::test]
    async fn the_kept_stream_goes_to_the_first_open_of_its_endpoint_only() {
        let (mine, mut theirs) = tokio::io::duplex(64);
        let ahead = TunnelAhead::new(&NoTcp);
        let tunnel = Tunnel {
            host: "127.0.0.1".into(),
            port: 80,
        };
        let stream: Box<dyn Duplex> = Box::new(mine);
        ahead.keep(tunnel, Box::pin(async move { Ok(stream) }));
        // Another endpoint is opened afresh (here: refused).
        assert!(ahead.open_tcp("127.0.0.1", 81).await.is_err());
        let mut got = ahead.open_tcp("127.0.0.1", 80).await.expect("kept");
        got.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        theirs.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
        // Once only: a retry opens a fresh stream.
        assert!(ahead.open_tcp("127.0.0.1", 80).await.is_err());
    }
}
