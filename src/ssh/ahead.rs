//! A session channel opened ahead of the next command. Opening a channel costs a round trip
//! before the command can be sent; each command takes the channel opened while the one before
//! it ran and starts opening the next, so across a WAN a command costs one round trip, not two.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::Channel;
use russh::client::Msg;
use tokio::task::JoinHandle;

use super::session::Session;

type Opening = JoinHandle<Result<Channel<Msg>, russh::Error>>;

/// A channel opened ahead and left unused this long is closed and not used: a server may close
/// idle session channels (OpenSSH's `ChannelTimeout`), and a command must not fail for that.
const FRESH: Duration = Duration::from_secs(30);

/// At most one channel being opened, or opened and not yet used, and when it was asked for.
#[derive(Default)]
pub(super) struct Ahead {
    slot: Mutex<Option<(Instant, Opening)>>,
}

impl Session {
    /// A session channel for a command: the one opened ahead if it opened, else a new one;
    /// then the next is opened ahead.
    pub(super) async fn open_channel(&self) -> Result<Channel<Msg>, russh::Error> {
        let mut taking = Taking {
            session: self,
            opening: self.inner.ahead.slot.lock().expect("ahead").take(),
        };
        let ready = match taking.opening.as_mut() {
            Some((asked, task)) => {
                let asked = *asked;
                let opened = task.await.ok().and_then(Result::ok);
                taking.opening = None;
                match opened {
                    Some(channel) if asked.elapsed() > FRESH => {
                        let _ = channel.close().await;
                        None
                    }
                    other => other,
                }
            }
            None => None,
        };
        let channel = match ready {
            Some(channel) => channel,
            None => self.inner.handle.channel_open_session().await?,
        };
        self.open_ahead();
        Ok(channel)
    }

    /// Starts opening a channel for the next command, unless one is already there. The task
    /// ends when the server answers (or the connection ends); an unused channel is closed with
    /// the connection. With sshd's `MaxSessions 10`, this is one of the ten: see
    /// [`super::session::MAX_CONCURRENT_COMMANDS`].
    pub(super) fn open_ahead(&self) {
        let mut slot = self.inner.ahead.slot.lock().expect("ahead");
        if slot.is_none() {
            let inner = Arc::clone(&self.inner);
            *slot = Some((
                Instant::now(),
                tokio::spawn(async move { inner.handle.channel_open_session().await }),
            ));
        }
    }
}

/// The channel being taken from [`Ahead`]: if the command gives up (its deadline) while the
/// channel is still opening, it goes back for the next command instead of being dropped
/// unclosed (russh sends no close for a dropped channel, and sshd would count it among its
/// `MaxSessions` for the connection's life).
struct Taking<'s> {
    session: &'s Session,
    opening: Option<(Instant, Opening)>,
}

impl Drop for Taking<'_> {
    fn drop(&mut self) {
        if let Some(opening) = self.opening.take() {
            let mut slot = self.session.inner.ahead.slot.lock().expect("ahead");
            if slot.is_none() {
                *slot = Some(opening);
            }
        }
    }
}
