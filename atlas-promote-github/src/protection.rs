//! A custom deployment protection rule (reference §0.3, §3.A7): GitHub asks
//! (`deployment_protection_rule` webhook) whether a deployment may enter an
//! environment; atlas-promote evaluates the gate and calls back with
//! `approved` or `rejected` and the decision's explanation as the comment.

use std::future::Future;

use atlas_promote_core::{Decision, Error, Evidence, Policy, Result, Verdict};
use chrono::{DateTime, Utc};
use reqwest::{Method, Url};

use crate::GitHub;
use crate::actions::{key_in_title, key_parts};
use crate::error::BACKEND;

/// What the evidence gatherer is asked for: the step a candidate would take.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateRequest {
    /// The stage the candidate leaves.
    pub from: String,
    /// The stage it would enter (the protected environment's stage).
    pub to: String,
    /// The candidate's commit.
    pub sha: String,
    /// The workflow run waiting at the gate, when the callback names one.
    pub run: Option<u64>,
}

/// What was answered to GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GateAnswer {
    /// `state: approved`: the gate allows it.
    Approved,
    /// `state: rejected`: the gate blocks it.
    Rejected,
    /// Only a comment: the gate waits for time to pass (soak, window), so
    /// the deployment stays pending and is answered again later.
    Pending,
}

impl From<&Verdict> for GateAnswer {
    /// `Allow` → approved, `Block` → rejected, `Wait` → pending.
    fn from(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Allow => Self::Approved,
            Verdict::Block => Self::Rejected,
            Verdict::Wait { .. } => Self::Pending,
        }
    }
}

impl GitHub {
    /// Answer a protection rule at `reply_to` (the payload's
    /// `deployment_callback_url`) for the environment of `stage`: `Allow` →
    /// approved, `Block` → rejected, `Wait` → a comment only, each with the
    /// decision's explanation as the comment. 1 request.
    ///
    /// `reply_to` must lie under the configured API URL: the token is never
    /// sent anywhere a webhook payload points.
    pub async fn answer_gate(&self, stage: &str, reply_to: &str, decision: &Decision) -> Result<GateAnswer> {
        let answer = GateAnswer::from(&decision.verdict);
        let comment = decision.to_string();
        self.answer_protection_rule(stage, reply_to, answer, comment.trim_end()).await?;
        tracing::info!(stage, sha = %decision.sha, ?answer, "answered deployment protection rule");
        Ok(answer)
    }

    /// Answer a protection rule at `reply_to` for the environment of
    /// `stage` with `answer` and `comment` (GitHub shows it on the run):
    /// `Approved` → `state: approved`, `Rejected` → `state: rejected`,
    /// `Pending` → the comment only. 1 request.
    ///
    /// `reply_to` must lie under the configured API URL: the token is never
    /// sent anywhere a webhook payload points.
    pub async fn answer_protection_rule(
        &self,
        stage: &str,
        reply_to: &str,
        answer: GateAnswer,
        comment: &str,
    ) -> Result<()> {
        let url = self.callback_url(reply_to)?;
        let environment = self.config().environment(stage);
        let body = match answer {
            GateAnswer::Approved => {
                serde_json::json!({"environment_name": environment, "state": "approved", "comment": comment})
            }
            GateAnswer::Rejected => {
                serde_json::json!({"environment_name": environment, "state": "rejected", "comment": comment})
            }
            GateAnswer::Pending => serde_json::json!({"environment_name": environment, "comment": comment}),
        };
        self.client().send_json("review deployment protection rule", Method::POST, url, Some(&body)).await.map_err(
            |e| e.into_core("review deployment protection rule", || format!("protection rule at {reply_to}")),
        )?;
        Ok(())
    }

    /// The candidate a protection rule at `reply_to` asks about: the commit
    /// in the waiting run's key (a dispatched run's own head is the dispatch
    /// branch, so the deployment's `sha` may be a later commit), else `sha`.
    /// 1 request when the callback names a run, none otherwise.
    pub async fn gate_candidate(&self, sha: &str, reply_to: &str) -> Result<String> {
        let url = self.callback_url(reply_to)?;
        if let Some(run) = run_of_callback(&url) {
            let found = self.workflow_run(run).await?;
            if let Some(key) = found.display_title.as_deref().and_then(key_in_title)
                && let Some((key_sha, _)) = key_parts(&key)
            {
                return Ok(key_sha.to_owned());
            }
        }
        Ok(sha.to_owned())
    }

    /// Evaluate the gate into `stage` for a protection rule and answer it.
    ///
    /// The candidate's commit is the one in the waiting run's key (a
    /// dispatched run's own head is the dispatch branch), read with 1
    /// request; `sha` (the deployment's) when the run has none. `gather`
    /// collects the evidence — from the engine's state and the core traits,
    /// which this value implements — and the decision is
    /// `policy.gate(from, stage)?.evaluate(&evidence, now)`, where `from` is
    /// the stage before `stage`. Returns the decision answered.
    pub async fn review_gate<F, Fut>(
        &self,
        policy: &Policy,
        stage: &str,
        sha: &str,
        reply_to: &str,
        now: DateTime<Utc>,
        gather: F,
    ) -> Result<Decision>
    where
        F: FnOnce(GateRequest) -> Fut + Send,
        Fut: Future<Output = Result<Evidence>> + Send,
    {
        let url = self.callback_url(reply_to)?;
        let index = policy.stage_index(stage).ok_or_else(|| Error::Invalid {
            what: "deployment protection rule".into(),
            message: format!("policy {:?} has no stage {stage:?} (mapped from the environment)", policy.name),
        })?;
        let from = policy.stages[..index].iter().rev().find(|s| !s.ephemeral).ok_or_else(|| Error::Invalid {
            what: "deployment protection rule".into(),
            message: format!("stage {stage:?} is the first of policy {:?}: there is no gate into it", policy.name),
        })?;
        let run = run_of_callback(&url);
        let candidate_sha = self.gate_candidate(sha, reply_to).await?;
        let request = GateRequest { from: from.name.clone(), to: stage.to_owned(), sha: candidate_sha, run };
        let evidence = gather(request).await?;
        let decision = policy.gate(&from.name, stage)?.evaluate(&evidence, now);
        tracing::info!(from = %from.name, to = stage, sha = %decision.sha, verdict = %decision.verdict, "gate evaluated");
        self.answer_gate(stage, reply_to, &decision).await?;
        Ok(decision)
    }

    fn callback_url(&self, reply_to: &str) -> Result<Url> {
        let url = Url::parse(reply_to).ok().filter(|u| self.client().is_ours(u));
        url.ok_or_else(|| Error::Refused {
            reason: format!(
                "{BACKEND}: callback URL {reply_to:?} is not under the configured API {}",
                self.client().base()
            ),
        })
    }
}

/// The run id in `…/actions/runs/{run_id}/deployment_protection_rule`.
fn run_of_callback(url: &Url) -> Option<u64> {
    let segments: Vec<&str> = url.path_segments()?.collect();
    let at = segments.iter().position(|s| *s == "runs")?;
    segments.get(at + 1)?.parse().ok()
}
