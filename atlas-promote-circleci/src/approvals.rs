//! [`ApprovalSource`]: CircleCI approval jobs as approval records.
//!
//! Convention: the trunk pipeline of a commit (the one CircleCI runs when
//! the commit lands on trunk) holds approval jobs (`type: approval`) named
//! `approve-<stage>`, or `approve-<stage>--<suffix>` when a stage needs
//! several people (`approve-prod--product-owner`, `approve-prod--dev-team`).
//! Prefix and separator are configurable.
//!
//! - an approved job (`success`, `approved_by`) is an **approve** record by
//!   the approver's login, at the job's `stopped_at`;
//! - a cancelled job (`canceled`, `canceled_by`) is a **reject** record by
//!   whoever cancelled it (cancelling the workflow cancels its approval jobs:
//!   that counts as a rejection by the canceller, too);
//! - pending jobs are no record.
//!
//! `submit` approves or rejects through the API *as the token's user*: a
//! record by anyone else, and any withdrawal, is
//! [`Error::Unsupported`](atlas_promote_core::Error::Unsupported) (CircleCI
//! would attribute it to the token's owner; it has no "un-approve").

use async_trait::async_trait;
use atlas_promote_core::{ApprovalDecision, ApprovalRecord, ApprovalSource, Error, Result};
use chrono::Utc;
use tracing::Instrument;

use crate::client::segment;
use crate::error::BACKEND;
use crate::model::{Job, JobStatus, JobType, Workflow};
use crate::model::{newest_per_name, same_commit};
use crate::{CircleCi, lock};

/// An approval job and the workflow it is in.
#[derive(Debug, Clone)]
struct ApprovalJob {
    workflow: Workflow,
    job: Job,
}

impl CircleCi {
    /// The trunk pipelines of `sha` that may hold approval jobs: not
    /// scheduled ones. Found once per commit, then kept.
    async fn approval_pipelines(&self, sha: &str) -> Result<Vec<String>> {
        if let Some(ids) = lock(&self.inner.cache).approval_pipelines(sha) {
            return Ok(ids);
        }
        let cutoff = Utc::now() - self.inner.settings.lookback;
        let ids: Vec<String> = self
            .trunk_pipelines(cutoff)
            .await?
            .into_iter()
            .filter(|p| p.revision().is_some_and(|r| same_commit(r, sha)) && !self.inner.settings.is_scheduled(p))
            .map(|p| p.id)
            .collect();
        if !ids.is_empty() {
            lock(&self.inner.cache).remember_approval_pipelines(sha, ids.clone());
        }
        Ok(ids)
    }

    /// Every approval job for `stage` in the commit's trunk pipelines (newest
    /// workflow of each name only: a rerun replaces its approvals).
    async fn approval_jobs(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalJob>> {
        let mut out = Vec::new();
        for pipeline_id in self.approval_pipelines(sha).await? {
            // A settled pipeline whose jobs hold no approval job (a deploy) is not read again.
            let workflows =
                self.workflows_if_relevant(&pipeline_id, |w, cache| cache.may_hold_approvals(&w.id)).await?;
            for workflow in newest_per_name(&workflows) {
                let jobs = self.jobs(workflow).await?;
                out.extend(
                    jobs.into_iter()
                        .filter(|j| {
                            j.kind == JobType::Approval && self.inner.settings.approval_job_is_for(&j.name, stage)
                        })
                        .map(|job| ApprovalJob { workflow: workflow.clone(), job }),
                );
            }
        }
        Ok(out)
    }

    /// The record an approval job stands for, if it was decided.
    pub(crate) async fn record_of_job(
        &self,
        stage: &str,
        sha: &str,
        workflow: &Workflow,
        job: Job,
    ) -> Result<Option<ApprovalRecord>> {
        let (decision, user) = match &job.status {
            JobStatus::Success => (ApprovalDecision::Approve, job.approved_by.as_deref()),
            JobStatus::Canceled => (ApprovalDecision::Reject, job.canceled_by.as_deref()),
            JobStatus::Unknown(s) if s == "cancelled" => (ApprovalDecision::Reject, job.canceled_by.as_deref()),
            _ => return Ok(None),
        };
        let Some(user) = user else { return Ok(None) };
        let at = job.stopped_at.or(job.started_at).or(workflow.stopped_at).unwrap_or(workflow.created_at);
        Ok(Some(ApprovalRecord {
            approver: self.login(user).await?,
            roles: Vec::new(),
            stage: stage.to_owned(),
            sha: sha.to_owned(),
            decision,
            at,
        }))
    }
}

#[async_trait]
impl ApprovalSource for CircleCi {
    async fn approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        let span = tracing::debug_span!("circleci approvals", stage, sha);
        async {
            let mut records = Vec::new();
            for job in self.approval_jobs(stage, sha).await? {
                records.extend(self.record_of_job(stage, sha, &job.workflow, job.job).await?);
            }
            Ok(records)
        }
        .instrument(span)
        .await
    }

    async fn submit(&self, record: &ApprovalRecord) -> Result<()> {
        let wanted = match record.decision {
            ApprovalDecision::Approve => JobStatus::Success,
            ApprovalDecision::Reject => JobStatus::Canceled,
            ApprovalDecision::Withdraw => {
                return Err(Error::Unsupported {
                    backend: BACKEND.into(),
                    operation: "withdrawing an approval".into(),
                });
            }
        };
        let me = self.me().await?;
        if record.approver != me {
            // CircleCI attributes an approval to the token's user, whoever asks.
            return Err(Error::Unsupported {
                backend: BACKEND.into(),
                operation: format!("recording a decision by {} (only by the API token's user, {me})", record.approver),
            });
        }
        let mut jobs = self.approval_jobs(&record.stage, &record.sha).await?;
        jobs.sort_by(|a, b| a.job.name.cmp(&b.job.name));
        for done in jobs.iter().filter(|a| a.job.status == wanted) {
            let by = if wanted == JobStatus::Success { &done.job.approved_by } else { &done.job.canceled_by };
            if let Some(user) = by
                && self.login(user).await? == me
            {
                return Ok(()); // already done: submitting twice is not an error
            }
        }
        let Some(pending) = jobs.iter().find(|a| a.job.status == JobStatus::OnHold) else {
            return Err(Error::NotFound {
                backend: BACKEND.into(),
                what: format!(
                    "an on-hold approval job {}{} for {} in its trunk pipeline",
                    self.inner.settings.approval_job_prefix, record.stage, record.sha
                ),
            });
        };
        let (operation, path) = match record.decision {
            ApprovalDecision::Approve => {
                let request = pending.job.approval_request_id.as_deref().unwrap_or(&pending.job.id);
                ("approve job", format!("/workflow/{}/approve/{}", segment(&pending.workflow.id), segment(request)))
            }
            _ => ("cancel approval job", format!("/jobs/{}/cancel", segment(&pending.job.id))),
        };
        self.inner.client.post::<()>(operation, &path, None).await?;
        self.forget_jobs(&pending.workflow.id);
        Ok(())
    }
}
