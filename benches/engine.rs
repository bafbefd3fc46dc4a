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

use std::sync::Arc;

use atlas_promote::chrono::{DateTime, TimeDelta, Utc};
use atlas_promote::{
    ApprovalDecision, Candidate, CheckResult, CheckStatus, ManualClock, MemoryApprovals, MemoryChecks, MemoryCi,
    MemorySourceControl, MemoryStore, Policy, Promoter, RunKind, StaticDirectory,
};
use criterion::{Criterion, criterion_group};

const CANDIDATES: usize = 10_000;

/// The engine and the in-memory world it acts on.
struct Train {
    engine: Promoter,
    clock: ManualClock,
    ci: MemoryCi,
    checks: MemoryChecks,
    source: MemorySourceControl,
}

impl Train {
    fn new() -> Self {
        let start: DateTime<Utc> = "2026-05-04T08:00:00Z".parse().expect("a valid instant");
        let clock = ManualClock::new(start);
        let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
        let checks = MemoryChecks::new();
        let source = MemorySourceControl::new();
        let directory = StaticDirectory::default();
        directory.grant("dan", "developer");
        directory.grant("pat", "product-owner");
        directory.grant("erin", "dev-team");
        let engine = Promoter::builder(Policy::atlas())
            .with_ci(Arc::new(ci.clone()))
            .with_checks(Arc::new(checks.clone()))
            .with_approvals(Arc::new(MemoryApprovals::new()))
            .with_directory(Arc::new(directory))
            .with_source_control(Arc::new(source.clone()))
            .with_store(Arc::new(MemoryStore::new()))
            .with_clock(Arc::new(clock.clone()))
            .with_id("bench")
            .build()
            .expect("every backend is set");
        Self { engine, clock, ci, checks, source }
    }

    fn now(&self) -> DateTime<Utc> {
        atlas_promote::Clock::now(&self.clock)
    }

    /// Every check of `stage` passed on `sha` in a run that ended just now.
    fn nightly(&self, stage: &str, sha: &str) {
        let policy = self.engine.policy();
        let stage = policy.stage(stage).expect("the stage exists");
        for check in &stage.checks {
            self.checks.report(CheckResult {
                name: check.name.clone(),
                sha: sha.into(),
                status: CheckStatus::Passed,
                started_at: self.now() - TimeDelta::minutes(40),
                finished_at: Some(self.now()),
            });
        }
    }

    async fn approve(&self, person: &str, stage: &str, sha: &str) {
        self.engine.approve(person, stage, sha, ApprovalDecision::Approve).await.expect("the approval is recorded");
    }

    async fn merge(&self, sha: &str, parent: Option<&str>, pipeline: bool) {
        let files: &[&str] = if pipeline { &["pipelines/etl.py", "src/app.rs"] } else { &["src/app.rs"] };
        self.source.commit(sha, parent, "alice", files);
        let candidate = Candidate { created_at: Some(self.now()), ..Candidate::trunk(sha, ["alice"]) };
        self.engine.merged(candidate, self.now()).await.expect("the merge is recorded");
    }

    /// Tick until nothing more happens now; every candidate must have moved without failure.
    async fn settle(&self) {
        for tick in self.engine.run_until_idle(50).await.expect("the store is readable") {
            assert!(tick.failures.is_empty(), "{tick}");
        }
    }
}

/// Drive `n` candidates from trunk to prod; returns the engine's world.
async fn release_train(n: usize) -> Train {
    let train = Train::new();
    let shas: Vec<String> = (0..n).map(|i| format!("{i:07x}")).collect();
    for round in 0..n + 2 {
        if let Some(sha) = round.checked_sub(2).map(|i| &shas[i]) {
            train.nightly("staging", sha);
            train.approve("pat", "prod", sha).await;
            train.approve("erin", "prod", sha).await;
        }
        if let Some(sha) = round.checked_sub(1).and_then(|i| shas.get(i)) {
            train.nightly("dev", sha);
            train.approve("dan", "staging", sha).await;
        }
        if let Some(sha) = shas.get(round) {
            train.merge(sha, round.checked_sub(1).map(|i| shas[i].as_str()), round % 5 == 0).await;
        }
        train.settle().await;
        train.clock.advance(TimeDelta::hours(1));
    }
    train
}

/// Every candidate went live in prod, in order, each deployed there once.
async fn assert_all_reached_prod(train: &Train, n: usize) {
    let prod_deploys: Vec<String> = train
        .ci
        .requests()
        .into_iter()
        .filter(|r| r.stage == "prod" && r.kind == RunKind::Deploy)
        .map(|r| r.candidate.sha)
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("{i:07x}")).collect();
    assert_eq!(prod_deploys, expected, "each candidate is deployed to prod once, in order");
    let last = train.engine.promotion(&expected[n - 1]).await.expect("the last candidate is known");
    assert_eq!(last.value.promotion.state.to_string(), "live in prod");
}

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    // Check the workload once, outside the measurement.
    runtime.block_on(async {
        let train = release_train(CANDIDATES).await;
        assert_all_reached_prod(&train, CANDIDATES).await;
    });
    let mut group = c.benchmark_group("engine");
    // One iteration takes seconds: ten of them, no more.
    group.sample_size(10).warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(45));
    group.bench_function("10k_candidates_trunk_to_prod", |b| {
        b.iter_with_large_drop(|| runtime.block_on(release_train(CANDIDATES)))
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
        let train = runtime.block_on(release_train(n));
        let took = started.elapsed();
        runtime.block_on(assert_all_reached_prod(&train, n));
        println!("{n} candidates from trunk to prod in {took:.2?}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
