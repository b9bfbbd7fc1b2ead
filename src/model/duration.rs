//! Human-friendly durations such as `90s`, `5m`, `1h30m` or `2d`.
//!
//! [`HumanDuration`] owns the text form of every duration in specs and on
//! the command line. Parsing uses jiff's "friendly" grammar
//! ([`jiff::fmt::friendly`]), so `1h30m`, `1h 30m`, `1 hour 30 minutes`,
//! `1.5h`, `500ms` and `2d` are all accepted; days and weeks count as 24 and
//! 168 hours. A bare number (`90`), a negative duration (`-5m`, `5m ago`) and
//! months or years (which have no fixed length) are rejected.
//!
//! Display is compact and canonical: units from days down to nanoseconds,
//! largest first, zero units left out, no spaces (`90s` prints as `1m30s`,
//! zero as `0s`). The printed form always parses back to the same value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::SpanRelativeTo;
use jiff::fmt::friendly::SpanParser;
use thiserror::Error;

/// The most days a [`HumanDuration`] may hold, so that its printed form
/// still parses (jiff's limit on the days of a span).
pub const MAX_DAYS: u64 = 7_304_484;

const SECS_PER_DAY: u64 = 86_400;

/// A non-negative duration written the friendly way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(Duration);

/// Why a duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    /// The text is not a friendly duration, for example a bare number.
    #[error("expected a duration like 90s, 5m or 1h30m, found {input:?}")]
    Syntax {
        /// The text as given.
        input: String,
    },
    /// The duration is below zero.
    #[error("duration {input:?} is negative")]
    Negative {
        /// The text as given.
        input: String,
    },
    /// The duration uses months or years.
    #[error("duration {input:?} uses months or years, which vary in length")]
    Calendar {
        /// The text as given.
        input: String,
    },
    /// The duration is more than [`MAX_DAYS`] days.
    #[error("duration {input:?} is longer than {MAX_DAYS} days")]
    TooLong {
        /// The text as given, or the whole seconds of a `Duration`.
        input: String,
    },
}

impl HumanDuration {
    /// The zero duration.
    pub const ZERO: HumanDuration = HumanDuration(Duration::ZERO);

    /// Wraps `duration`, if it is at most [`MAX_DAYS`] days (and some hours).
    pub fn new(duration: Duration) -> Result<HumanDuration, DurationError> {
        if duration.as_secs() / SECS_PER_DAY > MAX_DAYS {
            return Err(DurationError::TooLong {
                input: format!("{}s", duration.as_secs()),
            });
        }
        Ok(HumanDuration(duration))
    }

    /// A whole number of seconds; any `u32` is within range.
    pub const fn from_secs(secs: u32) -> HumanDuration {
        HumanDuration(Duration::from_secs(secs as u64))
    }

    /// The duration itself.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<HumanDuration> for Duration {
    fn from(duration: HumanDuration) -> Duration {
        duration.0
    }
}

impl TryFrom<Duration> for HumanDuration {
    type Error = DurationError;

