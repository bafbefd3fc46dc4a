//! What the backend has learnt, kept so that polling stays cheap: pipelines,
//! workflows, jobs, logins, and the runs it started or found. One value,
//! behind one mutex never held across an `await`.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use atlas_promote_core::{IdempotencyKey, Run};
use chrono::{DateTime, Utc};

use crate::model::{Job, JobType, Pipeline, Workflow};

/// Cached knowledge, behind one mutex never held across an `await`.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// The trunk branch's pipelines, newest first.
    pub(crate) trunk: Vec<Pipeline>,
    /// `trunk` holds every trunk pipeline created at or after this instant.
    pub(crate) trunk_covers: Option<DateTime<Utc>>,
    /// Workflow lists by pipeline id.
    pub(crate) workflows: HashMap<String, Listed<Vec<Workflow>>>,
    /// Jobs by workflow id.
    pub(crate) jobs: HashMap<String, Listed<Vec<Job>>>,
    /// User logins by user id.
    pub(crate) logins: HashMap<String, String>,
    /// The token's own login.
    pub(crate) me: Option<String>,
    /// Trunk pipelines of a commit that may carry approval jobs, by the SHA asked for.
    approval_pipelines: HashMap<String, Vec<String>>,
    /// Runs started or found by this backend (see `ci.rs`).
    pub(crate) runs: RunCache,
}

impl Cache {
    /// The trunk pipelines found for `sha` that may carry approval jobs.
    pub(crate) fn approval_pipelines(&self, sha: &str) -> Option<Vec<String>> {
        self.approval_pipelines.get(sha).cloned()
    }

    /// Remember the trunk pipelines found for `sha` that may carry approval jobs.
    pub(crate) fn remember_approval_pipelines(&mut self, sha: &str, ids: Vec<String>) {
        self.approval_pipelines.insert(sha.to_owned(), ids);
    }

    /// Whether the jobs of `workflow` may hold an approval job: not read
    /// yet, or read and holding one.
    pub(crate) fn may_hold_approvals(&self, workflow_id: &str) -> bool {
        self.jobs.get(workflow_id).is_none_or(|jobs| jobs.value.iter().any(|j| j.kind == JobType::Approval))
    }
}

/// A listing and when it was read.
#[derive(Debug, Clone)]
pub(crate) struct Listed<T> {
    pub(crate) value: T,
    pub(crate) at: Instant,
}

/// What this backend knows of pipelines it started or found.
#[derive(Debug, Default)]
pub(crate) struct RunCache {
    by_key: HashMap<IdempotencyKey, String>,
    by_pipeline: HashMap<String, Tracked>,
    /// Pipelines read back that carry no atlas key.
    not_ours: HashSet<String>,
}

impl RunCache {
    /// The key of a pipeline this backend started or found.
    pub(crate) fn key_of(&self, pipeline_id: &str) -> Option<IdempotencyKey> {
        self.by_pipeline.get(pipeline_id).map(|t| t.key.clone())
    }

    /// The pipeline started or found for `key`.
    pub(crate) fn pipeline_of(&self, key: &IdempotencyKey) -> Option<String> {
        self.by_key.get(key).cloned()
    }

    /// What is known of a pipeline.
    pub(crate) fn tracked(&self, pipeline_id: &str) -> Option<Tracked> {
        self.by_pipeline.get(pipeline_id).cloned()
    }

    /// Remember what is known of a pipeline, under its key too.
    pub(crate) fn remember(&mut self, pipeline_id: &str, tracked: Tracked) {
        self.by_key.insert(tracked.key.clone(), pipeline_id.to_owned());
        self.by_pipeline.insert(pipeline_id.to_owned(), tracked);
    }

    /// Forget a run's final answer (it was cancelled: read it again).
    pub(crate) fn forget_result(&mut self, pipeline_id: &str) {
        if let Some(t) = self.by_pipeline.get_mut(pipeline_id) {
            t.done = None;
        }
    }

    /// Whether a pipeline was read back and carries no atlas key.
    pub(crate) fn is_not_ours(&self, pipeline_id: &str) -> bool {
        self.not_ours.contains(pipeline_id)
    }

    /// A pipeline read back that carries no atlas key: never read back again.
    pub(crate) fn not_ours(&mut self, pipeline_id: &str) {
        self.not_ours.insert(pipeline_id.to_owned());
    }
}

/// What is known of a run this backend started or found.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub(crate) key: IdempotencyKey,
    pub(crate) workflow: Option<String>,
    pub(crate) number: Option<i64>,
    /// Set once `GET /pipeline/{id}` said `created`: from then on only the workflows are read.
    pub(crate) created_at: Option<DateTime<Utc>>,
    /// The final answer, once the run finished (a run never leaves a finished status).
    pub(crate) done: Option<Run>,
}
