//! Weekly maintenance windows, and whether they are open at a given instant.
//!
//! A [`Window`] opens on chosen weekdays at a local wall-clock time in an
//! IANA time zone and stays open for a fixed amount of real time, so a
//! `02:00+3h` window is three hours long even on a night the clocks change.
//! [`Windows`] is the set a rollout must respect; with no window at all the
//! rollout may run at any time.
//!
//! # Daylight saving time
//!
//! The opening instant on day D is D at the start time, resolved with jiff's
//! "compatible" disambiguation (RFC 5545's rule):
//!
//! - A start time the clocks skip (spring forward) is moved forward by the
//!   length of the gap: in Europe/Berlin on 2026-03-29, `02:00` opens at
//!   03:00 CEST, the first instant after the gap, and `02:30` at 03:30 CEST.
//! - A start time the clocks pass twice (fall back) opens at the earlier of
//!   the two instants: `02:30` on 2026-10-25 opens at 02:30 CEST.
//!
//! # Overlaps
//!
//! Windows that overlap or touch form one open period: while open,
//! `closes_at` is the end of that whole period, followed through any chain
//! of overlapping windows, including windows that opened on earlier days
//! and windows in other time zones. Should the windows leave no gap for over
//! [`HORIZON_DAYS`] days (for example `mon 00:00+7d`), the search stops
//! there and `closes_at` is the end of the last window it looked at, which
//! is never later than the real close.
//!
//! Everything here is pure: the current instant is always passed in.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use super::duration::{DurationError, HumanDuration};

/// The longest a window may stay open: one week.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

/// How far ahead [`Windows::state_at`] follows a chain of overlapping
/// windows before giving up.
pub const HORIZON_DAYS: i64 = 400;

/// Day names in Monday-first order, short then full.
const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// One weekly maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Opening days, indexed Monday-first.
    days: [bool; 7],
    start: Time,
    duration: Duration,
    tz: TimeZone,
    tz_name: String,
}

/// Why a window was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    /// The list of days is empty.
    #[error("window has no days")]
    NoDays,
    /// A day that is not a weekday name, `daily` or `*`.
    #[error("unknown day {day:?}{}", hint(.suggestion.as_deref(), "expected mon..sun or daily"))]
    UnknownDay {
        /// The day as given.
        day: String,
        /// The closest known name, when one is close.
        suggestion: Option<String>,
    },
    /// A start time that is not `HH:MM`.
    #[error("start time {start:?} is not a 24-hour HH:MM time")]
    Start {
        /// The start time as given.
        start: String,
    },
    /// A zero duration.
    #[error("window duration must be more than zero")]
    ZeroDuration,
    /// A duration over [`MAX_DURATION`].
    #[error("window duration {duration} is longer than 7d")]
    TooLong {
        /// The duration, printed the friendly way.
        duration: String,
    },
    /// A time zone name jiff does not know.
    #[error("unknown time zone {tz:?}{}", hint(.suggestion.as_deref(), ""))]
    UnknownTimeZone {
        /// The name as given.
        tz: String,
        /// The closest known name, when one is close.
        suggestion: Option<String>,
    },
    /// Text that is not `DAYS HH:MM+DURATION ZONE`.
    #[error("window {text:?} is not like \"sat,sun 02:00+3h Europe/Berlin\"")]
    Syntax {
        /// The text as given.
        text: String,
    },
    /// The duration part of a window's text does not parse.
    #[error(transparent)]
    Duration(#[from] DurationError),
}

/// Formats an optional suggestion for an error message.
fn hint(suggestion: Option<&str>, otherwise: &str) -> String {
    match suggestion {
        Some(name) => format!("; did you mean {name:?}?"),
        None if otherwise.is_empty() => String::new(),
        None => format!("; {otherwise}"),
    }
}

/// Whether the windows allow work at an instant, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// There are no windows: work may happen at any time.
    Always,
    /// A window is open and the open period ends at `closes_at`.
    Open {
        /// The end of the open period (exclusive).
        closes_at: Timestamp,
    },
    /// No window is open; the next one opens at `opens_at`.
    Closed {
        /// The start of the next open period.
        opens_at: Timestamp,
    },
}

