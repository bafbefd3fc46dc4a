//! Helpers shared by the integration tests: fixtures, a backend pointed at a
//! local wiremock server, and a few request builders.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use atlas_promote_circleci::{CircleCi, CircleCiBuilder, RetrySettings};
use atlas_promote_core::{Candidate, IdempotencyKey, RunKind, RunRequest};
use serde_json::{Value, json};
use wiremock::MockServer;

/// A token no output may ever show.
pub const TOKEN: &str = "CCIPAT_test-token-never-printed-7f3a9c";
pub const SLUG: &str = "gh/foo/bar";

/// A published payload from `tests/data/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The raw bytes of a published payload.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The list envelope around published `items`.
pub fn page(items: Value, next: Option<&str>) -> Value {
    json!({ "items": items, "next_page_token": next })
}

/// A published object with some fields replaced (objects merge one level deep).
pub fn with(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in changes.as_object().unwrap() {
        match (out.get_mut(k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => {
                for (k2, v2) in new {
                    old.insert(k2.clone(), v2.clone());
                }
            }
            _ => {
                out[k] = v.clone();
            }
        }
    }
    out
}

/// The first item of a published `items[]` array.
pub fn first_item(name: &str) -> Value {
    fixture(name)[0].clone()
}

/// A builder pointed at `server`, with tiny retry delays; a server's
/// `Retry-After` is honoured up to 3 s.
pub fn builder(server: &MockServer) -> CircleCiBuilder {
    CircleCiBuilder::new()
        .with_token(TOKEN)
        .with_project_slug(SLUG)
        .with_base_url(server.uri())
        .with_retry(
            RetrySettings::default()
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
                .with_max_wait(Duration::from_secs(3)),
        )
        // The published payloads are from 2020: look back far enough.
        .with_lookback(chrono::TimeDelta::days(365 * 20))
}

pub fn backend(server: &MockServer) -> CircleCi {
    builder(server).build().unwrap()
}

/// A deploy request for `sha` into `stage` with the ATLAS preset's parameters.
pub fn deploy_request(sha: &str, stage: &str) -> RunRequest {
    RunRequest {
        key: IdempotencyKey::new(sha, stage, RunKind::Deploy, 1),
        kind: RunKind::Deploy,
        stage: stage.into(),
        candidate: Candidate::trunk(sha, ["alice"]),
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".into(), stage.into())]),
    }
}
