//! SQLite and PostgreSQL state stores for atlas-promote (DESIGN §8).
//!
//! A store is opened from a URL: `sqlite://path/atlas.db` (feature
//! `sqlite`, the default; the file is created if missing) or
//! `postgres://user@host/db` (feature `postgres`). Opening applies the
//! embedded migrations, refuses a database written by a newer schema
//! version, and checks the audit log's hash chain from the last verified
//! checkpoint: a broken chain, or documents older than the commits the
//! store recorded, are refused with a typed [`Error`] until an operator
//! accepts them with [`SqlStore::repair`].
//!
//! The chain is plain SHA-256 unless the store is keyed: with
//! [`OpenOptions::with_chain_key`] (or [`OpenOptions::with_chain_key_from_env`],
//! which reads [`CHAIN_KEY_ENV`]) a new store's chain is HMAC-SHA256 under a
//! key kept outside the database, so that whoever can write the database
//! still cannot rewrite the log without the break showing. The store keeps
//! only the key's fingerprint, to tell a wrong or missing key from a broken
//! chain. [`SqlStore::verify_expecting_head`] checks the head against a hash
//! kept elsewhere.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use atlas_promote_core::{StateStore, Write};
//! use atlas_promote_sql::SqlStore;
//!
//! # let dir = std::env::temp_dir().join(format!("atlas-promote-sql-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let url = format!("sqlite://{}/atlas.db", dir.display());
//! let store = SqlStore::open(&url).await?;
//! let put = Write::Put { key: "promotion/9fceb02".into(), expected: None, value: serde_json::json!({}) };
//! assert_eq!(store.commit(vec![put], vec![]).await?, [1]);
//! drop(store);
//!
//! let store = SqlStore::open(&url).await?;
//! assert_eq!(store.get("promotion/9fceb02").await?.unwrap().version, 1);
//! assert_eq!(store.verify().await?.records, 0);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod codec;
mod commit;
mod error;
mod migrate;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

use async_trait::async_trait;
use atlas_promote_core::audit::{AuditHead, ChainKey};
use atlas_promote_core::{
    AuditEntry, AuditRecord, ClaimOutbox, Commit, Delivery, Document, Fetched, Lease, LeaseOutcome, OutboxItem,
    StateStore, Write,
};
use chrono::{DateTime, TimeDelta, Utc};

pub use check::Verified;
pub use error::{Error, Result};
pub use migrate::SCHEMA_VERSION;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// The environment variable [`OpenOptions::with_chain_key_from_env`] reads.
pub const CHAIN_KEY_ENV: &str = "ATLAS_AUDIT_CHAIN_KEY";

/// How [`SqlStore::open_with`] opens a store.
///
/// `Debug` shows whether a chain key is set, never the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// PostgreSQL only: the schema the tables live in (created if missing);
    /// `None`: the connection's default (`search_path`).
    pub schema: Option<String>,
    /// The audit chain's key (HMAC-SHA256), kept outside the database. A
    /// store created with a key (its log still empty) is keyed for good:
    /// it opens only with the same key, and one created without opens only
    /// without ([`Error::ChainKeyRequired`], [`Error::WrongChainKey`],
    /// [`Error::UnkeyedChain`]).
    pub chain_key: Option<ChainKey>,
}

impl OpenOptions {
    /// The defaults: the connection's own schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same options with the tables in `schema` (PostgreSQL only).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The same options with the audit chain keyed by `key`.
    pub fn with_chain_key(mut self, key: ChainKey) -> Self {
        self.chain_key = Some(key);
        self
    }

    /// The same options with the chain key from [`CHAIN_KEY_ENV`]
    /// (`ATLAS_AUDIT_CHAIN_KEY`, its bytes as UTF-8) when it is set and not
    /// empty; unchanged when it is not. A key shorter than
    /// [`CHAIN_KEY_MIN_LEN`](atlas_promote_core::audit::CHAIN_KEY_MIN_LEN)
    /// bytes is [`Error::BadChainKey`].
    pub fn with_chain_key_from_env(self) -> Result<Self> {
        self.with_chain_key_from(CHAIN_KEY_ENV, std::env::var_os(CHAIN_KEY_ENV))
    }

    /// [`with_chain_key_from_env`](Self::with_chain_key_from_env) with the
    /// value already read (from the environment, or a program's own lookup
    /// of `variable`, which errors name).
    pub fn with_chain_key_from(self, variable: &str, value: Option<std::ffi::OsString>) -> Result<Self> {
        let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(self) };
        let bytes = value.into_encoded_bytes();
        let key =
            ChainKey::new(bytes).map_err(|source| Error::BadChainKey { variable: variable.to_owned(), source })?;
        Ok(self.with_chain_key(key))
    }
}

