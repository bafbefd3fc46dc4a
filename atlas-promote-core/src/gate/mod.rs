//! The pure gate decision (DESIGN §4): may candidate C move from S to T now?
//!
//! [`Gate::evaluate`] applies the rules in order and collects every blocker
//! and warning:
//!
//! - **G1 origin** (here): an environment takes trunk candidates, an
//!   ephemeral one branch builds only; other stages take both.
//! - **G2 ready** (here): an environment source needs a deployment, and a
//!   flush after it when one is required. If G2 fails, G3 and G4 are skipped.
//! - **G3 checks** (`checks`): the deciding result of each check of S.
//! - **G4 soak** (here): `now >= ready_at + soak`.
//! - **G5 approvals** (`approvals`): T's rule, as a bipartite matching of
//!   approvers to role slots.
//! - **G6 windows, blackouts and freezes** (`windows`) of T.
//!
//! Where DESIGN §4 is silent, this module chooses:
//!
//! - A review or trunk source whose `entered_at` is unknown has no
//!   `ready_at`: every result for the commit counts, and the decision warns
//!   [`Warning::EnteredAtUnknown`] when the stage has checks. Its soak
//!   cannot be counted: counted from `now`, it would end an hour after every
//!   instant asked about and never be waited out, so it blocks
//!   ([`Blocker::SoakStartUnknown`]) until the entry time is known.
//! - `ready_at` is `max(deployed_at, flushed_at)` whenever a flush time is
//!   known, also when no flush was required: results from before a flush do
//!   not describe the flushed data.
//! - Instants that do not fit in a [`DateTime`] never panic: a soak ending
//!   beyond the last representable instant never ends, a window opening
//!   beyond it never opens. Ages (`max_age`, `ttl`) are compared as spans
//!   between two instants, which cannot overflow.

mod approvals;
mod checks;
mod scratch;
mod windows;

pub(crate) use windows::opens_within_horizon;

use chrono::{DateTime, TimeDelta, Utc};

use crate::Duration;
use crate::decision::{Blocker, Decision, Verdict, Warning};
use crate::evidence::{Evidence, Origin};
use crate::policy::{Policy, Stage};

/// A step from one stage of a policy to a later one, ready to evaluate.
///
/// Get one with [`Policy::gate`].
#[derive(Debug, Clone, Copy)]
pub struct Gate<'p> {
    policy: &'p Policy,
    from: &'p Stage,
    to: &'p Stage,
}

/// Why a policy has no gate between two stages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The policy has no stage of this name.
    #[error("policy {policy:?} has no stage named {stage:?} (stages: {known})")]
    UnknownStage {
        /// The policy's name.
        policy: String,
        /// The name asked for.
        stage: String,
        /// The stages it does have, comma-separated.
        known: String,
    },
    /// The target stage does not directly follow the source stage.
    #[error("{to:?} does not follow {from:?} in policy {policy:?}; the next stage after {from:?} is {next}")]
    NotNext {
        /// The policy's name.
        policy: String,
        /// The source stage.
        from: String,
        /// The target stage asked for.
        to: String,
        /// The stage that does follow, or `none`.
        next: String,
    },
}

impl Policy {
    /// The gate from stage `from` to stage `to`.
    ///
    /// `to` must come after `from`, with only ephemeral environments between
    /// them (a trunk candidate skips those), or be an ephemeral environment
    /// itself (a branch build goes there straight from review or trunk).
    pub fn gate(&self, from: &str, to: &str) -> Result<Gate<'_>, GateError> {
        let find = |name: &str| {
            self.stage_index(name).ok_or_else(|| GateError::UnknownStage {
                policy: self.name.clone(),
                stage: name.to_owned(),
                known: self.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
            })
        };
        let (i, j) = (find(from)?, find(to)?);
        let (source, target) = (&self.stages[i], &self.stages[j]);
        let skips_only_ephemeral = i < j && self.stages[i + 1..j].iter().all(|s| s.ephemeral);
        let into_ephemeral = i < j && target.ephemeral && !source.is_environment();
        if !(skips_only_ephemeral || into_ephemeral) {
            let next = self.stages[i + 1..]
                .iter()
                .find(|s| !s.ephemeral)
                .map_or_else(|| "none".to_owned(), |s| format!("{:?}", s.name));
            return Err(GateError::NotNext { policy: self.name.clone(), from: from.into(), to: to.into(), next });
        }
        Ok(Gate { policy: self, from: source, to: target })
    }
}

