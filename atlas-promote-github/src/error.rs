//! The backend's error: [`GitHubError`], public and readable by a program,
//! wrapping the private enum the client builds, and its conversion into the
//! core [`Error`] at the trait boundary.

use std::fmt;
use std::time::Duration;

use atlas_promote_core::Error;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// The backend's name in core errors.
pub(crate) const BACKEND: &str = "github";

/// What went wrong talking to GitHub: the `source` of every
/// [`Error::Backend`] this crate returns for a failed API call (a 404 is
/// [`Error::NotFound`], a configuration that cannot work [`Error::Invalid`]).
///
/// A program reads it instead of parsing the message: find it in a core
/// error with [`GitHubError::of`], then ask for the [status](Self::status),
/// GitHub's [message](Self::message), the [fields](Self::fields) of a 422,
/// the [documentation URL](Self::documentation_url), the
/// [permissions the endpoint accepts](Self::accepted_permissions), how long
/// to wait ([`retry_after`](Self::retry_after)) and whether retrying may help
/// ([`is_temporary`](Self::is_temporary)). No text it holds carries a token.
///
/// ```
/// use atlas_promote_github::GitHubError;
///
/// fn advice(error: &atlas_promote_core::Error) -> Option<String> {
///     let e = GitHubError::of(error)?;
///     if let Some(needed) = e.accepted_permissions() {
///         return Some(format!("give the token {needed}"));
///     }
///     let fields: Vec<_> = e.fields().iter().filter_map(|f| f.field.as_deref()).collect();
///     Some(format!("{:?} {}: fix {fields:?}", e.status(), e.message().unwrap_or_default()))
/// }
/// # let _ = advice;
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct GitHubError(GhError);

/// The kind of a [`GitHubError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GitHubErrorKind {
    /// GitHub answered with an error status: see [`GitHubError::status`],
    /// [`GitHubError::message`] and [`GitHubError::fields`].
    Status,
    /// The request never got an answer, or its answer was cut short.
    Transport,
    /// The primary rate limit is spent until [`GitHubError::rate_limit_reset`],
    /// further than the client was willing to wait.
    RateLimited,
    /// A secondary rate limit asked to wait longer than the client was willing to.
    SecondaryRateLimited,
    /// A success status whose body is not what the API documents.
    Decode,
    /// The call, its retries and waits included, did not end within its
    /// deadline ([`RetrySettings::with_deadline`](crate::RetrySettings::with_deadline)): temporary.
    Deadline,
    /// A status the operation does not expect (202 where 201 is documented).
    Unexpected,
    /// The GitHub App's credentials could not produce an installation token.
    AppAuth,
    /// Configuration or input that cannot work.
    Invalid,
}

/// One item of a GitHub error's `errors[]` (reference §1.6): which field of
/// which resource was refused, and why. An item GitHub sends as a plain
/// string is a `message` alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The resource, e.g. `Label`, `DeploymentStatus`.
    pub resource: Option<String>,
    /// The field, e.g. `color`.
    pub field: Option<String>,
    /// `missing`, `missing_field`, `invalid`, `already_exists`,
    /// `unprocessable`, or `custom` (then `message` says).
    pub code: Option<String>,
    /// A sentence, when GitHub gives one.
    pub message: Option<String>,
}

impl FieldError {
    fn from_value(value: serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::String(message) => Self { message: Some(message), ..Self::default() },
            Value::Object(o) => {
                let get = |k: &str| match o.get(k) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                };
                Self { resource: get("resource"), field: get("field"), code: get("code"), message: get("message") }
            }
            other => Self { message: Some(other.to_string()), ..Self::default() },
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [&self.resource, &self.field, &self.code];
        if parts.iter().all(|p| p.is_none()) {
            return f.write_str(self.message.as_deref().unwrap_or_default());
        }
        let parts: Vec<&str> = parts.iter().map(|p| p.as_deref().unwrap_or_default()).collect();
        f.write_str(&parts.join(" "))?;
        match self.message.as_deref() {
            Some(message) if !message.is_empty() => write!(f, " ({message})"),
            _ => Ok(()),
        }
    }
}

