//! Policy impact: what a change to a policy changes, before it is merged.
//!
//! For every gate two policies share, [`compare`] decides the same generated
//! evidence ([`Probes`], seeded, probing every rule's boundaries) under both
//! and keeps the probes where the verdict or the blockers differ. Decisions
//! are pure, so this is exact for the probes tried: every difference found
//! is real, with the evidence to reproduce it.
//!
//! ```
//! use atlas_promote_core::impact::compare;
//! use atlas_promote_core::{Duration, Policy};
//!
//! let old = Policy::atlas();
//! let mut new = Policy::atlas();
//! new.stages[3].soak = Some(Duration::hours(24)); // staging now soaks a day
//! let impact = compare(&old, &new, 2_000, 1);
//! let prod = impact.gates.iter().find(|g| g.to == "prod").unwrap();
//! assert!(!prod.differences.is_empty());
//! assert!(prod.differences.iter().all(|d| d.new.blockers.iter().any(|b| b.kind() == "soaking")));
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decision::{Decision, Verdict};
use crate::policy::Policy;

mod probe;

pub use probe::{PROBE_SHA, Probe, Probes};

/// What changes between two policies.
#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    /// Gates (from, to) only the old policy has.
    pub only_old: Vec<(String, String)>,
    /// Gates only the new policy has.
    pub only_new: Vec<(String, String)>,
    /// Every gate both have, in the old policy's order.
    pub gates: Vec<GateImpact>,
}

impl Impact {
    /// Whether the two policies decide alike on everything tried and have the same gates.
    pub fn is_empty(&self) -> bool {
        self.only_old.is_empty() && self.only_new.is_empty() && self.gates.iter().all(|g| g.differences.is_empty())
    }
}

/// What changes at one gate both policies have.
#[derive(Debug, Clone, Serialize)]
pub struct GateImpact {
    /// The stage left.
    pub from: String,
    /// The stage entered.
    pub to: String,
    /// How many probes were decided.
    pub probes: usize,
    /// How many of them were decided differently.
    pub differing: usize,
    /// One difference per distinct change ([`Difference::summary`]), the one
    /// with the least evidence; smallest first.
    pub differences: Vec<Difference>,
}

/// One probe the two policies decide differently.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The evidence and the instant.
    #[serde(skip)]
    pub probe: Probe,
    /// How much evidence there is ([`Probe::size`]).
    pub size: usize,
    /// The old policy's decision.
    pub old: Decision,
    /// The new policy's decision.
    pub new: Decision,
}

impl Difference {
    /// What changed, e.g. `allowed → blocked: adds check_stale` or
    /// `blocked in both: approvals_missing changes`: the verdicts, then each
    /// blocker kind the new decision has more of (adds), fewer of (drops),
    /// or as many of with other details (changes).
    pub fn summary(&self) -> String {
        let (old, new) = (verdict_word(&self.old.verdict), verdict_word(&self.new.verdict));
        let mut text = if old == new { format!("{old} in both") } else { format!("{old} → {new}") };
        let mut kinds: Vec<&str> = self.old.blockers.iter().chain(&self.new.blockers).map(|b| b.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut changes = Vec::new();
        for kind in kinds {
            let of = |d: &'_ Decision| d.blockers.iter().filter(|b| b.kind() == kind).cloned().collect::<Vec<_>>();
            let (a, b) = (of(&self.old), of(&self.new));
            match a.len().cmp(&b.len()) {
                std::cmp::Ordering::Less => changes.push(format!("adds {kind}")),
                std::cmp::Ordering::Greater => changes.push(format!("drops {kind}")),
                std::cmp::Ordering::Equal if a != b => changes.push(format!("{kind} changes")),
                std::cmp::Ordering::Equal => {}
            }
        }
        if let (Some(a), Some(b)) = (self.old.until(), self.new.until())
            && a != b
        {
            changes.push("the wait ends at another time".to_owned());
        }
        if !changes.is_empty() {
            text.push_str(": ");
            text.push_str(&changes.join(", "));
        }
        text
    }

    /// The difference as a `[[case]]` of a test file that expects the new
    /// policy's decision, with both decisions as comments above it.
    pub fn to_case_toml(&self) -> String {
        let mut text = String::new();
        for (which, decision) in [("old", &self.old), ("new", &self.new)] {
            for (i, line) in decision.to_string().lines().enumerate() {
                let label = if i == 0 { format!("{which}: ") } else { "     ".to_owned() };
                text.push_str(&format!("# {label}{line}\n"));
            }
        }
        let mut expect = serde_json::json!({ "verdict": verdict_name(&self.new.verdict) });
        expect["blockers"] = self.new.blockers.iter().map(|b| b.kind()).collect();
        if let Some(until) = self.new.until() {
            expect["until"] = until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true).into();
        }
        let case = serde_json::json!({
            "case": [{
                "name": self.summary(),
                "from": self.new.from,
                "to": self.new.to,
                "at": self.probe.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "expect": expect,
                "evidence": serde_json::to_value(&self.probe.evidence).unwrap_or_default(),
            }]
        });
        match toml::Value::try_from(without_nulls(case)).map(|v| toml::to_string(&v)) {
            Ok(Ok(toml)) => text.push_str(&toml),
            Ok(Err(e)) | Err(e) => text.push_str(&format!("# this case could not be written as TOML: {e}\n")),
        }
        text
    }
}

/// `allow` / `wait` / `block`, as a test file writes a verdict.
fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Wait { .. } => "wait",
        Verdict::Block => "block",
    }
}

fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allowed",
        Verdict::Wait { .. } => "waiting",
        Verdict::Block => "blocked",
    }
}

