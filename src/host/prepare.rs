//! A host's run in two parts, for a dispatcher that prepares hosts ahead of their turn:
//! [`prepare`] connects, takes the lock, observes, runs preflight and the `pre` gates, and
//! stages and checks the new binary (everything up to, not including, the first change to the
//! live binary); [`Prepared::switch`] goes on over the same connection with the staged file,
//! or [`Prepared::release`] removes it, releases the lock and closes the connection. A lost
//! connection is retried on a new one and a failed host judged by a last observation, as
//! [`super::upgrade::converge`] (prepare, then switch) always did.

use std::time::Instant;

use super::classify::{self, HostState};
use super::event::{Event, Status, Step};
use super::failure::{Fault, Seen};
use super::probe::{self, Depth};
use super::procedure::Procedure;
use super::ready::Ready;
pub use super::ready::Verdict;
use super::remote::{BoxFuture, Lease, Remote};
use super::round_trips::Counted;
use super::scripts;
use super::upgrade::{Job, Outcome, UpgradeError};
use crate::ssh::{Session, SshError, Target, Transport};

/// What is left of a host's run once its result is known: the lock's release and the
/// connection's close.
pub type Leftover = BoxFuture<'static, ()>;

/// One open connection to a host.
pub trait Connection: Remote + Send {
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

impl Connection for Session {
    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(Session::close(*self))
    }
}

/// How a host is reached (SSH; the simulated host in tests).
pub trait Connect: Send + Sync {
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Connection>, SshError>>;
}

struct Ssh<'a> {
    transport: &'a Transport,
    target: &'a Target,
}

impl Connect for Ssh<'_> {
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Connection>, SshError>> {
        Box::pin(async move {
            let session = self.transport.connect(self.target).await?;
            Ok(Box::new(session) as Box<dyn Connection>)
        })
    }
}

/// A host made ready for its turn: the open connection, the lock, the observation and the
/// staged binary (none when the host is already at the target, mid-operation or refused).
pub struct Prepared<'a> {
    connector: Box<dyn Connect + 'a>,
    job: Job<'a>,
    session: Box<dyn Connection>,
    lease: Box<dyn Lease>,
    ready: Ready,
    attempts: u32,
}

/// Connects, takes the lock and gets the host ready; nothing live changes.
pub async fn prepare<'a>(
    transport: &'a Transport,
    target: &'a Target,
    job: Job<'a>,
    events: &'a (dyn Fn(Event) + Sync),
) -> Result<Prepared<'a>, UpgradeError> {
    prepare_via(Box::new(Ssh { transport, target }), job, events).await
}

/// [`prepare`] through any way of reaching the host.
pub async fn prepare_via<'a>(
    connector: Box<dyn Connect + 'a>,
    job: Job<'a>,
    events: &'a (dyn Fn(Event) + Sync),
) -> Result<Prepared<'a>, UpgradeError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let session = connect(&*connector, &job, events).await?;
        let counted = Counted {
            inner: &*session,
            trips: job.round_trips,
        };
        let procedure = Procedure {
            remote: &counted,
            job,
            events,
        };
        match procedure.prepare().await {
            Ok((lease, ready)) => {
                return Ok(Prepared {
                    connector,
                    job,
                    session,
                    lease,
                    ready,
                    attempts,
                });
            }
            Err(e) if e.is_disconnect() && attempts < job.settings.attempts => {
                session.close().await;
            }
            Err(e) => {
                session.close().await;
                return Err(e);
            }
        }
    }
}

/// Connects, with the connect step's events.
async fn connect(
    connector: &dyn Connect,
    job: &Job<'_>,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Box<dyn Connection>, UpgradeError> {
    let t = Instant::now();
    let emit = |status: Status| {
        events(Event {
            host: job.host.name.clone(),
            step: Step::Connect,
            status,
            elapsed: t.elapsed(),
        })
    };
    emit(Status::Started);
    match connector.connect().await {
        Ok(s) => {
            emit(Status::Done);
            job.round_trips.connected();
            Ok(s)
        }
        Err(e) => {
            emit(Status::Failed(e.to_string()));
            Err(e.into())
        }
    }
}

