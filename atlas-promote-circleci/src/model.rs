//! Serde types of the CircleCI API v2 responses and requests this crate uses.
//!
//! Everything the API may add to is open: unknown fields are ignored, every
//! enum has an `Unknown(String)` variant that keeps the spelling, and every
//! field the spec marks required but real payloads sometimes lack is an
//! `Option` (see `shared/reference/circleci.md` §9–10).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use atlas_promote_core::RunStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines an open string enum: known spellings plus `Unknown(String)`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this library does not know, as the API spelled it.
            Unknown(String),
        }

        impl $name {
            /// The API's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::from(text.as_str()))
            }
        }
    };
}

open_enum! {
    /// `Pipeline.state`.
    PipelineState {
        /// Config processed; workflows are (being) created.
        Created = "created",
        /// Config or trigger failed; see `errors`.
        Errored = "errored",
        /// A setup workflow is pending.
        SetupPending = "setup-pending",
        /// A setup workflow is running.
        Setup = "setup",
        /// Not processed yet.
        Pending = "pending",
    }
}

open_enum! {
    /// `Workflow.status` (and the webhook's `workflow.status`).
    WorkflowStatus {
        /// Finished, every job passed.
        Success = "success",
        /// Going.
        Running = "running",
        /// Did not run.
        NotRun = "not_run",
        /// Finished, a job failed.
        Failed = "failed",
        /// Finished, the workflow itself broke.
        Error = "error",
        /// Going, but a job already failed (not terminal).
        Failing = "failing",
        /// Waiting on an approval job.
        OnHold = "on_hold",
        /// Cancelled.
        Canceled = "canceled",
        /// Not allowed to run (restricted context).
        Unauthorized = "unauthorized",
        /// Waiting in a serial group (2026 docs; not in the spec enum).
        Queued = "queued",
    }
}

impl WorkflowStatus {
    /// Whether the workflow has ended (reference §4). Unknown values are not terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Error | Self::Canceled | Self::Unauthorized | Self::NotRun)
    }
}

open_enum! {
    /// `Job.status`.
    JobStatus {
        /// Passed (for an approval job: approved).
        Success = "success",
        /// Going.
        Running = "running",
        /// Did not run.
        NotRun = "not_run",
        /// Failed.
        Failed = "failed",
        /// Replaced by a rerun.
        Retried = "retried",
        /// Waiting for capacity.
        Queued = "queued",
        /// Not running.
        NotRunning = "not_running",
        /// The infrastructure failed.
        InfrastructureFail = "infrastructure_fail",
        /// Timed out.
        Timedout = "timedout",
        /// An approval job waiting for someone.
        OnHold = "on_hold",
        /// Ended for an unknown reason.
        TerminatedUnknown = "terminated-unknown",
        /// Waiting on the jobs it requires.
        Blocked = "blocked",
        /// Cancelled (for an approval job: rejected).
        Canceled = "canceled",
        /// Not allowed to run.
        Unauthorized = "unauthorized",
    }
}

impl JobStatus {
    /// Whether the job has ended. Unknown values are not terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Success
                | Self::NotRun
                | Self::Failed
                | Self::Retried
                | Self::InfrastructureFail
                | Self::Timedout
                | Self::TerminatedUnknown
                | Self::Canceled
                | Self::Unauthorized
        ) || matches!(self, Self::Unknown(s) if s == "cancelled")
    }
}

open_enum! {
    /// `Job.type`.
    JobType {
        /// A job that runs steps.
        Build = "build",
        /// A manual approval gate.
        Approval = "approval",
    }
}

/// One page of a list endpoint: `{items, next_page_token}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// Pass as `page-token` for the next page; `None` on the last.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `GET /pipeline/{id}` and the items of `GET /project/{slug}/pipeline`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Pipeline {
    /// The pipeline's id.
    pub id: String,
    /// Its number in the project.
    #[serde(default)]
    pub number: Option<i64>,
    /// The project slug.
    #[serde(default)]
    pub project_slug: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Where it is.
    pub state: PipelineState,
    /// Why it errored.
    #[serde(default)]
    pub errors: Vec<PipelineError>,
    /// What started it.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// Integration-specific trigger data (GitHub App, GitLab, Bitbucket DC), and
    /// on some integrations the pipeline parameters.
    #[serde(default)]
    pub trigger_parameters: Option<serde_json::Value>,
    /// The commit (GitHub OAuth, Bitbucket Cloud).
    #[serde(default)]
    pub vcs: Option<Vcs>,
}

