//! `ngfleet status`: connect to every selected host and show what it runs (read-only).

use std::io::Write;

use super::{Connecting, connect_setup, hosts_of, load_selected, runtime, verbosity};
use crate::cli::{GlobalArgs, TargetArgs};
use crate::error::{Error, Exit};
use crate::host::classify::HostState;
use crate::report;
use crate::ssh::Verbosity;
use crate::status::{self, Limits, Progress};

/// Observes every selected host; exit 1 when any is unreachable or not steady.
pub(super) fn show_status(
    global: &GlobalArgs,
    args: &TargetArgs,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let (inputs, selected) = load_selected(&args.input, args.limit.as_deref())?;
    let hosts = hosts_of(&inputs, &selected);
    let Connecting {
        transport,
        mut keys,
        env,
    } = connect_setup(global, &inputs.spec, &hosts)?;
    // `-v` writes each command on stderr, where the bar would draw over it.
    let progress = if global.quiet || args.json || verbosity(global) > Verbosity::Off {
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
        &mut keys,
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
        .all(|s| matches!(s.state, HostState::Steady | HostState::Draining(_)));
    Ok(if all_steady {
        Exit::Success
    } else {
        Exit::Failed
    })
}
