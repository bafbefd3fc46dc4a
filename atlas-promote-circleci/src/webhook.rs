//! Receiving CircleCI outbound webhooks (`workflow-completed`, `job-completed`).
//!
//! A delivery is accepted only with a valid `circleci-signature` header:
//! `v1=<hex HMAC-SHA256 of the raw body, keyed with the signing secret>`,
//! possibly among other versions (`v1=…,v2=…`). The signature is checked in
//! constant time, before the body is parsed. A delivery CircleCI repeats (same
//! `id`) is answered as a duplicate with no notices.
//!
//! ```
//! use atlas_promote_circleci::webhook::{WebhookError, verify_signature};
//!
//! let body = b"hello world";
//! let header = "v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a";
//! assert!(verify_signature(b"secret", Some(header), body).is_ok());
//! assert!(matches!(verify_signature(b"secret", None, body), Err(WebhookError::MissingSignature)));
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;

use atlas_promote_core::{Notice, Result as CoreResult};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::checks::check_result;
use crate::model::{JobStatus, Vcs, Workflow, WorkflowStatus, run_status};
use crate::{CircleCi, lock};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "circleci-signature";
/// The header naming the event type.
pub const EVENT_TYPE_HEADER: &str = "circleci-event-type";

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No `circleci-signature` header, or no `v1=` in it: answer 401.
    #[error("missing circleci-signature v1")]
    MissingSignature,
    /// A signature that does not match the body: answer 401.
    #[error("invalid circleci-signature")]
    InvalidSignature,
    /// Signed, but not a webhook payload this crate can read: answer 400.
    #[error("malformed webhook payload: {message}")]
    Malformed {
        /// What is wrong.
        message: String,
    },
    /// Reading more through the API failed: answer 5xx so CircleCI redelivers.
    #[error(transparent)]
    Backend(#[from] atlas_promote_core::Error),
}

/// Check a `circleci-signature` header against the raw body, in constant time.
///
/// Every `v1=` entry of the comma-separated header is tried; other versions are ignored.
pub fn verify_signature(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(WebhookError::MissingSignature)?;
    let v1: Vec<&str> = header
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .filter(|(version, _)| version.trim() == "v1")
        .map(|(_, value)| value.trim())
        .collect();
    if v1.is_empty() {
        return Err(WebhookError::MissingSignature);
    }
    for candidate in v1 {
        let Some(expected) = decode_hex(candidate) else { continue };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::InvalidSignature)?;
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(WebhookError::InvalidSignature)
}

/// Lower- or upper-case hex, two digits a byte; nothing else (`from_str_radix`
/// alone would take a sign, `+a` for `0a`).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// A webhook payload (reference §8). Open: unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct WebhookEvent {
    /// The delivery's id: repeated deliveries share it.
    pub id: String,
    /// `workflow-completed`, `job-completed`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened.
    pub happened_at: DateTime<Utc>,
    /// The workflow (both event types).
    #[serde(default)]
    pub workflow: Option<EventWorkflow>,
    /// The pipeline.
    #[serde(default)]
    pub pipeline: Option<EventPipeline>,
    /// The job (`job-completed`).
    #[serde(default)]
    pub job: Option<EventJob>,
}

/// `workflow` of a webhook payload.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct EventWorkflow {
    /// The workflow id.
    pub id: String,
    /// Its name (empty in some GitHub App samples).
    #[serde(default)]
    pub name: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it stopped.
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Its status (absent on `job-completed`).
    #[serde(default)]
    pub status: Option<WorkflowStatus>,
    /// A link to it.
    #[serde(default)]
    pub url: Option<String>,
}

/// `pipeline` of a webhook payload.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct EventPipeline {
    /// The pipeline id: a run's [`RunId`](atlas_promote_core::RunId).
    pub id: String,
    /// Its number.
    #[serde(default)]
    pub number: Option<i64>,
    /// What triggered it.
    #[serde(default)]
    pub trigger: Option<EventTrigger>,
    /// GitHub App / GitLab / Bitbucket DC trigger data.
    #[serde(default)]
    pub trigger_parameters: Option<serde_json::Value>,
    /// The commit (GitHub OAuth, Bitbucket Cloud).
    #[serde(default)]
    pub vcs: Option<Vcs>,
}

/// `pipeline.trigger` of a webhook payload.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct EventTrigger {
    /// The trigger type (`webhook`, `schedule`, `api`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// `job` of a `job-completed` payload.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct EventJob {
    /// The job id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its status.
    pub status: JobStatus,
    /// When it started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it stopped.
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
}

impl EventPipeline {
    fn as_pipeline(&self, at: DateTime<Utc>) -> crate::model::Pipeline {
        crate::model::Pipeline {
            id: self.id.clone(),
            number: self.number,
            project_slug: None,
            created_at: at,
            state: crate::model::PipelineState::Created,
            errors: Vec::new(),
            trigger: self.trigger.as_ref().map(|t| crate::model::Trigger {
                kind: t.kind.clone(),
                received_at: None,
                actor: None,
            }),
            trigger_parameters: self.trigger_parameters.clone(),
            vcs: self.vcs.clone(),
        }
    }
}

