//! The spec's gates as a [`Gate`] for the upgrade procedure: each gate tried up to `retries`
//! times, `interval` apart, each try bounded by `timeout`; a failure says which gate (as
//! expanded for the host), what it saw, and how many tries it made.
//!
//! Inventory values never reach a shell unquoted: `command` and `local` lines are expanded
//! with each value as one quoted word ([`Template::render_shell`]); URLs and hosts are parsed,
//! and an `error_log` path is a positional argument of a fixed script.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::failure::{GateFailure, Saw};
use super::http;
use crate::host::remote::Remote;
use crate::host::tunnel_ahead::Tunnel;
use crate::host::upgrade::{Gate, GateFuture, Phase};
use crate::model::gate::{BodyMatch, Check, GateDef, HttpCheck, Via, render_problem};
use crate::model::inventory::Host;
use crate::model::template::Template;
use crate::ssh::RemoteCommand;

/// The spec's `pre` and `gates`, and its `soak`.
pub struct SpecGates {
    pub pre: Vec<GateDef>,
    pub gates: Vec<GateDef>,
    pub soak: Duration,
    /// Per host and log path: the size of the error log when its upgrade began.
    offsets: Mutex<HashMap<(String, String), u64>>,
}

impl SpecGates {
    pub fn new(pre: Vec<GateDef>, gates: Vec<GateDef>, soak: Duration) -> SpecGates {
        SpecGates {
            pre,
            gates,
            soak,
            offsets: Mutex::new(HashMap::new()),
        }
    }

    /// The spec's `pre` gates, `gates` and `soak`.
    pub fn of(spec: &crate::model::spec::Spec) -> SpecGates {
        SpecGates::new(spec.pre.clone(), spec.gates.clone(), spec.soak.get())
    }
}

/// A URL, host or path for `host`: each value as it is.
fn render(t: &Template, host: &Host) -> Result<String, Saw> {
    t.render(|v| host.template_var(v))
        .map_err(|e| Saw::Template(render_problem(&host.name, &e)))
}

/// A `command` or `local` line for `host`: each value one quoted shell word.
fn render_shell(t: &Template, host: &Host) -> Result<String, Saw> {
    t.render_shell(|v| host.template_var(v))
        .map_err(|e| Saw::Template(render_problem(&host.name, &e)))
}

impl Gate for SpecGates {
    fn prepare<'a>(&'a self, session: &'a dyn Remote, host: &'a Host) -> GateFuture<'a> {
        Box::pin(async move {
            for gate in &self.gates {
                if let Check::ErrorLog { path, .. } = &gate.check {
                    let path = render(path, host).map_err(GateFailure::Unprepared)?;
                    let size = log_size(session, &path, gate.timeout.get())
                        .await
                        .map_err(GateFailure::Unprepared)?;
                    if let Ok(mut offsets) = self.offsets.lock() {
                        offsets.insert((host.name.clone(), path), size);
                    }
                }
            }
            Ok(())
        })
    }

    fn check<'a>(
        &'a self,
        session: &'a dyn Remote,
        host: &'a Host,
        phase: Phase,
        new_master: Option<u32>,
    ) -> GateFuture<'a> {
        Box::pin(async move {
            let (gates, tries): (Vec<&GateDef>, Option<u32>) = match phase {
                Phase::Pre => (self.pre.iter().collect(), None),
                Phase::BothServing => (
                    self.gates
                        .iter()
                        .filter(|g| matches!(g.check, Check::ErrorLog { .. }))
                        .collect(),
                    None,
                ),
                Phase::AfterWinch | Phase::AfterCommit => (self.gates.iter().collect(), None),
                Phase::Soak => (self.gates.iter().collect(), Some(1)),
            };
            for gate in gates {
                self.run(gate, session, host, new_master, tries).await?;
            }
            Ok(())
        })
    }

    fn soak(&self) -> Duration {
        self.soak
    }

    /// An HTTP check through the host, first after commit: its connection reaches only the
    /// new workers (the old ones stopped accepting at WINCH), so it may open while the
    /// commit command runs; the request waits for the command's end.
    fn first_tunnel(&self, host: &Host, phase: Phase) -> Option<Tunnel> {
        if phase != Phase::AfterCommit {
            return None;
        }
        let Check::Http(check) = &self.gates.first()?.check else {
            return None;
        };
        if check.via != Via::Ssh {
            return None;
        }
        let url = render(&check.url, host).ok()?;
        let uri: ::http::Uri = url.parse().ok()?;
        let ep = http::endpoint(&uri).ok()?;
        Some(Tunnel {
            host: ep.host,
            port: ep.port,
        })
    }

    fn checks(&self, phase: Phase) -> bool {
        match phase {
            Phase::Pre => !self.pre.is_empty(),
            Phase::BothServing => self
                .gates
                .iter()
                .any(|g| matches!(g.check, Check::ErrorLog { .. })),
            Phase::AfterWinch | Phase::Soak | Phase::AfterCommit => !self.gates.is_empty(),
        }
    }
}

