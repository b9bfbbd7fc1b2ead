//! Ansible's `split_host_pattern`: a pattern into its terms. Commas split when there is
//! one; otherwise a pattern that is one address (`2001:db8::1`, `web[1:3]`, `web-01:22`)
//! is one term, and anything else is cut at `:` and blanks, keeping `[...]` whole.

use std::sync::LazyLock;

use regex::Regex;

use super::super::address;

/// Runs of anything but blanks, `:` and brackets, or whole bracketed expressions.
static PIECE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("regex"));

/// The terms of `pattern`, trimmed, empty ones left out.
pub(super) fn split(pattern: &str) -> Vec<&str> {
    let pieces: Vec<&str> = if pattern.contains(',') {
        pattern.split(',').collect()
    } else if address::parse(pattern).is_some() {
        vec![pattern]
    } else {
        PIECE.find_iter(pattern).map(|m| m.as_str()).collect()
    };
    pieces
        .into_iter()
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn commas_colons_and_addresses() {
        assert_eq!(split("web:&eu:!web-03"), ["web", "&eu", "!web-03"]);
        assert_eq!(split("web, db ,,"), ["web", "db"]);
        assert_eq!(split("web1:2222,db"), ["web1:2222", "db"]);
        assert_eq!(split("web1:2222"), ["web1:2222"]);
        assert_eq!(split("2001:db8::1"), ["2001:db8::1"]);
        assert_eq!(split("2001:db8::1,web"), ["2001:db8::1", "web"]);
        assert_eq!(split("web[1:3]"), ["web[1:3]"]);
        assert_eq!(split("web[1:3]:db"), ["web[1:3]", "db"]);
        assert_eq!(split("web db"), ["web", "db"]);
        assert_eq!(split("web[0]:db[1:]"), ["web[0]", "db[1:]"]);
    }
}
