//! `ngfleet unlock`: read the lock of every selected host (bounded by `--forks`), say who
//! holds it, and, once the operator has confirmed, break the held ones by killing their
//! holder on the host (checked first: it must have the lock file open and be an ngfleet
//! script). A free lock is left alone.

use std::fmt::Write as _;
use std::time::Duration;

use crate::fleet::{ControllerEnv, for_each_bounded};
use crate::host::lock::{self, Broken, LockState};
use crate::host::scripts::Layout;
use crate::model::inventory::Host;
use crate::ssh::{Session, SshError, Transport};

/// Why a host's lock could not be read or broken.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("{host}: failed to read the lock: unexpected output {output:?}")]
    Unreadable { host: String, output: String },
    #[error("{host}: failed to break the lock: {reason}")]
    Refused { host: String, reason: String },
}

/// One host's lock as read, with the connection kept for breaking it.
pub struct Found {
    pub name: String,
    layout: Layout,
    session: Option<Session>,
    pub state: Result<LockState, UnlockError>,
}

impl Found {
    /// Whether a live process holds the lock.
    pub fn is_held(&self) -> bool {
        matches!(self.state, Ok(LockState::Held(_)))
    }
}

/// Connects to every host and reads its lock; results in the order given.
pub async fn inspect(
    hosts: Vec<&Host>,
    env: &ControllerEnv,
    transport: &Transport,
    deadline: Duration,
    forks: usize,
) -> Vec<Found> {
    for_each_bounded(hosts, forks, |host| async move {
        let layout = Layout::plain(host.nginx.binary.clone());
        let found = |session, state| Found {
            name: host.name.clone(),
            layout: layout.clone(),
            session,
            state,
        };
        let session = match transport.connect(&env.target(host)).await {
            Ok(s) => s,
            Err(e) => return found(None, Err(e.into())),
        };
        let state = read(&session, &layout, deadline).await;
        found(Some(session), state)
    })
    .await
}

async fn read(
    session: &Session,
    layout: &Layout,
    deadline: Duration,
) -> Result<LockState, UnlockError> {
    let out = session.exec(&lock::state(layout), deadline).await?;
    lock::parse_state(&out.stdout_lossy()).map_err(|output| UnlockError::Unreadable {
        host: session.name().to_owned(),
        output: format!("{output} {}", out.stderr_lossy().trim())
            .trim()
            .to_owned(),
    })
}

/// Breaks every held lock among `found`; one result per held lock, in order.
pub async fn break_held(
    found: &[Found],
    deadline: Duration,
    forks: usize,
) -> Vec<(String, Result<Broken, UnlockError>)> {
    let held: Vec<&Found> = found.iter().filter(|f| f.is_held()).collect();
    for_each_bounded(held, forks, |f| async move {
        (f.name.clone(), break_one(f, deadline).await)
    })
    .await
}

async fn break_one(found: &Found, deadline: Duration) -> Result<Broken, UnlockError> {
    let (Some(session), Ok(LockState::Held(holder))) = (&found.session, &found.state) else {
        return Ok(Broken::Free);
    };
    let out = session
        .exec(&lock::unlock(&found.layout, holder.pid), deadline)
        .await?;
    lock::parse_unlock(&out.stdout_lossy()).map_err(|reason| UnlockError::Refused {
        host: found.name.clone(),
        reason: if out.stdout.is_empty() {
            format!("{} ({})", out.stderr_lossy().trim(), out.status)
        } else {
            reason
        },
    })
}

/// Disconnects from every host.
pub async fn close(found: Vec<Found>) {
    for session in found.into_iter().filter_map(|f| f.session) {
        session.close().await;
    }
}

/// What was found, one line per host: `NAME  free`, `NAME  held by HOLDER`, or the error.
pub fn listing(found: &[Found]) -> String {
    let width = found.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in found {
        let what = match &f.state {
            Ok(LockState::Free) => "free".to_owned(),
            Ok(LockState::Held(holder)) => format!("held by {holder}"),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "{:<width$}  {what}", f.name);
    }
    out
}

/// What breaking did, one line per held lock: `NAME  released (holder pid N killed)`.
pub fn results(results: &[(String, Result<Broken, UnlockError>)]) -> String {
    let width = results.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, result) in results {
        let what = match result {
            Ok(Broken::Released { pid }) => format!("released (holder pid {pid} killed)"),
            Ok(Broken::Free) => "free (its holder had already let go)".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "{name:<width$}  {what}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lock::Holder;

    fn found(name: &str, state: Result<LockState, UnlockError>) -> Found {
        Found {
            name: name.into(),
            layout: Layout::plain("/usr/sbin/nginx".parse().expect("path")),
            session: None,
            state,
        }
    }

    #[test]
    fn the_listing_names_every_host_and_its_holder() {
        let held = LockState::Held(Holder::parse("ctl pid 1; holder pid 77 since t"));
        let list = [
            found("web-01", Ok(LockState::Free)),
            found("web-002", Ok(held)),
            found(
                "web-3",
                Err(UnlockError::Unreadable {
                    host: "web-3".into(),
                    output: "?".into(),
                }),
            ),
        ];
        assert_eq!(
            listing(&list),
            "web-01   free\n\
             web-002  held by ctl pid 1 (holder pid 77 since t)\n\
             web-3    error: web-3: failed to read the lock: unexpected output \"?\"\n"
        );
        assert!(!list[0].is_held());
        assert!(list[1].is_held());
        assert!(!list[2].is_held());
    }

    #[test]
    fn results_say_released_or_why_not() {
        let text = results(&[
            ("a".into(), Ok(Broken::Released { pid: 9 })),
            ("bb".into(), Ok(Broken::Free)),
            (
                "c".into(),
                Err(UnlockError::Refused {
                    host: "c".into(),
                    reason: "pid 9 does not hold /x".into(),
                }),
            ),
        ]);
        assert_eq!(
            text,
            "a   released (holder pid 9 killed)\n\
             bb  free (its holder had already let go)\n\
             c   error: c: failed to break the lock: pid 9 does not hold /x\n"
        );
    }
}
