//! The road ahead of a candidate, without acting.

use std::fmt;

use serde::Serialize;

use crate::decision::{Blocker, Decision, Verdict, Warning};
use crate::error::{Error, Result};
use crate::evidence::Origin;
use crate::machine::State;
use crate::policy::Stage;

use super::Promoter;

/// The steps still ahead of a candidate, each with what stands in its way.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The candidate's commit.
    pub sha: String,
    /// Where it is now, as a phrase.
    pub state: String,
    /// The next steps, in order.
    pub steps: Vec<PlanStep>,
}

/// One step of a [`Plan`]: entering `to`.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    /// The stage left.
    pub from: String,
    /// The stage entered.
    pub to: String,
    /// What must happen first, as sentences (for the next step: the live
    /// decision's blockers; for later ones: the policy's rules).
    pub needs: Vec<String>,
    /// The decision, for the next step.
    pub decision: Option<Decision>,
}

impl fmt::Display for Plan {
    /// Where the candidate is, then one block per step ahead: the gate, and
    /// below it each thing that must happen first (they hold together, in
    /// no particular order).
    ///
    /// ```text
    /// c1 is live in dev; ahead:
    ///   dev → staging:
    ///     - needs 1 more approval from developer (have 0 of 1) to enter staging
    ///   staging → prod:
    ///     - checks integration, system, data-quality must pass in staging
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.sha, self.state)?;
        if self.steps.is_empty() {
            return write!(f, "; nothing is ahead");
        }
        write!(f, "; ahead:")?;
        for step in &self.steps {
            write!(f, "\n  {} → {}:", step.from, step.to)?;
            if step.needs.is_empty() {
                write!(f, " nothing in the way")?;
            }
            for need in &step.needs {
                write!(f, "\n    - {need}")?;
            }
        }
        Ok(())
    }
}

/// How to answer a system that asks before a deploy (a GitHub deployment
/// protection rule) whether a commit may enter a stage now: see
/// [`Promoter::gate_reply`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GateReply {
    /// `Allow`: approve the deploy; `Block`: reject it; `Wait`: neither yet,
    /// ask again at `until` (the deploy stays pending).
    pub verdict: Verdict,
    /// Why, in sentences: the gate's explanation, or what the engine knows
    /// of the commit.
    pub comment: String,
    /// The gate's live decision, when it was evaluated.
    pub decision: Option<Decision>,
}

impl GateReply {
    fn new(verdict: Verdict, comment: String, decision: Option<Decision>) -> Self {
        Self { verdict, comment, decision }
    }
}

/// What the policy asks before a candidate leaves `from` for `to`, as sentences.
fn rules(from: &Stage, to: &Stage) -> Vec<String> {
    let mut needs = Vec::new();
    if from.is_environment() {
        let mut deployed = format!("deploy to {} must succeed", from.name);
        if from.flush.is_some() {
            deployed.push_str(" (and a flush run, if pipeline code changed)");
        }
        needs.push(deployed);
    }
    let blocking: Vec<&str> = from.checks.iter().filter(|c| c.blocking).map(|c| c.name.as_str()).collect();
    if !blocking.is_empty() {
        needs.push(format!("checks {} must pass in {}", blocking.join(", "), from.name));
    }
    if let Some(soak) = from.soak {
        needs.push(format!("soak {soak} in {}", from.name));
    }
    if let Some(rule) = &to.approvals {
        let roles: Vec<String> = rule.require.iter().map(|(role, n)| format!("{n} from {role}")).collect();
        needs.push(format!("needs approvals: {}", roles.join(" and ")));
    }
    for window in &to.windows {
        let days: Vec<String> = window.days.iter().map(|d| d.to_string()).collect();
        needs.push(format!("window opens {} {}–{} {}", days.join(","), window.start, window.end, window.tz));
    }
    needs
}

