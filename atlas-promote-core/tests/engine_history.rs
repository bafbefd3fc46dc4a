//! The engine's cost does not grow with history: a tick reads the promotions
//! still moving, an environment keeps a bounded rollback history, and a store
//! written before the active index still works and is indexed on first use.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use atlas_promote_core::engine::records::{ACTIVE_INDEX, ACTIVE_PREFIX, EnvironmentRecord, ROLLBACK_DEPTH};
use atlas_promote_core::memory::MemoryStore;
use atlas_promote_core::testkit::{Scenario, default_start};
use atlas_promote_core::{AuditEntry, AuditRecord, Document, Policy, Result, StateStore, Write};

/// A store that counts the documents it hands out.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    read: AtomicUsize,
}

impl Counting {
    fn reads(&self) -> usize {
        self.read.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl StateStore for Counting {
    async fn get(&self, key: &str) -> Result<Option<Document>> {
        self.read.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Document>> {
        let docs = self.inner.list(prefix).await?;
        self.read.fetch_add(docs.len(), Ordering::SeqCst);
        Ok(docs)
    }
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditEntry>) -> Result<Vec<u64>> {
        self.inner.commit(writes, audit).await
    }
    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        self.inner.audit(after).await
    }
}

fn scenario(store: Arc<dyn StateStore>) -> Scenario {
    let mut s = Scenario::with_store(Policy::atlas(), store, default_start());
    s.person("dan", &["developer", "dev-team"]).person("pat", &["product-owner"]);
    s
}

/// Merge `n` more commits, each deployed to dev and replacing the one before.
async fn merge_many(s: &mut Scenario, from: usize, n: usize) -> Result<()> {
    for i in from..from + n {
        s.merge(&format!("c{i}"), "alice", &["src/app.rs"]).await?;
        s.run_until_idle().await?;
    }
    Ok(())
}

/// Documents read by one idle tick.
async fn reads_of_an_idle_tick(s: &Scenario, store: &Counting) -> Result<usize> {
    let before = store.reads();
    let tick = s.engine.tick().await?;
    assert!(tick.is_idle(), "{tick}");
    Ok(store.reads() - before)
}

#[tokio::test]
async fn a_tick_reads_the_promotions_still_moving_not_every_one_ever_made() -> Result<()> {
    let store = Arc::new(Counting::default());
    let mut s = scenario(store.clone());
    merge_many(&mut s, 0, 5).await?;
    let after_5 = reads_of_an_idle_tick(&s, &store).await?;
    merge_many(&mut s, 5, 60).await?;
    let after_65 = reads_of_an_idle_tick(&s, &store).await?;
    assert_eq!(s.state("c64").await?.to_string(), "live in dev");
    assert!(s.state("c10").await?.is_ended());
    assert_eq!(after_65, after_5, "64 superseded promotions cost the tick nothing");
    Ok(())
}

#[tokio::test]
async fn an_environment_keeps_a_bounded_rollback_history_and_still_rolls_back() -> Result<()> {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let mut s = scenario(store.clone());
    merge_many(&mut s, 0, ROLLBACK_DEPTH + 5).await?;
    let doc = store.get("environment/dev").await?.expect("dev is known");
    let env: EnvironmentRecord = serde_json::from_value(doc.value).expect("an environment document");
    let last = ROLLBACK_DEPTH + 4;
    let expected: Vec<String> = (last - ROLLBACK_DEPTH..last).map(|i| format!("promotion/trunk/c{i}")).collect();
    assert_eq!(env.previous, expected, "the newest {ROLLBACK_DEPTH}, oldest first");
    s.engine.rollback("dev", "olga", "bad release").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state(&format!("c{}", last - 1)).await?.to_string(), "live in dev");
    assert_eq!(s.state(&format!("c{last}")).await?.to_string(), "rolled back from dev");
    Ok(())
}

#[tokio::test]
async fn a_store_written_before_the_active_index_works_and_is_indexed_on_the_next_merge() -> Result<()> {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let mut s = scenario(store.clone());
    merge_many(&mut s, 0, 3).await?;
    s.approve("dan", "staging", "c2").await?;
    // Forget the index, as if an older engine had written the store.
    let mut forget = Vec::new();
    for doc in store.list(ACTIVE_PREFIX).await?.into_iter().chain(store.get(ACTIVE_INDEX).await?) {
        forget.push(Write::Delete { key: doc.key, expected: doc.version });
    }
    store.commit(forget, Vec::new()).await?;
    s.restart();
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in staging", "found without the index");

    s.merge("c3", "alice", &["src/app.rs"]).await?;
    let markers: Vec<String> = store.list(ACTIVE_PREFIX).await?.into_iter().map(|d| d.key).collect();
    assert_eq!(markers, ["active/promotion/trunk/c2", "active/promotion/trunk/c3"]);
    s.run_until_idle().await?;
    s.approve("dan", "staging", "c3").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c3").await?.to_string(), "live in staging");
    assert!(s.state("c2").await?.is_ended());
    Ok(())
}
