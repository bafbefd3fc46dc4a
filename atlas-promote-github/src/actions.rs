//! [`CiProvider`] for GitHub Actions (reference §3.A1–A4).
//!
//! A deploy or flush is a `workflow_dispatch` of the policy's workflow with
//! the inputs `key` (the idempotency key), `sha` (the candidate) and `flush`,
//! plus the policy's parameters. The workflow must echo `key` in its
//! `run-name`: that is how runs are found again after a crash, and on servers
//! that do not return the run id from a dispatch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use atlas_promote_core::{
    CiProvider, Error, IdempotencyKey, Origin, Result, Run, RunId, RunKind, RunRequest, RunStatus,
};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::{Method, StatusCode};

use crate::GitHub;
use crate::client::server_date;
use crate::error::{BACKEND, GhError};
use crate::model::{Conclusion, DispatchResponse, Job, Status, WorkflowRun};

/// GitHub accepts at most 25 inputs per dispatch (reference §0.2).
pub const MAX_INPUTS: usize = 25;
/// Inputs every dispatch carries; policy parameters may not use these names.
pub const RESERVED_INPUTS: [&str; 3] = ["key", "sha", "flush"];
/// How far before the dispatch's server time runs are looked for (clock skew, queueing).
const CREATED_SKEW: TimeDelta = TimeDelta::minutes(2);
/// How long a dispatch whose answer was lost keeps its key from being
/// dispatched again while no run carrying it is listed: GitHub lists a new
/// run after a few seconds.
const LOST_DISPATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The inputs of the dispatch for `request`: the policy's parameters, `key`,
/// `sha` and `flush` (`"true"` for a flush run). Fails when a parameter uses
/// a reserved name or there are more than [`MAX_INPUTS`].
pub fn dispatch_inputs(request: &RunRequest) -> Result<BTreeMap<String, String>> {
    let invalid =
        |message: String| Error::Invalid { what: format!("inputs of workflow {}", request.workflow), message };
    if let Some(name) = request.parameters.keys().find(|k| RESERVED_INPUTS.contains(&k.as_str())) {
        return Err(invalid(format!("parameter {name:?} clashes with an input atlas-promote sets")));
    }
    let mut inputs = request.parameters.clone();
    inputs.insert("key".into(), request.key.to_string());
    inputs.insert("sha".into(), request.candidate.sha.clone());
    inputs.insert("flush".into(), (request.kind == RunKind::Flush).to_string());
    if inputs.len() > MAX_INPUTS {
        return Err(invalid(format!("{} inputs; GitHub accepts at most {MAX_INPUTS}", inputs.len())));
    }
    Ok(inputs)
}

/// A run's (or job's) status and conclusion on the core's scale.
///
/// `queued`, `requested`, `waiting` (an environment gate) and `pending` are
/// pending; `in_progress` is running; a completed `success` succeeded,
/// `cancelled` was cancelled, and every other known conclusion (`failure`,
/// `timed_out`, `startup_failure`, `action_required`, `stale`, `neutral`,
/// `skipped`: a deploy that did not deploy) failed. Values this library
/// does not know stay [`RunStatus::Unknown`].
pub fn run_status(status: Option<&Status>, conclusion: Option<&Conclusion>) -> RunStatus {
    match status {
        None => RunStatus::Unknown("no status".into()),
        Some(Status::Queued | Status::Requested | Status::Waiting | Status::Pending) => RunStatus::Pending,
        Some(Status::InProgress) => RunStatus::Running,
        Some(Status::Unknown(s)) => RunStatus::Unknown(s.clone()),
        Some(Status::Completed) => match conclusion {
            Some(Conclusion::Success) => RunStatus::Succeeded,
            Some(Conclusion::Cancelled) => RunStatus::Cancelled,
            Some(
                Conclusion::Failure
                | Conclusion::TimedOut
                | Conclusion::StartupFailure
                | Conclusion::ActionRequired
                | Conclusion::Stale
                | Conclusion::Neutral
                | Conclusion::Skipped,
            ) => RunStatus::Failed,
            Some(Conclusion::Unknown(c)) => RunStatus::Unknown(format!("completed/{c}")),
            None => RunStatus::Unknown("completed without conclusion".into()),
        },
    }
}

