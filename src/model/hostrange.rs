//! Ansible host-range expansion in inventory host names.
//!
//! `web-[01:20].example.com` stands for twenty hosts, `web-01.example.com`
//! to `web-20.example.com`. This module owns turning such a name into the
//! list of plain names, following Ansible's `expand_hostname_range`:
//!
//! - A range is `[start:end]` or `[start:end:step]`; both bounds are
//!   inclusive and `step` (default 1) must be a positive integer.
//! - Bounds are either both unsigned decimal numbers or both single ASCII
//!   letters. Letters run through `a`..`z` then `A`..`Z`, as Python's
//!   `string.ascii_letters` does, so `[x:B]` is `x y z A B`.
//! - An empty start means `0` (`[:5]` is `0`..`5`); an empty end is an error.
//! - When a numeric start has a leading zero (`01`, `007`), every value is
//!   zero-padded to the width of the start, and the end must have that same
//!   width; otherwise values are printed without padding (`[1:10]` gives
//!   `1`..`10`, `[0:10]` gives `0`..`10`).
//! - Several ranges in one name expand as a cartesian product, the leftmost
//!   range varying slowest: `[a:b]-[1:2]` is `a-1 a-2 b-1 b-2`.
//!
//! Deliberate departures from Ansible, all of them turning a silent surprise
//! into an error: a start after its end is an error (Ansible yields no host),
//! as are mixed letter and number bounds, multi-letter bounds and a stray `]`.
//!
//! A pattern is parsed first ([`parse`]), so its size is known before any
//! name is made: the caller bounds it (the inventory's host limit), then
//! walks the names one at a time ([`Expansion::names`]).

use thiserror::Error;

/// The letters a letter range runs through, in order.
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Why a host name pattern could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RangeError {
    /// The pattern is the empty string.
    #[error("host name is empty")]
    Empty,
    /// A `[` with no `]` after it.
    #[error("unclosed \"[\" at byte {at}")]
    Unclosed {
        /// Byte offset of the `[` in the pattern.
        at: usize,
    },
    /// A `]` outside any range.
    #[error("\"]\" at byte {at} has no matching \"[\"")]
    Unopened {
        /// Byte offset of the `]` in the pattern.
        at: usize,
    },
    /// The bracket holds neither `start:end` nor `start:end:step`.
    #[error("range \"[{range}]\" is not start:end or start:end:step")]
    Shape {
        /// The text between the brackets.
        range: String,
    },
    /// The end bound is empty, as in `[1:]`.
    #[error("range \"[{range}]\" has no end")]
    NoEnd {
        /// The text between the brackets.
        range: String,
    },
    /// The start comes after the end, as in `[20:01]`.
    #[error("range start {start} is after its end {end}")]
    StartAfterEnd {
        /// The start bound as written.
        start: String,
        /// The end bound as written.
        end: String,
    },
    /// The step is zero, empty or not a decimal number.
    #[error("range step \"{step}\" is not a positive number")]
    Step {
        /// The step as written.
        step: String,
    },
    /// One bound is a letter and the other a number.
    #[error("range bounds \"{start}\" and \"{end}\" mix a letter and a number")]
    Mixed {
        /// The start bound as written.
        start: String,
        /// The end bound as written.
        end: String,
    },
    /// A bound made of several letters, as in `[aa:zz]`.
    #[error("range bound \"{bound}\" is longer than one letter")]
    LongAlpha {
        /// The bound as written.
        bound: String,
    },
    /// A bound that is neither a number nor a single letter.
    #[error("range bound \"{bound}\" is neither a number nor a letter")]
    Bound {
        /// The bound as written.
        bound: String,
    },
    /// A zero-padded start whose end has another width, as in `[01:100]`.
    #[error("zero-padded range start {start} and end {end} differ in width")]
    Width {
        /// The start bound as written.
        start: String,
        /// The end bound as written.
        end: String,
    },
    /// A numeric bound too large for a 64-bit integer.
    #[error("range bound {bound} is too large")]
    TooLarge {
        /// The bound as written.
        bound: String,
    },
    /// The expansion would hold more names than the caller allows.
    #[error("host pattern expands to more than {most} names")]
    TooMany {
        /// The most names allowed.
        most: usize,
    },
}

