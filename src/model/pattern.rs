//! Ansible's host-pattern language, as used by `--limit` and a spec's
//! `hosts:`.
//!
//! This module owns parsing a pattern such as `webservers:&eu:!web-03` and
//! turning it into the inventory hosts it selects. It does not know the
//! inventory type: it works on any [`HostUniverse`].
//!
//! # Syntax
//!
//! A pattern is a list of terms separated by `,` or `:`. A separator inside
//! `[...]` does not count, so `web[1:3]` stays one term. Blanks around terms
//! are ignored and so are empty terms. Host names containing `:` (including
//! IPv6 addresses) cannot be written in a pattern, and neither can a regex
//! that has `,` or `:` outside `[...]`.
//!
//! Each term is, after an optional prefix `&` (intersection) or `!`
//! (exclusion):
//!
//! - `all`: every host.
//! - A plain name: the group of that name (with the hosts of its descendant
//!   groups) if there is one, otherwise the host of that name. A name used
//!   for both a group and a host therefore means the group.
//! - A glob, any term with `*`, `?` or `[`: shell wildcards with Python's
//!   `fnmatch` semantics (`*`, `?`, `[abc]`, `[a-z]`, `[!abc]`), matched
//!   against the whole name, case-sensitively. The matches are the hosts of
//!   every group whose name matches and every host whose name matches. The
//!   built-in group names `all` and `ungrouped` are never matched by a glob,
//!   so `a*` does not mean everything.
//! - A regex, a term starting with `~`: like a glob, but the rest of the term
//!   is a regex (Rust `regex` syntax) anchored at the start of the name only,
//!   as Python's `re.match` is: `~web` matches `web-01` and `webby`.
//!
//! A non-regex term may end with a subscript that picks hosts out of what the
//! term matches, taken in inventory order: `web[0]` is the first,
//! `web[-1]` the last, `web[1:3]` the second to the fourth (inclusive) and
//! `web[2:]` the third onwards. A slice end past the last host stops at the
//! last host; an index or slice start past it is an error. Any other
//! bracket at the end is a glob class; `web[1-3]` is rejected as ambiguous
//! (old Ansible read it as a slice).
//!
//! # Evaluation
//!
//! As in Ansible, terms are reordered: first the plain terms, whose matches
//! are united, then the `&` terms, each of which keeps only the hosts it
//! also matches, then the `!` terms, each of which removes the hosts it
//! matches. A pattern with only `&` and `!` terms starts from `all`. The
//! result is in inventory order with no duplicates.
//!
//! # Safety
//!
//! A term that matches no host and no group is an error, whatever its
//! prefix. Ansible only warns, but here a typo in `!db-primary` would
//! silently put the primary database in the rollout. A term that matches an
//! empty group is fine.

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use thiserror::Error;

use super::glob::glob_to_regex;

/// The hosts and groups a pattern is evaluated against.
pub trait HostUniverse {
    /// How many hosts there are; a host is named by its index, in inventory
    /// order.
    fn host_count(&self) -> usize;
    /// The name of the host at `index` (below [`HostUniverse::host_count`]).
    fn host_name(&self, index: usize) -> &str;
    /// Members of a group (including hosts of its descendant groups), as host
    /// indices in inventory order, or None if no such group.
    fn group_members(&self, group: &str) -> Option<Vec<usize>>;
    /// All group names (for glob/regex matching against group names too, as
    /// Ansible does).
    fn group_names(&self) -> Vec<&str>;
}

/// A parsed host pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    terms: Vec<Term>,
}

