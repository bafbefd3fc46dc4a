//! What the store tests share: a fresh SQLite file, a fresh PostgreSQL schema.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use atlas_promote_core::AuditEntry;
use atlas_promote_sql::{OpenOptions, SqlStore};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("atlas-promote-sql-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The URL of `atlas.db` in this directory.
    pub fn url(&self) -> String {
        format!("sqlite://{}/atlas.db", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL server the tests use, from `ATLAS_TEST_POSTGRES_URL`;
/// `None` (and a line saying the test is skipped, and why) when it is unset.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("ATLAS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped {test}: ATLAS_TEST_POSTGRES_URL is not set (e.g. \
                 postgres://postgres@127.0.0.1:5432/test); .ci/run sets it"
            );
            None
        }
    }
}

/// A schema name no other test (in this or another run) uses.
pub fn fresh_schema(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let test: String = test.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(30).collect();
    format!("t_{}_{}_{n}_{nanos}", test.to_ascii_lowercase(), std::process::id())
}

/// A store in a schema of its own on the test server.
pub async fn postgres(test: &str) -> Option<(SqlStore, String, String)> {
    let url = postgres_url(test)?;
    let schema = fresh_schema(test);
    let store =
        SqlStore::open_with(&url, OpenOptions::new().with_schema(&schema)).await.expect("open the PostgreSQL store");
    Some((store, url, schema))
}

/// The `n`th of a run of audit entries about one commit.
pub fn entry(n: u32) -> AuditEntry {
    AuditEntry {
        at: "2026-05-05T09:12:00Z".parse().unwrap(),
        actor: "engine".into(),
        action: "deploy.triggered".into(),
        subject: "9fceb02".into(),
        message: format!("step {n}"),
    }
}
