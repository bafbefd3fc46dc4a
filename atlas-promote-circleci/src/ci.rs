//! [`CiProvider`]: deploy and flush runs as CircleCI pipelines.
//!
//! A run is a pipeline; its [`RunId`] is the pipeline id. The request becomes
//! pipeline parameters (see [`CircleCi::pipeline_parameters`]); the run's
//! status is that of the newest workflow named like the request's workflow
//! (or of all the pipeline's workflows, when none has that name).

use std::collections::BTreeMap;

use async_trait::async_trait;
use atlas_promote_core::{CiProvider, IdempotencyKey, Origin, Result, Run, RunId, RunKind, RunRequest, RunStatus};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::cache::Tracked;
use crate::client::{decode, segment};
use crate::error::{BACKEND, PipelineNotCreated, invalid, permanent};
use crate::model::{
    BranchRef, LegacyTrigger, Message, Pipeline, PipelineConfig, PipelineCreation, PipelineState, PipelineValues,
    RunTrigger, Workflow, newest_per_name, run_status,
};
use crate::{CircleCi, lock};

/// Pipeline parameter limits (spec: 100 entries, 128-character keys, 512-character values).
const MAX_PARAMETERS: usize = 100;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 512;

/// The status of a run made of these workflows: going while any goes, then
/// unknown, failed, cancelled, succeeded, in that order of precedence.
pub(crate) fn combine(workflows: &[&Workflow]) -> (RunStatus, Option<DateTime<Utc>>) {
    let statuses: Vec<RunStatus> = workflows.iter().map(|w| run_status(&w.status)).collect();
    let status = if let Some(s) = statuses.iter().find(|s| matches!(s, RunStatus::Running | RunStatus::Pending)) {
        s.clone()
    } else if let Some(s) = statuses.iter().find(|s| matches!(s, RunStatus::Unknown(_))) {
        s.clone()
    } else if statuses.contains(&RunStatus::Failed) {
        RunStatus::Failed
    } else if statuses.contains(&RunStatus::Cancelled) {
        RunStatus::Cancelled
    } else {
        RunStatus::Succeeded
    };
    let finished_at = status.is_finished().then(|| workflows.iter().filter_map(|w| w.stopped_at).max()).flatten();
    (status, finished_at)
}

fn parameter_name(prefix: &str, name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    format!("{prefix}{clean}")
}

/// Every string in a JSON value that has the shape of an idempotency key.
pub(crate) fn keys_in(value: &Value, out: &mut Vec<IdempotencyKey>) {
    match value {
        Value::String(s) => out.extend(IdempotencyKey::parse(s)),
        Value::Array(items) => items.iter().for_each(|v| keys_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| keys_in(v, out)),
        _ => {}
    }
}