    fn try_from(duration: Duration) -> Result<HumanDuration, DurationError> {
        HumanDuration::new(duration)
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<HumanDuration, DurationError> {
        static PARSER: SpanParser = SpanParser::new();
        let span = PARSER
            .parse_span(input.trim())
            .map_err(|_| DurationError::Syntax {
                input: input.to_owned(),
            })?;
        if span.is_negative() {
            return Err(DurationError::Negative {
                input: input.to_owned(),
            });
        }
        if span.get_years() != 0 || span.get_months() != 0 {
            return Err(DurationError::Calendar {
                input: input.to_owned(),
            });
        }
        let too_long = || DurationError::TooLong {
            input: input.to_owned(),
        };
        let signed = span
            .to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| too_long())?;
        let duration = Duration::try_from(signed).map_err(|_| too_long())?;
        HumanDuration::new(duration).map_err(|_| too_long())
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = u64::from(self.0.subsec_nanos());
        let units = [
            (secs / SECS_PER_DAY, "d"),
            (secs % SECS_PER_DAY / 3_600, "h"),
            (secs % 3_600 / 60, "m"),
            (secs % 60, "s"),
            (nanos / 1_000_000, "ms"),
            (nanos % 1_000_000 / 1_000, "us"),
            (nanos % 1_000, "ns"),
        ];
        let mut wrote = false;
        for (value, unit) in units {
            if value != 0 {
                write!(f, "{value}{unit}")?;
                wrote = true;
            }
        }
        if !wrote {
            f.write_str("0s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Duration {
        match input.parse::<HumanDuration>() {
            Ok(duration) => duration.get(),
            Err(error) => panic!("{input:?} failed: {error}"),
        }
    }

    fn error(input: &str) -> String {
        match input.parse::<HumanDuration>() {
            Ok(duration) => panic!("{input:?} parsed as {duration:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn parses_common_forms() {
        let cases = [
            ("90s", Duration::from_secs(90)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5_400)),
            ("1h 30m", Duration::from_secs(5_400)),
            ("1 hour 30 minutes", Duration::from_secs(5_400)),
            ("1.5h", Duration::from_secs(5_400)),
            ("500ms", Duration::from_millis(500)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("2d", Duration::from_secs(172_800)),
            ("1w", Duration::from_secs(604_800)),
            ("1d 2h", Duration::from_secs(93_600)),
            ("0s", Duration::ZERO),
            ("  5m  ", Duration::from_secs(300)),
            ("7304484d", Duration::from_secs(MAX_DAYS * SECS_PER_DAY)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn displays_compact_canonical_form() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(5_400), "1h30m"),
            (Duration::from_secs(3_600), "1h"),
            (Duration::from_secs(172_800), "2d"),
            (Duration::from_secs(93_661), "1d2h1m1s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::new(1, 2_003_004), "1s2ms3us4ns"),
            (Duration::from_nanos(1), "1ns"),
        ];
        for (duration, expected) in cases {
            let shown = HumanDuration::new(duration).map(|d| d.to_string());
            assert_eq!(shown, Ok(expected.to_owned()), "duration {duration:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        let max = Duration::new(MAX_DAYS * SECS_PER_DAY + SECS_PER_DAY - 1, 999_999_999);
        for duration in [
            Duration::ZERO,
            Duration::from_secs(90),
            Duration::new(93_661, 2_003_004),
            Duration::from_nanos(999),
            max,
        ] {
            let human = HumanDuration::new(duration);
            let back = human.map(|d| d.to_string().parse::<HumanDuration>());
            assert_eq!(
                back,
                Ok(Ok(HumanDuration(duration))),
                "duration {duration:?}"
            );
        }
    }

    #[test]
    fn constructors_and_conversions() {
        assert_eq!(HumanDuration::from_secs(90).get(), Duration::from_secs(90));
        assert_eq!(
            HumanDuration::from_secs(u32::MAX).to_string(),
            "49710d6h28m15s"
        );
        assert_eq!(HumanDuration::ZERO.get(), Duration::ZERO);
        assert_eq!(HumanDuration::default(), HumanDuration::ZERO);
        assert_eq!(
            Duration::from(HumanDuration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(
            HumanDuration::try_from(Duration::from_secs(5)),
            Ok(HumanDuration::from_secs(5))
        );
        assert!(HumanDuration::from_secs(5) < HumanDuration::from_secs(6));
    }

    #[test]
    fn new_rejects_too_long() {
        let limit = (MAX_DAYS + 1) * SECS_PER_DAY;
        assert_eq!(
            HumanDuration::new(Duration::from_secs(limit)).map_err(|e| e.to_string()),
            Err("duration \"631107504000s\" is longer than 7304484 days".to_owned())
        );
        assert!(HumanDuration::new(Duration::from_secs(limit - 1)).is_ok());
        assert_eq!(
            HumanDuration::try_from(Duration::MAX).map_err(|e| e.to_string()),
            Err("duration \"18446744073709551615s\" is longer than 7304484 days".to_owned())
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "90",
                "expected a duration like 90s, 5m or 1h30m, found \"90\"",
            ),
            ("", "expected a duration like 90s, 5m or 1h30m, found \"\""),
            (
                "   ",
                "expected a duration like 90s, 5m or 1h30m, found \"   \"",
            ),
            (
                "soon",
                "expected a duration like 90s, 5m or 1h30m, found \"soon\"",
            ),
            (
                "5 parsecs",
                "expected a duration like 90s, 5m or 1h30m, found \"5 parsecs\"",
            ),
            (
                "30m1h",
                "expected a duration like 90s, 5m or 1h30m, found \"30m1h\"",
            ),
            (
                "PT1H",
                "expected a duration like 90s, 5m or 1h30m, found \"PT1H\"",
            ),
            (
                "1.5d",
                "expected a duration like 90s, 5m or 1h30m, found \"1.5d\"",
            ),
            ("-5m", "duration \"-5m\" is negative"),
            ("5m ago", "duration \"5m ago\" is negative"),
            (
                "1mo",
                "duration \"1mo\" uses months or years, which vary in length",
            ),
            (
                "1y",
                "duration \"1y\" uses months or years, which vary in length",
            ),
            (
                "7304485d",
                "expected a duration like 90s, 5m or 1h30m, found \"7304485d\"",
            ),
            (
                "7304484d 24h",
                "duration \"7304484d 24h\" is longer than 7304484 days",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(error(input), message, "input {input:?}");
        }
    }
}
