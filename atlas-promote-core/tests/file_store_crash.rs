//! Crash safety of the file store (issue 6, item 4): a child process commits
//! state documents and audit entries in a loop and is killed with SIGKILL at
//! random moments; after every kill the store must reopen with the state of
//! one whole commit (never a mix), no commit the child saw succeed may be
//! lost, and the audit log must verify (a torn last line is repaired and
//! reported, never a break of the chain).
//!
//! The child is this test binary itself, re-invoked to run the ignored test
//! `crash_writer`, which does its work only when `ATLAS_CRASH_DIR` is set.
//!
//! `ATLAS_CRASH_KILLS` sets the number of kills (default 200);
//! `ATLAS_CRASH_SEED` the seed of the delays (0–30 ms after the writer is
//! ready), so a failing sequence replays. A store lives for
//! [`KILLS_PER_STORE`] kills, then the next starts empty: reopening verifies
//! the whole audit chain, and a debug build's SHA-256 makes that slow for a
//! long log.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atlas_promote_core::store::FileStore;
use atlas_promote_core::{AuditEntry, AuditRecord, Document, StateStore, Write};
use common::TempDir;
use serde_json::json;

/// Documents written by every commit, all with the commit's generation.
const DOCUMENTS: usize = 4;
/// Audit entries appended by every commit.
const ENTRIES: usize = 2;
const DIR_VAR: &str = "ATLAS_CRASH_DIR";
/// Kills a store lives through before the next store starts.
const KILLS_PER_STORE: u64 = 40;

fn key(i: usize) -> String {
    format!("promotion/doc-{i}")
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

/// The generation an audit record was written by.
fn generation_of(record: &AuditRecord) -> u64 {
    record.entry.subject.strip_prefix("generation-").and_then(|g| g.parse().ok()).expect("a generation subject")
}

/// The log is a sequence of commit attempts, each the entries `entry 0`,
/// `entry 1`, … of one generation, whole or cut short (an append cut by the
/// kill). Attempts go generation by generation, a generation repeated when
/// its commit did not take effect; every committed generation has a whole
/// attempt, and past them there is at most the next generation's.
fn check_audit(records: &[AuditRecord], committed: u64) {
    let mut attempts: Vec<(u64, usize)> = Vec::new();
    for record in records {
        let generation = generation_of(record);
        let index: usize = record
            .entry
            .message
            .strip_prefix("entry ")
            .and_then(|j| j.parse().ok())
            .unwrap_or_else(|| panic!("record {} is not the writer's: {record:?}", record.seq));
        match attempts.last_mut() {
            Some((g, len)) if index > 0 => {
                assert_eq!((*g, *len), (generation, index), "record {} breaks an attempt: {record:?}", record.seq);
                *len += 1;
            }
            _ => {
                assert_eq!(index, 0, "record {} starts an attempt in its middle: {record:?}", record.seq);
                let previous = attempts.last().map_or(0, |(g, _)| *g);
                assert!(
                    generation == previous || generation == previous + 1 || (previous == 0 && generation == 1),
                    "record {}: generation {generation} after {previous}",
                    record.seq
                );
                attempts.push((generation, 1));
            }
        }
    }
    for generation in 1..=committed {
        assert!(
            attempts.iter().any(|&(g, len)| g == generation && len == ENTRIES),
            "generation {generation} was committed but its entries are not all in the log: {attempts:?}"
        );
    }
    assert!(
        attempts.iter().all(|&(g, _)| g <= committed + 1),
        "entries of a generation never attempted: {attempts:?} (committed {committed})"
    );
}

/// The writer: commit generation after generation until killed, saying
/// `ready` once the store is open and `committed N` after each commit returns.
#[test]
#[ignore = "the child process of kill_the_writer_at_random_moments; does nothing on its own"]
fn crash_writer() {
    let Some(dir) = std::env::var_os(DIR_VAR) else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let store = FileStore::open(&dir).expect("the writer opens the store");
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
                    // Some bulk, so that a write of state.json takes more than one page.
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

#[tokio::test]
async fn kill_the_writer_at_random_moments() {
    let kills = env_u64("ATLAS_CRASH_KILLS", 200);
    let seed = env_u64("ATLAS_CRASH_SEED", 0x5eed_c0de);
    let mut random = SplitMix(seed);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let (mut commits, mut torn, mut orphans, mut progress_kills) = (0u64, 0u32, 0usize, 0u32);
    let mut dir = TempDir::new("crash");
    let mut committed = 0u64;

    for kill in 1..=kills {
        if kill > 1 && (kill - 1) % KILLS_PER_STORE == 0 {
            let records = FileStore::open(dir.path()).unwrap().audit(0).await.unwrap().len();
            (commits, orphans) = (commits + committed, orphans + records - committed as usize * ENTRIES);
            (dir, committed) = (TempDir::new("crash"), 0);
        }
        let mut child = Command::new(&exe)
            .args(["crash_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"])
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
        let store = FileStore::open(dir.path()).unwrap_or_else(|e| panic!("{context}: the store does not open: {e}"));
        let generation = whole_commit(&store.list("promotion/").await.unwrap());
        let last_seen = seen.unwrap_or(committed);
        assert!(
            generation >= last_seen,
            "{context}: generation {last_seen} was committed, the store has {generation}: a commit was lost"
        );
        assert!(generation <= last_seen + 1, "{context}: generation {generation} was never written");
        let report = store.verify().unwrap();
        assert!(report.is_intact(), "{context}: {report}");
        let records = store.audit(0).await.unwrap();
        check_audit(&records, generation);
        assert!(report.head.seq >= generation * ENTRIES as u64, "{context}: the head misses records: {report}");
        torn += u32::from(report.repaired.is_some());
        progress_kills += u32::from(generation > committed);
        committed = generation;
        drop(store);
    }

    let records = FileStore::open(dir.path()).unwrap().audit(0).await.unwrap().len();
    (commits, orphans) = (commits + committed, orphans + records - committed as usize * ENTRIES);
    eprintln!(
        "{kills} kills survived in {:.1?} (ATLAS_CRASH_SEED={seed}): {commits} commits, {progress_kills} kills \
         after at least one commit, {torn} torn audit lines repaired, {orphans} audit records of commits cut short kept",
        started.elapsed()
    );
    assert!(commits > kills / 4, "the writer hardly got to write: {commits} commits in {kills} kills");
}
