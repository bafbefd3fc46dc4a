//! Webhooks: verify `X-Hub-Signature-256` in constant time *before* parsing,
//! drop redeliveries by `X-GitHub-Delivery`, and turn the events a promotion
//! cares about into core [`Notice`]s (reference §4).
//!
//! Parsing does no I/O: it is safe to call in a webhook handler, which should
//! answer GitHub within 10 seconds and act on the notices afterwards.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;

use atlas_promote_core::{
    ApprovalDecision, ApprovalRecord, CheckResult, CheckStatus, Error, Notice, Result, RunId, RunStatus,
};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::actions::{key_in_title, key_parts, run_status};
use crate::checks::{check_run_result, conclusion_status};
use crate::model::{CheckRun, Conclusion, DeploymentState, Job, ReviewState, Status, User, WorkflowRun};
use crate::reviews::decision;

/// Delivery ids remembered by default.
const DEFAULT_DEDUP_CAPACITY: usize = 4096;

/// What a verified delivery amounts to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Delivery {
    /// The notices the event carries (possibly none: a comment-only review).
    Notices(Vec<Notice>),
    /// A redelivery of an id already handled: nothing to do.
    Duplicate,
    /// An event or action atlas-promote does not act on.
    Ignored {
        /// The event name.
        event: String,
        /// Why it is ignored.
        reason: String,
    },
}

/// Receives GitHub webhook deliveries for one secret.
pub struct WebhookReceiver {
    secret: SecretString,
    review_stage: String,
    environments: BTreeMap<String, String>,
    seen: Mutex<Seen>,
}

