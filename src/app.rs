//! Runs a parsed command line: loads the inputs, calls the core, prints the result.
//! One module per subcommand, each returning the [`Exit`] it ends with; shared here: loading
//! the inputs and the plan, the transport, the runtime, and asking the operator.

mod check;
mod inventory;
mod plan;
mod rollout;
mod status;
mod unlock;
mod validate;

use std::io::{IsTerminal, Write};

use clap::CommandFactory;

use crate::cli::{Cli, Command, GlobalArgs, TargetArgs};
use crate::error::{Error, Exit};
use crate::fleet::{self, ControllerEnv};
use crate::inputs::{self, InputError, Inputs};
use crate::model::diagnostic::Diagnostics;
use crate::model::inventory::Host;
use crate::model::pattern::Pattern;
use crate::model::spec::Spec;
use crate::plan::Plan;
use crate::report;
use crate::ssh::{
    BECOME_PASSWORD_ENV, BecomePassword, Credentials, HostKeyPolicy, RecordedKeys, Transport,
    TransportConfig, Verbosity,
};

/// Runs one command, writing its normal output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Exit, Error> {
    match cli.command {
        Command::Validate(args) => validate::validate(&cli.global, &args, out),
        Command::Plan(args) => plan::show_plan(&args, out),
        Command::Status(args) => status::show_status(&cli.global, &args, out),
        Command::Roll(args) => rollout::roll(&cli.global, &args, out),
        Command::Rollback(args) => rollout::rollback(&cli.global, &args, out),
        Command::Unlock(args) => unlock::unlock(&cli.global, &args, out),
        Command::Inventory(args) => inventory::show_inventory(&args, out),
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

fn spec_name(inputs: &Inputs) -> String {
    inputs
        .spec_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "default spec".to_owned())
}

/// Loads the inputs and makes the plan every host-facing command starts from.
fn load_plan(target: &TargetArgs, seed: Option<u64>) -> Result<(Inputs, Plan), Error> {
    let inputs = inputs::load(&target.input)?;
    let plan = plan_for(&inputs, &inputs.spec, target, seed)?;
    Ok((inputs, plan))
}

/// The plan of `spec` over the inputs' inventory, narrowed by `--limit`.
fn plan_for(
    inputs: &Inputs,
    spec: &Spec,
    target: &TargetArgs,
    seed: Option<u64>,
) -> Result<Plan, Error> {
    let limit = target
        .limit
        .as_deref()
        .map(str::parse::<Pattern>)
        .transpose()?;
    let seed = seed.or(spec.seed).unwrap_or_else(rand::random::<u64>);
    Ok(crate::plan::plan(
        &inputs.inventory,
        spec,
        limit.as_ref(),
        seed,
    )?)
}

/// The inputs, and the hosts the spec's `hosts` and `--limit` select.
fn load_selected(
    input: &crate::cli::InputArgs,
    limit: Option<&str>,
) -> Result<(Inputs, Vec<usize>), Error> {
    let inputs = inputs::load(input)?;
    let limit = limit.map(str::parse::<Pattern>).transpose()?;
    let selected = crate::plan::select(&inputs.inventory, &inputs.spec, limit.as_ref())?;
    Ok((inputs, selected))
}

/// What `-v` asked for.
fn verbosity(global: &GlobalArgs) -> Verbosity {
    Verbosity::from_count(global.verbose)
}

/// What the command line, the process environment and ssh_config add to `hosts`: the
/// ssh_config files they use are read (a bad one is an input error), and what of them
/// applies to these hosts but is not followed is said on stderr, each line once.
fn controller_env(global: &GlobalArgs, hosts: &[&Host]) -> Result<ControllerEnv, Error> {
    let policy = if global.accept_new {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let mut env = ControllerEnv::from_process(global.known_hosts.clone(), policy)
        .with_ssh_config(global.ssh_config.clone());
    for warning in env.read_ssh_configs(hosts)? {
        eprintln!("warning: {}: {}", warning.at, warning.message);
    }
    Ok(env)
}

fn hosts_of<'a>(inputs: &'a Inputs, selected: &[usize]) -> Vec<&'a Host> {
    selected.iter().map(|&h| inputs.inventory.host(h)).collect()
}

/// What a command that connects to hosts needs.
struct Connecting {
    transport: Transport,
    /// The keys the transport records under accept-new; the command shows each one.
    keys: RecordedKeys,
    env: ControllerEnv,
}

/// The transport and controller environment for a run on `hosts`, once their host key trust
/// is judged safe (refused before anything connects otherwise). Says once, on stderr, when
/// `StrictHostKeyChecking=no` is read as accept-new.
fn connect_setup(global: &GlobalArgs, spec: &Spec, hosts: &[&Host]) -> Result<Connecting, Error> {
    let env = controller_env(global, hosts)?;
    let trust = fleet::check_trust(&env, hosts)?;
    if !trust.read_as_accept_new.is_empty() {
        eprintln!(
            "{}",
            report::host_keys::read_as_accept_new(&trust.read_as_accept_new)
        );
    }
    if !trust.ssh_config_no.is_empty() {
        eprintln!(
            "note: StrictHostKeyChecking no in ssh_config ({}) is read as accept-new: unknown \
             host keys are recorded and shown, changed keys are refused",
            fleet::host_list(&trust.ssh_config_no)
        );
    }
    let config = TransportConfig {
        connect_timeout: spec.timeouts.connect.get(),
        verbosity: verbosity(global),
        ..TransportConfig::default()
    };
    let credentials = Credentials::from_env().with_become_password(become_password(global)?);
    let mut transport = Transport::new(config, credentials);
    let keys = transport.recorded_keys();
    Ok(Connecting {
        transport,
        keys,
        env,
    })
}

/// The sudo password for every host: asked on the terminal with `--ask-become-pass`, else
/// `NGFLEET_BECOME_PASSWORD` if set, else none (`sudo -n`). Asked before anything connects.
fn become_password(global: &GlobalArgs) -> Result<Option<BecomePassword>, Error> {
    let (text, from) = if global.ask_become_pass {
        let text = rpassword::prompt_password("BECOME password: ").map_err(Error::BecomePrompt)?;
        (text, "--ask-become-pass")
    } else {
        match std::env::var(BECOME_PASSWORD_ENV) {
            Ok(text) => (text, BECOME_PASSWORD_ENV),
            Err(_) => return Ok(None),
        }
    };
    BecomePassword::new(text)
        .map(Some)
        .map_err(|source| Error::BecomePassword { from, source })
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Whether the operator can be asked: `--yes` answered already, or a terminal to ask on, or
/// neither. Every command that would stop to ask (`roll`'s canary pause, `rollback` of more
/// than one host, `unlock`) refuses to start, exit 2, in the last case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asking {
    /// `--yes`.
    Answered,
    Terminal,
    NoTerminal,
}

impl Asking {
    /// Without `--yes`: whether stdin is a terminal to ask on.
    fn stdin() -> Asking {
        if std::io::stdin().is_terminal() {
            Asking::Terminal
        } else {
            Asking::NoTerminal
        }
    }
}

/// Asks `question` on the terminal; only `y` or `yes` says so.
fn confirm(question: &str) -> Result<bool, Error> {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::Prompt)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Error {
        Error::Input(InputError::Invalid(d))
    }
}
