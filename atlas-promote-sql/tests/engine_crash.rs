//! Crash recovery and racing engines: no deploy is started twice, none is lost.
//! The crashes are of an engine on the SQLite store, reopened from its file.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use atlas_promote_core::memory::{MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, StaticDirectory};
use atlas_promote_core::testkit::default_start;
use atlas_promote_core::{
    Candidate, CiProvider, Error, IdempotencyKey, ManualClock, Policy, Promoter, Result, Run, RunId, RunRequest,
    StateStore,
};
use atlas_promote_sql::SqlStore;
use chrono::TimeDelta;
use common::TempDir;

/// How the next trigger misbehaves.
const FINE: u8 = 0;
/// Fails before the CI system saw the request.
const FAIL_BEFORE: u8 = 1;
/// The CI system starts the run, but the answer is lost.
const LOSE_ANSWER: u8 = 2;

/// A CI provider whose next trigger can fail before or after starting the run.
#[derive(Debug, Clone)]
struct Flaky {
    inner: MemoryCi,
    next: Arc<AtomicU8>,
}

#[async_trait]
impl CiProvider for Flaky {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        match self.next.swap(FINE, Ordering::SeqCst) {
            FAIL_BEFORE => Err(Error::backend("flaky", "trigger", true, "connection refused")),
            LOSE_ANSWER => {
                self.inner.trigger(request).await?;
                Err(Error::backend("flaky", "trigger", true, "connection reset after the request was sent"))
            }
            _ => self.inner.trigger(request).await,
        }
    }
    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        self.inner.find(key).await
    }
    async fn status(&self, run: &RunId) -> Result<Run> {
        self.inner.status(run).await
    }
    async fn cancel(&self, run: &RunId) -> Result<()> {
        self.inner.cancel(run).await
    }
}

struct World {
    clock: ManualClock,
    ci: Flaky,
    checks: MemoryChecks,
    source: MemorySourceControl,
    directory: StaticDirectory,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::new(default_start());
        let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
        let source = MemorySourceControl::new();
        source.commit("c1", None, "alice", &["pipelines/etl.py"]);
        Self {
            clock,
            ci: Flaky { inner: ci, next: Arc::new(AtomicU8::new(FINE)) },
            checks: MemoryChecks::new(),
            source,
            directory: StaticDirectory::from_policy(&Policy::atlas()),
        }
    }

    fn engine(&self, id: &str, store: Arc<dyn StateStore>) -> Promoter {
        Promoter::builder(Policy::atlas())
            .with_ci(Arc::new(self.ci.clone()))
            .with_checks(Arc::new(self.checks.clone()))
            .with_directory(Arc::new(self.directory.clone()))
            .with_source_control(Arc::new(self.source.clone()))
            .with_store(store)
            .with_clock(Arc::new(self.clock.clone()))
            .with_id(id)
            .build()
            .expect("every backend is set")
    }

    fn keys(&self) -> Vec<String> {
        self.ci.inner.requests().iter().map(|r| r.key.to_string()).collect()
    }
}

fn assert_no_key_twice(keys: &[String]) {
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a run was triggered twice: {keys:?}");
}

async fn state(engine: &Promoter, sha: &str) -> String {
    engine.promotion(sha).await.map(|r| r.value.promotion.state.to_string()).unwrap_or_else(|e| e.to_string())
}

async fn crash_and_recover(mode: u8) -> Result<World> {
    let world = World::new();
    let dir = TempDir::new("engine-crash");
    {
        let store: Arc<dyn StateStore> = Arc::new(SqlStore::open(&dir.url()).await?);
        let engine = world.engine("e1", store);
        engine.merged(Candidate::trunk("c1", ["alice"]), world.clock.now_for_tests()).await?;
        world.ci.next.store(mode, Ordering::SeqCst);
        let tick = engine.tick().await?;
        assert_eq!(tick.failures.len(), 1, "the trigger failed: {tick:?}");
        assert_eq!(state(&engine, "c1").await, "deploying to dev (attempt 1)");
        // The engine and its store are dropped here: the process "crashed".
    }
    let store = Arc::new(SqlStore::open(&dir.url()).await?);
    let engine = world.engine("e1", store.clone());
    engine.run_until_idle(10).await?;
    assert_eq!(state(&engine, "c1").await, "live in dev");
    drop(engine);
    let verified = store.verify().await?;
    assert!(verified.records > 0, "the audit log verifies after recovery: {verified:?}");
    Ok(world)
}