/// A parsed pattern: its literal text and ranges, and how many names it makes.
#[derive(Debug)]
pub struct Expansion<'a> {
    segments: Vec<Segment<'a>>,
    len: usize,
}

/// Parses every `[start:end]` or `[start:end:step]` range in `pattern`,
/// without expanding anything yet.
pub fn parse(pattern: &str) -> Result<Expansion<'_>, RangeError> {
    if pattern.is_empty() {
        return Err(RangeError::Empty);
    }
    let segments = segments(pattern)?;
    let len = segments
        .iter()
        .filter_map(|segment| match segment {
            Segment::Range(range) => Some(range.len()),
            Segment::Literal(_) => None,
        })
        .fold(1usize, usize::saturating_mul);
    Ok(Expansion { segments, len })
}

/// Expands `pattern` into its names, refusing more than `most`.
///
/// A pattern with no range comes back as the single name it is. Names are
/// returned in expansion order (leftmost range slowest); the result is never
/// empty.
pub fn expand(pattern: &str, most: usize) -> Result<Vec<String>, RangeError> {
    let expansion = parse(pattern)?;
    if expansion.len() > most {
        return Err(RangeError::TooMany { most });
    }
    Ok(expansion.names().collect())
}

impl Expansion<'_> {
    /// How many names the pattern makes (saturating at `usize::MAX`); at least 1.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a pattern makes at least one name.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The names, one at a time, leftmost range slowest.
    pub fn names(&self) -> Names<'_> {
        let lens: Vec<usize> = self
            .segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Range(range) => Some(range.len()),
                Segment::Literal(_) => None,
            })
            .collect();
        Names {
            segments: &self.segments,
            counters: vec![0; lens.len()],
            lens,
            done: false,
        }
    }
}

/// The names of an [`Expansion`], made one at a time (an odometer over the ranges).
pub struct Names<'e> {
    segments: &'e [Segment<'e>],
    /// How many values every range has, leftmost first.
    lens: Vec<usize>,
    /// The current value index of every range, leftmost first.
    counters: Vec<usize>,
    done: bool,
}

impl Iterator for Names<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let mut name = String::new();
        let mut counters = self.counters.iter();
        for segment in self.segments {
            match segment {
                Segment::Literal(text) => name.push_str(text),
                Segment::Range(range) => {
                    range.push_value(counters.next().copied().unwrap_or(0), &mut name);
                }
            }
        }
        // Advance the rightmost range; carry into the ones on its left.
        self.done = true;
        for (counter, len) in self.counters.iter_mut().zip(&self.lens).rev() {
            *counter += 1;
            if *counter < *len {
                self.done = false;
                break;
            }
            *counter = 0;
        }
        Some(name)
    }
}

/// A piece of a pattern: literal text or one bracketed range.
#[derive(Debug)]
enum Segment<'a> {
    Literal(&'a str),
    Range(Range),
}

/// Splits `pattern` into literal text and parsed ranges.
fn segments(pattern: &str) -> Result<Vec<Segment<'_>>, RangeError> {
    let mut segments = Vec::new();
    let mut rest = pattern;
    let mut offset = 0;
    loop {
        let Some(open) = rest.find(['[', ']']) else {
            if !rest.is_empty() {
                segments.push(Segment::Literal(rest));
            }
            return Ok(segments);
        };
        if rest[open..].starts_with(']') {
            return Err(RangeError::Unopened { at: offset + open });
        }
        let inner_start = open + 1;
        let close = rest[inner_start..]
            .find(']')
            .map(|close| inner_start + close)
            .ok_or(RangeError::Unclosed { at: offset + open })?;
        if open > 0 {
            segments.push(Segment::Literal(&rest[..open]));
        }
        segments.push(Segment::Range(Range::parse(&rest[inner_start..close])?));
        offset += close + 1;
        rest = &rest[close + 1..];
    }
}

