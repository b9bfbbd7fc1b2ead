//! The dispatcher with a fake executor and paused time: waves as barriers, the parallel
//! bound, the failure budget, rollback scopes, deferred commits, signals once and twice,
//! maintenance windows and the canary pause. No host, no lab.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::error::Exit;
use crate::host::round_trips::Trips;
use crate::host::upgrade::Source;
use crate::model::spec::{CanaryThen, KeepOldMaster, RollbackScope, Spec};
use crate::model::window::{Window, Windows};
use crate::plan::Wave;
use crate::rollout::config::{CanaryPause, Controls, Display, Job, WindowPolicy};
use crate::rollout::outcome::{Stopped, Summary};

/// What the fake host does for a (host, intent): how long it takes and how it ends.
type Script = dyn Fn(usize, Intent) -> (Duration, HostResult) + Sync;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Run,
    Prepare,
    Switch,
    Release,
}

#[derive(Clone, Debug)]
struct Call {
    kind: Kind,
    host: usize,
    intent: Intent,
    start: Instant,
    end: Option<Instant>,
}

struct Fake<'s> {
    script: &'s Script,
    /// How long a preparation takes; `None`: this executor does not prepare.
    prepare: Option<Duration>,
    calls: Mutex<Vec<Call>>,
}

impl Fake<'_> {
    /// Logs a call that lasts `took`.
    async fn call(&self, kind: Kind, host: usize, intent: Intent, took: Duration) {
        let index = {
            let mut calls = self.calls.lock().expect("calls");
            calls.push(Call {
                kind,
                host,
                intent,
                start: Instant::now(),
                end: None,
            });
            calls.len() - 1
        };
        tokio::time::sleep(took).await;
        self.calls.lock().expect("calls")[index].end = Some(Instant::now());
    }

    fn turn(&self, kind: Kind, host: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        Box::pin(async move {
            let (took, result) = (self.script)(host, intent);
            self.call(kind, host, intent, took).await;
            let error = match result {
                HostResult::Failed | HostResult::RolledBack | HostResult::Unrestored => {
                    Some(format!("h{host}: failed"))
                }
                _ => None,
            };
            HostRun {
                result,
                error,
                elapsed: took,
                round_trips: Trips::default(),
            }
        })
    }
}

impl Executor for Fake<'_> {
    fn run(&self, host: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        self.turn(Kind::Run, host, intent)
    }

    fn prepare(&self, host: usize) -> LocalBoxFuture<'_, Readiness> {
        Box::pin(async move {
            let Some(took) = self.prepare else {
                return Readiness::NotReady;
            };
            self.call(Kind::Prepare, host, Intent::Upgrade, took).await;
            Readiness::Ready
        })
    }

    fn switch(&self, host: usize, intent: Intent) -> LocalBoxFuture<'_, HostRun> {
        self.turn(Kind::Switch, host, intent)
    }

    fn release(&self, host: usize) -> LocalBoxFuture<'_, ()> {
        Box::pin(self.call(Kind::Release, host, Intent::Upgrade, SEC / 10))
    }
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<RolloutEvent>>,
    said: Mutex<Vec<String>>,
}

impl Sink for Recorder {
    fn emit(&self, event: RolloutEvent) {
        self.events.lock().expect("events").push(event);
    }
    fn say(&self, text: &str) {
        self.said.lock().expect("said").push(text.to_owned());
    }
}

/// Answers the canary question after a second, or never.
struct Answer(Option<bool>);

impl Operator for Answer {
    fn ask(&self, _: &str) -> LocalBoxFuture<'static, bool> {
        let answer = self.0;
        Box::pin(async move {
            match answer {
                Some(a) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    a
                }
                None => std::future::pending().await,
            }
        })
    }
}

/// Wall time that moves with tokio's paused clock.
struct TestClock {
    base: Timestamp,
    start: Instant,
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        self.base + self.start.elapsed()
    }
}

const SEC: Duration = Duration::from_secs(1);

fn ok(_: usize, _: Intent) -> (Duration, HostResult) {
    (SEC, HostResult::Upgraded)
}

