//! A seeded generator of evidence that probes a gate's rules at their boundaries.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};

use crate::evidence::{ApprovalDecision, ApprovalRecord, Candidate, CheckResult, CheckStatus, Deployment, Evidence};
use crate::policy::{Policy, Stage, Weekday};

/// One generated question to a gate: evidence and the instant to decide at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The instant to decide at.
    pub at: DateTime<Utc>,
    /// The evidence.
    pub evidence: Evidence,
}

impl Probe {
    /// How much evidence there is: check results, approval records, authors,
    /// a deployment or an entry time. Smaller probes are easier to read.
    pub fn size(&self) -> usize {
        let e = &self.evidence;
        e.checks.len()
            + e.approvals.len()
            + e.candidate.authors.len()
            + usize::from(e.deployment.is_some())
            + usize::from(e.deployment.as_ref().is_some_and(|d| d.flushed_at.is_some()))
            + usize::from(e.entered_at.is_some())
    }
}

/// The candidate every probe is about.
pub const PROBE_SHA: &str = "c0ffee1";
/// The author of every probe's candidate.
const AUTHOR: &str = "alice";
/// Where time is anchored when the target has no window and no freeze: a Wednesday.
const ANCHOR: i64 = 1_778_061_600; // 2026-05-06T10:00:00Z
/// Days around which windows are probed: an ordinary week, and the 2026
/// daylight-saving changes of Europe and the United States.
const PROBE_DAYS: [(i32, u32, u32); 5] = [(2026, 5, 6), (2026, 3, 29), (2026, 3, 8), (2026, 10, 25), (2026, 11, 1)];

/// An endless, seeded stream of [`Probe`]s for the gate `from → to` of one
/// or two policies: the boundaries of either policy's rules are probed
/// (results around `ready_at` and `max_age`, approvals around `ttl`, every
/// role, the author approving, windows, blackouts and freezes around their edges, the
/// days clocks change).
///
/// ```
/// use atlas_promote_core::impact::Probes;
/// use atlas_promote_core::Policy;
///
/// let policy = Policy::atlas();
/// let a: Vec<_> = Probes::new(&[&policy], "staging", "prod", 7).take(3).collect();
/// let b: Vec<_> = Probes::new(&[&policy], "staging", "prod", 7).take(3).collect();
/// assert_eq!(a, b); // the same seed, the same probes
/// ```
#[derive(Debug, Clone)]
pub struct Probes {
    rng: SplitMix,
    source_is_environment: bool,
    target: String,
    source: String,
    checks: Vec<String>,
    durations: Vec<TimeDelta>,
    people: Vec<(String, Vec<String>)>,
    roles: Vec<String>,
    edges: Vec<DateTime<Utc>>,
}

impl Probes {
    /// Probes for the gate `from → to` of each of `policies` (stages they lack are ignored).
    pub fn new(policies: &[&Policy], from: &str, to: &str, seed: u64) -> Self {
        let sources: Vec<&Stage> = policies.iter().filter_map(|p| p.stage(from)).collect();
        let targets: Vec<&Stage> = policies.iter().filter_map(|p| p.stage(to)).collect();
        let checks: BTreeSet<String> = sources.iter().flat_map(|s| s.checks.iter().map(|c| c.name.clone())).collect();
        let mut durations: BTreeSet<TimeDelta> = BTreeSet::from([TimeDelta::zero()]);
        for stage in &sources {
            durations.extend(stage.soak.map(|d| d.to_chrono()));
            durations.extend(stage.checks.iter().filter_map(|c| c.max_age.map(|d| d.to_chrono())));
        }
        durations.extend(targets.iter().filter_map(|s| s.approvals.as_ref()?.ttl.map(|d| d.to_chrono())));
        let mut roles: BTreeSet<String> =
            targets.iter().flat_map(|s| s.approvals.iter().flat_map(|a| a.require.keys().cloned())).collect();
        let mut people: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for policy in policies {
            for (person, held) in &policy.directory {
                people.entry(person.clone()).or_default().extend(held.iter().cloned());
                roles.extend(held.iter().cloned());
            }
        }
        let roles: Vec<String> = roles.into_iter().collect();
        // People outside any directory hold the rule's roles one, two at a time.
        for (i, role) in roles.iter().enumerate() {
            people.entry(format!("p{}", i + 1)).or_insert_with(|| vec![role.clone()]);
            if let Some(next) = roles.get(i + 1) {
                people.entry(format!("q{}", i + 1)).or_insert_with(|| vec![role.clone(), next.clone()]);
            }
        }
        people.entry("outsider".into()).or_default();
        let mut edges = BTreeSet::new();
        for stage in &targets {
            window_edges(stage, &mut edges);
            for freeze in &stage.freezes {
                edges.insert(freeze.from);
                edges.extend(freeze.until);
            }
        }
        Self {
            rng: SplitMix(seed),
            source_is_environment: sources.iter().any(|s| s.is_environment()),
            source: from.to_owned(),
            target: to.to_owned(),
            checks: checks.into_iter().collect(),
            durations: durations.into_iter().collect(),
            people: people.into_iter().collect(),
            roles,
            edges: edges.into_iter().collect(),
        }
    }

