//! Candidates and the evidence a gate decides on (DESIGN §3, §7).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{Person, Role};

/// Where a candidate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A commit merged to trunk.
    Trunk,
    /// A build of a feature branch (an ephemeral test image).
    Branch,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Trunk => "trunk",
            Self::Branch => "branch",
        })
    }
}

/// A commit on its way through the stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// The commit SHA.
    pub sha: String,
    /// Trunk or a branch build.
    pub origin: Origin,
    /// The branch a branch build comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Everyone who authored a commit in this candidate.
    #[serde(default)]
    pub authors: Vec<Person>,
    /// When the candidate was created (merged, or built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// The image built from it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl Candidate {
    /// A trunk candidate for `sha` authored by `authors`.
    pub fn trunk<P: Into<Person>>(sha: impl Into<String>, authors: impl IntoIterator<Item = P>) -> Self {
        Self {
            sha: sha.into(),
            origin: Origin::Trunk,
            branch: None,
            authors: authors.into_iter().map(Into::into).collect(),
            created_at: None,
            image: None,
        }
    }

    /// A build of `branch` at `sha` authored by `authors`.
    pub fn branch<P: Into<Person>>(
        sha: impl Into<String>,
        branch: impl Into<String>,
        authors: impl IntoIterator<Item = P>,
    ) -> Self {
        Self { origin: Origin::Branch, branch: Some(branch.into()), ..Self::trunk(sha, authors) }
    }

    /// Whether `person` authored a commit of this candidate.
    pub fn is_author(&self, person: &str) -> bool {
        self.authors.iter().any(|a| a == person)
    }
}

/// Everything one gate decision looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The candidate moving.
    pub candidate: Candidate,
    /// Its deployment in the source stage, when that is an environment;
    /// `None`: not deployed.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// When it entered the source stage, when that is a review or trunk stage.
    #[serde(default)]
    pub entered_at: Option<DateTime<Utc>>,
    /// Results of recurring checks.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// Approval records.
    #[serde(default)]
    pub approvals: Vec<ApprovalRecord>,
}

impl Evidence {
    /// Evidence about `candidate` with nothing known yet.
    pub fn new(candidate: Candidate) -> Self {
        Self { candidate, deployment: None, entered_at: None, checks: Vec::new(), approvals: Vec::new() }
    }
}

/// A candidate's deployment into an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// When the deploy succeeded.
    pub deployed_at: DateTime<Utc>,
    /// Whether pipeline code changed, so a flush run must follow.
    #[serde(default)]
    pub flush_required: bool,
    /// When the flush run succeeded.
    #[serde(default)]
    pub flushed_at: Option<DateTime<Utc>>,
}

/// The status of one run of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Finished and passed.
    Passed,
    /// Finished and failed.
    Failed,
    /// Finished: cancelled before it could pass.
    Cancelled,
    /// Finished: the check itself broke.
    Errored,
    /// Still going.
    Running,
}

impl CheckStatus {
    /// Whether the run has finished.
    pub fn is_finished(self) -> bool {
        self != Self::Running
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Errored => "errored",
            Self::Running => "running",
        })
    }
}

/// One run of a recurring check against a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// The check's name, e.g. `integration`.
    pub name: String,
    /// The commit it ran against.
    pub sha: String,
    /// How it ended, or `running`.
    pub status: CheckStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished; `None` while running.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// What an approval record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Approves the promotion.
    Approve,
    /// Rejects it: a veto while it stands.
    Reject,
    /// Takes back the approver's earlier record.
    Withdraw,
}

impl std::fmt::Display for ApprovalDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Withdraw => "withdraw",
        })
    }
}

/// One approval, rejection or withdrawal by one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRecord {
    /// Who.
    pub approver: Person,
    /// The roles they hold now.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// The stage the promotion enters.
    pub stage: String,
    /// The commit approved.
    pub sha: String,
    /// Approve, reject or withdraw.
    pub decision: ApprovalDecision,
    /// When.
    pub at: DateTime<Utc>,
}
