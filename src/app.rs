//! Runs a parsed command line: loads the inputs, calls the core, prints the result.
//! One function per subcommand; each returns the [`Exit`] it ends with.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{
    Cli, Command, GlobalArgs, InputArgs, PlanArgs, RollArgs, RollbackArgs, TargetArgs, UnlockArgs,
};
use crate::error::{Error, Exit};
use crate::fleet::ControllerEnv;
use crate::inputs::{self, InputError, Inputs};
use crate::model::diagnostic::Diagnostics;
use crate::model::pattern::Pattern;
use crate::plan::{self, Plan};
use crate::report;
use crate::ssh::{Credentials, HostKeyPolicy, Transport, TransportConfig};
use crate::status::{self, Limits, Progress};
use crate::unlock;
use std::io::IsTerminal;
use std::sync::Arc;

use crate::gate::runner::SpecGates;
use crate::host::upgrade::Source;
use crate::model::spec::CanaryThen;
use crate::report::events::RolloutEvent;
use crate::report::journal::Journal;
use crate::report::live::{Display, Reporter};
use crate::rollout::dispatch::{CanaryPause, Dispatcher, Job, WindowPolicy};
use crate::rollout::stop::Stop;

/// Runs one command, writing its normal output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Exit, Error> {
    match cli.command {
        Command::Validate(args) => validate(&args, out),
        Command::Plan(args) => show_plan(&args, out),
        Command::Status(args) => show_status(&cli.global, &args, out),
        Command::Roll(args) => roll(&cli.global, &args, out),
        Command::Rollback(args) => rollback(&cli.global, &args, out),
        Command::Unlock(args) => unlock(&cli.global, &args, out),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ngfleet", out);
            Ok(Exit::Success)
        }
        Command::ProbeScript => {
            out.write_all(crate::host::observe::PROBE_SCRIPT.as_bytes())
                .map_err(Error::Output)?;
            Ok(Exit::Success)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(out)
                .map_err(Error::Output)?;
            Ok(Exit::Success)
        }
    }
}

/// `validate`: both files, the selection, the plan and the binary; every problem at once.
fn validate(args: &InputArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let inputs = inputs::load(args)?;
    let mut problems = Vec::new();
    match plan::plan(&inputs.inventory, &inputs.spec, None, 0) {
        Err(e) => problems.push(format!("{}: {e}", spec_name(&inputs))),
        Ok(plan) => problems.extend(
            gate_problems(&inputs, &plan.hosts)
                .into_iter()
                .map(|p| format!("{}: {p}", spec_name(&inputs))),
        ),
    }
    if inputs.spec.binary.is_some()
        && let Err(e) = inputs::binary(None, &inputs.spec)
    {
        problems.push(format!("{}: {e}", spec_name(&inputs)));
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems.join("\n")));
    }
    writeln!(
        out,
        "{}: {} hosts in {} groups; {}: valid",
        inputs.inventory.file(),
        inputs.inventory.hosts().len(),
        inputs.inventory.group_count(),
        spec_name(&inputs),
    )
    .map_err(Error::Output)?;
    Ok(Exit::Success)
}

/// Gates that cannot run on some selected host (a missing variable, a bad URL, a `local`
/// program that does not exist), each named once.
fn gate_problems(inputs: &Inputs, hosts: &[usize]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let all: Vec<_> = inputs
        .spec
        .pre
        .iter()
        .chain(&inputs.spec.gates)
        .cloned()
        .collect();
    for &h in hosts {
        let host = inputs.inventory.host(h);
        out.extend(crate::model::gate::host_problems(&all, host));
        out.extend(inputs::local_gate_problems(&all, host));
    }
    out.into_iter().collect()
}

fn spec_name(inputs: &Inputs) -> String {
    inputs
        .spec_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "default spec".to_owned())
}

/// Loads the inputs and makes the plan every host-facing command starts from.
pub fn load_plan(target: &TargetArgs, seed: Option<u64>) -> Result<(Inputs, Plan), Error> {
    let inputs = inputs::load(&target.input)?;
    let limit = target
        .limit
        .as_deref()
        .map(str::parse::<Pattern>)
        .transpose()?;
    let seed = seed
        .or(inputs.spec.seed)
        .unwrap_or_else(rand::random::<u64>);
    let plan = plan::plan(&inputs.inventory, &inputs.spec, limit.as_ref(), seed)?;
    Ok((inputs, plan))
}

