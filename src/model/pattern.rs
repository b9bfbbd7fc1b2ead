//! Ansible's host-pattern language, as used by `--limit` and a spec's
//! `hosts:`, read as ansible-core 2.19 reads it (`inventory/manager.py`).
//!
//! This module owns parsing a pattern such as `webservers:&eu:!web-03` and
//! turning it into the inventory hosts it selects, in Ansible's order. It does
//! not know the inventory type: it works on any [`HostUniverse`].
//!
//! # Syntax
//!
//! A pattern with a comma is split on commas only, so `web1:2222,db` and
//! `2001:db8::1,web` keep their colons. Without a comma, a pattern that is one
//! host address (`2001:db8::1`, `web[1:3]`, `web-01:2222`) is one term;
//! anything else is split on `:` and blanks, a `[...]` staying whole
//! ([`split`]). Blanks around terms and empty terms are ignored.
//!
//! Each term is, after an optional prefix `&` (intersection) or `!`
//! (exclusion):
//!
//! - A plain name. As a union term, a host of that name is that host, even
//!   when a group has the same name. Otherwise the group of that name (its
//!   hosts, then its children's), or else the host of that name; a name with
//!   a `.` matches both.
//! - A glob, any term with `*`, `?` or `[`: shell wildcards with Python's
//!   `fnmatch` semantics, matched against the whole name, case-sensitively.
//!   The matches are the hosts of every group whose name matches (in the
//!   order the groups were defined; `all` and `ungrouped` are groups like any
//!   other, so `a*` means every host), then every host whose name matches (in
//!   the order the hosts were defined).
//! - A regex, a term starting with `~`: like a glob, but the rest of the term
//!   is a regex (Rust `regex` syntax) anchored at the start of the name only,
//!   as Python's `re.match` is: `~web` matches `web-01` and `webby`.
//!
//! A non-regex term may end with a subscript that picks hosts out of what the
//! term matches, in that order (a group's own order): `web[0]` is the first,
//! `web[-1]` the last, `web[1:3]` the second to the fourth (inclusive) and
//! `web[2:]` the third onwards. A slice end past the last host stops at the
//! last host.
//!
//! # Evaluation
//!
//! As in Ansible, terms are reordered: first the plain terms, in the order
//! written, whose matches are appended (each host once), then the `&` terms,
//! each of which keeps only the hosts it also matches, then the `!` terms,
//! each of which removes the hosts it matches. A pattern with only `&` and
//! `!` terms starts from `all`. The result keeps that order.
//!
//! # Refusals (where Ansible warns, or selects nothing, or guesses)
//!
//! A term that matches no host and no group is an error, whatever its
//! prefix. Ansible only warns, but here a typo in `!db-primary` would
//! silently put the primary database in the rollout. A term that matches an
//! empty group is fine, but a subscript that picks nothing is an error
//! (Ansible: nothing). `web[1-3]` is refused as ambiguous (Ansible reads it as
//! a slice with a warning; `fnmatch` would read a class); `web[3:1]` is
//! refused (Ansible: nothing, or `web[3]` for `web[3:0]`); an unclosed `[`
//! and blanks inside a comma-separated term are refused (Ansible: a term that
//! matches nothing, or pieces).

mod split;

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use thiserror::Error;

use super::glob::glob_to_regex;