/// The idempotency key in a `run-name`, as a whole token (so `….deploy.1`
/// does not match a title carrying `….deploy.10`).
pub(crate) fn key_in_title(title: &str) -> Option<IdempotencyKey> {
    title
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .filter(|token| token.starts_with("atlas."))
        .find_map(IdempotencyKey::parse)
}

/// The commit and stage a key was made for: `atlas.{sha}.{stage}.{kind}.{attempt}`.
pub(crate) fn key_parts(key: &IdempotencyKey) -> Option<(&str, &str)> {
    let mut parts = key.as_str().split('.');
    let (_, sha, stage) = (parts.next()?, parts.next()?, parts.next()?);
    Some((sha, stage))
}

/// A GitHub run id is a number: anything else names no run.
fn run_id(run: &RunId) -> Result<u64> {
    run.0.parse().map_err(|_| Error::NotFound { backend: BACKEND.into(), what: format!("workflow run {run}") })
}

fn to_run(run: &WorkflowRun, key: IdempotencyKey) -> Run {
    let status = run_status(run.status.as_ref(), run.conclusion.as_ref());
    Run {
        id: RunId(run.id.to_string()),
        key,
        finished_at: status.is_finished().then_some(run.updated_at),
        status,
        url: run.html_url.clone(),
    }
}

impl GitHub {
    /// A workflow run.
    pub async fn workflow_run(&self, id: u64) -> Result<WorkflowRun> {
        let url = self.repo_url(&["actions", "runs", &id.to_string()]);
        self.client()
            .get_json("get workflow run", url)
            .await
            .map_err(|e| e.into_core("get workflow run", || format!("workflow run {id}")))
    }

    /// The jobs of a run's latest attempt, every page; map each with [`run_status`].
    pub async fn jobs(&self, run: u64) -> Result<Vec<Job>> {
        let url = self.repo_url(&["actions", "runs", &run.to_string(), "jobs"]);
        self.client()
            .get_pages("list jobs", url, Some("jobs"), 10)
            .await
            .map_err(|e| e.into_core("list jobs", || format!("workflow run {run}")))
    }

    /// The 100 most recent `workflow_dispatch` runs of the repository (1 request, 304 when unchanged).
    pub(crate) async fn recent_dispatch_runs(&self) -> Result<Vec<WorkflowRun>> {
        let mut url = self.repo_url(&["actions", "runs"]);
        url.query_pairs_mut().append_pair("event", "workflow_dispatch");
        self.client()
            .get_pages("list workflow runs", url, Some("workflow_runs"), 1)
            .await
            .map_err(|e| e.into_core("list workflow runs", || "workflow runs".into()))
    }

    /// The dispatched runs of `workflow` on `branch` created since `since`
    /// whose `run-name` carries `key` (reference §3.A2, the fallback).
    async fn find_dispatched(
        &self,
        workflow: &str,
        branch: &str,
        since: DateTime<Utc>,
        key: &IdempotencyKey,
    ) -> Result<Option<WorkflowRun>> {
        let mut url = self.repo_url(&["actions", "workflows", workflow, "runs"]);
        url.query_pairs_mut()
            .append_pair("event", "workflow_dispatch")
            .append_pair("branch", branch)
            .append_pair("created", &format!(">={}", since.to_rfc3339_opts(SecondsFormat::Secs, true)));
        let runs: Vec<WorkflowRun> = self
            .client()
            .get_pages("list workflow runs", url, Some("workflow_runs"), 1)
            .await
            .map_err(|e| e.into_core("list workflow runs", || format!("workflow {workflow}")))?;
        Ok(runs.into_iter().find(|run| run.display_title.as_deref().and_then(key_in_title).as_ref() == Some(key)))
    }