impl GitHubError {
    /// The GitHub error inside `error`: its `source`, or a source of that.
    pub fn of(error: &Error) -> Option<&Self> {
        error.find_source()
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> GitHubErrorKind {
        match &self.0 {
            GhError::Transport { .. } => GitHubErrorKind::Transport,
            GhError::Api { .. } => GitHubErrorKind::Status,
            GhError::RateLimited { .. } => GitHubErrorKind::RateLimited,
            GhError::SecondaryRateLimited { .. } => GitHubErrorKind::SecondaryRateLimited,
            GhError::Decode { .. } => GitHubErrorKind::Decode,
            GhError::Deadline { .. } => GitHubErrorKind::Deadline,
            GhError::Unexpected { .. } => GitHubErrorKind::Unexpected,
            GhError::AppAuth(_) => GitHubErrorKind::AppAuth,
            GhError::Invalid(_) => GitHubErrorKind::Invalid,
        }
    }

    /// The HTTP status GitHub answered with, if it answered with one that failed the call.
    pub fn status(&self) -> Option<u16> {
        self.0.status()
    }

    /// GitHub's `message` (or, for an answer not in GitHub's error shape, its
    /// first 200 characters); `None` when it gave none.
    pub fn message(&self) -> Option<&str> {
        match &self.0 {
            GhError::Api { body, .. } if !body.message.is_empty() => Some(&body.message),
            GhError::Unexpected { message, .. } if !message.is_empty() => Some(message),
            _ => None,
        }
    }

    /// The items of GitHub's `errors[]` (a 422 names the fields it refused).
    pub fn fields(&self) -> &[FieldError] {
        match &self.0 {
            GhError::Api { body, .. } => &body.errors,
            _ => &[],
        }
    }

    /// GitHub's `documentation_url`: the page about the endpoint or the error.
    pub fn documentation_url(&self) -> Option<&str> {
        match &self.0 {
            GhError::Api { body, .. } => body.documentation_url.as_deref(),
            _ => None,
        }
    }

    /// The `X-Accepted-GitHub-Permissions` header of a refusal: the
    /// permissions the endpoint accepts (e.g. `actions=write`), the ones a
    /// token that got 403 or 404 may lack.
    pub fn accepted_permissions(&self) -> Option<&str> {
        match &self.0 {
            GhError::Api { accepted_permissions, .. } => accepted_permissions.as_deref(),
            _ => None,
        }
    }

    /// How long GitHub asked to wait: its `Retry-After`, or the time left
    /// until a spent primary rate limit resets.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after()
    }

    /// When a spent primary rate limit resets (`X-RateLimit-Reset`).
    pub fn rate_limit_reset(&self) -> Option<DateTime<Utc>> {
        match &self.0 {
            GhError::RateLimited { reset, .. } => Some(*reset),
            _ => None,
        }
    }

    /// The URL of the request that failed, when there was one.
    pub fn url(&self) -> Option<&str> {
        match &self.0 {
            GhError::Transport { url, .. }
            | GhError::Api { url, .. }
            | GhError::RateLimited { url, .. }
            | GhError::SecondaryRateLimited { url, .. }
            | GhError::Decode { url, .. }
            | GhError::Deadline { url, .. }
            | GhError::Unexpected { url, .. } => Some(url),
            GhError::AppAuth(_) | GhError::Invalid(_) => None,
        }
    }

    /// Whether retrying later may succeed: no answer, 5xx, 429, a rate
    /// limit, a call past its deadline, a 202 where the operation expects more.
    pub fn is_temporary(&self) -> bool {
        self.0.is_temporary()
    }
}

/// What went wrong talking to GitHub, as the client sees it. Never carries a
/// token: request URLs and GitHub's own error messages, redacted, are the
/// only text it holds.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GhError {
    /// The request never got an answer (connection, TLS, timeout).
    #[error("request to {url} failed: {}", atlas_promote_core::with_innermost_cause(source))]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// GitHub answered with an error status.
    #[error("{status} from {url}: {body}")]
    Api {
        url: String,
        status: u16,
        /// Boxed: the enum stays small on every `Result`'s error path.
        body: Box<ApiErrorBody>,
        accepted_permissions: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The primary rate limit is spent until `reset` (retried when that is
    /// within the longest wait and the call's deadline).
    #[error("rate limit exhausted until {reset} ({url})")]
    RateLimited { url: String, status: u16, reset: DateTime<Utc> },
    /// A secondary rate limit asking to wait `retry_after` (retried when
    /// that is within the longest wait and the call's deadline).
    #[error("secondary rate limit: retry after {retry_after:?} ({url})")]
    SecondaryRateLimited { url: String, status: u16, retry_after: Duration },
    /// The call, its retries and waits included, did not end within its deadline.
    #[error("no answer from {url} within the call's deadline of {deadline:?}")]
    Deadline { url: String, deadline: Duration },
    /// A 2xx answer whose body is not what the API documents. `message` is
    /// serde's, redacted (it quotes the body's strings).
    #[error("unexpected body from {url}: {message}")]
    Decode { url: String, message: String },
    /// A status the operation does not expect (e.g. 202 where 201 was documented).
    #[error("unexpected {status} from {url}: {message}")]
    Unexpected { url: String, status: u16, message: String },
    /// Configuration or input that cannot work (reported before any request).
    #[error("{0}")]
    Invalid(String),
    /// The GitHub App credentials could not produce a token.
    #[error("GitHub App authentication failed: {0}")]
    AppAuth(String),
}

impl GhError {
    /// Whether retrying later may succeed.
    pub(crate) fn is_temporary(&self) -> bool {
        match self {
            Self::Transport { .. }
            | Self::RateLimited { .. }
            | Self::SecondaryRateLimited { .. }
            | Self::Deadline { .. } => true,
            Self::Api { status, .. } => *status >= 500 || *status == 429,
            Self::Unexpected { status, .. } => *status == 202,
            Self::Decode { .. } | Self::Invalid(_) | Self::AppAuth(_) => false,
        }
    }

    /// A rate limit: GitHub refused the request unread, so even a write may be sent again.
    pub(crate) fn is_rate_limit(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::SecondaryRateLimited { .. })
    }

    /// How long GitHub asked to wait: its `Retry-After`, or the time left
    /// until a spent primary rate limit resets.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::SecondaryRateLimited { retry_after, .. } => Some(*retry_after),
            Self::RateLimited { reset, .. } => Some((*reset - Utc::now()).to_std().unwrap_or(Duration::ZERO)),
            _ => None,
        }
    }

    /// The HTTP status GitHub answered with, if it answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::Unexpected { status, .. }
            | Self::RateLimited { status, .. }
            | Self::SecondaryRateLimited { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Into the core error: 404 becomes [`Error::NotFound`] of `what`, the
    /// rest an [`Error::Backend`] whose source is a [`GitHubError`].
    pub(crate) fn into_core(self, operation: &str, what: impl FnOnce() -> String) -> Error {
        match self {
            Self::Api { status: 404, .. } => Error::NotFound { backend: BACKEND.into(), what: what() },
            Self::Invalid(message) => Error::Invalid { what: format!("github {operation}"), message },
            other => {
                let temporary = other.is_temporary();
                Error::backend(BACKEND, operation, temporary, GitHubError(other))
            }
        }
    }
}

