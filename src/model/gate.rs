//! Health-gate definitions from the spec (`gates:` and `pre:`): what each gate checks, with its
//! timeout, retries and interval. Pure: parsed and validated here, run by `crate::gate`.
//!
//! Forms: `http: {url, status, body, body_regex, header, via, insecure}`, `tcp: {port, host,
//! via}`, `command: "…"` (on the host), `local: "…"` (on the controller), `error_log: {path,
//! deny}`, `version: "nginx/1.22.9"`. Mapping forms also take `timeout`, `retries`, `interval`.
//!
//! Templates in `command` and `local` lines expand to one quoted shell word each; one that
//! stands where such a word would not stay literal (inside quotes, say) is refused here.

use std::fmt;

use yaml_serde::Value;

use super::duration::HumanDuration;
use super::keypath::KeyPath;
use super::reader::{Reader, describe, scalar_text};
use super::shellword;
use super::template::Template;
use super::values::{Port, RemotePath};

mod per_host;
pub use per_host::{host_problems, render_problem, url_problem};

const KINDS: &[&str] = &["http", "tcp", "command", "local", "error_log", "version"];
const COMMON: &[&str] = &["timeout", "retries", "interval"];

/// Where a check connects from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Through the host's SSH connection (`direct-tcpip`), so the host's own addresses work.
    Ssh,
    /// From the controller.
    Direct,
}

/// How a response body must look.
#[derive(Clone, Debug)]
pub enum BodyMatch {
    Contains(String),
    Regex(regex::Regex),
}

impl PartialEq for BodyMatch {
    fn eq(&self, other: &BodyMatch) -> bool {
        match (self, other) {
            (BodyMatch::Contains(a), BodyMatch::Contains(b)) => a == b,
            (BodyMatch::Regex(a), BodyMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpCheck {
    pub url: Template,
    /// Accepted status codes.
    pub status: Vec<u16>,
    pub body: Option<BodyMatch>,
    /// Headers that must be present with exactly these values.
    pub headers: Vec<(String, String)>,
    pub via: Via,
    /// Skip TLS certificate verification (self-signed certificates).
    pub insecure: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    Http(HttpCheck),
    Tcp {
        host: Template,
        port: Port,
        via: Via,
    },
    /// A shell command on the host, as the login user; exit 0 passes. Each template expands to
    /// one quoted shell word.
    Command(Template),
    /// A shell command on the controller with the host's vars in its environment. Each
    /// template expands to one quoted shell word.
    Local(Template),
    /// Lines written since this host's upgrade began must not contain any `deny` string.
    ErrorLog {
        path: Template,
        deny: Vec<String>,
    },
    /// What the running master's binary reports with `-v` (`nginx/1.22.9`).
    Version(String),
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http(_) => "http",
            Check::Tcp { .. } => "tcp",
            Check::Command(_) => "command",
            Check::Local(_) => "local",
            Check::ErrorLog { .. } => "error_log",
            Check::Version(_) => "version",
        }
    }

    /// Every template in the check (for validation against each host's vars).
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            Check::Http(h) => vec![&h.url],
            Check::Tcp { host, .. } => vec![host],
            Check::Command(t) | Check::Local(t) => vec![t],
            Check::ErrorLog { path, .. } => vec![path],
            Check::Version(_) => Vec::new(),
        }
    }

    /// The check as it runs on a host, for messages: URLs, hosts and paths expanded as they
    /// are, `command` and `local` lines as the shell gets them (each value one quoted word). A
    /// template that cannot be expanded is shown as written.
    pub fn expanded(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let plain = |t: &Template| t.render(&lookup).unwrap_or_else(|_| t.to_string());
        let shell = |t: &Template| t.render_shell(&lookup).unwrap_or_else(|_| t.to_string());
        match self {
            Check::Http(h) => format!("http {}", plain(&h.url)),
            Check::Tcp { host, port, .. } => format!("tcp {}:{port}", plain(host)),
            Check::Command(t) => format!("command {}", shell(t)),
            Check::Local(t) => format!("local {}", shell(t)),
            Check::ErrorLog { path, .. } => format!("error_log {}", plain(path)),
            Check::Version(v) => format!("version {v}"),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Http(h) => write!(f, "http {}", h.url),
            Check::Tcp { host, port, .. } => write!(f, "tcp {host}:{port}"),
            Check::Command(t) => write!(f, "command {t}"),
            Check::Local(t) => write!(f, "local {t}"),
            Check::ErrorLog { path, .. } => write!(f, "error_log {path}"),
            Check::Version(v) => write!(f, "version {v}"),
        }
    }
}

