//! Gates checked against one host before anything runs: every template expands with the
//! host's variables to a valid URL, shell word or path.

use super::{Check, GateDef};
use crate::model::inventory::Host;
use crate::model::template::RenderError;
use crate::model::values::RemotePath;

/// What keeps `gates` from running on `host` at all: a template variable the host lacks, a
/// value no shell word can carry (NUL; a newline in a `command` line, which the host's command
/// cannot take), a URL that is invalid once expanded, or an `error_log` path that is not an
/// absolute path once expanded. Pure; checked for every selected host before anything runs.
pub fn host_problems(gates: &[GateDef], host: &Host) -> Vec<String> {
    let mut out = Vec::new();
    let lookup = |v: &str| host.template_var(v);
    for gate in gates {
        let problem = |p: String| format!("{}: host {}: {p}", gate.origin, host.name);
        for t in gate.check.templates() {
            let rendered = match gate.check {
                Check::Command(_) | Check::Local(_) => t.render_shell(lookup),
                _ => t.render(lookup),
            };
            let text = match rendered {
                Ok(text) => text,
                Err(e) => {
                    out.push(format!(
                        "{}: {}",
                        gate.origin,
                        render_problem(&host.name, &e)
                    ));
                    continue;
                }
            };
            match &gate.check {
                Check::Http(_) => {
                    if let Some(p) = url_problem(&text) {
                        out.push(problem(p));
                    }
                }
                Check::Command(_) => {
                    for var in t.vars() {
                        if lookup(var).is_some_and(|v| v.contains('\n')) {
                            out.push(problem(format!(
                                "variable `{var}` contains a newline, which a command gate cannot pass to the host"
                            )));
                        }
                    }
                }
                Check::ErrorLog { .. } if !t.is_plain() => {
                    if let Err(e) = text.parse::<RemotePath>() {
                        out.push(problem(format!("error_log path: {e}")));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Why a template cannot be expanded for `host`, as a sentence about the host.
pub fn render_problem(host: &str, e: &RenderError) -> String {
    match e {
        RenderError::Missing(var) => format!("host {host} has no variable `{var}`"),
        other => format!("host {host}: {other}"),
    }
}

/// A URL must be absolute http(s) with a host.
pub fn url_problem(url: &str) -> Option<String> {
    match url.parse::<http::Uri>() {
        Err(e) => Some(format!("invalid URL {url:?}: {e}")),
        Ok(u) => match (u.scheme_str(), u.host()) {
            (Some("http" | "https"), Some(_)) => None,
            (Some(other), _) if other != "http" && other != "https" => Some(format!(
                "unsupported URL scheme {other:?} in {url:?} (http or https)"
            )),
            _ => Some(format!("expected an absolute http(s) URL, found {url:?}")),
        },
    }
}