impl Pipeline {
    /// The commit the pipeline ran for: `vcs.revision`, else
    /// `trigger_parameters.git.checkout_sha` (GitHub App projects), else
    /// `trigger_parameters.github_app.commit_sha`.
    pub fn revision(&self) -> Option<&str> {
        self.vcs
            .as_ref()
            .and_then(|v| v.revision.as_deref())
            .or_else(|| self.trigger_parameter(&["git", "checkout_sha"]))
            .or_else(|| self.trigger_parameter(&["github_app", "commit_sha"]))
    }

    /// The branch the pipeline ran on: `vcs.branch`, else `trigger_parameters.git.branch`.
    pub fn branch(&self) -> Option<&str> {
        self.vcs.as_ref().and_then(|v| v.branch.as_deref()).or_else(|| self.trigger_parameter(&["git", "branch"]))
    }

    /// The trigger type spellings this pipeline carries: `trigger.type` and
    /// `trigger_parameters.circleci.trigger_type`.
    pub fn trigger_types(&self) -> impl Iterator<Item = &str> {
        self.trigger
            .as_ref()
            .map(|t| t.kind.as_str())
            .into_iter()
            .chain(self.trigger_parameter(&["circleci", "trigger_type"]))
    }

    fn trigger_parameter(&self, path: &[&str]) -> Option<&str> {
        let mut value = self.trigger_parameters.as_ref()?;
        for key in path {
            value = value.get(key)?;
        }
        value.as_str()
    }
}

/// One entry of `Pipeline.errors`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PipelineError {
    /// `config`, `config-fetch`, `timeout`, `permission`, … (open).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
}

/// `Pipeline.trigger`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Trigger {
    /// `scheduled_pipeline`, `explicit`, `api`, `webhook`, `schedule`, … (open:
    /// spellings differ by integration, reference §4).
    #[serde(rename = "type")]
    pub kind: String,
    /// When CircleCI received it.
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
    /// Who triggered it.
    #[serde(default)]
    pub actor: Option<Actor>,
}

/// `Pipeline.trigger.actor`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Actor {
    /// The login.
    #[serde(default)]
    pub login: Option<String>,
}

/// `Pipeline.vcs`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Vcs {
    /// The commit SHA (nullable since 2025).
    #[serde(default)]
    pub revision: Option<String>,
    /// The branch, if built from one.
    #[serde(default)]
    pub branch: Option<String>,
    /// The tag, if built from one.
    #[serde(default)]
    pub tag: Option<String>,
}

/// `GET /pipeline/{id}/workflow` items and `GET /workflow/{id}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Workflow {
    /// The workflow's id (a rerun gets a new one).
    pub id: String,
    /// Its name in the config.
    pub name: String,
    /// Where it is.
    pub status: WorkflowStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stopped.
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Its pipeline.
    #[serde(default)]
    pub pipeline_id: Option<String>,
    /// Its pipeline's number.
    #[serde(default)]
    pub pipeline_number: Option<i64>,
    /// `setup` for a dynamic-config setup workflow.
    #[serde(default)]
    pub tag: Option<String>,
}

/// Items of `GET /workflow/{id}/job`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Job {
    /// The job's id; for an approval job also its approval request id.
    pub id: String,
    /// Its name in the workflow.
    pub name: String,
    /// `build` or `approval`.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// Where it is.
    pub status: JobStatus,
    /// Required by the spec, absent on pending jobs.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it stopped.
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Absent for blocked and pending approval jobs.
    #[serde(default)]
    pub job_number: Option<i64>,
    /// The id to approve with; falls back to `id` when absent.
    #[serde(default)]
    pub approval_request_id: Option<String>,
    /// The user id of whoever approved.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// The user id of whoever cancelled.
    #[serde(default)]
    pub canceled_by: Option<String>,
}

/// `GET /user/{id}` and `GET /me`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct User {
    /// The user id.
    #[serde(default)]
    pub id: Option<String>,
    /// The login.
    pub login: String,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The 201 answer of both trigger endpoints.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PipelineCreation {
    /// The new pipeline's id.
    pub id: String,
    /// Its state (usually `pending`).
    #[serde(default)]
    pub state: Option<PipelineState>,
    /// Its number.
    #[serde(default)]
    pub number: Option<i64>,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// A `{ "message": … }` answer (202 Accepted, 200 "no pipeline created").
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// `GET /pipeline/{id}/config`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PipelineConfig {
    /// The config before compilation.
    #[serde(default)]
    pub source: String,
    /// The config after compilation: pipeline parameters substituted.
    #[serde(default)]
    pub compiled: String,
}

