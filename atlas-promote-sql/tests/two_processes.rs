//! Two engine processes (separate OS processes) on one PostgreSQL database
//! drive the same stream of merges: no deploy is triggered twice, none is
//! lost, and when one is SIGKILLed half-way the other finishes its work once
//! its claims lapse.
//!
//! The children are this test binary itself, re-running the same test with
//! `ATLAS_TWO_PROCESS_SCHEMA` set, which makes it an engine process. The CI system they share is a table in the test's
//! database (a run is started by inserting it, found by its idempotency key,
//! and has succeeded by the time it is asked about), and every trigger is
//! logged there, so the parent sees every deploy either process started.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atlas_promote_core::memory::{MemoryChecks, MemorySourceControl, StaticDirectory};
use atlas_promote_core::{
    Candidate, CiProvider, Clock as _, Error, IdempotencyKey, Policy, Promoter, Result, Run, RunId, RunRequest,
    RunStatus, StateStore, SystemClock,
};
use atlas_promote_sql::{OpenOptions, SqlStore};
use chrono::TimeDelta;
use sqlx::Row as _;

const SCHEMA_VAR: &str = "ATLAS_TWO_PROCESS_SCHEMA";
const ID_VAR: &str = "ATLAS_TWO_PROCESS_ID";
const CANDIDATES: usize = 24;

fn sha(i: usize) -> String {
    format!("c{i:02}")
}

/// The commits of the stream, each built on the one before.
fn source_control() -> MemorySourceControl {
    let source = MemorySourceControl::new();
    for i in 1..=CANDIDATES {
        let parent = (i > 1).then(|| sha(i - 1));
        source.commit(&sha(i), parent.as_deref(), "alice", &["src/app.py"]);
    }
    source
}

/// A CI system kept in the database: shared by every process of the test.
#[derive(Debug, Clone)]
struct TableCi {
    pool: sqlx::PgPool,
    schema: String,
    process: String,
}

impl TableCi {
    async fn connect(url: &str, schema: &str, process: &str) -> Self {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(url).await.expect("connect");
        // A schema of its own: the store refuses to open a schema holding
        // tables that are not its.
        Self { pool, schema: format!("{schema}_ci"), process: process.to_owned() }
    }

    async fn create_tables(&self) {
        // The schema's name is the test's own (letters, digits and `_`).
        let s = &self.schema;
        for sql in [
            format!("CREATE SCHEMA {s}"),
            format!("CREATE TABLE {s}.ci_runs (id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE)"),
            format!("CREATE TABLE {s}.ci_triggers (key TEXT NOT NULL, process TEXT NOT NULL)"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.pool).await.expect("create the CI tables");
        }
    }

    fn failed(e: sqlx::Error) -> Error {
        Error::backend("table-ci", "query", true, e)
    }

    fn run(id: i64, key: &str) -> Run {
        Run {
            id: RunId(id.to_string()),
            key: IdempotencyKey::parse(key).expect("a key this test wrote"),
            status: RunStatus::Succeeded,
            url: None,
            finished_at: Some(SystemClock.now()),
        }
    }

    /// Every trigger, in order: (key, process).
    async fn triggers(&self) -> Vec<(String, String)> {
        let sql = format!("SELECT key, process FROM {}.ci_triggers ORDER BY ctid", self.schema);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }
}

#[async_trait]
impl CiProvider for TableCi {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        let key = request.key.as_str();
        let log = format!("INSERT INTO {}.ci_triggers (key, process) VALUES ($1, $2)", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(log))
            .bind(key)
            .bind(&self.process)
            .execute(&self.pool)
            .await
            .map_err(Self::failed)?;
        let insert = format!(
            "INSERT INTO {}.ci_runs (key) VALUES ($1) ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id",
            self.schema
        );
        let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(insert))
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(Self::failed)?;
        Ok(Run { status: RunStatus::Running, finished_at: None, ..Self::run(id, key) })
    }

    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        let sql = format!("SELECT id FROM {}.ci_runs WHERE key = $1", self.schema);
        let id: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Self::failed)?;
        Ok(id.map(|id| Self::run(id, key.as_str())))
    }

    async fn status(&self, run: &RunId) -> Result<Run> {
        let missing = || Error::NotFound { backend: "table-ci".into(), what: format!("run {run}") };
        let id: i64 = run.0.parse().map_err(|_| missing())?;
        let sql = format!("SELECT key FROM {}.ci_runs WHERE id = $1", self.schema);
        let key: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Self::failed)?;
        let key = key.ok_or_else(missing)?;
        Ok(Self::run(id, &key))
    }

    async fn cancel(&self, _run: &RunId) -> Result<()> {
        Ok(())
    }
}

