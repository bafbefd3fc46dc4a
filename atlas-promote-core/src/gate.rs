//! The pure gate decision (DESIGN §4): may candidate C move from S to T now?

use chrono::{DateTime, Utc};

use crate::decision::{Decision, Verdict};
use crate::evidence::Evidence;
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
    pub fn evaluate(&self, evidence: &Evidence, now: DateTime<Utc>) -> Decision {
        // Placeholder until the rules G1–G6 land.
        Decision {
            from: self.from.name.clone(),
            to: self.to.name.clone(),
            sha: evidence.candidate.sha.clone(),
            at: now,
            verdict: Verdict::Block,
            blockers: Vec::new(),
            warnings: Vec::new(),
        }
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
