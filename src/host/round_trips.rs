//! Counting a host's round trips: every remote operation (a command, an upload, the lock, a
//! stream through the host) and every connection, and which of them came after the host's
//! turn (from install or USR2 on: the critical path a prepared host still has to walk).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::remote::{BoxFuture, Claim, Duplex, Remote};
use crate::ssh::{ExecOutput, RemoteCommand, SshError, Upload};

const UNMARKED: u32 = u32::MAX;

/// The counters of one host's run.
#[derive(Debug)]
pub struct RoundTrips {
    operations: AtomicU32,
    connections: AtomicU32,
    /// `operations` when the host's turn came.
    turn: AtomicU32,
}

impl Default for RoundTrips {
    fn default() -> RoundTrips {
        RoundTrips {
            operations: AtomicU32::new(0),
            connections: AtomicU32::new(0),
            turn: AtomicU32::new(UNMARKED),
        }
    }
}

/// What a host's run cost in round trips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Trips {
    /// Remote operations in all.
    pub total: u32,
    /// Remote operations from the host's turn on (install or USR2 to the end).
    pub critical: u32,
    /// SSH connections opened (each a handshake of several round trips).
    pub connections: u32,
}

impl RoundTrips {
    pub fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    fn operation(&self) {
        self.operations.fetch_add(1, Ordering::Relaxed);
    }

    /// The host's turn came (the first time counts).
    pub fn mark_turn(&self) {
        let now = self.operations.load(Ordering::Relaxed);
        let _ = self
            .turn
            .compare_exchange(UNMARKED, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn trips(&self) -> Trips {
        let total = self.operations.load(Ordering::Relaxed);
        let turn = self.turn.load(Ordering::Relaxed);
        Trips {
            total,
            critical: if turn == UNMARKED {
                0
            } else {
                total.saturating_sub(turn)
            },
            connections: self.connections.load(Ordering::Relaxed),
        }
    }
}

/// A remote that counts each operation.
pub struct Counted<'a> {
    pub inner: &'a dyn Remote,
    pub trips: &'a RoundTrips,
}

impl Remote for Counted<'_> {
    fn exec<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        self.trips.operation();
        self.inner.exec(cmd, deadline)
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        remote: &'a str,
        cmd: &'a RemoteCommand,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Upload, SshError>> {
        self.trips.operation();
        self.inner.upload(local, remote, cmd, deadline)
    }

    fn hold<'a>(
        &'a self,
        cmd: &'a RemoteCommand,
        ready: &'a str,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Claim, SshError>> {
        self.trips.operation();
        self.inner.hold(cmd, ready, deadline)
    }

    fn open_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, SshError>> {
        self.trips.operation();
        self.inner.open_tcp(host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_path_starts_at_the_turn() {
        let t = RoundTrips::default();
        t.connected();
        t.operation();
        t.operation();
        assert_eq!(t.trips().critical, 0);
        t.mark_turn();
        t.operation();
        t.mark_turn();
        t.operation();
        assert_eq!(
            t.trips(),
            Trips {
                total: 4,
                critical: 2,
                connections: 1
            }
        );
    }
}