/// Why a pattern could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// The pattern has no terms.
    #[error("host pattern is empty")]
    Empty,
    /// A `[` with no `]` after it.
    #[error("unclosed \"[\" in host pattern {pattern:?}")]
    Unclosed {
        /// The whole pattern.
        pattern: String,
    },
    /// Blanks inside a term, as in `web db`.
    #[error("pattern term {term:?} contains whitespace")]
    Whitespace {
        /// The term.
        term: String,
    },
    /// A bare `&` or `!`.
    #[error("pattern term {term:?} has nothing after its prefix")]
    NothingAfterPrefix {
        /// The term.
        term: String,
    },
    /// Two prefixes, as in `!&web`.
    #[error("pattern term {term:?} has more than one prefix")]
    DoublePrefix {
        /// The term.
        term: String,
    },
    /// A `~` with nothing after it.
    #[error("pattern term {term:?} has an empty regex")]
    EmptyRegex {
        /// The term.
        term: String,
    },
    /// A `~` term that does not compile.
    #[error("pattern term {term:?} is not a valid regex")]
    Regex {
        /// The term.
        term: String,
    },
    /// A subscript written `[x-y]`.
    #[error(
        "pattern term {term:?} is ambiguous; write {base}[{start}:{end}] for a slice or ~{base}[{start}-{end}] for a regex"
    )]
    DashSubscript {
        /// The term.
        term: String,
        /// The term without prefix and subscript.
        base: String,
        /// The subscript's start as written.
        start: String,
        /// The subscript's end as written.
        end: String,
    },
    /// A slice whose start is after its end, as in `web[3:1]`.
    #[error("pattern term {term:?} has a subscript start after its end")]
    SubscriptOrder {
        /// The term.
        term: String,
    },
    /// A subscript number too large to be an index.
    #[error("pattern term {term:?} has a subscript too large")]
    SubscriptTooLarge {
        /// The term.
        term: String,
    },
    /// A term that matches no host and no group.
    #[error("pattern term {term:?} matches no host or group")]
    NoMatch {
        /// The term.
        term: String,
    },
    /// A subscript past the hosts a term matches.
    #[error("pattern term {term:?} is out of range for {hosts} hosts")]
    OutOfRange {
        /// The term.
        term: String,
        /// How many hosts the term matches before its subscript.
        hosts: usize,
    },
}

/// What a term does to the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Intersect,
    Exclude,
}

/// How a term matches names.
#[derive(Debug, Clone)]
enum Matcher {
    All,
    Name(String),
    /// A glob or regex, compiled.
    Wildcard(Regex),
}

/// A subscript after a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscript {
    /// `[i]`; negative counts from the end.
    Index(i64),
    /// `[start:end]` or `[start:]`, inclusive.
    Slice { start: usize, end: Option<usize> },
}

/// One term of a pattern.
#[derive(Debug, Clone)]
struct Term {
    /// The term as written, prefix included.
    text: String,
    op: Op,
    matcher: Matcher,
    subscript: Option<Subscript>,
}

impl Pattern {
    /// The pattern `all`.
    pub fn all() -> Pattern {
        Pattern {
            terms: vec![Term {
                text: "all".to_owned(),
                op: Op::Union,
                matcher: Matcher::All,
                subscript: None,
            }],
        }
    }

    /// The hosts the pattern selects: host indices, in inventory order,
    /// without duplicates. Linear in the hosts for each term.
    pub fn select(&self, universe: &impl HostUniverse) -> Result<Vec<usize>, PatternError> {
        let count = universe.host_count();
        let of = |op: Op| self.terms.iter().filter(move |term| term.op == op);
        let mut selected = vec![false; count];
        let mut any_union = false;
        for term in of(Op::Union) {
            any_union = true;
            for index in term.matches(universe)? {
                selected[index] = true;
            }
        }
        if !any_union {
            selected.fill(true);
        }
        for term in of(Op::Intersect) {
            let matched = mask(count, &term.matches(universe)?);
            for (keep, also) in selected.iter_mut().zip(matched) {
                *keep &= also;
            }
        }
        for term in of(Op::Exclude) {
            for index in term.matches(universe)? {
                selected[index] = false;
            }
        }
        Ok((0..count).filter(|index| selected[*index]).collect())
    }
}

/// A `count`-long mask with the given indices set.
fn mask(count: usize, indices: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; count];
    for index in indices {
        mask[*index] = true;
    }
    mask
}

