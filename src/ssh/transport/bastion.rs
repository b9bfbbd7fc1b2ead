//! Shared bastion connections: one per hop chain, made once, reused while open, and a
//! failure shared by the hosts that were waiting for the same attempt (so a dead bastion
//! costs one timeout per wave, not one per host behind it).

use std::error::Error as _;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use russh::client::Handle;
use tokio::sync::Mutex;

use super::super::error::{SshError, SshErrorKind, Step};
use super::super::host_key::ClientHandler;
use super::super::target::{JumpHost, endpoint};

/// What identifies a hop in a chain: where, as whom, with which keys and known_hosts.
pub(super) fn key(jump: &JumpHost) -> String {
    let keys: Vec<String> = jump
        .identity_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "{}@{} keys={} known_hosts={} {:?} {:?}",
        jump.user,
        endpoint(&jump.host, jump.port),
        keys.join(","),
        jump.known_hosts.display(),
        jump.identities,
        jump.timing
    )
}

/// One chain's connection.
#[derive(Default)]
pub(super) struct Slot {
    attempts: AtomicU64,
    pub(super) state: Mutex<State>,
}

impl Slot {
    /// How many attempts were started so far (read before waiting for the state).
    pub(super) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Numbers a new attempt (called with the state held).
    pub(super) fn next_attempt(&self) -> u64 {
        self.attempts.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[derive(Default)]
pub(super) struct State {
    handle: Option<Arc<Handle<ClientHandler>>>,
    failure: Option<(u64, Failure)>,
}

/// A failed attempt, to be told to each host that waited for it.
struct Failure {
    step: Step,
    kind: SshErrorKind,
    endpoint: Option<String>,
    cause: Option<String>,
}

impl State {
    /// The open connection, or the failure of an attempt started after `seen`; `None`
    /// when a new attempt is needed.
    pub(super) fn reuse(
        &self,
        name: &str,
        seen: u64,
    ) -> Option<Result<Arc<Handle<ClientHandler>>, SshError>> {
        if let Some(handle) = &self.handle
            && !handle.is_closed()
        {
            return Some(Ok(Arc::clone(handle)));
        }
        match &self.failure {
            Some((attempt, failure)) if *attempt > seen => Some(Err(failure.for_host(name))),
            _ => None,
        }
    }

    /// Keeps the outcome of attempt `attempt` and hands it back.
    pub(super) fn record(
        &mut self,
        attempt: u64,
        made: Result<Handle<ClientHandler>, SshError>,
    ) -> Result<Arc<Handle<ClientHandler>>, SshError> {
        match made {
            Ok(handle) => {
                let handle = Arc::new(handle);
                self.handle = Some(Arc::clone(&handle));
                self.failure = None;
                Ok(handle)
            }
            Err(e) => {
                self.handle = None;
                self.failure = Some((
                    attempt,
                    Failure {
                        step: e.step().clone(),
                        kind: e.kind().clone(),
                        endpoint: e.endpoint().map(str::to_owned),
                        cause: e.source().map(ToString::to_string),
                    },
                ));
                Err(e)
            }
        }
    }
}

impl Failure {
    fn for_host(&self, name: &str) -> SshError {
        let mut e = SshError::new(name, self.step.clone(), self.kind.clone());
        if let Some(endpoint) = &self.endpoint {
            e = e.with_endpoint(endpoint.clone());
        }
        if let Some(cause) = &self.cause {
            e = e.with_source(io::Error::other(cause.clone()));
        }
        e
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("attempts", &self.attempts())
            .finish_non_exhaustive()
    }
}
