//! The planner: selected hosts and a spec in, an ordered list of waves out. Pure and
//! deterministic: `shuffle` takes its seed from the caller, and the plan records it.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::model::inventory::Inventory;
use crate::model::pattern::{Pattern, PatternError};
use crate::model::spec::{Amount, CanaryHosts, Order, Spec};

/// One wave: hosts that run together (at most `parallel` at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    pub index: usize,
    pub canary: bool,
    /// Indices into the inventory's hosts, in the order they start.
    pub hosts: Vec<usize>,
}

/// The whole plan of a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Every selected host, in rollout order.
    pub hosts: Vec<usize>,
    pub waves: Vec<Wave>,
    pub order: Order,
    /// The seed used, for `shuffle`.
    pub seed: Option<u64>,
    /// How many failed hosts the rollout tolerates.
    pub max_failed: usize,
}

impl Plan {
    /// The same hosts in one wave, in the plan's order, without a canary: for a rollback,
    /// which goes back to a version the hosts ran and needs no pacing.
    pub fn all_at_once(self) -> Plan {
        let waves = if self.hosts.is_empty() {
            Vec::new()
        } else {
            vec![Wave {
                index: 0,
                canary: false,
                hosts: self.hosts.clone(),
            }]
        };
        Plan { waves, ..self }
    }
}

/// Why no plan could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("failed to select the spec's hosts ({hosts})")]
    Hosts {
        hosts: String,
        #[source]
        source: PatternError,
    },
    #[error("failed to select hosts with --limit {limit}")]
    Limit {
        limit: String,
        #[source]
        source: PatternError,
    },
    #[error("no host selected (hosts: {hosts}{limit})")]
    NoHostSelected { hosts: String, limit: String },
    #[error("canary group `{0}` is not in the inventory")]
    CanaryGroupUnknown(String),
    #[error("canary group `{0}` has no host among the selected hosts")]
    CanaryGroupEmpty(String),
    #[error("canary wants {wanted} hosts but only {selected} are selected")]
    CanaryTooLarge { wanted: usize, selected: usize },
}

/// The hosts selected by the spec's `hosts:` and the `--limit`, in the order the spec's pattern
/// gives them (Ansible's: union terms as written, each group in its own order).
pub fn select(
    inventory: &Inventory,
    spec: &Spec,
    limit: Option<&Pattern>,
) -> Result<Vec<usize>, PlanError> {
    let mut selected = spec
        .hosts
        .select(inventory)
        .map_err(|source| PlanError::Hosts {
            hosts: spec.hosts.to_string(),
            source,
        })?;
    if let Some(limit) = limit {
        let allowed = limit.select(inventory).map_err(|source| PlanError::Limit {
            limit: limit.to_string(),
            source,
        })?;
        let allowed = mask(inventory.hosts().len(), &allowed);
        selected.retain(|&h| allowed[h]);
    }
    if selected.is_empty() {
        return Err(PlanError::NoHostSelected {
            hosts: spec.hosts.to_string(),
            limit: limit.map(|l| format!(", --limit {l}")).unwrap_or_default(),
        });
    }
    Ok(selected)
}

/// A `count`-long mask with the given host indices set: membership in constant time.
fn mask(count: usize, hosts: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; count];
    for &h in hosts {
        mask[h] = true;
    }
    mask
}

