//! The GitHub REST objects this backend reads, as serde types.
//!
//! Only the fields used are modelled; every other field is ignored, every
//! nullable or sometimes-absent field is an `Option`, and every enumeration
//! is open: a value GitHub adds later decodes as `Unknown(text)` instead of
//! failing (reference §2: `stale`, `startup_failure`, `waiting` and
//! `requested` all appeared after clients had closed their enums).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this library does not know, as GitHub spelled it.
            Unknown(String),
        }

        impl $name {
            /// Parse GitHub's text, ignoring ASCII case (REST and webhooks differ in case).
            pub fn parse(text: &str) -> Self {
                $(if text.eq_ignore_ascii_case($text) { return Self::$variant; })*
                Self::Unknown(text.to_owned())
            }

            /// GitHub's (lower-case) spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Unknown(text) => text,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| Self::parse(&s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// The `status` of a workflow run, a job or a check run.
    Status {
        /// Waiting for a runner.
        Queued = "queued",
        /// Running.
        InProgress = "in_progress",
        /// Finished; see the conclusion.
        Completed = "completed",
        /// Blocked on an environment's protection rules.
        Waiting = "waiting",
        /// Created, not yet queued.
        Requested = "requested",
        /// Pending (concurrency group).
        Pending = "pending",
    }
}

open_enum! {
    /// How a completed run, job or check run ended.
    Conclusion {
        /// Succeeded.
        Success = "success",
        /// Failed.
        Failure = "failure",
        /// Neither passed nor failed.
        Neutral = "neutral",
        /// Cancelled.
        Cancelled = "cancelled",
        /// Skipped.
        Skipped = "skipped",
        /// Ran out of time.
        TimedOut = "timed_out",
        /// Needs a person to act.
        ActionRequired = "action_required",
        /// Marked stale by GitHub.
        Stale = "stale",
        /// The workflow could not start.
        StartupFailure = "startup_failure",
    }
}

open_enum! {
    /// The `state` of a commit status.
    CommitState {
        /// Passed.
        Success = "success",
        /// Failed.
        Failure = "failure",
        /// The check broke.
        Error = "error",
        /// Not finished.
        Pending = "pending",
    }
}

open_enum! {
    /// A pull-request review's `state` (upper case in REST, lower case in webhooks).
    ReviewState {
        /// Approved.
        Approved = "approved",
        /// Changes requested: a rejection.
        ChangesRequested = "changes_requested",
        /// A comment only.
        Commented = "commented",
        /// Dismissed: the review no longer counts.
        Dismissed = "dismissed",
        /// Not submitted yet.
        Pending = "pending",
    }
}

open_enum! {
    /// The `state` of a team membership.
    MembershipState {
        /// A member.
        Active = "active",
        /// Invited, not yet a member.
        Pending = "pending",
    }
}

open_enum! {
    /// How the head of a comparison relates to its base.
    ComparisonStatus {
        /// Head descends from base.
        Ahead = "ahead",
        /// Base descends from head.
        Behind = "behind",
        /// Neither descends from the other.
        Diverged = "diverged",
        /// The same commit.
        Identical = "identical",
    }
}

open_enum! {
    /// What happened to a file in a comparison.
    FileStatus {
        /// Added.
        Added = "added",
        /// Removed.
        Removed = "removed",
        /// Modified.
        Modified = "modified",
        /// Renamed (see `previous_filename`).
        Renamed = "renamed",
        /// Copied.
        Copied = "copied",
        /// Changed (mode).
        Changed = "changed",
        /// Unchanged.
        Unchanged = "unchanged",
    }
}

open_enum! {
    /// The `state` of a deployment status.
    DeploymentState {
        /// The deployment broke.
        Error = "error",
        /// The deployment failed.
        Failure = "failure",
        /// Superseded by a later deployment.
        Inactive = "inactive",
        /// Deploying.
        InProgress = "in_progress",
        /// Queued.
        Queued = "queued",
        /// Pending.
        Pending = "pending",
        /// Deployed.
        Success = "success",
    }
}

open_enum! {
    /// The `state` of an environment deployment review.
    EnvironmentReviewState {
        /// Approved.
        Approved = "approved",
        /// Rejected.
        Rejected = "rejected",
        /// Not reviewed yet.
        Pending = "pending",
    }
}

/// A GitHub user (simple-user).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct User {
    /// The login (can be renamed; `id` cannot).
    pub login: String,
    /// The stable id.
    pub id: u64,
    /// `User`, `Bot` or `Organization`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A GitHub Actions workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    /// The run id (kept across re-runs).
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The rendered `run-name`: where the correlation key appears.
    #[serde(default)]
    pub display_title: Option<String>,
    /// Where it is.
    #[serde(default)]
    pub status: Option<Status>,
    /// How it ended, once completed.
    #[serde(default)]
    pub conclusion: Option<Conclusion>,
    /// The commit the workflow ran on.
    pub head_sha: String,
    /// The branch the workflow ran on.
    #[serde(default)]
    pub head_branch: Option<String>,
    /// What triggered it (`workflow_dispatch`, `push`, …).
    #[serde(default)]
    pub event: Option<String>,
    /// The run's page.
    #[serde(default)]
    pub html_url: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (its end, once completed).
    pub updated_at: DateTime<Utc>,
    /// When the current attempt started.
    #[serde(default)]
    pub run_started_at: Option<DateTime<Utc>>,
    /// The attempt number.
    #[serde(default)]
    pub run_attempt: Option<u32>,
    /// The workflow's id.
    #[serde(default)]
    pub workflow_id: Option<u64>,
}