/// One validated range.
#[derive(Debug)]
enum Range {
    /// Numbers from `start` to `end`, zero-padded to `width` (0: no padding).
    Numbers {
        start: u64,
        end: u64,
        step: u64,
        width: usize,
    },
    /// Letters from `LETTERS[start]` to `LETTERS[end]`.
    Letters { start: usize, end: usize, step: u64 },
}

/// How a range bound reads.
enum Bound {
    Number,
    Letter(usize),
}

impl Range {
    /// Parses the text between the brackets.
    fn parse(inner: &str) -> Result<Range, RangeError> {
        let parts: Vec<&str> = inner.split(':').collect();
        let (start, end, step) = match parts.as_slice() {
            [start, end] => (*start, *end, None),
            [start, end, step] => (*start, *end, Some(*step)),
            _ => {
                return Err(RangeError::Shape {
                    range: inner.to_owned(),
                });
            }
        };
        let start = if start.is_empty() { "0" } else { start };
        if end.is_empty() {
            return Err(RangeError::NoEnd {
                range: inner.to_owned(),
            });
        }
        let step = match step {
            None => 1,
            Some(step) => parse_step(step)?,
        };
        match (classify(start)?, classify(end)?) {
            (Bound::Number, Bound::Number) => {
                let width = if start.len() > 1 && start.starts_with('0') {
                    if end.len() != start.len() {
                        return Err(RangeError::Width {
                            start: start.to_owned(),
                            end: end.to_owned(),
                        });
                    }
                    start.len()
                } else {
                    0
                };
                let (low, high) = (parse_number(start)?, parse_number(end)?);
                if low > high {
                    return Err(after_end(start, end));
                }
                Ok(Range::Numbers {
                    start: low,
                    end: high,
                    step,
                    width,
                })
            }
            (Bound::Letter(low), Bound::Letter(high)) => {
                if low > high {
                    return Err(after_end(start, end));
                }
                Ok(Range::Letters {
                    start: low,
                    end: high,
                    step,
                })
            }
            _ => Err(RangeError::Mixed {
                start: start.to_owned(),
                end: end.to_owned(),
            }),
        }
    }

    /// How many values the range holds.
    fn len(&self) -> usize {
        let (span, step) = match self {
            Range::Numbers {
                start, end, step, ..
            } => (end - start, *step),
            // At most 51, so the widening cannot lose anything.
            Range::Letters { start, end, step } => ((end - start) as u64, *step),
        };
        usize::try_from(span / step).map_or(usize::MAX, |count| count.saturating_add(1))
    }

    /// Appends the `index`th value (below [`Range::len`]) as it appears in names.
    fn push_value(&self, index: usize, name: &mut String) {
        // `index` is below `len`, so `start + index * step` stays within `end`.
        let offset = |step: u64| (index as u64).saturating_mul(step);
        match self {
            Range::Numbers {
                start, step, width, ..
            } => push_padded(name, start.saturating_add(offset(*step)), *width),
            Range::Letters { start, step, .. } => {
                let at = usize::try_from(offset(*step)).map_or(usize::MAX, |o| start + o);
                name.push_str(LETTERS.get(at..=at).unwrap_or_default());
            }
        }
    }
}

/// Appends `value` in decimal, zero-padded to `width` (what `{value:0width$}` prints, without
/// the formatting machinery: this runs once per host).
fn push_padded(name: &mut String, mut value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // A single decimal digit.
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let len = digits.len() - at;
    name.extend(std::iter::repeat_n('0', width.saturating_sub(len)));
    name.extend(digits[at..].iter().map(|&d| char::from(d)));
}

fn after_end(start: &str, end: &str) -> RangeError {
    RangeError::StartAfterEnd {
        start: start.to_owned(),
        end: end.to_owned(),
    }
}

/// Tells whether a non-empty bound is a number or a single letter.
fn classify(bound: &str) -> Result<Bound, RangeError> {
    if bound.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(Bound::Number);
    }
    if bound.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return match LETTERS.find(bound) {
            Some(index) if bound.len() == 1 => Ok(Bound::Letter(index)),
            _ => Err(RangeError::LongAlpha {
                bound: bound.to_owned(),
            }),
        };
    }
    Err(RangeError::Bound {
        bound: bound.to_owned(),
    })
}

