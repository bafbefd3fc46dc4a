//! Notifications: what a tick tells people, written to the store's outbox,
//! and the sinks that deliver it (`log`, a signed `webhook`, `slack`) with
//! retries, backoff and jitter, at least once.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use atlas_promote_core::{Action, Error, Notifier, OutboxEntry, Result, Tick, Verdict};
use chrono::TimeDelta;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;

/// The header a webhook sink signs its body in: `sha256=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Atlas-Signature-256";

/// The notifications a tick gives: its alerts, approval requests,
/// promotions, blocked decisions and failures, each with a stable id (the
/// same tick outcome always gives the same id, so a receiver drops repeats).
///
/// `link` is the service's public address, for a link to the candidate's page.
pub fn notifications(tick: &Tick, link: Option<&str>) -> Vec<OutboxEntry> {
    let at = tick.at;
    let stamp = at.timestamp_millis();
    let page = |sha: &str| page(link, sha);
    let mut out = Vec::new();
    for action in &tick.actions {
        match action {
            Action::Alert { stage, sha, message } => out.push(OutboxEntry::new(
                format!("alert/{stage}/{sha}/{stamp}"),
                "alert",
                json!({ "sha": sha, "stage": stage, "summary": message,
                        "unblock": "look at the environment: the policy's monitor says what happens next",
                        "link": page(sha) }),
                at,
            )),
            Action::RequestApprovals { stage, sha, short } => {
                let roles: Vec<String> =
                    short.iter().map(|s| format!("{} more from {}", s.need - s.have, s.role)).collect();
                out.push(OutboxEntry::new(
                    format!("approval_requested/{stage}/{sha}"),
                    "approval_requested",
                    json!({ "sha": sha, "stage": stage,
                            "summary": format!("{sha} needs approval to enter {stage}"),
                            "unblock": format!("approve {sha} into {stage}: {}", roles.join(", ")),
                            "link": page(sha) }),
                    at,
                ))
            }
            // The deploy into a stage succeeded: the state machine's `deploy.succeeded` entry.
            Action::Audit(audit) if audit.action == "deploy.succeeded" => out.push(OutboxEntry::new(
                format!("promoted/{}/{stamp}", audit.subject),
                "promoted",
                json!({ "sha": audit.subject, "summary": audit.message, "unblock": null, "link": page(&audit.subject) }),
                at,
            )),
            _ => {}
        }
    }
    for decision in &tick.decisions {
        if matches!(decision.verdict, Verdict::Block) {
            let kinds: Vec<&str> = decision.blockers.iter().map(|b| b.kind()).collect();
            out.push(OutboxEntry::new(
                format!("blocked/{}/{}/{}/{}", decision.from, decision.to, decision.sha, kinds.join("+")),
                "blocked",
                json!({ "sha": decision.sha, "stage": decision.to,
                        "summary": format!("{} → {} for {} is blocked", decision.from, decision.to, decision.sha),
                        "unblock": decision.to_string().trim_end(),
                        "link": page(&decision.sha) }),
                at,
            ));
        }
    }
    for (subject, error) in &tick.failures {
        out.push(OutboxEntry::new(
            format!("failed/{subject}/{stamp}"),
            "failed",
            json!({ "subject": subject, "summary": format!("{subject} could not move: {error}"),
                    "unblock": if error.is_temporary() { "nothing: it is retried" } else { "an operator must look at it" } }),
            at,
        ));
    }
    out
}

/// The candidate's page on the service at `link` (its public address), if it has one.
pub(crate) fn page(link: Option<&str>, sha: &str) -> Option<String> {
    link.map(|base| format!("{}/promotions/{sha}", base.trim_end_matches('/')))
}

/// A sink and the kinds of notification it takes.
#[derive(Debug)]
pub struct Sink {
    notifier: Box<dyn Notifier>,
    kinds: Option<Vec<String>>,
}

impl Sink {
    /// `notifier` for every kind (`kinds = None`) or for these kinds.
    pub fn new(notifier: Box<dyn Notifier>, kinds: Option<Vec<String>>) -> Self {
        Self { notifier, kinds }
    }

    /// Whether this sink takes notifications of `kind`.
    pub fn takes(&self, kind: &str) -> bool {
        self.kinds.as_ref().is_none_or(|kinds| kinds.iter().any(|k| k == kind))
    }

    /// The sink's notifier.
    pub fn notifier(&self) -> &dyn Notifier {
        self.notifier.as_ref()
    }
}