impl fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("secret", &"<redacted>")
            .field("review_stage", &self.review_stage)
            .field("environments", &self.environments)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Seen {
    capacity: usize,
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Seen {
    /// Remember `id`; `false` when it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.ids.insert(id.to_owned());
        true
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

impl WebhookReceiver {
    /// A receiver verifying with the webhook's `secret`.
    pub fn new(secret: impl Into<SecretString>) -> Self {
        Self {
            secret: secret.into(),
            review_stage: "trunk".into(),
            environments: BTreeMap::new(),
            seen: Mutex::new(Seen { capacity: DEFAULT_DEDUP_CAPACITY, order: VecDeque::new(), ids: HashSet::new() }),
        }
    }

    /// The stage pull-request reviews approve entry into (default `trunk`).
    pub fn with_review_stage(mut self, stage: impl Into<String>) -> Self {
        self.review_stage = stage.into();
        self
    }

    /// Stage `stage` is the GitHub environment `environment` (default: the same name).
    pub fn with_environment(mut self, stage: impl Into<String>, environment: impl Into<String>) -> Self {
        self.environments.insert(stage.into(), environment.into());
        self
    }

    /// How many delivery ids are remembered to drop redeliveries (default 4096; the oldest go first).
    pub fn with_dedup_capacity(self, capacity: usize) -> Self {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).capacity = capacity.max(1);
        self
    }

    /// Check `X-Hub-Signature-256` (`sha256=<hex HMAC-SHA256 of the raw body>`)
    /// in constant time. A missing, malformed or wrong signature is [`Error::Refused`].
    pub fn verify(&self, signature: Option<&str>, body: &[u8]) -> Result<()> {
        let refused = |reason: &str| Error::Refused { reason: format!("webhook delivery: {reason}") };
        let signature = signature.ok_or_else(|| refused("no X-Hub-Signature-256 header"))?;
        let hex = signature.trim().strip_prefix("sha256=").ok_or_else(|| refused("the signature is not sha256=…"))?;
        let expected = decode_hex(hex).ok_or_else(|| refused("the signature is not hex"))?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|_| refused("unusable secret"))?;
        mac.update(body);
        mac.verify_slice(&expected).map_err(|_| refused("the signature does not match"))
    }

    /// Handle one delivery: verify, drop it if its id was seen, parse.
    pub fn receive(&self, event: &str, delivery: &str, signature: Option<&str>, body: &[u8]) -> Result<Delivery> {
        self.verify(signature, body)?;
        if !delivery.is_empty() && self.seen.lock().unwrap_or_else(|p| p.into_inner()).contains(delivery) {
            return Ok(Delivery::Duplicate);
        }
        let parsed = self.interpret(event, body)?;
        if !delivery.is_empty() && !self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(delivery) {
            return Ok(Delivery::Duplicate);
        }
        Ok(parsed)
    }

    /// What a delivery whose signature the caller has already checked
    /// ([`verify`](Self::verify)) amounts to, with no deduplication: for a
    /// caller that records delivery ids itself (in the store's deliveries).
    ///
    /// An error's message never holds the webhook secret or a credential
    /// header's value, even when the payload quotes them.
    pub fn interpret(&self, event: &str, body: &[u8]) -> Result<Delivery> {
        let payload = serde_json::from_slice::<Value>(body).map_err(|e| malformed(event, e));
        payload.and_then(|payload| self.parse(event, &payload)).map_err(|e| match e {
            Error::Invalid { what, message } => Error::Invalid {
                what,
                message: atlas_promote_core::Error::redact_secrets(&message, [self.secret.expose_secret()]),
            },
            other => other,
        })
    }

    /// [`receive`](Self::receive) reading `X-GitHub-Event`, `X-GitHub-Delivery`
    /// and `X-Hub-Signature-256` from the request's headers.
    pub fn receive_headers(&self, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Result<Delivery> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        self.receive(
            get("x-github-event").unwrap_or_default(),
            get("x-github-delivery").unwrap_or_default(),
            get("x-hub-signature-256"),
            body,
        )
    }

    fn stage_of<'a>(&'a self, environment: &'a str) -> &'a str {
        self.environments.iter().find(|(_, env)| *env == environment).map_or(environment, |(stage, _)| stage.as_str())
    }

    fn parse(&self, event: &str, payload: &Value) -> Result<Delivery> {
        let action = payload.get("action").and_then(Value::as_str).unwrap_or_default();
        let ignored = |reason: &str| Ok(Delivery::Ignored { event: event.to_owned(), reason: reason.to_owned() });
        let notices = match event {
            "workflow_run" => {
                let run: WorkflowRun = field(event, payload, "workflow_run")?;
                vec![run_changed(&run, run_status(run.status.as_ref(), run.conclusion.as_ref()), run.updated_at)]
            }
            "workflow_job" => {
                let job: Job = field(event, payload, "workflow_job")?;
                let Some(started_at) = job.started_at else { return ignored("the job has not started") };
                let (status, finished_at) = match (&job.status, &job.conclusion) {
                    (Status::Completed, Some(c)) => {
                        (conclusion_status(c), Some(job.completed_at.unwrap_or(started_at)))
                    }
                    (Status::Completed, None) => (CheckStatus::Errored, Some(job.completed_at.unwrap_or(started_at))),
                    _ => (CheckStatus::Running, None),
                };
                vec![Notice::CheckReported(CheckResult {
                    name: job.name,
                    sha: job.head_sha,
                    status,
                    started_at,
                    finished_at,
                })]
            }
            "deployment_review" => self.deployment_review(event, action, payload)?,
            "deployment_protection_rule" => {
                if action != "requested" {
                    return ignored("only `requested` asks for an answer");
                }
                let environment: String = field(event, payload, "environment")?;
                let reply_to: String = field(event, payload, "deployment_callback_url")?;
                let sha: String = payload
                    .pointer("/deployment/sha")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| missing(event, "deployment.sha"))?;
                vec![Notice::GateRequested { stage: self.stage_of(&environment).to_owned(), sha, reply_to }]
            }
            "pull_request_review" => {
                #[derive(Deserialize)]
                struct PayloadReview {
                    user: Option<User>,
                    state: ReviewState,
                    commit_id: Option<String>,
                    submitted_at: Option<DateTime<Utc>>,
                }
                let review: PayloadReview = field(event, payload, "review")?;
                let Some(decision) = decision(&review.state) else { return Ok(Delivery::Notices(Vec::new())) };
                let (Some(user), Some(sha)) = (review.user, review.commit_id) else {
                    return ignored("the review has no user or commit");
                };
                // A dismissal happens after the review it dismisses; the payload's
                // review keeps its original time, the pull request's update is the dismissal.
                let at = if decision == ApprovalDecision::Withdraw {
                    payload.pointer("/pull_request/updated_at").and_then(|v| v.as_str()).and_then(|v| v.parse().ok())
                } else {
                    None
                }
                .or(review.submitted_at)
                .ok_or_else(|| missing(event, "review.submitted_at"))?;
                vec![Notice::ApprovalReported(ApprovalRecord {
                    approver: user.login,
                    roles: Vec::new(),
                    stage: self.review_stage.clone(),
                    sha,
                    decision,
                    at,
                })]
            }
            "check_run" => {
                let run: CheckRun = field(event, payload, "check_run")?;
                match check_run_result(&run) {
                    Some(result) => vec![Notice::CheckReported(result)],
                    None => return ignored("the check run has not started"),
                }
            }
            "check_suite" => {
                #[derive(Deserialize)]
                struct Suite {
                    head_sha: String,
                    status: Option<Status>,
                    conclusion: Option<Conclusion>,
                    app: Option<SuiteApp>,
                    created_at: Option<DateTime<Utc>>,
                    updated_at: Option<DateTime<Utc>>,
                }
                #[derive(Deserialize)]
                struct SuiteApp {
                    slug: Option<String>,
                    name: Option<String>,
                }
                let suite: Suite = field(event, payload, "check_suite")?;
                let Some(name) = suite.app.and_then(|a| a.slug.or(a.name)) else {
                    return ignored("the suite names no app");
                };
                let Some(started_at) = suite.created_at else { return ignored("the suite has no creation time") };
                let (status, finished_at) = match (&suite.status, &suite.conclusion) {
                    (Some(Status::Completed), Some(c)) => (conclusion_status(c), suite.updated_at.or(Some(started_at))),
                    _ => (CheckStatus::Running, None),
                };
                vec![Notice::CheckReported(CheckResult { name, sha: suite.head_sha, status, started_at, finished_at })]
            }
            "deployment_status" => {
                let Some(run) = payload.get("workflow_run").filter(|v| v.is_object()) else {
                    return ignored("not a deployment of a workflow run");
                };
                let run: WorkflowRun = serde_json::from_value(run.clone()).map_err(|e| malformed(event, e))?;
                let state: DeploymentState = field(event, &payload["deployment_status"], "state")?;
                let status = match state {
                    DeploymentState::Success => RunStatus::Succeeded,
                    DeploymentState::Failure | DeploymentState::Error => RunStatus::Failed,
                    DeploymentState::InProgress => RunStatus::Running,
                    DeploymentState::Queued | DeploymentState::Pending => RunStatus::Pending,
                    DeploymentState::Inactive => return ignored("an inactive deployment says nothing about its run"),
                    DeploymentState::Unknown(s) => RunStatus::Unknown(s),
                };
                let at = payload
                    .pointer("/deployment_status/updated_at")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(run.updated_at);
                vec![run_changed(&run, status, at)]
            }
            _ => return ignored("not an event atlas-promote acts on"),
        };
        Ok(Delivery::Notices(notices))
    }

    fn deployment_review(&self, event: &str, action: &str, payload: &Value) -> Result<Vec<Notice>> {
        let run: WorkflowRun = field(event, payload, "workflow_run")?;
        let environment: String = field(event, payload, "environment")?;
        let since: Option<DateTime<Utc>> = payload.get("since").and_then(Value::as_str).and_then(|v| v.parse().ok());
        let decision = match action {
            "requested" => return Ok(vec![run_changed(&run, RunStatus::Pending, since.unwrap_or(run.updated_at))]),
            "approved" => ApprovalDecision::Approve,
            "rejected" => ApprovalDecision::Reject,
            _ => return Ok(Vec::new()),
        };
        let approver: User = field(event, payload, "approver")?;
        // The candidate's commit is in the key (a dispatched run's head is the dispatch branch).
        let key = run.display_title.as_deref().and_then(key_in_title);
        let sha =
            key.as_ref().and_then(|k| key_parts(k).map(|(sha, _)| sha.to_owned())).unwrap_or(run.head_sha.clone());
        let at = payload
            .get("workflow_job_runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(payload.get("workflow_job_run"))
            .filter_map(|job| job.get("updated_at")?.as_str()?.parse::<DateTime<Utc>>().ok())
            .max()
            .or(since)
            .unwrap_or(run.updated_at);
        Ok(vec![Notice::ApprovalReported(ApprovalRecord {
            approver: approver.login,
            roles: Vec::new(),
            stage: self.stage_of(&environment).to_owned(),
            sha,
            decision,
            at,
        })])
    }
}

fn run_changed(run: &WorkflowRun, status: RunStatus, at: DateTime<Utc>) -> Notice {
    Notice::RunChanged {
        run: RunId(run.id.to_string()),
        key: run.display_title.as_deref().and_then(key_in_title),
        status,
        at,
    }
}

fn field<T: serde::de::DeserializeOwned>(event: &str, payload: &Value, name: &str) -> Result<T> {
    let value = payload.get(name).ok_or_else(|| missing(event, name))?;
    serde_json::from_value(value.clone()).map_err(|e| malformed(event, format!("{name}: {e}")))
}

fn missing(event: &str, name: &str) -> Error {
    Error::Invalid { what: format!("{event} webhook payload"), message: format!("no {name}") }
}

fn malformed(event: &str, e: impl fmt::Display) -> Error {
    Error::Invalid { what: format!("{event} webhook payload"), message: e.to_string() }
}

/// Lower- or upper-case hex, two digits a byte; nothing else (`from_str_radix`
/// alone would take a sign, `+a` for `0a`).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}
