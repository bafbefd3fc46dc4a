//! The engine's cost: 10,000 candidates driven from trunk through dev and
//! staging to prod, on the in-memory backends and a simulated clock.
//!
//! ```text
//! cargo bench --bench engine
//! ATLAS_BENCH_ONCE=1 cargo bench --bench engine    # one run, outside criterion (for /usr/bin/time -v)
//! ATLAS_BENCH_ONCE=1 ATLAS_BENCH_CANDIDATES=1000 valgrind --tool=callgrind target/release/deps/engine-…
//! ```
//!
//! The workload is a busy trunk run as a release train. ATLAS allows one
//! deploy in flight per environment, and a newer trunk candidate supersedes
//! older ones waiting on the same gate, so 10,000 merges at once would leave
//! one candidate to reach prod and 9,999 superseded: cheap, but not what the
//! numbers should describe. Instead, every simulated hour:
//!
//! 1. the candidate live in staging gets its passing nightly checks and the
//!    product owner's and dev team's approvals, and moves to prod;
//! 2. the candidate live in dev gets its (advisory) nightly checks and a
//!    developer's approval, and moves to staging;
//! 3. a new commit is merged to trunk and deployed to dev (every fifth one
//!    changes pipeline code, so a flush run follows each of its deploys);
//! 4. the engine ticks until nothing more happens at that instant.
//!
//! So every one of the 10,000 candidates makes the whole trip, with three of
//! them in flight at once (one per environment): 30,000 gate decisions that
//! allow a deploy, 30,000 deploys, 6,000 flush runs, 30,000 approvals and
//! 60,000 check results, each candidate superseded in prod by the next.
//! Everything goes through the engine's public API and the backend traits,
//! as an embedding program would drive it.

mod common;

use std::sync::Arc;

use atlas_promote::MemoryStore;
use common::{assert_all_reached_prod, release_train};
use criterion::{Criterion, criterion_group};

const CANDIDATES: usize = 10_000;

fn memory() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    // Check the workload once, outside the measurement.
    runtime.block_on(async {
        let train = release_train(CANDIDATES, memory()).await;
        assert_all_reached_prod(&train, CANDIDATES).await;
    });
    let mut group = c.benchmark_group("engine");
    // One iteration takes seconds: ten of them, no more.
    group.sample_size(10).warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(45));
    group.bench_function("10k_candidates_trunk_to_prod", |b| {
        b.iter_with_large_drop(|| runtime.block_on(release_train(CANDIDATES, memory())))
    });
    group.finish();
}

criterion_group!(benches, engine);

/// `ATLAS_BENCH_ONCE=1` runs the workload once, outside criterion, and says
/// how long it took: what to run under `/usr/bin/time -v` for peak memory.
/// `ATLAS_BENCH_CANDIDATES` changes the number of candidates of that run
/// (a smaller one to profile).
fn main() {
    if std::env::var_os("ATLAS_BENCH_ONCE").is_some() {
        let n = match std::env::var("ATLAS_BENCH_CANDIDATES") {
            Ok(n) => n.parse().expect("ATLAS_BENCH_CANDIDATES is a number of candidates"),
            Err(_) => CANDIDATES,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
        let started = std::time::Instant::now();
        let train = runtime.block_on(release_train(n, memory()));
        let took = started.elapsed();
        runtime.block_on(assert_all_reached_prod(&train, n));
        println!("{n} candidates from trunk to prod in {took:.2?}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
