//! The core's error type, shared by every backend trait.

/// A boxed error from a backend or the operating system.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a backend, a store, or the engine, or reading
/// a policy or evidence file.
///
/// Backends keep private error enums and convert them into this one, saying
/// whether a failure is [temporary](Error::is_temporary) (worth retrying) or
/// permanent. Every error of the library converts into it, so `?` works in a
/// function returning [`Result`]:
///
/// ```
/// use atlas_promote_core::{Decision, Evidence, Policy, Result};
///
/// fn decide(policy: &str, evidence: &str) -> Result<Decision> {
///     let policy = Policy::from_path(policy)?; // a PolicyError
///     let evidence = Evidence::from_path(evidence)?; // an EvidenceError
///     let now = "2026-05-06T10:00:00Z".parse().expect("an RFC 3339 instant");
///     Ok(policy.gate("staging", "prod")?.evaluate(&evidence, now)) // a GateError
/// }
///
/// let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
/// let policy = format!("{root}/policies/atlas.toml");
/// let decision = decide(&policy, &format!("{root}/evidence/staging-to-prod.json"))?;
/// assert!(decision.is_allowed());
/// let missing = decide(&policy, "no-such-evidence.json").unwrap_err();
/// assert!(matches!(missing, atlas_promote_core::Error::Evidence(_)), "{missing}");
/// # Ok::<(), atlas_promote_core::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("{backend}: {what} not found")]
    NotFound {
        /// The backend or store that was asked.
        backend: String,
        /// What was looked for.
        what: String,
    },
    /// A write was based on a stale version: someone else wrote first.
    #[error("conflict on {key}: expected version {expected:?}, found {found:?}")]
    Conflict {
        /// The document's key.
        key: String,
        /// The version the writer read (`None`: it expected no document).
        expected: Option<u64>,
        /// The version in the store (`None`: there is no document).
        found: Option<u64>,
    },
    /// Another process holds the store.
    #[error("store {path} is locked by another process")]
    Locked {
        /// The store's location.
        path: String,
    },
    /// Stored data is unreadable: written by another version, or damaged.
    #[error("store {path} is corrupt: {message}")]
    Corrupt {
        /// Where.
        path: String,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// The caller is not allowed to do this.
    #[error("refused: {reason}")]
    Refused {
        /// Why, as a sentence.
        reason: String,
    },
    /// The backend does not offer this operation.
    #[error("{backend} does not support {operation}")]
    Unsupported {
        /// The backend.
        backend: String,
        /// The operation asked for.
        operation: String,
    },
    /// The request does not make sense (a bad argument or configuration).
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        message: String,
    },
    /// A backend call failed.
    #[error("{backend} {operation} failed: {source}")]
    Backend {
        /// The backend, e.g. `circleci`.
        backend: String,
        /// The operation, e.g. `trigger pipeline`.
        operation: String,
        /// Whether retrying later may succeed.
        temporary: bool,
        /// The underlying failure.
        source: BoxError,
    },
    /// A state transition that makes no sense now.
    #[error(transparent)]
    Transition(#[from] crate::machine::TransitionError),
    /// A gate that the policy does not have.
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    /// A policy file that could not be read, parsed or validated.
    #[error(transparent)]
    Policy(#[from] crate::file::PolicyError),
    /// An evidence file that could not be read, parsed or accepted.
    #[error(transparent)]
    Evidence(#[from] crate::evidence::EvidenceError),
    /// An I/O failure of a local store.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Backend { temporary, .. } => *temporary,
            Self::Conflict { .. } | Self::Locked { .. } | Self::Io { .. } => true,
            _ => false,
        }
    }

    /// A backend failure.
    pub fn backend(
        backend: impl Into<String>,
        operation: impl Into<String>,
        temporary: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Backend { backend: backend.into(), operation: operation.into(), temporary, source: source.into() }
    }
}

/// An error's message, followed by its innermost cause when the message
/// does not already say it.
///
/// HTTP clients say *where* at the top of an error chain ("error sending
/// request for url (…)") and *what happened* at its bottom ("connection
/// closed before message completed", "operation timed out"); an adapter's
/// transport error reads best with both.
///
/// ```
/// use std::io;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("error sending request")]
/// struct Sending(#[source] io::Error);
///
/// let error = Sending(io::Error::new(io::ErrorKind::TimedOut, "operation timed out"));
/// assert_eq!(atlas_promote_core::with_innermost_cause(&error), "error sending request: operation timed out");
/// ```
pub fn with_innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let innermost = std::iter::successors(error.source(), |e| e.source()).last();
    if let Some(cause) = innermost.map(ToString::to_string).filter(|c| !c.is_empty() && !text.contains(c.as_str())) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::with_innermost_cause;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    fn chain(texts: &[&'static str]) -> Layer {
        texts.iter().rev().fold(None, |inner, text| Some(Layer(text, inner.map(Box::new)))).expect("a layer")
    }

    #[test]
    fn the_innermost_cause_follows_the_message() {
        assert_eq!(with_innermost_cause(&chain(&["sending", "hyper", "timed out"])), "sending: timed out");
    }

    #[test]
    fn a_cause_the_message_already_says_or_an_empty_one_is_left_out() {
        assert_eq!(with_innermost_cause(&chain(&["sending: timed out", "timed out"])), "sending: timed out");
        assert_eq!(with_innermost_cause(&chain(&["sending", ""])), "sending");
        assert_eq!(with_innermost_cause(&chain(&["alone"])), "alone");
    }
}
