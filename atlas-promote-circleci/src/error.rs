//! The crate's error: [`CircleCiError`], public and readable by a program,
//! wrapping the private enum the client builds, and its conversion into the
//! core [`Error`].
//!
//! Everything public returns [`atlas_promote_core::Error`]; a failed API call
//! is an [`Error::Backend`] whose `source` is a [`CircleCiError`] saying what
//! the API answered (a 404 is [`Error::NotFound`] instead).

use std::fmt;
use std::time::Duration;

use atlas_promote_core::Error;
use reqwest::StatusCode;

/// The backend name in every error this crate returns.
pub(crate) const BACKEND: &str = "circleci";

/// What went wrong talking to CircleCI: the `source` of every
/// [`Error::Backend`] this crate returns for a failed API call.
///
/// A program reads it instead of parsing the message: find it in a core
/// error with [`CircleCiError::of`], then ask for the [status](Self::status),
/// the API's [message](Self::message) and [body](Self::body), how long the
/// server asked to wait ([`retry_after`](Self::retry_after)) and whether
/// retrying may help ([`is_temporary`](Self::is_temporary)). Every text it
/// holds has the token and any credential header's value redacted.
///
/// ```
/// use atlas_promote_circleci::{CircleCiError, CircleCiErrorKind};
///
/// fn advice(error: &atlas_promote_core::Error) -> String {
///     match CircleCiError::of(error) {
///         Some(e) if e.kind() == CircleCiErrorKind::Status => {
///             format!("CircleCI answered {:?}: {}", e.status(), e.message().unwrap_or("(no message)"))
///         }
///         Some(e) if e.is_temporary() => format!("try again in {:?}", e.retry_after()),
///         _ => error.to_string(),
///     }
/// }
/// # let _ = advice;
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CircleCiError(ApiError);

/// The kind of a [`CircleCiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircleCiErrorKind {
    /// CircleCI answered with an error status: see [`CircleCiError::status`]
    /// and [`CircleCiError::message`].
    Status,
    /// The request got no answer: connection refused or reset, timed out.
    Transport,
    /// The answer's body stopped before its declared length (a proxy
    /// restarting mid-answer): temporary.
    CutShort,
    /// A success status whose body is not what the API documents.
    Decode,
    /// An answer that makes no sense for the operation, or a request that
    /// could not be encoded.
    Unexpected,
    /// The call, its retries and waits included, did not end within its
    /// deadline ([`RetrySettings::with_deadline`](crate::RetrySettings::with_deadline)): temporary.
    Deadline,
}

impl CircleCiError {
    /// The CircleCI error inside `error`: its `source`, or a source of that.
    pub fn of(error: &Error) -> Option<&Self> {
        error.find_source()
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> CircleCiErrorKind {
        match &self.0 {
            ApiError::Http { .. } => CircleCiErrorKind::Status,
            ApiError::Transport(_) => CircleCiErrorKind::Transport,
            ApiError::Body(_) => CircleCiErrorKind::CutShort,
            ApiError::Decode { .. } => CircleCiErrorKind::Decode,
            ApiError::Unexpected(_) => CircleCiErrorKind::Unexpected,
            ApiError::Deadline(_) => CircleCiErrorKind::Deadline,
        }
    }

    /// The HTTP status CircleCI answered with, when it answered an error.
    pub fn status(&self) -> Option<u16> {
        match &self.0 {
            ApiError::Http { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }

    /// The API's own message: `message`, `error` or `detail` of its body
    /// (the innermost one when a JSON document is nested as a string), or a
    /// plain-text body; `None` when it gave none.
    pub fn message(&self) -> Option<&str> {
        match &self.0 {
            ApiError::Http { message, .. } if !message.is_empty() => Some(message),
            _ => None,
        }
    }

    /// The error answer's body as received (its first 2 KiB), for fields
    /// [`message`](Self::message) does not read.
    pub fn body(&self) -> Option<&str> {
        match &self.0 {
            ApiError::Http { raw, .. } => Some(raw),
            _ => None,
        }
    }

    /// How long the server asked to wait (`Retry-After`, seconds or an HTTP date).
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after()
    }

    /// Whether retrying may help: 408, 429, 5xx, timeouts, connection
    /// failures, answers cut short and calls past their deadline.
    pub fn is_temporary(&self) -> bool {
        self.0.is_temporary()
    }
}

/// What went wrong talking to CircleCI, as the client sees it.
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
    /// An answer that makes no sense, or a request that cannot be encoded.
    #[error("{0}")]
    Unexpected(String),
    /// The call, its retries and waits included, did not end within its deadline.
    #[error("no answer within the call's deadline of {0:?}")]
    Deadline(Duration),
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
            Self::Body(_) | Self::Deadline(_) => true,
            Self::Decode { .. } | Self::Unexpected(_) => false,
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
    /// the rest [`Error::Backend`] with `temporary` set as [`Self::is_temporary`]
    /// and a [`CircleCiError`] as its source.
    pub(crate) fn into_core(self, operation: &str) -> Error {
        match &self {
            Self::Http { status, message, .. } if *status == StatusCode::NOT_FOUND => Error::NotFound {
                backend: BACKEND.into(),
                what: if message.is_empty() { operation.to_owned() } else { format!("{operation} ({message})") },
            },
            _ => Error::backend(BACKEND, operation, self.is_temporary(), CircleCiError(self)),
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
    ApiError::Unexpected(message.into()).into_core(operation)
}