    fn lost_dispatches(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<IdempotencyKey, std::time::Instant>> {
        self.inner.lost_dispatches.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, run: u64, key: &IdempotencyKey) {
        self.inner.run_keys.lock().unwrap_or_else(|p| p.into_inner()).insert(run, key.clone());
    }

    fn remembered_key(&self, run: u64) -> Option<IdempotencyKey> {
        self.inner.run_keys.lock().unwrap_or_else(|p| p.into_inner()).get(&run).cloned()
    }

    fn remembered_run(&self, key: &IdempotencyKey) -> Option<u64> {
        self.inner.run_keys.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(_, k)| *k == key).map(|(id, _)| *id)
    }

    /// POST the dispatch; `Ok(Some(run))` when GitHub returned the run id.
    async fn dispatch(
        &self,
        workflow: &str,
        body: &serde_json::Value,
    ) -> Result<(Option<DispatchResponse>, Option<DateTime<Utc>>), GhError> {
        let url = self.repo_url(&["actions", "workflows", workflow, "dispatches"]);
        let response = self.client().send_json("dispatch workflow", Method::POST, url, Some(body)).await?;
        let date = server_date(&response.headers);
        if response.status == StatusCode::OK && !response.body.is_empty() {
            return Ok((Some(response.json()?), date));
        }
        Ok((None, date))
    }
}

#[async_trait]
impl CiProvider for GitHub {
    /// One dispatch (1 request with `return_run_details`). Without a run id
    /// in the answer (older servers), looks for the run by `run-name` a few
    /// times; if it has not appeared yet, fails with a *temporary* error:
    /// the run was started, and [`find`](CiProvider::find) recovers it.
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        let inputs = dispatch_inputs(request)?;
        let config = self.config();
        let workflow = config.workflow_file(&request.workflow);
        let branch = match (&request.candidate.origin, &request.candidate.branch) {
            (Origin::Branch, Some(branch)) => branch.clone(),
            _ => config.dispatch_ref.clone(),
        };
        let mut body = serde_json::json!({ "ref": branch, "inputs": inputs });
        if config.return_run_details {
            body["return_run_details"] = true.into();
        }
        let answer = match self.dispatch(&workflow, &body).await {
            // Servers that do not know the field refuse the whole request (so nothing started).
            Err(GhError::Api { status: 422, body: ref error, .. })
                if config.return_run_details && error.to_string().contains("return_run_details") =>
            {
                body.as_object_mut().map(|o| o.remove("return_run_details"));
                self.dispatch(&workflow, &body).await
            }
            other => other,
        }
        .map_err(|e| {
            // No answer, a server error, or an unreadable success: the run may have started.
            if matches!(e, GhError::Transport { .. } | GhError::Decode { .. } | GhError::Deadline { .. })
                || e.status().is_some_and(|s| s >= 500)
            {
                self.lost_dispatches().insert(request.key.clone(), std::time::Instant::now());
            }
            e.into_core("dispatch workflow", || format!("workflow {workflow}"))
        })?;
        self.lost_dispatches().remove(&request.key);

