//! Entry points for the fuzz targets in `fuzz/` and for the property tests
//! that stand in for them in CI (`tests/fuzz_properties.rs`). Not part of the
//! API: hidden, and free to change.
//!
//! Each takes arbitrary bytes and must return without panicking, whatever
//! they are (DESIGN §6: never panic on input from outside).

use std::sync::Arc;

use atlas_promote_core::Error;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderMap, HeaderValue, LINK};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::actions::{key_in_title, key_parts, run_status};
use crate::checks::{check_run_result, commit_status_results};
use crate::client::{Response, next_link, server_date};
use crate::compare::commit_authors;
use crate::error::parse_error;
use crate::model::{
    CheckRun, Commit, CommitStatus, Comparison, Deployment, DeploymentStatus, EnvironmentApproval, Job,
    PendingDeployment, PullRequest, Review, TeamMembership, User, WorkflowRun,
};
use crate::reviews::review_records;
use crate::webhook::{Delivery, WebhookReceiver};

/// The events [`fuzz_webhook`] picks from with the input's first byte.
const EVENTS: [&str; 10] = [
    "workflow_run",
    "workflow_job",
    "deployment_review",
    "deployment_protection_rule",
    "pull_request_review",
    "check_run",
    "check_suite",
    "deployment_status",
    "ping",
    "push",
];

const SECRET: &str = "fuzz-secret";

/// Deliver the rest of `data` as the body of the event its first byte
/// picks, correctly signed (so that the parser, not the signature check, is
/// exercised), then check what must hold of any body: unsigned or wrongly
/// signed it is refused, and a delivery accepted once is a duplicate after.
#[doc(hidden)]
pub fn fuzz_webhook(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let event = EVENTS[usize::from(pick) % EVENTS.len()];
    let receiver = WebhookReceiver::new(SECRET).with_environment("prod", "production");
    let refused = |result: atlas_promote_core::Result<Delivery>| matches!(result, Err(Error::Refused { .. }));
    assert!(refused(receiver.receive(event, "d-1", None, body)), "an unsigned delivery was not refused");
    assert!(refused(receiver.receive(event, "d-1", Some(&sign("another secret", body)), body)));
    let signature = sign(SECRET, body);
    match receiver.receive(event, "d-1", Some(&signature), body) {
        Ok(_) => {
            let again = receiver.receive(event, "d-1", Some(&signature), body);
            assert!(matches!(again, Ok(Delivery::Duplicate)), "a redelivery was handled again: {again:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`.
fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Feed `data`, as a response body, to every decoder of API answers and to
/// what reads the decoded values; as an error answer, to `parse_error`; and
/// its first line, as `Link` and `Date` headers, to their readers.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(first_line) {
        headers.insert(LINK, value.clone());
        headers.insert(DATE, value.clone());
        headers.insert("x-accepted-github-permissions", value);
    }
    let response = Response {
        status: StatusCode::OK,
        headers: headers.clone(),
        body: Arc::from(data),
        url: "https://api.github.com/fuzz".into(),
        token: "fuzz-token".to_owned().into(),
    };
    let _ = response.next_page();
    let _ = server_date(&headers);
    if let Ok(text) = std::str::from_utf8(first_line) {
        let _ = next_link(text);
    }

    if let Ok(run) = decode::<WorkflowRun>(&response) {
        workflow_runs(std::slice::from_ref(&run));
    }
    if let Some(runs) = listed::<WorkflowRun>(&response, "workflow_runs") {
        workflow_runs(&runs);
    }
    if let Some(jobs) = listed::<Job>(&response, "jobs") {
        jobs.iter().for_each(|job| {
            let _ = (run_status(Some(&job.status), job.conclusion.as_ref()), job.name.len());
        });
    }
    if let Some(runs) = listed::<CheckRun>(&response, "check_runs") {
        runs.iter().for_each(|run| {
            let _ = check_run_result(run);
        });
    }
    if let Ok(statuses) = decode::<Vec<CommitStatus>>(&response) {
        let _ = commit_status_results("9fceb02", &statuses);
    }
    if let Ok(reviews) = decode::<Vec<Review>>(&response) {
        let _ = review_records(&reviews, "trunk", "9fceb02");
        if let Some(sha) = reviews.iter().find_map(|r| r.commit_id.as_deref()) {
            let _ = review_records(&reviews, "trunk", sha);
        }
    }
    let _ = decode::<PullRequest>(&response);
    let _ = decode::<Vec<PullRequest>>(&response);
    let _ = decode::<TeamMembership>(&response);
    let _ = decode::<User>(&response);
    if let Ok(comparison) = decode::<Comparison>(&response) {
        let _ = comparison.files.len();
    }
    if let Some(commits) = listed::<Commit>(&response, "commits") {
        let _ = commit_authors(&commits);
    }
    if let Ok(commits) = decode::<Vec<Commit>>(&response) {
        let _ = commit_authors(&commits);
    }
    let _ = decode::<Vec<PendingDeployment>>(&response);
    let _ = decode::<Vec<EnvironmentApproval>>(&response);
    let _ = decode::<Deployment>(&response);
    let _ = decode::<Vec<Deployment>>(&response);
    let _ = decode::<DeploymentStatus>(&response);
    let _ = decode::<Vec<DeploymentStatus>>(&response);

    for status in [401, 403, 404, 422, 429, 502] {
        let error = parse_error(&response.url, status, &headers, data, "fuzz-token");
        let _ = (error.is_temporary(), error.status(), error.to_string());
        let _ = error.into_core("fuzz", || "fuzz".into()).to_string();
    }
}

fn decode<T: DeserializeOwned>(response: &Response) -> Result<T, crate::error::GhError> {
    response.json()
}

/// A list under `field` of a JSON object, read as `get_pages` reads it.
fn listed<T: DeserializeOwned>(response: &Response, field: &str) -> Option<Vec<T>> {
    let mut value: serde_json::Value = response.json().ok()?;
    let list = value.get_mut(field).map(serde_json::Value::take).unwrap_or(serde_json::Value::Array(Vec::new()));
    serde_json::from_value(list).ok()
}

fn workflow_runs(runs: &[WorkflowRun]) {
    for run in runs {
        let _ = run_status(run.status.as_ref(), run.conclusion.as_ref());
        if let Some(key) = run.display_title.as_deref().and_then(key_in_title) {
            let _ = key_parts(&key);
        }
    }
}