impl EventWorkflow {
    fn as_workflow(&self, pipeline: Option<&EventPipeline>, at: DateTime<Utc>) -> Workflow {
        Workflow {
            id: self.id.clone(),
            name: self.name.clone(),
            status: self.status.clone().unwrap_or(WorkflowStatus::Running),
            created_at: self.created_at.unwrap_or(at),
            stopped_at: self.stopped_at,
            pipeline_id: pipeline.map(|p| p.id.clone()),
            pipeline_number: pipeline.and_then(|p| p.number),
            tag: None,
        }
    }
}

/// What a delivery said.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Delivery {
    /// The delivery id.
    pub id: String,
    /// The event type.
    pub kind: String,
    /// `true` when this id was seen before: nothing was done again.
    pub duplicate: bool,
    /// What the engine should take into account.
    pub notices: Vec<Notice>,
}

/// Receives webhook deliveries for a [`CircleCi`] backend. Get one with
/// [`CircleCi::webhook_receiver`].
pub struct WebhookReceiver {
    circleci: CircleCi,
    secret: SecretString,
    seen: Mutex<Seen>,
}

impl fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookReceiver").field("secret", &"[redacted]").finish_non_exhaustive()
    }
}

/// The last `capacity` deliveries handled: their ids, and the SHA-256 of
/// their bodies with what a duplicate answer needs (a replay of a delivery
/// is the same body under the same signature, so it is known before the
/// body is parsed).
#[derive(Debug)]
struct Seen {
    order: VecDeque<(String, [u8; 32])>,
    ids: HashSet<String>,
    bodies: HashMap<[u8; 32], (String, String)>,
    capacity: usize,
}

impl Seen {
    fn new(capacity: usize) -> Self {
        Self { order: VecDeque::new(), ids: HashSet::new(), bodies: HashMap::new(), capacity }
    }

    /// The id and kind of the handled delivery whose body this is.
    fn by_body(&self, digest: &[u8; 32]) -> Option<(String, String)> {
        self.bodies.get(digest).cloned()
    }

    fn insert(&mut self, id: &str, kind: &str, digest: [u8; 32]) {
        if self.capacity == 0 || !self.ids.insert(id.to_owned()) {
            return;
        }
        self.bodies.insert(digest, (id.to_owned(), kind.to_owned()));
        self.order.push_back((id.to_owned(), digest));
        while self.order.len() > self.capacity {
            if let Some((old, digest)) = self.order.pop_front() {
                self.ids.remove(&old);
                self.bodies.remove(&digest);
            }
        }
    }
}

impl CircleCi {
    /// A webhook receiver checking signatures with `signing_secret` (the
    /// secret set on the webhook in Project Settings › Webhooks), remembering
    /// the last 1024 delivery ids.
    pub fn webhook_receiver(&self, signing_secret: impl Into<String>) -> WebhookReceiver {
        WebhookReceiver {
            circleci: self.clone(),
            secret: SecretString::from(signing_secret.into()),
            seen: Mutex::new(Seen::new(1024)),
        }
    }
}

impl WebhookReceiver {
    /// Remember the last `capacity` delivery ids instead of 1024.
    pub fn with_dedup_capacity(self, capacity: usize) -> Self {
        lock(&self.seen).capacity = capacity;
        self
    }

    /// Verify, parse and interpret one delivery: `signature` is the
    /// `circleci-signature` header, `body` the raw request body.
    ///
    /// - `workflow-completed` of a check workflow on trunk (scheduled, if so
    ///   configured) → [`Notice::CheckReported`]; of any other workflow →
    ///   [`Notice::RunChanged`] for its pipeline (a hint: the run's status is
    ///   that of its workflows together; ask [`status`](atlas_promote_core::CiProvider::status));
    /// - `job-completed` of an approval job (`approve-<stage>…`) →
    ///   [`Notice::ApprovalReported`], reading the job through the API for
    ///   who approved (one request; the payload does not say);
    /// - anything else → no notice.
    ///
    /// The id is remembered only once the delivery was handled, so a delivery
    /// that failed with [`WebhookError::Backend`] is handled again when redelivered.
    ///
    /// A replay (the same body under the same signature) of a delivery
    /// handled before is answered as a duplicate once its signature is
    /// checked, without parsing the body: CircleCI puts the delivery id only
    /// inside it. A redelivery with the same `id` and another body is a
    /// duplicate too, once parsed.
    pub async fn receive(&self, signature: Option<&str>, body: &[u8]) -> Result<Delivery, WebhookError> {
        verify_signature(self.secret.expose_secret().as_bytes(), signature, body)?;
        let digest: [u8; 32] = Sha256::digest(body).into();
        if let Some((id, kind)) = lock(&self.seen).by_body(&digest) {
            return Ok(Delivery { id, kind, duplicate: true, notices: Vec::new() });
        }
        let event: WebhookEvent = serde_json::from_slice(body)
            .map_err(|e| WebhookError::Malformed { message: self.redact(&e.to_string()) })?;
        if lock(&self.seen).ids.contains(&event.id) {
            return Ok(Delivery { id: event.id, kind: event.kind, duplicate: true, notices: Vec::new() });
        }
        let notices = self.notices(&event).await?;
        lock(&self.seen).insert(&event.id, &event.kind, digest);
        Ok(Delivery { id: event.id, kind: event.kind, duplicate: false, notices })
    }