/// A job of a workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    /// The job id.
    pub id: u64,
    /// The run it belongs to.
    pub run_id: u64,
    /// The job's name.
    pub name: String,
    /// Where it is.
    pub status: Status,
    /// How it ended.
    #[serde(default)]
    pub conclusion: Option<Conclusion>,
    /// The commit.
    pub head_sha: String,
    /// When it started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// The job's page.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// The answer to a dispatch with `return_run_details`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct DispatchResponse {
    pub(crate) workflow_run_id: u64,
    #[serde(default)]
    pub(crate) html_url: Option<String>,
}

/// The app that posted a check run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct App {
    /// The app id.
    pub id: u64,
    /// The app's slug, e.g. `github-actions`.
    #[serde(default)]
    pub slug: Option<String>,
}

/// A check run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckRun {
    /// The check run id.
    pub id: u64,
    /// The check's name (for Actions, the job's name).
    pub name: String,
    /// The commit checked.
    pub head_sha: String,
    /// Where it is.
    pub status: Status,
    /// How it ended.
    #[serde(default)]
    pub conclusion: Option<Conclusion>,
    /// When it started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// The app that posted it.
    #[serde(default)]
    pub app: Option<App>,
}

/// One commit status (the older Status API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommitStatus {
    /// The status id.
    pub id: u64,
    /// Its state.
    pub state: CommitState,
    /// The context: the check's name.
    #[serde(default)]
    pub context: String,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// When it was updated.
    pub updated_at: DateTime<Utc>,
}

/// A pull-request review.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Review {
    /// The review id.
    pub id: u64,
    /// The reviewer; `None` for a deleted account.
    #[serde(default)]
    pub user: Option<User>,
    /// Its state.
    pub state: ReviewState,
    /// The commit reviewed; `None` if it was garbage-collected.
    #[serde(default)]
    pub commit_id: Option<String>,
    /// When it was submitted (absent while pending).
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
}

/// A branch end of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestRef {
    /// The commit.
    pub sha: String,
    /// The branch.
    #[serde(rename = "ref")]
    pub branch: String,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    /// The number.
    pub number: u64,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
    /// The author.
    #[serde(default)]
    pub user: Option<User>,
    /// The head branch and commit.
    pub head: PullRequestRef,
    /// The base branch.
    pub base: PullRequestRef,
    /// When it was opened.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it was merged, if it was.
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
}

/// A team membership.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct TeamMembership {
    pub(crate) state: MembershipState,
}

/// The author or committer line of a git commit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct GitActor {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct GitCommit {
    #[serde(default)]
    pub(crate) author: Option<GitActor>,
}

/// A commit in a comparison or a commit list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Commit {
    pub(crate) commit: GitCommit,
    /// The GitHub account of the author, when the email maps to one.
    #[serde(default)]
    pub(crate) author: Option<User>,
}

/// A file of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct DiffEntry {
    pub(crate) filename: String,
    #[allow(dead_code)]
    pub(crate) status: FileStatus,
    #[serde(default)]
    pub(crate) previous_filename: Option<String>,
}

/// A comparison of two commits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Comparison {
    pub(crate) status: ComparisonStatus,
    #[serde(default)]
    pub(crate) commits: Vec<Commit>,
    #[serde(default)]
    pub(crate) files: Vec<DiffEntry>,
}

/// A deployment environment as other objects reference it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Environment {
    /// The environment id (what pending-deployment reviews take).
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// A deployment of a run waiting for an environment's reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PendingDeployment {
    /// The environment.
    pub environment: Environment,
    /// Whether the token's user may approve it.
    #[serde(default)]
    pub current_user_can_approve: bool,
    /// Minutes of the environment's wait timer.
    #[serde(default)]
    pub wait_timer: Option<u64>,
}

/// One entry of a run's environment review history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnvironmentApproval {
    /// Approved or rejected.
    pub state: EnvironmentReviewState,
    /// The reviewer's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// The environments reviewed.
    #[serde(default)]
    pub environments: Vec<Environment>,
    /// The reviewer.
    pub user: User,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deployment {
    /// The deployment id.
    pub id: u64,
    /// The commit deployed.
    pub sha: String,
    /// The environment.
    pub environment: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A status of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeploymentStatus {
    /// The status id.
    pub id: u64,
    /// Its state.
    pub state: DeploymentState,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_keep_unknown_values_and_ignore_case() {
        assert_eq!(ReviewState::parse("CHANGES_REQUESTED"), ReviewState::ChangesRequested);
        assert_eq!(ReviewState::parse("approved"), ReviewState::Approved);
        assert_eq!(Status::parse("requested"), Status::Requested);
        let c: Conclusion = serde_json::from_str(r#""exploded""#).unwrap();
        assert_eq!(c, Conclusion::Unknown("exploded".into()));
        assert_eq!(serde_json::to_string(&c).unwrap(), r#""exploded""#);
    }
}
