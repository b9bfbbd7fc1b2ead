//! Running the probe on a host: one round trip that returns an [`Observation`]. Shared by
//! `status` and the upgrade procedure.

use std::time::Duration;

pub use super::observe::Depth;
use super::observe::{self, Observation, PROBE_SCRIPT};
use super::remote::Remote;
use crate::model::inventory::Host;
use crate::ssh::{ExecOutput, RemoteCommand, SshError};

/// The probe as a remote command for a host.
pub fn command(host: &Host, depth: Depth) -> RemoteCommand {
    RemoteCommand::script(PROBE_SCRIPT, args(host, depth))
        .privileged()
        .labelled("probe")
}

/// The probe's arguments for a host: pid file, binary, depth.
pub fn args(host: &Host, depth: Depth) -> [String; 3] {
    [
        host.nginx.pid_file.as_str().to_owned(),
        host.nginx.binary.as_str().to_owned(),
        depth.word().to_owned(),
    ]
}

/// Why a probe gave no observation.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("probe failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("failed to read the probe output: {0}")]
    Output(observe::ObserveError),
}

/// Runs the probe and parses what it printed.
pub async fn run(
    remote: &dyn Remote,
    host: &Host,
    depth: Depth,
    deadline: Duration,
) -> Result<Observation, ProbeError> {
    let out = remote.exec(&command(host, depth), deadline).await?;
    parse_output(&out)
}

/// Judges the probe's output.
pub fn parse_output(out: &ExecOutput) -> Result<Observation, ProbeError> {
    if !out.success() {
        return Err(ProbeError::Failed {
            status: out.status.to_string(),
            stderr: out.stderr_lossy().trim().to_owned(),
        });
    }
    observe::parse(&out.stdout_lossy()).map_err(ProbeError::Output)
}
