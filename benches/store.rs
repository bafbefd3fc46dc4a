//! The release train of `benches/engine.rs` on the durable stores: SQLite at
//! 1,000 and 10,000 candidates, PostgreSQL at 1,000, against the disk's
//! fsync floor.
//!
//! ```text
//! cargo bench --all-features --bench store                      # criterion: SQLite, 1,000 candidates
//! ATLAS_BENCH_ONCE=1 cargo bench --all-features --bench store   # the figures: fsync floor, SQLite 1k and 10k, PostgreSQL 1k, peak memory
//! ```
//!
//! The figures say what the targets of the store are measured against:
//! - the cost per candidate at 10,000 within 1.2× of the cost at 1,000 (the
//!   working set does not grow with history);
//! - a SQLite commit within 2× of this disk's floor: a loop of a small write
//!   and an `fsync` of a file in the same directory, measured in the same run;
//! - PostgreSQL, 1,000 candidates in under 30 s (from
//!   `ATLAS_BENCH_POSTGRES_URL`, else `ATLAS_TEST_POSTGRES_URL`; each run in
//!   a schema of its own; without either the PostgreSQL figure is skipped,
//!   saying so);
//! - peak memory (the process's high-water mark after the 10,000 run) under
//!   200 MiB.
//!
//! The databases go to `ATLAS_BENCH_DIR` (default: the system's temporary
//! directory): put it on the disk whose figures you want.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlas_promote::sql::{OpenOptions, SqlStore};
use atlas_promote::testkit::CountingStore;
use common::{assert_all_reached_prod, release_train};
use criterion::{Criterion, criterion_group};

const SMALL: usize = 1_000;
const LARGE: usize = 10_000;

/// A directory for one run's database, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let base = std::env::var_os("ATLAS_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("atlas-bench-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the bench directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn sqlite_url(&self) -> String {
        format!("sqlite://{}/atlas.db", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The disk's floor: the mean time of a small write and an `fsync` of a
/// file in `dir`.
fn fsync_floor(dir: &Path) -> Duration {
    const ROUNDS: u32 = 400;
    let mut file = std::fs::File::create(dir.join("floor")).expect("create the floor file");
    let started = Instant::now();
    for round in 0..ROUNDS {
        writeln!(file, "round {round} of the fsync floor").expect("write");
        file.sync_all().expect("fsync");
    }
    started.elapsed() / ROUNDS
}

/// One run of the train: its time and the commits it made.
struct Run {
    candidates: usize,
    took: Duration,
    commits: u64,
}

impl Run {
    fn per_candidate(&self) -> Duration {
        self.took / self.candidates as u32
    }

    fn per_commit(&self) -> Duration {
        self.took / self.commits.max(1) as u32
    }

    fn describe(&self, name: &str) -> String {
        format!(
            "{name}: {} candidates in {:.2?}: {:.2?} per candidate, {} commits ({:.1} per candidate), {} µs per commit",
            self.candidates,
            self.took,
            self.per_candidate(),
            self.commits,
            self.commits as f64 / self.candidates as f64,
            self.per_commit().as_micros(),
        )
    }
}

async fn train_on(store: SqlStore, n: usize) -> Run {
    let store = Arc::new(CountingStore::new(Arc::new(store)));
    let started = Instant::now();
    let train = release_train(n, store.clone()).await;
    let took = started.elapsed();
    assert_all_reached_prod(&train, n).await;
    Run { candidates: n, took, commits: store.commits() }
}

async fn sqlite(n: usize) -> Run {
    let scratch = Scratch::new("sqlite");
    let store = SqlStore::open(&scratch.sqlite_url()).await.expect("open the SQLite store");
    train_on(store, n).await
}

fn postgres_url() -> Option<String> {
    ["ATLAS_BENCH_POSTGRES_URL", "ATLAS_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
}

async fn postgres(url: &str, n: usize) -> Run {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let schema = format!("bench_{}_{nanos}", std::process::id());
    let store =
        SqlStore::open_with(url, OpenOptions::new().with_schema(&schema)).await.expect("open the PostgreSQL store");
    train_on(store, n).await
}

/// The process's peak resident memory (`VmHWM`), when the system says.
fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.0} MiB", kib / 1024.0))
}

/// The figures, each beside its target.
fn report(runtime: &tokio::runtime::Runtime) {
    let scratch = Scratch::new("floor");
    let floor = fsync_floor(scratch.path());
    println!("fsync floor: {} µs per small write + fsync in {}", floor.as_micros(), scratch.path().display());
    let small = runtime.block_on(sqlite(SMALL));
    println!("{}", small.describe("sqlite"));
    println!(
        "  a commit costs {:.2}× the fsync floor (target: within 2×)",
        small.per_commit().as_secs_f64() / floor.as_secs_f64()
    );
    let large = runtime.block_on(sqlite(LARGE));
    println!("{}", large.describe("sqlite"));
    println!(
        "  per candidate at {LARGE} / at {SMALL}: {:.2} (target: at most 1.2)",
        large.per_candidate().as_secs_f64() / small.per_candidate().as_secs_f64()
    );
    println!("  peak memory so far: {} (target: under 200 MiB)", peak_memory().unwrap_or_else(|| "unknown".into()));
    match postgres_url() {
        Some(url) => {
            let run = runtime.block_on(postgres(&url, SMALL));
            println!("{}", run.describe("postgres"));
            println!("  {SMALL} candidates in {:.1?} (target: under 30 s)", run.took);
        }
        None => println!("postgres: skipped (set ATLAS_BENCH_POSTGRES_URL or ATLAS_TEST_POSTGRES_URL)"),
    }
}

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let mut group = c.benchmark_group("store");
    // One iteration takes seconds: ten of them, no more.
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("sqlite_1k_candidates_trunk_to_prod", |b| {
        b.iter_with_large_drop(|| runtime.block_on(sqlite(SMALL)))
    });
    group.finish();
}

criterion_group!(benches, store);

fn main() {
    if std::env::var_os("ATLAS_BENCH_ONCE").is_some() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        report(&runtime);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