impl Term {
    /// The hosts this term matches, subscript applied: in inventory order,
    /// without duplicates, all below the universe's host count.
    fn matches(&self, universe: &impl HostUniverse) -> Result<Vec<usize>, PatternError> {
        let count = universe.host_count();
        let mut found = vec![false; count];
        let mut add = |indices: &[usize]| {
            for index in indices {
                if let Some(slot) = found.get_mut(*index) {
                    *slot = true;
                }
            }
        };
        let mut matched_a_name = false;
        match &self.matcher {
            Matcher::All => {
                found.fill(true);
                matched_a_name = true;
            }
            Matcher::Name(name) => {
                if let Some(members) = universe.group_members(name) {
                    add(&members);
                    matched_a_name = true;
                } else {
                    let same: Vec<usize> = (0..count)
                        .filter(|i| universe.host_name(*i) == name)
                        .collect();
                    matched_a_name = !same.is_empty();
                    add(&same);
                }
            }
            Matcher::Wildcard(regex) => {
                for group in universe.group_names() {
                    if group != "all" && group != "ungrouped" && regex.is_match(group) {
                        if let Some(members) = universe.group_members(group) {
                            add(&members);
                        }
                        matched_a_name = true;
                    }
                }
                let same: Vec<usize> = (0..count)
                    .filter(|i| regex.is_match(universe.host_name(*i)))
                    .collect();
                matched_a_name |= !same.is_empty();
                add(&same);
            }
        }
        if !matched_a_name {
            return Err(PatternError::NoMatch {
                term: self.text.clone(),
            });
        }
        let found: Vec<usize> = (0..count).filter(|i| found[*i]).collect();
        let Some(subscript) = self.subscript else {
            return Ok(found);
        };
        let out_of_range = || PatternError::OutOfRange {
            term: self.text.clone(),
            hosts: found.len(),
        };
        let last = found.len().checked_sub(1).ok_or_else(out_of_range)?;
        match subscript {
            Subscript::Index(index) => {
                let position = if index < 0 {
                    usize::try_from(index.unsigned_abs())
                        .ok()
                        .and_then(|back| found.len().checked_sub(back))
                } else {
                    usize::try_from(index).ok()
                };
                position
                    .and_then(|position| found.get(position))
                    .map(|host| vec![*host])
                    .ok_or_else(out_of_range)
            }
            Subscript::Slice { start, end } => {
                let end = end.map_or(last, |end| end.min(last));
                if start > end {
                    return Err(out_of_range());
                }
                found
                    .get(start..=end)
                    .map(<[usize]>::to_vec)
                    .ok_or_else(out_of_range)
            }
        }
    }

    /// Parses one non-empty, trimmed term.
    fn parse(text: &str) -> Result<Term, PatternError> {
        let error_text = || text.to_owned();
        if text.contains(char::is_whitespace) {
            return Err(PatternError::Whitespace { term: error_text() });
        }
        let (op, body) = if let Some(body) = text.strip_prefix('&') {
            (Op::Intersect, body)
        } else if let Some(body) = text.strip_prefix('!') {
            (Op::Exclude, body)
        } else {
            (Op::Union, text)
        };
        if body.is_empty() {
            return Err(PatternError::NothingAfterPrefix { term: error_text() });
        }
        if op != Op::Union && body.starts_with(['&', '!']) {
            return Err(PatternError::DoublePrefix { term: error_text() });
        }
        if let Some(source) = body.strip_prefix('~') {
            if source.is_empty() {
                return Err(PatternError::EmptyRegex { term: error_text() });
            }
            let regex = Regex::new(&format!("^(?:{source})"))
                .map_err(|_| PatternError::Regex { term: error_text() })?;
            return Ok(Term {
                text: text.to_owned(),
                op,
                matcher: Matcher::Wildcard(regex),
                subscript: None,
            });
        }
        let (expression, subscript) = split_subscript(text, body)?;
        let matcher = if expression == "all" {
            Matcher::All
        } else if expression.contains(['*', '?', '[']) {
            // The translation escapes every literal, so it always compiles.
            Regex::new(&glob_to_regex(expression))
                .map(Matcher::Wildcard)
                .map_err(|_| PatternError::Regex { term: error_text() })?
        } else {
            Matcher::Name(expression.to_owned())
        };
        Ok(Term {
            text: text.to_owned(),
            op,
            matcher,
            subscript,
        })
    }
}