/// Every host upgrades but `host`, which ends `bad`.
fn one_bad(
    host: usize,
    bad: HostResult,
) -> impl Fn(usize, Intent) -> (Duration, HostResult) + Sync {
    move |h: usize, _: Intent| (SEC, if h == host { bad } else { HostResult::Upgraded })
}

fn plan(waves: &[&[usize]], canary: bool) -> Plan {
    Plan {
        hosts: waves.iter().flat_map(|w| w.iter().copied()).collect(),
        waves: waves
            .iter()
            .enumerate()
            .map(|(index, hosts)| Wave {
                index,
                canary: canary && index == 0,
                hosts: hosts.to_vec(),
            })
            .collect(),
        order: crate::model::spec::Order::Inventory,
        seed: None,
        max_failed: 0,
    }
}

fn config(spec: &Spec, job: Job, max_failed: usize) -> RunConfig {
    RunConfig::resolve(
        spec,
        max_failed,
        Controls {
            job,
            canary_pause: CanaryPause::Ask,
            windows: WindowPolicy::Respect,
            display: Display::Quiet,
            parallel: None,
            forks: std::num::NonZeroUsize::MIN,
            run_id: "run".into(),
            owner: "test".into(),
        },
    )
}

fn roll() -> Job {
    Job::Roll(Source::Remote {
        path: "/new".into(),
        sha256: "ab".into(),
    })
}

fn spec(parallel: usize) -> Spec {
    let mut spec = Spec::defaults();
    spec.parallel = parallel;
    spec.canary.then = CanaryThen::Continue;
    spec
}

fn turn(kind: Kind) -> bool {
    matches!(kind, Kind::Run | Kind::Switch)
}

/// One run: the end, the executor's calls, what the sink saw.
struct Ran {
    end: RunEnd,
    calls: Vec<Call>,
    events: Vec<RolloutEvent>,
    said: Vec<String>,
}

impl Ran {
    fn started(&self, host: usize, intent: Intent) -> bool {
        self.calls
            .iter()
            .any(|c| c.host == host && c.intent == intent && turn(c.kind))
    }
    fn exit(&self) -> Exit {
        policy::result(self.end.stopped, self.end.tally).1
    }
}

struct Setup<'s> {
    config: RunConfig,
    plan: Plan,
    script: &'s Script,
    operator: Answer,
    clock_base: Timestamp,
    /// When (from the start) the operator's signals arrive.
    signals: Vec<Duration>,
    prepare: Option<Duration>,
}

impl<'s> Setup<'s> {
    fn new(config: RunConfig, plan: Plan, script: &'s Script) -> Setup<'s> {
        Setup {
            config,
            plan,
            script,
            operator: Answer(None),
            clock_base: "2026-11-28T01:30:00Z".parse().expect("ts"),
            signals: Vec::new(),
            prepare: None,
        }
    }

    async fn run(self) -> Ran {
        let fake = Fake {
            script: self.script,
            prepare: self.prepare,
            calls: Mutex::new(Vec::new()),
        };
        let sink = Recorder::default();
        let clock = TestClock {
            base: self.clock_base,
            start: Instant::now(),
        };
        let names = |h: usize| format!("h{h}");
        let dispatcher = Dispatcher {
            config: &self.config,
            plan: &self.plan,
            names: &names,
            executor: &fake,
            sink: &sink,
            operator: &self.operator,
            clock: &clock,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let at = self.signals.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            for t in at {
                tokio::time::sleep_until(start + t).await;
                let _ = tx.send(());
            }
            // Keep the channel open: a closed channel is not a signal.
            std::future::pending::<()>().await;
        });
        let end = dispatcher.run(rx).await;
        Ran {
            end,
            calls: fake.calls.into_inner().expect("calls"),
            events: sink.events.into_inner().expect("events"),
            said: sink.said.into_inner().expect("said"),
        }
    }
}

fn names(hosts: &[usize]) -> Vec<String> {
    hosts.iter().map(|h| format!("h{h}")).collect()
}

