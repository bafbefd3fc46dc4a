use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::lock;
use crate::audit::{self, AuditBreak};
use crate::audit::{AuditEntry, AuditRecord};
use crate::backend::{Document, Fetched, StateStore, Write};
use crate::error::Result;
use crate::store::table::Table;

/// A [`StateStore`] in memory.
///
/// Cloning is cheap and shares the store, so two engines in one test can
/// race on the same documents. Commits are all or nothing: every write's
/// expected version is checked before any is applied. A deleted key keeps
/// its version, so re-creating it continues the numbering (a writer holding
/// the old version gets a conflict); a delete's returned version is that of
/// the deletion.
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

    async fn commit(&self, writes: Vec<Write>, entries: Vec<AuditEntry>) -> Result<Vec<u64>> {
        let mut state = lock(&self.state);
        let versions = state.table.commit(writes)?;
        for entry in entries {
            let record = audit::chain(state.audit.last(), entry);
            state.audit.push(record);
        }
        Ok(versions)
    }

    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        Ok(lock(&self.state).audit.iter().filter(|r| r.seq > after).cloned().collect())
    }
}