async fn engine(url: &str, schema: &str, id: &str) -> (Promoter, TableCi) {
    let store: Arc<dyn StateStore> = Arc::new(
        SqlStore::open_with(url, OpenOptions::new().with_schema(schema)).await.expect("open the shared store"),
    );
    let ci = TableCi::connect(url, schema, id).await;
    let policy = Policy::atlas();
    let engine = Promoter::builder(policy.clone())
        .with_ci(Arc::new(ci.clone()))
        .with_checks(Arc::new(MemoryChecks::new()))
        .with_directory(Arc::new(StaticDirectory::from_policy(&policy)))
        .with_source_control(Arc::new(source_control()))
        .with_store(store)
        .with_clock(Arc::new(SystemClock))
        .with_id(id)
        // Claims lapse quickly, so that the survivor takes over soon.
        .with_lease(TimeDelta::milliseconds(800))
        .build()
        .expect("every backend is set");
    (engine, ci)
}

/// A child: tick every 10 ms until killed.
fn engine_process(schema: &std::ffi::OsStr) {
    let id = std::env::var(ID_VAR).expect("the parent names the engine");
    let url = common::postgres_url("engine_process").expect("the parent passes the URL on");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (engine, _) = engine(&url, schema.to_str().unwrap(), &id).await;
        println!("ready");
        loop {
            // A failed tick (a conflict with the other engine) is retried on the next.
            let _ = engine.tick().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

fn spawn(schema: &str, id: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([PARENT, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(SCHEMA_VAR, schema)
        .env(ID_VAR, id)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l == "ready")), "engine {id} did not start");
    child
}

async fn state(engine: &Promoter, sha: &str) -> String {
    engine.promotion(sha).await.map_or_else(|e| e.to_string(), |r| r.value.promotion.state.to_string())
}

/// The test's name: the children run it again, as engine processes.
const PARENT: &str = "two_engine_processes_share_one_database_and_one_finishes_what_a_killed_one_started";

#[test]
fn two_engine_processes_share_one_database_and_one_finishes_what_a_killed_one_started() {
    match std::env::var_os(SCHEMA_VAR) {
        Some(schema) => engine_process(&schema),
        None => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(drive()),
    }
}

/// The parent: report merges, kill one engine half-way, check the outcome.
async fn drive() {
    let Some(url) = common::postgres_url("two_engine_processes") else { return };
    let schema = common::fresh_schema("two_processes");
    // The parent only reports merges (as the service's intake does); the
    // children do all the ticking.
    let (parent, ci) = engine(&url, &schema, "parent").await;
    ci.create_tables().await;
    let mut a = spawn(&schema, "a");
    let mut b = spawn(&schema, "b");

    let merge = |i: usize| {
        let parent = &parent;
        async move {
            parent.merged(Candidate::trunk(sha(i), ["alice"]), SystemClock.now()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    };
    for i in 1..=CANDIDATES / 2 {
        merge(i).await;
    }
    a.kill().unwrap(); // SIGKILL, half-way
    a.wait().unwrap();
    for i in CANDIDATES / 2 + 1..=CANDIDATES {
        merge(i).await;
    }
    let last = sha(CANDIDATES);
    let started = Instant::now();
    while state(&parent, &last).await != "live in dev" {
        assert!(started.elapsed() < Duration::from_secs(60), "{last} never went live: {}", state(&parent, &last).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.kill().unwrap();
    b.wait().unwrap();

    let triggers = ci.triggers().await;
    let mut keys: Vec<&str> = triggers.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "a deploy was triggered twice: {triggers:?}");
    assert!(triggers.iter().any(|(_, p)| p == "a"), "engine a took part before it was killed: {triggers:?}");
    assert!(triggers.iter().any(|(_, p)| p == "b"), "engine b took part: {triggers:?}");
    // None lost: every candidate went live in dev or was superseded by a
    // newer one while it waited; none is left half-way.
    for i in 1..=CANDIDATES {
        let now = state(&parent, &sha(i)).await;
        assert!(now == "live in dev" || now.starts_with("superseded"), "{}: {now}", sha(i));
    }
    let deployed = triggers.len();
    eprintln!("{CANDIDATES} merges, {deployed} runs triggered in dev, none twice: {triggers:?}");
}