/// TOML has no null: absent is how it says none.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect()
        }
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// Every gate of `policy`, as (from, to), in stage order.
pub fn gates(policy: &Policy) -> Vec<(String, String)> {
    let mut gates = Vec::new();
    for from in &policy.stages {
        for to in &policy.stages {
            if from.name != to.name && policy.gate(&from.name, &to.name).is_ok() {
                gates.push((from.name.clone(), to.name.clone()));
            }
        }
    }
    gates
}

/// Decide `cases` probes (seeded with `seed`) per shared gate under both policies, and report what differs.
pub fn compare(old: &Policy, new: &Policy, cases: usize, seed: u64) -> Impact {
    let (old_gates, new_gates) = (gates(old), gates(new));
    let only_old = old_gates.iter().filter(|g| !new_gates.contains(g)).cloned().collect();
    let only_new = new_gates.iter().filter(|g| !old_gates.contains(g)).cloned().collect();
    let gates = old_gates
        .iter()
        .filter(|g| new_gates.contains(g))
        .map(|(from, to)| compare_gate(old, new, from, to, cases, seed))
        .collect();
    Impact { only_old, only_new, gates }
}

/// [`compare`] for one gate both policies have (a gate either lacks yields no difference).
pub fn compare_gate(old: &Policy, new: &Policy, from: &str, to: &str, cases: usize, seed: u64) -> GateImpact {
    let mut impact =
        GateImpact { from: from.to_owned(), to: to.to_owned(), probes: 0, differing: 0, differences: Vec::new() };
    let (Ok(old_gate), Ok(new_gate)) = (old.gate(from, to), new.gate(from, to)) else { return impact };
    // The smallest difference of each distinct change.
    let mut smallest: BTreeMap<String, Difference> = BTreeMap::new();
    for probe in Probes::new(&[old, new], from, to, seed).take(cases) {
        impact.probes += 1;
        let a = old_gate.evaluate(&probe.evidence, probe.at);
        let b = new_gate.evaluate(&probe.evidence, probe.at);
        if a.verdict == b.verdict && a.blockers == b.blockers {
            continue;
        }
        impact.differing += 1;
        let difference = Difference { size: probe.size(), probe, old: a, new: b };
        let key = difference.summary();
        if smallest.get(&key).is_none_or(|known| difference.size < known.size) {
            smallest.insert(key, difference);
        }
    }
    impact.differences = smallest.into_values().collect();
    impact.differences.sort_by(|x, y| x.size.cmp(&y.size).then_with(|| x.summary().cmp(&y.summary())));
    impact
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Duration;

    #[test]
    fn a_policy_does_not_differ_from_itself() {
        let atlas = Policy::atlas();
        let impact = compare(&atlas, &atlas, 3_000, 9);
        assert!(impact.is_empty(), "{impact:?}");
        assert_eq!(impact.gates.len(), 4);
        assert!(impact.gates.iter().all(|g| g.probes == 3_000));
    }

    #[test]
    fn a_shorter_max_age_differs_only_by_stale_checks() {
        let old = Policy::atlas();
        let mut new = Policy::atlas();
        for check in &mut new.stages[3].checks {
            check.max_age = Some(Duration::hours(24));
        }
        let impact = compare(&old, &new, 5_000, 2);
        let prod = impact.gates.iter().find(|g| g.to == "prod").unwrap();
        assert!(!prod.differences.is_empty());
        for d in &prod.differences {
            assert!(d.new.blockers.iter().any(|b| b.kind() == "check_stale"), "{}", d.summary());
        }
        assert!(impact.gates.iter().filter(|g| g.to != "prod").all(|g| g.differences.is_empty()));
    }

    #[test]
    fn a_difference_is_a_case_the_test_file_reader_takes() {
        let old = Policy::atlas();
        let mut new = Policy::atlas();
        new.stages[4].approvals.as_mut().unwrap().require.insert("security".into(), 1);
        let impact = compare(&old, &new, 2_000, 3);
        let prod = impact.gates.iter().find(|g| g.to == "prod").unwrap();
        let first = prod.differences.first().expect("a difference");
        let toml = first.to_case_toml();
        let value: toml::Table = toml::from_str(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(value["case"][0]["expect"]["verdict"].as_str(), Some("block"), "{toml}");
        let sizes: Vec<usize> = prod.differences.iter().map(|d| d.size).collect();
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "smallest first: {sizes:?}");
    }

    #[test]
    fn a_new_blackout_differs_only_by_blackout_blockers() {
        let old = Policy::atlas();
        let mut new = Policy::atlas();
        new.stages[4].blackouts = vec![crate::policy::Blackout {
            days: vec![crate::policy::Weekday::Fri],
            start: crate::policy::LocalTime::hm(15, 0).unwrap(),
            end: crate::policy::LocalTime::END_OF_DAY,
            tz: chrono_tz::Europe::Berlin,
            reason: None,
        }];
        let impact = compare(&old, &new, 5_000, 4);
        let prod = impact.gates.iter().find(|g| g.to == "prod").unwrap();
        assert!(!prod.differences.is_empty(), "the probes reach the blackout's edges");
        for d in &prod.differences {
            assert!(d.new.blockers.iter().any(|b| b.kind() == "blackout"), "{}", d.summary());
        }
    }

    #[test]
    fn a_gate_one_policy_lacks_is_reported() {
        let old = Policy::atlas();
        let mut new = Policy::atlas();
        new.stages.remove(2); // no dev: trunk → staging
        let impact = compare(&old, &new, 10, 1);
        assert!(impact.only_old.contains(&("trunk".into(), "dev".into())));
        assert!(impact.only_new.contains(&("trunk".into(), "staging".into())));
        assert!(!impact.is_empty());
    }
}