        match answer {
            (Some(details), _) => {
                self.remember(details.workflow_run_id, &request.key);
                Ok(Run {
                    id: RunId(details.workflow_run_id.to_string()),
                    key: request.key.clone(),
                    status: RunStatus::Pending,
                    url: details.html_url,
                    finished_at: None,
                })
            }
            (None, date) => {
                let since = date.unwrap_or_else(Utc::now) - CREATED_SKEW;
                for attempt in 0..config.run_lookup_attempts {
                    if attempt > 0 {
                        tokio::time::sleep(config.run_lookup_delay).await;
                    }
                    if let Some(run) = self.find_dispatched(&workflow, &branch, since, &request.key).await? {
                        self.remember(run.id, &request.key);
                        return Ok(to_run(&run, request.key.clone()));
                    }
                }
                Err(Error::backend(
                    BACKEND,
                    "dispatch workflow",
                    true,
                    format!(
                        "workflow {workflow} was dispatched but no run with {} in its run-name appeared within {:?}; \
                         find() will recover it (does the workflow's run-name include ${{{{ inputs.key }}}}?)",
                        request.key,
                        config.run_lookup_delay * config.run_lookup_attempts.saturating_sub(1)
                    ),
                ))
            }
        }
    }

    /// The run whose `run-name` carries `key` among the 100 most recent
    /// dispatched runs (1 request), or the run this value dispatched with it.
    ///
    /// When a dispatch with `key` got no answer (or a 5xx) and its run is not
    /// listed yet, fails with a temporary error for a while rather than
    /// answer `None`: GitHub may have started the run, and lists it only
    /// after a few seconds.
    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        if let Some(id) = self.remembered_run(key) {
            return self.status(&RunId(id.to_string())).await.map(Some);
        }
        let runs = self.recent_dispatch_runs().await?;
        let found = runs
            .iter()
            .find(|run| run.display_title.as_deref().and_then(key_in_title).as_ref() == Some(key))
            .map(|run| to_run(run, key.clone()));
        let lost = self.lost_dispatches().get(key).copied();
        match (found, lost) {
            (None, Some(at)) if at.elapsed() < LOST_DISPATCH_WAIT => Err(Error::backend(
                BACKEND,
                "find workflow run",
                true,
                format!(
                    "the dispatch of {key} got no answer {:?} ago and its run is not listed yet; \
                     it is not dispatched again before {LOST_DISPATCH_WAIT:?} have passed",
                    at.elapsed()
                ),
            )),
            (found, _) => {
                self.lost_dispatches().remove(key);
                Ok(found)
            }
        }
    }

    /// 1 request (a 304 while nothing changed).
    async fn status(&self, run: &RunId) -> Result<Run> {
        let id = run_id(run)?;
        let found = self.workflow_run(id).await?;
        let key =
            found.display_title.as_deref().and_then(key_in_title).or_else(|| self.remembered_key(id)).ok_or_else(
                || Error::Invalid {
                    what: format!("workflow run {id}"),
                    message:
                        "its run-name carries no atlas-promote key: add ${{ inputs.key }} to the workflow's run-name"
                            .into(),
                },
            )?;
        Ok(to_run(&found, key))
    }

    /// `POST …/runs/{id}/cancel`; GitHub's 409 for a run that already finished is success.
    async fn cancel(&self, run: &RunId) -> Result<()> {
        let id = run_id(run)?;
        let url = self.repo_url(&["actions", "runs", &id.to_string(), "cancel"]);
        match self.client().send_json("cancel workflow run", Method::POST, url, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(409) => Ok(()),
            Err(e) => Err(e.into_core("cancel workflow run", || format!("workflow run {id}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_whole_tokens_of_the_run_name() {
        let key = IdempotencyKey::new("abc123", "prod", RunKind::Deploy, 1);
        assert_eq!(key_in_title(&format!("deploy prod abc123 [{key}]")), Some(key.clone()));
        assert_ne!(key_in_title(&format!("deploy [{key}0]")).as_ref(), Some(&key));
        assert_eq!(key_in_title("Update README.md"), None);
        assert_eq!(key_parts(&key), Some(("abc123", "prod")));
    }

    #[test]
    fn run_status_maps_every_known_value_and_keeps_unknown_ones() {
        use Conclusion as C;
        use Status as S;
        assert_eq!(run_status(Some(&S::Waiting), None), RunStatus::Pending);
        assert_eq!(run_status(Some(&S::Requested), None), RunStatus::Pending);
        assert_eq!(run_status(Some(&S::InProgress), None), RunStatus::Running);
        assert_eq!(run_status(Some(&S::Completed), Some(&C::Success)), RunStatus::Succeeded);
        assert_eq!(run_status(Some(&S::Completed), Some(&C::Cancelled)), RunStatus::Cancelled);
        assert_eq!(run_status(Some(&S::Completed), Some(&C::StartupFailure)), RunStatus::Failed);
        assert_eq!(run_status(Some(&S::parse("exploding")), None), RunStatus::Unknown("exploding".into()));
        assert_eq!(
            run_status(Some(&S::Completed), Some(&C::parse("vanished"))),
            RunStatus::Unknown("completed/vanished".into())
        );
    }
}