/// `plan`: the waves, as text or JSON.
fn show_plan(args: &PlanArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let (inputs, plan) = load_plan(&args.target, args.seed)?;
    let text = if args.target.json {
        report::plan::json(&plan, &inputs.inventory) + "\n"
    } else {
        report::plan::text(
            &plan,
            &inputs.inventory,
            &inputs.spec,
            jiff::Timestamp::now(),
        )
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(Exit::Success)
}

/// The transport and controller environment for a run.
fn connect_setup(
    global: &GlobalArgs,
    spec: &crate::model::spec::Spec,
) -> (Transport, ControllerEnv) {
    let policy = if global.accept_new {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let config = TransportConfig {
        connect_timeout: spec.timeouts.connect.get(),
        ..TransportConfig::default()
    };
    let transport = Transport::new(config, Credentials::from_env());
    let env = ControllerEnv::from_process(global.known_hosts.clone(), policy);
    (transport, env)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// The inputs, and the hosts the spec's `hosts` and `--limit` select.
fn load_selected(
    input: &crate::cli::InputArgs,
    limit: Option<&str>,
) -> Result<(inputs::Inputs, Vec<usize>), Error> {
    let inputs = inputs::load(input)?;
    let limit = limit.map(str::parse::<Pattern>).transpose()?;
    let selected = plan::select(&inputs.inventory, &inputs.spec, limit.as_ref())?;
    Ok((inputs, selected))
}

/// `status`: observe every selected host; exit 1 when any is unreachable or not steady.
fn show_status(global: &GlobalArgs, args: &TargetArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let (inputs, selected) = load_selected(&args.input, args.limit.as_deref())?;
    let hosts = selected.iter().map(|&h| inputs.inventory.host(h)).collect();
    let (transport, env) = connect_setup(global, &inputs.spec);
    let progress = if global.quiet || args.json {
        Progress::Hidden
    } else {
        Progress::Bar
    };
    let limits = Limits {
        command: inputs.spec.timeouts.command.get(),
    };
    let statuses = runtime()?.block_on(status::status(
        hosts,
        &env,
        &transport,
        limits,
        usize::from(global.forks),
        progress,
    ));
    let text = if args.json {
        report::status::json(&statuses) + "\n"
    } else {
        report::status::text(&statuses)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    let all_steady = statuses.iter().all(|s| {
        matches!(
            s.state,
            crate::host::classify::HostState::Steady
                | crate::host::classify::HostState::Draining(_)
        )
    });
    Ok(if all_steady {
        Exit::Success
    } else {
        Exit::Failed
    })
}

/// `unlock`: show each selected host's lock and its holder; break the held ones once
/// confirmed (`--yes`, or `y` on the terminal). Exit 1 when a held lock stays held or a host
/// cannot be read; exit 2, before contacting anything, without `--yes` or a terminal.
fn unlock(global: &GlobalArgs, args: &UnlockArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(Error::Invalid(
            "unlock breaks locks only when confirmed, but there is no terminal to ask: give --yes"
                .into(),
        ));
    }
    let (inputs, selected) = load_selected(&args.input, args.limit.as_deref())?;
    let hosts = selected.iter().map(|&h| inputs.inventory.host(h)).collect();
    let (transport, env) = connect_setup(global, &inputs.spec);
    let deadline = inputs.spec.timeouts.command.get();
    let forks = usize::from(global.forks);
    let rt = runtime()?;
    let found = rt.block_on(unlock::inspect(hosts, &env, &transport, deadline, forks));
    out.write_all(unlock::listing(&found).as_bytes())
        .map_err(Error::Output)?;
    let held = found.iter().filter(|f| f.is_held()).count();
    let unread = found.iter().filter(|f| f.state.is_err()).count();
    let confirmed = held > 0 && (args.yes || confirm(held)?);
    let broken = if confirmed {
        rt.block_on(unlock::break_held(&found, deadline, forks))
    } else {
        Vec::new()
    };
    rt.block_on(unlock::close(found));
    if held > 0 && !confirmed {
        writeln!(out, "nothing changed").map_err(Error::Output)?;
    }
    out.write_all(unlock::results(&broken).as_bytes())
        .map_err(Error::Output)?;
    let all_broken = broken.len() == held && broken.iter().all(|(_, r)| r.is_ok());
    Ok(if all_broken && unread == 0 {
        Exit::Success
    } else {
        Exit::Failed
    })
}

/// Asks on the terminal whether to break `held` locks; only `y` or `yes` says so.
fn confirm(held: usize) -> Result<bool, Error> {
    eprint!("break {held} lock(s)? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::Prompt)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// `roll`: the rollout.
fn roll(global: &GlobalArgs, args: &RollArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let (inputs, plan) = load_plan(&args.target, args.seed)?;
    check_gates(&inputs, &plan)?;
    let binary = inputs::binary(args.binary.as_deref(), &inputs.spec)?;
    let pauses = inputs.spec.canary.then == CanaryThen::Pause
        && plan.waves.first().is_some_and(|w| w.canary)
        && plan.waves.len() > 1;
    if pauses && !args.yes && !std::io::stdin().is_terminal() {
        return Err(Error::Invalid(
            "the spec pauses for the operator after the canary (canary.then: pause), but there is no terminal to ask: give --yes, or set canary.then to a duration or continue".into(),
        ));
    }
    let source = Source::Local {
        path: binary.path.clone(),
        sha256: binary.sha256.clone(),
        size: binary.size,
    };
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
        command: "roll",
        binary: Some((binary.path.display().to_string(), binary.sha256.clone())),
    };
    run_rollout(global, &inputs, &plan, Job::Roll(source), &ctl, out)
}

/// `rollback`: the selected hosts back to their backup binary, in the same waves.
fn rollback(global: &GlobalArgs, args: &RollbackArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let (inputs, plan) = load_plan(&args.target, None)?;
    let from = match (
        &args.binary,
        inputs.spec.binary.as_ref().and_then(|b| b.sha256.clone()),
    ) {
        (None, Some(sha)) => sha.to_string(),
        (cli, _) => inputs::binary(cli.as_deref(), &inputs.spec)?.sha256,
    };
    let ctl = RunControls {
        json: args.target.json,
        journal: args.journal.clone(),
        canary: CanaryPause::Skip,
        windows: if args.ignore_windows {
            WindowPolicy::Ignore
        } else {
            WindowPolicy::Respect
        },
        command: "rollback",
        binary: None,
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

fn check_gates(inputs: &Inputs, plan: &Plan) -> Result<(), Error> {
    let problems = gate_problems(inputs, &plan.hosts);
    if problems.is_empty() {
        Ok(())
    } else {
        let name = spec_name(inputs);
        Err(Error::Invalid(
            problems
                .iter()
                .map(|p| format!("{name}: {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }
}

struct RunControls {
    json: bool,
    journal: Option<std::path::PathBuf>,
    canary: CanaryPause,
    windows: WindowPolicy,
    command: &'static str,
    binary: Option<(String, String)>,
}

fn run_rollout(
    global: &GlobalArgs,
    inputs: &Inputs,
    plan: &Plan,
    job: Job,
    ctl: &RunControls,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
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
    let display = if ctl.json {
        Display::Json
    } else if global.quiet {
        Display::Quiet
    } else if std::io::stderr().is_terminal() {
        Display::Bars
    } else {
        Display::Lines
    };
    let reporter = Reporter::new(Some(journal), display);
    let journal_text = journal_path.display().to_string();
    if display != Display::Json {
        eprintln!("journal: {journal_text}");
    }
    reporter.emit(RolloutEvent::RunStarted {
        run_id: run_id.clone(),
        command: ctl.command.to_owned(),
        spec: inputs.spec.name.clone().unwrap_or_else(|| "rollout".into()),
        spec_file: inputs.spec_file.as_ref().map(|p| p.display().to_string()),
        binary: ctl.binary.as_ref().map(|b| b.0.clone()),
        binary_sha256: ctl.binary.as_ref().map(|b| b.1.clone()),
        hosts: plan.hosts.len(),
        waves: plan.waves.len(),
        journal: journal_text.clone(),
    });
    let (transport, env) = connect_setup(global, &inputs.spec);
    let gates = SpecGates::new(
        inputs.spec.pre.clone(),
        inputs.spec.gates.clone(),
        inputs.spec.soak.get(),
    );
    let stop = Arc::new(Stop::default());
    let owner = format!(
        "ngfleet run {run_id} pid {} on {}",
        std::process::id(),
        std::env::var("HOSTNAME").unwrap_or_else(|_| "controller".into())
    );
    let dispatcher = Dispatcher {
        inventory: &inputs.inventory,
        spec: &inputs.spec,
        plan,
        job,
        transport: &transport,
        env: &env,
        gate: &gates,
        reporter: &reporter,
        stop: Arc::clone(&stop),
        owner,
        run_id: run_id.clone(),
        canary_pause: ctl.canary,
        windows: ctl.windows,
    };
    let end = runtime()?.block_on(async {
        crate::rollout::stop::watch_signals(Arc::clone(&stop));
        dispatcher.run().await
    });
    reporter.finish();
    let (result, exit) = crate::rollout::policy::result(end.stopped, end.tally);
    reporter.emit(RolloutEvent::Summary {
        result: result.to_owned(),
        hosts: end.summary.clone(),
        journal: journal_text.clone(),
    });
    if display != Display::Json {
        let text = crate::report::summary::text(result, &end, &inputs.inventory, &journal_text);
        out.write_all(text.as_bytes()).map_err(Error::Output)?;
    }
    if let Some(e) = reporter.journal_error() {
        eprintln!("warning: {e}");
    }
    Ok(exit)
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Error {
        Error::Input(InputError::Invalid(d))
    }
}