/// A store on SQLite or PostgreSQL, chosen by its URL.
#[derive(Debug)]
#[non_exhaustive]
pub enum SqlStore {
    /// One SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
}

impl SqlStore {
    /// Open the store at `url`, checking it (see the crate docs).
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, OpenOptions::new()).await
    }

    /// Open the store at `url` with `options`.
    pub async fn open_with(url: &str, options: OpenOptions) -> Result<Self> {
        let store = Self::connect(url, &options).await?;
        check::on_open(store.tables()).await?;
        Ok(store)
    }

    /// Open the store at `url` without checking its chain and documents:
    /// only to look at a damaged store, or to [`repair`](Self::repair) it.
    pub async fn open_unchecked(url: &str, options: OpenOptions) -> Result<Self> {
        Self::connect(url, &options).await
    }

    async fn connect(url: &str, options: &OpenOptions) -> Result<Self> {
        let store = Self::connect_unkeyed(url, options).await?;
        check::chain_key(store.tables()).await?;
        Ok(store)
    }

    async fn connect_unkeyed(url: &str, options: &OpenOptions) -> Result<Self> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteStore::connect(url, options.chain_key.clone()).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(
                PostgresStore::connect(url, options.schema.as_deref(), options.chain_key.clone()).await?,
            )),
            _ => {
                let _ = options;
                let shown = url.split_once('@').map_or(url, |(_, host)| host);
                Err(Error::Url {
                    url: shown.to_owned(),
                    message: format!(
                        "not a store URL this build opens (features: {}); expected sqlite://path or postgres://…",
                        [
                            cfg!(feature = "sqlite").then_some("sqlite"),
                            cfg!(feature = "postgres").then_some("postgres")
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ")
                    ),
                })
            }
        }
    }

    fn tables(&self) -> &dyn check::Tables {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => s,
        }
    }

    /// Close every connection, waiting until they are closed (SQLite: the
    /// write-ahead log is checkpointed into the file). Dropping the store
    /// closes them in the background.
    pub async fn close(self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.pool.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => s.pool.close().await,
        }
    }

    /// Where the store is: the SQLite file, or the PostgreSQL database (without its password).
    pub fn location(&self) -> &str {
        self.tables().location()
    }

    /// Walk the whole audit log from its first record: one unbroken chain
    /// up to the recorded head, or [`Error::BrokenChain`] naming the first
    /// record that does not fit by its seq.
    pub async fn verify(&self) -> Result<Verified> {
        check::verify(self.tables()).await
    }

    /// [`verify`](Self::verify), and check that the head is `expected` (a
    /// hash the operator wrote down somewhere else): a log rewritten with
    /// its head verifies, but not against a head kept elsewhere.
    pub async fn verify_expecting_head(&self, expected: &str) -> Result<Verified> {
        let verified = self.verify().await?;
        if verified.head.hash != expected {
            return Err(Error::UnexpectedHead {
                location: verified.location,
                seq: verified.head.seq,
                found: verified.head.hash,
                expected: expected.to_owned(),
            });
        }
        Ok(verified)
    }

    /// Accept `problem` (what [`open`](Self::open) refused) on a store
    /// opened with [`open_unchecked`](Self::open_unchecked): the break is
    /// recorded in the audit log by `actor`, and the store opens again.
    /// Returns the new head.
    pub async fn repair(&self, problem: &Error, actor: &str, at: DateTime<Utc>) -> Result<AuditHead> {
        check::repair(self.tables(), problem, actor, at).await
    }
}

macro_rules! tables {
    ($store:ty) => {
        #[async_trait]
        impl check::Tables for $store {
            fn location(&self) -> &str {
                &self.location
            }
            fn chain_key(&self) -> Option<&ChainKey> {
                self.key.as_ref()
            }
            async fn adopt_chain_key(&self, fingerprint: &str) -> atlas_promote_core::Result<bool> {
                <$store>::adopt_chain_key(self, fingerprint).await
            }
            async fn records(&self, after: u64, upto: u64) -> atlas_promote_core::Result<Vec<AuditRecord>> {
                <$store>::records(self, after, upto).await
            }
            async fn head(&self) -> atlas_promote_core::Result<AuditHead> {
                <$store>::head(self).await
            }
            async fn meta(&self, name: &str) -> atlas_promote_core::Result<String> {
                <$store>::meta(self, name).await
            }
            async fn set_meta(&self, values: &[(&str, String)]) -> atlas_promote_core::Result<()> {
                <$store>::set_meta(self, values).await
            }
            async fn commits_after(&self, after: i64) -> atlas_promote_core::Result<(Vec<(String, u64)>, i64)> {
                <$store>::commits_after(self, after).await
            }
            async fn stored_version(&self, key: &str) -> atlas_promote_core::Result<Option<u64>> {
                <$store>::stored_version(self, key).await
            }
        }
    };
}

