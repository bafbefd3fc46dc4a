//! [`CheckSource`]: check runs *and* commit statuses of a commit (reference
//! §3.A5, A6): nightly systems that only post statuses show up there alone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use atlas_promote_core::{CheckQuery, CheckResult, CheckSource, CheckStatus, Result};

use crate::GitHub;
use crate::model::{CheckRun, CommitState, CommitStatus, Conclusion, Status};

/// Pages read at most per list (100 items each).
const MAX_PAGES: usize = 10;

impl GitHub {
    /// The latest check runs of `sha` (one per name and check suite), every page.
    pub async fn check_runs(&self, sha: &str) -> Result<Vec<CheckRun>> {
        let url = self.repo_url(&["commits", sha, "check-runs"]);
        self.client()
            .get_pages("list check runs", url, Some("check_runs"), MAX_PAGES)
            .await
            .map_err(|e| e.into_core("list check runs", || format!("commit {sha}")))
    }

    /// Every commit status of `sha`, newest first, every page.
    pub async fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>> {
        let url = self.repo_url(&["commits", sha, "statuses"]);
        self.client()
            .get_pages("list commit statuses", url, None, MAX_PAGES)
            .await
            .map_err(|e| e.into_core("list commit statuses", || format!("commit {sha}")))
    }

    /// Post a commit status on `sha` under `context` (e.g.
    /// `atlas-promote/review`, which branch protection can require), with
    /// `description` cut to GitHub's 140 characters and an optional
    /// `target_url` (where the details are). 1 request; the newest status of a
    /// context replaces the earlier ones on the pull request.
    pub async fn post_commit_status(
        &self,
        sha: &str,
        context: &str,
        state: CommitState,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<CommitStatus> {
        let url = self.repo_url(&["statuses", sha]);
        let mut body = serde_json::json!({
            "state": state.as_str(),
            "context": context,
            "description": cut(description, DESCRIPTION_LIMIT),
        });
        if let Some(target) = target_url {
            body["target_url"] = serde_json::Value::from(target);
        }
        let op = "create commit status";
        let what = || format!("status {context} of commit {sha}");
        let response = self
            .client()
            .send_json(op, reqwest::Method::POST, url, Some(&body))
            .await
            .map_err(|e| e.into_core(op, what))?;
        response.json().map_err(|e| e.into_core(op, what))
    }
}

/// GitHub refuses a commit status description longer than this (characters).
const DESCRIPTION_LIMIT: usize = 140;

/// `text` in at most `limit` characters, ending in `…` when cut.
fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(limit - 1).collect();
    out.push('…');
    out
}

#[async_trait]
impl CheckSource for GitHub {
    /// Check runs and commit statuses of `query.sha` (2 requests when each
    /// list fits one page; 304s when unchanged).
    ///
    /// Check runs come as GitHub's `filter=latest` gives them: the newest run
    /// of each name in each check suite. Commit statuses are paired into runs
    /// ([`commit_status_results`]). Earlier runs are kept, not only the
    /// newest per name: the gate needs them (a re-run still going after a
    /// pass is a warning, not a blocker), and the trait's contract says
    /// never fewer.
    async fn checks(&self, query: &CheckQuery) -> Result<Vec<CheckResult>> {
        let apps = &self.config().check_apps;
        let runs = self.check_runs(&query.sha).await?;
        let statuses = self.commit_statuses(&query.sha).await?;
        let from_runs = runs
            .iter()
            .filter(|run| {
                apps.is_empty()
                    || run.app.as_ref().and_then(|a| a.slug.as_deref()).is_some_and(|s| apps.iter().any(|a| a == s))
            })
            .filter_map(check_run_result);
        let mut results: Vec<CheckResult> = Vec::new();
        for result in from_runs.chain(commit_status_results(&query.sha, &statuses)) {
            if (query.names.is_empty() || query.names.contains(&result.name)) && !results.contains(&result) {
                results.push(result);
            }
        }
        Ok(results)
    }
}

/// A check run as a check result; `None` when it has no start time to report.
///
/// Conclusions: `success`, `neutral` and `skipped` pass (as branch protection
/// treats them); `cancelled` is cancelled; `timed_out`, `startup_failure` and
/// `stale` mean the check itself broke (errored); `failure`,
/// `action_required` and anything unknown fail.
pub fn check_run_result(run: &CheckRun) -> Option<CheckResult> {
    let started_at = run.started_at.or(run.completed_at)?;
    let (status, finished_at) = match (&run.status, &run.conclusion) {
        (Status::Completed, Some(conclusion)) => {
            (conclusion_status(conclusion), Some(run.completed_at.unwrap_or(started_at)))
        }
        (Status::Completed, None) => (CheckStatus::Errored, Some(run.completed_at.unwrap_or(started_at))),
        _ => (CheckStatus::Running, None),
    };
    Some(CheckResult { name: run.name.clone(), sha: run.head_sha.clone(), status, started_at, finished_at })
}

pub(crate) fn conclusion_status(conclusion: &Conclusion) -> CheckStatus {
    match conclusion {
        Conclusion::Success | Conclusion::Neutral | Conclusion::Skipped => CheckStatus::Passed,
        Conclusion::Cancelled => CheckStatus::Cancelled,
        Conclusion::TimedOut | Conclusion::StartupFailure | Conclusion::Stale => CheckStatus::Errored,
        Conclusion::Failure | Conclusion::ActionRequired | Conclusion::Unknown(_) => CheckStatus::Failed,
    }
}

/// Commit statuses as check results, one per *run* of each context, from a
/// list in any order. GitHub keeps every status posted; a run is a
/// `pending` status followed by the status that ends it (it started when
/// the `pending` was posted, it finished when the end was posted), or a
/// lone final status (started and finished when posted), or a `pending`
/// not ended yet (running). A `pending` followed by another `pending`
/// restarted the run. `error` is errored; unknown states fail.
pub fn commit_status_results(sha: &str, statuses: &[CommitStatus]) -> Vec<CheckResult> {
    let mut by_context: BTreeMap<&str, Vec<&CommitStatus>> = BTreeMap::new();
    for status in statuses {
        by_context.entry(status.context.as_str()).or_default().push(status);
    }
    let mut results = Vec::new();
    for (context, mut list) in by_context {
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let mut open: Option<&CommitStatus> = None;
        for status in list {
            let finished = match &status.state {
                CommitState::Pending => {
                    open = Some(status);
                    continue;
                }
                CommitState::Success => CheckStatus::Passed,
                CommitState::Failure | CommitState::Unknown(_) => CheckStatus::Failed,
                CommitState::Error => CheckStatus::Errored,
            };
            let started_at = open.take().map_or(status.created_at, |p| p.created_at);
            results.push(CheckResult {
                name: context.to_owned(),
                sha: sha.to_owned(),
                status: finished,
                started_at,
                finished_at: Some(status.created_at.max(started_at)),
            });
        }
        if let Some(pending) = open {
            results.push(CheckResult {
                name: context.to_owned(),
                sha: sha.to_owned(),
                status: CheckStatus::Running,
                started_at: pending.created_at,
                finished_at: None,
            });
        }
    }
    results
}
