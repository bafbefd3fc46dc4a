//! Environment deployment reviews (reference §3.A7) as an approval source,
//! and the [`ApprovalSource`] that combines them with pull-request reviews.

use async_trait::async_trait;
use atlas_promote_core::{ApprovalDecision, ApprovalRecord, ApprovalSource, Error, IdempotencyKey, Result, RunKind};
use reqwest::Method;

use crate::GitHub;
use crate::actions::key_in_title;
use crate::error::BACKEND;
use crate::model::{EnvironmentApproval, EnvironmentReviewState, PendingDeployment, User, WorkflowRun};

impl GitHub {
    /// The deployments of a run waiting for an environment's reviewers.
    pub async fn pending_deployments(&self, run: u64) -> Result<Vec<PendingDeployment>> {
        let url = self.repo_url(&["actions", "runs", &run.to_string(), "pending_deployments"]);
        self.client()
            .get_json("get pending deployments", url)
            .await
            .map_err(|e| e.into_core("get pending deployments", || format!("workflow run {run}")))
    }

    /// The environment review history of a run.
    pub async fn environment_approvals_for_run(&self, run: u64) -> Result<Vec<EnvironmentApproval>> {
        let url = self.repo_url(&["actions", "runs", &run.to_string(), "approvals"]);
        self.client()
            .get_json("get environment approvals", url)
            .await
            .map_err(|e| e.into_core("get environment approvals", || format!("workflow run {run}")))
    }

    /// Approve or reject a run's pending deployments into `environments`
    /// (by name), with the reviewer token (a *user* token: GitHub Apps may
    /// not review deployments, reference §0.3). 2 requests.
    pub async fn review_pending_deployments(
        &self,
        run: u64,
        environments: &[&str],
        approve: bool,
        comment: &str,
    ) -> Result<()> {
        let pending = self.pending_deployments(run).await?;
        let ids: Vec<u64> = pending
            .iter()
            .filter(|p| environments.contains(&p.environment.name.as_str()))
            .map(|p| p.environment.id)
            .collect();
        if ids.is_empty() {
            return Err(Error::NotFound {
                backend: BACKEND.into(),
                what: format!("pending deployment of run {run} into {}", environments.join(", ")),
            });
        }
        let url = self.repo_url(&["actions", "runs", &run.to_string(), "pending_deployments"]);
        let body = serde_json::json!({
            "environment_ids": ids,
            "state": if approve { "approved" } else { "rejected" },
            "comment": comment,
        });
        let result = match &self.inner.reviewer_token {
            Some(token) => {
                self.client().send_json_as("review pending deployments", Method::POST, url, &body, token).await
            }
            None => self.client().send_json("review pending deployments", Method::POST, url, Some(&body)).await,
        };
        result.map(|_| ()).map_err(|e| e.into_core("review pending deployments", || format!("workflow run {run}")))
    }

    /// The login behind the reviewer token (or the main token).
    async fn reviewer_login(&self) -> Result<String> {
        let url = self.client().url(&["user"]);
        let user: User = match &self.inner.reviewer_token {
            Some(token) => self.client().get_as("get authenticated user", url, token).await,
            None => self.client().get_json("get authenticated user", url).await,
        }
        .map_err(|e| e.into_core("get authenticated user", || "authenticated user".into()))?;
        Ok(user.login)
    }

    /// The dispatched runs made for promoting `sha` into `stage` (their key
    /// says so), among the 100 most recent dispatched runs.
    async fn promotion_runs(&self, stage: &str, sha: &str) -> Result<Vec<WorkflowRun>> {
        let deploy = key_prefix(sha, stage, RunKind::Deploy);
        let flush = key_prefix(sha, stage, RunKind::Flush);
        let runs = self.recent_dispatch_runs().await?;
        Ok(runs
            .into_iter()
            .filter(|run| {
                run.display_title
                    .as_deref()
                    .and_then(key_in_title)
                    .is_some_and(|key| key.as_str().starts_with(&deploy) || key.as_str().starts_with(&flush))
            })
            .collect())
    }

