//! The rollout spec (`--playbook FILE`): which hosts, which binary, how fast, how safe.
//!
//! Every key is validated in one pass; unknown keys are errors with a suggestion. Without a
//! spec, [`Spec::defaults`] applies (documented in the README).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use yaml_serde::Value;

use super::diagnostic::Diagnostics;
use super::duration::HumanDuration;
use super::gate::{GateDef, read_gates};
use super::keypath::KeyPath;
use super::pattern::Pattern;
use super::reader::Reader;
use super::source::Document;
use super::window::{Window, Windows};

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

/// A whole rollout spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub name: Option<String>,
    pub hosts: Pattern,
    pub binary: Option<BinarySource>,
    pub order: Order,
    /// The shuffle seed; `None` lets the controller pick one (and print it).
    pub seed: Option<u64>,
    pub canary: Canary,
    /// Like Ansible's `serial`: the last entry repeats.
    pub batches: Vec<Amount>,
    pub parallel: usize,
    pub pause_between_batches: HumanDuration,
    pub max_failed: Amount,
    pub rollback: RollbackScope,
    pub keep_old_master: KeepOldMaster,
    pub timeouts: Timeouts,
    pub on_drain_timeout: OnDrainTimeout,
    pub pre: Vec<GateDef>,
    pub gates: Vec<GateDef>,
    pub soak: HumanDuration,
    pub windows: Windows,
}

impl Spec {
    /// The spec used without `--playbook`: every host, one canary then a pause, then
    /// batches of 25%, 10 at a time, no failure allowed, roll back the failed host.
    pub fn defaults() -> Spec {
        Spec {
            name: None,
            hosts: Pattern::all(),
            binary: None,
            order: Order::Inventory,
            seed: None,
            canary: Canary {
                hosts: CanaryHosts::Amount(Amount::Count(1)),
                then: CanaryThen::Pause,
            },
            batches: vec![Amount::Percent(25)],
            parallel: 10,
            pause_between_batches: HumanDuration::ZERO,
            max_failed: Amount::Count(0),
            rollback: RollbackScope::Host,
            keep_old_master: KeepOldMaster::UntilHostPasses,
            timeouts: Timeouts::default(),
            on_drain_timeout: OnDrainTimeout::Proceed,
            pre: Vec::new(),
            gates: Vec::new(),
            soak: HumanDuration::ZERO,
            windows: Windows::default(),
        }
    }

    /// Parses and validates a spec; `file` names it in diagnostics and anchors
    /// `binary.source`.
    pub fn parse(file: &str, text: &str) -> Result<Spec, Diagnostics> {
        let doc = Document::parse(file, text)?;
        let base = Path::new(file).parent().unwrap_or(Path::new(""));
        let mut reader = Reader::new(&doc);
        let spec = read_spec(&mut reader, base);
        match Diagnostics::from_vec(reader.into_problems()) {
            Some(problems) => Err(problems),
            None => Ok(spec),
        }
    }
}

const SPEC_KEYS: &[&str] = &[
    "name",
    "hosts",
    "binary",
    "order",
    "seed",
    "canary",
    "batches",
    "parallel",
    "pause_between_batches",
    "max_failed",
    "rollback",
    "keep_old_master",
    "timeouts",
    "on_drain_timeout",
    "pre",
    "gates",
    "soak",
    "windows",
];