/// When to try again after `attempts` failed attempts: exponential from 2 s,
/// capped at 10 minutes, with up to a quarter of jitter taken from the id
/// (so the retries of many notifications spread out, the same way each time).
pub fn backoff(id: &str, attempts: u32) -> TimeDelta {
    let base = 2_i64.saturating_pow(attempts.min(20)).min(600);
    let spread = id.bytes().fold(attempts as u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let jitter_ms = (spread % (base as u64 * 250)) as i64;
    TimeDelta::seconds(base) + TimeDelta::milliseconds(jitter_ms)
}

/// Writes each notification to the log (`tracing`, target `atlas_promote::notify`).
#[derive(Debug, Default)]
pub struct LogSink;

#[async_trait]
impl Notifier for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    async fn notify(&self, notification: &OutboxEntry) -> Result<()> {
        tracing::info!(
            target: "atlas_promote::notify",
            id = %notification.id,
            kind = %notification.kind,
            summary = %notification.payload["summary"].as_str().unwrap_or_default(),
            unblock = %notification.payload["unblock"].as_str().unwrap_or_default(),
            "notification"
        );
        Ok(())
    }
}

/// POSTs each notification as JSON to a URL, signed with HMAC-SHA256 in
/// [`SIGNATURE_HEADER`]; the receiver drops repeats by `id`.
pub struct WebhookSink {
    client: reqwest::Client,
    url: SecretString,
    secret: SecretString,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink").field("url", &"<redacted>").field("secret", &"<redacted>").finish()
    }
}

impl WebhookSink {
    /// A sink posting to `url`, signing with `secret`.
    pub fn new(client: reqwest::Client, url: SecretString, secret: SecretString) -> Self {
        Self { client, url, secret }
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn post(client: &reqwest::Client, sink: &str, url: &str, body: Vec<u8>, signature: Option<String>) -> Result<()> {
    let mut request = client.post(url).header("content-type", "application/json").body(body);
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    // The URL is a secret (a Slack webhook URL is a credential): errors name the sink only.
    let failed = |temporary: bool, message: String| Error::Backend {
        backend: format!("{sink} notifier"),
        operation: "deliver".into(),
        temporary,
        source: message.into(),
    };
    let response = request.send().await.map_err(|e| failed(true, without_url(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let temporary = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
    Err(failed(temporary, format!("the receiver answered {status}")))
}

fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    kind.to_owned()
}

#[async_trait]
impl Notifier for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn notify(&self, notification: &OutboxEntry) -> Result<()> {
        let body = serde_json::to_vec(&json!({
            "id": notification.id,
            "kind": notification.kind,
            "created_at": notification.created_at,
            "payload": notification.payload,
        }))
        .map_err(|e| Error::Backend {
            backend: "webhook notifier".into(),
            operation: "encode".into(),
            temporary: false,
            source: e.into(),
        })?;
        let signature = sign(self.secret.expose_secret().as_bytes(), &body);
        post(&self.client, "webhook", self.url.expose_secret(), body, Some(signature)).await
    }
}

/// Posts each notification to a Slack incoming webhook.
pub struct SlackSink {
    client: reqwest::Client,
    url: SecretString,
}

impl fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSink").field("url", &"<redacted>").finish()
    }
}

impl SlackSink {
    /// A sink posting to the incoming webhook `url`.
    pub fn new(client: reqwest::Client, url: SecretString) -> Self {
        Self { client, url }
    }
}

/// The Slack message text of a notification.
pub fn slack_text(notification: &OutboxEntry) -> String {
    let p = &notification.payload;
    let mut text = format!("*{}* {}", notification.kind, p["summary"].as_str().unwrap_or_default());
    if let Some(unblock) = p["unblock"].as_str() {
        text.push_str(&format!("\n{unblock}"));
    }
    if let Some(link) = p["link"].as_str() {
        text.push_str(&format!("\n<{link}|details>"));
    }
    text
}

#[async_trait]
impl Notifier for SlackSink {
    fn name(&self) -> &str {
        "slack"
    }

    async fn notify(&self, notification: &OutboxEntry) -> Result<()> {
        let body = serde_json::to_vec(&json!({ "text": slack_text(notification) })).map_err(|e| Error::Backend {
            backend: "slack notifier".into(),
            operation: "encode".into(),
            temporary: false,
            source: e.into(),
        })?;
        post(&self.client, "slack", self.url.expose_secret(), body, None).await
    }
}

/// How long one delivery attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
