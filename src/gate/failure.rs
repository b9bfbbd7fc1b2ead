//! Why a health gate failed, as values: which gate (as expanded for the host), what its last
//! try saw (status, body, header, exit code, error-log lines, version), and how many tries
//! it made. `Display` renders the sentence a failure shows.

use std::time::Duration;

use super::http::HttpError;
use crate::ssh::ExitStatus;

/// A gate that did not pass, or could not be prepared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GateFailure {
    /// Every try failed; `saw` is what the last one saw.
    #[error("gate {gate}: {saw} on {tries}/{tries} tries over {:.1}s", elapsed.as_secs_f64())]
    Failed {
        /// The check as expanded for the host (`http http://10.0.0.5/health`, …).
        gate: String,
        saw: Saw,
        tries: u32,
        elapsed: Duration,
    },
    /// Before the host changed, a gate could not note where its error log ends.
    #[error("{0}")]
    Unprepared(Saw),
}

/// What one try of a gate saw.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Saw {
    #[error("no answer within {within}")]
    NoAnswer { within: String },
    /// A template that cannot be expanded for this host (validation prevents it).
    #[error("{0}")]
    Template(String),
    #[error("invalid URL {url:?}: {error}")]
    InvalidUrl { url: String, error: String },
    #[error("{0}")]
    Http(HttpError),
    /// Through the host (SSH `direct-tcpip`).
    #[error("could not connect: {error}")]
    Connect { error: String },
    /// From the controller.
    #[error("could not connect to {host}:{port}: {error}")]
    ConnectTo {
        host: String,
        port: u16,
        error: String,
    },
    #[error("got {got} (expected {})", or_list(expected))]
    Status {
        url: String,
        got: u16,
        expected: Vec<u16>,
    },
    #[error("body does not contain {needle:?}")]
    BodyLacks { needle: String },
    #[error("body does not match /{regex}/")]
    BodyMismatch { regex: String },
    #[error("header {name} is {got:?}, expected {want:?}")]
    Header {
        name: String,
        got: Option<String>,
        want: String,
    },
    /// The command could not be run on the host (the connection's error).
    #[error("{0}")]
    Remote(String),
    #[error("{status}: {stderr}")]
    Command { status: ExitStatus, stderr: String },
    #[error("could not run: {error}")]
    Spawn { error: String },
    #[error("exit {}: {stderr}", code.map_or("signal".to_owned(), |c| c.to_string()))]
    Local { code: Option<i32>, stderr: String },
    #[error("found {found:?}")]
    ErrorLog { path: String, found: String },
    #[error("reports {got:?}, expected {expected:?}")]
    Version { got: String, expected: String },
    #[error("no new master to ask")]
    NoNewMaster,
    #[error("could not read the size of {path}")]
    LogSize { path: String },
}

fn or_list(codes: &[u16]) -> String {
    let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
    codes.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_as_before() {
        let failure = GateFailure::Failed {
            gate: "http http://h/health".into(),
            saw: Saw::Status {
                url: "http://h/health".into(),
                got: 503,
                expected: vec![200, 204],
            },
            tries: 3,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(
            failure.to_string(),
            "gate http http://h/health: got 503 (expected 200 or 204) on 3/3 tries over 2.0s"
        );
        let local = Saw::Local {
            code: None,
            stderr: "boom".into(),
        };
        assert_eq!(local.to_string(), "exit signal: boom");
    }
}