/// One gate: a check and how hard to try it.
#[derive(Clone, Debug, PartialEq)]
pub struct GateDef {
    pub check: Check,
    /// Per try.
    pub timeout: HumanDuration,
    /// Tries before the gate fails (at least 1).
    pub retries: u32,
    /// Pause between tries.
    pub interval: HumanDuration,
    pub origin: KeyPath,
}

const DEFAULT_TIMEOUT: HumanDuration = HumanDuration::from_secs(5);
const DEFAULT_INTERVAL: HumanDuration = HumanDuration::from_secs(2);
const DEFAULT_RETRIES: u32 = 3;
/// The most tries a gate may take.
pub const MAX_RETRIES: u32 = 1000;

/// Reads a list of gates, recording every problem.
pub fn read_gates(r: &mut Reader<'_>, at: &KeyPath, value: &Value) -> Vec<GateDef> {
    let items = r.sequence(at, value, "a list of gates");
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        let entries = r.mapping(
            &here,
            item,
            "a gate (a mapping with one kind, e.g. `http: {...}`)",
        );
        if entries.len() != 1 {
            r.error(
                &here,
                format!(
                    "a gate has exactly one kind ({}), found {} keys",
                    KINDS.join(", "),
                    entries.len()
                ),
            );
            continue;
        }
        let (kind, options) = &entries[0];
        let origin = here.key(kind);
        if !KINDS.contains(&kind.as_str()) {
            let hint = super::reader::suggest(kind, KINDS)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            r.key_error(
                &origin,
                format!(
                    "unknown gate kind: expected one of {}, found {kind:?}{hint}",
                    KINDS.join(", ")
                ),
            );
            continue;
        }
        if let Some(gate) = read_gate(r, kind, options, origin) {
            out.push(gate);
        }
    }
    out
}

