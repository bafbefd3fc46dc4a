//! Raw HTTP to the GitHub REST API: headers, authentication, conditional
//! requests, pagination, rate limits and retries (reference §1).
//!
//! Everything here is transport; the role files (`actions.rs`, `checks.rs`,
//! …) say which endpoint means what.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, LINK, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use backon::{ExponentialBuilder, Retryable};

use crate::RetrySettings;
use crate::auth::{Credentials, still_valid};
use crate::error::{GhError, parse_error, retry_after};
use crate::etag::{CachedResponse, EtagCache};

/// The REST API version sent on every request (reference §0.4).
pub(crate) const API_VERSION: &str = "2022-11-28";
/// GitHub rejects requests without a User-Agent (reference §1.1).
pub(crate) const DEFAULT_USER_AGENT: &str = concat!("atlas-promote/", env!("CARGO_PKG_VERSION"));
/// Conditional-request cache entries kept at most; beyond it the least
/// recently used goes.
const CACHE_CAPACITY: usize = 1024;
/// The first wait after a secondary rate limit that gives no `retry-after`
/// (GitHub's advice: at least a minute); it doubles on each retry.
pub(crate) const SECONDARY_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// How many requests a [`GitHub`](crate::GitHub) value has made: the figures
/// behind the cost claims of the crate docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestStats {
    /// Requests sent over the wire, retries included.
    pub sent: u64,
    /// Of those, answered `304 Not Modified` and served from the cache:
    /// these cost no primary rate limit.
    pub not_modified: u64,
    /// Retries after a 5xx, a transport failure or a rate limit.
    pub retries: u64,
    /// Times the client slept because of a rate limit.
    pub rate_limit_waits: u64,
}

impl RequestStats {
    /// Requests that counted against the primary rate limit.
    pub fn rate_limited_cost(&self) -> u64 {
        self.sent - self.not_modified
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    not_modified: AtomicU64,
    retries: AtomicU64,
    rate_limit_waits: AtomicU64,
}

/// An answer, possibly served from the conditional-request cache.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Arc<[u8]>,
    pub(crate) url: String,
    /// The token the request carried, to redact from what the body says.
    pub(crate) token: SecretString,
}

impl Response {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, GhError> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(&e))
    }

    /// A [`GhError::Decode`] of this answer, redacted.
    pub(crate) fn decode_error(&self, error: &serde_json::Error) -> GhError {
        GhError::Decode { url: self.url.clone(), message: self.redact(&error.to_string()) }
    }

    /// `text`, taken from this answer, with the request's token and any
    /// credential header's value redacted.
    pub(crate) fn redact(&self, text: &str) -> String {
        atlas_promote_core::Error::redact_secrets(text, [self.token.expose_secret()])
    }

    pub(crate) fn next_page(&self) -> Option<String> {
        next_link(self.headers.get(LINK)?.to_str().ok()?)
    }
}

/// The HTTP client of one GitHub identity (one token or App installation):
/// its ETag cache is keyed by URL, which is only sound per identity.
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    user_agent: HeaderValue,
    credentials: Credentials,
    retry: RetrySettings,
    secondary_wait: Duration,
    cache: Mutex<EtagCache>,
    counters: Counters,
}

impl std::fmt::Debug for Client {
    /// The identity, never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.credentials.fmt(f)
    }
}