impl<'p> Gate<'p> {
    /// The policy this gate belongs to.
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// The stage a candidate leaves.
    pub fn from(&self) -> &'p Stage {
        self.from
    }

    /// The stage a candidate enters.
    pub fn to(&self) -> &'p Stage {
        self.to
    }

    /// Decide whether the candidate of `evidence` may pass this gate at `now`.
    ///
    /// Pure: no I/O, no clock reads; the same inputs give the same decision.
    /// The decision lists every blocker in rule order (G1 … G6) and every
    /// warning; its verdict is [`Verdict::Allow`] without blockers,
    /// [`Verdict::Wait`] when only time stands in the way, else
    /// [`Verdict::Block`]. A wait looks ahead: the same evidence decided at
    /// its `until` adds a [`Warning::BlockedWhenWaitEnds`] for each blocker
    /// time will not clear (a check gone stale, an approval expired).
    ///
    /// ```
    /// use atlas_promote_core::{Candidate, Deployment, Evidence, Policy, Verdict};
    ///
    /// let policy = Policy::atlas();
    /// let mut evidence = Evidence::new(Candidate::trunk("9fceb02", ["alice"]));
    /// evidence.deployment = Some(Deployment {
    ///     deployed_at: "2026-05-04T08:00:00Z".parse().unwrap(),
    ///     flush_required: false,
    ///     flushed_at: None,
    /// });
    /// let now = "2026-05-04T09:00:00Z".parse().unwrap();
    /// let decision = policy.gate("dev", "staging").unwrap().evaluate(&evidence, now);
    /// assert_eq!(decision.verdict, Verdict::Block);
    /// assert_eq!(decision.blockers[0].kind(), "approvals_missing");
    /// ```
    pub fn evaluate(&self, evidence: &Evidence, now: DateTime<Utc>) -> Decision {
        let _span = tracing::debug_span!(
            "gate",
            policy = %self.policy.name,
            from = %self.from.name,
            to = %self.to.name,
            sha = %evidence.candidate.sha,
        )
        .entered();
        let mut decision = self.decide(evidence, now);
        if let Verdict::Wait { until } = decision.verdict {
            let then = self.decide(evidence, until);
            decision.warnings.extend(blocked_when_wait_ends(&decision, &then, until));
        }
        tracing::debug!(
            verdict = %decision.verdict,
            blockers = decision.blockers.len(),
            warnings = decision.warnings.len(),
            "gate decided"
        );
        decision
    }

    /// G1 … G6 and the verdict at `now`, without looking ahead.
    fn decide(&self, evidence: &Evidence, now: DateTime<Utc>) -> Decision {
        let mut blockers = Vec::new();
        let mut warnings = Vec::new();

        if let Some(blocker) = origin(self.to, evidence.candidate.origin) {
            blockers.push(blocker);
        }

        let mut soak_end = None;
        match ready(self.from, evidence) {
            Err(blocker) => blockers.push(blocker),
            Ok(ready_at) => {
                if ready_at.is_none() && !self.from.checks.is_empty() {
                    warnings.push(Warning::EnteredAtUnknown { stage: self.from.name.clone() });
                }
                checks::evaluate(self.from, evidence, ready_at, now, &mut blockers, &mut warnings);
                match (self.from.soak, ready_at) {
                    (Some(soak), None) => {
                        blockers.push(Blocker::SoakStartUnknown { stage: self.from.name.clone(), soak })
                    }
                    (Some(soak), Some(ready_at)) => {
                        let until = end_of_soak(ready_at, soak);
                        if now < until {
                            blockers.push(Blocker::Soaking { stage: self.from.name.clone(), until });
                            soak_end = Some(until);
                        }
                    }
                    (None, _) => {}
                }
            }
        }

        if let Some(rule) = &self.to.approvals {
            approvals::evaluate(rule, self.to, evidence, now, &mut blockers, &mut warnings);
        }
        windows::evaluate(self.to, now, &mut blockers);

        let verdict = verdict(self.to, &blockers, soak_end, now);
        Decision {
            from: self.from.name.clone(),
            to: self.to.name.clone(),
            sha: evidence.candidate.sha.clone(),
            at: now,
            verdict,
            blockers,
            warnings,
        }
    }
}

