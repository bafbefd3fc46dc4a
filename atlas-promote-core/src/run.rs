//! CI runs as the engine asks for them and as CI systems report them:
//! the request to deploy or flush, the key that makes it idempotent, and
//! the run's status.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::Candidate;

/// What a CI run does for a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Deploy the candidate into the stage.
    Deploy,
    /// Run the flush after a deploy that changed pipeline code.
    Flush,
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deploy => "deploy",
            Self::Flush => "flush",
        })
    }
}

/// The key that makes a trigger idempotent: derived from (candidate, stage,
/// run kind, attempt), so the same step is never started twice.
///
/// Backends pass it to the CI system (a pipeline parameter, a workflow input)
/// and find runs by it after a crash. It contains only `[A-Za-z0-9._-]`
/// and is at most 100 characters long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of attempt `attempt` of the `kind` run of `sha` in `stage`.
    pub fn new(sha: &str, stage: &str, kind: RunKind, attempt: u32) -> Self {
        // Built in place: a trigger's key is made again each time its run is looked for.
        let mut key = String::with_capacity(100);
        key.push_str("atlas.");
        let mut clean = |s: &str, max: usize| {
            for c in s.chars().take(max) {
                key.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' });
            }
            key.push('.');
        };
        clean(sha, 40);
        clean(stage, 40);
        // Writing to a String cannot fail.
        let _ = write!(key, "{kind}.{attempt}");
        Self(key)
    }

    /// A key read back from a CI system; `None` unless it has the shape [`IdempotencyKey::new`] makes.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.starts_with("atlas.")
            && text.len() <= 100
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        ok.then(|| Self(text.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A CI system's identifier of a run (a pipeline id, a workflow run id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run is, mapped from whatever the CI system says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not started.
    Pending,
    /// Going.
    Running,
    /// Finished and succeeded.
    Succeeded,
    /// Finished and failed.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
    /// A status this library does not know, as the CI system spelled it.
    Unknown(String),
}

impl RunStatus {
    /// Whether the run has ended (succeeded, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending => f.write_str("pending"),
            Self::Running => f.write_str("running"),
            Self::Succeeded => f.write_str("succeeded"),
            Self::Failed => f.write_str("failed"),
            Self::Cancelled => f.write_str("cancelled"),
            Self::Unknown(s) => write!(f, "unknown ({s})"),
        }
    }
}

/// A request to run a deploy or flush workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Makes the trigger idempotent; pass it to the CI system.
    pub key: IdempotencyKey,
    /// Deploy or flush.
    pub kind: RunKind,
    /// The stage deployed to.
    pub stage: String,
    /// The candidate deployed.
    pub candidate: Candidate,
    /// The workflow to run, from the policy.
    pub workflow: String,
    /// The workflow's parameters, from the policy.
    pub parameters: BTreeMap<String, String>,
}

/// A run as the CI system reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The CI system's id.
    pub id: RunId,
    /// The idempotency key it was started with.
    pub key: IdempotencyKey,
    /// Where it is.
    pub status: RunStatus,
    /// A link a person can open, if the CI system has one.
    pub url: Option<String>,
    /// When it finished, once it has.
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_keeps_its_shape() {
        // The shape keys had when CI systems stored them: a key must find the run it started.
        let before = |sha: &str, stage: &str, kind: RunKind, attempt: u32| {
            let clean = |s: &str, max: usize| -> String {
                s.chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                    .take(max)
                    .collect()
            };
            format!("atlas.{}.{}.{kind}.{attempt}", clean(sha, 40), clean(stage, 40))
        };
        let long = "x".repeat(60);
        for sha in ["9fceb02", "", "a.b/c d", "ünïcødé-sha_1", long.as_str()] {
            for stage in ["prod", "", "eph/feature x", "stägé", long.as_str()] {
                for (kind, attempt) in [(RunKind::Deploy, 1), (RunKind::Flush, 12), (RunKind::Deploy, u32::MAX)] {
                    let key = IdempotencyKey::new(sha, stage, kind, attempt);
                    assert_eq!(key.as_str(), before(sha, stage, kind, attempt));
                }
            }
        }
    }
}
