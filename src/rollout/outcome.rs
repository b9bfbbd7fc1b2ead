//! What a run comes to: each host's result, the one rule for what counts as a failure, the
//! tally and summary built from the last result of every host, and how the run stopped.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

/// What the run does: roll a binary out, or take hosts back from one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Roll,
    Rollback,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Roll => "roll",
            JobKind::Rollback => "rollback",
        }
    }
}

/// What became of one host in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostResult {
    Upgraded,
    /// Already at the target (or, for rollback, nothing to do).
    Skipped,
    /// Failed, and restored to its old binary; for `rollback`, taken back as asked.
    RolledBack,
    /// Upgraded, then rolled back because of another host (batch or rollout scope).
    Reverted,
    /// Failed before any change (refused, locked, unreachable), or failed and observed serving
    /// one version afterwards.
    Failed,
    /// Failed and could not be restored: needs a person.
    Unrestored,
    /// Passed, old master kept (keep_old_master) until its batch or the rollout passes.
    AwaitingCommit,
    /// In flight when the operator stopped the run a second time: its state is unknown until
    /// `ngfleet status` or a re-run looks.
    Abandoned,
}

impl HostResult {
    pub fn name(self) -> &'static str {
        match self {
            HostResult::Upgraded => "upgraded",
            HostResult::Skipped => "skipped",
            HostResult::RolledBack => "rolled_back",
            HostResult::Reverted => "reverted",
            HostResult::Failed => "failed",
            HostResult::Unrestored => "unrestored",
            HostResult::AwaitingCommit => "awaiting_commit",
            HostResult::Abandoned => "abandoned",
        }
    }

    /// Passed its gates on the new binary (committed or not).
    pub fn passed(self) -> bool {
        matches!(self, HostResult::Upgraded | HostResult::AwaitingCommit)
    }
}

/// The one rule for whether a result counts against the failure budget and the exit code: in
/// a rollback run, being rolled back is the goal.
pub fn is_failure(job: JobKind, result: HostResult) -> bool {
    matches!(
        (job, result),
        (_, HostResult::Failed | HostResult::Unrestored) | (JobKind::Roll, HostResult::RolledBack)
    )
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    Completed,
    /// The failure budget broke.
    Halted,
    /// A maintenance window closed (or would close before a host could finish).
    Paused,
    /// The operator stopped it (a signal, or "no" at the canary pause).
    Interrupted,
}

/// How a run's hosts ended, counted for its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Hosts that failed (restored or not).
    pub failed: usize,
    /// Hosts that failed and could not be restored.
    pub unrestored: usize,
    /// Hosts abandoned in flight.
    pub abandoned: usize,
}

/// Host names by what became of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub upgraded: Vec<String>,
    pub rolled_back: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    pub untouched: Vec<String>,
    pub unrestored: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abandoned: Vec<String>,
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct RunEnd {
    pub stopped: Stopped,
    /// Every host that ran, in plan order: its last result and error.
    pub results: Vec<(usize, HostResult, Option<String>)>,
    pub summary: Summary,
    pub tally: Tally,
    /// The slowest hosts, slowest first.
    pub slowest: Vec<(usize, Duration)>,
}

/// What the dispatcher saw of a run, in the order it happened.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Results in the order hosts finished (a host can appear more than once: its last
    /// entry is its result).
    pub results: Vec<(usize, HostResult, Option<String>)>,
    /// How long each host run took.
    pub times: Vec<(usize, Duration)>,
    /// Each host's latest result, and the order hosts first finished in.
    last: HashMap<usize, HostResult>,
    first_finished: Vec<usize>,
    /// Each host's latest error (a later run without one keeps it).
    last_error: HashMap<usize, String>,
}

impl Ledger {
    pub fn record(&mut self, host: usize, result: HostResult, error: Option<String>) {
        if self.last.insert(host, result).is_none() {
            self.first_finished.push(host);
        }
        if let Some(e) = &error {
            self.last_error.insert(host, e.clone());
        }
        self.results.push((host, result, error));
    }