/// The options of a gate: a mapping, or for the one-value kinds a plain string.
fn read_gate(r: &mut Reader<'_>, kind: &str, options: &Value, origin: KeyPath) -> Option<GateDef> {
    let mut gate = GateDef {
        check: Check::Version(String::new()),
        timeout: DEFAULT_TIMEOUT,
        retries: DEFAULT_RETRIES,
        interval: DEFAULT_INTERVAL,
        origin: origin.clone(),
    };
    let short_key = match kind {
        "command" | "local" => Some("run"),
        "version" => Some("expect"),
        _ => None,
    };
    // Short form: `command: "test -s x"`, `version: "nginx/1.22.9"`.
    if let (Some(key), Some(text)) = (short_key, scalar_text(options)) {
        gate.check = simple(r, kind, key, &text, &origin)?;
        return Some(gate);
    }
    let own: &[&str] = match kind {
        "http" => &[
            "url",
            "status",
            "body",
            "body_regex",
            "header",
            "via",
            "insecure",
        ],
        "tcp" => &["port", "host", "via"],
        "error_log" => &["path", "deny"],
        "command" | "local" => &["run"],
        _ => &["expect"],
    };
    let allowed: Vec<&str> = own.iter().chain(COMMON).copied().collect();
    let entries = r.struct_mapping(&origin, options, "a mapping of gate options", &allowed);
    let get = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let mut ok = true;
    if let Some(v) = get("timeout") {
        match r.parse::<HumanDuration>(&origin.key("timeout"), v, "a duration") {
            Some(d) if !d.get().is_zero() => gate.timeout = d,
            Some(_) => {
                r.error(&origin.key("timeout"), "a timeout must be longer than 0s");
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(v) = get("interval") {
        match r.parse::<HumanDuration>(&origin.key("interval"), v, "a duration") {
            Some(d) => gate.interval = d,
            None => ok = false,
        }
    }
    if let Some(v) = get("retries") {
        match r.integer(
            &origin.key("retries"),
            v,
            "a number of tries",
            1..=MAX_RETRIES,
        ) {
            Some(n) => gate.retries = n,
            None => ok = false,
        }
    }
    let mut required = |name: &str| -> Option<(&Value, KeyPath)> {
        match get(name) {
            Some(v) => Some((v, origin.key(name))),
            None => {
                r.error(&origin, format!("a {kind} gate needs `{name}`"));
                None
            }
        }
    };
    let check = match kind {
        "http" => {
            let (v, at) = required("url")?;
            let url = template(r, &at, v)?;
            if url.is_plain() {
                check_url(r, &at, &url.to_string());
            }
            let status = match get("status") {
                None => vec![200],
                Some(v) => statuses(r, &origin.key("status"), v)?,
            };
            let body = match (get("body"), get("body_regex")) {
                (Some(_), Some(_)) => {
                    r.error(&origin, "give `body` or `body_regex`, not both");
                    return None;
                }
                (Some(v), None) => Some(BodyMatch::Contains(r.text(
                    &origin.key("body"),
                    v,
                    "a string",
                )?)),
                (None, Some(v)) => {
                    let at = origin.key("body_regex");
                    let text = r.text(&at, v, "a regular expression")?;
                    match regex::Regex::new(&text) {
                        Ok(re) => Some(BodyMatch::Regex(re)),
                        Err(e) => {
                            r.error(&at, format!("invalid regular expression: {e}"));
                            return None;
                        }
                    }
                }
                (None, None) => None,
            };
            let mut headers = Vec::new();
            if let Some(v) = get("header") {
                let at = origin.key("header");
                for (name, value) in r.mapping(&at, v, "a mapping of header names to values") {
                    headers.push((
                        name.clone(),
                        r.text(&at.key(&name), value, "a header value")?,
                    ));
                }
            }
            let via = via(r, &origin, get("via"))?;
            let insecure = match get("insecure") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    r.error(
                        &origin.key("insecure"),
                        format!("expected true or false, found {}", describe(other)),
                    );
                    return None;
                }
            };
            Check::Http(HttpCheck {
                url,
                status,
                body,
                headers,
                via,
                insecure,
            })
        }
        "tcp" => {
            let (v, at) = required("port")?;
            let port = r.parse::<Port>(&at, v, "a port number")?;
            let host = match get("host") {
                Some(v) => template(r, &origin.key("host"), v)?,
                None => "127.0.0.1".parse().ok()?,
            };
            let via = via(r, &origin, get("via"))?;
            Check::Tcp { host, port, via }
        }
        "error_log" => {
            let (v, at) = required("path")?;
            let path = template(r, &at, v)?;
            if path.is_plain()
                && let Err(e) = path.to_string().parse::<RemotePath>()
            {
                r.error(&at, e.to_string());
                return None;
            }
            let deny = match get("deny") {
                None => vec!["[emerg]".into(), "[alert]".into(), "[crit]".into()],
                Some(v) => {
                    let at = origin.key("deny");
                    let items = r.sequence(&at, v, "a list of strings");
                    let mut out = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        out.push(r.text(&at.index(i), item, "a string")?);
                    }
                    if out.is_empty() {
                        r.error(&at, "deny must list at least one string");
                        return None;
                    }
                    out
                }
            };
            Check::ErrorLog { path, deny }
        }
        other => {
            let key = short_key.unwrap_or("expect");
            let (v, at) = required(key)?;
            let text = r.text(&at, v, "a string")?;
            simple(r, other, key, &text, &at)?
        }
    };
    gate.check = check;
    ok.then_some(gate)
}

fn simple(r: &mut Reader<'_>, kind: &str, _key: &str, text: &str, at: &KeyPath) -> Option<Check> {
    if text.trim().is_empty() {
        r.error(at, format!("a {kind} gate needs a non-empty value"));
        return None;
    }
    Some(match kind {
        "command" => Check::Command(shell_line(r, at, text)?),
        "local" => Check::Local(shell_line(r, at, text)?),
        _ => Check::Version(text.trim().to_owned()),
    })
}

/// A `command` or `local` line: a template whose every `{{ var }}` stands where one quoted
/// shell word stays literal.
fn shell_line(r: &mut Reader<'_>, at: &KeyPath, text: &str) -> Option<Template> {
    let line = parse_template(r, at, text)?;
    let misplaced = shellword::misplaced(&line);
    for m in &misplaced {
        r.error(at, m.to_string());
    }
    misplaced.is_empty().then_some(line)
}

fn parse_template(r: &mut Reader<'_>, at: &KeyPath, text: &str) -> Option<Template> {
    match text.parse::<Template>() {
        Ok(t) => Some(t),
        Err(e) => {
            r.error(at, e.to_string());
            None
        }
    }
}

fn template(r: &mut Reader<'_>, at: &KeyPath, value: &Value) -> Option<Template> {
    let text = r.text(at, value, "a string")?;
    parse_template(r, at, &text)
}

