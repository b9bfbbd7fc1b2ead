//! OpenSSH's pattern matching: `*` and `?` wildcards (`match_pattern`), and comma-separated
//! lists where a `!pattern` that matches vetoes the list (`match_pattern_list`).

/// Whether `text` matches the wildcard `pattern` (case-sensitive, as OpenSSH).
pub(super) fn wildcard(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// How a pattern list judged a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ListMatch {
    /// A `!pattern` matched.
    Vetoed,
    /// A positive pattern matched and no negated one did.
    Matched,
    NoMatch,
}

/// How patterns are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Case {
    /// Host names: the patterns are lowercased (the caller lowercases the text).
    Folded,
    /// User names.
    Exact,
}

/// OpenSSH's `match_pattern_list`: `text` against `a,b*,!c`.
pub(super) fn list(text: &str, patterns: &str, case: Case) -> ListMatch {
    let mut matched = false;
    for sub in patterns.split(',') {
        let (negated, sub) = match sub.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, sub),
        };
        let sub = match case {
            Case::Folded => sub.to_ascii_lowercase(),
            Case::Exact => sub.to_owned(),
        };
        if wildcard(text, &sub) {
            if negated {
                return ListMatch::Vetoed;
            }
            matched = true;
        }
    }
    if matched {
        ListMatch::Matched
    } else {
        ListMatch::NoMatch
    }
}

/// Whether a `Host` line's patterns select `host`: one positive pattern matches and no
/// negated one does.
pub(super) fn host_line(host: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard(host, negated) => return false,
            Some(_) => {}
            None => matched |= wildcard(host, pattern),
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("web-01", "web-*"));
        assert!(wildcard("web-01", "web-0?"));
        assert!(wildcard("a", "*"));
        assert!(wildcard("", "*"));
        assert!(!wildcard("web-01", "web-0"));
        assert!(wildcard("abcabd", "*ab?"));
        assert!(!wildcard("Web", "web"));
    }

    #[test]
    fn lists_and_host_lines() {
        assert_eq!(list("a", "a,!b*", Case::Folded), ListMatch::Matched);
        assert_eq!(list("bb", "a,!b*", Case::Folded), ListMatch::Vetoed);
        assert_eq!(list("bb", "!a", Case::Folded), ListMatch::NoMatch);
        assert_eq!(list("abc", "A*", Case::Folded), ListMatch::Matched);
        assert_eq!(list("abc", "A*", Case::Exact), ListMatch::NoMatch);
        let pats = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(host_line("web-1", &pats(&["web-*", "!web-2"])));
        assert!(!host_line("web-2", &pats(&["web-*", "!web-2"])));
        assert!(!host_line("db", &pats(&["!web-2"])));
    }
}
