//! ssh_config keywords: which ngfleet applies (each value checked as OpenSSH checks it),
//! which it ignores quietly (they cannot change where or how it connects), and which it
//! warns about when they apply to a host.

use super::{
    Criterion, Item, Location, ProxyCommand, ProxyJump, Sense, Setting, Strictness, YesNo,
};
use crate::model::values::Port;

/// What an option ngfleet does not apply is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Other {
    /// Harmless for ngfleet (environment, forwarding, multiplexing, terminal, logging...).
    Quiet,
    /// An OpenSSH option that could change where or how OpenSSH connects; warned about.
    Unsupported,
    /// Not an OpenSSH keyword ngfleet knows; warned about unless `IgnoreUnknown` lists it.
    Unknown,
}

/// OpenSSH options ngfleet ignores quietly: nothing in them changes which host is reached,
/// how it is authenticated or how its key is checked (Debian's stock `/etc/ssh/ssh_config`
/// uses `SendEnv`, `HashKnownHosts` and `GSSAPIAuthentication`).
pub const QUIETLY_IGNORED: &[&str] = &[
    "addkeystoagent",
    "batchmode",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "challengeresponseauthentication",
    "channeltimeout",
    "checkhostip",
    "clearallforwardings",
    "compression",
    "connectionattempts",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "gssapiauthentication",
    "gssapiclientidentity",
    "gssapidelegatecredentials",
    "gssapikeyexchange",
    "gssapikexalgorithms",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "hashknownhosts",
    "hostbasedauthentication",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "obscurekeystroketiming",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "preferredauthentications",
    "protocol",
    "proxyusefdpass",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "sendenv",
    "sessiontype",
    "setenv",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "syslogfacility",
    "tag",
    "tcpkeepalive",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "usekeychain",
    "useroaming",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
];

/// OpenSSH options ngfleet does not apply and that may change where or how OpenSSH
/// connects: a warning names the file and line whenever one applies to a host.
const UNSUPPORTED: &[&str] = &[
    "addressfamily",
    "bindaddress",
    "bindinterface",
    "canonicalizehostname",
    "casignaturealgorithms",
    "ciphers",
    "globalknownhostsfile",
    "hostbasedacceptedalgorithms",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "identityagent",
    "kexalgorithms",
    "knownhostscommand",
    "macs",
    "pkcs11provider",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "requiredrsasize",
    "revokedhostkeys",
    "securitykeyprovider",
];

/// Match criteria OpenSSH has and ngfleet does not evaluate.
const UNSUPPORTED_CRITERIA: &[&str] = &[
    "exec",
    "localnetwork",
    "tagged",
    "address",
    "localaddress",
    "localport",
    "rdomain",
    "version",
    "sessiontype",
    "command",
];

/// The item a line stands for, its value checked.
pub(super) fn item(keyword: &str, args: Vec<String>, at: Location) -> Result<Item, String> {
    let lower = keyword.to_ascii_lowercase();
    let one = |args: &[String]| -> Result<String, String> {
        match args {
            [] => Err(format!("{keyword}: missing argument")),
            [value] if value.is_empty() => Err(format!("{keyword}: missing argument")),
            [value] => Ok(value.clone()),
            [_, extra, ..] => Err(format!(
                "{keyword}: unexpected argument {extra:?} (one value expected)"
            )),
        }
    };
    let set = |setting| {
        Ok(Item::Set {
            setting,
            at: at.clone(),
        })
    };
    match lower.as_str() {
        "host" => {
            if args.is_empty() {
                return Err("Host: missing pattern".to_owned());
            }
            Ok(Item::Host { patterns: args, at })
        }
        "match" => Ok(Item::Match {
            criteria: criteria(&args)?,
            at,
        }),
        "include" => {
            if args.is_empty() {
                return Err("Include: missing file".to_owned());
            }
            Ok(Item::Include {
                patterns: args,
                files: Vec::new(),
                at,
            })
        }
        "hostname" => {
            let value = one(&args)?;
            tokens(keyword, &value, "h")?;
            set(Setting::HostName(value))
        }
        "port" => {
            let value = one(&args)?;
            let port = value
                .parse::<Port>()
                .map_err(|e| format!("{keyword}: {e}"))?;
            set(Setting::Port(port))
        }
        "user" => set(Setting::User(one(&args)?)),
        "identityfile" | "certificatefile" => {
            let value = one(&args)?;
            tokens(keyword, &value, FILE_TOKENS)?;
            if lower == "identityfile" {
                set(Setting::IdentityFile(value))
            } else {
                set(Setting::CertificateFile(value))
            }
        }
        "identitiesonly" => set(Setting::IdentitiesOnly(yes_no(keyword, &one(&args)?)?)),
        "proxyjump" => {
            let value = one(&args)?;
            let jump = value
                .parse::<ProxyJump>()
                .map_err(|e| format!("{keyword}: {e}"))?;
            set(Setting::ProxyJump(jump))
        }
        "proxycommand" => {
            if args.is_empty() {
                return Err(format!("{keyword}: missing argument"));
            }
            if args.len() == 1 && args[0].eq_ignore_ascii_case("none") {
                return set(Setting::ProxyCommand(ProxyCommand::None));
            }
            set(Setting::ProxyCommand(ProxyCommand::Command(args.join(" "))))
        }
        "userknownhostsfile" => {
            if args.is_empty() || args.iter().any(String::is_empty) {
                return Err(format!("{keyword}: missing argument"));
            }
            for file in &args {
                tokens(keyword, file, FILE_TOKENS)?;
            }
            set(Setting::UserKnownHostsFile(args))
        }
        "stricthostkeychecking" => {
            let value = one(&args)?;
            let strict = match value.to_ascii_lowercase().as_str() {
                "yes" | "true" => Strictness::Yes,
                "ask" => Strictness::Ask,
                "accept-new" => Strictness::AcceptNew,
                "no" | "off" | "false" => Strictness::No,
                _ => {
                    return Err(format!(
                        "{keyword}: expected yes, no, ask, accept-new or off, found {value:?}"
                    ));
                }
            };
            set(Setting::StrictHostKeyChecking(strict))
        }
        "connecttimeout" => set(Setting::ConnectTimeout(time(keyword, &one(&args)?)?)),
        "serveraliveinterval" => set(Setting::ServerAliveInterval(time(keyword, &one(&args)?)?)),
        "serveralivecountmax" => {
            let value = one(&args)?;
            let count = value
                .parse::<u64>()
                .map_err(|_| format!("{keyword}: expected a number, found {value:?}"))?;
            set(Setting::ServerAliveCountMax(count))
        }
        "ignoreunknown" => set(Setting::IgnoreUnknown(one(&args)?)),
        "canonicalizehostname" if args.len() == 1 && args[0].eq_ignore_ascii_case("no") => {
            Ok(Item::Other {
                keyword: keyword.to_owned(),
                kind: Other::Quiet,
                at,
            })
        }
        _ => {
            let kind = if QUIETLY_IGNORED.contains(&lower.as_str()) {
                Other::Quiet
            } else if UNSUPPORTED.contains(&lower.as_str()) {
                Other::Unsupported
            } else {
                Other::Unknown
            };
            Ok(Item::Other {
                keyword: keyword.to_owned(),
                kind,
                at,
            })
        }
    }
}