    /// Approval records for `sha` entering the environment stage `stage`:
    /// the review history of the runs promoting it there. 1 + one request per run.
    ///
    /// The history carries no time per review; a record's time is the run's
    /// creation, which is no later than the review (so a TTL expires early, never late).
    pub(crate) async fn environment_records(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        let environment = self.config().environment(stage).to_owned();
        let mut records = Vec::new();
        for run in self.promotion_runs(stage, sha).await? {
            for approval in self.environment_approvals_for_run(run.id).await? {
                if !approval.environments.iter().any(|e| e.name == environment) {
                    continue;
                }
                let decision = match approval.state {
                    EnvironmentReviewState::Approved => ApprovalDecision::Approve,
                    EnvironmentReviewState::Rejected => ApprovalDecision::Reject,
                    EnvironmentReviewState::Pending | EnvironmentReviewState::Unknown(_) => continue,
                };
                records.push(ApprovalRecord {
                    approver: approval.user.login.clone(),
                    roles: Vec::new(),
                    stage: stage.to_owned(),
                    sha: sha.to_owned(),
                    decision,
                    at: run.created_at,
                });
            }
        }
        Ok(records)
    }
}

/// `atlas.{sha}.{stage}.{kind}.`: every attempt's key starts with it.
fn key_prefix(sha: &str, stage: &str, kind: RunKind) -> String {
    let key = IdempotencyKey::new(sha, stage, kind, 0);
    key.as_str().trim_end_matches('0').to_owned()
}

#[async_trait]
impl ApprovalSource for GitHub {
    /// For the review stage (default `trunk`): pull-request reviews bound to
    /// `sha` (2 requests). For any other stage: the environment review
    /// history of the runs promoting `sha` into it (2 requests for one run).
    async fn approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        if stage == self.config().review_stage {
            self.review_approvals(stage, sha).await
        } else {
            self.environment_records(stage, sha).await
        }
    }

    /// Approve or reject the waiting deployment of `sha` into an environment
    /// stage, as the reviewer token's user, who must be `record.approver`
    /// (GitHub records the review under the token's user; anything else
    /// would misattribute it). Pull-request reviews cannot be submitted for
    /// someone, and withdrawals do not exist for deployment reviews:
    /// both are [`Error::Unsupported`].
    async fn submit(&self, record: &ApprovalRecord) -> Result<()> {
        let unsupported = |operation: &str| Error::Unsupported { backend: BACKEND.into(), operation: operation.into() };
        if record.stage == self.config().review_stage {
            return Err(unsupported("submitting pull-request reviews"));
        }
        let approve = match record.decision {
            ApprovalDecision::Approve => true,
            ApprovalDecision::Reject => false,
            ApprovalDecision::Withdraw => return Err(unsupported("withdrawing deployment reviews")),
        };
        let login = self.reviewer_login().await?;
        if !login.eq_ignore_ascii_case(&record.approver) {
            return Err(Error::Refused {
                reason: format!(
                    "the reviewer token belongs to {login}, not {}; GitHub would record the review as {login}'s",
                    record.approver
                ),
            });
        }
        let environment = self.config().environment(&record.stage).to_owned();
        let runs = self.promotion_runs(&record.stage, &record.sha).await?;
        let waiting: Vec<&WorkflowRun> =
            runs.iter().filter(|r| r.status == Some(crate::model::Status::Waiting)).collect();
        let Some(run) = waiting.first() else {
            return Err(Error::NotFound {
                backend: BACKEND.into(),
                what: format!("a run of {} waiting for approval into {}", record.sha, record.stage),
            });
        };
        let comment = format!("atlas-promote: {} by {}", record.decision, record.approver);
        self.review_pending_deployments(run.id, &[environment.as_str()], approve, &comment).await
    }
}