/// Splits a trailing subscript off `body` (a term without its prefix).
fn split_subscript<'a>(
    term: &str,
    body: &'a str,
) -> Result<(&'a str, Option<Subscript>), PatternError> {
    let Some(inner) = body.strip_suffix(']') else {
        return Ok((body, None));
    };
    let Some(open) = inner.rfind('[') else {
        return Ok((body, None));
    };
    let (base, inside) = (&inner[..open], &inner[open + 1..]);
    if base.is_empty() {
        return Ok((body, None));
    }
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let too_large = || PatternError::SubscriptTooLarge {
        term: term.to_owned(),
    };
    let number = |text: &str| text.parse::<usize>().map_err(|_| too_large());
    if let Some((start, end)) = inside.split_once(':') {
        if !digits(start) || !(end.is_empty() || digits(end)) {
            return Ok((body, None));
        }
        let start = number(start)?;
        let end = if end.is_empty() {
            None
        } else {
            Some(number(end)?)
        };
        if end.is_some_and(|end| end < start) {
            return Err(PatternError::SubscriptOrder {
                term: term.to_owned(),
            });
        }
        return Ok((base, Some(Subscript::Slice { start, end })));
    }
    if let Some((start, end)) = inside.split_once('-')
        && digits(start)
        && (end.is_empty() || digits(end))
    {
        return Err(PatternError::DashSubscript {
            term: term.to_owned(),
            base: base.to_owned(),
            start: start.to_owned(),
            end: end.to_owned(),
        });
    }
    let unsigned = inside.strip_prefix('-').unwrap_or(inside);
    if !digits(unsigned) {
        return Ok((body, None));
    }
    let index = inside.parse::<i64>().map_err(|_| too_large())?;
    Ok((base, Some(Subscript::Index(index))))
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(source: &str) -> Result<Pattern, PatternError> {
        let mut texts = Vec::new();
        let mut start = 0;
        let mut in_bracket = false;
        for (at, char) in source.char_indices() {
            match char {
                '[' => in_bracket = true,
                ']' => in_bracket = false,
                ',' | ':' if !in_bracket => {
                    texts.push(&source[start..at]);
                    start = at + 1;
                }
                _ => {}
            }
        }
        if in_bracket {
            return Err(PatternError::Unclosed {
                pattern: source.to_owned(),
            });
        }
        texts.push(&source[start..]);
        let terms = texts
            .into_iter()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(Term::parse)
            .collect::<Result<Vec<Term>, PatternError>>()?;
        if terms.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Pattern { terms })
    }
}

