//! Pure rollout decisions: the failure budget, what a halt rolls back, whether a host may start
//! in the current maintenance window, and how a run ends.

use std::time::Duration;

use jiff::Timestamp;

use super::outcome::{HostResult, Stopped, Tally};
use crate::error::Exit;
use crate::model::spec::RollbackScope;
use crate::model::window::{WindowState, Windows};

/// Whether `failed` failures break a budget of `max_failed`.
pub fn over_budget(failed: usize, max_failed: usize) -> bool {
    failed > max_failed
}

/// Whether a host may start now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowDecision {
    Go,
    /// Before the run started anything: wait for the next window.
    WaitUntil(Timestamp),
    /// The window is closed, or closes before a host would finish: stop (exit 4).
    Stop,
}

/// `expected` is how long a host takes (measured in this run; `None` before any finished).
pub fn window_decision(
    windows: &Windows,
    now: Timestamp,
    expected: Option<Duration>,
    started_any: bool,
) -> WindowDecision {
    match windows.state_at(now) {
        WindowState::Always => WindowDecision::Go,
        WindowState::Open { closes_at } => {
            let left = closes_at.duration_since(now);
            match expected {
                Some(need) if left.as_secs_f64() < need.as_secs_f64() => WindowDecision::Stop,
                _ => WindowDecision::Go,
            }
        }
        WindowState::Closed { .. } if started_any => WindowDecision::Stop,
        WindowState::Closed { opens_at } => WindowDecision::WaitUntil(opens_at),
    }
}

/// Which hosts a halt rolls back (beyond the failed hosts, which restore themselves):
/// `host` none; `batch` the passed hosts of the failing wave; `rollout` every passed host this
/// run touched, newest first.
pub fn rollback_targets(
    scope: RollbackScope,
    failing_wave: &[usize],
    touched_in_order: &[(usize, HostResult)],
) -> Vec<usize> {
    match scope {
        RollbackScope::Host => Vec::new(),
        RollbackScope::Batch => touched_in_order
            .iter()
            .filter(|(h, r)| failing_wave.contains(h) && r.passed())
            .map(|(h, _)| *h)
            .rev()
            .collect(),
        RollbackScope::Rollout => touched_in_order
            .iter()
            .filter(|(_, r)| r.passed())
            .map(|(h, _)| *h)
            .rev()
            .collect(),
    }
}

/// The run's result word and exit code.
pub fn result(stopped: Stopped, tally: Tally) -> (&'static str, Exit) {
    if tally.unrestored > 0 {
        return ("failed", Exit::Unrestored);
    }
    match stopped {
        Stopped::Interrupted => ("interrupted", Exit::Interrupted),
        Stopped::Paused => ("paused", Exit::Paused),
        _ if tally.failed > 0 => ("failed", Exit::Failed),
        Stopped::Halted => ("failed", Exit::Failed),
        Stopped::Completed => ("succeeded", Exit::Success),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::window::Window;

    #[test]
    fn budget() {
        assert!(!over_budget(0, 0));
        assert!(over_budget(1, 0));
        assert!(!over_budget(1, 1));
    }

    #[test]
    fn rollback_scopes() {
        use HostResult::*;
        let touched = [
            (0, Upgraded),
            (1, Upgraded),
            (2, RolledBack),
            (3, Upgraded),
            (4, Skipped),
        ];
        assert!(rollback_targets(RollbackScope::Host, &[1, 2, 3], &touched).is_empty());
        assert_eq!(
            rollback_targets(RollbackScope::Batch, &[1, 2, 3], &touched),
            [3, 1]
        );
        assert_eq!(
            rollback_targets(RollbackScope::Rollout, &[1, 2, 3], &touched),
            [3, 1, 0]
        );
    }

    #[test]
    fn windows_gate_host_starts() {
        let now: Timestamp = "2026-11-28T01:30:00Z".parse().expect("ts");
        let none = Windows::default();
        assert_eq!(window_decision(&none, now, None, false), WindowDecision::Go);
        // Sat 02:00 Berlin = 01:00Z, 1h long: open until 02:00Z, 30 min left.
        let w = Windows::new(vec![
            Window::new(
                &["sat"],
                "02:00",
                Duration::from_secs(3600),
                "Europe/Berlin",
            )
            .expect("w"),
        ]);
        assert_eq!(
            window_decision(&w, now, Some(Duration::from_secs(60)), true),
            WindowDecision::Go
        );
        assert_eq!(
            window_decision(&w, now, Some(Duration::from_secs(3600)), true),
            WindowDecision::Stop
        );
        let later: Timestamp = "2026-11-28T03:00:00Z".parse().expect("ts");
        assert_eq!(window_decision(&w, later, None, true), WindowDecision::Stop);
        assert!(
            matches!(window_decision(&w, later, None, false), WindowDecision::WaitUntil(t) if t.to_string() == "2026-12-05T01:00:00Z")
        );
    }

    #[test]
    fn results_and_exit_codes() {
        let none = Tally::default();
        let one = Tally {
            failed: 1,
            ..Tally::default()
        };
        let lost = Tally {
            failed: 1,
            unrestored: 1,
            ..Tally::default()
        };
        assert_eq!(
            result(Stopped::Completed, none),
            ("succeeded", Exit::Success)
        );
        assert_eq!(result(Stopped::Completed, one), ("failed", Exit::Failed));
        assert_eq!(result(Stopped::Halted, one), ("failed", Exit::Failed));
        assert_eq!(result(Stopped::Halted, lost), ("failed", Exit::Unrestored));
        assert_eq!(result(Stopped::Paused, none), ("paused", Exit::Paused));
        assert_eq!(
            result(Stopped::Interrupted, none),
            ("interrupted", Exit::Interrupted)
        );
    }
}