    /// An instant to decide at: a window's or freeze's edge give or take a minute, or any time near one.
    fn now(&mut self) -> DateTime<Utc> {
        let base = match self.edges.len() {
            0 => DateTime::from_timestamp(ANCHOR, 0).unwrap_or(DateTime::UNIX_EPOCH),
            n => self.edges[self.rng.below(n)],
        };
        if self.rng.chance(60) && !self.edges.is_empty() {
            base + self.nudge()
        } else {
            base + TimeDelta::minutes(self.rng.below(6 * 24 * 60) as i64 - 3 * 24 * 60)
        }
    }

    /// -1, 0 or +1 minute.
    fn nudge(&mut self) -> TimeDelta {
        TimeDelta::minutes(self.rng.below(3) as i64 - 1)
    }

    /// How long ago something happened: one of the rules' durations give or take a minute, or anything up to four days.
    fn ago(&mut self) -> TimeDelta {
        let d = if self.rng.chance(70) {
            let d = self.durations[self.rng.below(self.durations.len())];
            d + self.nudge()
        } else {
            TimeDelta::minutes(self.rng.below(4 * 24 * 60) as i64)
        };
        d.max(TimeDelta::zero())
    }

    fn probe(&mut self) -> Probe {
        let now = self.now();
        let mut candidate = Candidate::trunk(PROBE_SHA, [AUTHOR]);
        if self.rng.chance(8) {
            candidate = Candidate::branch(PROBE_SHA, "feature/x", [AUTHOR]);
        }
        if self.rng.chance(20) {
            let (other, _) = &self.people[self.rng.below(self.people.len())];
            candidate.authors.push(other.clone());
        }
        let mut evidence = Evidence::new(candidate);
        let ready_at = now - self.ago();
        if self.source_is_environment {
            if !self.rng.chance(8) {
                let flush_required = self.rng.chance(40);
                let deployed_at = ready_at - TimeDelta::minutes(if flush_required { 20 } else { 0 });
                let flushed_at = match (flush_required, self.rng.below(4)) {
                    (false, _) => None,
                    (true, 0) => None,
                    (true, 1) => Some(deployed_at - TimeDelta::minutes(5)),
                    (true, _) => Some(ready_at),
                };
                evidence.deployment = Some(Deployment { deployed_at, flush_required, flushed_at });
            }
        } else if !self.rng.chance(8) {
            evidence.entered_at = Some(ready_at);
        }
        for i in 0..self.checks.len() {
            let results = match self.rng.below(20) {
                0..=2 => 0,
                3..=14 => 1,
                _ => 2,
            };
            for _ in 0..results {
                let status = match self.rng.below(20) {
                    0..=11 => CheckStatus::Passed,
                    12..=14 => CheckStatus::Failed,
                    15 | 16 => CheckStatus::Running,
                    17 => CheckStatus::Cancelled,
                    _ => CheckStatus::Errored,
                };
                let finished = (now - self.ago()).max(ready_at);
                let mut started_at = finished - TimeDelta::minutes(40);
                if self.rng.chance(10) {
                    started_at = ready_at - TimeDelta::minutes(1);
                }
                let finished_at = status.is_finished().then(|| finished.max(started_at));
                let sha = if self.rng.chance(4) { "0ld5ha1" } else { PROBE_SHA };
                evidence.checks.push(CheckResult {
                    name: self.checks[i].clone(),
                    sha: sha.to_owned(),
                    status,
                    started_at,
                    finished_at,
                });
            }
        }
        if !self.roles.is_empty() {
            for _ in 0..self.rng.below(5) {
                let (approver, held) = if self.rng.chance(15) {
                    (AUTHOR.to_owned(), vec![self.roles[self.rng.below(self.roles.len())].clone()])
                } else {
                    self.people[self.rng.below(self.people.len())].clone()
                };
                let decision = match self.rng.below(20) {
                    0..=14 => ApprovalDecision::Approve,
                    15..=17 => ApprovalDecision::Reject,
                    _ => ApprovalDecision::Withdraw,
                };
                let stage = if self.rng.chance(5) { self.source.clone() } else { self.target.clone() };
                let sha = if self.rng.chance(4) { "0ld5ha1" } else { PROBE_SHA };
                let at = now - self.ago();
                evidence.approvals.push(ApprovalRecord { approver, roles: held, stage, sha: sha.into(), decision, at });
            }
        }
        Probe { at: now, evidence }
    }
}