/// The hosts and groups a pattern is evaluated against.
pub trait HostUniverse {
    /// How many hosts there are; a host is named by its index. Index order is
    /// the order of the `all` group.
    fn host_count(&self) -> usize;
    /// The name of the host at `index` (below [`HostUniverse::host_count`]).
    fn host_name(&self, index: usize) -> &str;
    /// Members of a group in Ansible's order (the group's own hosts, then its
    /// children's, breadth first), or None if no such group.
    fn group_members(&self, group: &str) -> Option<Vec<usize>>;
    /// All group names, `all` and `ungrouped` included, in the order they were
    /// defined.
    fn group_names(&self) -> Vec<&str>;
    /// Host indices in the order the hosts were defined (Ansible's host
    /// table), for glob and regex matches on host names.
    fn creation_order(&self) -> Vec<usize> {
        (0..self.host_count()).collect()
    }
    /// The host of that name.
    fn find_host(&self, name: &str) -> Option<usize> {
        (0..self.host_count()).find(|&index| self.host_name(index) == name)
    }
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
    /// A plain name: a group, or else a host (both when it has a `.`).
    Name(String),
    /// A glob or regex, compiled: groups and hosts.
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
                matcher: Matcher::Name("all".to_owned()),
                subscript: None,
            }],
        }
    }

    /// The hosts the pattern selects, as host indices without duplicates, in
    /// Ansible's order: the union terms' matches in the order written, then
    /// filtered by the `&` and `!` terms. Linear in the hosts for each term.
    pub fn select(&self, universe: &impl HostUniverse) -> Result<Vec<usize>, PatternError> {
        let count = universe.host_count();
        let of = |op: Op| self.terms.iter().filter(move |term| term.op == op);
        let mut selected = Vec::new();
        let mut taken = vec![false; count];
        let mut add = |index: usize, selected: &mut Vec<usize>| {
            if let Some(slot) = taken.get_mut(index)
                && !*slot
            {
                *slot = true;
                selected.push(index);
            }
        };
        let all = Pattern::all();
        let unions: Vec<&Term> = match of(Op::Union).collect::<Vec<_>>() {
            none if none.is_empty() => all.terms.iter().collect(),
            some => some,
        };
        for term in unions {
            // Ansible takes a union term that names a host as that host, before
            // looking at groups.
            if let Some(host) = universe.find_host(&term.text) {
                add(host, &mut selected);
                continue;
            }
            for index in term.matches(universe)? {
                add(index, &mut selected);
            }
        }
        for term in of(Op::Intersect) {
            let matched = mask(count, &term.matches(universe)?);
            selected.retain(|index| matched[*index]);
        }
        for term in of(Op::Exclude) {
            let matched = mask(count, &term.matches(universe)?);
            selected.retain(|index| !matched[*index]);
        }
        Ok(selected)
    }
}

/// A `count`-long mask with the given indices set.
fn mask(count: usize, indices: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; count];
    for index in indices {
        if let Some(slot) = mask.get_mut(*index) {
            *slot = true;
        }
    }
    mask
}

impl Term {
    /// The hosts this term matches, subscript applied, in Ansible's order:
    /// the hosts of each matching group in turn, then matching hosts. A host
    /// may appear more than once (a subscript counts it each time); every
    /// index is below the universe's host count.
    fn matches(&self, universe: &impl HostUniverse) -> Result<Vec<usize>, PatternError> {
        let count = universe.host_count();
        let mut found = Vec::new();
        let mut matched_a_group = false;
        match &self.matcher {
            Matcher::Name(name) => {
                if let Some(members) = universe.group_members(name) {
                    found.extend(members);
                    matched_a_group = true;
                }
                if !matched_a_group || name.contains('.') {
                    found.extend(universe.find_host(name));
                }
            }
            Matcher::Wildcard(regex) => {
                for group in universe.group_names() {
                    if regex.is_match(group) {
                        found.extend(universe.group_members(group).into_iter().flatten());
                        matched_a_group = true;
                    }
                }
                found.extend(
                    universe
                        .creation_order()
                        .into_iter()
                        .filter(|index| regex.is_match(universe.host_name(*index))),
                );
            }
        }
        found.retain(|index| *index < count);
        if found.is_empty() && !matched_a_group {
            return Err(PatternError::NoMatch {
                term: self.text.clone(),
            });
        }
        let Some(subscript) = self.subscript else {
            return Ok(found);
        };
        let out_of_range = || PatternError::OutOfRange {
            term: self.text.clone(),
            hosts: found.len(),
        };
        let picked: Vec<usize> = match subscript {
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
                    .unwrap_or_default()
            }
            Subscript::Slice { start, end } => {
                let stop = end.map_or(found.len(), |end| end.saturating_add(1).min(found.len()));
                found
                    .get(start.min(stop)..stop)
                    .unwrap_or_default()
                    .to_vec()
            }
        };
        if picked.is_empty() {
            return Err(out_of_range());
        }
        Ok(picked)
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
        let matcher = if expression.contains(['*', '?', '[']) {
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
        let mut depth = 0usize;
        for char in source.chars() {
            match char {
                '[' => depth = 1,
                ']' => depth = 0,
                _ => {}
            }
        }
        if depth > 0 {
            return Err(PatternError::Unclosed {
                pattern: source.to_owned(),
            });
        }
        let terms = split::split(source)
            .into_iter()
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
#[path = "pattern_tests.rs"]
mod tests;
