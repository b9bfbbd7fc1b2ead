//! The spec's `windows`: each window's four keys checked on their own, every problem at its
//! key, before the window is built.

use yaml_serde::Value;

use crate::model::duration::HumanDuration;
use crate::model::keypath::KeyPath;
use crate::model::reader::Reader;
use crate::model::window::{self, Window, Windows};

/// Every window; each of its four keys is checked on its own, so a bad window lists every
/// problem it has, each at its key (or at the day in a list of days).
pub(super) fn read_windows(r: &mut Reader<'_>, at: &KeyPath, value: &Value) -> Windows {
    let items = r.sequence(at, value, "a list of windows");
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        let entries = r.struct_mapping(
            &here,
            item,
            "a window {days, start, duration, tz}",
            &["days", "start", "duration", "tz"],
        );
        let mut days: Option<Vec<String>> = None;
        let mut start = None;
        let mut duration = None;
        let mut tz = None;
        for (key, v) in entries {
            let field = here.key(&key);
            match key.as_str() {
                "days" => days = read_days(r, &field, v),
                "start" => {
                    start = r
                        .text(&field, v, "a time as HH:MM")
                        .filter(|t| checked(r, &field, window::parse_start(t)))
                }
                "duration" => {
                    duration = r
                        .parse::<HumanDuration>(&field, v, "a duration")
                        .filter(|d| checked(r, &field, window::check_duration(d.get())))
                }
                _ => {
                    tz = r
                        .text(&field, v, "an IANA time zone name")
                        .filter(|t| checked(r, &field, window::parse_time_zone(t)))
                }
            }
        }
        let missing: Vec<&str> = ["days", "start", "duration", "tz"]
            .into_iter()
            .filter(|name| matches!(item, Value::Mapping(_)) && item.get(name).is_none())
            .collect();
        if !missing.is_empty() {
            r.error(&here, format!("a window needs {}", missing.join(", ")));
        }
        if let (Some(days), Some(start), Some(duration), Some(tz)) = (days, start, duration, tz) {
            let day_refs: Vec<&str> = days.iter().map(String::as_str).collect();
            match Window::new(&day_refs, &start, duration.get(), &tz) {
                Ok(w) => out.push(w),
                Err(e) => r.error(&here, e.to_string()),
            }
        }
    }
    Windows::new(out)
}

/// A window's days, as a list or a comma-separated string; every bad day is a problem.
fn read_days(r: &mut Reader<'_>, field: &KeyPath, value: &Value) -> Option<Vec<String>> {
    let named: Vec<(KeyPath, Option<String>)> = match value {
        Value::Sequence(list) => list
            .iter()
            .enumerate()
            .map(|(j, d)| (field.index(j), r.text(&field.index(j), d, "a day name")))
            .collect(),
        other => r
            .text(field, other, "a list of days")?
            .split(',')
            .map(|d| (field.clone(), Some(d.trim().to_owned())))
            .collect(),
    };
    if named.is_empty() {
        r.error(field, window::WindowError::NoDays.to_string());
        return None;
    }
    let count = named.len();
    let mut days = Vec::new();
    for (path, name) in named {
        if let Some(name) = name
            && checked(r, &path, window::parse_day(&name))
        {
            days.push(name);
        }
    }
    (days.len() == count).then_some(days)
}

/// Records `result`'s problem at `path`; whether there was none.
fn checked<T>(r: &mut Reader<'_>, path: &KeyPath, result: Result<T, window::WindowError>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => {
            r.error(path, e.to_string());
            false
        }
    }
}
