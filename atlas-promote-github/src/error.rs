//! The backend's private error, converted into the core [`Error`] at the
//! trait boundary (object_store style: one public error enum, in core).

use std::fmt;
use std::time::Duration;

use atlas_promote_core::Error;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The backend's name in core errors.
pub(crate) const BACKEND: &str = "github";

/// What went wrong talking to GitHub. Never carries a token: request URLs
/// and GitHub's own error messages are the only text it holds.
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
    Api { url: String, status: u16, body: ApiErrorBody, accepted_permissions: Option<String> },
    /// The primary rate limit is spent until `reset`, further than we are willing to wait.
    #[error("rate limit exhausted until {reset} ({url})")]
    RateLimited { url: String, reset: DateTime<Utc> },
    /// A secondary rate limit asked us to wait longer than we are willing to.
    #[error("secondary rate limit: retry after {retry_after:?} ({url})")]
    SecondaryRateLimited { url: String, retry_after: Duration },
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
            Self::Transport { .. } | Self::RateLimited { .. } | Self::SecondaryRateLimited { .. } => true,
            Self::Api { status, .. } => *status >= 500 || *status == 429,
            Self::Unexpected { status, .. } => *status == 202,
            Self::Decode { .. } | Self::Invalid(_) | Self::AppAuth(_) => false,
        }
    }

    /// The HTTP status GitHub answered with, if it answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Into the core error: 404 becomes [`Error::NotFound`] of `what`.
    pub(crate) fn into_core(self, operation: &str, what: impl FnOnce() -> String) -> Error {
        match self {
            Self::Api { status: 404, .. } => Error::NotFound { backend: BACKEND.into(), what: what() },
            Self::Invalid(message) => Error::Invalid { what: format!("github {operation}"), message },
            other => {
                let temporary = other.is_temporary();
                Error::backend(BACKEND, operation, temporary, other)
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
    #[serde(default)]
    pub(crate) errors: Vec<serde_json::Value>,
}

impl fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.message.is_empty() { "(no message)" } else { &self.message })?;
        for e in &self.errors {
            match e {
                serde_json::Value::String(s) => write!(f, "; {s}")?,
                serde_json::Value::Object(o) => {
                    let get = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let message = get("message");
                    write!(f, "; {} {} {}", get("resource"), get("field"), get("code"))?;
                    if !message.is_empty() {
                        write!(f, " ({message})")?;
                    }
                }
                other => write!(f, "; {other}")?,
            }
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
    GhError::Api { url: url.to_owned(), status, body: parsed, accepted_permissions }
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
