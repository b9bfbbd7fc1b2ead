//! Fleet status as a table for people and as the `status --json` object.

use std::fmt::Write as _;

use serde::Serialize;

use crate::host::classify::HostState;
use crate::status::HostStatus;

#[derive(Serialize)]
struct JsonStatus<'a> {
    hosts: Vec<JsonHost<'a>>,
}

#[derive(Serialize)]
struct JsonHost<'a> {
    name: &'a str,
    address: &'a str,
    state: &'static str,
    reason: Option<&'a str>,
    master_pid: Option<u32>,
    binary: Option<&'a str>,
    binary_absolute: Option<bool>,
    exe_sha256: Option<&'a str>,
    version: Option<&'a str>,
    workers: Option<usize>,
    disk_version: Option<&'a str>,
    disk_sha256: Option<&'a str>,
    disk_differs: Option<bool>,
    old_master_pid: Option<u32>,
    error: Option<&'a str>,
}

fn json_host(s: &HostStatus) -> JsonHost<'_> {
    let obs = s.observation.as_ref();
    let master = obs
        .and_then(|o| o.master.as_ref())
        .filter(|m| m.state.is_alive());
    let disk = obs.and_then(|o| o.binary.as_ref());
    let exe_sha256 = master.and_then(|m| m.exe_sha256.as_deref());
    let disk_sha256 = disk.and_then(|d| d.sha256.as_deref());
    JsonHost {
        name: &s.name,
        address: &s.endpoint,
        state: s.state.name(),
        reason: s.state.reason(),
        master_pid: master.map(|m| m.pid),
        binary: master.and_then(|m| m.binary()),
        binary_absolute: master.map(|m| m.argv0_is_absolute()),
        exe_sha256,
        version: master.and_then(|m| m.version.as_deref()),
        workers: master.map(|m| m.workers()),
        disk_version: disk.and_then(|d| d.version.as_deref()),
        disk_sha256,
        disk_differs: match (exe_sha256, disk_sha256) {
            (Some(a), Some(b)) => Some(a != b),
            _ => None,
        },
        old_master_pid: obs
            .and_then(|o| o.old_master.as_ref())
            .filter(|m| m.state.is_alive())
            .map(|m| m.pid),
        error: s.error.as_deref(),
    }
}

/// `{"hosts": [{"name": ..., "state": ..., "master_pid": ..., ...}]}`
pub fn json(statuses: &[HostStatus]) -> String {
    let value = JsonStatus {
        hosts: statuses.iter().map(json_host).collect(),
    };
    serde_json::to_string(&value).unwrap_or_default()
}

/// A table, one host per line, then a summary line.
pub fn text(statuses: &[HostStatus]) -> String {
    let rows: Vec<[String; 7]> = statuses
        .iter()
        .map(|s| {
            let j = json_host(s);
            let dash = || "-".to_owned();
            let disk = match (j.disk_differs, j.disk_version) {
                (Some(true), Some(v)) => format!("{v} (differs)"),
                (Some(false), _) => "same".to_owned(),
                (_, Some(v)) => v.to_owned(),
                _ => dash(),
            };
            let mut binary = j.binary.map(str::to_owned).unwrap_or_else(dash);
            if j.binary_absolute == Some(false) {
                binary.push_str(" (not absolute!)");
            }
            let detail = match (&s.error, &s.state) {
                (Some(e), _) => e.clone(),
                (None, HostState::Inconsistent(r)) => r.clone(),
                _ => format!(
                    "{} sha256:{}",
                    binary,
                    j.exe_sha256.map(|h| &h[..h.len().min(12)]).unwrap_or("-")
                ),
            };
            [
                s.name.clone(),
                s.state.name().to_owned(),
                j.master_pid.map(|p| p.to_string()).unwrap_or_else(dash),
                j.workers.map(|w| w.to_string()).unwrap_or_else(dash),
                j.version.map(str::to_owned).unwrap_or_else(dash),
                disk,
                detail,
            ]
        })
        .collect();
    let header = [
        "HOST", "STATE", "PID", "WORKERS", "RUNNING", "ON DISK", "DETAIL",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in statuses {
        match counts.iter_mut().find(|(n, _)| *n == s.state.name()) {
            Some((_, c)) => *c += 1,
            None => counts.push((s.state.name(), 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
    let _ = writeln!(out, "{} hosts: {}", statuses.len(), summary.join(", "));
    out
}