/// Cuts the selected hosts into waves: the canary first, then batches like Ansible's
/// `serial` (the last size repeats). `seed` is used only by `order: shuffle`.
pub fn plan(
    inventory: &Inventory,
    spec: &Spec,
    limit: Option<&Pattern>,
    seed: u64,
) -> Result<Plan, PlanError> {
    let mut hosts = select(inventory, spec, limit)?;
    let by_name = |a: &usize, b: &usize| inventory.host(*a).name.cmp(&inventory.host(*b).name);
    match spec.order {
        Order::Inventory => {}
        Order::ReverseInventory => hosts.reverse(),
        Order::Sorted => hosts.sort_by(by_name),
        Order::ReverseSorted => {
            hosts.sort_by(by_name);
            hosts.reverse();
        }
        Order::Shuffle => hosts.shuffle(&mut ChaCha8Rng::seed_from_u64(seed)),
    }
    let selected = hosts.len();

    let canary: Vec<usize> = match &spec.canary.hosts {
        CanaryHosts::Amount(amount) => {
            let wanted = match amount {
                Amount::Count(0) => 0,
                other => other.of(selected),
            };
            if wanted > selected {
                return Err(PlanError::CanaryTooLarge { wanted, selected });
            }
            hosts[..wanted].to_vec()
        }
        CanaryHosts::Group(group) => {
            let members = inventory
                .group(group)
                .ok_or_else(|| PlanError::CanaryGroupUnknown(group.clone()))?;
            let members = mask(inventory.hosts().len(), members);
            let picked: Vec<usize> = hosts.iter().copied().filter(|&h| members[h]).collect();
            if picked.is_empty() {
                return Err(PlanError::CanaryGroupEmpty(group.clone()));
            }
            picked
        }
    };

    let mut waves = Vec::new();
    if !canary.is_empty() {
        waves.push(Wave {
            index: 0,
            canary: true,
            hosts: canary.clone(),
        });
    }
    let in_canary = mask(inventory.hosts().len(), &canary);
    let rest: Vec<usize> = hosts.iter().copied().filter(|&h| !in_canary[h]).collect();
    let mut taken = 0;
    let mut sizes = spec.batches.iter();
    let mut last = spec.batches.last().copied().unwrap_or(Amount::Percent(100));
    while taken < rest.len() {
        let amount = sizes.next().copied().unwrap_or(last);
        last = amount;
        let size = amount.of(selected).max(1).min(rest.len() - taken);
        waves.push(Wave {
            index: waves.len(),
            canary: false,
            hosts: rest[taken..taken + size].to_vec(),
        });
        taken += size;
    }
    Ok(Plan {
        hosts,
        waves,
        order: spec.order,
        seed: (spec.order == Order::Shuffle).then_some(seed),
        max_failed: match spec.max_failed {
            Amount::Count(n) => n,
            percent => percent.of(selected),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = "\
all:
  children:
    web:
      hosts:
        web-[01:10]:
    db:
      hosts:
        db-[1:3]:
    canaries:
      hosts:
        web-04:
        db-2:
";

    fn inventory() -> Inventory {
        Inventory::parse("inv.yaml", INVENTORY).unwrap_or_else(|e| panic!("{e}"))
    }

    fn spec(text: &str) -> Spec {
        Spec::parse("p.yaml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn waves(inv: &Inventory, plan: &Plan) -> Vec<Vec<String>> {
        plan.waves
            .iter()
            .map(|w| w.hosts.iter().map(|&h| inv.host(h).name.clone()).collect())
            .collect()
    }

    #[test]
    fn a_rollback_plan_is_one_wave_in_the_same_order() {
        let inv = inventory();
        let p = plan(&inv, &spec("canary: {hosts: 1}\nbatches: [2]\n"), None, 0)
            .expect("plan")
            .all_at_once();
        assert_eq!(p.waves.len(), 1);
        assert!(!p.waves[0].canary);
        assert_eq!(p.waves[0].hosts, p.hosts);
        assert_eq!(p.hosts.len(), 13);
    }

    #[test]
    fn canary_then_batches_with_the_last_size_repeating() {
        let inv = inventory();
        let plan = plan(&inv, &spec("hosts: web\nbatches: [2, \"30%\"]\n"), None, 0).expect("plan");
        assert_eq!(
            waves(&inv, &plan),
            [
                vec!["web-01"],
                vec!["web-02", "web-03"],
                vec!["web-04", "web-05", "web-06"],
                vec!["web-07", "web-08", "web-09"],
                vec!["web-10"],
            ]
        );
        assert!(plan.waves[0].canary && !plan.waves[1].canary);
        assert_eq!(
            plan.waves.iter().map(|w| w.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn canary_group_takes_its_selected_members() {
        let inv = inventory();
        let s = spec("canary: {hosts: canaries}\nbatches: [\"100%\"]\n");
        let p = plan(&inv, &s, Some(&"web".parse().expect("pattern")), 0).expect("plan");
        assert_eq!(waves(&inv, &p)[0], ["web-04"]);
        assert_eq!(waves(&inv, &p)[1].len(), 9);
        assert!(!waves(&inv, &p)[1].contains(&"web-04".to_owned()));
    }

    #[test]
    fn no_canary_when_count_is_zero() {
        let inv = inventory();
        let p = plan(
            &inv,
            &spec("hosts: db\ncanary: {hosts: 0}\nbatches: [1]\n"),
            None,
            0,
        )
        .expect("plan");
        assert_eq!(waves(&inv, &p), [vec!["db-1"], vec!["db-2"], vec!["db-3"]]);
        assert!(p.waves.iter().all(|w| !w.canary));
    }

    #[test]
    fn percentages_are_of_the_selected_hosts() {
        let inv = inventory();
        let p = plan(
            &inv,
            &spec("canary: {hosts: \"10%\"}\nbatches: [\"50%\"]\nmax_failed: \"20%\"\n"),
            None,
            0,
        )
        .expect("plan");
        // 13 hosts: canary ceil(1.3) = 2, batches ceil(6.5) = 7, then the remaining 4.
        assert_eq!(
            p.waves.iter().map(|w| w.hosts.len()).collect::<Vec<_>>(),
            [2, 7, 4]
        );
        assert_eq!(p.max_failed, 3);
    }

    #[test]
    fn orders() {
        let inv = inventory();
        let sorted = plan(&inv, &spec("hosts: db:web-01:web-02\norder: reverse_sorted\ncanary: {hosts: 0}\nbatches: [\"100%\"]\n"), None, 0)
            .expect("plan");
        assert_eq!(
            waves(&inv, &sorted),
            [vec!["web-02", "web-01", "db-3", "db-2", "db-1"]]
        );
        let s = spec("order: shuffle\n");
        let a = plan(&inv, &s, None, 7).expect("plan");
        let b = plan(&inv, &s, None, 7).expect("plan");
        let c = plan(&inv, &s, None, 8).expect("plan");
        assert_eq!(a, b, "the same seed gives the same plan");
        assert_ne!(a.hosts, c.hosts, "another seed gives another order");
        assert_eq!(a.seed, Some(7));
        let mut sorted_hosts = a.hosts.clone();
        sorted_hosts.sort_unstable();
        assert_eq!(sorted_hosts, (0..13).collect::<Vec<_>>());
    }

    #[test]
    fn impossible_plans_are_errors() {
        let inv = inventory();
        let limit: Pattern = "db".parse().expect("pattern");
        assert_eq!(
            plan(&inv, &spec("hosts: web\n"), Some(&limit), 0)
                .expect_err("empty")
                .to_string(),
            "no host selected (hosts: web, --limit db)"
        );
        assert_eq!(
            plan(&inv, &spec("hosts: db\ncanary: {hosts: web}\n"), None, 0)
                .expect_err("x")
                .to_string(),
            "canary group `web` has no host among the selected hosts"
        );
        assert_eq!(
            plan(&inv, &spec("canary: {hosts: edge}\n"), None, 0)
                .expect_err("x")
                .to_string(),
            "canary group `edge` is not in the inventory"
        );
        assert_eq!(
            plan(&inv, &spec("hosts: db\ncanary: {hosts: 5}\n"), None, 0)
                .expect_err("x")
                .to_string(),
            "canary wants 5 hosts but only 3 are selected"
        );
    }
}
