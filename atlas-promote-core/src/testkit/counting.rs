//! A [`StateStore`] that counts what passes through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::audit::{AuditEntry, AuditRecord};
use crate::backend::{Document, Fetched, StateStore, Write};
use crate::coordination::{ClaimOutbox, Commit, Delivery, Lease, LeaseOutcome, OutboxItem};
use crate::error::Result;

/// A store that counts the documents it hands out and the commits made
/// through it, and passes everything on to the store it wraps: for tests
/// and benchmarks that measure what the engine reads and writes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atlas_promote_core::Error> {
/// use std::sync::Arc;
/// use atlas_promote_core::testkit::CountingStore;
/// use atlas_promote_core::{MemoryStore, StateStore, Write};
///
/// let store = CountingStore::new(Arc::new(MemoryStore::new()));
/// let put = Write::Put { key: "a".into(), expected: None, value: serde_json::json!(1) };
/// store.commit(vec![put], Vec::new()).await?;
/// store.get("a").await?;
/// assert_eq!((store.commits(), store.documents_read()), (1, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn StateStore>,
    documents: AtomicU64,
    commits: AtomicU64,
}

impl CountingStore {
    /// `inner`, counted.
    pub fn new(inner: Arc<dyn StateStore>) -> Self {
        Self { inner, documents: AtomicU64::new(0), commits: AtomicU64::new(0) }
    }

    /// Documents handed out so far (by `get`, `list` and a `get_if_changed`
    /// that returned one).
    pub fn documents_read(&self) -> u64 {
        self.documents.load(Ordering::Relaxed)
    }

    /// Commits made so far (`commit` and `commit_with`, failed ones too).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn count(&self, n: usize) {
        self.documents.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[async_trait]
impl StateStore for CountingStore {
    async fn get(&self, key: &str) -> Result<Option<Document>> {
        let doc = self.inner.get(key).await?;
        self.count(usize::from(doc.is_some()));
        Ok(doc)
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Document>> {
        let docs = self.inner.list(prefix).await?;
        self.count(docs.len());
        Ok(docs)
    }
    async fn get_if_changed(&self, key: &str, version: u64) -> Result<Fetched> {
        let fetched = self.inner.get_if_changed(key, version).await?;
        self.count(usize::from(matches!(fetched, Fetched::Current(Some(_)))));
        Ok(fetched)
    }
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditEntry>) -> Result<Vec<u64>> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.commit(writes, audit).await
    }
    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        self.inner.audit(after).await
    }
    async fn commit_with(&self, commit: Commit) -> Result<Vec<u64>> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.commit_with(commit).await
    }
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<LeaseOutcome> {
        self.inner.acquire_lease(name, holder, now, ttl).await
    }
    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: TimeDelta) -> Result<Option<Lease>> {
        self.inner.renew_lease(lease, now, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        self.inner.release_lease(lease).await
    }
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        self.inner.leases(prefix).await
    }
    async fn record_delivery(&self, source: &str, id: &str, at: DateTime<Utc>) -> Result<Delivery> {
        self.inner.record_delivery(source, id, at).await
    }
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_deliveries(before).await
    }
    async fn claim_outbox(&self, claim: ClaimOutbox) -> Result<Vec<OutboxItem>> {
        self.inner.claim_outbox(claim).await
    }
    async fn outbox_delivered(&self, id: &str) -> Result<()> {
        self.inner.outbox_delivered(id).await
    }
    async fn outbox_failed(&self, id: &str, error: &str, next_attempt_at: DateTime<Utc>) -> Result<()> {
        self.inner.outbox_failed(id, error, next_attempt_at).await
    }
}
