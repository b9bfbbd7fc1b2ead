//! `ngfleet unlock`: show each selected host's lock and its holder; break the held ones once
//! confirmed.

use std::io::Write;

use super::{Asking, Connecting, confirm, connect_setup, hosts_of, load_selected, runtime};
use crate::cli::{GlobalArgs, UnlockArgs};
use crate::error::{Error, Exit};
use crate::unlock;

/// Breaks the held locks once confirmed (`--yes`, or `y` on the terminal). Exit 1 when a held
/// lock stays held or a host cannot be read; exit 2, before contacting anything, without
/// `--yes` or a terminal.
pub(super) fn unlock(
    global: &GlobalArgs,
    args: &UnlockArgs,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let asking = if args.yes {
        Asking::Answered
    } else {
        Asking::stdin()
    };
    if asking == Asking::NoTerminal {
        return Err(Error::Invalid(
            "unlock breaks locks only when confirmed, but there is no terminal to ask: give --yes"
                .into(),
        ));
    }
    let (inputs, selected) = load_selected(&args.input, args.limit.as_deref())?;
    let hosts = hosts_of(&inputs, &selected);
    let Connecting {
        transport,
        mut keys,
        env,
    } = connect_setup(global, &inputs.spec, &hosts)?;
    let deadline = inputs.spec.timeouts.command.get();
    let forks = usize::from(global.forks);
    let rt = runtime()?;
    let found = rt.block_on(keys.show_while(
        unlock::inspect(hosts, &env, &transport, deadline, forks),
        |key| eprintln!("{}", crate::report::host_keys::recorded_key(&key)),
    ));
    out.write_all(unlock::listing(&found).as_bytes())
        .map_err(Error::Output)?;
    let held = found.iter().filter(|f| f.is_held()).count();
    let unread = found.iter().filter(|f| f.state.is_err()).count();
    let confirmed =
        held > 0 && (asking == Asking::Answered || confirm(&format!("break {held} lock(s)?"))?);
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
