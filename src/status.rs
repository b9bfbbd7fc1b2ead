//! `ngfleet status`: connect to every selected host (bounded by `--forks`), run the probe in
//! one round trip, classify what it saw. Read-only: nothing on a host is changed.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fleet::{ControllerEnv, for_each_bounded};
use crate::host::classify::{HostState, classify};
use crate::host::observe::{self, Observation, PROBE_SCRIPT};
use crate::model::inventory::Host;
use crate::ssh::{RemoteCommand, Transport};

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

/// How much the probe looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Everything, checksums and versions included.
    Full,
    /// Pid files, processes and files only: for polling while a step waits.
    Quick,
}

/// The probe as a remote command for a host.
pub fn probe_command(host: &Host, depth: Depth) -> RemoteCommand {
    let mode = match depth {
        Depth::Full => "full",
        Depth::Quick => "quick",
    };
    RemoteCommand::script(
        PROBE_SCRIPT,
        [
            host.nginx.pid_file.as_str().to_owned(),
            host.nginx.binary.as_str().to_owned(),
            mode.to_owned(),
        ],
    )
    .privileged()
    .labelled("probe")
}

/// Observes every host; results in the order given.
pub async fn status(
    hosts: Vec<&Host>,
    env: &ControllerEnv,
    transport: &Transport,
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
    let results = for_each_bounded(hosts, forks, |host| {
        let bar = bar.clone();
        async move {
            let result = observe_host(host, env, transport, limits).await;
            bar.inc(1);
            bar.set_message(format!("{} {}", result.name, result.state.name()));
            result
        }
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
    let output = session
        .exec(&probe_command(host, Depth::Full), limits.command)
        .await;
    session.close().await;
    let output = match output {
        Ok(o) => o,
        Err(e) => return failed(e.to_string()),
    };
    if !output.success() {
        return failed(format!(
            "{}: probe failed ({}): {}",
            host.name,
            output.status,
            output.stderr_lossy().trim()
        ));
    }
    match observe::parse(&output.stdout_lossy()) {
        Ok(obs) => HostStatus {
            name: host.name.clone(),
            endpoint,
            state: classify(&obs),
            observation: Some(obs),
            error: None,
        },
        Err(e) => failed(format!(
            "{}: failed to read the probe output: {e}",
            host.name
        )),
    }
}
