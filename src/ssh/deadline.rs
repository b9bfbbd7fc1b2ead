//! A time budget for a multi-step operation (handshake + authentication):
//! each awaited step gets what is left, and time spent waiting for the
//! person at the terminal (a passphrase prompt) can be given back.

use std::future::Future;
use std::time::{Duration, Instant};

/// The budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    pub(crate) fn after(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }

    /// The budget this deadline was created with.
    pub(crate) fn total(&self) -> Duration {
        self.total
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Gives back `spent` (e.g. time a passphrase prompt was waiting).
    pub(crate) fn extend(&mut self, spent: Duration) {
        self.at += spent;
    }

    /// Runs `fut` with whatever time is left.
    pub(crate) async fn run<F: Future>(&self, fut: F) -> Result<F::Output, Expired> {
        tokio::time::timeout(self.remaining(), fut)
            .await
            .map_err(|_| Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expires_and_extends() {
        let mut d = Deadline::after(Duration::from_millis(30));
        assert_eq!(d.total(), Duration::from_millis(30));
        let slow = d.run(tokio::time::sleep(Duration::from_millis(200))).await;
        assert_eq!(slow, Err(Expired));
        d.extend(Duration::from_millis(500));
        assert!(d.remaining() > Duration::from_millis(300));
        assert_eq!(d.run(async { 7 }).await, Ok(7));
    }
}