impl Client {
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        user_agent: HeaderValue,
        credentials: Credentials,
        retry: RetrySettings,
        secondary_wait: Duration,
    ) -> Self {
        Self {
            http,
            base,
            user_agent,
            credentials,
            retry,
            secondary_wait,
            cache: Mutex::new(EtagCache::new(CACHE_CAPACITY)),
            counters: Counters::default(),
        }
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    pub(crate) fn stats(&self) -> RequestStats {
        let c = &self.counters;
        RequestStats {
            sent: c.sent.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limit_waits: c.rate_limit_waits.load(Ordering::Relaxed),
        }
    }

    /// The API URL of `segments` under the base URL; each segment is
    /// percent-encoded (an environment named `a/b` becomes `a%2Fb`).
    pub(crate) fn url<S: AsRef<str>>(&self, segments: &[S]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments.iter().map(AsRef::as_ref));
        }
        url
    }

    /// Whether `url` points at the same API as the base URL, so the token may be sent there.
    pub(crate) fn is_ours(&self, url: &Url) -> bool {
        url.origin() == self.base.origin() && url.path().starts_with(self.base.path().trim_end_matches('/'))
    }

    /// GET `url` and decode the JSON body.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, op: &'static str, url: Url) -> Result<T, GhError> {
        self.get(op, url).await?.json()
    }

    /// GET `url`, conditionally when an earlier answer is cached (a 304 is served from the cache).
    pub(crate) async fn get(&self, op: &'static str, url: Url) -> Result<Response, GhError> {
        self.execute(op, Method::GET, url, None, None).await
    }

    /// GET every page of a list, following `Link: rel="next"` (never building
    /// page URLs itself), with `per_page=100`. `field` names the array when
    /// the endpoint wraps it (`{"total_count", "check_runs": […]}`).
    /// Stops after `max_pages` pages.
    pub(crate) async fn get_pages<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: Url,
        field: Option<&str>,
        max_pages: usize,
    ) -> Result<Vec<T>, GhError> {
        Ok(self.get_pages_more(op, url, field, max_pages).await?.0)
    }

    /// [`get_pages`](Self::get_pages), also saying whether pages were left unread.
    pub(crate) async fn get_pages_more<T: DeserializeOwned>(
        &self,
        op: &'static str,
        mut url: Url,
        field: Option<&str>,
        max_pages: usize,
    ) -> Result<(Vec<T>, bool), GhError> {
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut items = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            let response = self.get(op, url).await?;
            let page: Vec<T> = match field {
                None => response.json()?,
                Some(field) => {
                    let mut value: serde_json::Value = response.json()?;
                    let list = value
                        .get_mut(field)
                        .map(serde_json::Value::take)
                        .unwrap_or(serde_json::Value::Array(Vec::new()));
                    serde_json::from_value(list).map_err(|e| response.decode_error(&e))?
                }
            };
            items.extend(page);
            pages += 1;
            next = match response.next_page() {
                None => None,
                Some(_) if pages >= max_pages => return Ok((items, true)),
                Some(link) => {
                    let url = Url::parse(&link).map_err(|e| GhError::Invalid(format!("bad Link URL {link:?}: {e}")))?;
                    if !self.is_ours(&url) {
                        return Err(GhError::Invalid(format!("Link header points outside the API: {link}")));
                    }
                    Some(url)
                }
            };
        }
        Ok((items, false))
    }

    /// Send a body-carrying request. Never retried after a 5xx or a transport
    /// failure: the server may have acted (a dispatch, a deployment).
    pub(crate) async fn send_json(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GhError> {
        self.execute(op, method, url, body, None).await
    }

    /// [`send_json`](Self::send_json) with another identity's token (a user
    /// token for reviews GitHub Apps may not make). The response is not cached.
    pub(crate) async fn send_json_as(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: &serde_json::Value,
        token: &SecretString,
    ) -> Result<Response, GhError> {
        self.execute(op, method, url, Some(body), Some(token.clone())).await
    }

    /// GET with another identity's token; not cached (the cache is per identity).
    pub(crate) async fn get_as<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: Url,
        token: &SecretString,
    ) -> Result<T, GhError> {
        self.execute(op, Method::GET, url, None, Some(token.clone())).await?.json()
    }

    async fn bearer(&self) -> Result<SecretString, GhError> {
        match &self.credentials {
            Credentials::Token(token) => Ok(token.clone()),
            Credentials::App(app) => {
                let mut guard = app.lock().await;
                let now = Utc::now();
                if let Some((token, expires)) = guard.as_ref()
                    && still_valid(*expires, now)
                {
                    return Ok(token.clone());
                }
                let url = self.url(&["app", "installations", &app.installation_id.to_string(), "access_tokens"]);
                let jwt = app.jwt(now)?;
                // Sent directly (not through `execute`, which needs a token itself).
                let key = url.to_string();
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                let response = self
                    .http
                    .post(url)
                    .header(ACCEPT, "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", API_VERSION)
                    .header(USER_AGENT, self.user_agent.clone())
                    .header(AUTHORIZATION, authorization(&jwt)?)
                    .send()
                    .await
                    .map_err(|source| GhError::Transport { url: key.clone(), source })?;
                let status = response.status();
                let headers = response.headers().clone();
                let bytes = response.bytes().await.map_err(|source| GhError::Transport { url: key.clone(), source })?;
                if !status.is_success() {
                    let error = parse_error(&key, status.as_u16(), &headers, &bytes, jwt.expose_secret());
                    return Err(GhError::AppAuth(error.to_string()));
                }
                #[derive(serde::Deserialize)]
                struct InstallationToken {
                    token: String,
                    expires_at: DateTime<Utc>,
                }
                let fresh: InstallationToken = serde_json::from_slice(&bytes).map_err(|e| GhError::Decode {
                    url: key,
                    message: atlas_promote_core::Error::redact_secrets(&e.to_string(), [jwt.expose_secret()]),
                })?;
                let token = SecretString::from(fresh.token);
                *guard = Some((token.clone(), fresh.expires_at));
                Ok(token)
            }
        }
    }

    /// One call: sent, conditionally when an answer is cached, retried as
    /// its error says, all within the call's deadline.
    async fn execute(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        bearer: Option<SecretString>,
    ) -> Result<Response, GhError> {
        let span = tracing::debug_span!("github.request", op, method = %method, url = %url);
        let deadline = self.retry.deadline();
        let call = self.retrying(method, &url, body, bearer.as_ref());
        match tokio::time::timeout(deadline, call).instrument(span).await {
            Ok(result) => result,
            Err(_) => Err(GhError::Deadline { url: url.to_string(), deadline }),
        }
    }

    /// [`conditional`](Self::conditional), again while its error is
    /// temporary and sending again cannot act twice (a read, or a write
    /// GitHub refused unread: a rate limit), waiting what GitHub asks or a
    /// backoff with jitter, within the retry settings.
    async fn retrying(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        bearer: Option<&SecretString>,
    ) -> Result<Response, GhError> {
        let idempotent = method == Method::GET;
        let started = Instant::now();
        let secondary_waits = AtomicU32::new(0);
        let attempt = || self.conditional(&method, url, body, bearer, secondary_waits.load(Ordering::Relaxed));
        attempt
            .retry(backoff(&self.retry))
            .sleep(tokio::time::sleep)
            .when(|e| e.is_temporary() && (idempotent || e.is_rate_limit()))
            // `None`: the backoff is used up, or the wait is too long: stop.
            .adjust(|e, backoff| backoff.and_then(|d| self.retry.wait(started, d, e.retry_after())))
            .notify(|e, wait| {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                if e.is_rate_limit() {
                    if matches!(e, GhError::SecondaryRateLimited { .. }) {
                        secondary_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    self.counters.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(wait_ms = wait.as_millis() as u64, "github rate limit: waiting");
                } else {
                    tracing::debug!(error = %e, wait_ms = wait.as_millis() as u64, "retrying github request");
                }
            })
            .await
    }

    /// One request, conditional when an earlier answer is cached: a `304` is
    /// served from the cache, a new `ETag` remembered; an error status is
    /// read into its [`GhError`], a rate limit into one that says how long
    /// to wait (the `secondary_waits`-th wait, for a secondary limit that
    /// does not say).
    async fn conditional(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        bearer: Option<&SecretString>,
        secondary_waits: u32,
    ) -> Result<Response, GhError> {
        let cacheable = *method == Method::GET && bearer.is_none();
        let key = url.to_string();
        let cached = if cacheable { self.cache_get(&key) } else { None };
        let answer = self.send_once(method, url, body, bearer, cached.as_ref().map(|c| c.etag.clone())).await?;
        let Answer { status, headers, body: bytes, token } = answer;
        tracing::debug!(status = status.as_u16(), "github answered");

        if status == StatusCode::NOT_MODIFIED {
            if let Some(entry) = cached {
                self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                let mut headers = headers;
                if let Some(link) = entry.link {
                    headers.insert(LINK, link);
                }
                return Ok(Response { status: StatusCode::OK, headers, body: entry.body, url: key, token });
            }
            return Err(GhError::Unexpected { url: key, status: 304, message: "304 without a cached answer".into() });
        }
        if status.is_success() {
            if cacheable && let Some(etag) = headers.get(ETAG) {
                let entry =
                    CachedResponse { etag: etag.clone(), body: bytes.clone(), link: headers.get(LINK).cloned() };
                self.cache_put(key.clone(), entry);
            }
            return Ok(Response { status, headers, body: bytes, url: key, token });
        }

        let error = parse_error(&key, status.as_u16(), &headers, &bytes, token.expose_secret());
        if matches!(status.as_u16(), 401 | 403 | 404)
            && let GhError::Api { accepted_permissions: Some(needed), .. } = &error
        {
            tracing::warn!(status = status.as_u16(), needed, "github refused: the token may lack permissions");
        }
        Err(self.rate_limit(status, &headers, error, &key, secondary_waits))
    }

    /// Send one request and read its answer whole.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        bearer: Option<&SecretString>,
        etag: Option<HeaderValue>,
    ) -> Result<Answer, GhError> {
        let token = match bearer {
            Some(token) => token.clone(),
            None => self.bearer().await?,
        };
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(USER_AGENT, self.user_agent.clone())
            .header(AUTHORIZATION, authorization(&token)?);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        let transport = |source| GhError::Transport { url: url.to_string(), source };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        // A body cut short of its declared length is a transport failure too.
        let body = response.bytes().await.map_err(transport)?;
        Ok(Answer { status, headers, body: Arc::from(body.as_ref()), token })
    }

    /// `error` as the rate limit it is, if it is one (reference §1.4: a 403
    /// without those signs is a permission error): a secondary limit waits
    /// its `retry-after`, else a minute doubling; a spent primary limit
    /// waits for its reset.
    fn rate_limit(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        error: GhError,
        url: &str,
        secondary_waits: u32,
    ) -> GhError {
        if !matches!(status.as_u16(), 403 | 429) {
            return error;
        }
        let (url, status) = (url.to_owned(), status.as_u16());
        if let Some(retry_after) = retry_after(headers) {
            return GhError::SecondaryRateLimited { url, status, retry_after };
        }
        if headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()) == Some("0") {
            let reset = headers
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .unwrap_or_else(|| Utc::now() + TimeDelta::seconds(60));
            return GhError::RateLimited { url, status, reset };
        }
        let message = match &error {
            GhError::Api { body, .. } => body.message.to_ascii_lowercase(),
            _ => String::new(),
        };
        if status == 429 || message.contains("rate limit") {
            let retry_after = self.secondary_wait.saturating_mul(2u32.saturating_pow(secondary_waits));
            return GhError::SecondaryRateLimited { url, status, retry_after };
        }
        error
    }

    fn cache_get(&self, key: &str) -> Option<CachedResponse> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key)
    }

    fn cache_put(&self, key: String, entry: CachedResponse) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(key, entry);
    }
}

