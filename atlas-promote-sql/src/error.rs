//! The crate's error type, and how database failures become the core's.

use std::io;

use atlas_promote_core::audit::AuditBreak;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong opening, checking or repairing a store.
///
/// The [`StateStore`](atlas_promote_core::StateStore) methods return the
/// core's error; this one converts into it (`?` works), keeping whether the
/// failure is temporary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL names no store this build can open.
    #[error("{url}: {message}")]
    Url {
        /// The URL, without its password.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The database was written by a newer version of atlas-promote.
    #[error(
        "{location}: written by schema version {found}, but this build knows versions up to {supported}; \
         open it with a newer atlas-promote"
    )]
    NewerSchema {
        /// The database.
        location: String,
        /// The newest schema version applied to it.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The file or schema holds something that is not an atlas-promote store.
    #[error("{location} is not an atlas-promote store: {message}")]
    NotAStore {
        /// The database file or schema.
        location: String,
        /// What was found instead.
        message: String,
    },
    /// The audit log's hash chain is broken: a record was changed, removed,
    /// reordered or added outside the store. The store refuses to open until
    /// the break is accepted with [`repair`](crate::SqlStore::repair).
    #[error("{location}: {brk}")]
    BrokenChain {
        /// The database.
        location: String,
        /// Where and how the chain breaks (its `seq` names the record).
        brk: AuditBreak,
    },
    /// The audit log's head is not the one the operator expected.
    #[error("{location}: the audit head is record {seq} ({found}), not {expected}")]
    UnexpectedHead {
        /// The database.
        location: String,
        /// The head's seq.
        seq: u64,
        /// The head's hash.
        found: String,
        /// The hash the operator gave.
        expected: String,
    },
    /// Documents are older than what the log says was committed: state was
    /// lost (restored from an older copy, or rewritten).
    #[error("{location}: lost state: {}", describe_lost(.documents))]
    LostState {
        /// The database.
        location: String,
        /// Each document behind the log: key, version stored, version committed.
        documents: Vec<(String, Option<u64>, u64)>,
    },
    /// A stored value could not be read back.
    #[error("{location}: {what} is damaged: {message}")]
    Damaged {
        /// The database.
        location: String,
        /// Which value.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The store's audit chain is keyed, and no key was given.
    #[error(
        "{location}: its audit chain is keyed (HMAC-SHA256): open it with its chain key \
         (e.g. from {})",
        crate::CHAIN_KEY_ENV
    )]
    ChainKeyRequired {
        /// The database.
        location: String,
    },
    /// The chain key given is not the one the store's chain was written with.
    #[error("{location}: the audit chain key given is not the one this store's chain was written with")]
    WrongChainKey {
        /// The database.
        location: String,
    },
    /// A chain key was given for a store whose chain is not keyed (a store
    /// takes its key when it is created, while its log is empty).
    #[error(
        "{location}: a chain key was given, but this store's audit chain is not keyed \
         (it was created without a key, or the record of its key was removed)"
    )]
    UnkeyedChain {
        /// The database.
        location: String,
    },
    /// The chain key in an environment variable cannot be used.
    #[error("{variable}: {source}")]
    BadChainKey {
        /// The environment variable.
        variable: String,
        /// What is wrong with it (never its value).
        source: atlas_promote_core::audit::ShortChainKey,
    },
    /// The file system refused (read-only, full, missing permission).
    #[error("{location}: {operation}: {source}")]
    Io {
        /// The database file or directory.
        location: String,
        /// What was being done.
        operation: String,
        /// The failure.
        source: io::Error,
    },
    /// The database failed an operation.
    #[error("{location}: {operation} failed: {source}")]
    Database {
        /// The database.
        location: String,
        /// What was being done.
        operation: String,
        /// Whether retrying later may succeed (a dropped connection, a busy database).
        temporary: bool,
        /// The driver's error.
        source: sqlx::Error,
    },
}

fn describe_lost(documents: &[(String, Option<u64>, u64)]) -> String {
    let mut parts: Vec<String> = documents
        .iter()
        .take(5)
        .map(|(key, stored, committed)| match stored {
            Some(v) => format!("{key} is at version {v}, but version {committed} was committed"),
            None => format!("{key} is missing, but version {committed} was committed"),
        })
        .collect();
    if documents.len() > 5 {
        parts.push(format!("and {} more", documents.len() - 5));
    }
    parts.join("; ")
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Database { temporary: true, .. })
    }
}