impl SpecGates {
    async fn run(
        &self,
        gate: &GateDef,
        session: &dyn Remote,
        host: &Host,
        new_master: Option<u32>,
        tries: Option<u32>,
    ) -> Result<(), GateFailure> {
        let tries = tries.unwrap_or(gate.retries).max(1);
        let started = Instant::now();
        let mut saw = Saw::NoNewMaster;
        for attempt in 1..=tries {
            let once = self.once(gate, session, host, new_master);
            match tokio::time::timeout(gate.timeout.get(), once).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(what)) => saw = what,
                Err(_) => {
                    saw = Saw::NoAnswer {
                        within: gate.timeout.to_string(),
                    }
                }
            }
            if attempt < tries {
                tokio::time::sleep(gate.interval.get()).await;
            }
        }
        Err(GateFailure::Failed {
            gate: gate.check.expanded(|v| host.template_var(v)),
            saw,
            tries,
            elapsed: started.elapsed(),
        })
    }

    async fn once(
        &self,
        gate: &GateDef,
        session: &dyn Remote,
        host: &Host,
        new_master: Option<u32>,
    ) -> Result<(), Saw> {
        let connect = |e: crate::ssh::SshError| Saw::Connect {
            error: e.to_string(),
        };
        match &gate.check {
            Check::Http(check) => http_once(check, session, host).await,
            Check::Tcp {
                host: to,
                port,
                via,
            } => {
                let to = render(to, host)?;
                match via {
                    Via::Ssh => session
                        .open_tcp(&to, port.get())
                        .await
                        .map(drop)
                        .map_err(connect),
                    Via::Direct => TcpStream::connect((to.as_str(), port.get()))
                        .await
                        .map(drop)
                        .map_err(|e| Saw::Connect {
                            error: e.to_string(),
                        }),
                }
            }
            Check::Command(t) => {
                let cmd = RemoteCommand::script(COMMAND, [render_shell(t, host)?])
                    .labelled("gate command");
                let out = session
                    .exec(&cmd, gate.timeout.get())
                    .await
                    .map_err(remote)?;
                if out.success() {
                    Ok(())
                } else {
                    Err(Saw::Command {
                        status: out.status.clone(),
                        stderr: out.stderr_lossy().trim().to_owned(),
                    })
                }
            }
            Check::Local(t) => {
                let line = render_shell(t, host)?;
                let mut cmd = tokio::process::Command::new("sh");
                cmd.arg("-c").arg(&line).kill_on_drop(true);
                for (name, var) in host.vars.iter() {
                    if let Some(text) = crate::model::reader::scalar_text(&var.value)
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        cmd.env(name, text);
                    }
                }
                // The become password is for sudo on the hosts, never for a local check.
                cmd.env_remove(crate::ssh::BECOME_PASSWORD_ENV);
                cmd.env("inventory_hostname", &host.name)
                    .env("ansible_host", host.address())
                    .env("NGFLEET_HOST", &host.name);
                let out = cmd.output().await.map_err(|e| Saw::Spawn {
                    error: e.to_string(),
                })?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(Saw::Local {
                        code: out.status.code(),
                        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    })
                }
            }
            Check::ErrorLog { path, deny } => {
                let path = render(path, host)?;
                let key = (host.name.clone(), path.clone());
                let offset = self.offsets.lock().ok().and_then(|o| o.get(&key).copied());
                let offset = match offset {
                    Some(o) => o,
                    None => {
                        // Resumed in another run: from now on.
                        let size = log_size(session, &path, gate.timeout.get()).await?;
                        if let Ok(mut offsets) = self.offsets.lock() {
                            offsets.insert(key, size);
                        }
                        size
                    }
                };
                let mut args = vec![path.clone(), offset.to_string()];
                args.extend(deny.iter().cloned());
                let cmd = RemoteCommand::script(ERROR_LOG_SINCE, args)
                    .privileged()
                    .labelled("gate error_log");
                let out = session
                    .exec(&cmd, gate.timeout.get())
                    .await
                    .map_err(remote)?;
                let found = out.stdout_lossy().trim().to_owned();
                if found.is_empty() {
                    Ok(())
                } else {
                    Err(Saw::ErrorLog { path, found })
                }
            }
            Check::Version(expected) => {
                let pid = new_master.ok_or(Saw::NoNewMaster)?;
                let cmd = RemoteCommand::script(VERSION, [pid.to_string()])
                    .privileged()
                    .labelled("gate version");
                let out = session
                    .exec(&cmd, gate.timeout.get())
                    .await
                    .map_err(remote)?;
                let text = out.stdout_lossy();
                let got = text.trim().trim_start_matches("nginx version: ");
                if got == expected {
                    Ok(())
                } else {
                    Err(Saw::Version {
                        got: got.to_owned(),
                        expected: expected.clone(),
                    })
                }
            }
        }
    }
}