/// Parses a bound already known to be all ASCII digits.
fn parse_number(bound: &str) -> Result<u64, RangeError> {
    bound.parse().map_err(|_| RangeError::TooLarge {
        bound: bound.to_owned(),
    })
}

/// Parses a step: a positive decimal number; a huge one saturates, since
/// any step past the range's size yields just the start.
fn parse_step(step: &str) -> Result<u64, RangeError> {
    let bad = || RangeError::Step {
        step: step.to_owned(),
    };
    if step.is_empty() || !step.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(bad());
    }
    match step.parse::<u64>() {
        Ok(0) => Err(bad()),
        Ok(value) => Ok(value),
        Err(_) => Ok(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOST: usize = 100_000;

    fn names(pattern: &str) -> Vec<String> {
        match expand(pattern, MOST) {
            Ok(names) => names,
            Err(error) => panic!("{pattern:?} failed: {error}"),
        }
    }

    fn error(pattern: &str) -> String {
        match expand(pattern, MOST) {
            Ok(names) => panic!("{pattern:?} expanded to {names:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn plain_name_is_returned_as_is() {
        assert_eq!(names("web1.example.com"), ["web1.example.com"]);
        assert_eq!(names("x"), ["x"]);
    }

    #[test]
    fn zero_padded_numeric_range() {
        let expected: Vec<String> = (1..=20)
            .map(|i| format!("web-{i:02}.example.com"))
            .collect();
        assert_eq!(names("web-[01:20].example.com"), expected);
    }

    #[test]
    fn unpadded_numeric_ranges() {
        assert_eq!(names("h[8:11]"), ["h8", "h9", "h10", "h11"]);
        assert_eq!(names("h[0:10:5]"), ["h0", "h5", "h10"]);
        assert_eq!(
            names("h[1:010]"),
            ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10"]
        );
    }

    #[test]
    fn padding_follows_start_width() {
        assert_eq!(names("db[008:011]"), ["db008", "db009", "db010", "db011"]);
        assert_eq!(names("db[00:02]"), ["db00", "db01", "db02"]);
    }

    #[test]
    fn range_at_start_and_end_of_name() {
        assert_eq!(names("[1:2]x"), ["1x", "2x"]);
        assert_eq!(names("x[1:2]"), ["x1", "x2"]);
        assert_eq!(names("[1:2]"), ["1", "2"]);
    }

    #[test]
    fn single_value_range() {
        assert_eq!(names("n[3:3]"), ["n3"]);
        assert_eq!(names("n[c:c]"), ["nc"]);
    }

    #[test]
    fn step() {
        assert_eq!(
            names("web[01:10:2]"),
            ["web01", "web03", "web05", "web07", "web09"]
        );
        assert_eq!(names("web[1:3:5]"), ["web1"]);
        assert_eq!(names("web[1:3:99999999999999999999999]"), ["web1"]);
    }

    #[test]
    fn empty_start_means_zero() {
        assert_eq!(names("n[:3]"), ["n0", "n1", "n2", "n3"]);
        assert_eq!(names("n[:4:2]"), ["n0", "n2", "n4"]);
    }

    #[test]
    fn letter_ranges() {
        assert_eq!(
            names("[a:f].dc"),
            ["a.dc", "b.dc", "c.dc", "d.dc", "e.dc", "f.dc"]
        );
        assert_eq!(names("r[a:e:2]"), ["ra", "rc", "re"]);
        assert_eq!(names("r[A:C]"), ["rA", "rB", "rC"]);
        assert_eq!(names("r[y:B]"), ["ry", "rz", "rA", "rB"]);
    }

    #[test]
    fn several_ranges_are_a_cartesian_product_leftmost_slowest() {
        assert_eq!(
            names("[a:b]-[1:3]-x"),
            ["a-1-x", "a-2-x", "a-3-x", "b-1-x", "b-2-x", "b-3-x"]
        );
        assert_eq!(names("db[01:10:3]node-[1:2]").len(), 8);
        assert_eq!(
            names("db[01:10:3]node-[1:2]")[..3],
            ["db01node-1", "db01node-2", "db04node-1"]
        );
    }

    #[test]
    fn the_size_is_known_before_anything_is_expanded() {
        let huge = parse("h[0:18446744073709551615]").expect("parses");
        assert_eq!(huge.len(), usize::MAX);
        assert_eq!(huge.names().take(2).collect::<Vec<_>>(), ["h0", "h1"]);
        assert_eq!(parse("a[1:3]-[x:y]").expect("parses").len(), 6);
        assert_eq!(parse("plain").expect("parses").len(), 1);
    }

    #[test]
    fn up_to_the_limit_is_fine() {
        assert_eq!(names("h[1:100000]").len(), MOST);
        assert_eq!(names("[1:100][1:1000]").len(), MOST);
    }

    #[test]
    fn errors() {
        let cases = [
            ("", "host name is empty"),
            ("web-[01:20", "unclosed \"[\" at byte 4"),
            ("a[1:2]b[3", "unclosed \"[\" at byte 7"),
            ("web-01]", "\"]\" at byte 6 has no matching \"[\""),
            ("a[1:2]]", "\"]\" at byte 6 has no matching \"[\""),
            ("web[5]", "range \"[5]\" is not start:end or start:end:step"),
            ("web[]", "range \"[]\" is not start:end or start:end:step"),
            (
                "web[1:2:3:4]",
                "range \"[1:2:3:4]\" is not start:end or start:end:step",
            ),
            ("web[1:]", "range \"[1:]\" has no end"),
            ("web[:]", "range \"[:]\" has no end"),
            ("web[20:01]", "range start 20 is after its end 01"),
            ("web[f:a]", "range start f is after its end a"),
            ("web[A:z]", "range start A is after its end z"),
            ("web[1:5:0]", "range step \"0\" is not a positive number"),
            ("web[1:5:00]", "range step \"00\" is not a positive number"),
            ("web[1:5:]", "range step \"\" is not a positive number"),
            ("web[1:5:x]", "range step \"x\" is not a positive number"),
            ("web[1:5:-1]", "range step \"-1\" is not a positive number"),
            ("web[1:5:+1]", "range step \"+1\" is not a positive number"),
            (
                "web[a:5]",
                "range bounds \"a\" and \"5\" mix a letter and a number",
            ),
            (
                "web[1:z]",
                "range bounds \"1\" and \"z\" mix a letter and a number",
            ),
            ("web[aa:az]", "range bound \"aa\" is longer than one letter"),
            ("web[a:zz]", "range bound \"zz\" is longer than one letter"),
            (
                "web[1a:5]",
                "range bound \"1a\" is neither a number nor a letter",
            ),
            (
                "web[-1:5]",
                "range bound \"-1\" is neither a number nor a letter",
            ),
            (
                "web[+1:5]",
                "range bound \"+1\" is neither a number nor a letter",
            ),
            (
                "web[1:é]",
                "range bound \"é\" is neither a number nor a letter",
            ),
            (
                "web[[1:2]",
                "range bound \"[1\" is neither a number nor a letter",
            ),
            (
                "web[ 1:2]",
                "range bound \" 1\" is neither a number nor a letter",
            ),
            (
                "web[01:100]",
                "zero-padded range start 01 and end 100 differ in width",
            ),
            (
                "web[01:2]",
                "zero-padded range start 01 and end 2 differ in width",
            ),
            (
                "web[1:99999999999999999999]",
                "range bound 99999999999999999999 is too large",
            ),
            (
                "web[99999999999999999999:1]",
                "range bound 99999999999999999999 is too large",
            ),
            (
                "h[0:100000]",
                "host pattern expands to more than 100000 names",
            ),
            (
                "[1:1000][1:1000]",
                "host pattern expands to more than 100000 names",
            ),
            (
                "[0:18446744073709551615][0:18446744073709551615]",
                "host pattern expands to more than 100000 names",
            ),
        ];
        for (pattern, message) in cases {
            assert_eq!(error(pattern), message, "pattern {pattern:?}");
        }
    }
}
