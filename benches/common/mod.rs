//! The release train the engine and store benchmarks drive (described in
//! `benches/engine.rs`), on any store.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use atlas_promote::chrono::{DateTime, TimeDelta, Utc};
use atlas_promote::{
    ApprovalDecision, Candidate, CheckResult, CheckStatus, ManualClock, MemoryApprovals, MemoryChecks, MemoryCi,
    MemorySourceControl, Policy, Promoter, RunKind, StateStore, StaticDirectory,
};

/// The engine and the in-memory world it acts on.
pub struct Train {
    pub engine: Promoter,
    pub clock: ManualClock,
    pub ci: MemoryCi,
    pub checks: MemoryChecks,
    pub source: MemorySourceControl,
}

impl Train {
    /// A train whose engine keeps its state in `store`.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
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
            .with_store(store)
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
pub async fn release_train(n: usize, store: Arc<dyn StateStore>) -> Train {
    let train = Train::new(store);
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
pub async fn assert_all_reached_prod(train: &Train, n: usize) {
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