impl<'a> Prepared<'a> {
    /// What the switch would do.
    pub fn verdict(&self) -> &Verdict {
        self.ready.verdict()
    }

    /// Goes on from the prepared state over the same connection, with the staged file: the
    /// observe-decide-act loop until the host arrives. A lost connection is retried on a new
    /// one (from a new observation); a failed host is judged by a last observation. The lock
    /// is released and the connection closed before this returns.
    pub async fn switch(self, events: &(dyn Fn(Event) + Sync)) -> Result<Outcome, UpgradeError> {
        let (result, leftover) = self.switch_leaving(events).await;
        leftover.await;
        result
    }

    /// [`Prepared::switch`], leaving the lock's release and the connection's close to the
    /// caller as a future ([`Leftover`]): the host's result is known one round trip sooner,
    /// so the next wave need not wait for them.
    pub async fn switch_leaving(
        self,
        events: &(dyn Fn(Event) + Sync),
    ) -> (Result<Outcome, UpgradeError>, Leftover) {
        let Prepared {
            connector,
            job,
            session,
            lease,
            ready,
            mut attempts,
        } = self;
        let counted = Counted {
            inner: &*session,
            trips: job.round_trips,
        };
        let procedure = Procedure {
            remote: &counted,
            job,
            events,
        };
        let (mut result, lease) = procedure.switch(lease, ready).await;
        let retry = |r: &Result<Outcome, UpgradeError>, attempts: u32| {
            matches!(r, Err(e) if e.is_disconnect()) && attempts < job.settings.attempts
        };
        let mut leftover: Leftover = Box::pin(async {});
        if retry(&result, attempts) {
            lease.release().await;
            session.close().await;
        } else {
            leftover = Box::pin(async move {
                lease.release().await;
                session.close().await;
            });
        }
        while retry(&result, attempts) {
            attempts += 1;
            let session = match connect(&*connector, &job, events).await {
                Ok(s) => s,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let counted = Counted {
                inner: &*session,
                trips: job.round_trips,
            };
            let procedure = Procedure {
                remote: &counted,
                job,
                events,
            };
            result = procedure.run().await;
            session.close().await;
        }
        let result = match result {
            Err(e) if attempts > 1 || e.touched() => Err(judge(&*connector, &job, e).await),
            other => other,
        };
        (result, leftover)
    }

    /// Removes the staged file, releases the lock and closes the connection: the host is as
    /// it was before [`prepare`].
    pub async fn release(self) {
        if let Some(staged) = self.ready.staged() {
            let counted = Counted {
                inner: &*self.session,
                trips: self.job.round_trips,
            };
            let cmd = scripts::cleanup(&[staged.to_owned()]);
            let _ = counted
                .exec(&cmd, self.job.settings.deadlines.command)
                .await;
        }
        self.lease.release().await;
        self.session.close().await;
    }
}

/// A failed host, judged by a last observation: steady (one master with workers, no
/// `.oldbin`, disk == running) or draining (the same, with a committed old master finishing
/// its connections) keeps the error; anything else (or no observation) is unrestored.
async fn judge(connector: &dyn Connect, job: &Job<'_>, error: UpgradeError) -> UpgradeError {
    let host = job.host;
    let deadline = job.settings.deadlines.command;
    let seen = match connector.connect().await {
        Ok(session) => {
            let obs = probe::run(&*session, host, Depth::Full, deadline).await;
            session.close().await;
            obs.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let seen = match seen {
        Err(why) => Seen::Unobservable(why),
        Ok(obs) => match classify::classify(&obs) {
            // Serving one version (an old master finishing its last connections is fine).
            HostState::Steady | HostState::Draining(_) => return error,
            state => Seen::State(state),
        },
    };
    UpgradeError::Unrestored {
        host: host.name.clone(),
        step: Step::Observe,
        fault: Box::new(Fault::LastSeen {
            error: Box::new(error),
            seen,
        }),
    }
}

/// Prepare, then switch, through any way of reaching the host.
pub async fn converge_via<'a>(
    connector: Box<dyn Connect + 'a>,
    job: Job<'a>,
    events: &'a (dyn Fn(Event) + Sync),
) -> Result<Outcome, UpgradeError> {
    prepare_via(connector, job, events)
        .await?
        .switch(events)
        .await
}
