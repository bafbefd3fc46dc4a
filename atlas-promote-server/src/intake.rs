//! Webhook intake: a [`WebhookSource`] per system (GitHub, CircleCI) checks a
//! delivery's signature before anything reads its body, then says what the
//! delivery asks of the engine ([`Work`]), or why it asks nothing.
//!
//! Deduplication is not the source's business: the server records every
//! verified delivery id in the store's deliveries (shared by every instance
//! and kept across restarts) and drops the ones recorded before.

use std::fmt;

use async_trait::async_trait;
use atlas_promote_core::{Candidate, Error, Notice};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// What a delivery asks of the engine.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Work {
    /// Something the engine takes into account ([`Promoter::handle`](atlas_promote_core::Promoter::handle)).
    Notice(Notice),
    /// A pull request opened or updated: a candidate under review.
    Review(Candidate),
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Received {
    /// The delivery's id, unique per source (`X-GitHub-Delivery`, CircleCI's event id).
    pub id: String,
    /// The event's kind as the source names it (`push`, `workflow-completed`).
    pub event: String,
    /// What to do; empty with `ignored` set when the service does not act on it.
    pub work: Vec<Work>,
    /// Why nothing is done, when nothing is.
    pub ignored: Option<String>,
}

impl Received {
    /// A delivery that asks for `work`.
    pub fn accepted(id: impl Into<String>, event: impl Into<String>, work: Vec<Work>) -> Self {
        Self { id: id.into(), event: event.into(), work, ignored: None }
    }

    /// A delivery the service does not act on, and why.
    pub fn ignored(id: impl Into<String>, event: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { id: id.into(), event: event.into(), work: Vec::new(), ignored: Some(reason.into()) }
    }
}

/// Why a delivery is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No signature, or a wrong one: 401, and the body is never read.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed, but not a delivery this source can read: 400.
    #[error("{0}")]
    Malformed(String),
    /// The source could not finish (a backend it asked failed): 503, so the
    /// sender redelivers later.
    #[error("{0}")]
    Failed(Error),
}

/// A system whose webhook deliveries the service takes.
#[async_trait]
pub trait WebhookSource: fmt::Debug + Send + Sync {
    /// The name in the path (`/webhooks/{name}`), in metrics and in the store's deliveries.
    fn name(&self) -> &str;

    /// Check the signature (before reading the body), then read the delivery.
    async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Received, Rejection>;
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub deliveries: `X-Hub-Signature-256` checked first; `push` to trunk
/// and `pull_request` read here, every other event by the GitHub backend's
/// receiver.
pub struct GitHubSource {
    receiver: atlas_promote_github::WebhookReceiver,
    trunk: String,
}

impl fmt::Debug for GitHubSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubSource").field("receiver", &self.receiver).field("trunk", &self.trunk).finish()
    }
}

impl GitHubSource {
    /// Deliveries checked by `receiver`, with `trunk` the trunk branch's name.
    pub fn new(receiver: atlas_promote_github::WebhookReceiver, trunk: impl Into<String>) -> Self {
        Self { receiver, trunk: trunk.into() }
    }
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    reference: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    head_commit: Option<HeadCommit>,
}

#[derive(Deserialize)]
struct HeadCommit {
    timestamp: DateTime<Utc>,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: PullRequest,
}

#[derive(Deserialize)]
struct PullRequest {
    head: Head,
    base: Head,
    user: Login,
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
    #[serde(rename = "ref")]
    reference: String,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

fn parse<'a, T: Deserialize<'a>>(event: &str, body: &'a [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body)
        .map_err(|e| Rejection::Malformed(format!("a {event} delivery that cannot be read: {e}")))
}

#[async_trait]
impl WebhookSource for GitHubSource {
    fn name(&self) -> &str {
        "github"
    }

