//! The host's own record of where its nginx came from and where it is going: a small text
//! file beside the binary, written atomically (temp file + rename) before every irreversible
//! step and read by the probe in the same round trip. Pure: the model, its text form and the
//! history rules. The direction of travel is read from here, never inferred.

use std::fmt::Write as _;

/// How many versions the history keeps (the running one included).
pub const HISTORY_MAX: usize = 8;

/// What an operation in flight does to the history when it completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A new version: pushed onto the history.
    Upgrade,
    /// Back to the version before: the current one is popped off the history.
    Rollback,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Upgrade => "upgrade",
            OpKind::Rollback => "rollback",
        }
    }
}

/// How far an operation got (written before the step it names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpStep {
    /// About to rename the new binary over the old one.
    Install,
    /// About to send USR2.
    Start,
    /// The new master passed its gates; the old master waits without workers.
    Passed,
    /// About to send QUIT to the old master: from here there is no signal path back.
    Commit,
    /// About to send QUIT to the new master: from here the two-master rollback is finished.
    Revert,
}

impl OpStep {
    pub fn name(self) -> &'static str {
        match self {
            OpStep::Install => "install",
            OpStep::Start => "start",
            OpStep::Passed => "passed",
            OpStep::Commit => "commit",
            OpStep::Revert => "revert",
        }
    }

    fn parse(s: &str) -> Option<OpStep> {
        Some(match s {
            "install" => OpStep::Install,
            "start" => OpStep::Start,
            "passed" => OpStep::Passed,
            "commit" => OpStep::Commit,
            "revert" => OpStep::Revert,
            _ => return None,
        })
    }
}

/// An operation in flight: from one binary (by sha256) to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub from: String,
    pub to: String,
    pub step: OpStep,
}

/// The record kept beside the binary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The run that last wrote it.
    pub run: String,
    /// Who ran it (controller host, user, pid).
    pub controller: String,
    /// The versions (sha256) this host ran, oldest first. Without an operation in flight the
    /// last one is what runs.
    pub history: Vec<String>,
    pub op: Option<Op>,
}

/// Why a record could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("line {line} of the state record is not understood: {text:?}")]
    Malformed { line: usize, text: String },
    #[error("the state record is of an unknown version")]
    Version,
}

impl Record {
    /// A new history that starts from what runs now.
    pub fn starting_at(running: &str) -> Record {
        Record {
            history: vec![running.to_owned()],
            ..Record::default()
        }
    }

    /// The version the host runs when no operation is in flight.
    pub fn current(&self) -> Option<&str> {
        self.history.last().map(String::as_str)
    }

    /// The version before the current one: where a rollback goes.
    pub fn previous(&self) -> Option<&str> {
        let n = self.history.len();
        (n >= 2).then(|| self.history[n - 2].as_str())
    }

    /// The record with `op` in flight, written by `run`/`controller`.
    #[must_use]
    pub fn with_op(&self, op: Op, run: &str, controller: &str) -> Record {
        Record {
            run: run.to_owned(),
            controller: controller.to_owned(),
            history: self.history.clone(),
            op: Some(op),
        }
    }

    /// The record after the operation in flight reached its target.
    #[must_use]
    pub fn completed(&self) -> Record {
        let mut next = Record {
            op: None,
            ..self.clone()
        };
        if let Some(op) = &self.op {
            match op.kind {
                OpKind::Upgrade => {
                    if next.current() != Some(op.to.as_str()) {
                        next.history.push(op.to.clone());
                    }
                    let excess = next.history.len().saturating_sub(HISTORY_MAX);
                    next.history.drain(..excess);
                }
                OpKind::Rollback => {
                    if next.current() == Some(op.from.as_str()) {
                        next.history.pop();
                    }
                    if next.current() != Some(op.to.as_str()) {
                        next.history.push(op.to.clone());
                    }
                }
            }
        }
        next
    }

    /// The record after the operation in flight was undone (the host is back where it
    /// started): the history is unchanged.
    #[must_use]
    pub fn abandoned(&self) -> Record {
        Record {
            op: None,
            ..self.clone()
        }
    }

    /// The text form: one `key value` per line.
    pub fn encode(&self) -> String {
        let mut out = String::from("ngfleet-state 1\n");
        let _ = writeln!(out, "run {}", self.run);
        let _ = writeln!(out, "controller {}", self.controller);
        for sha in &self.history {
            let _ = writeln!(out, "history {sha}");
        }
        if let Some(op) = &self.op {
            let _ = writeln!(out, "op {}", op.kind.name());
            let _ = writeln!(out, "from {}", op.from);
            let _ = writeln!(out, "to {}", op.to);
            let _ = writeln!(out, "step {}", op.step.name());
        }
        out
    }