/// GitHub's error body: `{message, documentation_url, errors}` (reference §1.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ApiErrorBody {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) documentation_url: Option<String>,
    /// Items are objects `{resource, field, code, message?}` or, sometimes, plain strings.
    #[serde(default, deserialize_with = "field_errors")]
    pub(crate) errors: Vec<FieldError>,
}

fn field_errors<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<FieldError>, D::Error> {
    let items = Option::<Vec<serde_json::Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(items.into_iter().map(FieldError::from_value).collect())
}

impl fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.message.is_empty() { "(no message)" } else { &self.message })?;
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        if let Some(doc) = &self.documentation_url {
            write!(f, " (see {doc})")?;
        }
        Ok(())
    }
}

/// Turn an error answer into a [`GhError::Api`]. A body that is not GitHub's
/// error shape (an HTML page from a proxy, an empty body) keeps its first
/// 200 characters as the message. `token` (the one the request carried) and
/// any credential header's value are redacted from the body first: a server
/// or proxy may echo the request's headers.
pub(crate) fn parse_error(
    url: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    token: &str,
) -> GhError {
    let body = atlas_promote_core::Error::redact_secrets(&String::from_utf8_lossy(body), [token]);
    let parsed = serde_json::from_str::<ApiErrorBody>(&body)
        .unwrap_or_else(|_| ApiErrorBody { message: body.chars().take(200).collect(), ..ApiErrorBody::default() });
    let accepted_permissions =
        headers.get("x-accepted-github-permissions").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry_after = retry_after(headers);
    GhError::Api { url: url.to_owned(), status, body: Box::new(parsed), accepted_permissions, retry_after }
}

/// `Retry-After` in seconds, the form GitHub sends.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers.get("retry-after")?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_422: &str = include_str!("../tests/data/error_422_validation_failed.json");

    #[test]
    fn parse_error_reads_message_errors_and_documentation_url() {
        let e = parse_error("https://api.github.com/x", 422, &Default::default(), FIXTURE_422.as_bytes(), "");
        let GhError::Api { status, body, .. } = &e else { panic!("not an API error: {e:?}") };
        assert_eq!(*status, 422);
        assert_eq!(body.message, "Validation Failed");
        assert_eq!(body.errors.len(), 1);
        assert_eq!(
            body.documentation_url.as_deref(),
            Some("https://docs.github.com/rest/reference/issues#create-a-label")
        );
        let text = e.to_string();
        assert!(text.contains("Validation Failed; Label color invalid"), "{text}");
        assert!(!e.is_temporary());
    }

    #[test]
    fn parse_error_tolerates_string_errors_and_non_json_bodies() {
        let e = parse_error("u", 422, &Default::default(), br#"{"message":"x","errors":["plain"]}"#, "");
        assert!(e.to_string().contains("x; plain"));
        let e = parse_error("u", 502, &Default::default(), b"<html>bad gateway</html>", "");
        assert!(e.to_string().contains("<html>bad gateway</html>"));
        assert!(e.is_temporary());
    }

    #[test]
    fn not_found_becomes_core_not_found() {
        let e = parse_error("u", 404, &Default::default(), br#"{"message":"Not Found"}"#, "");
        let core = e.into_core("get run", || "workflow run 7".into());
        assert!(matches!(core, Error::NotFound { ref what, .. } if what == "workflow run 7"));
    }
}
