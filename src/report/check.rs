//! `roll --check` for a person (one line per host, then the counts) and as JSON.

use std::fmt::Write as _;

use crate::rollout::check::{self, Verdict};

pub fn text(verdicts: &[(String, Verdict)]) -> String {
    let width = verdicts.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (host, v) in verdicts {
        let why = match v {
            Verdict::Refused(why) | Verdict::Unreachable(why) => {
                format!(": {}", super::without_host(host, why))
            }
            _ => String::new(),
        };
        let _ = writeln!(out, "{host:<width$}  {}{why}", v.name());
    }
    let c = check::count(verdicts);
    let _ = writeln!(
        out,
        "check: {} would upgrade, {} already at target, {} in flight, {} would be refused, {} unreachable",
        c.would_upgrade, c.already_at_target, c.in_flight, c.refused, c.unreachable
    );
    out
}

pub fn json(verdicts: &[(String, Verdict)]) -> String {
    let hosts: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|(host, v)| {
            let mut value = serde_json::to_value(v).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("host".into(), serde_json::Value::String(host.clone()));
            }
            value
        })
        .collect();
    serde_json::json!({ "hosts": hosts, "counts": check::count(verdicts) }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_host_then_the_counts() {
        let v = vec![
            ("web-01".to_owned(), Verdict::WouldUpgrade),
            (
                "web-02".to_owned(),
                Verdict::Refused("web-02: refused before any change: no space".into()),
            ),
        ];
        assert_eq!(
            text(&v),
            "web-01  would upgrade\nweb-02  would be refused: refused before any change: no space\ncheck: 1 would upgrade, 0 already at target, 0 in flight, 1 would be refused, 0 unreachable\n"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&v)).expect("json");
        assert_eq!(j["hosts"][1]["verdict"], "refused");
        assert_eq!(j["hosts"][1]["host"], "web-02");
        assert_eq!(j["counts"]["refused"], 1);
    }
}
