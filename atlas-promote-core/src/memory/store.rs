use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::lock;
use super::table::Table;
use crate::audit::{self, AuditBreak};
use crate::audit::{AuditEntry, AuditRecord};
use crate::backend::{Document, Fetched, StateStore, Write};
use crate::coordination::{self, ClaimOutbox, Commit, Delivery, Lease, LeaseOutcome, OutboxItem};
use crate::error::{Error, Result};

/// A [`StateStore`] in memory.
///
/// Cloning is cheap and shares the store, so two engines in one test can
/// race on the same documents. Commits are all or nothing: every write's
/// expected version is checked before any is applied. A deleted key keeps
/// its version, so re-creating it continues the numbering (a writer holding
/// the old version gets a conflict); a delete's returned version is that of
/// the deletion. Leases, deliveries and the outbox live as long as the
/// store does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atlas_promote_core::Error> {
/// use atlas_promote_core::memory::MemoryStore;
/// use atlas_promote_core::{Error, StateStore, Write};
///
/// let store = MemoryStore::new();
/// let put = |expected| Write::Put { key: "promotion/9fceb02".into(), expected, value: serde_json::json!({}) };
/// assert_eq!(store.commit(vec![put(None)], vec![]).await?, [1]);
/// let stale = store.commit(vec![put(None)], vec![]).await;
/// assert!(matches!(stale, Err(Error::Conflict { .. })));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<StoreState>>,
}

#[derive(Debug, Default)]
struct StoreState {
    table: Table,
    audit: Vec<AuditRecord>,
    leases: BTreeMap<String, Lease>,
    /// When each `(source, id)` was recorded.
    deliveries: HashMap<(String, String), DateTime<Utc>>,
    /// The entries not delivered yet, in the order appended. Delivered ones
    /// leave it (so claims do not walk them) but their ids stay taken.
    outbox: Vec<OutboxItem>,
    /// The id of every entry ever appended.
    outbox_ids: HashSet<String>,
}

impl StoreState {
    fn queued(&mut self, id: &str) -> Result<(usize, &mut OutboxItem)> {
        self.outbox
            .iter_mut()
            .enumerate()
            .find(|(_, item)| item.entry.id == id)
            .ok_or_else(|| Error::NotFound { backend: "memory store".into(), what: format!("outbox entry {id}") })
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check the audit log's hash chain.
    pub fn verify_audit(&self) -> Result<(), AuditBreak> {
        audit::verify(&lock(&self.state).audit)
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Document>> {
        Ok(lock(&self.state).table.get(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Document>> {
        Ok(lock(&self.state).table.list(prefix))
    }

    async fn get_if_changed(&self, key: &str, version: u64) -> Result<Fetched> {
        Ok(lock(&self.state).table.get_if_changed(key, version))
    }

    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditEntry>) -> Result<Vec<u64>> {
        self.commit_with(Commit::new().with_writes(writes).with_audit(audit)).await
    }

    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        Ok(lock(&self.state).audit.iter().filter(|r| r.seq > after).cloned().collect())
    }

    async fn commit_with(&self, commit: Commit) -> Result<Vec<u64>> {
        let mut state = lock(&self.state);
        for (i, entry) in commit.outbox.iter().enumerate() {
            let taken = state.outbox_ids.contains(&entry.id) || commit.outbox[..i].iter().any(|e| e.id == entry.id);
            if taken {
                return Err(Error::Conflict { key: format!("outbox/{}", entry.id), expected: None, found: Some(1) });
            }
        }
        let versions = state.table.commit(commit.writes)?;
        for entry in commit.audit {
            let record = audit::chain(state.audit.last(), entry);
            state.audit.push(record);
        }
        for entry in commit.outbox {
            let next_attempt_at = entry.created_at;
            state.outbox_ids.insert(entry.id.clone());
            state.outbox.push(OutboxItem { entry, attempts: 0, next_attempt_at, last_error: None });
        }
        Ok(versions)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<LeaseOutcome> {
        let mut state = lock(&self.state);
        let until = coordination::after(now, ttl);
        let lease = match state.leases.get(name) {
            Some(held) if held.holder != holder && held.until > now => return Ok(LeaseOutcome::Held(held.clone())),
            Some(held) if held.holder == holder && held.until > now => Lease { until, ..held.clone() },
            Some(held) => {
                Lease { holder: holder.to_owned(), until, token: held.token.saturating_add(1), ..held.clone() }
            }
            None => Lease { name: name.to_owned(), holder: holder.to_owned(), until, token: 1 },
        };
        state.leases.insert(name.to_owned(), lease.clone());
        Ok(LeaseOutcome::Acquired(lease))
    }

    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: TimeDelta) -> Result<Option<Lease>> {
        let mut state = lock(&self.state);
        match state.leases.get_mut(&lease.name) {
            Some(held) if held.token == lease.token && held.holder == lease.holder && held.until > now => {
                held.until = coordination::after(now, ttl);
                Ok(Some(held.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        let mut state = lock(&self.state);
        match state.leases.get_mut(&lease.name) {
            // The token stays, so the next holder's is still one more.
            Some(held)
                if held.token == lease.token
                    && held.holder == lease.holder
                    && held.until > DateTime::<Utc>::MIN_UTC =>
            {
                held.until = DateTime::<Utc>::MIN_UTC;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let state = lock(&self.state);
        Ok(state
            .leases
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, l)| l.clone())
            .collect())
    }

    async fn record_delivery(&self, source: &str, id: &str, at: DateTime<Utc>) -> Result<Delivery> {
        let mut state = lock(&self.state);
        match state.deliveries.entry((source.to_owned(), id.to_owned())) {
            std::collections::hash_map::Entry::Occupied(_) => Ok(Delivery::Duplicate),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(at);
                Ok(Delivery::First)
            }
        }
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = lock(&self.state);
        let had = state.deliveries.len();
        state.deliveries.retain(|_, at| *at >= before);
        Ok(u64::try_from(had - state.deliveries.len()).unwrap_or(u64::MAX))
    }

    async fn claim_outbox(&self, claim: ClaimOutbox) -> Result<Vec<OutboxItem>> {
        let mut state = lock(&self.state);
        let hold_until = coordination::after(claim.now, claim.hold);
        let mut due: Vec<&mut OutboxItem> =
            state.outbox.iter_mut().filter(|item| item.next_attempt_at <= claim.now).collect();
        // Oldest first; appended order breaks ties.
        due.sort_by_key(|item| item.entry.created_at);
        Ok(due
            .into_iter()
            .take(claim.limit)
            .map(|item| {
                item.attempts = item.attempts.saturating_add(1);
                item.next_attempt_at = hold_until;
                item.clone()
            })
            .collect())
    }

    async fn outbox_delivered(&self, id: &str) -> Result<()> {
        let mut state = lock(&self.state);
        let (index, _) = state.queued(id)?;
        state.outbox.remove(index);
        Ok(())
    }

    async fn outbox_failed(&self, id: &str, error: &str, next_attempt_at: DateTime<Utc>) -> Result<()> {
        let mut state = lock(&self.state);
        let (_, item) = state.queued(id)?;
        item.last_error = Some(error.to_owned());
        item.next_attempt_at = next_attempt_at;
        Ok(())
    }
}