impl WindowState {
    /// Whether work may happen now.
    pub fn is_open(self) -> bool {
        !matches!(self, WindowState::Closed { .. })
    }
}

impl Window {
    /// Builds a window from day names (`mon`..`sun`, full names, `daily` or
    /// `*`, any case, repeats allowed), an `HH:MM` start, a duration of more
    /// than zero and at most 7 days, and an IANA time zone name.
    pub fn new(
        days: &[&str],
        start: &str,
        duration: Duration,
        tz: &str,
    ) -> Result<Window, WindowError> {
        let days = parse_days(days)?;
        let start = parse_start(start)?;
        check_duration(duration)?;
        let zone = parse_time_zone(tz)?;
        let tz_name = zone.iana_name().unwrap_or(tz).to_owned();
        Ok(Window {
            days,
            start,
            duration,
            tz: zone,
            tz_name,
        })
    }

    /// The opening days, Monday first.
    pub fn days(&self) -> Vec<Weekday> {
        Weekday::Monday
            .cycle_forward()
            .take(7)
            .filter(|day| self.opens_on(*day))
            .collect()
    }

    /// The local opening time.
    pub fn start(&self) -> Time {
        self.start
    }

    /// How long the window stays open, in real time.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The time zone of the start time.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// The IANA name of the time zone, as the database spells it.
    pub fn tz_name(&self) -> &str {
        &self.tz_name
    }

    /// Whether the window opens on `day`.
    fn opens_on(&self, day: Weekday) -> bool {
        usize::try_from(day.to_monday_zero_offset()).is_ok_and(|index| self.days[index])
    }

    /// Every opening of this window, as `(opens, closes)`, that opens on a
    /// local date from the day before `from`'s to the day after `to`'s.
    /// Instants jiff cannot represent are skipped.
    fn occurrences(&self, from: Timestamp, to: Timestamp, out: &mut Vec<(Timestamp, Timestamp)>) {
        let Ok(length) = SignedDuration::try_from(self.duration) else {
            return;
        };
        let first = self.tz.to_datetime(from).date();
        let last = self.tz.to_datetime(to).date();
        let mut date = first.yesterday().unwrap_or(first);
        let end = last.tomorrow().unwrap_or(last);
        while date <= end {
            if self.opens_on(date.weekday())
                && let Some(interval) = self.occurrence(date, length)
            {
                out.push(interval);
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
    }

    /// The opening on local `date`, as `(opens, closes)`.
    fn occurrence(&self, date: Date, length: SignedDuration) -> Option<(Timestamp, Timestamp)> {
        let opens = self
            .tz
            .to_ambiguous_timestamp(self.start.to_datetime(date))
            .compatible()
            .ok()?;
        let closes = opens.checked_add(length).ok()?;
        Some((opens, closes))
    }
}

/// Parses day names into a Monday-first set.
fn parse_days(names: &[&str]) -> Result<[bool; 7], WindowError> {
    if names.is_empty() {
        return Err(WindowError::NoDays);
    }
    let mut days = [false; 7];
    for name in names {
        match parse_day(name)? {
            Some(index) => days[index] = true,
            None => days = [true; 7],
        }
    }
    Ok(days)
}

/// One day name: its Monday-first index, or `None` for every day (`daily`, `*`). Checked on
/// its own so a spec can point at each bad day.
pub fn parse_day(name: &str) -> Result<Option<usize>, WindowError> {
    let lower = name.trim().to_ascii_lowercase();
    if lower == "daily" || lower == "*" {
        return Ok(None);
    }
    DAY_NAMES
        .iter()
        .position(|(short, full)| lower == *short || lower == *full)
        .map(Some)
        .ok_or_else(|| WindowError::UnknownDay {
            day: name.to_owned(),
            suggestion: suggest_day(&lower),
        })
}

/// A window's length: more than zero, at most [`MAX_DURATION`].
pub fn check_duration(duration: Duration) -> Result<(), WindowError> {
    if duration.is_zero() {
        return Err(WindowError::ZeroDuration);
    }
    if duration > MAX_DURATION {
        return Err(WindowError::TooLong {
            duration: show_duration(duration),
        });
    }
    Ok(())
}

/// An IANA time zone by name, with a suggestion when it is unknown.
pub fn parse_time_zone(tz: &str) -> Result<TimeZone, WindowError> {
    TimeZone::get(tz).map_err(|_| WindowError::UnknownTimeZone {
        tz: tz.to_owned(),
        suggestion: suggest_time_zone(tz),
    })
}

/// The known day name closest to `lower`, if within two edits (and fewer
/// edits than `lower` has characters).
fn suggest_day(lower: &str) -> Option<String> {
    DAY_NAMES
        .iter()
        .flat_map(|(short, full)| [*short, *full])
        .chain(["daily"])
        .map(|name| (strsim::levenshtein(lower, name), name))
        .filter(|(distance, _)| *distance <= 2 && *distance < lower.chars().count())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.to_owned())
}

/// The known time zone closest to `name`, comparing both the whole name and
/// its last part (so `Berlin` suggests `Europe/Berlin`), within two edits
/// (and fewer edits than `name` has characters).
fn suggest_time_zone(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    jiff::tz::db()
        .available()
        .filter_map(|zone| {
            let zone = zone.as_str();
            let whole = zone.to_lowercase();
            let last = whole.rsplit('/').next().unwrap_or(&whole);
            let distance =
                strsim::levenshtein(&lower, &whole).min(strsim::levenshtein(&lower, last));
            (distance <= 2 && distance < lower.chars().count()).then(|| (distance, zone.to_owned()))
        })
        .min()
        .map(|(_, zone)| zone)
}

/// Parses a strict `HH:MM` 24-hour time.
pub fn parse_start(text: &str) -> Result<Time, WindowError> {
    let error = || WindowError::Start {
        start: text.to_owned(),
    };
    let (hour, minute) = text.split_once(':').ok_or_else(error)?;
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| part.parse::<i8>().ok())
            .flatten()
    };
    let (hour, minute) = two_digits(hour).zip(two_digits(minute)).ok_or_else(error)?;
    Time::new(hour, minute, 0, 0).map_err(|_| error())
}

