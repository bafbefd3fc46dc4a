//! The working set: finished promotions leave the engine's active index but
//! stay readable, and what a tick reads does not grow with them (DESIGN §8).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::audit::{AuditEntry, AuditRecord};
use crate::backend::{Document, Fetched, StateStore, Write};
use crate::coordination::{ClaimOutbox, Commit, Delivery, Lease, LeaseOutcome, OutboxItem};
use crate::engine::records::ACTIVE_PREFIX;
use crate::error::Result;
use crate::policy::Policy;
use crate::testkit::{Scenario, default_start};

/// How many candidates the suite merges, one after another.
const CANDIDATES: usize = 60;

/// Check the working set on `store` (empty), through the engine: trunk
/// candidates merged one after another each go live in dev and supersede
/// the one before, so all but the last end.
///
/// Then: the store's active markers (under the engine's `active/` prefix)
/// name exactly the promotions that have not ended; every ended one is
/// still readable; and the documents a merge and its ticks read (every
/// `get`, `list` and `get_if_changed` that returns one) are as many with
/// 59 ended promotions as with 10. A store whose listing walked ended
/// promotions, or an engine that read them each tick, fails here.
pub async fn working_set_suite(store: Arc<dyn StateStore>) {
    let counting = Arc::new(Counting { inner: store, documents: AtomicU64::new(0) });
    let mut s = Scenario::with_store(Policy::atlas(), counting.clone(), default_start());
    let mut read = Vec::with_capacity(CANDIDATES);
    for i in 0..CANDIDATES {
        let before = counting.documents.load(Ordering::Relaxed);
        s.merge(&sha(i), "alice", &["src/app.rs"]).await.expect("the merge is recorded");
        s.run_until_idle().await.expect("the engine ticks");
        read.push(counting.documents.load(Ordering::Relaxed) - before);
        s.advance(TimeDelta::minutes(10));
    }

    let promotions = counting.list("promotion/").await.expect("promotions are listed");
    assert_eq!(promotions.len(), CANDIDATES, "every promotion stays readable");
    let mut active: Vec<String> = Vec::new();
    let mut ended = 0;
    for i in 0..CANDIDATES {
        let record = s.engine.promotion(&sha(i)).await.expect("an ended promotion is still readable by its sha");
        if record.value.promotion.state.is_ended() {
            ended += 1;
        } else {
            active.push(record.key);
        }
    }
    assert!(ended >= CANDIDATES - 2, "each candidate supersedes the one before: {ended} of {CANDIDATES} ended");
    let mut markers: Vec<String> = counting
        .list(ACTIVE_PREFIX)
        .await
        .expect("the active index is listed")
        .into_iter()
        .filter_map(|d| d.key.strip_prefix(ACTIVE_PREFIX).map(str::to_owned))
        .collect();
    markers.sort();
    active.sort();
    assert_eq!(markers, active, "the active index holds the promotions that have not ended, and only those");

    // The first rounds fill the pipeline; from round 10 on each one is alike.
    let steady = read[10];
    for (round, n) in read.iter().enumerate().skip(10) {
        assert_eq!(
            *n, steady,
            "round {round} read {n} documents, round 10 read {steady}: the cost grows with finished promotions \
             (every round: {read:?})"
        );
    }
}

fn sha(i: usize) -> String {
    format!("{i:07x}")
}

/// A store that counts the documents it hands out.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn StateStore>,
    documents: AtomicU64,
}

impl Counting {
    fn count(&self, n: usize) {
        self.documents.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[async_trait]
impl StateStore for Counting {
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
        self.inner.commit(writes, audit).await
    }
    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        self.inner.audit(after).await
    }
    async fn commit_with(&self, commit: Commit) -> Result<Vec<u64>> {
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
