//! Raw HTTP to the CircleCI API v2: auth headers, timeouts, one lenient
//! `parse_error`, retries of GETs, `next_page_token` pagination.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atlas_promote_core::Result;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::RetrySettings;
use crate::error::ApiError;
use crate::model::Page;

/// How much of a body an error keeps.
const RAW_LIMIT: usize = 2048;

/// What the client needs to know, built by the backend's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// The API's base URL, e.g. `https://circleci.com/api/v2`.
    pub(crate) base_url: String,
    pub(crate) user_agent: String,
    /// The timeout of one request.
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetrySettings,
    /// Pages one listing reads at most, and how long it may take.
    pub(crate) max_pages: usize,
    pub(crate) page_deadline: Duration,
}

/// The HTTP side of the backend. Never prints the token: `Debug` is hand-written.
pub(crate) struct Client {
    http: reqwest::Client,
    token: SecretString,
    settings: ClientOptions,
    requests: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.settings.base_url)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A listing read page by page; `complete` is false when the page limit or
/// the deadline cut it short.
#[derive(Debug)]
pub(crate) struct Listing<T> {
    pub(crate) items: Vec<T>,
    pub(crate) complete: bool,
}

impl Client {
    pub(crate) fn new(http: reqwest::Client, token: SecretString, settings: ClientOptions) -> Self {
        Self { http, token, settings, requests: AtomicU64::new(0) }
    }

    /// HTTP requests sent so far, retries included.
    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `text` with the token and any credential header's value redacted: a
    /// server or proxy may echo the request's headers into what it answers.
    pub(crate) fn redact(&self, text: &str) -> String {
        atlas_promote_core::Error::redact_secrets(text, [self.token.expose_secret()])
    }

    /// [`decode`], with the token redacted from the error's message and snippet.
    pub(crate) fn decode<T: DeserializeOwned>(&self, text: &str) -> Result<T, ApiError> {
        decode(text).map_err(|e| match e {
            ApiError::Decode { message, snippet } => {
                ApiError::Decode { message: self.redact(&message), snippet: self.redact(&snippet) }
            }
            other => other,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    /// One request, no retry. Success: the status and the body text.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, String), ApiError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut token = HeaderValue::from_str(self.token.expose_secret())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-token"));
        token.set_sensitive(true);
        let mut request = self
            .http
            .request(method.clone(), self.url(path))
            .header("Circle-Token", token)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, self.settings.user_agent.as_str())
            .timeout(self.settings.request_timeout);
        if !query.is_empty() {
            request = request.query(query);
        }
        if method == Method::POST {
            request = request.header(CONTENT_TYPE, "application/json").body(match body {
                Some(b) => b.to_string(),
                None => "{}".to_owned(),
            });
        }
        let response = request.send().await.map_err(|e| ApiError::Transport(e.without_url()))?;
        let status = response.status();
        let headers = response.headers().clone();
        warn_deprecation(&headers, path);
        let text = response.text().await.map_err(|e| ApiError::Body(e.without_url()))?;
        if status.is_success() {
            Ok((status, text))
        } else {
            Err(parse_error(status, &headers, &self.redact(&text), Utc::now()))
        }
    }

    /// A GET, retried on 5xx, 408, 429 (waiting its `Retry-After`), timeouts
    /// and answers cut short, within the call's deadline.
    pub(crate) async fn get_text(&self, path: &str, query: &[(&str, &str)]) -> Result<String, ApiError> {
        let retry = self.settings.retry;
        let started = Instant::now();
        let attempt = || async { self.send(Method::GET, path, query, None).await.map(|(_, text)| text) };
        let call = attempt
            .retry(backoff(&retry))
            .sleep(tokio::time::sleep)
            .when(ApiError::is_temporary)
            // `None` means the backoff is used up, or the wait is too long: stop.
            .adjust(|e, backoff| backoff.and_then(|d| retry.wait(started, d, e.retry_after())))
            .notify(|e, wait| tracing::debug!(error = %e, ?wait, path, "retrying CircleCI GET"));
        self.within_deadline(call).await
    }

    /// `call`, or [`ApiError::Deadline`] once the call's deadline has passed.
    async fn within_deadline<T>(&self, call: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
        let deadline = self.settings.retry.deadline();
        tokio::time::timeout(deadline, call).await.unwrap_or(Err(ApiError::Deadline(deadline)))
    }

    /// A GET decoded as JSON. `operation` names it in errors.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T> {
        let span = tracing::debug_span!("circleci", operation, path);
        async {
            let text = self.get_text(path, query).await.map_err(|e| e.into_core(operation))?;
            self.decode(&text).map_err(|e| e.into_core(operation))
        }
        .instrument(span)
        .await
    }