impl Iterator for Probes {
    type Item = Probe;

    fn next(&mut self) -> Option<Probe> {
        Some(self.probe())
    }
}

/// Every instant a window or blackout of `stage` opens or closes, on the days around [`PROBE_DAYS`].
fn window_edges(stage: &Stage, edges: &mut BTreeSet<DateTime<Utc>>) {
    let windows = stage.windows.iter().map(|w| (&w.days, w.start, w.end, w.tz));
    let blackouts = stage.blackouts.iter().map(|b| (&b.days, b.start, b.end, b.tz));
    for (days, start, end, tz) in windows.chain(blackouts) {
        for (year, month, day) in PROBE_DAYS {
            let Some(center) = NaiveDate::from_ymd_opt(year, month, day) else { continue };
            for offset in -3..=3 {
                let date = center + TimeDelta::days(offset);
                if !days.contains(&Weekday::from(date.weekday())) {
                    continue;
                }
                for time in [start, end] {
                    // `24:00` is midnight of the next day.
                    let Some(local) = date
                        .and_hms_opt(0, 0, 0)
                        .map(|midnight| midnight + TimeDelta::minutes(i64::from(time.minutes_from_midnight())))
                    else {
                        continue;
                    };
                    // A time skipped by a clock change has no instant; a repeated one has two.
                    let local = tz.from_local_datetime(&local);
                    edges.extend(local.earliest().map(|t| t.to_utc()));
                    edges.extend(local.latest().map(|t| t.to_utc()));
                }
            }
        }
    }
}

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix(3);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn a_skipped_wall_clock_time_has_no_edge_and_a_repeated_one_has_two() {
        let text = r#"
name = "w"
[[stage]]
name = "trunk"
kind = "trunk"
[[stage]]
name = "prod"
kind = "environment"
windows = [{ days = ["sun"], start = "02:30", end = "05:00", tz = "Europe/Berlin" }]
"#;
        let policy = Policy::from_toml_str(text, "w.toml").unwrap();
        let mut edges = BTreeSet::new();
        window_edges(policy.stage("prod").unwrap(), &mut edges);
        let on = |day: &str| edges.iter().filter(|t| t.to_rfc3339().starts_with(day)).count();
        // 29 March 2026: 02:30 does not exist in Berlin; 05:00 does, once.
        assert_eq!(on("2026-03-29"), 1);
        // 25 October 2026: 02:30 happens twice (00:30 and 01:30 UTC), 05:00 once.
        assert_eq!(on("2026-10-25"), 3);
    }
}
