//! `roll --check`: what the preparation of every selected host found, and whether the roll
//! would go through. Pure: verdicts in, counts and an exit code out.

use serde::Serialize;

use crate::error::Exit;

/// What a roll would do on one host, as its preparation found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "snake_case")]
pub enum Verdict {
    /// Ready: preflight passed, the new binary staged, verified and `-t`-checked.
    WouldUpgrade,
    /// Already runs the binary: the roll would skip it.
    AlreadyAtTarget,
    /// An operation of ngfleet is in flight there: the roll would finish it first.
    InFlight,
    /// The roll would refuse it (space, ELF machine, `-t`, argv[0], systemd unit, lock…).
    Refused(String),
    /// Could not be reached or checked.
    Unreachable(String),
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::WouldUpgrade => "would upgrade",
            Verdict::AlreadyAtTarget => "already at target",
            Verdict::InFlight => "operation in flight (the roll finishes it)",
            Verdict::Refused(_) => "would be refused",
            Verdict::Unreachable(_) => "unreachable",
        }
    }

    /// Whether `roll` would go through on this host.
    pub fn goes_through(&self) -> bool {
        matches!(
            self,
            Verdict::WouldUpgrade | Verdict::AlreadyAtTarget | Verdict::InFlight
        )
    }
}

/// Verdicts counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub would_upgrade: usize,
    pub already_at_target: usize,
    pub in_flight: usize,
    pub refused: usize,
    pub unreachable: usize,
}

pub fn count(verdicts: &[(String, Verdict)]) -> Counts {
    let mut c = Counts::default();
    for (_, v) in verdicts {
        match v {
            Verdict::WouldUpgrade => c.would_upgrade += 1,
            Verdict::AlreadyAtTarget => c.already_at_target += 1,
            Verdict::InFlight => c.in_flight += 1,
            Verdict::Refused(_) => c.refused += 1,
            Verdict::Unreachable(_) => c.unreachable += 1,
        }
    }
    c
}

/// 0 when the roll would go through on every host (a host already at target is skipped by
/// it, an operation in flight is finished by it); 1 otherwise.
pub fn exit(verdicts: &[(String, Verdict)]) -> Exit {
    if verdicts.iter().all(|(_, v)| v.goes_through()) {
        Exit::Success
    } else {
        Exit::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_refusal_or_unreachable_host_fails_the_check() {
        let ok = vec![
            ("a".to_owned(), Verdict::WouldUpgrade),
            ("b".to_owned(), Verdict::AlreadyAtTarget),
        ];
        assert_eq!(exit(&ok), Exit::Success);
        let mut bad = ok.clone();
        bad.push(("c".into(), Verdict::Refused("no space".into())));
        assert_eq!(exit(&bad), Exit::Failed);
        let lost = vec![("d".to_owned(), Verdict::Unreachable("refused".into()))];
        assert_eq!(exit(&lost), Exit::Failed);
        let c = count(&bad);
        assert_eq!((c.would_upgrade, c.already_at_target, c.refused), (1, 1, 1));
    }
}