fn read_spec(r: &mut Reader<'_>, base: &Path) -> Spec {
    let mut spec = Spec::defaults();
    let root = KeyPath::root();
    let doc = r.doc();
    let entries = r.struct_mapping(&root, doc.root(), "a rollout spec (a mapping)", SPEC_KEYS);
    for (key, value) in entries {
        let at = root.key(&key);
        match key.as_str() {
            "name" => spec.name = r.text(&at, value, "a name"),
            "hosts" => set(&mut spec.hosts, r.parse(&at, value, "a host pattern")),
            "binary" => spec.binary = read_binary(r, &at, value, base),
            "order" => set(&mut spec.order, r.parse(&at, value, "an order")),
            "seed" => spec.seed = r.parse::<u64>(&at, value, "a seed number"),
            "canary" => read_canary(r, &at, value, &mut spec.canary),
            "batches" => read_batches(r, &at, value, &mut spec.batches),
            "parallel" => match r.parse::<usize>(&at, value, "a number of hosts") {
                Some(0) => r.error(&at, "parallel must be at least 1"),
                Some(n) => spec.parallel = n,
                None => {}
            },
            "pause_between_batches" => set(
                &mut spec.pause_between_batches,
                r.parse(&at, value, "a duration"),
            ),
            "max_failed" => set(
                &mut spec.max_failed,
                r.parse(&at, value, "a count or a percentage"),
            ),
            "rollback" => set(&mut spec.rollback, r.parse(&at, value, "a rollback scope")),
            "keep_old_master" => set(&mut spec.keep_old_master, r.parse(&at, value, "a policy")),
            "timeouts" => read_timeouts(r, &at, value, &mut spec.timeouts),
            "on_drain_timeout" => set(
                &mut spec.on_drain_timeout,
                r.parse(&at, value, "proceed, terminate or fail"),
            ),
            "pre" => spec.pre = read_gates(r, &at, value),
            "gates" => spec.gates = read_gates(r, &at, value),
            "soak" => set(&mut spec.soak, r.parse(&at, value, "a duration")),
            _ => spec.windows = read_windows(r, &at, value),
        }
    }
    spec
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn read_binary(
    r: &mut Reader<'_>,
    at: &KeyPath,
    value: &Value,
    base: &Path,
) -> Option<BinarySource> {
    let entries = r.struct_mapping(
        at,
        value,
        "a mapping with source and sha256",
        &["source", "sha256"],
    );
    let mut source = None;
    let mut sha256 = None;
    for (key, v) in entries {
        let here = at.key(&key);
        if key == "source" {
            source = r.text(&here, v, "a file path").map(|s| base.join(s));
        } else {
            sha256 = r.parse::<Sha256>(&here, v, "a sha256");
        }
    }
    if source.is_none() && !matches!(value, Value::Null) {
        r.error(at, "binary needs a `source` file");
    }
    source.map(|source| BinarySource { source, sha256 })
}

fn read_canary(r: &mut Reader<'_>, at: &KeyPath, value: &Value, canary: &mut Canary) {
    let entries = r.struct_mapping(
        at,
        value,
        "a mapping with hosts and then",
        &["hosts", "then"],
    );
    for (key, v) in entries {
        let here = at.key(&key);
        if key == "hosts" {
            let Some(text) = r.text(&here, v, "a count, a percentage or a group name") else {
                continue;
            };
            let looks_numeric = text
                .trim()
                .trim_end_matches('%')
                .chars()
                .all(|c| c.is_ascii_digit());
            if looks_numeric {
                set(
                    &mut canary.hosts,
                    r.parse::<Amount>(&here, v, "a count")
                        .map(CanaryHosts::Amount),
                );
            } else {
                canary.hosts = CanaryHosts::Group(text);
            }
        } else {
            set(
                &mut canary.then,
                r.parse(&here, v, "pause, continue or a duration"),
            );
        }
    }
}

fn read_batches(r: &mut Reader<'_>, at: &KeyPath, value: &Value, batches: &mut Vec<Amount>) {
    let items: Vec<Value> = match value {
        Value::Sequence(items) => items.clone(),
        scalar => vec![scalar.clone()],
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = if matches!(value, Value::Sequence(_)) {
            at.index(i)
        } else {
            at.clone()
        };
        match r.parse::<Amount>(&here, item, "a count or a percentage") {
            Some(Amount::Count(0)) => r.error(&here, "a batch must have at least 1 host"),
            Some(a) => out.push(a),
            None => {}
        }
    }
    if items.is_empty() {
        r.error(at, "batches must list at least one size");
    } else if out.len() == items.len() {
        *batches = out;
    }
}

fn read_timeouts(r: &mut Reader<'_>, at: &KeyPath, value: &Value, t: &mut Timeouts) {
    let keys = &["connect", "command", "start", "drain", "quit"];
    let entries = r.struct_mapping(at, value, "a mapping of timeouts", keys);
    for (key, v) in entries {
        let here = at.key(&key);
        let Some(d) = r.parse::<HumanDuration>(&here, v, "a duration") else {
            continue;
        };
        if d.get().is_zero() {
            r.error(&here, "a timeout must be longer than 0s");
            continue;
        }
        match key.as_str() {
            "connect" => t.connect = d,
            "command" => t.command = d,
            "start" => t.start = d,
            "drain" => t.drain = d,
            _ => t.quit = d,
        }
    }
}

fn read_windows(r: &mut Reader<'_>, at: &KeyPath, value: &Value) -> Windows {
    let items = r.sequence(at, value, "a list of windows");
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        let entries = r.struct_mapping(
            &here,
            item,
            "a window {days, start, duration, tz}",
            &["days", "start", "duration", "tz"],
        );
        let mut days: Option<Vec<String>> = None;
        let mut start = None;
        let mut duration = None;
        let mut tz = None;
        for (key, v) in entries {
            let field = here.key(&key);
            match key.as_str() {
                "days" => {
                    days = match v {
                        Value::Sequence(list) => list
                            .iter()
                            .enumerate()
                            .map(|(j, d)| r.text(&field.index(j), d, "a day name"))
                            .collect(),
                        other => r
                            .text(&field, other, "a list of days")
                            .map(|t| t.split(',').map(|d| d.trim().to_owned()).collect()),
                    }
                }
                "start" => start = r.text(&field, v, "a time as HH:MM"),
                "duration" => duration = r.parse::<HumanDuration>(&field, v, "a duration"),
                _ => tz = r.text(&field, v, "an IANA time zone name"),
            }
        }
        let mut missing = Vec::new();
        for (name, present) in [
            ("days", days.is_some()),
            ("start", start.is_some()),
            ("duration", duration.is_some()),
            ("tz", tz.is_some()),
        ] {
            if !present && matches!(item, Value::Mapping(_)) && item.get(name).is_none() {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            r.error(&here, format!("a window needs {}", missing.join(", ")));
        }
        if let (Some(days), Some(start), Some(duration), Some(tz)) = (days, start, duration, tz) {
            let day_refs: Vec<&str> = days.iter().map(String::as_str).collect();
            match Window::new(&day_refs, &start, duration.get(), &tz) {
                Ok(w) => out.push(w),
                Err(e) => r.error(&here, e.to_string()),
            }
        }
    }
    Windows::new(out)
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
        let hint = super::reader::suggest(found, expected)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        SpecValueError::Choice {
            found: found.to_owned(),
            expected: expected.join(", "),
            hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gate::{BodyMatch, Check};
    use std::time::Duration;

    fn problems(text: &str) -> Vec<String> {
        Spec::parse("playbooks/p.yaml", text)
            .expect_err("should be invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_full_example_parses() {
        let spec = Spec::parse(
            "playbooks/p.yaml",
            "\
name: nginx 1.22.9 to the web tier
hosts: web
binary:
  source: ../artifacts/nginx
  sha256: 9F2C000000000000000000000000000000000000000000000000000000000000
order: shuffle
seed: 42
canary:
  hosts: 1
  then: pause
batches: [5, \"25%\", \"100%\"]
parallel: 10
pause_between_batches: 30s
max_failed: 10%
rollback: batch
keep_old_master: until_batch_passes
timeouts: {connect: 10s, command: 30s, start: 15s, drain: 60s, quit: 30s}
gates:
  - http: {url: \"http://127.0.0.1:80/health\", status: 200}
  - version: nginx/1.22.9
soak: 1h30m
windows:
  - {days: [sat, sun], start: \"02:00\", duration: 3h, tz: Europe/Berlin}
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name.as_deref(), Some("nginx 1.22.9 to the web tier"));
        assert_eq!(spec.hosts.to_string(), "web");
        let binary = spec.binary.expect("binary");
        assert_eq!(binary.source, PathBuf::from("playbooks/../artifacts/nginx"));
        assert_eq!(
            binary.sha256.map(|s| s.to_string()),
            Some(format!("9f2c{}", "0".repeat(60)))
        );
        assert_eq!((spec.order, spec.seed), (Order::Shuffle, Some(42)));
        assert_eq!(spec.canary.hosts, CanaryHosts::Amount(Amount::Count(1)));
        assert_eq!(spec.canary.then, CanaryThen::Pause);
        assert_eq!(
            spec.batches,
            [Amount::Count(5), Amount::Percent(25), Amount::Percent(100)]
        );
        assert_eq!(spec.parallel, 10);
        assert_eq!(spec.pause_between_batches.get(), Duration::from_secs(30));
        assert_eq!(spec.max_failed, Amount::Percent(10));
        assert_eq!(spec.rollback, RollbackScope::Batch);
        assert_eq!(spec.keep_old_master, KeepOldMaster::UntilBatchPasses);
        assert_eq!(spec.timeouts.drain.get(), Duration::from_secs(60));
        assert_eq!(
            spec.gates
                .iter()
                .map(|g| g.check.kind())
                .collect::<Vec<_>>(),
            ["http", "version"]
        );
        assert_eq!(spec.soak.get(), Duration::from_secs(5400));
        assert_eq!(spec.windows.as_slice().len(), 1);
    }

    #[test]
    fn an_empty_spec_is_the_defaults() {
        assert_eq!(Spec::parse("p.yaml", "").ok(), Some(Spec::defaults()));
        assert_eq!(Spec::parse("p.yaml", "{}\n").ok(), Some(Spec::defaults()));
    }

    #[test]
    fn canary_forms() {
        let read = |text: &str| Spec::parse("p.yaml", text).map(|s| s.canary).ok();
        assert_eq!(
            read("canary: {hosts: canaries, then: continue}\n"),
            Some(Canary {
                hosts: CanaryHosts::Group("canaries".into()),
                then: CanaryThen::Continue
            })
        );
        assert_eq!(
            read("canary: {hosts: \"10%\", then: 15m}\n"),
            Some(Canary {
                hosts: CanaryHosts::Amount(Amount::Percent(10)),
                then: CanaryThen::Soak(HumanDuration::from_secs(900))
            })
        );
    }

    #[test]
    fn merge_keys_fill_in_spec_values() {
        let spec = Spec::parse(
            "playbooks/p.yaml",
            "\
timeouts: &slow {connect: 30s, command: 60s}
pre:
  - http: &probe {url: \"http://127.0.0.1:80/health\", status: 204, timeout: 3s}
gates:
  - http:
      <<: *probe
      body: ok
canary:
  <<: {hosts: 2, then: continue}
  then: 5m
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.timeouts.connect.get(), Duration::from_secs(30));
        assert_eq!(spec.timeouts.command.get(), Duration::from_secs(60));
        let gate = &spec.gates[0];
        let Check::Http(http) = &gate.check else {
            panic!("expected an http gate, got {:?}", gate.check);
        };
        assert_eq!(http.url.to_string(), "http://127.0.0.1:80/health");
        assert_eq!(http.status, [204]);
        assert_eq!(http.body, Some(BodyMatch::Contains("ok".to_owned())));
        assert_eq!(gate.timeout.get(), Duration::from_secs(3));
        assert_eq!(spec.canary.hosts, CanaryHosts::Amount(Amount::Count(2)));
        assert_eq!(
            spec.canary.then,
            CanaryThen::Soak("5m".parse().expect("duration"))
        );
    }

    #[test]
    fn merged_spec_values_are_checked_where_they_were_written() {
        assert_eq!(
            problems(
                "\
pre:
  - http: &probe {url: \"http://127.0.0.1/health\", statuz: 200}
gates:
  - http: {<<: *probe, body: ok}
timeouts: {<<: [*probe]}
"
            ),
            [
                "playbooks/p.yaml:2:19: timeouts.url: unknown key `url` (expected one of: connect, command, start, drain, quit)",
                "playbooks/p.yaml:2:51: pre[0].http.statuz: unknown key `statuz` (did you mean `status`?)",
                "playbooks/p.yaml:2:51: gates[0].http.statuz: unknown key `statuz` (did you mean `status`?)",
                "playbooks/p.yaml:2:51: timeouts.statuz: unknown key `statuz` (expected one of: connect, command, start, drain, quit)",
            ]
        );
    }

    #[test]
    fn every_problem_at_once_with_suggestions() {
        let got = problems(
            "\
paralel: 3
order: shufle
batches: [0, \"150%\", many]
canary: {hosts: 1, then: later}
rollback: everything
keep_old_master: forever
max_failed: -1
timeouts: {conect: 5s, drain: 0s, quit: soon}
gates:
  - htp: {url: x}
  - {http: {}, tcp: {}}
windows:
  - {days: [sat], start: \"02:00\", duration: 3h}
binary: {sha256: abc}
",
        );
        assert_eq!(
            got,
            [
                "playbooks/p.yaml:1:1: paralel: unknown key `paralel` (did you mean `parallel`?)",
                "playbooks/p.yaml:2:8: order: expected one of inventory, reverse_inventory, sorted, reverse_sorted, shuffle, found \"shufle\" (did you mean `shuffle`?)",
                "playbooks/p.yaml:3:11: batches[0]: a batch must have at least 1 host",
                "playbooks/p.yaml:3:14: batches[1]: expected a percentage from 1% to 100%, found \"150%\"",
                "playbooks/p.yaml:3:22: batches[2]: expected a count or a percentage like 5 or \"25%\", found \"many\"",
                "playbooks/p.yaml:4:26: canary.then: expected pause, continue or a duration like 10m, found \"later\"",
                "playbooks/p.yaml:5:11: rollback: expected one of host, batch, rollout, found \"everything\"",
                "playbooks/p.yaml:6:18: keep_old_master: expected one of until_host_passes, until_batch_passes, until_rollout_passes, found \"forever\"",
                "playbooks/p.yaml:7:13: max_failed: expected a count or a percentage like 5 or \"25%\", found \"-1\"",
                "playbooks/p.yaml:8:12: timeouts.conect: unknown key `conect` (did you mean `connect`?)",
                "playbooks/p.yaml:8:31: timeouts.drain: a timeout must be longer than 0s",
                "playbooks/p.yaml:8:41: timeouts.quit: expected a duration like 90s, 5m or 1h30m, found \"soon\"",
                "playbooks/p.yaml:10:5: gates[0].htp: unknown gate kind: expected one of http, tcp, command, local, error_log, version, found \"htp\" (did you mean `http`?)",
                "playbooks/p.yaml:11:5: gates[1]: a gate has exactly one kind (http, tcp, command, local, error_log, version), found 2 keys",
                "playbooks/p.yaml:13:5: windows[0]: a window needs tz",
                "playbooks/p.yaml:14:9: binary: binary needs a `source` file",
                "playbooks/p.yaml:14:18: binary.sha256: expected a sha256 of 64 hex digits, found \"abc\"",
            ]
        );
    }

    #[test]
    fn window_problems_point_at_the_window() {
        let got = problems(
            "windows:\n  - {days: [sat], start: \"02:00\", duration: 3h, tz: Mars/Olympus}\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("playbooks/p.yaml:2:5: windows[0]: "),
            "{got:?}"
        );
        assert!(got[0].contains("Mars/Olympus"), "{got:?}");
    }

    #[test]
    fn amounts_round_up_and_never_reach_zero() {
        assert_eq!(Amount::Percent(25).of(10), 3);
        assert_eq!(Amount::Percent(1).of(10), 1);
        assert_eq!(Amount::Percent(100).of(7), 7);
        assert_eq!(Amount::Percent(50).of(1), 1);
        assert_eq!(Amount::Count(4).of(100), 4);
    }
}