/// A window duration the friendly way (`3h`, `1h30m`).
fn show_duration(duration: Duration) -> String {
    HumanDuration::new(duration).map_or_else(|_| format!("{duration:?}"), |human| human.to_string())
}

impl fmt::Display for Window {
    /// `sat,sun 02:00+3h Europe/Berlin`; all seven days print as `daily`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days == [true; 7] {
            f.write_str("daily")?;
        } else {
            let names: Vec<&str> = DAY_NAMES
                .iter()
                .zip(self.days)
                .filter(|(_, open)| *open)
                .map(|((short, _), _)| *short)
                .collect();
            f.write_str(&names.join(","))?;
        }
        write!(
            f,
            " {:02}:{:02}+{} {}",
            self.start.hour(),
            self.start.minute(),
            show_duration(self.duration),
            self.tz_name
        )
    }
}

impl FromStr for Window {
    type Err = WindowError;

    /// Parses the [`Display`](fmt::Display) form:
    /// `DAYS HH:MM+DURATION ZONE`, days separated by commas.
    fn from_str(text: &str) -> Result<Window, WindowError> {
        let syntax = || WindowError::Syntax {
            text: text.to_owned(),
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [days, when, tz] = fields.as_slice() else {
            return Err(syntax());
        };
        let (start, duration) = when.split_once('+').ok_or_else(syntax)?;
        let days: Vec<&str> = days.split(',').collect();
        let duration: HumanDuration = duration.parse()?;
        Window::new(&days, start, duration.get(), tz)
    }
}

/// The maintenance windows a rollout must respect; none means any time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Windows(Vec<Window>);

impl From<Vec<Window>> for Windows {
    fn from(windows: Vec<Window>) -> Windows {
        Windows(windows)
    }
}

impl Windows {
    /// The given windows.
    pub fn new(windows: Vec<Window>) -> Windows {
        Windows(windows)
    }

    /// The windows, in the order given.
    pub fn as_slice(&self) -> &[Window] {
        &self.0
    }

