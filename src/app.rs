//! Runs a parsed command line: loads the inputs, calls the core, prints the result.
//! One function per subcommand; each returns the [`Exit`] it ends with.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, Command, GlobalArgs, InputArgs, PlanArgs, TargetArgs};
use crate::error::{Error, Exit};
use crate::fleet::ControllerEnv;
use crate::inputs::{self, InputError, Inputs};
use crate::model::diagnostic::Diagnostics;
use crate::model::pattern::Pattern;
use crate::plan::{self, Plan};
use crate::report;
use crate::ssh::{Credentials, HostKeyPolicy, Transport, TransportConfig};
use crate::status::{self, Limits, Progress};

/// Runs one command, writing its normal output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Exit, Error> {
    match cli.command {
        Command::Validate(args) => validate(&args, out),
        Command::Plan(args) => show_plan(&args, out),
        Command::Status(args) => show_status(&cli.global, &args, out),
        Command::Roll(_) => Err(Error::NotYetAvailable("roll")),
        Command::Rollback(_) => Err(Error::NotYetAvailable("rollback")),
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
    let mut out: Vec<String> = Vec::new();
    let all: Vec<_> = inputs
        .spec
        .pre
        .iter()
        .chain(&inputs.spec.gates)
        .cloned()
        .collect();
    for &h in hosts {
        let host = inputs.inventory.host(h);
        for p in crate::model::gate::host_problems(&all, host) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        for p in inputs::local_gate_problems(&all, host) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
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

/// `status`: observe every selected host; exit 1 when any is unreachable or not steady.
fn show_status(global: &GlobalArgs, args: &TargetArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let inputs = inputs::load(&args.input)?;
    let limit = args
        .limit
        .as_deref()
        .map(str::parse::<Pattern>)
        .transpose()?;
    let selected = plan::select(&inputs.inventory, &inputs.spec, limit.as_ref())?;
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
    let all_steady = statuses
        .iter()
        .all(|s| s.state == crate::host::classify::HostState::Steady);
    Ok(if all_steady {
        Exit::Success
    } else {
        Exit::Failed
    })
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Error {
        Error::Input(InputError::Invalid(d))
    }
}
