//! The values of a rollout spec: counts and percentages of hosts, orders, canary, rollback
//! and drain policies, timeouts, the binary and its sha256; each parsed from its text.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::model::duration::HumanDuration;

/// The largest count of hosts the spec accepts (`parallel`, `canary.hosts`, `batches`,
/// `max_failed`).
pub const MAX_HOSTS: usize = 100_000;

/// A count of hosts, or a percentage of the selected hosts (rounded up, at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    Count(usize),
    Percent(u32),
}

impl Amount {
    /// How many hosts this amount is out of `selected`.
    pub fn of(self, selected: usize) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let n = (selected * p as usize).div_ceil(100);
                n.max(1)
            }
        }
    }
}

impl FromStr for Amount {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<Amount, SpecValueError> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Amount::Percent(p)),
                _ => Err(SpecValueError::Percent(s.to_owned())),
            };
        }
        t.parse::<usize>()
            .map(Amount::Count)
            .map_err(|_| SpecValueError::Amount(s.to_owned()))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The order hosts are taken in, before they are cut into waves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Inventory,
    ReverseInventory,
    Sorted,
    ReverseSorted,
    Shuffle,
}

impl Order {
    const NAMES: &'static [&'static str] = &[
        "inventory",
        "reverse_inventory",
        "sorted",
        "reverse_sorted",
        "shuffle",
    ];
}

impl FromStr for Order {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<Order, SpecValueError> {
        Ok(match s {
            "inventory" => Order::Inventory,
            "reverse_inventory" => Order::ReverseInventory,
            "sorted" => Order::Sorted,
            "reverse_sorted" => Order::ReverseSorted,
            "shuffle" => Order::Shuffle,
            _ => return Err(SpecValueError::choice(s, Order::NAMES)),
        })
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Order::Inventory => "inventory",
            Order::ReverseInventory => "reverse_inventory",
            Order::Sorted => "sorted",
            Order::ReverseSorted => "reverse_sorted",
            Order::Shuffle => "shuffle",
        };
        f.write_str(name)
    }
}

/// Which hosts form the canary wave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanaryHosts {
    /// A count or a percentage; `Count(0)` means no canary wave.
    Amount(Amount),
    /// The selected members of an inventory group.
    Group(String),
}

/// What happens once the canary wave has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryThen {
    /// Wait for the operator (a prompt, or `--yes`).
    Pause,
    /// Keep the canary under its gates this long, then go on.
    Soak(HumanDuration),
    Continue,
}

impl FromStr for CanaryThen {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<CanaryThen, SpecValueError> {
        match s {
            "pause" => Ok(CanaryThen::Pause),
            "continue" => Ok(CanaryThen::Continue),
            other => other
                .parse::<HumanDuration>()
                .map(CanaryThen::Soak)
                .map_err(|_| SpecValueError::CanaryThen(other.to_owned())),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canary {
    pub hosts: CanaryHosts,
    pub then: CanaryThen,
}

/// Which hosts are rolled back when one fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackScope {
    Host,
    Batch,
    Rollout,
}

impl FromStr for RollbackScope {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<RollbackScope, SpecValueError> {
        match s {
            "host" => Ok(RollbackScope::Host),
            "batch" => Ok(RollbackScope::Batch),
            "rollout" => Ok(RollbackScope::Rollout),
            _ => Err(SpecValueError::choice(s, &["host", "batch", "rollout"])),
        }
    }
}

impl fmt::Display for RollbackScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RollbackScope::Host => "host",
            RollbackScope::Batch => "batch",
            RollbackScope::Rollout => "rollout",
        })
    }
}

/// How long a host's old master is kept (without workers) after its upgrade passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepOldMaster {
    UntilHostPasses,
    UntilBatchPasses,
    UntilRolloutPasses,
}

impl FromStr for KeepOldMaster {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<KeepOldMaster, SpecValueError> {
        match s {
            "until_host_passes" => Ok(KeepOldMaster::UntilHostPasses),
            "until_batch_passes" => Ok(KeepOldMaster::UntilBatchPasses),
            "until_rollout_passes" => Ok(KeepOldMaster::UntilRolloutPasses),
            _ => Err(SpecValueError::choice(
                s,
                &[
                    "until_host_passes",
                    "until_batch_passes",
                    "until_rollout_passes",
                ],
            )),
        }
    }
}

impl fmt::Display for KeepOldMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeepOldMaster::UntilHostPasses => "until_host_passes",
            KeepOldMaster::UntilBatchPasses => "until_batch_passes",
            KeepOldMaster::UntilRolloutPasses => "until_rollout_passes",
        })
    }
}

/// What ends the wait for old workers after WINCH when `timeouts.drain` passes. Old workers
/// finish their connections with no time limit of nginx's own (long downloads, websockets);
/// new connections already reach only the new workers, so a slow drain is not a sick build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDrainTimeout {
    /// Go on with the gates and commit: the old master exits by itself when its last
    /// connection ends, dropping nothing.
    #[default]
    Proceed,
    /// Send TERM to the old workers (their connections are cut, and that is logged).
    Terminate,
    /// Treat the slow drain as a failure and roll the host back.
    Fail,
}

impl FromStr for OnDrainTimeout {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<OnDrainTimeout, SpecValueError> {
        match s {
            "proceed" => Ok(OnDrainTimeout::Proceed),
            "terminate" => Ok(OnDrainTimeout::Terminate),
            "fail" => Ok(OnDrainTimeout::Fail),
            _ => Err(SpecValueError::choice(s, &["proceed", "terminate", "fail"])),
        }
    }
}

impl fmt::Display for OnDrainTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnDrainTimeout::Proceed => "proceed",
            OnDrainTimeout::Terminate => "terminate",
            OnDrainTimeout::Fail => "fail",
        })
    }
}

/// Per-step time limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: HumanDuration,
    pub command: HumanDuration,
    pub start: HumanDuration,
    pub drain: HumanDuration,
    pub quit: HumanDuration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let s = HumanDuration::from_secs;
        Timeouts {
            connect: s(10),
            command: s(30),
            start: s(15),
            drain: s(60),
            quit: s(30),
        }
    }
}

/// The binary to roll out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinarySource {
    /// Resolved against the spec file's directory.
    pub source: PathBuf,
    pub sha256: Option<Sha256>,
}

/// A lowercase hex SHA-256 digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sha256(String);

impl Sha256 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Sha256 {
    type Err = SpecValueError;

    fn from_str(s: &str) -> Result<Sha256, SpecValueError> {
        let t = s.trim();
        if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha256(t.to_ascii_lowercase()))
        } else {
            Err(SpecValueError::Sha256(s.to_owned()))
        }
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a spec value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecValueError {
    #[error("expected a count or a percentage like 5 or \"25%\", found {0:?}")]
    Amount(String),
    #[error("expected a percentage from 1% to 100%, found {0:?}")]
    Percent(String),
    #[error("expected pause, continue or a duration like 10m, found {0:?}")]
    CanaryThen(String),
    #[error("expected a sha256 of 64 hex digits, found {0:?}")]
    Sha256(String),
    #[error("expected one of {expected}, found {found:?}{hint}")]
    Choice {
        found: String,
        expected: String,
        hint: String,
    },
}

impl SpecValueError {
    fn choice(found: &str, expected: &[&str]) -> SpecValueError {
        let hint = crate::model::reader::suggest(found, expected)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        SpecValueError::Choice {
            found: found.to_owned(),
            expected: expected.join(", "),
            hint,
        }
    }
}
