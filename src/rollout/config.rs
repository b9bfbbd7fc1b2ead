//! The run configuration: everything a rollout needs to know, resolved once from the inputs,
//! the plan, the command line and the environment, with every policy number named here.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::outcome::JobKind;
use crate::host::upgrade::{Deadlines, Intent, KEEP_BACKUPS, Settings, Source, UPLOAD_FLOOR};
use crate::model::spec::{CanaryThen, KeepOldMaster, RollbackScope, Spec};
use crate::model::window::Windows;

/// Connection attempts per host: a lost connection is retried on a new one (the procedure
/// re-reads the host; it never repeats a signal blindly).
pub const CONNECT_ATTEMPTS: u32 = 3;

/// What the run is: roll out a binary, or take hosts back from one (by its sha256: hosts
/// that run something else are left alone).
#[derive(Clone, Debug)]
pub enum Job {
    Roll(Source),
    Rollback { from_sha256: String },
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Roll(_) => JobKind::Roll,
            Job::Rollback { .. } => JobKind::Rollback,
        }
    }

    /// The binary the run is about: the one rolled out, or the one taken away (a rollback
    /// reads only its sha256).
    pub fn source(&self) -> Source {
        match self {
            Job::Roll(s) => s.clone(),
            Job::Rollback { from_sha256 } => Source::Remote {
                path: String::new(),
                sha256: from_sha256.clone(),
            },
        }
    }
}

/// How the operator answers the canary pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryPause {
    /// `--yes`: do not stop.
    Skip,
    /// Ask on the terminal.
    Ask,
}

/// Whether maintenance windows apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowPolicy {
    Respect,
    /// `--ignore-windows`.
    Ignore,
}

/// How events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// indicatif: an overall bar, a line per host in flight, finished hosts above.
    Bars,
    /// Plain timestamped lines.
    Lines,
    /// One JSON object per event on stdout.
    Json,
    /// Only the summary (`-q`).
    Quiet,
}

/// What the command line asked for the display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayAsk {
    Json,
    Quiet,
    /// Bars on a terminal unless `-v` writes commands there; lines otherwise.
    Auto {
        terminal: Terminal,
        verbose: Verbose,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    Yes,
    No,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbose {
    Off,
    On,
}

impl Display {
    pub fn choose(ask: DisplayAsk) -> Display {
        match ask {
            DisplayAsk::Json => Display::Json,
            DisplayAsk::Quiet => Display::Quiet,
            // `-v` writes each command on stderr, where the bars would draw over it.
            DisplayAsk::Auto {
                terminal: Terminal::Yes,
                verbose: Verbose::Off,
            } => Display::Bars,
            DisplayAsk::Auto { .. } => Display::Lines,
        }
    }
}

/// What the command line adds to the spec.
#[derive(Clone, Debug)]
pub struct Controls {
    pub job: Job,
    pub canary_pause: CanaryPause,
    pub windows: WindowPolicy,
    pub display: Display,
    /// `--parallel` (rollback): hosts at once instead of the spec's `parallel`.
    pub parallel: Option<NonZeroUsize>,
    /// `--forks`: hosts held at once, counting the ones prepared ahead of their turn.
    pub forks: NonZeroUsize,
    /// The run's id, written into the journal and each host's record.
    pub run_id: String,
    /// Who holds each host's lock (controller host, pid, run).
    pub owner: String,
}

/// One rollout's configuration.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub job: Job,
    /// Hosts at once (spec `parallel`).
    pub parallel: NonZeroUsize,
    /// Hosts held at once (`--forks`): those switching plus those prepared ahead.
    pub forks: NonZeroUsize,
    /// Failures the run tolerates before it halts (spec `max_failed`, resolved by the plan).
    pub max_failed: usize,
    /// What a halt rolls back (spec `rollback`).
    pub rollback: RollbackScope,
    /// When a passed host's old master is told to QUIT (spec `keep_old_master`).
    pub commit: KeepOldMaster,
    /// The per-host procedure's settings (deadlines, drain policy, backups, attempts).
    pub host: Settings,
    /// Maintenance windows; `None` with `--ignore-windows`.
    pub windows: Option<Windows>,
    /// What follows the canary (spec `canary.then`), and whether `pause` asks.
    pub canary: CanaryThen,
    pub canary_pause: CanaryPause,
    /// A pause after every wave but the last (spec `pause_between_batches`).
    pub pause_between_batches: Duration,
    pub display: Display,
}