/// Tokens of file options (OpenSSH 9.2): `%%`, `%C`, `%d`, `%h`, `%i`, `%k`, `%L`, `%l`,
/// `%n`, `%p`, `%r`, `%u`.
const FILE_TOKENS: &str = "CdhikLlnpru";

/// Refuses a `%` token outside `allowed` (OpenSSH refuses to connect).
fn tokens(keyword: &str, value: &str, allowed: &str) -> Result<(), String> {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('%') => {}
            Some(t) if allowed.contains(t) => {}
            Some(t) => return Err(format!("{keyword}: unknown token %{t} in {value:?}")),
            None => return Err(format!("{keyword}: lone '%' at the end of {value:?}")),
        }
    }
    Ok(())
}

fn yes_no(keyword: &str, value: &str) -> Result<YesNo, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(YesNo::Yes),
        "no" | "false" => Ok(YesNo::No),
        _ => Err(format!("{keyword}: expected yes or no, found {value:?}")),
    }
}

/// OpenSSH's `convtime`: `90`, `1m30s`, `2h`, `1w` (units s, m, h, d, w, any case).
fn time(keyword: &str, value: &str) -> Result<u64, String> {
    let bad = || format!("{keyword}: expected a time such as 30, 30s or 1m30s, found {value:?}");
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.checked_add(n).ok_or_else(bad)?;
    } else if value.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// The criteria of a `Match` line, as OpenSSH reads them: `all` alone (or after
/// `canonical`/`final`), each other criterion with one comma-separated list, `!` negating.
fn criteria(args: &[String]) -> Result<Vec<Criterion>, String> {
    if args.is_empty() {
        return Err("Match: missing criteria".to_owned());
    }
    let mut out = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let (sense, name) = match word.strip_prefix('!') {
            Some(rest) => (Sense::Not, rest),
            None => (Sense::Is, word.as_str()),
        };
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "all" => {
                let others = out
                    .iter()
                    .any(|c| !matches!(c, Criterion::Final(_) | Criterion::Canonical(_)));
                if others || words.len() > 0 || sense == Sense::Not {
                    return Err("Match: 'all' cannot be combined with other criteria".to_owned());
                }
                out.push(Criterion::All);
            }
            "final" => out.push(Criterion::Final(sense)),
            "canonical" => out.push(Criterion::Canonical(sense)),
            "host" | "originalhost" | "user" | "localuser" => {
                let Some(list) = words.next() else {
                    return Err(format!("Match: {name} needs an argument"));
                };
                let list = list.clone();
                out.push(match name.as_str() {
                    "host" => Criterion::Host(sense, list),
                    "originalhost" => Criterion::OriginalHost(sense, list),
                    "user" => Criterion::User(sense, list),
                    _ => Criterion::LocalUser(sense, list),
                });
            }
            other if UNSUPPORTED_CRITERIA.contains(&other) => {
                if words.next().is_none() {
                    return Err(format!("Match: {other} needs an argument"));
                }
                out.push(Criterion::Unsupported(other.to_owned()));
            }
            other => return Err(format!("Match: unknown criterion {other:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::time;

    #[test]
    fn times_as_convtime_reads_them() {
        assert_eq!(time("T", "90"), Ok(90));
        assert_eq!(time("T", "1m30s"), Ok(90));
        assert_eq!(time("T", "2H"), Ok(7200));
        assert!(time("T", "1x").is_err());
        assert!(time("T", "m").is_err());
    }
}