impl Promoter {
    /// The steps still ahead of `sha`, with the blocker of each, without acting.
    ///
    /// The next step carries the live decision (e.g. "needs 1 more approval
    /// from product-owner"), and, when it is a wait, what would still block
    /// when the wait ends (a check gone stale, an approval expired); later
    /// steps list the policy's rules for them.
    pub async fn plan(&self, sha: &str) -> Result<Plan> {
        let now = self.clock.now();
        let record = self.promotion(sha).await?;
        let promotion = &record.value.promotion;
        let mut plan = Plan { sha: sha.to_owned(), state: promotion.state.to_string(), steps: Vec::new() };
        if promotion.state.is_ended() {
            return Ok(plan);
        }
        let Some(first) = self.target(&record.value).map(|t| t.name.clone()) else { return Ok(plan) };
        let here = promotion.state.stage().to_owned();
        if promotion.state.awaits_gate() {
            let gate = self.policy.gate(&here, &first)?;
            let evidence = self.gather(&record.value, gate.from(), gate.to()).await?;
            let mut decision = gate.evaluate(&evidence, now);
            if let Some(hold) = self.held(&first).await? {
                decision = decision.held(hold.by, hold.reason, hold.at);
            }
            let mut needs: Vec<String> = decision.blockers.iter().map(|b| b.to_string()).collect();
            // A wait that will not be enough: what would block when it ends.
            needs.extend(
                decision
                    .warnings
                    .iter()
                    .filter(|w| matches!(w, Warning::BlockedWhenWaitEnds { .. }))
                    .map(ToString::to_string),
            );
            plan.steps.push(PlanStep { from: here.clone(), to: first.clone(), needs, decision: Some(decision) });
        } else {
            plan.steps.push(PlanStep {
                from: here.clone(),
                to: first.clone(),
                needs: vec![format!("{} must finish", promotion.state)],
                decision: None,
            });
        }
        if promotion.candidate.origin == Origin::Branch {
            return Ok(plan);
        }
        let mut from = first;
        while let Some(next) =
            self.policy.stage_index(&from).and_then(|i| self.policy.stages[i + 1..].iter().find(|s| !s.ephemeral))
        {
            let Some(source) = self.policy.stage(&from) else { break };
            plan.steps.push(PlanStep {
                from: from.clone(),
                to: next.name.clone(),
                needs: rules(source, next),
                decision: None,
            });
            from = next.name.clone();
        }
        Ok(plan)
    }
}

impl Promoter {
    /// The answer for a system asking whether `sha` may be deployed into
    /// `stage` now, without acting:
    ///
    /// - the engine is deploying `sha` into `stage` (it started the run, so
    ///   its gate allowed it): approved, unless `stage` has been held since;
    /// - `sha` waits at the gate into `stage`: the gate's live decision,
    ///   holds included (a wait is answered again when it ends);
    /// - anything else (a commit the engine does not know, a stage it is not
    ///   headed for, a promotion that ended): rejected, saying where it is,
    ///   because only what the engine promotes may enter a gated stage.
    pub async fn gate_reply(&self, sha: &str, stage: &str) -> Result<GateReply> {
        let now = self.clock.now();
        if self.policy.stage(stage).is_none() {
            return Err(Error::Invalid {
                what: format!("the gate request for {sha}"),
                message: format!("policy {:?} has no stage {stage:?}", self.policy.name),
            });
        }
        let record = match self.promotion(sha).await {
            Ok(record) => record,
            Err(Error::NotFound { .. }) => {
                let comment = format!(
                    "atlas-promote does not know commit {sha}: only a commit it promotes may be deployed into {stage}"
                );
                return Ok(GateReply::new(Verdict::Block, comment, None));
            }
            Err(e) => return Err(e),
        };
        let promotion = &record.value.promotion;
        let hold = self.held(stage).await?;
        if let State::Deploying { stage: into, attempt, since, .. } = &promotion.state
            && into == stage
        {
            if let Some(hold) = hold {
                let held = Blocker::Held { stage: stage.to_owned(), by: hold.by, reason: hold.reason, since: hold.at };
                return Ok(GateReply::new(Verdict::Block, held.to_string(), None));
            }
            let comment = format!(
                "the gate into {stage} allowed {sha}; atlas-promote started this deploy at {} (attempt {attempt})",
                since.format("%Y-%m-%d %H:%M UTC")
            );
            return Ok(GateReply::new(Verdict::Allow, comment, None));
        }
        let target = self.target(&record.value).filter(|t| t.name == stage);
        let (Some(target), true) = (target, promotion.state.awaits_gate()) else {
            let comment = format!("{sha} is {}: atlas-promote is not promoting it into {stage}", promotion.state);
            return Ok(GateReply::new(Verdict::Block, comment, None));
        };
        let gate = self.policy.gate(promotion.state.stage(), &target.name)?;
        let evidence = self.gather(&record.value, gate.from(), gate.to()).await?;
        let mut decision = gate.evaluate(&evidence, now);
        if let Some(hold) = hold {
            decision = decision.held(hold.by, hold.reason, hold.at);
        }
        let comment = decision.to_string().trim_end().to_owned();
        Ok(GateReply::new(decision.verdict, comment, Some(decision)))
    }
}