impl RunConfig {
    /// Resolves the configuration from the spec, the plan's failure budget and the command
    /// line.
    pub fn resolve(spec: &Spec, max_failed: usize, controls: Controls) -> RunConfig {
        let t = &spec.timeouts;
        RunConfig {
            parallel: controls
                .parallel
                .or(NonZeroUsize::new(spec.parallel))
                .unwrap_or(NonZeroUsize::MIN),
            forks: controls.forks,
            max_failed,
            rollback: spec.rollback,
            commit: spec.keep_old_master,
            host: Settings {
                deadlines: Deadlines {
                    command: t.command.get(),
                    start: t.start.get(),
                    drain: t.drain.get(),
                    quit: t.quit.get(),
                },
                on_drain_timeout: spec.on_drain_timeout,
                run_id: controls.run_id,
                owner: controls.owner,
                attempts: CONNECT_ATTEMPTS,
                keep_backups: KEEP_BACKUPS,
                upload_floor: UPLOAD_FLOOR,
            },
            windows: match controls.windows {
                WindowPolicy::Respect => Some(spec.windows.clone()),
                WindowPolicy::Ignore => None,
            },
            canary: spec.canary.then,
            canary_pause: controls.canary_pause,
            pause_between_batches: spec.pause_between_batches.get(),
            display: controls.display,
            job: controls.job,
        }
    }

    pub fn kind(&self) -> JobKind {
        self.job.kind()
    }

    /// The intent of a host's run in a wave.
    pub fn wave_intent(&self) -> Intent {
        match (&self.job, self.commit) {
            (Job::Rollback { .. }, _) => Intent::Rollback,
            (_, KeepOldMaster::UntilHostPasses) => Intent::Upgrade,
            _ => Intent::UpgradeDeferCommit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controls(job: Job) -> Controls {
        Controls {
            job,
            canary_pause: CanaryPause::Skip,
            windows: WindowPolicy::Ignore,
            display: Display::Quiet,
            parallel: None,
            forks: NonZeroUsize::MIN,
            run_id: "r".into(),
            owner: "o".into(),
        }
    }

    #[test]
    fn resolves_from_the_spec() {
        let mut spec = Spec::defaults();
        spec.parallel = 0;
        spec.keep_old_master = KeepOldMaster::UntilBatchPasses;
        let rollback = Job::Rollback {
            from_sha256: "ab".into(),
        };
        let c = RunConfig::resolve(&spec, 2, controls(rollback));
        assert_eq!(c.parallel.get(), 1);
        assert_eq!(c.max_failed, 2);
        assert!(c.windows.is_none());
        assert_eq!(c.host.attempts, CONNECT_ATTEMPTS);
        assert_eq!(c.wave_intent(), Intent::Rollback);
        assert_eq!(c.kind(), JobKind::Rollback);
        let roll = Job::Roll(Source::Remote {
            path: "/x".into(),
            sha256: "cd".into(),
        });
        let c = RunConfig::resolve(&spec, 0, controls(roll.clone()));
        assert_eq!(c.wave_intent(), Intent::UpgradeDeferCommit);
        let mut asked = controls(roll);
        asked.parallel = NonZeroUsize::new(7);
        assert_eq!(RunConfig::resolve(&spec, 0, asked).parallel.get(), 7);
    }

    #[test]
    fn bars_only_on_a_quiet_terminal() {
        let auto = |terminal, verbose| Display::choose(DisplayAsk::Auto { terminal, verbose });
        assert_eq!(auto(Terminal::Yes, Verbose::Off), Display::Bars);
        assert_eq!(auto(Terminal::Yes, Verbose::On), Display::Lines);
        assert_eq!(auto(Terminal::No, Verbose::Off), Display::Lines);
        assert_eq!(Display::choose(DisplayAsk::Json), Display::Json);
        assert_eq!(Display::choose(DisplayAsk::Quiet), Display::Quiet);
    }
}
