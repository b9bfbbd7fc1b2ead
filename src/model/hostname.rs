//! What a host name (after range expansion) and an `ansible_host` may be.
//!
//! A host name ends up in SSH targets, known_hosts lookups, the journal, `{{ inventory_hostname }}`
//! in gate URLs and in `local` gate command lines run by `sh -c`. So it must be one of the
//! shapes Ansible's own `parse_address` recognises (without ranges or a port):
//!
//! - a DNS-style name: labels of ASCII letters, digits, `-` and `_`, separated by single dots;
//!   a label starts with a letter, digit or `_` and ends with a letter or digit
//!   (`web-01.example.com`, `db_2`);
//! - an IPv4 address (`10.0.0.1`, which the first rule also admits);
//! - an IPv6 address (`2001:db8::1`, `::ffff:192.0.2.1`), without a zone (`%eth0`).
//!
//! Anything else is refused: whitespace, control characters, quotes, `$`, `;`, `|`, `&`,
//! backticks, `/`, `*`, `[`, non-ASCII letters. A port (`web-01:2222`, `[2001:db8::1]:2222`) is
//! split off the inventory key before this check (`model/address.rs`), as Ansible does.

use std::net::Ipv6Addr;

use thiserror::Error;

/// What a host name must be, for messages.
const SHAPE: &str = "a host name is letters, digits, `-`, `_` and `.`, an IPv4 or an IPv6 address";

/// Why a host name was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HostNameError {
    #[error("host name is empty")]
    Empty,
    #[error("host name {name:?} has {what} {found:?}; {SHAPE}")]
    Character {
        name: String,
        what: &'static str,
        found: char,
    },
    #[error(
        "host name {name:?} has a `:` but is not an IPv6 address (write a port as `host:22` or `[v6]:22`, or set ansible_port)"
    )]
    Colon { name: String },
    #[error("host name {name:?} has an empty label (a leading, trailing or doubled `.`); {SHAPE}")]
    EmptyLabel { name: String },
    #[error(
        "host name {name:?} has the label {label:?}, which must start with a letter, digit or `_` and end with a letter or digit"
    )]
    Label { name: String, label: String },
}

/// Checks that `name` is a DNS-style name, an IPv4 or an IPv6 address.
pub fn check(name: &str) -> Result<(), HostNameError> {
    if name.is_empty() {
        return Err(HostNameError::Empty);
    }
    let dns_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(found) = name.chars().find(|c| !dns_char(*c)) {
        if found == ':' {
            return match name.parse::<Ipv6Addr>() {
                Ok(_) => Ok(()),
                Err(_) => Err(HostNameError::Colon {
                    name: name.to_owned(),
                }),
            };
        }
        return Err(HostNameError::Character {
            name: name.to_owned(),
            what: describe(found),
            found,
        });
    }
    for label in name.split('.') {
        let (Some(first), Some(last)) = (label.chars().next(), label.chars().last()) else {
            return Err(HostNameError::EmptyLabel {
                name: name.to_owned(),
            });
        };
        if first == '-' || matches!(last, '-' | '_') {
            return Err(HostNameError::Label {
                name: name.to_owned(),
                label: label.to_owned(),
            });
        }
    }
    Ok(())
}

fn describe(c: char) -> &'static str {
    if c.is_whitespace() {
        "whitespace"
    } else if c.is_control() {
        "a control character"
    } else if c.is_ascii() {
        "the character"
    } else {
        "the non-ASCII character"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_accepted() {
        for name in [
            "web-01",
            "web-01.example.com",
            "db_2",
            "_gateway",
            "a",
            "1",
            "WEB01.Example.COM",
            "10.0.0.1",
            "999.1.1.1",
            "::1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "fe80:0:0:0:0:0:0:1",
        ] {
            assert_eq!(check(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn hostile_and_malformed_names_are_refused() {
        let cases = [
            (
                "web-03;touch${IFS}/tmp/x",
                "host name \"web-03;touch${IFS}/tmp/x\" has the character ';'; a host name is letters, digits, `-`, `_` and `.`, an IPv4 or an IPv6 address",
            ),
            (
                "web 03",
                "host name \"web 03\" has whitespace ' '; a host name is letters, digits, `-`, `_` and `.`, an IPv4 or an IPv6 address",
            ),
            (
                "web\u{7}",
                "host name \"web\\u{7}\" has a control character '\\u{7}'; a host name is letters, digits, `-`, `_` and `.`, an IPv4 or an IPv6 address",
            ),
            (
                "wéb",
                "host name \"wéb\" has the non-ASCII character 'é'; a host name is letters, digits, `-`, `_` and `.`, an IPv4 or an IPv6 address",
            ),
            (
                "web-01:2222",
                "host name \"web-01:2222\" has a `:` but is not an IPv6 address (write a port as `host:22` or `[v6]:22`, or set ansible_port)",
            ),
            (
                "web..example",
                "host name \"web..example\" has an empty label (a leading, trailing or doubled `.`); a host name is letters, digits, `-`, `_` and `.`, an IPv4 or an IPv6 address",
            ),
            (
                "-oProxyCommand",
                "host name \"-oProxyCommand\" has the label \"-oProxyCommand\", which must start with a letter, digit or `_` and end with a letter or digit",
            ),
            (
                "web_.example",
                "host name \"web_.example\" has the label \"web_\", which must start with a letter, digit or `_` and end with a letter or digit",
            ),
        ];
        for (name, message) in cases {
            assert_eq!(
                check(name).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{name:?}"
            );
        }
        for name in [
            "a$b",
            "a`b`",
            "a'b",
            "a\"b",
            "a/b",
            "a|b",
            "a&b",
            "a*b",
            "a[1]",
            "a\tb",
            "a\nb",
            "fe80::1%eth0",
            "example.com.",
            ".example",
            "",
        ] {
            assert!(check(name).is_err(), "{name:?} accepted");
        }
    }
}