impl fmt::Display for Pattern {
    /// The terms as written, in their written order, joined with `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, term) in self.terms.iter().enumerate() {
            if position > 0 {
                f.write_str(",")?;
            }
            f.write_str(&term.text)?;
        }
        Ok(())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Pattern {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A universe given as host names and (group, member indices) pairs.
    struct Fleet {
        hosts: Vec<String>,
        groups: Vec<(&'static str, Vec<usize>)>,
    }

    impl HostUniverse for Fleet {
        fn host_count(&self) -> usize {
            self.hosts.len()
        }

        fn host_name(&self, index: usize) -> &str {
            &self.hosts[index]
        }

        fn group_members(&self, group: &str) -> Option<Vec<usize>> {
            self.groups
                .iter()
                .find(|(name, _)| *name == group)
                .map(|(_, members)| members.clone())
        }

        fn group_names(&self) -> Vec<&str> {
            self.groups.iter().map(|(name, _)| *name).collect()
        }
    }

    /// 0 web-01, 1 web-02, 2 web-03, 3 db-primary, 4 db-replica, 5 lb-1,
    /// 6 solo.
    fn fleet() -> Fleet {
        let hosts = [
            "web-01",
            "web-02",
            "web-03",
            "db-primary",
            "db-replica",
            "lb-1",
            "solo",
        ];
        Fleet {
            hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
            groups: vec![
                ("all", (0..7).collect()),
                ("ungrouped", vec![6]),
                ("web", vec![0, 1, 2]),
                ("db", vec![3, 4]),
                ("lb", vec![5]),
                ("eu", vec![0, 3, 5]),
                ("us", vec![1, 2, 4]),
                ("prod", (0..6).collect()),
                ("canary", vec![]),
            ],
        }
    }

    fn parse(source: &str) -> Pattern {
        match source.parse() {
            Ok(pattern) => pattern,
            Err(error) => panic!("{source:?} failed to parse: {error}"),
        }
    }

    fn select(source: &str) -> Vec<usize> {
        match parse(source).select(&fleet()) {
            Ok(hosts) => hosts,
            Err(error) => panic!("{source:?} failed to select: {error}"),
        }
    }

    fn parse_error(source: &str) -> String {
        match source.parse::<Pattern>() {
            Ok(pattern) => panic!("{source:?} parsed as {pattern:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn select_error(source: &str) -> String {
        match parse(source).select(&fleet()) {
            Ok(hosts) => panic!("{source:?} selected {hosts:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn all_and_star() {
        assert_eq!(select("all"), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(select("*"), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            Pattern::all().select(&fleet()),
            Ok(vec![0, 1, 2, 3, 4, 5, 6])
        );
        assert_eq!(Pattern::all().to_string(), "all");
        assert_eq!(Pattern::all(), parse("all"));
    }

    #[test]
    fn all_selects_nothing_from_an_empty_inventory() {
        let empty = Fleet {
            hosts: vec![],
            groups: vec![],
        };
        assert_eq!(Pattern::all().select(&empty), Ok(vec![]));
        assert_eq!(parse("!all").select(&empty), Ok(vec![]));
        assert_eq!(
            parse("web").select(&empty),
            Err(PatternError::NoMatch {
                term: "web".to_owned()
            })
        );
    }

    #[test]
    fn plain_names() {
        assert_eq!(select("web"), [0, 1, 2]);
        assert_eq!(select("db-primary"), [3]);
        assert_eq!(select("ungrouped"), [6]);
        assert_eq!(select("canary"), Vec::<usize>::new());
    }

    #[test]
    fn union_is_in_inventory_order_without_duplicates() {
        assert_eq!(select("db,web"), [0, 1, 2, 3, 4]);
        assert_eq!(select("db:web"), [0, 1, 2, 3, 4]);
        assert_eq!(select("eu,web,web-01"), [0, 1, 2, 3, 5]);
        assert_eq!(select("solo,lb-1,lb"), [5, 6]);
    }

    #[test]
    fn intersection_and_exclusion() {
        assert_eq!(select("web:&eu"), [0]);
        assert_eq!(select("prod:!db-primary"), [0, 1, 2, 4, 5]);
        assert_eq!(select("web,db:&us:!web-03"), [1, 4]);
        assert_eq!(select("prod:&eu:&db"), [3]);
        assert_eq!(select("web:!canary"), [0, 1, 2]);
        assert_eq!(select("web:&canary"), Vec::<usize>::new());
    }

    #[test]
    fn terms_are_reordered_union_then_intersection_then_exclusion() {
        assert_eq!(select("!db-primary,prod"), [0, 1, 2, 4, 5]);
        assert_eq!(select("&eu,web"), [0]);
        assert_eq!(select("!web:&eu:db"), [3]);
        assert_eq!(select("!eu,db,&prod,web"), [1, 2, 4]);
    }

    #[test]
    fn only_intersection_or_exclusion_starts_from_all() {
        assert_eq!(select("!web"), [3, 4, 5, 6]);
        assert_eq!(select("&eu"), [0, 3, 5]);
        assert_eq!(select("&eu:!lb"), [0, 3]);
    }

    #[test]
    fn globs_match_groups_and_hosts() {
        assert_eq!(select("web-0*"), [0, 1, 2]);
        assert_eq!(select("web-0[12]*"), [0, 1]);
        assert_eq!(select("web-0[!1]"), [1, 2]);
        assert_eq!(select("web-0[2-9]*"), [1, 2]);
        assert_eq!(select("db-pr?mary"), [3]);
        assert_eq!(select("*-1"), [5]);
        assert_eq!(select("e?"), [0, 3, 5]);
        assert_eq!(select("?b"), [3, 4, 5]);
        assert_eq!(select("prod:!web-0[!2]"), [1, 3, 4, 5]);
    }

    #[test]
    fn globs_never_match_all_or_ungrouped() {
        assert_eq!(select("u*"), [1, 2, 4]);
        assert_eq!(
            select_error("a*"),
            "pattern term \"a*\" matches no host or group"
        );
        assert_eq!(
            select_error("~al"),
            "pattern term \"~al\" matches no host or group"
        );
    }

    #[test]
    fn regexes_are_anchored_at_the_start_only() {
        assert_eq!(select("~web-0[13]"), [0, 2]);
        assert_eq!(select("~(web|db)"), [0, 1, 2, 3, 4]);
        assert_eq!(select("~db-p"), [3]);
        assert_eq!(select("~.*-1$"), [5]);
        assert_eq!(select("prod:!~db"), [0, 1, 2, 5]);
        assert_eq!(select("&~web-0[12]"), [0, 1]);
        assert_eq!(
            select_error("~eb"),
            "pattern term \"~eb\" matches no host or group"
        );
    }

    #[test]
    fn regexes_take_no_subscript() {
        assert_eq!(select("~web-0[3]"), [2]);
    }

    #[test]
    fn subscripts() {
        assert_eq!(select("web[0]"), [0]);
        assert_eq!(select("web[2]"), [2]);
        assert_eq!(select("web[-1]"), [2]);
        assert_eq!(select("web[-3]"), [0]);
        assert_eq!(select("web[1:2]"), [1, 2]);
        assert_eq!(select("web[0:0]"), [0]);
        assert_eq!(select("web[1:]"), [1, 2]);
        assert_eq!(select("web[0:99]"), [0, 1, 2]);
        assert_eq!(select("all[-2]"), [5]);
        assert_eq!(select("prod[2:3]"), [2, 3]);
        assert_eq!(select("web*[1]"), [1]);
        assert_eq!(select("web-0*[1:]"), [1, 2]);
        assert_eq!(select("web[1],db[0]"), [1, 3]);
        assert_eq!(select("prod:!web[0:1]"), [2, 3, 4, 5]);
        assert_eq!(select("prod:&eu[1:]"), [3, 5]);
    }

    #[test]
    fn a_trailing_bracket_of_digits_is_a_subscript_not_a_class() {
        assert_eq!(
            select_error("web-0[12]"),
            "pattern term \"web-0[12]\" matches no host or group"
        );
        assert_eq!(select("web-0[12]*"), [0, 1]);
    }

    #[test]
    fn brackets_that_are_not_subscripts_are_glob_classes() {
        assert_eq!(select("lb-[1]*,web-0[a1]"), [0, 5]);
        assert_eq!(
            select_error("lb-[1]x*"),
            "pattern term \"lb-[1]x*\" matches no host or group"
        );
        assert_eq!(select("web-0[1:3x]"), [0, 2]);
        assert_eq!(select("[w]eb"), [0, 1, 2]);
        assert_eq!(
            select_error("web-[-1:2]"),
            "pattern term \"web-[-1:2]\" matches no host or group"
        );
    }

    #[test]
    fn subscript_out_of_range() {
        let cases = [
            (
                "web[3]",
                "pattern term \"web[3]\" is out of range for 3 hosts",
            ),
            (
                "web[-4]",
                "pattern term \"web[-4]\" is out of range for 3 hosts",
            ),
            (
                "web[3:]",
                "pattern term \"web[3:]\" is out of range for 3 hosts",
            ),
            (
                "web[3:9]",
                "pattern term \"web[3:9]\" is out of range for 3 hosts",
            ),
            (
                "canary[0]",
                "pattern term \"canary[0]\" is out of range for 0 hosts",
            ),
            (
                "canary[0:]",
                "pattern term \"canary[0:]\" is out of range for 0 hosts",
            ),
            (
                "web:!db[-3]",
                "pattern term \"!db[-3]\" is out of range for 2 hosts",
            ),
            (
                "web:&db[9223372036854775807]",
                "pattern term \"&db[9223372036854775807]\" is out of range for 2 hosts",
            ),
            (
                "web[-9223372036854775808]",
                "pattern term \"web[-9223372036854775808]\" is out of range for 3 hosts",
            ),
        ];
        for (source, message) in cases {
            assert_eq!(select_error(source), message, "pattern {source:?}");
        }
    }

    #[test]
    fn unmatched_terms_are_errors_whatever_their_prefix() {
        let cases = [
            ("wbe", "pattern term \"wbe\" matches no host or group"),
            ("web,wbe", "pattern term \"wbe\" matches no host or group"),
            ("web:&ue", "pattern term \"&ue\" matches no host or group"),
            (
                "prod:!db-primry",
                "pattern term \"!db-primry\" matches no host or group",
            ),
            (
                "!db-primry",
                "pattern term \"!db-primry\" matches no host or group",
            ),
            ("zz*", "pattern term \"zz*\" matches no host or group"),
            ("web:!zz?", "pattern term \"!zz?\" matches no host or group"),
            ("~zz", "pattern term \"~zz\" matches no host or group"),
            ("WEB", "pattern term \"WEB\" matches no host or group"),
            ("Web*", "pattern term \"Web*\" matches no host or group"),
            (
                "nope[0]",
                "pattern term \"nope[0]\" matches no host or group",
            ),
        ];
        for (source, message) in cases {
            assert_eq!(select_error(source), message, "pattern {source:?}");
        }
    }

    #[test]
    fn a_group_wins_over_a_host_of_the_same_name() {
        let fleet = Fleet {
            hosts: vec!["app".to_owned(), "app-1".to_owned()],
            groups: vec![("app", vec![1])],
        };
        assert_eq!(parse("app").select(&fleet), Ok(vec![1]));
        assert_eq!(parse("app*").select(&fleet), Ok(vec![0, 1]));
    }

    #[test]
    fn bad_group_member_indices_are_ignored() {
        let fleet = Fleet {
            hosts: vec!["a".to_owned()],
            groups: vec![("g", vec![0, 7])],
        };
        assert_eq!(parse("g").select(&fleet), Ok(vec![0]));
        assert_eq!(parse("g*").select(&fleet), Ok(vec![0]));
        assert_eq!(parse("!g").select(&fleet), Ok(vec![]));
    }

    #[test]
    fn display_normalizes_separators_and_blanks() {
        let cases = [
            ("web: &eu , !web-01", "web,&eu,!web-01"),
            (",web,,db,", "web,db"),
            ("web[1:3]:db", "web[1:3],db"),
            ("~web-0[1:3]", "~web-0[1:3]"),
            ("  all  ", "all"),
        ];
        for (source, shown) in cases {
            let pattern = parse(source);
            assert_eq!(pattern.to_string(), shown, "pattern {source:?}");
            assert_eq!(parse(shown), pattern, "pattern {source:?}");
        }
        assert_ne!(parse("web"), parse("db"));
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("", "host pattern is empty"),
            (" , : ", "host pattern is empty"),
            ("web[1", "unclosed \"[\" in host pattern \"web[1\""),
            ("web[1,db", "unclosed \"[\" in host pattern \"web[1,db\""),
            ("web db", "pattern term \"web db\" contains whitespace"),
            ("web,\tdb x", "pattern term \"db x\" contains whitespace"),
            ("!", "pattern term \"!\" has nothing after its prefix"),
            ("web:&", "pattern term \"&\" has nothing after its prefix"),
            ("!&web", "pattern term \"!&web\" has more than one prefix"),
            ("&!web", "pattern term \"&!web\" has more than one prefix"),
            ("!!web", "pattern term \"!!web\" has more than one prefix"),
            ("~", "pattern term \"~\" has an empty regex"),
            ("!~", "pattern term \"!~\" has an empty regex"),
            ("~web(", "pattern term \"~web(\" is not a valid regex"),
            ("&~[z-a]", "pattern term \"&~[z-a]\" is not a valid regex"),
            (
                "web[1-3]",
                "pattern term \"web[1-3]\" is ambiguous; write web[1:3] for a slice or ~web[1-3] for a regex",
            ),
            (
                "!web[2-]",
                "pattern term \"!web[2-]\" is ambiguous; write web[2:] for a slice or ~web[2-] for a regex",
            ),
            (
                "web[3:1]",
                "pattern term \"web[3:1]\" has a subscript start after its end",
            ),
            (
                "web[99999999999999999999]",
                "pattern term \"web[99999999999999999999]\" has a subscript too large",
            ),
            (
                "web[-99999999999999999999]",
                "pattern term \"web[-99999999999999999999]\" has a subscript too large",
            ),
            (
                "web[99999999999999999999:]",
                "pattern term \"web[99999999999999999999:]\" has a subscript too large",
            ),
            (
                "web[0:99999999999999999999]",
                "pattern term \"web[0:99999999999999999999]\" has a subscript too large",
            ),
        ];
        for (source, message) in cases {
            assert_eq!(parse_error(source), message, "pattern {source:?}");
        }
    }

    #[test]
    fn glob_translation() {
        let cases = [
            ("web*", "(?s)^web.*$"),
            ("a**b", "(?s)^a.*b$"),
            ("?.x", "(?s)^.\\x{2e}x$"),
            ("[ab]", "(?s)^[ab]$"),
            ("[!ab]", "(?s)^[^ab]$"),
            ("[a-c]", "(?s)^[a-c]$"),
            ("[a-]", "(?s)^[a\\x{2d}]$"),
            ("[-a]", "(?s)^[\\x{2d}a]$"),
            ("[]]", "(?s)^[\\x{5d}]$"),
            ("[!]]", "(?s)^[^\\x{5d}]$"),
            ("[z-a]", "(?s)^[a&&b]$"),
            ("[!z-a]", "(?s)^.$"),
            ("[z-ax]", "(?s)^[x]$"),
            ("a[b", "(?s)^a\\x{5b}b$"),
            ("[!", "(?s)^\\x{5b}\\x{21}$"),
            ("é*", "(?s)^\\x{e9}.*$"),
        ];
        for (glob, regex) in cases {
            assert_eq!(glob_to_regex(glob), regex, "glob {glob:?}");
            assert!(Regex::new(regex).is_ok(), "glob {glob:?}");
        }
    }

    #[test]
    fn glob_semantics() {
        let matches = |glob: &str, name: &str| {
            Regex::new(&glob_to_regex(glob)).is_ok_and(|regex| regex.is_match(name))
        };
        assert!(matches("web*", "web"));
        assert!(matches("web*", "web-01.example.com"));
        assert!(!matches("web*", "aweb"));
        assert!(matches("*.example.com", "a.example.com"));
        assert!(!matches("*.example.com", "a-example.com"));
        assert!(matches("w?b", "wxb"));
        assert!(!matches("w?b", "wb"));
        assert!(matches("[]]", "]"));
        assert!(matches("[a-]", "-"));
        assert!(!matches("[z-a]", "m"));
        assert!(matches("[!z-a]", "m"));
        assert!(matches("a[b", "a[b"));
        assert!(!matches("web", "WEB"));
    }
}
