//! Integration tests against a real local HTTP server (wiremock) serving the
//! published GitHub payloads of `tests/data/` (provenance in `tests/data/SOURCES.md`).

mod actions;
mod checks;
mod client;
mod conformance;
mod cost;
mod deployments;
mod environments;
mod fuzz_properties;
mod roles;
mod security;
mod webhooks;

use std::time::Duration;

use atlas_promote_github::{GitHub, GitHubBuilder, RetrySettings};
use serde_json::Value;
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{MockBuilder, MockServer};

/// The token every test uses; tests assert it never shows up in output.
pub const TOKEN: &str = "ghp_TestTokenThatMustNeverLeak0123456789";
/// The repository every test uses.
pub const REPO: &str = "octo-org/octo-repo";

/// A published payload, as text.
pub fn raw(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A published payload, parsed.
pub fn fixture(name: &str) -> Value {
    serde_json::from_str(&raw(name)).unwrap()
}

/// Waits short enough that no test sleeps more than about a second.
pub fn fast_retry() -> RetrySettings {
    RetrySettings::default()
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .with_max_wait(Duration::from_secs(2))
}

/// A builder pointed at `server`, with a token and fast retries.
pub fn builder(server: &MockServer) -> GitHubBuilder {
    GitHubBuilder::new()
        .with_token(TOKEN)
        .with_repository(REPO)
        .with_base_url(server.uri())
        .with_retry(fast_retry())
        .with_secondary_rate_limit_wait(Duration::from_millis(20))
        .with_run_lookup(3, Duration::from_millis(10))
}

/// A backend pointed at `server`.
pub fn github(server: &MockServer) -> GitHub {
    builder(server).build().unwrap()
}

/// A mock of `verb path` that only answers requests carrying the headers
/// GitHub requires (reference §1.1); anything else gets wiremock's 404.
pub fn api(verb: &str, p: &str) -> MockBuilder {
    wiremock::Mock::given(method(verb))
        .and(path(p))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header_exists("user-agent"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
}

/// `/repos/octo-org/octo-repo/{rest}`.
pub fn repo(rest: &str) -> String {
    format!("/repos/{REPO}/{rest}")
}
