//! OpenSSH client configuration (`ssh_config(5)`) as data: one file's text parsed into its
//! lines (`Host`, `Match`, `Include` and options, each with its file and line), every value
//! ngfleet uses checked as OpenSSH checks it. Reading files and following `Include` is the
//! loader's job (`ssh/config_file.rs`); what applies to a host is `resolve.rs`.

mod keyword;
mod lexer;
mod matching;
pub mod resolve;

use std::fmt;
use std::sync::Arc;

use super::diagnostic::{Diagnostic, Position};
use super::keypath::KeyPath;
use super::values::{JumpHost, Port};

pub use keyword::{Other, QUIETLY_IGNORED};
pub use resolve::{Found, Local, Preset, Query, Resolved, Warning, resolve};

/// Where a line is: the file as named and its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Whether a criterion or pattern is negated (`!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sense {
    Is,
    Not,
}

/// One criterion of a `Match` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// `all`: always true.
    All,
    /// `final`: true in the second pass only; asks for one (negated too, as OpenSSH 9.2).
    Final(Sense),
    /// `canonical`: true in the second pass only; does not ask for one.
    Canonical(Sense),
    /// `host LIST`: the host name as configured so far (`HostName` applied).
    Host(Sense, String),
    /// `originalhost LIST`: the name as given.
    OriginalHost(Sense, String),
    /// `user LIST`: the remote user as configured so far.
    User(Sense, String),
    /// `localuser LIST`: the controller's user.
    LocalUser(Sense, String),
    /// A criterion OpenSSH knows but ngfleet does not evaluate (`exec`, `localnetwork`,
    /// `tagged`...): the block never applies, and a warning says so.
    Unsupported(String),
}

/// `ProxyJump`: `none`, or hops in the order they are crossed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyJump {
    None,
    Hops(Vec<Hop>),
}

/// One hop of a `ProxyJump`: `[user@]host[:port]` (IPv6 as `[::1]:22`, `ssh://` allowed);
/// what it leaves out comes from the hop's own ssh_config block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<Port>,
}

impl std::str::FromStr for Hop {
    type Err = String;

    fn from_str(s: &str) -> Result<Hop, String> {
        // The address rules are `JumpHost`'s; only whether a port was written is ours.
        let parsed = s.parse::<JumpHost>().map_err(|e| e.to_string())?;
        let text = s.trim();
        let text = text.strip_prefix("ssh://").unwrap_or(text);
        let address = text.rsplit_once('@').map_or(text, |(_, a)| a);
        let written = match address.strip_prefix('[') {
            Some(inner) => inner
                .split_once(']')
                .is_some_and(|(_, after)| !after.is_empty()),
            None => address.contains(':'),
        };
        Ok(Hop {
            user: parsed.user,
            host: parsed.host,
            port: written.then_some(parsed.port),
        })
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

impl std::str::FromStr for ProxyJump {
    type Err = String;

    /// `none`, or `[user@]host[:port]` hops separated by commas (`ssh://` URIs too).
    fn from_str(s: &str) -> Result<ProxyJump, String> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(ProxyJump::None);
        }
        s.split(',')
            .map(str::parse::<Hop>)
            .collect::<Result<Vec<_>, _>>()
            .map(ProxyJump::Hops)
    }
}

impl fmt::Display for ProxyJump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyJump::None => f.write_str("none"),
            ProxyJump::Hops(hops) => {
                let shown: Vec<String> = hops.iter().map(ToString::to_string).collect();
                f.write_str(&shown.join(","))
            }
        }
    }
}

/// `ProxyCommand`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyCommand {
    None,
    Command(String),
}

/// `StrictHostKeyChecking`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// `yes`.
    Yes,
    /// `ask` (OpenSSH's default; ngfleet cannot ask, so it refuses unknown keys).
    Ask,
    /// `accept-new`.
    AcceptNew,
    /// `no` or `off`: read as accept-new, as everywhere in ngfleet.
    No,
}

/// A supported option with its checked value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// As written; `%h` and `%%` are its only tokens.
    HostName(String),
    Port(Port),
    User(String),
    /// As written (`~` and tokens are expanded for the host).
    IdentityFile(String),
    IdentitiesOnly(YesNo),
    CertificateFile(String),
    ProxyJump(ProxyJump),
    /// `ProxyCommand`: `none` (no proxy) or a command, which ngfleet does not run.
    ProxyCommand(ProxyCommand),
    /// Several files on one line; as written.
    UserKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(Strictness),
    /// Seconds.
    ConnectTimeout(u64),
    /// Seconds; 0 turns OpenSSH's keepalive off.
    ServerAliveInterval(u64),
    ServerAliveCountMax(u64),
    /// Keyword patterns whose unknown keywords are ignored quietly.
    IgnoreUnknown(String),
}

/// A yes/no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

/// One meaningful line of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `Host PATTERN...`: starts a block.
    Host { patterns: Vec<String>, at: Location },
    /// `Match CRITERION...`: starts a block.
    Match {
        criteria: Vec<Criterion>,
        at: Location,
    },
    /// An option ngfleet applies.
    Set { setting: Setting, at: Location },
    /// An option ngfleet does not apply: ignored quietly, or warned about when it applies
    /// to a host.
    Other {
        keyword: String,
        kind: Other,
        at: Location,
    },
    /// `Include PATTERN...`; `files` is filled by the loader, in glob order.
    Include {
        patterns: Vec<String>,
        files: Vec<File>,
        at: Location,
    },
}

/// A parsed config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: Arc<str>,
    pub items: Vec<Item>,
}

/// What a set of config files is, for relative `Include` paths: a user's (`~/.ssh/config`,
/// `--ssh-config`), relative to `~/.ssh`, or the system's, relative to `/etc/ssh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    User,
    System,
}

/// The config a host is resolved against: files in the order OpenSSH reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub files: Vec<File>,
}

/// Parses one file's text. Every problem is reported at once, each with its line and
/// keyword; `Include` lines come back with no files (the loader reads them).
pub fn parse(path: &str, text: &str) -> Result<File, Vec<Diagnostic>> {
    let file: Arc<str> = path.into();
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let at = Location {
            file: Arc::clone(&file),
            line: index + 1,
        };
        match lexer::line(line) {
            Ok(None) => {}
            Ok(Some((key, args))) => match keyword::item(&key, args, at.clone()) {
                Ok(item) => items.push(item),
                Err(message) => problems.push(problem(&at, &message)),
            },
            Err(message) => problems.push(problem(&at, &message)),
        }
    }
    if problems.is_empty() {
        Ok(File { path: file, items })
    } else {
        Err(problems)
    }
}

/// A problem at a line of a config file, as the rest of ngfleet reports input problems.
pub fn problem(at: &Location, message: &str) -> Diagnostic {
    Diagnostic {
        file: at.file.to_string(),
        position: Some(Position {
            line: at.line,
            column: 1,
        }),
        path: KeyPath::root(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
#[path = "ssh_config/tests.rs"]
mod tests;
