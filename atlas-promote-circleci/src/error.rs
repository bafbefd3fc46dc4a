//! The crate's private error enum, and its conversion into the core [`Error`].
//!
//! Everything public returns [`atlas_promote_core::Error`]; this enum is the
//! boxed `source` of [`Error::Backend`], saying what the API answered.

use std::fmt;
use std::time::Duration;

use atlas_promote_core::Error;
use reqwest::StatusCode;

/// The backend name in every error this crate returns.
pub(crate) const BACKEND: &str = "circleci";

/// What went wrong talking to CircleCI.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A non-success HTTP status. `raw` is the body as received (cut to 2 KiB).
    #[error("HTTP {status}: {}", if message.is_empty() { "(no message)" } else { message })]
    Http { status: StatusCode, message: String, raw: String, retry_after: Option<Duration> },
    /// The request did not complete: connection refused, reset, timed out.
    #[error("request failed: {}", atlas_promote_core::with_innermost_cause(.0))]
    Transport(#[source] reqwest::Error),
    /// The answer's body could not be read to its end: the connection closed
    /// (or timed out) before the declared length arrived. reqwest reports it
    /// as a decode error; it is a transport failure, and temporary.
    #[error("answer cut short while reading its body: {}", atlas_promote_core::with_innermost_cause(.0))]
    Body(#[source] reqwest::Error),
    /// A success status whose body is not what the API documents.
    #[error("unexpected response body: {message}; body starts {snippet:?}")]
    Decode { message: String, snippet: String },
}

impl ApiError {
    /// Whether retrying may help: 408, 429, 5xx, timeouts and connection failures.
    pub(crate) fn is_temporary(&self) -> bool {
        match self {
            Self::Http { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            Self::Transport(e) => e.is_timeout() || e.is_connect() || e.is_request() || e.is_body(),
            Self::Body(_) => true,
            Self::Decode { .. } => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The core error for a failure of `operation`: 404 is [`Error::NotFound`],
    /// the rest [`Error::Backend`] with `temporary` set as [`Self::is_temporary`].
    pub(crate) fn into_core(self, operation: &str) -> Error {
        match &self {
            Self::Http { status, message, .. } if *status == StatusCode::NOT_FOUND => Error::NotFound {
                backend: BACKEND.into(),
                what: if message.is_empty() { operation.to_owned() } else { format!("{operation} ({message})") },
            },
            _ => Error::backend(BACKEND, operation, self.is_temporary(), self),
        }
    }
}

/// The pipeline-run endpoint answered 200 with a message instead of creating a
/// pipeline (e.g. `"Ignoring pipeline due to CI skip in the commit"`).
///
/// Returned as the `source` of [`Error::Backend`] from
/// [`CiProvider::trigger`](atlas_promote_core::CiProvider::trigger)
/// (permanent: triggering again gives the same answer); downcast to tell it apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineNotCreated {
    /// CircleCI's explanation.
    pub message: String,
}

impl fmt::Display for PipelineNotCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no pipeline was created: {}", self.message)
    }
}

impl std::error::Error for PipelineNotCreated {}

/// An invalid configuration or argument.
pub(crate) fn invalid(what: &str, message: impl Into<String>) -> Error {
    Error::Invalid { what: what.into(), message: message.into() }
}

/// A permanent failure with a plain message (an API answer that makes no sense).
pub(crate) fn permanent(operation: &str, message: impl Into<String>) -> Error {
    Error::backend(BACKEND, operation, false, message.into())
}