/// `GET /pipeline/{id}/values`: pipeline value name → value.
pub type PipelineValues = BTreeMap<String, serde_json::Value>;

/// Body of `POST /project/{slug}/pipeline`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LegacyTrigger<'a> {
    pub(crate) branch: &'a str,
    pub(crate) parameters: &'a BTreeMap<String, serde_json::Value>,
}

/// Body of `POST /project/{provider}/{org}/{project}/pipeline/run`
/// (`additionalProperties: false` at every level: send nothing else).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunTrigger<'a> {
    pub(crate) definition_id: &'a str,
    pub(crate) config: BranchRef<'a>,
    pub(crate) checkout: BranchRef<'a>,
    pub(crate) parameters: &'a BTreeMap<String, serde_json::Value>,
}

/// `{ "branch": … }` of the run endpoint.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BranchRef<'a> {
    pub(crate) branch: &'a str,
}

/// Whether a commit matches: equal, or one a prefix (≥ 7 characters) of the other.
pub(crate) fn same_commit(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 7 && long.get(..short.len()).is_some_and(|p| p.eq_ignore_ascii_case(short))
}

/// Whether a job snapshot is final: every job ended (a finished workflow's jobs never change).
pub(crate) fn jobs_final(jobs: &[Job]) -> bool {
    !jobs.is_empty() && jobs.iter().all(|j| j.status.is_terminal())
}

/// The newest workflow of each name (reruns add workflows of the same name),
/// setup workflows of dynamic config left out.
pub(crate) fn newest_per_name(workflows: &[Workflow]) -> Vec<&Workflow> {
    let mut newest: HashMap<&str, &Workflow> = HashMap::new();
    for w in workflows.iter().filter(|w| w.tag.as_deref() != Some("setup")) {
        let keep = newest.get(w.name.as_str()).is_none_or(|n| (w.created_at, &w.id) > (n.created_at, &n.id));
        if keep {
            newest.insert(&w.name, w);
        }
    }
    let mut out: Vec<&Workflow> = newest.into_values().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The run status of one workflow status.
pub(crate) fn run_status(status: &WorkflowStatus) -> RunStatus {
    match status {
        WorkflowStatus::Success => RunStatus::Succeeded,
        WorkflowStatus::Running | WorkflowStatus::Failing | WorkflowStatus::OnHold | WorkflowStatus::Queued => {
            RunStatus::Running
        }
        WorkflowStatus::Failed | WorkflowStatus::Error | WorkflowStatus::Unauthorized => RunStatus::Failed,
        WorkflowStatus::Canceled | WorkflowStatus::NotRun => RunStatus::Cancelled,
        WorkflowStatus::Unknown(s) => RunStatus::Unknown(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_keep_their_spelling() {
        let status: WorkflowStatus = serde_json::from_str("\"paused\"").unwrap();
        assert_eq!(status, WorkflowStatus::Unknown("paused".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"paused\"");
        assert!(!status.is_terminal());
        let job: JobStatus = serde_json::from_str("\"cancelled\"").unwrap();
        assert!(job.is_terminal());
    }

    #[test]
    fn revision_falls_back_to_github_app_trigger_parameters() {
        let pipeline: Pipeline = serde_json::from_value(serde_json::json!({
            "id": "p", "created_at": "2024-12-18T17:23:29Z", "state": "created",
            "trigger": {"type": "webhook"},
            "trigger_parameters": {"git": {"checkout_sha": "abc123", "branch": "main"},
                                   "circleci": {"trigger_type": "schedule"}}
        }))
        .unwrap();
        assert_eq!(pipeline.revision(), Some("abc123"));
        assert_eq!(pipeline.branch(), Some("main"));
        assert_eq!(pipeline.trigger_types().collect::<Vec<_>>(), ["webhook", "schedule"]);
    }

    #[test]
    fn commits_match_by_prefix_of_at_least_seven() {
        assert!(same_commit("ca67134f650e362133e51a9ffdb8e5ddc7fa53a5", "ca67134"));
        assert!(same_commit("CA67134", "ca67134f650e"));
        assert!(!same_commit("ca6713", "ca67134f650e"));
        assert!(!same_commit("ca67134f", "ca67134e"));
    }
}
