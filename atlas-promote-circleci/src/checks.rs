//! [`CheckSource`]: nightly check results read from trunk pipelines.
//!
//! There is no "pipelines of a commit" endpoint in API v2 (reference §5.3):
//! the trunk branch's pipelines are paged newest first back to a cutoff
//! (`query.since`, else the configured lookback), those whose revision is the
//! commit are kept (`vcs.revision`, or `trigger_parameters.git.checkout_sha`
//! on GitHub App projects; a short SHA of 7+ characters matches), optionally
//! only scheduled ones, and in each the newest workflow of each configured
//! check name becomes one [`CheckResult`].
//!
//! Status mapping (workflow status → check status):
//!
//! | workflow | check |
//! | --- | --- |
//! | `success` | `passed` |
//! | `failed` | `failed` |
//! | `canceled`, `not_run` | `cancelled` |
//! | `error`, `unauthorized` | `errored` (the check could not run: config, permissions, restricted context) |
//! | `running`, `on_hold`, `queued`, `failing` | `running` (`failing` is not terminal: it ends as `failed`) |
//! | unknown, with `stopped_at` | `errored` (it ended, we cannot say it passed) |
//! | unknown, without `stopped_at` | `running` |

use async_trait::async_trait;
use atlas_promote_core::{CheckQuery, CheckResult, CheckSource, CheckStatus, Result};
use chrono::{TimeDelta, Utc};
use tracing::Instrument;

use crate::CircleCi;
use crate::model::{Workflow, WorkflowStatus};
use crate::model::{newest_per_name, same_commit};

/// A check's status from its workflow's; `None` finish time while running.
pub(crate) fn check_status(workflow: &Workflow) -> CheckStatus {
    match &workflow.status {
        WorkflowStatus::Success => CheckStatus::Passed,
        WorkflowStatus::Failed => CheckStatus::Failed,
        WorkflowStatus::Canceled | WorkflowStatus::NotRun => CheckStatus::Cancelled,
        WorkflowStatus::Error | WorkflowStatus::Unauthorized => CheckStatus::Errored,
        WorkflowStatus::Running | WorkflowStatus::OnHold | WorkflowStatus::Queued | WorkflowStatus::Failing => {
            CheckStatus::Running
        }
        _ if workflow.stopped_at.is_some() => CheckStatus::Errored,
        _ => CheckStatus::Running,
    }
}

/// The check result a workflow stands for, named `check`, for commit `sha`.
pub(crate) fn check_result(check: &str, sha: &str, workflow: &Workflow) -> CheckResult {
    let status = check_status(workflow);
    let finished_at =
        if status.is_finished() { Some(workflow.stopped_at.unwrap_or(workflow.created_at)) } else { None };
    CheckResult { name: check.to_owned(), sha: sha.to_owned(), status, started_at: workflow.created_at, finished_at }
}

impl CircleCi {
    /// (check name, workflow name) pairs a query asks for: the configured
    /// ones, or for a name not configured, the workflow of the same name.
    fn wanted_checks(&self, query: &CheckQuery) -> Vec<(String, String)> {
        let configured = &self.inner.settings.checks;
        if query.names.is_empty() {
            return configured.clone();
        }
        query
            .names
            .iter()
            .map(|name| {
                configured.iter().find(|(c, _)| c == name).cloned().unwrap_or_else(|| (name.clone(), name.clone()))
            })
            .collect()
    }
}

#[async_trait]
impl CheckSource for CircleCi {
    async fn checks(&self, query: &CheckQuery) -> Result<Vec<CheckResult>> {
        let span = tracing::debug_span!("circleci checks", stage = %query.stage, sha = %query.sha);
        async {
            let s = &self.inner.settings;
            // A workflow starts after its pipeline is created: an hour of slack
            // catches a nightly pipeline created just before `since`.
            let cutoff = query.since.map_or_else(|| Utc::now() - s.lookback, |since| since - TimeDelta::hours(1));
            let wanted = self.wanted_checks(query);
            let mut results = Vec::new();
            for pipeline in self.trunk_pipelines(cutoff).await? {
                let Some(revision) = pipeline.revision() else { continue };
                if !same_commit(revision, &query.sha) || (s.scheduled_checks_only && !s.is_scheduled(&pipeline)) {
                    continue;
                }
                // A settled pipeline without check workflows (a deploy, a push build) is not read again.
                let workflows =
                    self.workflows_if_relevant(&pipeline.id, |w, _| wanted.iter().any(|(_, n)| *n == w.name)).await?;
                for workflow in newest_per_name(&workflows) {
                    for (check, _) in wanted.iter().filter(|(_, w)| *w == workflow.name) {
                        results.push(check_result(check, &query.sha, workflow));
                    }
                }
            }
            results.sort_by(|a, b| (&a.name, a.started_at).cmp(&(&b.name, b.started_at)));
            Ok(results)
        }
        .instrument(span)
        .await
    }
}