/// What will block when a wait ends: the blockers of `then` (the same
/// evidence decided at `until`) that time does not clear, each named with
/// the approvals counted `now` that will have expired.
///
/// Only time-based blockers stand in the way `now` (the verdict is a wait),
/// so every other blocker of `then` is new: a check's pass gone stale or an
/// approval expired in the meantime. `then`'s own time-based blockers are
/// left out: at `until` none holds.
fn blocked_when_wait_ends(now: &Decision, then: &Decision, until: DateTime<Utc>) -> Vec<Warning> {
    let expired = |d: &Decision| {
        d.warnings
            .iter()
            .filter_map(|w| match w {
                Warning::ApprovalExpired { approver, .. } => Some(approver.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let (before, after) = (expired(now), expired(then));
    let mut expiring: Vec<_> = after.into_iter().filter(|p| !before.contains(p)).collect();
    expiring.sort();
    then.blockers
        .iter()
        .filter(|b| !b.is_time_based())
        .map(|blocker| Warning::BlockedWhenWaitEnds {
            until,
            blocker: Box::new(blocker.clone()),
            expiring: if matches!(blocker, Blocker::ApprovalsMissing { .. }) { expiring.clone() } else { Vec::new() },
        })
        .collect()
}

/// G1: environments take trunk candidates, ephemeral ones branch builds only.
fn origin(to: &Stage, origin: Origin) -> Option<Blocker> {
    let wanted = if to.ephemeral { Origin::Branch } else { Origin::Trunk };
    (to.is_environment() && origin != wanted).then(|| Blocker::OriginNotAccepted { stage: to.name.clone(), origin })
}

/// G2: `Ok(ready_at)` when the candidate is ready in `from`.
///
/// `Ok(None)` for a review or trunk source whose `entered_at` is unknown.
fn ready(from: &Stage, evidence: &Evidence) -> Result<Option<DateTime<Utc>>, Blocker> {
    if !from.is_environment() {
        return Ok(evidence.entered_at);
    }
    let Some(deployment) = &evidence.deployment else {
        return Err(Blocker::NotDeployed { stage: from.name.clone() });
    };
    let deployed_at = deployment.deployed_at;
    let flushed = deployment.flushed_at.filter(|at| *at >= deployed_at);
    if deployment.flush_required && flushed.is_none() {
        return Err(Blocker::FlushPending { stage: from.name.clone(), deployed_at });
    }
    Ok(Some(flushed.unwrap_or(deployed_at)))
}

/// G4: when a soak of `soak` begun at `ready_at` ends; the end of time if it
/// ends beyond what a [`DateTime`] can hold.
fn end_of_soak(ready_at: DateTime<Utc>, soak: Duration) -> DateTime<Utc> {
    plus(ready_at, soak).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t + d`, or `None` when it does not fit.
fn plus(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    TimeDelta::try_minutes(d.as_minutes()).and_then(|d| t.checked_add_signed(d))
}

/// Whether more than `d` passed from `earlier` to `later`, i.e.
/// `earlier < later - d`, without the date arithmetic (and overflow) of
/// subtracting a span from an instant.
fn longer_than(earlier: DateTime<Utc>, later: DateTime<Utc>, d: Duration) -> bool {
    let nanos = |t: DateTime<Utc>| i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    nanos(later) - nanos(earlier) > i128::from(d.as_minutes()) * 60_000_000_000
}

/// Whether two texts are equal, as `a == b`.
///
/// Check names, SHAs, stage names and logins are a few bytes long and are
/// compared hundreds of times per decision; comparing them inline in
/// machine words is several times cheaper than a call to `memcmp`.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 4 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    if n < 8 {
        let word = |s: &[u8], i: usize| s.get(i..).and_then(<[u8]>::first_chunk::<4>).copied();
        return word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4);
    }
    let word = |s: &[u8], i: usize| s.get(i..).and_then(<[u8]>::first_chunk::<8>).copied().map(u64::from_ne_bytes);
    // Up to 16 bytes: the first and the last (possibly overlapping) word.
    if n <= 16 {
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The verdict for `blockers`: wait only if time alone clears every one of
/// them, until the first instant at which none holds.
fn verdict(to: &Stage, blockers: &[Blocker], soak_end: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Verdict {
    if blockers.is_empty() {
        return Verdict::Allow;
    }
    if !blockers.iter().all(Blocker::is_time_based) {
        return Verdict::Block;
    }
    let earliest = soak_end.map_or(now, |end| end.max(now));
    match windows::first_open(to, earliest) {
        Some(until) => Verdict::Wait { until },
        None => Verdict::Block,
    }
}

/// Decide whether a candidate may move from stage `from` to stage `to` at `now`.
///
/// Shorthand for `policy.gate(from, to)?.evaluate(evidence, now)`.
pub fn evaluate(
    policy: &Policy,
    from: &str,
    to: &str,
    evidence: &Evidence,
    now: DateTime<Utc>,
) -> Result<Decision, GateError> {
    Ok(policy.gate(from, to)?.evaluate(evidence, now))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::same;

    proptest! {
        #[test]
        fn same_is_string_equality(a in "[a-c]{0,20}", b in "[a-c]{0,20}") {
            prop_assert_eq!(same(&a, &b), a == b);
            prop_assert!(same(&a, &a.clone()));
        }
    }
}
