//! The road ahead of a candidate, without acting.

use std::fmt;

use serde::Serialize;

use crate::decision::{Decision, Warning};
use crate::error::Result;
use crate::evidence::Origin;
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
