//! TCP streams through a host (`direct-tcpip` channels, like `ssh -W`), for
//! talking to services reachable from the host, e.g. HTTP health checks of
//! nginx on its loopback.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use russh::ChannelStream;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::SshError;
use super::error::{SshErrorKind, Step};
use super::session::Session;
use super::target::endpoint;

/// A byte stream to `host:port` as seen from the remote host. Keeps its
/// session alive while open; dropping it closes the channel.
pub struct TcpTunnel {
    stream: ChannelStream<Msg>,
    _session: Session,
}

impl Session {
    /// Opens a stream to `host:port` from the remote host, within the
    /// transport's connect timeout.
    pub async fn open_tcp(&self, host: &str, port: u16) -> Result<TcpTunnel, SshError> {
        let dest = endpoint(host, port);
        let step = Step::Tunnel(dest.clone());
        let open =
            self.inner
                .handle
                .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0);
        let channel = tokio::time::timeout(self.inner.open_timeout, open)
            .await
            .map_err(|_| {
                let after = self.inner.open_timeout;
                self.error(step.clone(), SshErrorKind::Timeout { after })
            })?
            .map_err(|e| match e {
                russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ConnectFailed) => self
                    .error(step.clone(), SshErrorKind::ConnectRefused)
                    .with_endpoint(format!("tunnel to {dest}"))
                    .with_source(e),
                other => self.channel_error(&step, other),
            })?;
        Ok(TcpTunnel {
            stream: channel.into_stream(),
            _session: self.clone(),
        })
    }
}

impl AsyncRead for TcpTunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpTunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
