//! The rollout spec (`--playbook FILE`): which hosts, which binary, how fast, how safe.
//!
//! Every key is validated in one pass; unknown keys are errors with a suggestion. Without a
//! spec, [`Spec::defaults`] applies (documented in the README).

mod values;
mod windows;

use std::path::Path;

use yaml_serde::Value;

use super::diagnostic::Diagnostics;
use super::duration::HumanDuration;
use super::gate::{GateDef, read_gates};
use super::keypath::KeyPath;
use super::pattern::Pattern;
use super::reader::{Reader, describe, scalar_text};
use super::source::Document;
use super::window::Windows;

pub use values::{
    Amount, BinarySource, Canary, CanaryHosts, CanaryThen, KeepOldMaster, MAX_HOSTS,
    OnDrainTimeout, Order, RollbackScope, Sha256, SpecValueError, Timeouts,
};

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
            "seed" => spec.seed = r.integer(&at, value, "a seed", 0..=u64::MAX),
            "canary" => read_canary(r, &at, value, &mut spec.canary),
            "batches" => read_batches(r, &at, value, &mut spec.batches),
            "parallel" => set(
                &mut spec.parallel,
                r.integer(&at, value, "a number of hosts", 1..=MAX_HOSTS),
            ),
            "pause_between_batches" => set(
                &mut spec.pause_between_batches,
                r.parse(&at, value, "a duration"),
            ),
            "max_failed" => set(&mut spec.max_failed, read_amount(r, &at, value)),
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
            _ => spec.windows = windows::read_windows(r, &at, value),
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
            let number = text.trim().trim_end_matches('%');
            let looks_numeric = number.chars().any(|c| c.is_ascii_digit())
                && number
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'));
            if looks_numeric {
                set(
                    &mut canary.hosts,
                    read_amount(r, &here, v).map(CanaryHosts::Amount),
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
        match read_amount(r, &here, item) {
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

/// A count of hosts (0 to [`MAX_HOSTS`]) or a percentage (1% to 100%).
fn read_amount(r: &mut Reader<'_>, at: &KeyPath, value: &Value) -> Option<Amount> {
    let text = r.text(at, value, "a count or a percentage")?;
    if text.trim().ends_with('%') {
        return r.parse(at, value, "a percentage");
    }
    let count = scalar_text(value)
        .and_then(|t| t.trim().parse::<usize>().ok())
        .filter(|n| *n <= MAX_HOSTS);
    if count.is_none() {
        r.error(
            at,
            format!(
                "expected a count of hosts from 0 to {MAX_HOSTS} or a percentage like \"25%\", found {}",
                describe(value)
            ),
        );
    }
    count.map(Amount::Count)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gate::{BodyMatch, Check};
    use std::path::PathBuf;
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
                "playbooks/p.yaml:3:22: batches[2]: expected a count of hosts from 0 to 100000 or a percentage like \"25%\", found \"many\"",
                "playbooks/p.yaml:4:26: canary.then: expected pause, continue or a duration like 10m, found \"later\"",
                "playbooks/p.yaml:5:11: rollback: expected one of host, batch, rollout, found \"everything\"",
                "playbooks/p.yaml:6:18: keep_old_master: expected one of until_host_passes, until_batch_passes, until_rollout_passes, found \"forever\"",
                "playbooks/p.yaml:7:13: max_failed: expected a count of hosts from 0 to 100000 or a percentage like \"25%\", found -1",
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
    fn a_bad_window_lists_every_problem_at_its_key() {
        let got = problems(
            "windows:\n  - {days: [sat, funday], start: \"25:00\", duration: 0s, tz: Mars/Olympus}\n  - {days: \"sat,sunny\", duration: 8d}\n",
        );
        assert_eq!(
            got,
            [
                "playbooks/p.yaml:2:18: windows[0].days[1]: unknown day \"funday\"; did you mean \"sunday\"?",
                "playbooks/p.yaml:2:34: windows[0].start: start time \"25:00\" is not a 24-hour HH:MM time",
                "playbooks/p.yaml:2:53: windows[0].duration: window duration must be more than zero",
                "playbooks/p.yaml:2:61: windows[0].tz: unknown time zone \"Mars/Olympus\"",
                "playbooks/p.yaml:3:5: windows[1]: a window needs start, tz",
                "playbooks/p.yaml:3:12: windows[1].days: unknown day \"sunny\"; did you mean \"sun\"?",
                "playbooks/p.yaml:3:35: windows[1].duration: window duration 8d is longer than 7d",
            ]
        );
        let fine = "windows:\n  - {days: \"sat,sun\", start: \"02:00\", duration: 3h, tz: UTC}\n";
        let spec = Spec::parse("p.yaml", fine).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            spec.windows.as_slice()[0].to_string(),
            "sat,sun 02:00+3h UTC"
        );
    }

    #[test]
    fn numbers_out_of_range_say_the_range() {
        let got = problems(
            "parallel: -1\nseed: -5\ncanary: {hosts: -2}\nbatches: [1.5, 100001]\nmax_failed: \"0%\"\n",
        );
        assert_eq!(
            got,
            [
                "playbooks/p.yaml:1:11: parallel: expected a number of hosts from 1 to 100000, found -1",
                "playbooks/p.yaml:2:7: seed: expected a seed from 0 to 18446744073709551615, found -5",
                "playbooks/p.yaml:3:17: canary.hosts: expected a count of hosts from 0 to 100000 or a percentage like \"25%\", found -2",
                "playbooks/p.yaml:4:11: batches[0]: expected a count of hosts from 0 to 100000 or a percentage like \"25%\", found 1.5",
                "playbooks/p.yaml:4:16: batches[1]: expected a count of hosts from 0 to 100000 or a percentage like \"25%\", found 100001",
                "playbooks/p.yaml:5:13: max_failed: expected a percentage from 1% to 100%, found \"0%\"",
            ]
        );
        assert_eq!(
            problems("parallel: 0\n"),
            [
                "playbooks/p.yaml:1:11: parallel: expected a number of hosts from 1 to 100000, found 0"
            ]
        );
        let spec = Spec::parse("p.yaml", "parallel: \"4\"\nseed: 18446744073709551615\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((spec.parallel, spec.seed), (4, Some(u64::MAX)));
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