    /// A paged GET, newest first: reads pages while `more` says so for the
    /// page just read, up to the page limit and the deadline.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        query: &[(&str, &str)],
        mut more: impl FnMut(&[T]) -> bool,
    ) -> Result<Listing<T>> {
        let started = Instant::now();
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for page_number in 0..self.settings.max_pages {
            if page_number > 0 && started.elapsed() >= self.settings.page_deadline {
                tracing::warn!(operation, pages = page_number, "CircleCI listing stopped at its deadline");
                return Ok(Listing { items, complete: false });
            }
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(t) = token.as_deref() {
                q.push(("page-token", t));
            }
            let page: Page<T> = self.get(operation, path, &q).await?;
            let go_on = more(&page.items);
            items.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if go_on => token = Some(next),
                _ => return Ok(Listing { items, complete: true }),
            }
        }
        tracing::warn!(operation, pages = self.settings.max_pages, "CircleCI listing stopped at its page limit");
        Ok(Listing { items, complete: false })
    }

    /// Every page (up to the limits).
    pub(crate) async fn list_all<T: DeserializeOwned>(&self, operation: &str, path: &str) -> Result<Vec<T>> {
        Ok(self.list(operation, path, &[], |_| true).await?.items)
    }

    /// A POST, never retried: it may create something (a pipeline) or act
    /// (approve, cancel); the caller re-reads state instead.
    pub(crate) async fn post<B: Serialize>(
        &self,
        operation: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, String)> {
        let span = tracing::debug_span!("circleci", operation, path);
        async {
            let body = body
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| crate::error::permanent(operation, format!("cannot encode the request: {e}")))?;
            let call = self.send(Method::POST, path, &[], body.as_ref());
            self.within_deadline(call).await.map_err(|e| e.into_core(operation))
        }
        .instrument(span)
        .await
    }
}

/// Decode a success body, keeping a snippet of it when it is not what we expect.
pub(crate) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::Decode { message: e.to_string(), snippet: text.chars().take(200).collect() })
}

/// Percent-encode one path segment (ids come from API answers: do not trust them).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The one error parser: a non-success answer into [`ApiError::Http`].
///
/// Bodies seen in practice (reference §6): `{"message": …}`, `{"error": …}`
/// (policy/OIDC families; v3's `{"error": {title, detail}}`), plain text
/// (`Rate limited.`), `{}`, and a JSON document nested as a string inside
/// `message` (an upstream GitHub error). The raw text is always kept.
pub(crate) fn parse_error(status: StatusCode, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> ApiError {
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now));
    ApiError::Http { status, message: error_message(body), raw: body.chars().take(RAW_LIMIT).collect(), retry_after }
}

fn error_message(body: &str) -> String {
    let trimmed = body.trim();
    let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) else {
        return trimmed.chars().take(500).collect();
    };
    message_of(&value, 0).unwrap_or_default()
}

fn message_of(value: &serde_json::Value, depth: usize) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            // A JSON document inside the string: take its message, if it has one.
            let nested = (depth < 3 && s.trim_start().starts_with('{'))
                .then(|| serde_json::from_str::<Value>(s).ok())
                .flatten()
                .and_then(|v| message_of(&v, depth + 1));
            Some(nested.unwrap_or_else(|| s.clone()))
        }
        Value::Object(map) => ["message", "error", "detail", "title"]
            .iter()
            .filter_map(|k| map.get(*k))
            .find_map(|v| message_of(v, depth + 1)),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `Retry-After` as delay-seconds or as an HTTP-date (RFC 9110 §10.2.3);
/// a date in the past is no wait.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate is a valid RFC 2822 date ("Sun, 06 Nov 1994 08:49:37 GMT").
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn warn_deprecation(headers: &HeaderMap, path: &str) {
    for name in ["deprecation", "sunset"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            tracing::warn!(header = name, value = v, path, "CircleCI marks this endpoint deprecated");
        }
    }
}

/// The backoff between retries: exponential from the settings' first delay to their longest, with jitter.
fn backoff(retry: &RetrySettings) -> ExponentialBuilder {
    let (first, longest) = retry.backoff();
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(longest)
        .with_max_times(retry.max_retries())
        .with_jitter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str) -> ApiError {
        parse_error(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), body, Utc::now())
    }

    fn message(e: &ApiError) -> &str {
        match e {
            ApiError::Http { message, .. } => message,
            _ => panic!("not an HTTP error: {e:?}"),
        }
    }

    #[test]
    fn parse_error_reads_every_body_shape_and_keeps_the_raw_text() {
        let cases = [
            (404, r#"{"message": "Project does not exist."}"#, "Project does not exist."),
            (400, r#"{"error": "OwnerID: must be a valid UUID."}"#, "OwnerID: must be a valid UUID."),
            (429, "Rate limited.", "Rate limited."),
            (429, "{}", ""),
            (
                404,
                r#"{"message" : "{\"message\":\"Not Found\",\"documentation_url\":\"https://docs.github.com/rest\"}"}"#,
                "Not Found",
            ),
            (400, r#"{"error": {"title": "Bad", "detail": "filter is invalid"}}"#, "filter is invalid"),
            (502, "", ""),
        ];
        for (status, body, want) in cases {
            let e = parse(status, body);
            assert_eq!(message(&e), want, "body {body:?}");
            let ApiError::Http { raw, .. } = &e else { unreachable!() };
            assert_eq!(raw, body);
        }
    }

    #[test]
    fn parse_error_maps_status_codes_to_temporary_or_permanent() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(parse(status, "").is_temporary(), "{status}");
        }
        for status in [400, 401, 403, 404, 405, 409, 422] {
            assert!(!parse(status, "").is_temporary(), "{status}");
        }
        let not_found = parse(404, r#"{"message":"Project does not exist."}"#).into_core("get project");
        assert!(matches!(not_found, atlas_promote_core::Error::NotFound { .. }), "{not_found:?}");
        let denied = parse(403, r#"{"message":"Permission denied."}"#).into_core("approve");
        assert!(!denied.is_temporary());
        assert!(denied.to_string().contains("Permission denied."), "{denied}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: DateTime<Utc> = "2026-05-04T08:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Mon, 04 May 2026 08:00:03 GMT", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Mon, 04 May 2026 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("5034460f-c7c4"), "5034460f-c7c4");
        assert_eq!(segment("../x y"), "%2E%2E%2Fx%20y");
    }
}