#[tokio::test]
async fn a_crash_before_the_trigger_reached_ci_starts_the_deploy_once_after_restart() -> Result<()> {
    let world = crash_and_recover(FAIL_BEFORE).await?;
    let keys = world.keys();
    assert_no_key_twice(&keys);
    assert_eq!(keys.iter().filter(|k| k.contains(".dev.deploy.")).count(), 1, "{keys:?}");
    Ok(())
}

#[tokio::test]
async fn a_crash_after_ci_started_the_run_finds_it_by_its_key_instead_of_starting_another() -> Result<()> {
    let world = crash_and_recover(LOSE_ANSWER).await?;
    let keys = world.keys();
    assert_no_key_twice(&keys);
    assert_eq!(keys.iter().filter(|k| k.contains(".dev.deploy.")).count(), 1, "{keys:?}");
    Ok(())
}

#[tokio::test]
async fn another_engine_takes_over_a_pending_trigger_only_after_the_lease() -> Result<()> {
    let world = World::new();
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let first = world.engine("e1", store.clone());
    first.merged(Candidate::trunk("c1", ["alice"]), world.clock.now_for_tests()).await?;
    world.ci.next.store(FAIL_BEFORE, Ordering::SeqCst);
    first.tick().await?;
    drop(first);
    let second = world.engine("e2", store);
    second.tick().await?;
    assert!(world.keys().is_empty(), "e2 leaves e1's pending trigger alone while e1's lease lasts");
    world.clock.advance(TimeDelta::minutes(10));
    second.run_until_idle(10).await?;
    assert_eq!(state(&second, "c1").await, "live in dev");
    assert_no_key_twice(&world.keys());
    Ok(())
}

/// A store that yields to the scheduler before every operation, so two
/// engines on one thread interleave between reading and writing.
#[derive(Debug)]
struct Yielding(MemoryStore);

#[async_trait]
impl StateStore for Yielding {
    async fn get(&self, key: &str) -> Result<Option<atlas_promote_core::Document>> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<atlas_promote_core::Document>> {
        tokio::task::yield_now().await;
        self.0.list(prefix).await
    }
    async fn commit(
        &self,
        writes: Vec<atlas_promote_core::Write>,
        audit: Vec<atlas_promote_core::AuditEntry>,
    ) -> Result<Vec<u64>> {
        tokio::task::yield_now().await;
        self.0.commit(writes, audit).await
    }
    async fn audit(&self, after: u64) -> Result<Vec<atlas_promote_core::AuditRecord>> {
        self.0.audit(after).await
    }
}

#[tokio::test]
async fn two_engines_racing_on_one_store_never_trigger_the_same_deploy() -> Result<()> {
    let world = World::new();
    let store: Arc<dyn StateStore> = Arc::new(Yielding(MemoryStore::new()));
    let (a, b) = (world.engine("a", store.clone()), world.engine("b", store));
    let mut conflicts = 0;
    let mut parent = "c1".to_owned();
    a.merged(Candidate::trunk("c1", ["alice"]), world.clock.now_for_tests()).await?;
    for n in 2..=6 {
        for _ in 0..4 {
            let (ta, tb) = tokio::join!(a.tick(), b.tick());
            conflicts += count_conflicts(&ta?) + count_conflicts(&tb?);
        }
        let sha = format!("c{n}");
        world.source.commit(&sha, Some(&parent), "alice", &["src/x.rs"]);
        b.merged(Candidate::trunk(sha.clone(), ["alice"]), world.clock.now_for_tests()).await?;
        parent = sha;
        world.clock.advance(TimeDelta::minutes(1));
    }
    for _ in 0..6 {
        let (ta, tb) = tokio::join!(a.tick(), b.tick());
        conflicts += count_conflicts(&ta?) + count_conflicts(&tb?);
    }
    assert!(conflicts > 0, "the engines really raced: optimistic concurrency refused a stale write");
    assert_no_key_twice(&world.keys());
    assert_eq!(state(&a, "c6").await, "live in dev");
    Ok(())
}

fn count_conflicts(tick: &atlas_promote_core::Tick) -> usize {
    tick.failures.iter().filter(|(_, e)| matches!(e, Error::Conflict { .. })).count()
}

/// The clock's time, read through the `Clock` trait.
trait NowForTests {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc>;
}

impl NowForTests for ManualClock {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc> {
        atlas_promote_core::Clock::now(self)
    }
}