/// A failure of the connection a command ran on, as the gate saw it.
fn remote(e: crate::ssh::SshError) -> Saw {
    Saw::Remote(e.to_string())
}

async fn http_once(check: &HttpCheck, session: &dyn Remote, host: &Host) -> Result<(), Saw> {
    let url = render(&check.url, host)?;
    let uri: ::http::Uri = url
        .parse()
        .map_err(|e: ::http::uri::InvalidUri| Saw::InvalidUrl {
            url: url.clone(),
            error: e.to_string(),
        })?;
    let ep = http::endpoint(&uri).map_err(Saw::Http)?;
    let response = match check.via {
        Via::Ssh => {
            let stream = session
                .open_tcp(&ep.host, ep.port)
                .await
                .map_err(|e| Saw::Connect {
                    error: e.to_string(),
                })?;
            http::get(stream, &uri, check.insecure).await
        }
        Via::Direct => {
            let stream = TcpStream::connect((ep.host.as_str(), ep.port))
                .await
                .map_err(|e| Saw::ConnectTo {
                    host: ep.host.clone(),
                    port: ep.port,
                    error: e.to_string(),
                })?;
            http::get(stream, &uri, check.insecure).await
        }
    }
    .map_err(Saw::Http)?;
    if !check.status.contains(&response.status) {
        return Err(Saw::Status {
            url,
            got: response.status,
            expected: check.status.clone(),
        });
    }
    match &check.body {
        Some(BodyMatch::Contains(s)) if !response.body.contains(s.as_str()) => {
            return Err(Saw::BodyLacks { needle: s.clone() });
        }
        Some(BodyMatch::Regex(re)) if !re.is_match(&response.body) => {
            return Err(Saw::BodyMismatch {
                regex: re.as_str().to_owned(),
            });
        }
        _ => {}
    }
    for (name, want) in &check.headers {
        let got = response
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return Err(Saw::Header {
                name: name.clone(),
                got: got.map(str::to_owned),
                want: want.clone(),
            });
        }
    }
    Ok(())
}

/// `$1` is the spec author's command with each template already one quoted word, run by a
/// shell on the host as the login user.
const COMMAND: &str = include_str!("scripts/command.sh");

/// Lines of `$1` after byte `$2` that contain any of `$3…` (fixed strings), at most 5.
const ERROR_LOG_SINCE: &str = include_str!("scripts/error_log_since.sh");

const LOG_SIZE: &str = include_str!("scripts/log_size.sh");

const VERSION: &str = include_str!("scripts/version.sh");

async fn log_size(session: &dyn Remote, path: &str, deadline: Duration) -> Result<u64, Saw> {
    let cmd = RemoteCommand::script(LOG_SIZE, [path.to_owned()])
        .privileged()
        .labelled("error log size");
    let out = session.exec(&cmd, deadline).await.map_err(remote)?;
    out.stdout_lossy().trim().parse().map_err(|_| Saw::LogSize {
        path: path.to_owned(),
    })
}
