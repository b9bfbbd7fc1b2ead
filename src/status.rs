//! `ngfleet status`: connect to every selected host (bounded by `--forks`), run the probe in
//! one round trip, classify what it saw. Read-only: nothing on a host is changed.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fleet::{ControllerEnv, for_each_bounded};
use crate::host::classify::{HostState, classify};
use crate::host::observe::Observation;
use crate::host::probe::{self, Depth, ProbeError};
use crate::model::inventory::Host;
use crate::report::host_keys;
use crate::ssh::{RecordedKeys, Transport};

/// One host's status line.
#[derive(Clone, Debug)]
pub struct HostStatus {
    pub name: String,
    /// `address:port` as connected to.
    pub endpoint: String,
    pub state: HostState,
    pub observation: Option<Observation>,
    /// Why the host could not be observed.
    pub error: Option<String>,
}

/// Whether to draw a progress bar on the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Bar,
    Hidden,
}

/// Time limits for one host.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub command: Duration,
}

/// Observes every host; results in the order given. Keys the transport records meanwhile
/// are printed on stderr (above the bar) as they come.
pub async fn status(
    hosts: Vec<&Host>,
    env: &ControllerEnv,
    transport: &Transport,
    keys: &mut RecordedKeys,
    limits: Limits,
    forks: usize,
    progress: Progress,
) -> Vec<HostStatus> {
    let bar = match progress {
        Progress::Bar => {
            ProgressBar::with_draw_target(Some(hosts.len() as u64), ProgressDrawTarget::stderr())
        }
        Progress::Hidden => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} status [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let observed = for_each_bounded(hosts, forks, |host| {
        let bar = bar.clone();
        async move {
            let result = observe_host(host, env, transport, limits).await;
            bar.inc(1);
            bar.set_message(format!("{} {}", result.name, result.state.name()));
            result
        }
    });
    let results = keys
        .show_while(observed, |key| {
            bar.suspend(|| eprintln!("{}", host_keys::recorded_key(&key)));
        })
        .await;
    bar.finish_and_clear();
    results
}

async fn observe_host(
    host: &Host,
    env: &ControllerEnv,
    transport: &Transport,
    limits: Limits,
) -> HostStatus {
    let target = env.target(host);
    let endpoint = format!("{}:{}", target.host, target.port);
    let failed = |error: String| HostStatus {
        name: host.name.clone(),
        endpoint: endpoint.clone(),
        state: HostState::Unreachable,
        observation: None,
        error: Some(error),
    };
    let session = match transport.connect(&target).await {
        Ok(s) => s,
        Err(e) => return failed(e.to_string()),
    };
    let observed = probe::run(&session, host, Depth::Full, limits.command).await;
    session.close().await;
    match observed {
        Ok(obs) => HostStatus {
            name: host.name.clone(),
            endpoint,
            state: classify(&obs),
            observation: Some(obs),
            error: None,
        },
        Err(ProbeError::Ssh(e)) => failed(e.to_string()),
        Err(e) => failed(format!("{}: {e}", host.name)),
    }
}
