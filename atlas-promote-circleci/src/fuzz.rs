//! Entry points for the fuzz targets in `fuzz/` and for the property tests
//! that stand in for them in CI (`tests/fuzz_properties.rs`). Not part of the
//! API: hidden, and free to change.
//!
//! Each takes arbitrary bytes and must return without panicking, whatever
//! they are (DESIGN §6: never panic on input from outside).

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use sha2::Sha256;

use crate::checks::{check_result, check_status};
use crate::ci::{combine, keys_in, keys_in_text};
use crate::client::{decode, parse_error, parse_retry_after};
use crate::model::{Job, Message, Page, Pipeline, PipelineConfig, PipelineCreation, PipelineValues, User, Workflow};
use crate::model::{jobs_final, newest_per_name, run_status, same_commit};
use crate::webhook::WebhookError;
use crate::{CircleCi, RetrySettings};

const SECRET: &str = "fuzz-secret";

thread_local! {
    /// One runtime and one backend per thread: building them per input would
    /// cost more than the parsing under test.
    static WORLD: Option<(tokio::runtime::Runtime, CircleCi)> = world();
}

/// A backend whose API is a closed port on loopback: a delivery that makes
/// the receiver read more (an approval job's `job-completed`) fails at once
/// with a backend error, without retries and without leaving the machine.
fn world() -> Option<(tokio::runtime::Runtime, CircleCi)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let circleci = CircleCi::builder()
        .with_token("fuzz-token")
        .with_project_slug("gh/acme/atlas")
        .with_base_url("http://127.0.0.1:9/api/v2")
        .with_checks(["integration", "system", "data-quality"])
        .with_timeouts(Duration::from_millis(200), Duration::from_millis(200))
        .with_retry(RetrySettings::default().with_max_retries(0))
        .build()
        .ok()?;
    Some((runtime, circleci))
}

/// Deliver `body` correctly signed (so that the parser, not the signature
/// check, is exercised), then check what must hold of any body: unsigned or
/// wrongly signed it is refused, and a delivery accepted once is a duplicate
/// after.
#[doc(hidden)]
pub fn fuzz_webhook(body: &[u8]) {
    WORLD.with(|world| {
        let Some((runtime, circleci)) = world else { return };
        let receiver = circleci.webhook_receiver(SECRET);
        runtime.block_on(async {
            let unsigned = receiver.receive(None, body).await;
            assert!(matches!(unsigned, Err(WebhookError::MissingSignature)), "{unsigned:?}");
            let forged = receiver.receive(Some(&sign("another secret", body)), body).await;
            assert!(matches!(forged, Err(WebhookError::InvalidSignature)), "{forged:?}");
            let signature = sign(SECRET, body);
            match receiver.receive(Some(&signature), body).await {
                Ok(first) => {
                    let again = receiver.receive(Some(&signature), body).await;
                    assert!(
                        matches!(&again, Ok(d) if d.duplicate && d.notices.is_empty() && d.id == first.id),
                        "a redelivery was handled again: {again:?}"
                    );
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        });
    });
}

/// `v1=<hex HMAC-SHA256 of body>`.
fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Feed `data`, as a response body, to every decoder of API answers and
/// to what reads the decoded values; and, as an error answer, to
/// `parse_error` (with the first line as a `Retry-After` header).
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    // reqwest's `Response::text` decodes lossily: so does this.
    let text = String::from_utf8_lossy(data);
    let now: DateTime<Utc> = DateTime::from_timestamp(1_778_000_000, 0).unwrap_or_default();

    if let Ok(page) = decode::<Page<Pipeline>>(&text) {
        page.items.iter().for_each(pipeline);
    }
    if let Ok(p) = decode::<Pipeline>(&text) {
        pipeline(&p);
    }
    if let Ok(page) = decode::<Page<Workflow>>(&text) {
        workflows(&page.items);
    }
    if let Ok(w) = decode::<Workflow>(&text) {
        workflows(std::slice::from_ref(&w));
    }
    if let Ok(page) = decode::<Page<Job>>(&text) {
        let _ = jobs_final(&page.items);
    }
    let _ = decode::<User>(&text);
    let _ = decode::<PipelineCreation>(&text);
    let _ = decode::<Message>(&text);
    if let Ok(config) = decode::<PipelineConfig>(&text) {
        let _ = keys_in_text(&config.compiled);
    }
    if let Ok(values) = decode::<PipelineValues>(&text) {
        let mut keys = Vec::new();
        values.values().for_each(|v| keys_in(v, &mut keys));
    }
    let _ = keys_in_text(&text);

    let first_line = text.lines().next().unwrap_or_default();
    let _ = parse_retry_after(first_line, now);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(first_line) {
        headers.insert(RETRY_AFTER, value);
    }
    for status in
        [StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND, StatusCode::TOO_MANY_REQUESTS, StatusCode::BAD_GATEWAY]
    {
        let error = parse_error(status, &headers, &text, now);
        let _ = (error.is_temporary(), error.retry_after());
        let _ = error.into_core("fuzz").to_string();
    }
}

fn pipeline(p: &Pipeline) {
    let _ = (p.revision(), p.branch(), p.trigger_types().count());
    if let Some(sha) = p.revision() {
        let _ = same_commit(sha, "9fceb02d0ae598e95dc970b74767f19372d61af8");
    }
    let mut keys = Vec::new();
    p.trigger_parameters.iter().for_each(|v| keys_in(v, &mut keys));
}

fn workflows(items: &[Workflow]) {
    let newest = newest_per_name(items);
    let _ = combine(&newest);
    for w in items {
        let _ = (run_status(&w.status), check_status(w), w.status.is_terminal());
        let _ = check_result("integration", "9fceb02", w);
    }
}
