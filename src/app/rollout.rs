//! `ngfleet roll` and `ngfleet rollback`: check what starts them (the binary, the gates, the
//! operator's consent), then run the dispatcher with a journal and a live display.

use std::io::{IsTerminal, Write};

use super::validate::check_gates;
use super::{
    Asking, Connecting, confirm, connect_setup, hosts_of, load_plan, plan_for, runtime, verbosity,
};
use crate::cli::{GlobalArgs, RollArgs, RollbackArgs};
use crate::error::{Error, Exit};
use crate::gate::runner::SpecGates;
use crate::host::upgrade::Source;
use crate::inputs::{self, Inputs};
use crate::model::spec::{Amount, CanaryHosts, CanaryThen};
use crate::plan::Plan;
use crate::report::journal::Journal;
use crate::report::live::Reporter;
use crate::rollout::config::{
    CanaryPause, Controls, Display, DisplayAsk, Job, RunConfig, Terminal, Verbose, WindowPolicy,
};
use crate::rollout::dispatch::Dispatcher;
use crate::rollout::event::{RolloutEvent, Sink};
use crate::rollout::executor::{Slots, SshExecutor};
use crate::rollout::seams::SystemClock;
use crate::rollout::signals::{self, TerminalOperator};
use crate::ssh::Verbosity;

/// The longest the end of a run waits for the hosts' lock releases (each is bounded by a
/// heartbeat interval, 5 s; a holder left behind exits after 30 s without heartbeats).
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `roll`: the rollout.
pub(super) fn roll(
    global: &GlobalArgs,
    args: &RollArgs,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let (inputs, plan) = load_plan(&args.target, args.seed)?;
    check_gates(&inputs, &plan)?;
    let binary = inputs::binary(args.binary.as_deref(), &inputs.spec)?;
    let source = Source::Local {
        path: binary.path.clone(),
        sha256: binary.sha256.clone(),
        size: binary.size,
        machine: Some(binary.elf.machine),
    };
    if args.check {
        return super::check::check(global, &inputs, &plan, source, args.target.json, out);
    }
    let pauses = inputs.spec.canary.then == CanaryThen::Pause
        && plan.waves.first().is_some_and(|w| w.canary)
        && plan.waves.len() > 1;
    let asking = if args.yes {
        Asking::Answered
    } else {
        Asking::stdin()
    };
    if pauses && asking == Asking::NoTerminal {
        return Err(Error::Invalid(
            "the spec pauses for the operator after the canary (canary.then: pause), but there is no terminal to ask: give --yes, or set canary.then to a duration or continue".into(),
        ));
    }
    let ctl = RunControls {
        json: args.target.json,
        journal: args.journal.clone(),
        canary: if args.yes {
            CanaryPause::Skip
        } else {
            CanaryPause::Ask
        },
        windows: if args.ignore_windows {
            WindowPolicy::Ignore
        } else {
            WindowPolicy::Respect
        },
        binary: Some((binary.path.display().to_string(), binary.sha256.clone())),
        parallel: None,
    };
    run_rollout(global, &inputs, &plan, Job::Roll(source), &ctl, out)
}

/// What `rollback` does before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Consent {
    Go,
    Ask,
    Refuse,
}

/// `rollback` takes one host back without asking; more only with `--yes` or a `y` on the
/// terminal. Without either it refuses before anything is contacted, as `roll` does when its
/// spec would pause after the canary.
fn rollback_consent(asking: Asking, hosts: usize) -> Consent {
    match asking {
        _ if hosts <= 1 => Consent::Go,
        Asking::Answered => Consent::Go,
        Asking::Terminal => Consent::Ask,
        Asking::NoTerminal => Consent::Refuse,
    }
}

/// The first 16 hex digits of a sha256, as the host's backups are named.
fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(16)]
}

/// `rollback`: the selected hosts that run the binary, back one version in their record, in
/// the same waves; more than one host only once confirmed.
pub(super) fn rollback(
    global: &GlobalArgs,
    args: &RollbackArgs,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    // A rollback goes back to a version the hosts ran: one wave, no canary to find or size.
    let inputs = inputs::load(&args.target.input)?;
    let mut spec = inputs.spec.clone();
    spec.canary.hosts = CanaryHosts::Amount(Amount::Count(0));
    let plan = plan_for(&inputs, &spec, &args.target, None)?.all_at_once();
    let from = match (
        &args.binary,
        inputs.spec.binary.as_ref().and_then(|b| b.sha256.clone()),
    ) {
        (None, Some(sha)) => sha.to_string(),
        (cli, _) => inputs::binary(cli.as_deref(), &inputs.spec)?.sha256,
    };
    let asking = if args.yes {
        Asking::Answered
    } else {
        Asking::stdin()
    };
    let hosts = plan.hosts.len();
    match rollback_consent(asking, hosts) {
        Consent::Go => {}
        Consent::Refuse => {
            return Err(Error::Invalid(format!(
                "rollback asks before taking back more than one host ({hosts} selected), but there is no terminal to ask: give --yes, or --limit it to one host"
            )));
        }
        Consent::Ask => {
            let question = format!(
                "roll back up to {hosts} hosts (those that run {})?",
                short(&from)
            );
            if !confirm(&question)? {
                writeln!(out, "nothing changed").map_err(Error::Output)?;
                return Ok(Exit::Failed);
            }
        }
    }
    let ctl = RunControls {
        json: args.target.json,
        journal: args.journal.clone(),
        canary: CanaryPause::Skip,
        windows: if args.ignore_windows {
            WindowPolicy::Ignore
        } else {
            WindowPolicy::Respect
        },
        binary: None,
        parallel: args.parallel,
    };
    run_rollout(
        global,
        &inputs,
        &plan,
        Job::Rollback { from_sha256: from },
        &ctl,
        out,
    )
}