    /// `text` with the signing secret, the API token and any credential
    /// header's value redacted (serde quotes the payload's strings).
    fn redact(&self, text: &str) -> String {
        self.circleci
            .inner
            .client
            .redact(&atlas_promote_core::Error::redact_secrets(text, [self.secret.expose_secret()]))
    }

    async fn notices(&self, event: &WebhookEvent) -> CoreResult<Vec<Notice>> {
        let s = &self.circleci.inner.settings;
        let pipeline = event.pipeline.as_ref().map(|p| p.as_pipeline(event.happened_at));
        let sha = pipeline.as_ref().and_then(|p| p.revision()).map(str::to_owned);
        let on_trunk = pipeline.as_ref().and_then(|p| p.branch()) == Some(s.trunk_branch.as_str());
        let (Some(workflow), Some(pipeline)) = (&event.workflow, pipeline) else { return Ok(Vec::new()) };
        let workflow = workflow.as_workflow(event.pipeline.as_ref(), event.happened_at);
        match event.kind.as_str() {
            "workflow-completed" => {
                let check = s.check_for_workflow(&workflow.name);
                if let (Some(check), Some(sha)) = (check, &sha)
                    && on_trunk
                    && (!s.scheduled_checks_only || s.is_scheduled(&pipeline))
                {
                    return Ok(vec![Notice::CheckReported(check_result(check, sha, &workflow))]);
                }
                let key = {
                    let cache = lock(&self.circleci.inner.cache);
                    cache.runs.key_of(&pipeline.id)
                }
                .or_else(|| {
                    let mut keys = Vec::new();
                    pipeline.trigger_parameters.iter().for_each(|v| crate::ci::keys_in(v, &mut keys));
                    keys.into_iter().next()
                });
                Ok(vec![Notice::RunChanged {
                    run: atlas_promote_core::RunId(pipeline.id.clone()),
                    key,
                    status: run_status(&workflow.status),
                    at: event.happened_at,
                }])
            }
            "job-completed" => {
                let (Some(job), Some(sha)) = (&event.job, sha) else { return Ok(Vec::new()) };
                let Some(stage) = s.approval_job_stage(&job.name) else { return Ok(Vec::new()) };
                self.circleci.forget_jobs(&workflow.id);
                let jobs = self.circleci.jobs(&workflow).await?;
                let Some(found) = jobs.into_iter().find(|j| j.id == job.id) else { return Ok(Vec::new()) };
                if found.kind != crate::model::JobType::Approval {
                    return Ok(Vec::new());
                }
                let record = self.circleci.record_of_job(stage, &sha, &workflow, found).await?;
                Ok(record.into_iter().map(Notice::ApprovalReported).collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding_refuses_odd_and_non_hex_text() {
        assert_eq!(decode_hex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0af"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
        assert_eq!(decode_hex("+a"), None, "a sign is not a hex digit");
        assert_eq!(decode_hex("-0"), None);
    }

    #[tokio::test]
    async fn a_replayed_body_is_known_before_it_is_parsed() {
        let circleci = crate::CircleCiBuilder::new()
            .with_token("t")
            .with_project_slug("gh/acme/atlas")
            .with_base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let receiver = circleci.webhook_receiver("s3cret");
        let body = b"not json at all";
        let sign = |body: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
            mac.update(body);
            let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            format!("v1={hex}")
        };
        let signature = sign(body);
        assert!(matches!(receiver.receive(Some(&signature), body).await, Err(WebhookError::Malformed { .. })));
        // Had this body been handled before (as delivery d-1), its replay is
        // answered from the digest: the body is never parsed again.
        lock(&receiver.seen).insert("d-1", "job-completed", Sha256::digest(body).into());
        let replay = receiver.receive(Some(&signature), body).await.unwrap();
        assert_eq!((replay.id.as_str(), replay.kind.as_str(), replay.duplicate), ("d-1", "job-completed", true));
        assert!(replay.notices.is_empty());
    }

    #[test]
    fn the_dedup_set_is_bounded() {
        let mut seen = Seen::new(2);
        let digest = |id: &str| -> [u8; 32] { Sha256::digest(id.as_bytes()).into() };
        for id in ["a", "b", "a", "c"] {
            seen.insert(id, "job-completed", digest(id));
        }
        assert!(!seen.ids.contains("a"));
        assert!(seen.ids.contains("b") && seen.ids.contains("c"));
        assert_eq!(seen.by_body(&digest("a")), None, "a's body is forgotten with its id");
        assert_eq!(seen.by_body(&digest("c")), Some(("c".into(), "job-completed".into())));
    }
}
