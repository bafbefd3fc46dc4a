//! Crash safety of the SQLite store: a child process commits state documents
//! and audit entries in a loop and is killed with SIGKILL at random moments;
//! after every kill the store must reopen (opening verifies the audit chain)
//! with the state of one whole commit, never a mix; no commit the child saw
//! succeed may be lost; and the log must hold exactly the entries of the
//! commits that took effect (a commit and its entries are one transaction).
//!
//! The child is this test binary itself, re-invoked to run the same test
//! with `ATLAS_CRASH_DIR` set, which makes it the writer.
//!
//! `ATLAS_CRASH_KILLS` sets the number of kills (default 200);
//! `ATLAS_CRASH_SEED` the seed of the delays (0–30 ms after the writer is
//! ready), so a failing sequence replays.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atlas_promote_core::{AuditEntry, Document, StateStore, Write};
use atlas_promote_sql::SqlStore;
use common::TempDir;
use serde_json::json;

/// Documents written by every commit, all with the commit's generation.
const DOCUMENTS: usize = 4;
/// Audit entries appended by every commit.
const ENTRIES: usize = 2;
const DIR_VAR: &str = "ATLAS_CRASH_DIR";

fn key(i: usize) -> String {
    format!("promotion/doc-{i}")
}

fn url(dir: &Path) -> String {
    format!("sqlite://{}/atlas.db", dir.display())
}

/// A seeded generator (SplitMix64): the same seed gives the same delays.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// The generation every document of the store carries, after checking that
/// they all carry the same one and that each version equals it (every
/// commit writes every document once, the first commit creating them).
fn whole_commit(documents: &[Document]) -> u64 {
    if documents.is_empty() {
        return 0;
    }
    assert_eq!(documents.len(), DOCUMENTS, "a commit's documents are all there or none is: {documents:?}");
    let generation = documents[0].value["generation"].as_u64().expect("a generation");
    for document in documents {
        assert_eq!(
            document.value["generation"].as_u64(),
            Some(generation),
            "documents from two commits (a mix): {documents:?}"
        );
        assert_eq!(document.version, generation, "version and generation disagree: {document:?}");
    }
    generation
}

/// The writer: commit generation after generation until killed, saying
/// `ready` once the store is open and `committed N` after each commit returns.
fn writer(dir: &std::ffi::OsStr) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = SqlStore::open(&url(Path::new(dir))).await.expect("the writer opens the store");
        let documents = store.list("promotion/").await.unwrap();
        let mut generation = whole_commit(&documents);
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        loop {
            let next = generation + 1;
            let expected = (generation > 0).then_some(generation);
            let writes = (0..DOCUMENTS)
                .map(|i| Write::Put {
                    key: key(i),
                    expected,
                    // Some bulk, so that a commit spans more than one page.
                    value: json!({ "generation": next, "document": i, "padding": "x".repeat(1500) }),
                })
                .collect();
            let entries = (0..ENTRIES)
                .map(|j| AuditEntry {
                    at: "2026-05-05T09:12:00Z".parse().unwrap(),
                    actor: "crash-writer".into(),
                    action: "generation.committed".into(),
                    subject: format!("generation-{next}"),
                    message: format!("entry {j}"),
                })
                .collect();
            store.commit(writes, entries).await.expect("a commit");
            generation = next;
            writeln!(out, "committed {generation}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn kill_the_sqlite_writer_at_random_moments() {
    match std::env::var_os(DIR_VAR) {
        Some(dir) => writer(&dir),
        None => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(kill_and_reopen()),
    }
}

/// The parent: start the writer, kill it, reopen and check, again and again.
async fn kill_and_reopen() {
    let kills = env_u64("ATLAS_CRASH_KILLS", 200);
    let seed = env_u64("ATLAS_CRASH_SEED", 0x5eed_c0de);
    let mut random = SplitMix(seed);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let (mut progress_kills, mut commits) = (0u32, 0u64);
    let dir = TempDir::new("crash");
    let mut committed = 0u64;

    for kill in 1..=kills {
        let mut child = Command::new(&exe)
            .args(["kill_the_sqlite_writer_at_random_moments", "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Skip libtest's own lines up to the writer's `ready`.
        let ready = lines.by_ref().map_while(Result::ok).any(|line| line == "ready");
        assert!(ready, "kill {kill}: the writer did not start (seed {seed})");
        let delay = Duration::from_micros(random.next() % 30_000);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let seen = lines
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("committed ").and_then(|g| g.parse::<u64>().ok()))
            .max();

        let context = format!("kill {kill} of {kills} after {delay:?} (ATLAS_CRASH_SEED={seed})");
        let store =
            SqlStore::open(&dir.url()).await.unwrap_or_else(|e| panic!("{context}: the store does not open: {e}"));
        let generation = whole_commit(&store.list("promotion/").await.unwrap());
        let last_seen = seen.unwrap_or(committed);
        assert!(
            generation >= last_seen,
            "{context}: generation {last_seen} was committed, the store has {generation}: a commit was lost"
        );
        assert!(generation <= last_seen + 1, "{context}: generation {generation} was never written");
        let verified = store.verify().await.unwrap_or_else(|e| panic!("{context}: verify: {e}"));
        let records = store.audit(0).await.unwrap();
        assert_eq!(
            records.len(),
            generation as usize * ENTRIES,
            "{context}: the log holds entries of a commit that did not take effect, or misses some"
        );
        assert_eq!(verified.head.seq, records.len() as u64, "{context}: the head is not the last record");
        for (n, record) in records.iter().enumerate() {
            let want = format!("generation-{}", n / ENTRIES + 1);
            assert_eq!(record.entry.subject, want, "{context}: record {} is out of order", record.seq);
        }
        progress_kills += u32::from(generation > committed);
        commits += generation - committed;
        committed = generation;
        store.close().await;
    }

    eprintln!(
        "{kills} kills of the SQLite writer survived in {:.1?} (ATLAS_CRASH_SEED={seed}): {commits} commits, \
         {progress_kills} kills after at least one commit",
        started.elapsed()
    );
    assert!(commits > kills / 4, "the writer hardly got to write: {commits} commits in {kills} kills");
}