    /// Reads the text form (lines as [`Record::encode`] writes them).
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Record, RecordError> {
        let mut record = Record::default();
        let mut versioned = false;
        let (mut kind, mut from, mut to, mut step) = (None, None, None, None);
        for (i, line) in lines.into_iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let bad = || RecordError::Malformed {
                line: i + 1,
                text: line.to_owned(),
            };
            match key {
                "ngfleet-state" if value == "1" => versioned = true,
                "ngfleet-state" => return Err(RecordError::Version),
                "run" => record.run = value.to_owned(),
                "controller" => record.controller = value.to_owned(),
                "history" if is_sha(value) => record.history.push(value.to_owned()),
                "op" => {
                    kind = Some(match value {
                        "upgrade" => OpKind::Upgrade,
                        "rollback" => OpKind::Rollback,
                        _ => return Err(bad()),
                    })
                }
                "from" if is_sha(value) => from = Some(value.to_owned()),
                "to" if is_sha(value) => to = Some(value.to_owned()),
                "step" => step = Some(OpStep::parse(value).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        if !versioned {
            return Err(RecordError::Version);
        }
        record.op = match (kind, from, to, step) {
            (Some(kind), Some(from), Some(to), Some(step)) => Some(Op {
                kind,
                from,
                to,
                step,
            }),
            (None, None, None, None) => None,
            _ => {
                return Err(RecordError::Malformed {
                    line: 0,
                    text: "an operation without all of op, from, to and step".into(),
                });
            }
        };
        Ok(record)
    }
}

/// A sha256 in hex.
fn is_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first 12 hex digits of a sha256, for messages.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[test]
    fn round_trips() {
        let r = Record {
            run: "r1".into(),
            controller: "ctl pid=1".into(),
            history: vec![sha('a'), sha('b')],
            op: Some(Op {
                kind: OpKind::Rollback,
                from: sha('b'),
                to: sha('a'),
                step: OpStep::Commit,
            }),
        };
        let text = r.encode();
        assert_eq!(Record::parse(text.lines()), Ok(r));
        let plain = Record::starting_at(&sha('c'));
        assert_eq!(Record::parse(plain.encode().lines()), Ok(plain));
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(Record::parse(["run x"]), Err(RecordError::Version));
        assert_eq!(
            Record::parse(["ngfleet-state 2"]),
            Err(RecordError::Version)
        );
        assert!(matches!(
            Record::parse(["ngfleet-state 1", "history nothex"]),
            Err(RecordError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            Record::parse(["ngfleet-state 1", "op upgrade"]),
            Err(RecordError::Malformed { line: 0, .. })
        ));
    }

    #[test]
    fn upgrades_push_and_rollbacks_pop() {
        let (a, b, c) = (sha('a'), sha('b'), sha('c'));
        let op = |kind, from: &str, to: &str| Op {
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            step: OpStep::Install,
        };
        let r = Record::starting_at(&a);
        let r = r.with_op(op(OpKind::Upgrade, &a, &b), "r", "c").completed();
        let r = r.with_op(op(OpKind::Upgrade, &b, &c), "r", "c").completed();
        assert_eq!(r.history, [a.clone(), b.clone(), c.clone()]);
        assert_eq!(r.previous(), Some(b.as_str()));
        let r = r
            .with_op(op(OpKind::Rollback, &c, &b), "r", "c")
            .completed();
        assert_eq!(r.history, [a.clone(), b.clone()]);
        let r = r
            .with_op(op(OpKind::Rollback, &b, &a), "r", "c")
            .completed();
        assert_eq!(r.history, std::slice::from_ref(&a));
        assert_eq!(r.previous(), None);
        // Completing twice changes nothing more.
        let once = r.with_op(op(OpKind::Upgrade, &a, &b), "r", "c").completed();
        assert_eq!(once.completed(), once);
        // An abandoned operation leaves the history as it was.
        let back = once.with_op(op(OpKind::Upgrade, &b, &c), "r", "c");
        assert_eq!(back.abandoned().history, once.history);
    }

    #[test]
    fn history_is_bounded() {
        let mut r = Record::starting_at(&sha('0'));
        for c in "123456789abcdef".chars() {
            let from = r.current().unwrap_or_default().to_owned();
            r = r
                .with_op(
                    Op {
                        kind: OpKind::Upgrade,
                        from,
                        to: sha(c),
                        step: OpStep::Commit,
                    },
                    "r",
                    "c",
                )
                .completed();
        }
        assert_eq!(r.history.len(), HISTORY_MAX);
        assert_eq!(r.current(), Some(sha('f').as_str()));
    }
}