    /// Whether there are no windows (work may happen at any time).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the windows are open at `now`, and until when; or when they
    /// next open. `Always` when there are no windows. (Within a week of the
    /// end of jiff's range, where no opening can be computed, this reports
    /// `Closed` until `Timestamp::MAX`.)
    pub fn state_at(&self, now: Timestamp) -> WindowState {
        let Some(longest) = self.0.iter().map(|window| window.duration).max() else {
            return WindowState::Always;
        };
        let longest = SignedDuration::try_from(longest).unwrap_or(SignedDuration::MAX);
        // Anything still open at `now` opened after `now - longest`.
        let from = now.checked_sub(longest).unwrap_or(Timestamp::MIN);
        let mut last_seen = None;
        for days in [8, HORIZON_DAYS] {
            let ahead = longest.saturating_add(SignedDuration::from_hours(24 * days));
            let to = now.checked_add(ahead).unwrap_or(Timestamp::MAX);
            let periods = self.periods(from, to);
            let Some(&(opens, closes)) = periods.iter().find(|(_, closes)| *closes > now) else {
                continue;
            };
            if opens > now {
                return WindowState::Closed { opens_at: opens };
            }
            // A window opening at or after `to` cannot extend a period that
            // ends before `to`.
            if closes < to {
                return WindowState::Open { closes_at: closes };
            }
            last_seen = Some(closes);
        }
        match last_seen {
            Some(closes_at) => WindowState::Open { closes_at },
            // Only near the end of jiff's range: nothing opens ever again.
            None => WindowState::Closed {
                opens_at: Timestamp::MAX,
            },
        }
    }

    /// Whether work may happen at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.state_at(now).is_open()
    }

    /// The start of the next open period that begins strictly after `after`
    /// (after the current one closes, if open); None when there are no
    /// windows or none opens within the search horizon.
    pub fn next_opens(&self, after: Timestamp) -> Option<Timestamp> {
        match self.state_at(after) {
            WindowState::Always => None,
            WindowState::Closed { opens_at } => Some(opens_at),
            WindowState::Open { closes_at } => match self.state_at(closes_at) {
                WindowState::Closed { opens_at } => Some(opens_at),
                WindowState::Always | WindowState::Open { .. } => None,
            },
        }
    }

