//! Ansible's `parse_address` (ansible-core 2.19, `ansible/parsing/utils/addresses.py`): a host
//! identifier (a name, an IPv4 or an IPv6 address, any of them with `[x:y]` ranges) and an
//! optional port. `web-01:2222` and `[2001:db8::1]:2222` have ports; `2001:db8::1` does not
//! (an IPv6 address takes a port only in brackets). Host keys of an inventory and the
//! splitting of host patterns both ask it.

use std::sync::LazyLock;

use regex::Regex;

/// A range `[x:y]` or `[x:y:z]` inside a host part, in each of Ansible's three flavours.
const NUMERIC_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

static BRACKETED_HOSTPORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[(.+)\]:([0-9]+)$").expect("regex"));
static HOSTPORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$").expect("regex"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    let part = format!(r"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUMERIC_RANGE})");
    Regex::new(&format!(r"(?i)^(?:{part}\.){{3}}{part}$")).expect("regex")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!(r"(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
    let alternatives = [
        format!(r"(?:{c}:){{7}}{c}"),
        format!(r"(?:{c}:){{1,6}}:"),
        format!(r"(?:{c}:)(?::{c}){{1,6}}"),
        format!(r"(?:{c}:){{2}}(?::{c}){{1,5}}"),
        format!(r"(?:{c}:){{3}}(?::{c}){{1,4}}"),
        format!(r"(?:{c}:){{4}}(?::{c}){{1,3}}"),
        format!(r"(?:{c}:){{5}}(?::{c}){{1,2}}"),
        format!(r"(?:{c}:){{6}}(?::{c})"),
        format!(r":(?::{c}){{1,6}}"),
        format!(r"{c}?::"),
        format!(r"(?:0:){{6}}(?:{c}\.){{3}}{c}"),
        format!(r"::(?:ffff:)?(?:{c}\.){{3}}{c}"),
        format!(r"(?:0:){{5}}ffff:(?:{c}\.){{3}}{c}"),
    ];
    Regex::new(&format!("(?i)^(?:{})$", alternatives.join("|"))).expect("regex")
});
/// One label of a host name, without Ansible's "does not end with `_` or `-`" look-behind,
/// which [`is_hostname`] checks separately.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^(?:\w|{ALNUM_RANGE})(?:[\w-]|{ALNUM_RANGE})*$"
    ))
    .expect("regex")
});

/// A host identifier and its port, as `parse_address` returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address<'a> {
    pub host: &'a str,
    /// The port as written (digits only; it may be out of range).
    pub port: Option<&'a str>,
}

/// Ansible's `parse_address(text, allow_ranges=True)`: `None` where Ansible raises ("not a
/// valid network hostname").
pub fn parse(text: &str) -> Option<Address<'_>> {
    let mut host = text;
    let mut port = None;
    // Ansible tries both forms in turn, the second on what the first left.
    for form in [&*BRACKETED_HOSTPORT, &*HOSTPORT] {
        if let Some(found) = form.captures(host) {
            let (Some(h), Some(p)) = (found.get(1), found.get(2)) else {
                continue;
            };
            host = h.as_str();
            port = Some(p.as_str());
        }
    }
    (IPV4.is_match(host) || IPV6.is_match(host) || is_hostname(host))
        .then_some(Address { host, port })
}

/// Whether `text` is a host name (labels with ranges, separated by dots) as Ansible's
/// `hostname` expression reads it.
fn is_hostname(text: &str) -> bool {
    text.split('.')
        .all(|label| LABEL.is_match(label) && !label.ends_with(['_', '-']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<(&str, Option<&str>)> {
        parse(text).map(|a| (a.host, a.port))
    }

    #[test]
    fn names_addresses_and_ports() {
        assert_eq!(parsed("web-01"), Some(("web-01", None)));
        assert_eq!(parsed("web-01:2222"), Some(("web-01", Some("2222"))));
        assert_eq!(
            parsed("web-[01:10]:2222"),
            Some(("web-[01:10]", Some("2222")))
        );
        assert_eq!(parsed("10.0.0.1:22"), Some(("10.0.0.1", Some("22"))));
        assert_eq!(parsed("2001:db8::1"), Some(("2001:db8::1", None)));
        assert_eq!(
            parsed("[2001:db8::1]:2222"),
            Some(("2001:db8::1", Some("2222")))
        );
        assert_eq!(parsed("[web-01]:22"), Some(("web-01", Some("22"))));
        assert_eq!(parsed("web[1:3]"), Some(("web[1:3]", None)));
        assert_eq!(
            parsed("db-[a:f].example.com"),
            Some(("db-[a:f].example.com", None))
        );
    }

    #[test]
    fn what_ansible_does_not_recognise() {
        for text in [
            "web:db", "web db", "web-", "web_", "a..b", "web[0]", "web:&db", "", "web:",
        ] {
            assert_eq!(parsed(text), None, "{text}");
        }
    }
}