/// One answer, read whole, and the token its request carried.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Arc<[u8]>,
    token: SecretString,
}

fn authorization(token: &SecretString) -> Result<HeaderValue, GhError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| GhError::Invalid("the token contains characters not allowed in a header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The `rel="next"` URL of a `Link` header, e.g.
/// `<https://api.github.com/…?page=2>; rel="next", <…?page=5>; rel="last"`.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == r#"rel="next""# || p == "rel=next"
            })
            .then(|| target.to_owned())
    })
}

/// The server's `Date`, for the dispatch fallback's `created>=` filter.
pub(crate) fn server_date(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    DateTime::parse_from_rfc2822(date).ok().map(|d| d.with_timezone(&Utc))
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

    #[test]
    fn next_link_follows_rel_next_only() {
        let h = r#"<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=4>; rel="next", <https://api.github.com/repositories/1300192/issues?page=515>; rel="last", <https://api.github.com/repositories/1300192/issues?page=1>; rel="first""#;
        assert_eq!(next_link(h).as_deref(), Some("https://api.github.com/repositories/1300192/issues?page=4"));
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="first""#), None);
    }

    #[test]
    fn server_date_reads_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::DATE, HeaderValue::from_static("Tue, 05 May 2026 10:00:00 GMT"));
        assert_eq!(server_date(&h), Some("2026-05-05T10:00:00Z".parse().unwrap()));
    }
}