#[cfg(feature = "sqlite")]
tables!(SqliteStore);
#[cfg(feature = "postgres")]
tables!(PostgresStore);

/// Forward a [`StateStore`] method to the store inside.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite($s) => $call,
            #[cfg(feature = "postgres")]
            Self::Postgres($s) => $call,
        }
    };
}

#[async_trait]
impl StateStore for SqlStore {
    async fn get(&self, key: &str) -> atlas_promote_core::Result<Option<Document>> {
        each!(self, s => s.get(key).await)
    }
    async fn list(&self, prefix: &str) -> atlas_promote_core::Result<Vec<Document>> {
        each!(self, s => s.list(prefix).await)
    }
    async fn get_if_changed(&self, key: &str, version: u64) -> atlas_promote_core::Result<Fetched> {
        each!(self, s => s.get_if_changed(key, version).await)
    }
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditEntry>) -> atlas_promote_core::Result<Vec<u64>> {
        each!(self, s => s.commit(writes, audit).await)
    }
    async fn audit(&self, after: u64) -> atlas_promote_core::Result<Vec<AuditRecord>> {
        each!(self, s => s.audit(after).await)
    }
    async fn commit_with(&self, commit: Commit) -> atlas_promote_core::Result<Vec<u64>> {
        each!(self, s => s.commit_with(commit).await)
    }
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> atlas_promote_core::Result<LeaseOutcome> {
        each!(self, s => s.acquire_lease(name, holder, now, ttl).await)
    }
    async fn renew_lease(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> atlas_promote_core::Result<Option<Lease>> {
        each!(self, s => s.renew_lease(lease, now, ttl).await)
    }
    async fn release_lease(&self, lease: &Lease) -> atlas_promote_core::Result<bool> {
        each!(self, s => s.release_lease(lease).await)
    }
    async fn leases(&self, prefix: &str) -> atlas_promote_core::Result<Vec<Lease>> {
        each!(self, s => s.leases(prefix).await)
    }
    async fn record_delivery(&self, source: &str, id: &str, at: DateTime<Utc>) -> atlas_promote_core::Result<Delivery> {
        each!(self, s => s.record_delivery(source, id, at).await)
    }
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> atlas_promote_core::Result<u64> {
        each!(self, s => s.prune_deliveries(before).await)
    }
    async fn claim_outbox(&self, claim: ClaimOutbox) -> atlas_promote_core::Result<Vec<OutboxItem>> {
        each!(self, s => s.claim_outbox(claim).await)
    }
    async fn outbox_delivered(&self, id: &str) -> atlas_promote_core::Result<()> {
        each!(self, s => s.outbox_delivered(id).await)
    }
    async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> atlas_promote_core::Result<()> {
        each!(self, s => s.outbox_failed(id, error, next_attempt_at).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_key_comes_from_the_environment_and_is_never_shown() {
        let options = OpenOptions::new().with_chain_key_from("ATLAS_AUDIT_CHAIN_KEY", None).unwrap();
        assert_eq!(options.chain_key, None, "unset: no key");
        let options = OpenOptions::new().with_chain_key_from("ATLAS_AUDIT_CHAIN_KEY", Some("".into())).unwrap();
        assert_eq!(options.chain_key, None, "empty: no key");
        let secret = "s3cret-from-the-environment";
        let options = OpenOptions::new().with_chain_key_from("ATLAS_AUDIT_CHAIN_KEY", Some(secret.into())).unwrap();
        assert_eq!(options.chain_key, Some(ChainKey::new(secret.as_bytes().to_vec()).unwrap()));
        assert!(!format!("{options:?}").contains("s3cret"), "{options:?}");

        let error = OpenOptions::new().with_chain_key_from("ATLAS_AUDIT_CHAIN_KEY", Some("s3cret".into())).unwrap_err();
        assert!(matches!(error, Error::BadChainKey { .. }), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(shown.contains("ATLAS_AUDIT_CHAIN_KEY") && !shown.contains("s3cret"), "{shown}");
    }
}
