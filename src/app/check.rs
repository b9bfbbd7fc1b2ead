//! `ngfleet roll --check`: every selected host prepared (at `--forks` at once) and let go
//! again; what the roll would do on each, and an exit code that says whether it would go
//! through.

use std::io::Write;
use std::num::NonZeroUsize;

use futures::StreamExt;

use super::{Connecting, connect_setup, hosts_of, runtime};
use crate::cli::GlobalArgs;
use crate::error::{Error, Exit};
use crate::gate::runner::SpecGates;
use crate::host::upgrade::Source;
use crate::inputs::Inputs;
use crate::plan::Plan;
use crate::report;
use crate::report::live::Reporter;
use crate::rollout::check::{self, Verdict};
use crate::rollout::config::{CanaryPause, Controls, Display, Job, RunConfig, WindowPolicy};
use crate::rollout::executor::{Slots, SshExecutor};

pub(super) fn check(
    global: &GlobalArgs,
    inputs: &Inputs,
    plan: &Plan,
    source: Source,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let Connecting {
        transport,
        mut keys,
        env,
    } = connect_setup(global, &inputs.spec, &hosts_of(inputs, &plan.hosts))?;
    let forks = NonZeroUsize::new(usize::from(global.forks)).unwrap_or(NonZeroUsize::MIN);
    let config = RunConfig::resolve(
        &inputs.spec,
        plan.max_failed,
        Controls {
            job: Job::Roll(source.clone()),
            canary_pause: CanaryPause::Skip,
            windows: WindowPolicy::Ignore,
            display: Display::Quiet,
            parallel: None,
            forks,
            run_id: "check".into(),
            owner: format!("ngfleet roll --check pid {}", std::process::id()),
        },
    );
    let gates = SpecGates::of(&inputs.spec);
    // Step events are not shown: the verdicts are the output.
    let quiet = Reporter::new(None, Display::Quiet);
    let slots = Slots::new(&inputs.inventory, &env, &plan.hosts);
    let events = slots.events(&quiet);
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
    let runtime = runtime()?;
    let verdicts: Vec<(String, Verdict)> = runtime.block_on(async {
        let all = futures::stream::iter(plan.hosts.iter().copied())
            .map(|h| {
                let executor = &executor;
                async move {
                    let name = inputs.inventory.host(h).name.clone();
                    (name, executor.check(h).await)
                }
            })
            .buffered(forks.get())
            .collect::<Vec<_>>();
        keys.show_while(all, |key| {
            eprintln!("{}", report::host_keys::recorded_key(&key));
        })
        .await
    });
    let text = if json {
        report::check::json(&verdicts) + "\n"
    } else {
        report::check::text(&verdicts)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(check::exit(&verdicts))
}