fn via(r: &mut Reader<'_>, origin: &KeyPath, value: Option<&Value>) -> Option<Via> {
    match value.map(scalar_text) {
        None => Some(Via::Ssh),
        Some(Some(t)) if t == "ssh" => Some(Via::Ssh),
        Some(Some(t)) if t == "direct" => Some(Via::Direct),
        Some(_) => {
            r.error(&origin.key("via"), "expected `ssh` or `direct`");
            None
        }
    }
}

fn statuses(r: &mut Reader<'_>, at: &KeyPath, value: &Value) -> Option<Vec<u16>> {
    let items: Vec<(KeyPath, &Value)> = match value {
        Value::Sequence(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (at.index(i), v))
            .collect(),
        single => vec![(at.clone(), single)],
    };
    let mut out = Vec::new();
    for (here, item) in items {
        out.push(r.integer::<u16>(&here, item, "an HTTP status", 100..=599)?);
    }
    (!out.is_empty()).then_some(out)
}

fn check_url(r: &mut Reader<'_>, at: &KeyPath, url: &str) {
    if let Some(problem) = url_problem(url) {
        r.error(at, problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::Spec;

    fn gates(text: &str) -> Vec<GateDef> {
        Spec::parse("g.yaml", text)
            .unwrap_or_else(|e| panic!("{e}"))
            .gates
    }

    fn problems(text: &str) -> Vec<String> {
        Spec::parse("g.yaml", text)
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_kind_and_form() {
        let g = gates(
            "\
gates:
  - http: {url: \"http://127.0.0.1:80/health\", status: 200, body: \"ok\", via: ssh, retries: 5, interval: 1s}
  - http: {url: \"https://{{ ansible_host }}/\", status: [200, 301], via: direct, header: {Server: \"nginx/1.22.9\"}, insecure: true}
  - tcp: {port: 443}
  - command: \"test -s /var/www/html/index.html\"
  - local: \"./scripts/lb-member-healthy {{ inventory_hostname }}\"
  - error_log: {path: /var/log/nginx/error.log, deny: [\"[emerg]\"]}
  - version: \"nginx/1.22.9\"
",
        );
        assert_eq!(
            g.iter().map(|g| g.check.kind()).collect::<Vec<_>>(),
            [
                "http",
                "http",
                "tcp",
                "command",
                "local",
                "error_log",
                "version"
            ]
        );
        let Check::Http(h) = &g[0].check else {
            panic!()
        };
        assert_eq!(h.status, [200]);
        assert_eq!(h.body, Some(BodyMatch::Contains("ok".into())));
        assert_eq!((g[0].retries, g[0].interval.get().as_secs()), (5, 1));
        let Check::Http(h) = &g[1].check else {
            panic!()
        };
        assert_eq!(
            (h.via, h.insecure, h.status.clone()),
            (Via::Direct, true, vec![200, 301])
        );
        assert_eq!(
            h.headers,
            [("Server".to_owned(), "nginx/1.22.9".to_owned())]
        );
        assert_eq!(h.url.vars(), ["ansible_host"]);
        assert_eq!(g[2].check.to_string(), "tcp 127.0.0.1:443");
        assert_eq!(g[3].retries, DEFAULT_RETRIES);
        assert_eq!(g[6].check, Check::Version("nginx/1.22.9".into()));
    }

    #[test]
    fn bad_gates_are_errors_before_the_rollout() {
        assert_eq!(
            problems(
                "\
gates:
  - http: {url: \"ftp://x/\", statuz: 200}
  - http: {url: \"not a url\"}
  - http: {status: 999, url: \"http://h/\"}
  - tcp: {host: x}
  - command: \"\"
  - local: \"{{ x | upper }}\"
  - error_log: {path: /l, deny: []}
  - http: {url: \"http://h/\", body_regex: \"(\"}
  - version: {expect: x, retries: 0}
"
            ),
            [
                "g.yaml:2:17: gates[0].http.url: unsupported URL scheme \"ftp\" in \"ftp://x/\" (http or https)",
                "g.yaml:2:29: gates[0].http.statuz: unknown key `statuz` (did you mean `status`?)",
                "g.yaml:3:17: gates[1].http.url: invalid URL \"not a url\": invalid uri character",
                "g.yaml:4:20: gates[2].http.status: expected an HTTP status from 100 to 599, found 999",
                "g.yaml:5:10: gates[3].tcp: a tcp gate needs `port`",
                "g.yaml:6:14: gates[4].command: a command gate needs a non-empty value",
                "g.yaml:7:12: gates[5].local: only plain variables are supported in templates, found `{{ x | upper }}`",
                "g.yaml:8:33: gates[6].error_log.deny: deny must list at least one string",
                "g.yaml:9:42: gates[7].http.body_regex: invalid regular expression: regex parse error:\n    (\n    ^\nerror: unclosed group",
                "g.yaml:10:35: gates[8].version.retries: expected a number of tries from 1 to 1000, found 0",
            ]
        );
    }

    #[test]
    fn templates_inside_quotes_in_command_and_local_are_refused() {
        assert_eq!(
            problems(
                "\
gates:
  - command: \"test -n \\\"{{ docroot }}\\\"\"
  - local: {run: \"./check '{{ inventory_hostname }}'\", retries: 1}
  - command: \"test -n {{ docroot }} && echo `cat {{ f }}`\"
  - command: \"test -d {{ docroot }}\"
  - local: \"./check {{ inventory_hostname }} \\\"$lab_http_port\\\"\"
"
            ),
            [
                "g.yaml:2:14: gates[0].command: `{{ docroot }}` is inside double quotes: drop the quotes, ngfleet quotes each expansion as one shell word",
                "g.yaml:3:18: gates[1].local.run: `{{ inventory_hostname }}` is inside single quotes: drop the quotes, ngfleet quotes each expansion as one shell word",
                "g.yaml:4:14: gates[2].command: `{{ f }}` is inside backquotes, which undo ngfleet's quoting of each expansion: use `$( … )`",
            ]
        );
    }

    #[test]
    fn an_error_log_path_is_absolute() {
        assert_eq!(
            problems("gates:\n  - error_log: {path: logs/error.log}\n"),
            [
                "g.yaml:2:23: gates[0].error_log.path: expected an absolute path, found \"logs/error.log\""
            ]
        );
    }

    fn host(vars: &str) -> crate::model::inventory::Host {
        let text = format!("all:\n  hosts:\n    web-01:\n{vars}");
        crate::model::inventory::Inventory::parse("inv.yaml", &text)
            .unwrap_or_else(|e| panic!("{e}"))
            .find("web-01")
            .expect("host")
            .clone()
    }

    #[test]
    fn values_a_gate_cannot_carry_are_host_problems() {
        let g = gates(
            "\
gates:
  - command: \"test -d {{ docroot }}\"
  - local: \"test -n {{ token }}\"
  - error_log: {path: \"{{ logs }}/error.log\"}
  - http: {url: \"http://{{ inventory_hostname }}:{{ port }}/\"}
",
        );
        let h = host(
            "      docroot: \"/srv/a\\nb\"\n      token: \"a\\0b\"\n      logs: \"var/log\"\n",
        );
        assert_eq!(
            host_problems(&g, &h),
            [
                "gates[0].command: host web-01: variable `docroot` contains a newline, which a command gate cannot pass to the host",
                "gates[1].local: host web-01: variable `token` contains a NUL byte, which no shell word can carry",
                "gates[2].error_log: host web-01: error_log path: expected an absolute path, found \"var/log/error.log\"",
                "gates[3].http: host web-01 has no variable `port`",
            ]
        );
        let fine = host(
            "      docroot: \"/var/www; touch /tmp/x\"\n      token: \"$(id)\"\n      logs: /var/log/nginx\n      port: 80\n",
        );
        assert_eq!(host_problems(&g, &fine), Vec::<String>::new());
    }

    #[test]
    fn a_check_is_shown_as_expanded_for_the_host() {
        let g = gates(
            "\
gates:
  - http: {url: \"http://127.0.0.1:{{ lab_http_port }}/health\"}
  - command: \"test -d {{ docroot }}\"
  - local: \"./lb-healthy {{ inventory_hostname }}\"
  - tcp: {host: \"{{ ansible_host }}\", port: 443}
  - error_log: {path: \"{{ logs }}/error.log\"}
  - command: \"test -n {{ missing }}\"
",
        );
        let h = host(
            "      ansible_host: 10.0.0.7\n      lab_http_port: 8080\n      docroot: \"/var/www; touch /tmp/x\"\n      logs: /var/log/nginx\n",
        );
        let shown: Vec<String> = g
            .iter()
            .map(|g| g.check.expanded(|v| h.template_var(v)))
            .collect();
        assert_eq!(
            shown,
            [
                "http http://127.0.0.1:8080/health",
                "command test -d '/var/www; touch /tmp/x'",
                "local ./lb-healthy web-01",
                "tcp 10.0.0.7:443",
                "error_log /var/log/nginx/error.log",
                "command test -n {{ missing }}",
            ]
        );
    }
}