impl From<Error> for atlas_promote_core::Error {
    fn from(error: Error) -> Self {
        use atlas_promote_core::Error as Core;
        match error {
            Error::Database { location, operation, temporary, source } => {
                Core::backend(location, operation, temporary, source)
            }
            Error::Io { location, operation, source } => {
                Core::Io { path: location, source: io::Error::new(source.kind(), format!("{operation}: {source}")) }
            }
            Error::Url { url, message } => Core::Invalid { what: format!("store URL {url}"), message },
            Error::Damaged { location, what, message } => {
                Core::Corrupt { path: location, message: format!("{what} is damaged: {message}") }
            }
            other @ (Error::NotAStore { .. } | Error::BrokenChain { .. } | Error::LostState { .. }) => {
                let path = other.location().to_owned();
                Core::Corrupt { path, message: other.to_string() }
            }
            other => Core::Refused { reason: other.to_string() },
        }
    }
}

impl Error {
    fn location(&self) -> &str {
        match self {
            Self::Url { url, .. } => url,
            Self::BadChainKey { variable, .. } => variable,
            Self::NewerSchema { location, .. }
            | Self::NotAStore { location, .. }
            | Self::BrokenChain { location, .. }
            | Self::UnexpectedHead { location, .. }
            | Self::LostState { location, .. }
            | Self::ChainKeyRequired { location }
            | Self::WrongChainKey { location }
            | Self::UnkeyedChain { location }
            | Self::Damaged { location, .. }
            | Self::Io { location, .. }
            | Self::Database { location, .. } => location,
        }
    }
}

/// How a driver error reads to the rest of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Retrying later may help: the connection dropped, the database was busy.
    Temporary,
    /// The disk refused: full, read-only, an I/O error.
    Io(io::ErrorKind),
    /// The file is not a database or is damaged.
    Damaged,
    /// Anything else.
    Permanent,
}

/// What a driver error means, by the SQLite result code or PostgreSQL SQLSTATE.
pub(crate) fn classify(error: &sqlx::Error) -> Kind {
    match error {
        sqlx::Error::Io(e) => match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::StorageFull => {
                Kind::Io(e.kind())
            }
            _ => Kind::Temporary,
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed => Kind::Temporary,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.parse::<i64>() {
                // SQLite: the primary result code is the low byte.
                Ok(n) => match n & 0xff {
                    5 | 6 => Kind::Temporary,                         // BUSY, LOCKED
                    8 => Kind::Io(io::ErrorKind::ReadOnlyFilesystem), // READONLY
                    13 => Kind::Io(io::ErrorKind::StorageFull),       // FULL
                    10 | 14 | 15 => Kind::Io(io::ErrorKind::Other),   // IOERR, CANTOPEN, PROTOCOL
                    11 | 26 => Kind::Damaged,                         // CORRUPT, NOTADB
                    _ => Kind::Permanent,
                },
                // PostgreSQL: connection (08), transaction rollback (40),
                // resources (53), operator intervention (57).
                Err(_) if ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class)) => Kind::Temporary,
                Err(_) => Kind::Permanent,
            }
        }
        _ => Kind::Permanent,
    }
}

/// This crate's error for a failed `operation` on the store at `location`.
pub(crate) fn database(location: &str, operation: &str, source: sqlx::Error) -> Error {
    let location = location.to_owned();
    let operation = operation.to_owned();
    match classify(&source) {
        Kind::Temporary => Error::Database { location, operation, temporary: true, source },
        Kind::Permanent => Error::Database { location, operation, temporary: false, source },
        Kind::Io(kind) => Error::Io { location, operation, source: io::Error::new(kind, source.to_string()) },
        Kind::Damaged => Error::Damaged { location, what: "the database file".into(), message: source.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_connection_is_temporary_and_says_where() {
        let error =
            database("postgres://atlas@db/atlas", "commit", sqlx::Error::Io(io::ErrorKind::ConnectionReset.into()));
        assert!(error.is_temporary());
        let core: atlas_promote_core::Error = error.into();
        assert!(core.is_temporary());
        assert!(core.to_string().contains("postgres://atlas@db/atlas"), "{core}");
    }

    #[test]
    fn lost_state_names_each_document_behind_the_log() {
        let error = Error::LostState {
            location: "atlas.db".into(),
            documents: vec![("promotion/a".into(), Some(2), 5), ("promotion/b".into(), None, 1)],
        };
        let text = error.to_string();
        assert!(text.contains("promotion/a is at version 2, but version 5 was committed"), "{text}");
        assert!(text.contains("promotion/b is missing"), "{text}");
    }
}
