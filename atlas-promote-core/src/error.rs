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

    /// The first error of type `T` among this error's sources (its
    /// `source`, that one's, and so on): how an adapter's own error, boxed
    /// in [`Error::Backend`], is read back.
    ///
    /// ```
    /// use atlas_promote_core::Error;
    ///
    /// let error = Error::backend("ci", "trigger", true, std::io::Error::other("reset"));
    /// assert_eq!(error.find_source::<std::io::Error>().map(|e| e.to_string()).as_deref(), Some("reset"));
    /// assert!(error.find_source::<std::fmt::Error>().is_none());
    /// ```
    pub fn find_source<T: std::error::Error + 'static>(&self) -> Option<&T> {
        std::iter::successors(std::error::Error::source(self), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
    }

    /// `text` with every one of `secrets` and the value of every credential
    /// header (`Authorization`, `Proxy-Authorization`, `Circle-Token`, in any
    /// case) replaced by `[redacted]`.
    ///
    /// A server, or a proxy before it, may echo the request's headers into an
    /// error body, and an adapter's error carries that body's message: run every
    /// text an error keeps from an answer through this, with the adapter's own
    /// token and webhook secret. A header's value is taken to run from after its
    /// `:` or `=` to the next quote, line end, `,`, `;`, `&`, `}`, `]` or `<`,
    /// so it is found in plain text, JSON, query strings and Go's printed maps
    /// alike; an empty secret is ignored.
    ///
    /// ```
    /// use atlas_promote_core::Error;
    ///
    /// let echo = r#"{"message": "bad request", "headers": {"Authorization": "Bearer ghp_x1"}} key=k3y"#;
    /// assert_eq!(
    ///     Error::redact_secrets(echo, ["k3y"]),
    ///     r#"{"message": "bad request", "headers": {"Authorization": "[redacted]"}} key=[redacted]"#,
    /// );
    /// assert_eq!(Error::redact_secrets("Circle-Token: c1\nok", []), "Circle-Token: [redacted]\nok");
    /// ```
    pub fn redact_secrets<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
        let mut text = redact_credential_headers(text);
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            if text.contains(secret) {
                text = text.replace(secret, REDACTED);
            }
        }
        text
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

/// What a redacted secret reads as.
const REDACTED: &str = "[redacted]";

/// Request headers whose value is a credential wherever it shows.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "circle-token"];

fn redact_credential_headers(text: &str) -> String {
    // ASCII lower-casing keeps every byte where it was: offsets carry over.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut from) = (0, 0);
    while let Some((at, len)) =
        CREDENTIAL_HEADERS.iter().filter_map(|name| lower[from..].find(name).map(|i| (from + i, name.len()))).min()
    {
        let name_end = at + len;
        let rest = &text[name_end..];
        let separator =
            rest.find(|c: char| !matches!(c, '"' | '\'' | '\\' | ' ' | '\t' | ':' | '=')).unwrap_or(rest.len());
        from = name_end + separator;
        if !rest[..separator].contains([':', '=']) {
            continue;
        }
        let value = &text[from..];
        let value_len = value.find(['"', '\'', '\\', '\r', '\n', ',', ';', '&', '}', ']', '<']).unwrap_or(value.len());
        if value_len == 0 {
            continue;
        }
        out.push_str(&text[copied..from]);
        out.push_str(REDACTED);
        from += value_len;
        copied = from;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::{Error, with_innermost_cause};

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

    #[test]
    fn secrets_and_credential_header_values_are_redacted_wherever_they_show() {
        let token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
        let cases = [
            // Plain text, as an echo server or a proxy's error page prints headers.
            (format!("Authorization: Bearer {token}\r\nAccept: */*"), "Authorization: [redacted]\r\nAccept: */*"),
            // JSON, any case, spaces around the colon, escaped quotes in a nested document.
            (
                format!(r#"{{"AUTHORIZATION" : "token {token}", "a": 1}}"#),
                r#"{"AUTHORIZATION" : "[redacted]", "a": 1}"#,
            ),
            (
                format!(r#"{{"message":"{{\"circle-token\":\"{token}\"}}"}}"#),
                r#"{"message":"{\"circle-token\":\"[redacted]\"}"}"#,
            ),
            // A query string and Go's printed header map.
            (format!("GET /x?circle-token={token}&a=1"), "GET /x?circle-token=[redacted]&a=1"),
            (format!("map[Proxy-Authorization:[Basic {token}]]"), "map[Proxy-Authorization:[redacted]]]"),
            // The secret itself, wherever it is.
            (format!("echo {token} echo {token}"), "echo [redacted] echo [redacted]"),
        ];
        for (text, want) in cases {
            assert_eq!(Error::redact_secrets(&text, [token]), want, "{text}");
        }
    }

    #[test]
    fn words_that_only_name_a_credential_are_kept() {
        for text in ["Requires authorization.", r#"{"authorization_url": "https://x"}"#, "circle-token-id: 7", ""] {
            assert_eq!(Error::redact_secrets(text, [""]), text);
        }
    }
}
