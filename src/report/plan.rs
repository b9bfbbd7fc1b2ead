//! A plan as text for a terminal, and as the JSON object `plan --json` prints.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use crate::model::inventory::Inventory;
use crate::model::spec::Spec;
use crate::model::window::WindowState;
use crate::plan::Plan;

#[derive(Serialize)]
struct JsonPlan<'a> {
    hosts: usize,
    order: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    max_failed: usize,
    batches: Vec<JsonWave<'a>>,
}

#[derive(Serialize)]
struct JsonWave<'a> {
    index: usize,
    canary: bool,
    hosts: Vec<&'a str>,
}

/// `{"hosts": N, "batches": [{"index": 0, "canary": true, "hosts": [...]}, ...], ...}`
pub fn json(plan: &Plan, inventory: &Inventory) -> String {
    let value = JsonPlan {
        hosts: plan.hosts.len(),
        order: plan.order.to_string(),
        seed: plan.seed,
        max_failed: plan.max_failed,
        batches: plan
            .waves
            .iter()
            .map(|w| JsonWave {
                index: w.index,
                canary: w.canary,
                hosts: w
                    .hosts
                    .iter()
                    .map(|&h| inventory.host(h).name.as_str())
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&value).unwrap_or_default()
}

/// The plan for a person: one line per wave, then the knobs that shape the rollout and the
/// maintenance windows as seen from `now`.
pub fn text(plan: &Plan, inventory: &Inventory, spec: &Spec, now: Timestamp) -> String {
    let mut out = String::new();
    let name = spec.name.as_deref().unwrap_or("rollout");
    let _ = writeln!(
        out,
        "{name}: {} host{} in {} wave{} (order: {}{})",
        plan.hosts.len(),
        plural(plan.hosts.len()),
        plan.waves.len(),
        plural(plan.waves.len()),
        plan.order,
        plan.seed.map(|s| format!(", seed {s}")).unwrap_or_default(),
    );
    for wave in &plan.waves {
        let label = if wave.canary {
            format!("wave {} (canary)", wave.index)
        } else {
            format!("wave {}", wave.index)
        };
        let names: Vec<&str> = wave
            .hosts
            .iter()
            .map(|&h| inventory.host(h).name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  {label:<18} {:>4} {:<5}  {}",
            names.len(),
            if names.len() == 1 { "host" } else { "hosts" },
            names.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "parallel {}, max_failed {}, rollback {}, keep_old_master {}",
        spec.parallel, plan.max_failed, spec.rollback, spec.keep_old_master
    );
    match spec.windows.state_at(now) {
        WindowState::Always => {
            let _ = writeln!(out, "windows: none (may run at any time)");
        }
        WindowState::Open { closes_at } => {
            let _ = writeln!(out, "windows: open now, closes at {closes_at}");
        }
        WindowState::Closed { opens_at } => {
            let _ = writeln!(out, "windows: closed now, next opens at {opens_at}");
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
