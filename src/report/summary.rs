//! The end-of-run summary for a person: the result, counts, the slowest hosts, and every
//! failure with its evidence.

use std::fmt::Write as _;

use crate::model::inventory::Inventory;
use crate::rollout::outcome::RunEnd;

pub fn text(result: &str, end: &RunEnd, inventory: &Inventory, journal: &str) -> String {
    let s = &end.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "result: {result}: {} upgraded, {} rolled back, {} failed, {} skipped, {} untouched{}",
        s.upgraded.len(),
        s.rolled_back.len(),
        s.failed.len(),
        s.skipped.len(),
        s.untouched.len(),
        if s.unrestored.is_empty() {
            String::new()
        } else {
            format!(
                ", {} NOT RESTORED: {}",
                s.unrestored.len(),
                s.unrestored.join(" ")
            )
        }
    );
    if !s.abandoned.is_empty() {
        let _ = writeln!(
            out,
            "abandoned in flight (state unknown; run `ngfleet status`): {}",
            s.abandoned.join(" ")
        );
    }
    if !end.slowest.is_empty() {
        let slow: Vec<String> = end
            .slowest
            .iter()
            .map(|(h, d)| format!("{} {:.1}s", inventory.host(*h).name, d.as_secs_f64()))
            .collect();
        let _ = writeln!(out, "slowest: {}", slow.join(", "));
    }
    let failures: Vec<_> = end.results.iter().filter(|(_, _, e)| e.is_some()).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "failures:");
        for (h, r, e) in failures {
            let name = &inventory.host(*h).name;
            let _ = writeln!(
                out,
                "  {name}: {}: {}",
                r.name(),
                super::without_host(name, e.as_deref().unwrap_or_default())
            );
        }
    }
    if !s.untouched.is_empty() && matches!(result, "paused" | "interrupted") {
        let _ = writeln!(
            out,
            "re-run the same command to continue; untouched: {}",
            s.untouched.join(" ")
        );
    }
    let _ = writeln!(out, "journal: {journal}");
    out
}