struct RunControls {
    json: bool,
    journal: Option<std::path::PathBuf>,
    canary: CanaryPause,
    windows: WindowPolicy,
    binary: Option<(String, String)>,
    parallel: Option<std::num::NonZeroUsize>,
}

fn run_rollout(
    global: &GlobalArgs,
    inputs: &Inputs,
    plan: &Plan,
    job: Job,
    ctl: &RunControls,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    // Host key trust is judged before anything is written or connected.
    let Connecting {
        transport,
        mut keys,
        env,
    } = connect_setup(global, &inputs.spec, &hosts_of(inputs, &plan.hosts))?;
    let run_id = format!(
        "{}-{:06x}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>() & 0xff_ffff
    );
    let journal_path = ctl
        .journal
        .clone()
        .unwrap_or_else(|| crate::report::journal::default_path(&run_id));
    let journal = Journal::create(&journal_path).map_err(|source| Error::Journal {
        path: journal_path.clone(),
        source,
    })?;
    let display = Display::choose(if ctl.json {
        DisplayAsk::Json
    } else if global.quiet {
        DisplayAsk::Quiet
    } else {
        DisplayAsk::Auto {
            terminal: if std::io::stderr().is_terminal() {
                Terminal::Yes
            } else {
                Terminal::No
            },
            verbose: if verbosity(global) == Verbosity::Off {
                Verbose::Off
            } else {
                Verbose::On
            },
        }
    });
    let owner = format!(
        "ngfleet run {run_id} pid {} on {}",
        std::process::id(),
        controller_host()
    );
    let config = RunConfig::resolve(
        &inputs.spec,
        plan.max_failed,
        Controls {
            job,
            canary_pause: ctl.canary,
            windows: ctl.windows,
            display,
            parallel: ctl.parallel,
            forks: std::num::NonZeroUsize::new(usize::from(global.forks))
                .unwrap_or(std::num::NonZeroUsize::MIN),
            run_id: run_id.clone(),
            owner,
        },
    );
    let reporter = Reporter::new(Some(journal), config.display);
    let journal_text = journal_path.display().to_string();
    if config.display != Display::Json {
        eprintln!("journal: {journal_text}");
    }
    reporter.emit(RolloutEvent::RunStarted {
        run_id: run_id.clone(),
        command: config.kind(),
        spec: inputs.spec.name.clone().unwrap_or_else(|| "rollout".into()),
        spec_file: inputs.spec_file.as_ref().map(|p| p.display().to_string()),
        binary: ctl.binary.as_ref().map(|b| b.0.clone()),
        binary_sha256: ctl.binary.as_ref().map(|b| b.1.clone()),
        hosts: plan.hosts.len(),
        waves: plan.waves.len(),
        journal: journal_text.clone(),
    });
    let gates = SpecGates::of(&inputs.spec);
    let source = config.job.source();
    let slots = Slots::new(&inputs.inventory, &env, &plan.hosts);
    let events = slots.events(&reporter);
    let executor = SshExecutor {
        inventory: &inputs.inventory,
        slots: &slots,
        transport: &transport,
        gate: &gates,
        config: &config,
        source: &source,
        events: &events,
        prepared: Default::default(),
        leaving: Default::default(),
    };
    let names = |h: usize| inputs.inventory.host(h).name.clone();
    let operator = TerminalOperator { sink: &reporter };
    let dispatcher = Dispatcher {
        config: &config,
        plan,
        names: &names,
        executor: &executor,
        sink: &reporter,
        operator: &operator,
        clock: &SystemClock,
    };
    let runtime = runtime()?;
    let end = runtime.block_on(async {
        let end = keys
            .show_while(dispatcher.run(signals::listen()), |key| {
                reporter.emit(RolloutEvent::from(key));
            })
            .await;
        // Locks are released off the critical path; the run ends when they all are (each
        // release is bounded by a heartbeat interval; a dead link's close too).
        let _ = tokio::time::timeout(SETTLE_LIMIT, executor.settle()).await;
        end
    });
    // Hosts abandoned by a second interrupt may still hold tasks: do not wait for them.
    runtime.shutdown_background();
    reporter.finish();
    let (result, exit) = crate::rollout::policy::result(end.stopped, end.tally);
    reporter.emit(RolloutEvent::Summary {
        result: result.to_owned(),
        hosts: end.summary.clone(),
        journal: journal_text.clone(),
    });
    if config.display != Display::Json {
        let text = crate::report::summary::text(result, &end, &inputs.inventory, &journal_text);
        out.write_all(text.as_bytes()).map_err(Error::Output)?;
    }
    if let Some(e) = reporter.journal_error() {
        eprintln!("warning: {e}");
    }
    Ok(exit)
}

/// The controller's host name, for the lock and the record: the kernel's, else `$HOSTNAME`
/// (which most shells do not export), else `controller`.
fn controller_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "controller".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_asks_before_taking_back_more_than_one_host() {
        let cases = [
            (Asking::Answered, 5, Consent::Go),
            (Asking::Terminal, 5, Consent::Ask),
            (Asking::NoTerminal, 5, Consent::Refuse),
            (Asking::Terminal, 2, Consent::Ask),
            (Asking::NoTerminal, 1, Consent::Go),
            (Asking::Terminal, 1, Consent::Go),
            (Asking::NoTerminal, 0, Consent::Go),
        ];
        for (asking, hosts, consent) in cases {
            assert_eq!(
                rollback_consent(asking, hosts),
                consent,
                "{asking:?} {hosts}"
            );
        }
    }
}