    /// The union of all openings from around `from` to `to`, as sorted,
    /// disjoint, non-touching `(opens, closes)` periods.
    fn periods(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let mut openings = Vec::new();
        for window in &self.0 {
            window.occurrences(from, to, &mut openings);
        }
        openings.retain(|(opens, _)| *opens < to);
        openings.sort();
        let mut periods: Vec<(Timestamp, Timestamp)> = Vec::new();
        for (opens, closes) in openings {
            match periods.last_mut() {
                Some((_, end)) if opens <= *end => *end = (*end).max(closes),
                _ => periods.push((opens, closes)),
            }
        }
        periods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600;

    fn ts(text: &str) -> Timestamp {
        match text.parse() {
            Ok(timestamp) => timestamp,
            Err(error) => panic!("bad test timestamp {text:?}: {error}"),
        }
    }

    fn window(text: &str) -> Window {
        match text.parse() {
            Ok(window) => window,
            Err(error) => panic!("{text:?} failed: {error}"),
        }
    }

    fn windows(texts: &[&str]) -> Windows {
        Windows::new(texts.iter().map(|text| window(text)).collect())
    }

    fn open(closes_at: &str) -> WindowState {
        WindowState::Open {
            closes_at: ts(closes_at),
        }
    }

    fn closed(opens_at: &str) -> WindowState {
        WindowState::Closed {
            opens_at: ts(opens_at),
        }
    }

    fn new_error(days: &[&str], start: &str, duration: Duration, tz: &str) -> String {
        match Window::new(days, start, duration, tz) {
            Ok(window) => panic!("built {window}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn new_builds_a_window() {
        let built = Window::new(
            &["Sat", "sunday", "sat"],
            "02:00",
            Duration::from_secs(3 * HOUR),
            "europe/berlin",
        );
        let Ok(built) = built else {
            panic!("{built:?}");
        };
        assert_eq!(built.days(), [Weekday::Saturday, Weekday::Sunday]);
        assert_eq!(built.start(), Time::constant(2, 0, 0, 0));
        assert_eq!(built.duration(), Duration::from_secs(3 * HOUR));
        assert_eq!(built.tz_name(), "Europe/Berlin");
        assert_eq!(built.tz().iana_name(), Some("Europe/Berlin"));
        assert_eq!(built.to_string(), "sat,sun 02:00+3h Europe/Berlin");
    }

    #[test]
    fn daily_shorthands_and_full_names() {
        let all = Window::new(&["daily"], "23:30", Duration::from_secs(5_400), "UTC");
        assert_eq!(
            all.map(|w| w.to_string()),
            Ok("daily 23:30+1h30m UTC".to_owned())
        );
        let star = Window::new(&["*", "mon"], "00:00", Duration::from_secs(60), "UTC");
        assert_eq!(star.map(|w| w.days().len()), Ok(7));
        let full = Window::new(
            &["MONDAY", "Tuesday", "wednesday", " thu ", "Fri"],
            "09:05",
            Duration::from_secs(90),
            "America/New_York",
        );
        assert_eq!(
            full.map(|w| w.to_string()),
            Ok("mon,tue,wed,thu,fri 09:05+1m30s America/New_York".to_owned())
        );
    }

    #[test]
    fn seven_days_is_the_longest_duration() {
        assert!(Window::new(&["mon"], "00:00", MAX_DURATION, "UTC").is_ok());
        assert_eq!(
            new_error(
                &["mon"],
                "00:00",
                MAX_DURATION + Duration::from_secs(1),
                "UTC"
            ),
            "window duration 7d1s is longer than 7d"
        );
    }

    #[test]
    fn new_errors() {
        let three_hours = Duration::from_secs(3 * HOUR);
        let cases: [(&[&str], &str, Duration, &str, &str); 22] = [
            (&[], "02:00", three_hours, "UTC", "window has no days"),
            (
                &["mnday"],
                "02:00",
                three_hours,
                "UTC",
                "unknown day \"mnday\"; did you mean \"monday\"?",
            ),
            (
                &["sat", "tues"],
                "02:00",
                three_hours,
                "UTC",
                "unknown day \"tues\"; did you mean \"tue\"?",
            ),
            (
                &["Mo"],
                "02:00",
                three_hours,
                "UTC",
                "unknown day \"Mo\"; did you mean \"mon\"?",
            ),
            (
                &["dayly"],
                "02:00",
                three_hours,
                "UTC",
                "unknown day \"dayly\"; did you mean \"daily\"?",
            ),
            (
                &["xyz"],
                "02:00",
                three_hours,
                "UTC",
                "unknown day \"xyz\"; expected mon..sun or daily",
            ),
            (
                &[""],
                "02:00",
                three_hours,
                "UTC",
                "unknown day \"\"; expected mon..sun or daily",
            ),
            (
                &["sat"],
                "2:00",
                three_hours,
                "UTC",
                "start time \"2:00\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "24:00",
                three_hours,
                "UTC",
                "start time \"24:00\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "02:60",
                three_hours,
                "UTC",
                "start time \"02:60\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "0200",
                three_hours,
                "UTC",
                "start time \"0200\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "02:00:00",
                three_hours,
                "UTC",
                "start time \"02:00:00\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "+1:00",
                three_hours,
                "UTC",
                "start time \"+1:00\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "ab:cd",
                three_hours,
                "UTC",
                "start time \"ab:cd\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "",
                three_hours,
                "UTC",
                "start time \"\" is not a 24-hour HH:MM time",
            ),
            (
                &["sat"],
                "02:00",
                Duration::ZERO,
                "UTC",
                "window duration must be more than zero",
            ),
            (
                &["sat"],
                "02:00",
                Duration::from_secs(8 * 86_400),
                "UTC",
                "window duration 8d is longer than 7d",
            ),
            (
                &["sat"],
                "02:00",
                three_hours,
                "Europe/Berln",
                "unknown time zone \"Europe/Berln\"; did you mean \"Europe/Berlin\"?",
            ),
            (
                &["sat"],
                "02:00",
                three_hours,
                "Berlin",
                "unknown time zone \"Berlin\"; did you mean \"Europe/Berlin\"?",
            ),
            (
                &["sat"],
                "02:00",
                three_hours,
                "New_Yrok",
                "unknown time zone \"New_Yrok\"; did you mean \"America/New_York\"?",
            ),
            (
                &["sat"],
                "02:00",
                three_hours,
                "Mars/Olympus_Mons",
                "unknown time zone \"Mars/Olympus_Mons\"",
            ),
            (&["sat"], "02:00", three_hours, "", "unknown time zone \"\""),
        ];
        for (days, start, duration, tz, message) in cases {
            assert_eq!(
                new_error(days, start, duration, tz),
                message,
                "{days:?} {start} {tz}"
            );
        }
    }

    #[test]
    fn display_round_trips_through_from_str() {
        for text in [
            "sat,sun 02:00+3h Europe/Berlin",
            "daily 23:30+1h30m UTC",
            "mon 00:00+7d America/New_York",
            "wed 12:05+1m30s Asia/Kolkata",
        ] {
            assert_eq!(window(text).to_string(), text);
        }
        assert_eq!(
            window("SUN,Saturday 02:00+180m europe/berlin").to_string(),
            "sat,sun 02:00+3h Europe/Berlin"
        );
    }

    #[test]
    fn from_str_errors() {
        let cases = [
            (
                "sat 02:00",
                "window \"sat 02:00\" is not like \"sat,sun 02:00+3h Europe/Berlin\"",
            ),
            (
                "sat 02:00 3h UTC",
                "window \"sat 02:00 3h UTC\" is not like \"sat,sun 02:00+3h Europe/Berlin\"",
            ),
            (
                "sat 02:00-3h UTC",
                "window \"sat 02:00-3h UTC\" is not like \"sat,sun 02:00+3h Europe/Berlin\"",
            ),
            (
                "",
                "window \"\" is not like \"sat,sun 02:00+3h Europe/Berlin\"",
            ),
            (
                "sat 02:00+3x UTC",
                "expected a duration like 90s, 5m or 1h30m, found \"3x\"",
            ),
            ("sat 02:00+0s UTC", "window duration must be more than zero"),
            (
                "sat,,sun 02:00+1h UTC",
                "unknown day \"\"; expected mon..sun or daily",
            ),
            (
                "sat 2:00+1h UTC",
                "start time \"2:00\" is not a 24-hour HH:MM time",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(
                text.parse::<Window>().map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn no_windows_is_always() {
        let none = Windows::default();
        assert!(none.is_empty());
        assert_eq!(
            none.state_at(ts("2026-01-10T01:30:00Z")),
            WindowState::Always
        );
        assert!(none.is_open(ts("2026-01-10T01:30:00Z")));
        assert_eq!(none.next_opens(ts("2026-01-10T01:30:00Z")), None);
        assert!(WindowState::Always.is_open());
    }

    #[test]
    fn weekend_window_in_berlin() {
        // 2026-01-10 is a Saturday; 02:00 CET is 01:00Z.
        let weekend = windows(&["sat,sun 02:00+3h Europe/Berlin"]);
        assert_eq!(weekend.as_slice().len(), 1);
        assert!(!weekend.is_empty());
        let cases = [
            ("2026-01-07T12:00:00Z", closed("2026-01-10T01:00:00Z")),
            ("2026-01-10T00:59:59Z", closed("2026-01-10T01:00:00Z")),
            ("2026-01-10T01:00:00Z", open("2026-01-10T04:00:00Z")),
            ("2026-01-10T03:59:59Z", open("2026-01-10T04:00:00Z")),
            ("2026-01-10T04:00:00Z", closed("2026-01-11T01:00:00Z")),
            ("2026-01-11T02:00:00Z", open("2026-01-11T04:00:00Z")),
            ("2026-01-11T05:00:00Z", closed("2026-01-17T01:00:00Z")),
            // Summer: 02:00 CEST is 00:00Z.
            ("2026-07-04T00:30:00Z", open("2026-07-04T03:00:00Z")),
            ("2026-07-03T23:59:00Z", closed("2026-07-04T00:00:00Z")),
        ];
        for (now, state) in cases {
            assert_eq!(weekend.state_at(ts(now)), state, "at {now}");
            assert_eq!(weekend.is_open(ts(now)), state.is_open(), "at {now}");
        }
    }

    #[test]
    fn window_spanning_midnight_opened_the_day_before() {
        // Friday 2026-01-09 22:00 CET is 21:00Z; open until Saturday 02:00 CET.
        let late = windows(&["fri 22:00+4h Europe/Berlin"]);
        assert_eq!(
            late.state_at(ts("2026-01-09T23:30:00Z")),
            open("2026-01-10T01:00:00Z")
        );
        assert_eq!(
            late.state_at(ts("2026-01-10T00:59:59Z")),
            open("2026-01-10T01:00:00Z")
        );
        assert_eq!(
            late.state_at(ts("2026-01-10T01:00:00Z")),
            closed("2026-01-16T21:00:00Z")
        );
    }

    #[test]
    fn window_opened_days_ago_still_counts() {
        // Wednesday 2026-01-07 12:00Z for five days, until Monday 12:00Z.
        let long = windows(&["wed 12:00+5d UTC"]);
        assert_eq!(
            long.state_at(ts("2026-01-11T23:00:00Z")),
            open("2026-01-12T12:00:00Z")
        );
        assert_eq!(
            long.state_at(ts("2026-01-12T12:00:00Z")),
            closed("2026-01-14T12:00:00Z")
        );
    }

    #[test]
    fn spring_forward_in_berlin() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
        let at_two = windows(&["sun 02:00+1h Europe/Berlin"]);
        assert_eq!(
            at_two.state_at(ts("2026-03-28T12:00:00Z")),
            closed("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            at_two.state_at(ts("2026-03-29T01:30:00Z")),
            open("2026-03-29T02:00:00Z")
        );
        // 02:30 does not exist; compatible moves it forward by the gap.
        let half_past = windows(&["sun 02:30+1h Europe/Berlin"]);
        assert_eq!(
            half_past.state_at(ts("2026-03-29T01:00:00Z")),
            closed("2026-03-29T01:30:00Z")
        );
        assert_eq!(
            half_past.state_at(ts("2026-03-29T01:30:00Z")),
            open("2026-03-29T02:30:00Z")
        );
        // The week before and after are plain CET and CEST.
        assert_eq!(
            half_past.state_at(ts("2026-03-22T00:00:00Z")),
            closed("2026-03-22T01:30:00Z")
        );
        assert_eq!(
            half_past.state_at(ts("2026-03-30T00:00:00Z")),
            closed("2026-04-05T00:30:00Z")
        );
        // Four hours of real time across the jump: 23:00 CET to 04:00 CEST.
        let across = windows(&["sat 23:00+4h Europe/Berlin"]);
        assert_eq!(
            across.state_at(ts("2026-03-28T22:00:00Z")),
            open("2026-03-29T02:00:00Z")
        );
        assert_eq!(
            across.state_at(ts("2026-03-29T02:00:00Z")),
            closed("2026-04-04T21:00:00Z")
        );
    }

    #[test]
    fn fall_back_in_berlin() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z).
        let half_past = windows(&["sun 02:30+1h Europe/Berlin"]);
        // 02:30 happens twice; the earlier, 02:30 CEST, is 00:30Z.
        assert_eq!(
            half_past.state_at(ts("2026-10-25T00:00:00Z")),
            closed("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            half_past.state_at(ts("2026-10-25T00:45:00Z")),
            open("2026-10-25T01:30:00Z")
        );
        // The second 02:45 (CET) is after the window closed.
        assert_eq!(
            half_past.state_at(ts("2026-10-25T01:45:00Z")),
            closed("2026-11-01T01:30:00Z")
        );
        // Four hours of real time across the fall: 23:00 CEST to 02:00 CET.
        let across = windows(&["sat 23:00+4h Europe/Berlin"]);
        assert_eq!(
            across.state_at(ts("2026-10-24T21:00:00Z")),
            open("2026-10-25T01:00:00Z")
        );
        assert_eq!(
            across.state_at(ts("2026-10-25T01:00:00Z")),
            closed("2026-10-31T22:00:00Z")
        );
    }

    #[test]
    fn new_york_transitions() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
        let nightly = windows(&["daily 02:15+30m America/New_York"]);
        assert_eq!(
            nightly.state_at(ts("2026-03-07T08:00:00Z")),
            closed("2026-03-08T07:15:00Z")
        );
        assert_eq!(
            nightly.state_at(ts("2026-03-08T07:20:00Z")),
            open("2026-03-08T07:45:00Z")
        );
        assert_eq!(
            nightly.state_at(ts("2026-03-08T08:00:00Z")),
            closed("2026-03-09T06:15:00Z")
        );
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z).
        let early = windows(&["daily 01:30+1h America/New_York"]);
        assert_eq!(
            early.state_at(ts("2026-10-31T06:00:00Z")),
            open("2026-10-31T06:30:00Z")
        );
        assert_eq!(
            early.state_at(ts("2026-10-31T07:00:00Z")),
            closed("2026-11-01T05:30:00Z")
        );
        assert_eq!(
            early.state_at(ts("2026-11-01T06:00:00Z")),
            open("2026-11-01T06:30:00Z")
        );
        assert_eq!(
            early.state_at(ts("2026-11-01T06:30:00Z")),
            closed("2026-11-02T06:30:00Z")
        );
    }

    #[test]
    fn overlapping_and_touching_windows_merge() {
        // Saturday 2026-01-10, Berlin is UTC+1.
        let chained = windows(&[
            "sat 02:00+3h Europe/Berlin", // 01:00Z-04:00Z
            "sat 04:00+2h Europe/Berlin", // 03:00Z-05:00Z, overlaps
            "sat 05:00+1h UTC",           // 05:00Z-06:00Z, touches
            "sat 07:00+1h UTC",           // after a gap
        ]);
        let cases = [
            ("2026-01-10T00:00:00Z", closed("2026-01-10T01:00:00Z")),
            ("2026-01-10T01:30:00Z", open("2026-01-10T06:00:00Z")),
            ("2026-01-10T04:30:00Z", open("2026-01-10T06:00:00Z")),
            ("2026-01-10T05:00:00Z", open("2026-01-10T06:00:00Z")),
            ("2026-01-10T06:00:00Z", closed("2026-01-10T07:00:00Z")),
            ("2026-01-10T07:10:00Z", open("2026-01-10T08:00:00Z")),
            ("2026-01-10T08:00:00Z", closed("2026-01-17T01:00:00Z")),
        ];
        for (now, state) in cases {
            assert_eq!(chained.state_at(ts(now)), state, "at {now}");
        }
    }

    #[test]
    fn chains_over_several_days_are_followed() {
        let nightly = windows(&["daily 00:00+1d UTC", "mon 00:00+1h UTC"]);
        let partial = windows(&["mon,tue,wed 00:00+1d UTC"]);
        assert_eq!(
            partial.state_at(ts("2026-01-12T05:00:00Z")),
            open("2026-01-15T00:00:00Z")
        );
        assert_eq!(
            partial.state_at(ts("2026-01-15T00:00:00Z")),
            closed("2026-01-19T00:00:00Z")
        );
        // Windows that never leave a gap: the search stops 400 days plus the
        // longest duration ahead, at the end of the last window opening
        // before that horizon.
        assert_eq!(
            nightly.state_at(ts("2026-01-07T12:00:00Z")),
            open("2027-02-13T00:00:00Z")
        );
        let weekly = windows(&["mon 00:00+7d UTC"]);
        assert_eq!(
            weekly.state_at(ts("2026-01-07T12:00:00Z")),
            open("2027-02-22T00:00:00Z")
        );
        assert_eq!(weekly.next_opens(ts("2026-01-07T12:00:00Z")), None);
    }

    #[test]
    fn next_opens() {
        let weekend = windows(&["sat,sun 02:00+3h Europe/Berlin"]);
        let cases = [
            ("2026-01-07T12:00:00Z", "2026-01-10T01:00:00Z"),
            ("2026-01-10T01:00:00Z", "2026-01-11T01:00:00Z"),
            ("2026-01-10T02:00:00Z", "2026-01-11T01:00:00Z"),
            ("2026-01-11T01:00:00Z", "2026-01-17T01:00:00Z"),
        ];
        for (after, opens) in cases {
            assert_eq!(
                weekend.next_opens(ts(after)),
                Some(ts(opens)),
                "after {after}"
            );
        }
    }

    #[test]
    fn end_of_time_does_not_panic() {
        let weekend = windows(&["sat,sun 02:00+3h Europe/Berlin"]);
        assert_eq!(
            weekend.state_at(Timestamp::MAX),
            WindowState::Closed {
                opens_at: Timestamp::MAX
            }
        );
        // Berlin kept local mean time (+00:53:28) back then.
        assert_eq!(
            weekend.state_at(Timestamp::MIN),
            closed("-009999-01-06T01:06:32Z")
        );
    }
}
