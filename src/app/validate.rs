//! `ngfleet validate`: both files, the selection, the plan, the gates and the binary; every
//! problem at once. Also the gate check `roll` makes before it starts.

use std::io::Write;

use super::{controller_env, hosts_of, spec_name};
use crate::cli::{GlobalArgs, ValidateArgs};
use crate::error::{Error, Exit};
use crate::inputs::{self, Inputs};
use crate::plan::{self, Plan};

/// `validate`: exit 0 with a summary (and the binary's ELF class, machine, size and sha256),
/// or exit 2 with every problem.
pub(super) fn validate(
    global: &GlobalArgs,
    args: &ValidateArgs,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let inputs = inputs::load(&args.input)?;
    let name = spec_name(&inputs);
    let mut problems = Vec::new();
    match plan::plan(&inputs.inventory, &inputs.spec, None, 0) {
        Err(e) => problems.push(format!("{name}: {e}")),
        Ok(plan) => {
            problems.extend(
                gate_problems(&inputs, &plan.hosts)
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            );
            let hosts = hosts_of(&inputs, &plan.hosts);
            match controller_env(global, &hosts) {
                Err(e) => problems.push(e.to_string()),
                Ok(env) => {
                    if let Err(e) = crate::fleet::check_trust(&env, &hosts) {
                        problems.push(format!("{}: {e}", inputs.inventory.file()));
                    }
                }
            }
        }
    }
    let binary = match (&args.binary, &inputs.spec.binary) {
        (None, None) => None,
        (cli, _) => match inputs::binary(cli.as_deref(), &inputs.spec) {
            Ok(binary) => Some(binary),
            Err(e) if cli.is_some() => {
                problems.push(e.to_string());
                None
            }
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(Error::Invalid(problems.join("\n")));
    }
    writeln!(
        out,
        "{}: {} hosts in {} groups; {name}: valid",
        inputs.inventory.file(),
        inputs.inventory.hosts().len(),
        inputs.inventory.group_count(),
    )
    .map_err(Error::Output)?;
    if let Some(binary) = binary {
        writeln!(out, "binary: {binary}").map_err(Error::Output)?;
    }
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

/// The gates of the plan's hosts must all be able to run (exit 2 before anything starts).
pub(super) fn check_gates(inputs: &Inputs, plan: &Plan) -> Result<(), Error> {
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