#[tokio::test(start_paused = true)]
async fn waves_are_barriers_and_parallel_bounds_each() {
    // Host 0 is slow: wave 1 waits for it even though its other hosts are done.
    let script = |h: usize, _: Intent| (if h == 0 { 5 * SEC } else { SEC }, HostResult::Upgraded);
    let ran = Setup::new(
        config(&spec(2), roll(), 0),
        plan(&[&[0, 1, 2], &[3, 4, 5]], false),
        &script,
    )
    .run()
    .await;
    let last_of_first = ran.calls[..3]
        .iter()
        .filter_map(|c| c.end)
        .max()
        .expect("end");
    for c in &ran.calls[3..] {
        assert!(
            c.start >= last_of_first,
            "wave 2 started before wave 1 ended"
        );
    }
    // Never more than `parallel` at once.
    for c in &ran.calls {
        let overlapping = ran
            .calls
            .iter()
            .filter(|o| o.start <= c.start && o.end.is_some_and(|e| e > c.start))
            .count();
        assert!(overlapping <= 2, "{overlapping} hosts at once");
    }
    assert_eq!(ran.end.stopped, Stopped::Completed);
    assert_eq!(ran.end.summary.upgraded, names(&[0, 1, 2, 3, 4, 5]));
    assert_eq!(ran.exit(), Exit::Success);
    let finished = ran
        .events
        .iter()
        .filter(|e| matches!(e, RolloutEvent::WaveFinished { .. }))
        .count();
    assert_eq!(finished, 2);
}