/// Key-shaped words in a compiled config (where pipeline parameters are substituted).
pub(crate) fn keys_in_text(text: &str) -> Vec<IdempotencyKey> {
    text.match_indices("atlas.")
        .filter_map(|(at, _)| {
            let before_ok = text[..at].chars().last().is_none_or(|c| !is_key_char(c));
            let end = text[at..].find(|c: char| !is_key_char(c)).map_or(text.len(), |n| at + n);
            before_ok.then(|| IdempotencyKey::parse(text[at..end].trim_end_matches('.'))).flatten()
        })
        .collect()
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

impl CircleCi {
    /// The pipeline parameters a request is sent with. The project's
    /// `.circleci/config.yml` must declare each of them (with the default
    /// prefix `atlas_`):
    ///
    /// | parameter | type | value |
    /// | --- | --- | --- |
    /// | `atlas_key` | string | the idempotency key, e.g. `atlas.9fceb02.prod.deploy.1` |
    /// | `atlas_workflow` | string | the policy's workflow: `deploy` or `flush` in the ATLAS preset |
    /// | `atlas_stage` | string | the stage deployed to: `dev`, `staging`, `prod` |
    /// | `atlas_sha` | string | the candidate's commit (the pipeline's checkout may be newer) |
    /// | `atlas_flush` | boolean | `true` for a flush run |
    /// | `atlas_<name>` | string | each of the policy's workflow parameters, e.g. `atlas_environment` |
    ///
    /// A parameter name of the policy has every character other than ASCII
    /// letters, digits, `_` and `-` replaced by `_`.
    pub fn pipeline_parameters(&self, request: &RunRequest) -> Result<BTreeMap<String, Value>> {
        const WHAT: &str = "pipeline parameters";
        let prefix = &self.inner.settings.parameter_prefix;
        let mut out = BTreeMap::new();
        out.insert(format!("{prefix}key"), Value::from(request.key.as_str()));
        out.insert(format!("{prefix}workflow"), Value::from(request.workflow.as_str()));
        out.insert(format!("{prefix}stage"), Value::from(request.stage.as_str()));
        out.insert(format!("{prefix}sha"), Value::from(request.candidate.sha.as_str()));
        out.insert(format!("{prefix}flush"), Value::from(request.kind == RunKind::Flush));
        for (name, value) in &request.parameters {
            let key = parameter_name(prefix, name);
            if out.insert(key.clone(), Value::from(value.as_str())).is_some() {
                return Err(invalid(WHAT, format!("policy parameter {name:?} collides with {key:?}")));
            }
        }
        if out.len() > MAX_PARAMETERS {
            return Err(invalid(WHAT, format!("{} parameters; CircleCI takes at most {MAX_PARAMETERS}", out.len())));
        }
        for (key, value) in &out {
            if key.len() > MAX_KEY {
                return Err(invalid(WHAT, format!("name {key:?} is longer than {MAX_KEY} characters")));
            }
            if value.as_str().is_some_and(|v| v.chars().count() > MAX_VALUE) {
                return Err(invalid(WHAT, format!("value of {key:?} is longer than {MAX_VALUE} characters")));
            }
        }
        Ok(out)
    }

    /// A link to the pipeline in the CircleCI app (cloud only).
    fn app_url(&self, number: Option<i64>) -> Option<String> {
        let s = &self.inner.settings;
        if s.base_url.trim_end_matches('/') != crate::config::DEFAULT_BASE_URL {
            return None;
        }
        let mut parts = s.project_slug.splitn(2, '/');
        let vcs = match parts.next()? {
            "gh" | "github" => "github",
            "bb" | "bitbucket" => "bitbucket",
            other => other,
        };
        Some(format!("https://app.circleci.com/pipelines/{vcs}/{}/{}", parts.next()?, number?))
    }

    /// Whether a pipeline is still being set up (its config, and so its
    /// parameters, not readable yet) and young enough to be expected to finish it.
    fn still_setting_up(&self, pipeline: &Pipeline) -> bool {
        matches!(pipeline.state, PipelineState::Pending | PipelineState::Setup | PipelineState::SetupPending)
            && Utc::now() - pipeline.created_at <= self.inner.settings.no_workflow_grace
    }

    fn remember(&self, pipeline_id: &str, tracked: Tracked) {
        lock(&self.inner.cache).runs.remember(pipeline_id, tracked);
    }

    /// The atlas key (and workflow) a pipeline was started with, read back
    /// from the API: `trigger_parameters`, then `GET /pipeline/{id}/values`,
    /// then the compiled config; the first place holding a key answers.
    async fn read_back(&self, pipeline: &Pipeline) -> Result<Option<(IdempotencyKey, Option<String>)>> {
        let prefix = &self.inner.settings.parameter_prefix;
        let key_name = format!("{prefix}key");
        let workflow_name = format!("{prefix}workflow");
        let pick = |keys: Vec<IdempotencyKey>| keys.into_iter().next();
        // 1. Some integrations echo the parameters in trigger_parameters.
        if let Some(params) = &pipeline.trigger_parameters {
            let mut keys = Vec::new();
            keys_in(params, &mut keys);
            if let Some(key) = pick(keys) {
                let workflow = find_named(params, &workflow_name);
                return Ok(Some((key, workflow)));
            }
        }
        let id = segment(&pipeline.id);
        // 2. Pipeline values: `pipeline.parameters.atlas_key` where CircleCI lists parameters.
        match self
            .inner
            .client
            .get::<PipelineValues>("get pipeline values", &format!("/pipeline/{id}/values"), &[])
            .await
        {
            Ok(values) => {
                let named = |suffix: &str| {
                    values.iter().find(|(k, _)| k.ends_with(suffix)).and_then(|(_, v)| v.as_str().map(str::to_owned))
                };
                let mut keys: Vec<IdempotencyKey> =
                    named(&key_name).and_then(|k| IdempotencyKey::parse(&k)).into_iter().collect();
                if keys.is_empty() {
                    keys_in(&Value::Object(values.clone().into_iter().collect()), &mut keys);
                }
                if let Some(key) = pick(keys) {
                    return Ok(Some((key, named(&workflow_name))));
                }
            }
            Err(atlas_promote_core::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // 3. The compiled config has parameters substituted: the README's
        // config puts the key into every job's environment.
        match self
            .inner
            .client
            .get::<PipelineConfig>("get pipeline config", &format!("/pipeline/{id}/config"), &[])
            .await
        {
            Ok(config) => Ok(pick(keys_in_text(&config.compiled)).map(|k| (k, None))),
            Err(atlas_promote_core::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The run of a pipeline, read now.
    async fn run_of(&self, pipeline_id: &str, known: Option<Pipeline>) -> Result<Run> {
        let tracked = lock(&self.inner.cache).runs.tracked(pipeline_id);
        if let Some(done) = tracked.as_ref().and_then(|t| t.done.clone()) {
            return Ok(done);
        }
        let mut tracked = match tracked {
            Some(t) => t,
            None => {
                let pipeline = match known {
                    Some(p) => p,
                    None => self.pipeline(pipeline_id).await?,
                };
                let Some((key, workflow)) = self.read_back(&pipeline).await? else {
                    return Err(invalid(
                        "run",
                        format!("pipeline {pipeline_id} carries no atlas key parameter: not started by atlas-promote"),
                    ));
                };
                let created_at = (pipeline.state == PipelineState::Created).then_some(pipeline.created_at);
                Tracked { key, workflow, number: pipeline.number, created_at, done: None }
            }
        };
        let run = |status: RunStatus, finished_at: Option<DateTime<Utc>>, t: &Tracked| Run {
            id: RunId(pipeline_id.to_owned()),
            key: t.key.clone(),
            status,
            url: self.app_url(t.number),
            finished_at,
        };
        if tracked.created_at.is_none() {
            let pipeline = self.pipeline(pipeline_id).await?;
            tracked.number = tracked.number.or(pipeline.number);
            match &pipeline.state {
                PipelineState::Created => tracked.created_at = Some(pipeline.created_at),
                PipelineState::Errored => {
                    let why: Vec<String> =
                        pipeline.errors.iter().map(|e| format!("{}: {}", e.kind, e.message)).collect();
                    tracing::warn!(pipeline = pipeline_id, errors = ?why, "CircleCI pipeline errored");
                    let done = run(RunStatus::Failed, Some(pipeline.created_at), &tracked);
                    tracked.done = Some(done.clone());
                    self.remember(pipeline_id, tracked);
                    return Ok(done);
                }
                PipelineState::Unknown(s) => {
                    let status = RunStatus::Unknown(format!("pipeline {s}"));
                    let r = run(status, None, &tracked);
                    self.remember(pipeline_id, tracked);
                    return Ok(r);
                }
                _ => {
                    let r = run(RunStatus::Pending, None, &tracked);
                    self.remember(pipeline_id, tracked);
                    return Ok(r);
                }
            }
        }
        let workflows = self.read_workflows(pipeline_id).await?;
        let newest = newest_per_name(&workflows);
        let named: Vec<&Workflow> = match &tracked.workflow {
            Some(name) if newest.iter().any(|w| &w.name == name) => {
                newest.iter().copied().filter(|w| &w.name == name).collect()
            }
            _ => newest,
        };
        let (status, finished_at) = if named.is_empty() {
            let created = tracked.created_at.unwrap_or_else(Utc::now);
            if Utc::now() - created > self.inner.settings.no_workflow_grace {
                // Filters or `when` clauses ran nothing: the deploy did not happen.
                tracing::warn!(pipeline = pipeline_id, "CircleCI pipeline created no workflow");
                (RunStatus::Failed, Some(created))
            } else {
                (RunStatus::Pending, None)
            }
        } else {
            combine(&named)
        };
        let result = run(status, finished_at, &tracked);
        if result.status.is_finished() {
            tracked.done = Some(result.clone());
        }
        self.remember(pipeline_id, tracked);
        Ok(result)
    }
}

/// The string value of the first object member called `name`, at any depth.
fn find_named(value: &Value, name: &str) -> Option<String> {
    match value {
        Value::Object(map) => map
            .get(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .or_else(|| map.values().find_map(|v| find_named(v, name))),
        Value::Array(items) => items.iter().find_map(|v| find_named(v, name)),
        _ => None,
    }
}

#[async_trait]
impl CiProvider for CircleCi {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        let parameters = self.pipeline_parameters(request)?;
        let s = &self.inner.settings;
        let branch = match (request.candidate.origin, &request.candidate.branch) {
            (Origin::Branch, Some(branch)) => branch.as_str(),
            _ => s.trigger_branch(),
        };
        let (operation, (status, text)) = match &s.definition_id {
            Some(definition_id) => {
                let operation = "trigger pipeline run";
                let mut parts = s.project_slug.splitn(3, '/').map(segment);
                let (provider, org, project) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                let body = RunTrigger {
                    definition_id,
                    config: BranchRef { branch },
                    checkout: BranchRef { branch },
                    parameters: &parameters,
                };
                let path = format!("/project/{provider}/{org}/{project}/pipeline/run");
                (operation, self.inner.client.post(operation, &path, Some(&body)).await?)
            }
            None => {
                let operation = "trigger pipeline";
                let body = LegacyTrigger { branch, parameters: &parameters };
                let path = format!("/project/{}/pipeline", s.project_slug);
                (operation, self.inner.client.post(operation, &path, Some(&body)).await?)
            }
        };
        let client = &self.inner.client;
        let created: PipelineCreation = match client.decode(&text) {
            Ok(created) => created,
            // 200 with a message: nothing was created (e.g. "[ci skip]").
            Err(_) if status == StatusCode::OK => {
                let message = decode::<Message>(&text).map(|m| m.message).unwrap_or_else(|_| text.clone());
                let message = client.redact(&message);
                return Err(atlas_promote_core::Error::backend(
                    BACKEND,
                    operation,
                    false,
                    PipelineNotCreated { message },
                ));
            }
            Err(e) => {
                return Err(permanent(
                    operation,
                    format!(
                        "CircleCI answered {status} with an unreadable body ({e}); a pipeline may have been created: find it by its key"
                    ),
                ));
            }
        };
        let tracked = Tracked {
            key: request.key.clone(),
            workflow: Some(request.workflow.clone()),
            number: created.number,
            created_at: None,
            done: None,
        };
        self.remember(&created.id, tracked);
        tracing::info!(pipeline = %created.id, number = ?created.number, "CircleCI pipeline created");
        Ok(Run {
            id: RunId(created.id),
            key: request.key.clone(),
            status: RunStatus::Pending,
            url: self.app_url(created.number),
            finished_at: None,
        })
    }

    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        let known = lock(&self.inner.cache).runs.pipeline_of(key);
        if let Some(pipeline_id) = known {
            return self.run_of(&pipeline_id, None).await.map(Some);
        }
        let s = &self.inner.settings;
        let cutoff = Utc::now() - s.lookback;
        let branch = s.trigger_branch().to_owned();
        let pipelines = if branch == s.trunk_branch {
            self.trunk_pipelines(cutoff).await?
        } else {
            let path = format!("/project/{}/pipeline", s.project_slug);
            let listing = self
                .inner
                .client
                .list::<Pipeline>("list pipelines", &path, &[("branch", branch.as_str())], |page| {
                    page.iter().all(|p| p.created_at >= cutoff)
                })
                .await?;
            listing.items
        };
        // A pipeline still being set up cannot say which key it carries yet:
        // it may be this key's, started by a trigger whose answer was lost.
        let mut unreadable: Option<Pipeline> = None;
        for pipeline in pipelines {
            if s.is_scheduled(&pipeline) {
                continue;
            }
            let tracked = {
                let cache = lock(&self.inner.cache);
                if cache.runs.is_not_ours(&pipeline.id) {
                    continue;
                }
                cache.runs.key_of(&pipeline.id)
            };
            match tracked {
                Some(k) if &k == key => return self.run_of(&pipeline.id.clone(), Some(pipeline)).await.map(Some),
                Some(_) => continue,
                None => {}
            }
            // Whichever key it carries: a pipeline of another run is that run's, not "not ours".
            match self.read_back(&pipeline).await? {
                Some((found, workflow)) => {
                    let created_at = (pipeline.state == PipelineState::Created).then_some(pipeline.created_at);
                    let id = pipeline.id.clone();
                    let ours = &found == key;
                    self.remember(
                        &id,
                        Tracked { key: found, workflow, number: pipeline.number, created_at, done: None },
                    );
                    if ours {
                        return self.run_of(&id, None).await.map(Some);
                    }
                }
                None if self.still_setting_up(&pipeline) => unreadable = unreadable.or(Some(pipeline)),
                None => {
                    lock(&self.inner.cache).runs.not_ours(&pipeline.id);
                }
            }
        }
        if let Some(pipeline) = unreadable {
            return Err(atlas_promote_core::Error::backend(
                BACKEND,
                "find pipeline",
                true,
                format!(
                    "pipeline {} (created {}) is still being set up, so whether it was started with {key} cannot be read yet",
                    pipeline.id, pipeline.created_at
                ),
            ));
        }
        Ok(None)
    }

    async fn status(&self, run: &RunId) -> Result<Run> {
        self.run_of(&run.0, None).await
    }

    async fn cancel(&self, run: &RunId) -> Result<()> {
        let workflows = self.read_workflows(&run.0).await?;
        for workflow in workflows.iter().filter(|w| !w.status.is_terminal()) {
            let path = format!("/workflow/{}/cancel", segment(&workflow.id));
            if let Err(e) = self.inner.client.post::<()>("cancel workflow", &path, None).await {
                // Finished in the meantime? Cancelling a finished run is not an error.
                let now: Workflow =
                    self.inner.client.get("get workflow", &format!("/workflow/{}", segment(&workflow.id)), &[]).await?;
                if !now.status.is_terminal() {
                    return Err(e);
                }
            }
        }
        lock(&self.inner.cache).runs.forget_result(&run.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_compiled_config_text() {
        let compiled =
            "jobs:\n  deploy:\n    environment:\n      ATLAS_KEY: atlas.9fceb02.prod.deploy.1\n      X: atlas.\n";
        assert_eq!(keys_in_text(compiled), vec![IdempotencyKey::parse("atlas.9fceb02.prod.deploy.1").unwrap()]);
        assert!(keys_in_text("noatlas.9fceb02.prod.deploy.1").is_empty());
    }

    #[test]
    fn a_run_goes_on_while_any_workflow_goes() {
        let w = |name: &str, status: &str| -> Workflow {
            serde_json::from_value(serde_json::json!({
                "id": name, "name": name, "status": status, "created_at": "2026-05-04T08:00:00Z",
                "stopped_at": "2026-05-04T08:10:00Z"
            }))
            .unwrap()
        };
        let (a, b, c) = (w("a", "success"), w("b", "failing"), w("c", "failed"));
        assert_eq!(combine(&[&a, &b]).0, RunStatus::Running);
        assert_eq!(combine(&[&a, &c]).0, RunStatus::Failed);
        assert_eq!(combine(&[&a]).1, Some("2026-05-04T08:10:00Z".parse().unwrap()));
        let odd = w("d", "paused");
        assert_eq!(combine(&[&a, &odd]).0, RunStatus::Unknown("paused".into()));
    }
}
