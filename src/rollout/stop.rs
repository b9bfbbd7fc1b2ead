//! Stopping a rollout: the first Ctrl-C or SIGTERM asks in-flight hosts to finish and no new
//! host to start; a second one exits at once, naming the hosts that may need attention.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

const RUNNING: u8 = 0;
const HALTED: u8 = 1;
const PAUSED: u8 = 2;
const INTERRUPTED: u8 = 3;

/// Shared stop state of one run.
#[derive(Default)]
pub struct Stop {
    state: AtomicU8,
    notify: Notify,
    in_flight: Mutex<BTreeSet<String>>,
}

/// Why new hosts stop starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Halted,
    Paused,
    Interrupted,
}

impl Stop {
    pub fn reason(&self) -> Option<Reason> {
        match self.state.load(Ordering::SeqCst) {
            HALTED => Some(Reason::Halted),
            PAUSED => Some(Reason::Paused),
            INTERRUPTED => Some(Reason::Interrupted),
            _ => None,
        }
    }

    /// Records the first reason; later ones do not override it (but an interrupt does).
    pub fn set(&self, reason: Reason) {
        let code = match reason {
            Reason::Halted => HALTED,
            Reason::Paused => PAUSED,
            Reason::Interrupted => INTERRUPTED,
        };
        if reason == Reason::Interrupted {
            self.state.store(code, Ordering::SeqCst);
        } else {
            let _ = self
                .state
                .compare_exchange(RUNNING, code, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.notify.notify_waiters();
    }

    /// Sleeps for `d`, or less if the run is stopped meanwhile.
    pub async fn sleep(&self, d: std::time::Duration) {
        if self.reason().is_some() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.notify.notified() => {}
        }
    }

    pub fn started(&self, host: &str) {
        if let Ok(mut s) = self.in_flight.lock() {
            s.insert(host.to_owned());
        }
    }

    pub fn finished(&self, host: &str) {
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(host);
        }
    }

    pub fn in_flight(&self) -> Vec<String> {
        self.in_flight
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Listens for SIGINT and SIGTERM for the life of the run.
pub fn watch_signals(stop: std::sync::Arc<Stop>) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        let mut count = 0;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } }
                _ = term.recv() => {}
            }
            count += 1;
            if count == 1 {
                eprintln!(
                    "interrupted: no new host starts; hosts in flight finish their current step (again to exit now)"
                );
                stop.set(Reason::Interrupted);
            } else {
                let hosts = stop.in_flight();
                eprintln!(
                    "interrupted twice: exiting now. These hosts were in flight and may need `ngfleet rollback` or a re-run: {}",
                    if hosts.is_empty() {
                        "none".to_owned()
                    } else {
                        hosts.join(" ")
                    }
                );
                std::process::exit(130);
            }
        }
    });
}