    /// The latest result of `host`.
    pub fn last(&self, host: usize) -> Option<HostResult> {
        self.last.get(&host).copied()
    }

    /// Hosts by their latest result, in the order they first finished.
    pub fn latest(&self) -> Vec<(usize, HostResult)> {
        self.first_finished
            .iter()
            .filter_map(|&h| self.last(h).map(|r| (h, r)))
            .collect()
    }

    /// Failures so far, counted the way `job` counts them (each host once).
    pub fn failures(&self, job: JobKind) -> usize {
        self.last.values().filter(|r| is_failure(job, **r)).count()
    }
}

/// The run's end from its ledger: each planned host's last result (and last error) in plan
/// order; hosts that never ran are untouched.
pub fn conclude(
    job: JobKind,
    stopped: Stopped,
    plan: &[usize],
    ledger: &Ledger,
    name: impl Fn(usize) -> String,
) -> RunEnd {
    let mut results = Vec::new();
    let mut summary = Summary::default();
    for &h in plan {
        let Some(result) = ledger.last(h) else {
            summary.untouched.push(name(h));
            continue;
        };
        let error = ledger.last_error.get(&h).cloned();
        let list = match result {
            HostResult::Upgraded | HostResult::AwaitingCommit => &mut summary.upgraded,
            HostResult::Skipped => &mut summary.skipped,
            HostResult::RolledBack | HostResult::Reverted => &mut summary.rolled_back,
            HostResult::Failed => &mut summary.failed,
            HostResult::Unrestored => &mut summary.unrestored,
            HostResult::Abandoned => &mut summary.abandoned,
        };
        list.push(name(h));
        results.push((h, result, error));
    }
    let tally = Tally {
        failed: results.iter().filter(|r| is_failure(job, r.1)).count(),
        unrestored: summary.unrestored.len(),
        abandoned: summary.abandoned.len(),
    };
    let mut slowest = ledger.times.clone();
    slowest.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    slowest.truncate(3);
    RunEnd {
        stopped,
        results,
        summary,
        tally,
        slowest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_back_is_a_failure_only_when_rolling_out() {
        assert!(is_failure(JobKind::Roll, HostResult::RolledBack));
        assert!(!is_failure(JobKind::Rollback, HostResult::RolledBack));
        for job in [JobKind::Roll, JobKind::Rollback] {
            assert!(is_failure(job, HostResult::Failed));
            assert!(is_failure(job, HostResult::Unrestored));
            assert!(!is_failure(job, HostResult::Upgraded));
            assert!(!is_failure(job, HostResult::Skipped));
            assert!(!is_failure(job, HostResult::Reverted));
            assert!(!is_failure(job, HostResult::Abandoned));
        }
    }

    #[test]
    fn the_last_result_of_each_host_counts() {
        let mut l = Ledger::default();
        l.record(2, HostResult::AwaitingCommit, None);
        l.record(0, HostResult::RolledBack, Some("gate failed".into()));
        l.record(2, HostResult::Upgraded, None);
        l.times.push((2, Duration::from_secs(3)));
        l.times.push((0, Duration::from_secs(5)));
        let end = conclude(JobKind::Roll, Stopped::Halted, &[0, 1, 2], &l, |h| {
            format!("h{h}")
        });
        assert_eq!(end.summary.upgraded, ["h2"]);
        assert_eq!(end.summary.rolled_back, ["h0"]);
        assert_eq!(end.summary.untouched, ["h1"]);
        assert_eq!(end.tally.failed, 1);
        assert_eq!(
            end.results,
            [
                (0, HostResult::RolledBack, Some("gate failed".into())),
                (2, HostResult::Upgraded, None)
            ]
        );
        assert_eq!(end.slowest[0].0, 0);
        assert_eq!(l.failures(JobKind::Roll), 1);
        assert_eq!(l.failures(JobKind::Rollback), 0);
    }
}