#[tokio::test(start_paused = true)]
async fn a_broken_budget_halts_and_later_waves_never_start() {
    let script = one_bad(1, HostResult::RolledBack);
    let ran = Setup::new(
        config(&spec(1), roll(), 0),
        plan(&[&[0, 1, 2], &[3]], false),
        &script,
    )
    .run()
    .await;
    assert_eq!(ran.end.stopped, Stopped::Halted);
    assert!(
        !ran.started(2, Intent::Upgrade),
        "no host starts after the halt"
    );
    assert!(!ran.started(3, Intent::Upgrade));
    assert_eq!(ran.end.summary.untouched, names(&[2, 3]));
    assert_eq!(ran.end.summary.rolled_back, names(&[1]));
    assert_eq!(ran.exit(), Exit::Failed);
    assert!(
        ran.events
            .iter()
            .any(|e| matches!(e, RolloutEvent::Halted { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_of_one_tolerates_one_failure() {
    let script = one_bad(0, HostResult::Failed);
    let ran = Setup::new(
        config(&spec(1), roll(), 1),
        plan(&[&[0, 1], &[2]], false),
        &script,
    )
    .run()
    .await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
    assert_eq!(ran.end.summary.upgraded, names(&[1, 2]));
    assert_eq!(ran.end.tally.failed, 1);
    assert_eq!(ran.exit(), Exit::Failed);
}

fn fails_at(host: usize) -> impl Fn(usize, Intent) -> (Duration, HostResult) + Sync {
    move |h: usize, intent: Intent| match intent {
        Intent::Rollback => (SEC, HostResult::RolledBack),
        _ if h == host => (SEC, HostResult::RolledBack),
        _ => (SEC, HostResult::Upgraded),
    }
}

#[tokio::test(start_paused = true)]
async fn rollback_scopes_take_back_the_passed_hosts_newest_first() {
    let cases = [
        (RollbackScope::Host, vec![]),
        (RollbackScope::Batch, vec![3]),
        (RollbackScope::Rollout, vec![3, 1, 0]),
    ];
    for (scope, back) in cases {
        let mut s = spec(1);
        s.rollback = scope;
        let script = fails_at(4);
        let ran = Setup::new(
            config(&s, roll(), 0),
            plan(&[&[0, 1], &[3, 4, 5]], false),
            &script,
        )
        .run()
        .await;
        let reverted: Vec<usize> = ran
            .calls
            .iter()
            .filter(|c| c.intent == Intent::Rollback)
            .map(|c| c.host)
            .collect();
        assert_eq!(reverted, back, "{scope:?}");
        assert_eq!(ran.end.stopped, Stopped::Halted);
        let mut rolled_back = names(&back);
        rolled_back.push("h4".into());
        rolled_back.sort();
        let mut got = ran.end.summary.rolled_back.clone();
        got.sort();
        assert_eq!(got, rolled_back, "{scope:?}");
        let reverted_results = ran
            .end
            .results
            .iter()
            .filter(|r| r.1 == HostResult::Reverted)
            .count();
        assert_eq!(reverted_results, back.len(), "{scope:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_host_whose_revert_fails_is_never_reported_reverted() {
    let mut s = spec(1);
    s.rollback = RollbackScope::Batch;
    let script = |h: usize, intent: Intent| match (h, intent) {
        (0, Intent::Rollback) => (SEC, HostResult::Unrestored),
        (1, _) => (SEC, HostResult::RolledBack),
        _ => (SEC, HostResult::Upgraded),
    };
    let ran = Setup::new(config(&s, roll(), 0), plan(&[&[0, 1]], false), &script)
        .run()
        .await;
    assert_eq!(ran.end.summary.unrestored, names(&[0]));
    assert_eq!(ran.exit(), Exit::Unrestored);
}

#[tokio::test(start_paused = true)]
async fn deferred_commits_follow_their_batch_or_the_rollout() {
    let awaiting = |_: usize, intent: Intent| match intent {
        Intent::UpgradeDeferCommit => (SEC, HostResult::AwaitingCommit),
        _ => (SEC, HostResult::Upgraded),
    };
    // Until the batch passes: each wave's hosts are committed before the next wave starts.
    let mut s = spec(2);
    s.keep_old_master = KeepOldMaster::UntilBatchPasses;
    let ran = Setup::new(
        config(&s, roll(), 0),
        plan(&[&[0, 1], &[2]], false),
        &awaiting,
    )
    .run()
    .await;
    let commit_of = |h| {
        ran.calls
            .iter()
            .find(|c| c.host == h && c.intent == Intent::Upgrade)
            .expect("committed")
            .start
    };
    let wave2 = ran.calls.iter().find(|c| c.host == 2).expect("h2").start;
    assert!(commit_of(0) < wave2 && commit_of(1) < wave2);
    assert_eq!(ran.end.summary.upgraded, names(&[0, 1, 2]));
    assert!(ran.end.results.iter().all(|r| r.1 == HostResult::Upgraded));

    // Until the rollout passes: commits after the last wave.
    s.keep_old_master = KeepOldMaster::UntilRolloutPasses;
    let ran = Setup::new(
        config(&s, roll(), 0),
        plan(&[&[0, 1], &[2]], false),
        &awaiting,
    )
    .run()
    .await;
    let last_wave_end = ran
        .calls
        .iter()
        .filter(|c| c.intent == Intent::UpgradeDeferCommit)
        .filter_map(|c| c.end)
        .max()
        .expect("end");
    let commits: Vec<&Call> = ran
        .calls
        .iter()
        .filter(|c| c.intent == Intent::Upgrade)
        .collect();
    assert_eq!(commits.len(), 3);
    assert!(commits.iter().all(|c| c.start >= last_wave_end));
    // The journal names each host's own wave, never a marker.
    for e in &ran.events {
        if let RolloutEvent::HostFinished { host, wave, .. } = e {
            assert_eq!(*wave, usize::from(host == "h2"), "{host}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_halt_never_commits_its_rollback_targets() {
    let mut s = spec(1);
    s.keep_old_master = KeepOldMaster::UntilRolloutPasses;
    s.rollback = RollbackScope::Rollout;
    let script = |h: usize, intent: Intent| match (h, intent) {
        (_, Intent::Rollback) => (SEC, HostResult::RolledBack),
        (2, _) => (SEC, HostResult::RolledBack),
        (_, Intent::UpgradeDeferCommit) => (SEC, HostResult::AwaitingCommit),
        _ => (SEC, HostResult::Upgraded),
    };
    let ran = Setup::new(
        config(&s, roll(), 0),
        plan(&[&[0], &[1, 2]], false),
        &script,
    )
    .run()
    .await;
    assert!(!ran.started(0, Intent::Upgrade));
    assert!(!ran.started(1, Intent::Upgrade));
    assert!(ran.started(0, Intent::Rollback) && ran.started(1, Intent::Rollback));
    assert_eq!(ran.end.summary.upgraded, Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn in_a_rollback_run_rolling_back_is_the_success() {
    let script = |_: usize, _: Intent| (SEC, HostResult::RolledBack);
    let job = Job::Rollback {
        from_sha256: "ab".into(),
    };
    let ran = Setup::new(
        config(&spec(2), job, 0),
        plan(&[&[0], &[1, 2]], true),
        &script,
    )
    .run()
    .await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
    assert!(ran.calls.iter().all(|c| c.intent == Intent::Rollback));
    assert_eq!(ran.end.summary.rolled_back, names(&[0, 1, 2]));
    assert_eq!(ran.exit(), Exit::Success);
}

#[tokio::test(start_paused = true)]
async fn one_signal_lets_hosts_in_flight_finish_and_starts_no_more() {
    let slow = |_: usize, _: Intent| (10 * SEC, HostResult::Upgraded);
    let mut setup = Setup::new(
        config(&spec(2), roll(), 0),
        plan(&[&[0, 1, 2], &[3]], false),
        &slow,
    );
    setup.signals = vec![3 * SEC];
    let ran = setup.run().await;
    assert_eq!(ran.end.stopped, Stopped::Interrupted);
    assert_eq!(ran.end.summary.upgraded, names(&[0, 1]));
    assert_eq!(ran.end.summary.untouched, names(&[2, 3]));
    assert!(
        ran.calls.iter().all(|c| c.end.is_some()),
        "in flight finished"
    );
    assert_eq!(ran.exit(), Exit::Interrupted);
    assert!(ran.said.iter().any(|s| s.starts_with("interrupted:")));
}

#[tokio::test(start_paused = true)]
async fn a_second_signal_ends_the_run_at_once_and_names_the_hosts_in_flight() {
    let slow = |_: usize, _: Intent| (100 * SEC, HostResult::Upgraded);
    let mut setup = Setup::new(
        config(&spec(2), roll(), 0),
        plan(&[&[0, 1, 2]], false),
        &slow,
    );
    setup.signals = vec![3 * SEC, 4 * SEC];
    let started = Instant::now();
    let ran = setup.run().await;
    assert!(started.elapsed() < 10 * SEC, "did not wait for the hosts");
    assert_eq!(ran.end.stopped, Stopped::Interrupted);
    assert_eq!(ran.end.summary.abandoned, names(&[0, 1]));
    assert_eq!(ran.end.tally.abandoned, 2);
    assert_eq!(ran.exit(), Exit::Interrupted);
    assert!(
        ran.said
            .iter()
            .any(|s| s.starts_with("interrupted twice") && s.contains("re-run: h0 h1;")),
        "{:?}",
        ran.said
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_during_the_canary_question_ends_the_wait() {
    let mut s = spec(1);
    s.canary.then = CanaryThen::Pause;
    let mut setup = Setup::new(config(&s, roll(), 0), plan(&[&[0], &[1]], true), &ok);
    setup.signals = vec![30 * SEC];
    let ran = setup.run().await;
    assert_eq!(ran.end.stopped, Stopped::Interrupted);
    assert_eq!(ran.end.summary.untouched, names(&[1]));
}

#[tokio::test(start_paused = true)]
async fn the_operator_answers_the_canary_pause() {
    let mut s = spec(1);
    s.canary.then = CanaryThen::Pause;
    for (answer, stopped, untouched) in [
        (true, Stopped::Completed, vec![]),
        (false, Stopped::Interrupted, names(&[1])),
    ] {
        let mut setup = Setup::new(config(&s, roll(), 0), plan(&[&[0], &[1]], true), &ok);
        setup.operator = Answer(Some(answer));
        let ran = setup.run().await;
        assert_eq!(ran.end.stopped, stopped, "{answer}");
        assert_eq!(ran.end.summary.untouched, untouched, "{answer}");
    }
    // `--yes` does not ask.
    let mut c = config(&s, roll(), 0);
    c.canary_pause = CanaryPause::Skip;
    let ran = Setup::new(c, plan(&[&[0], &[1]], true), &ok).run().await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_canary_soak_waits_before_the_next_wave() {
    let mut s = spec(1);
    s.canary.then = "30s".parse().expect("then");
    let ran = Setup::new(config(&s, roll(), 0), plan(&[&[0], &[1]], true), &ok)
        .run()
        .await;
    let gap = ran.calls[1].start - ran.calls[0].end.expect("end");
    assert_eq!(gap, 30 * SEC);
    assert!(ran.said.iter().any(|s| s.contains("soaking")));
}

fn one_hour_window() -> Windows {
    // Sat 02:00 Berlin = 01:00Z, an hour long.
    Windows::new(vec![
        Window::new(
            &["sat"],
            "02:00",
            Duration::from_secs(3600),
            "Europe/Berlin",
        )
        .expect("window"),
    ])
}

#[tokio::test(start_paused = true)]
async fn a_closing_window_pauses_the_run_before_a_host_that_would_not_finish() {
    // 30 min left at the start; each host takes 20 min: the second would overrun.
    let slow = |_: usize, _: Intent| (20 * 60 * SEC, HostResult::Upgraded);
    let mut c = config(&spec(1), roll(), 0);
    c.windows = Some(one_hour_window());
    let ran = Setup::new(c, plan(&[&[0, 1, 2]], false), &slow).run().await;
    assert_eq!(ran.end.stopped, Stopped::Paused);
    assert_eq!(ran.end.summary.upgraded, names(&[0]));
    assert_eq!(ran.end.summary.untouched, names(&[1, 2]));
    assert_eq!(ran.exit(), Exit::Paused);
}

#[tokio::test(start_paused = true)]
async fn outside_a_window_the_run_waits_for_it_to_open() {
    let mut c = config(&spec(1), roll(), 0);
    c.windows = Some(one_hour_window());
    let mut setup = Setup::new(c, plan(&[&[0]], false), &ok);
    setup.clock_base = "2026-11-28T03:00:00Z".parse().expect("ts");
    let started = Instant::now();
    let ran = setup.run().await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
    let waited = ran.calls[0].start - started;
    // Until next Saturday 01:00Z: 6 days 22 hours.
    assert_eq!(waited, Duration::from_secs((6 * 24 + 22) * 3600));
    assert!(
        ran.events
            .iter()
            .any(|e| matches!(e, RolloutEvent::WaitingForWindow { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_plan_completes() {
    let ran = Setup::new(config(&spec(1), roll(), 0), plan(&[], false), &ok)
        .run()
        .await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
    assert_eq!(ran.end.summary, Summary::default());
}

/// How many hosts are held at `t`: being prepared, prepared and waiting, or taking their turn.
fn held_at(calls: &[Call], t: Instant) -> usize {
    let mut hosts: Vec<usize> = calls.iter().map(|c| c.host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
        .into_iter()
        .filter(|&h| {
            let of = |k: Kind| calls.iter().find(|c| c.host == h && c.kind == k);
            let from = calls
                .iter()
                .filter(|c| c.host == h && c.kind != Kind::Release)
                .map(|c| c.start)
                .min();
            let until = of(Kind::Switch)
                .or(of(Kind::Run))
                .or(of(Kind::Release))
                .and_then(|c| c.end);
            from.is_some_and(|f| f <= t) && until.is_none_or(|u| u > t)
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_next_waves_are_prepared_while_one_switches_within_forks() {
    let script = |_: usize, _: Intent| (3 * SEC, HostResult::Upgraded);
    let mut c = config(&spec(2), roll(), 0);
    c.forks = std::num::NonZeroUsize::new(4).expect("4");
    let mut setup = Setup::new(c, plan(&[&[0], &[1, 2, 3], &[4, 5]], true), &script);
    setup.prepare = Some(2 * SEC);
    let ran = setup.run().await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
    assert_eq!(ran.end.summary.upgraded, names(&[0, 1, 2, 3, 4, 5]));
    let of = |h: usize, k: Kind| {
        ran.calls
            .iter()
            .find(|c| c.host == h && c.kind == k)
            .unwrap_or_else(|| panic!("h{h} {k:?}: {:?}", ran.calls))
    };
    // Wave 1 was prepared while the canary switched.
    let canary_end = of(0, Kind::Run).end.expect("end");
    assert!(of(1, Kind::Prepare).start < canary_end);
    // Every later host only switched, after its preparation, and never ran whole.
    for h in 1..=5 {
        assert!(of(h, Kind::Switch).start >= of(h, Kind::Prepare).end.expect("end"));
        assert!(!ran.calls.iter().any(|c| c.host == h && c.kind == Kind::Run));
    }
    // Waves stay barriers: wave 2 switches after wave 1 ended.
    let wave1_end = (1..=3)
        .map(|h| of(h, Kind::Switch).end.expect("end"))
        .max()
        .expect("max");
    assert!(of(4, Kind::Switch).start >= wave1_end);
    // Never more than --forks hosts held.
    for c in &ran.calls {
        let held = held_at(&ran.calls, c.start);
        assert!(held <= 4, "{held} hosts held at {:?}", c.start);
    }
    assert!(!ran.calls.iter().any(|c| c.kind == Kind::Release));
}

#[tokio::test(start_paused = true)]
async fn a_halt_lets_every_prepared_host_go_untouched() {
    // Prepared before the canary fails, and still preparing when it does.
    for prepare in [SEC / 2, 2 * SEC] {
        let script = one_bad(0, HostResult::RolledBack);
        let mut c = config(&spec(2), roll(), 0);
        c.forks = std::num::NonZeroUsize::new(5).expect("5");
        let mut setup = Setup::new(c, plan(&[&[0], &[1, 2], &[3, 4]], true), &script);
        setup.prepare = Some(prepare);
        let ran = setup.run().await;
        assert_eq!(ran.end.stopped, Stopped::Halted);
        assert_eq!(ran.end.summary.untouched, names(&[1, 2, 3, 4]));
        let prepared: Vec<usize> = ran
            .calls
            .iter()
            .filter(|c| c.kind == Kind::Prepare)
            .map(|c| c.host)
            .collect();
        assert!(!prepared.is_empty());
        for h in prepared {
            assert!(
                ran.calls
                    .iter()
                    .any(|c| c.host == h && c.kind == Kind::Release && c.end.is_some()),
                "{prepare:?}: h{h} was prepared and never released: {:?}",
                ran.calls
            );
        }
        assert!(!ran.calls.iter().any(|c| c.kind == Kind::Switch));
    }
}

#[tokio::test(start_paused = true)]
async fn a_rollback_prepares_nothing() {
    let script = |_: usize, _: Intent| (SEC, HostResult::RolledBack);
    let job = Job::Rollback {
        from_sha256: "ab".into(),
    };
    let mut setup = Setup::new(
        config(&spec(1), job, 0),
        plan(&[&[0, 1, 2]], false),
        &script,
    );
    setup.prepare = Some(SEC);
    let ran = setup.run().await;
    assert!(ran.calls.iter().all(|c| c.kind == Kind::Run));
    assert_eq!(ran.end.summary.rolled_back, names(&[0, 1, 2]));
}

#[tokio::test(start_paused = true)]
async fn a_second_signal_during_the_final_commits_names_every_host_left_with_two_masters() {
    let awaiting = |_: usize, intent: Intent| match intent {
        Intent::UpgradeDeferCommit => (SEC, HostResult::AwaitingCommit),
        _ => (10 * SEC, HostResult::Upgraded),
    };
    let mut s = spec(2);
    s.keep_old_master = KeepOldMaster::UntilRolloutPasses;
    let mut setup = Setup::new(
        config(&s, roll(), 0),
        plan(&[&[0, 1, 2, 3]], false),
        &awaiting,
    );
    // The wave ends at 2 s; the commits of h0 and h1 start then and take 10 s.
    setup.signals = vec![3 * SEC, 4 * SEC];
    let ran = setup.run().await;
    assert_eq!(ran.end.summary.abandoned, names(&[0, 1, 2, 3]));
    assert!(ran.end.summary.upgraded.is_empty());
    assert!(
        ran.said
            .iter()
            .any(|s| s.ends_with("still to be committed or rolled back: h2 h3")),
        "{:?}",
        ran.said
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_goes_on_past_failures() {
    let script = |h: usize, _: Intent| {
        (
            SEC,
            if h == 0 {
                HostResult::Failed
            } else {
                HostResult::RolledBack
            },
        )
    };
    let job = Job::Rollback {
        from_sha256: "ab".into(),
    };
    let ran = Setup::new(
        config(&spec(1), job, 0),
        plan(&[&[0, 1, 2]], false),
        &script,
    )
    .run()
    .await;
    assert_eq!(ran.end.stopped, Stopped::Completed);
    assert_eq!(ran.end.summary.failed, names(&[0]));
    assert_eq!(ran.end.summary.rolled_back, names(&[1, 2]));
    assert_eq!(ran.exit(), Exit::Failed);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_prepared_while_waiting_for_a_window() {
    let mut c = config(&spec(1), roll(), 0);
    c.windows = Some(one_hour_window());
    c.forks = std::num::NonZeroUsize::new(4).expect("4");
    let mut setup = Setup::new(c, plan(&[&[0], &[1, 2]], false), &ok);
    setup.clock_base = "2026-11-28T03:00:00Z".parse().expect("ts");
    setup.prepare = Some(SEC);
    let started = Instant::now();
    let ran = setup.run().await;
    let first = ran.calls.iter().map(|c| c.start).min().expect("calls");
    assert!(first - started >= Duration::from_secs((6 * 24 + 22) * 3600));
    assert_eq!(ran.end.stopped, Stopped::Completed);
}

#[tokio::test(start_paused = true)]
async fn preparation_reaches_two_waves_ahead_and_no_further() {
    let mut c = config(&spec(1), roll(), 0);
    c.forks = std::num::NonZeroUsize::new(10).expect("10");
    let mut setup = Setup::new(c, plan(&[&[0], &[1], &[2], &[3], &[4]], false), &ok);
    setup.prepare = Some(SEC / 2);
    let ran = setup.run().await;
    let of = |h: usize, k: Kind| {
        ran.calls
            .iter()
            .find(|c| c.host == h && c.kind == k)
            .unwrap_or_else(|| panic!("h{h} {k:?}: {:?}", ran.calls))
    };
    // While the canary switches, the two waves after it are prepared.
    assert!(of(1, Kind::Prepare).start < of(0, Kind::Run).end.expect("end"));
    assert!(of(2, Kind::Prepare).start < of(0, Kind::Run).end.expect("end"));
    // Host 3 waits for wave 1 to start: wave 0 ended first.
    assert!(of(3, Kind::Prepare).start >= of(0, Kind::Run).end.expect("end"));
    assert!(of(4, Kind::Prepare).start >= of(1, Kind::Switch).start);
    assert_eq!(ran.end.stopped, Stopped::Completed);
}

/// Hosts prepared while the canary switched are let go when the run waits for the
/// operator's answer: no lock held, no observation aging, for as long as nobody answers.
#[tokio::test(start_paused = true)]
async fn prepared_hosts_are_let_go_during_the_canary_question() {
    let mut s = spec(1);
    s.canary.then = CanaryThen::Pause;
    let mut c = config(&s, roll(), 0);
    c.forks = std::num::NonZeroUsize::new(10).expect("10");
    let mut setup = Setup::new(c, plan(&[&[0], &[1], &[2], &[3]], true), &ok);
    setup.prepare = Some(SEC / 2);
    setup.signals = vec![3600 * SEC];
    let ran = setup.run().await;
    let t0 = ran.calls.iter().map(|c| c.start).min().expect("calls");
    let of = |h: usize, k: Kind| ran.calls.iter().find(|c| c.host == h && c.kind == k);
    let canary_end = of(0, Kind::Run).and_then(|c| c.end).expect("canary ran") - t0;
    for h in [1, 2] {
        assert!(of(h, Kind::Prepare).is_some(), "h{h} was prepared");
        let released = of(h, Kind::Release).expect("released").start - t0;
        assert!(
            released <= canary_end + SEC,
            "h{h} held until {released:?} (canary ended at {canary_end:?})"
        );
    }
}
