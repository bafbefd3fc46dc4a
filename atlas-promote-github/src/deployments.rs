//! Mirror promotions as GitHub deployments (reference §3.A8), so the
//! repository's Environments page shows which commit is where.

use atlas_promote_core::{Result, Run, RunStatus};
use reqwest::{Method, StatusCode};

use crate::GitHub;
use crate::error::GhError;
use crate::model::{Deployment, DeploymentState, DeploymentStatus};

/// GitHub's limit on a deployment status description.
const DESCRIPTION_LIMIT: usize = 140;
/// Earlier deployments checked for a status to mark inactive.
const SUPERSEDED_CHECKED: usize = 5;

impl GitHub {
    /// The deployments into the environment of `stage`, newest first (one
    /// page), of commit `sha` when given.
    pub async fn deployments(&self, stage: &str, sha: Option<&str>) -> Result<Vec<Deployment>> {
        let environment = self.config().environment(stage).to_owned();
        let mut url = self.repo_url(&["deployments"]);
        url.query_pairs_mut().append_pair("environment", &environment);
        if let Some(sha) = sha {
            url.query_pairs_mut().append_pair("sha", sha);
        }
        self.client()
            .get_pages("list deployments", url, None, 1)
            .await
            .map_err(|e| e.into_core("list deployments", || format!("deployments of {environment}")))
    }

    /// Create a deployment of `sha` into the environment of `stage`.
    ///
    /// `auto_merge` is off (a promotion deploys the commit it names, never a
    /// merge) and `required_contexts` is empty (atlas-promote's gate already
    /// decided). GitHub's `202` (it merged the default branch instead of
    /// deploying) created nothing: a temporary error, safe to retry. `409`
    /// (merge conflict, failed contexts) is a permanent error with GitHub's message.
    pub async fn create_deployment(&self, stage: &str, sha: &str, description: &str) -> Result<Deployment> {
        let environment = self.config().environment(stage).to_owned();
        let url = self.repo_url(&["deployments"]);
        let body = serde_json::json!({
            "ref": sha,
            "task": "deploy",
            "auto_merge": false,
            "required_contexts": [],
            "environment": environment,
            "description": description,
            "payload": {"atlas_promote": {"stage": stage}},
        });
        let op = "create deployment";
        let what = || format!("deployment of {sha} into {environment}");
        let response =
            self.client().send_json(op, Method::POST, url, Some(&body)).await.map_err(|e| e.into_core(op, what))?;
        if response.status == StatusCode::ACCEPTED {
            let message = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let message = response.redact(&message);
            return Err(GhError::Unexpected { url: response.url.clone(), status: 202, message }.into_core(op, what));
        }
        response.json().map_err(|e| e.into_core(op, what))
    }

    /// Post a status of a deployment. `auto_inactive` is off: superseded
    /// deployments are marked inactive explicitly (GitHub's automatic marking
    /// skips production environments).
    pub async fn create_deployment_status(
        &self,
        deployment: u64,
        stage: &str,
        state: DeploymentState,
        log_url: Option<&str>,
        description: &str,
    ) -> Result<DeploymentStatus> {
        let url = self.repo_url(&["deployments", &deployment.to_string(), "statuses"]);
        let mut body = serde_json::json!({
            "state": state.as_str(),
            "environment": self.config().environment(stage),
            "description": description.chars().take(DESCRIPTION_LIMIT).collect::<String>(),
            "auto_inactive": false,
        });
        if let Some(log_url) = log_url {
            body["log_url"] = log_url.into();
        }
        let op = "create deployment status";
        let response = self
            .client()
            .send_json(op, Method::POST, url, Some(&body))
            .await
            .map_err(|e| e.into_core(op, || format!("deployment {deployment}")))?;
        response.json().map_err(|e| e.into_core(op, || format!("deployment {deployment}")))
    }

    /// The statuses of a deployment, newest first (one page).
    pub async fn deployment_statuses(&self, deployment: u64) -> Result<Vec<DeploymentStatus>> {
        let url = self.repo_url(&["deployments", &deployment.to_string(), "statuses"]);
        self.client()
            .get_pages("list deployment statuses", url, None, 1)
            .await
            .map_err(|e| e.into_core("list deployment statuses", || format!("deployment {deployment}")))
    }

    /// Mirror a promotion of `sha` into `stage` in state `state`: reuse the
    /// commit's deployment into that environment or create one, post the
    /// status, and on `success` mark the environment's earlier successful
    /// deployments `inactive` (superseded). 3 requests, plus 1–2 per
    /// earlier deployment on success.
    pub async fn mirror_promotion(
        &self,
        stage: &str,
        sha: &str,
        state: DeploymentState,
        log_url: Option<&str>,
    ) -> Result<Deployment> {
        let description = format!("atlas-promote: {sha} into {stage}");
        let deployment = match self.deployments(stage, Some(sha)).await?.into_iter().next() {
            Some(existing) => existing,
            None => self.create_deployment(stage, sha, &description).await?,
        };
        self.create_deployment_status(deployment.id, stage, state.clone(), log_url, &format!("{description}: {state}"))
            .await?;
        if state == DeploymentState::Success {
            let earlier = self.deployments(stage, None).await?;
            for old in earlier.iter().filter(|d| d.id != deployment.id && d.sha != sha).take(SUPERSEDED_CHECKED) {
                let latest = self.deployment_statuses(old.id).await?.into_iter().next();
                if latest.is_some_and(|s| s.state == DeploymentState::Success) {
                    self.create_deployment_status(
                        old.id,
                        stage,
                        DeploymentState::Inactive,
                        None,
                        &format!("atlas-promote: superseded by {sha}"),
                    )
                    .await?;
                }
            }
        }
        Ok(deployment)
    }

    /// [`mirror_promotion`](Self::mirror_promotion) for a deploy run's
    /// status: pending or running → `in_progress`, succeeded → `success`,
    /// failed → `failure`, cancelled → `error`; an unknown status is not mirrored (`None`).
    pub async fn mirror_run(&self, stage: &str, sha: &str, run: &Run) -> Result<Option<Deployment>> {
        let state = match run.status {
            RunStatus::Pending | RunStatus::Running => DeploymentState::InProgress,
            RunStatus::Succeeded => DeploymentState::Success,
            RunStatus::Failed => DeploymentState::Failure,
            RunStatus::Cancelled => DeploymentState::Error,
            RunStatus::Unknown(_) => return Ok(None),
        };
        self.mirror_promotion(stage, sha, state, run.url.as_deref()).await.map(Some)
    }
}
