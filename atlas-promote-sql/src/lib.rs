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
use atlas_promote_core::audit::AuditHead;
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

/// How [`SqlStore::open_with`] opens a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// PostgreSQL only: the schema the tables live in (created if missing);
    /// `None`: the connection's default (`search_path`).
    pub schema: Option<String>,
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
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteStore::connect(url).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                Ok(Self::Postgres(PostgresStore::connect(url, options.schema.as_deref()).await?))
            }
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