    async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Received, Rejection> {
        self.receiver
            .verify(header(headers, "x-hub-signature-256"), body)
            .map_err(|e| Rejection::Unauthorized(e.to_string()))?;
        let id = header(headers, "x-github-delivery")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Rejection::Malformed("no X-GitHub-Delivery header".into()))?;
        let event = header(headers, "x-github-event")
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Rejection::Malformed("no X-GitHub-Event header".into()))?;
        if header(headers, "content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
            return Err(Rejection::Malformed(
                "the delivery is form-encoded: set the webhook's content type to application/json".into(),
            ));
        }
        match event {
            "ping" => Ok(Received::ignored(id, event, "a ping: the webhook is set up")),
            "push" => {
                let push: Push = parse(event, body)?;
                let trunk = format!("refs/heads/{}", self.trunk);
                if push.reference != trunk {
                    return Ok(Received::ignored(id, event, format!("a push to {}, not to trunk", push.reference)));
                }
                if push.deleted || push.after.bytes().all(|b| b == b'0') {
                    return Ok(Received::ignored(id, event, "the trunk branch was deleted"));
                }
                let at = push.head_commit.map_or_else(Utc::now, |c| c.timestamp);
                Ok(Received::accepted(id, event, vec![Work::Notice(Notice::Merged { sha: push.after, at })]))
            }
            "pull_request" => {
                let pr: PullRequestEvent = parse(event, body)?;
                if !matches!(pr.action.as_str(), "opened" | "synchronize" | "reopened") {
                    return Ok(Received::ignored(id, event, format!("pull request {}: nothing to review", pr.action)));
                }
                let base = &pr.pull_request.base.reference;
                if *base != self.trunk {
                    return Ok(Received::ignored(
                        id,
                        event,
                        format!("a pull request into {base}, not into trunk ({})", self.trunk),
                    ));
                }
                // On its way to trunk: a trunk candidate under review (the
                // review → trunk gate decides on its head), which keeps the
                // name of the branch it comes from. A branch candidate would
                // be a build for an ephemeral environment instead.
                let head = pr.pull_request.head;
                let mut candidate = Candidate::trunk(head.sha, [pr.pull_request.user.login]);
                candidate.branch = Some(head.reference);
                candidate.created_at = pr.pull_request.updated_at;
                Ok(Received::accepted(id, event, vec![Work::Review(candidate)]))
            }
            // Verified above: the receiver only reads it.
            _ => match self.receiver.interpret(event, body) {
                Ok(atlas_promote_github::Delivery::Notices(notices)) => {
                    Ok(Received::accepted(id, event, notices.into_iter().map(Work::Notice).collect()))
                }
                Ok(atlas_promote_github::Delivery::Ignored { reason, .. }) => Ok(Received::ignored(id, event, reason)),
                Ok(_) => Ok(Received::ignored(id, event, "nothing to act on")),
                Err(e) => Err(Rejection::Malformed(e.to_string())),
            },
        }
    }
}

/// CircleCI deliveries: `circleci-signature` checked first, then read by the
/// CircleCI backend's receiver (which may ask the API who approved a job).
pub struct CircleCiSource {
    receiver: atlas_promote_circleci::WebhookReceiver,
}

impl fmt::Debug for CircleCiSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleCiSource").field("receiver", &self.receiver).finish()
    }
}

impl CircleCiSource {
    /// Deliveries read by `receiver`.
    pub fn new(receiver: atlas_promote_circleci::WebhookReceiver) -> Self {
        Self { receiver }
    }
}

#[async_trait]
impl WebhookSource for CircleCiSource {
    fn name(&self) -> &str {
        "circleci"
    }

    async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Received, Rejection> {
        use atlas_promote_circleci::WebhookError;
        match self.receiver.receive(header(headers, "circleci-signature"), body).await {
            Ok(delivery) if delivery.notices.is_empty() => {
                Ok(Received::ignored(delivery.id, delivery.kind, "no job or workflow the engine follows"))
            }
            Ok(delivery) => Ok(Received::accepted(
                delivery.id,
                delivery.kind,
                delivery.notices.into_iter().map(Work::Notice).collect(),
            )),
            Err(WebhookError::Backend(e)) => Err(Rejection::Failed(e)),
            Err(e @ WebhookError::Malformed { .. }) => Err(Rejection::Malformed(e.to_string())),
            Err(e) => Err(Rejection::Unauthorized(e.to_string())),
        }
    }
}
