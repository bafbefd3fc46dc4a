//! The engine on the fake CircleCI: one `CircleCi` value as CI provider,
//! check source and approval source; in-memory source control, directory
//! and store; a manual clock shared with the fake.

use std::sync::Arc;

use atlas_promote_circleci::{CircleCi, CircleCiBuilder};
use atlas_promote_core::{
    Candidate, Clock, ManualClock, MemorySourceControl, MemoryStore, Policy, Promoter, StaticDirectory, Tick,
};
use chrono::{DateTime, TimeDelta, Utc};
use wiremock::MockServer;

use super::{FakeCircleCi, Front};

/// The ATLAS engine wired to a fake CircleCI.
pub struct Harness {
    pub engine: Promoter,
    pub fake: FakeCircleCi,
    pub server: MockServer,
    pub front: Option<Front>,
    pub circleci: CircleCi,
    pub clock: ManualClock,
    pub source: MemorySourceControl,
    head: Option<String>,
}

/// Now, to the second: the backend pages trunk pipelines back from the real clock.
fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now is a valid instant")
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|b| b).await
    }

    /// A harness whose backend is configured further by `configure`.
    pub async fn start_with(configure: impl FnOnce(CircleCiBuilder) -> CircleCiBuilder) -> Self {
        Self::build(configure, false).await
    }

    /// A harness whose backend talks through a [`Front`] (so connections can be dropped).
    pub async fn through_front(configure: impl FnOnce(CircleCiBuilder) -> CircleCiBuilder) -> Self {
        Self::build(configure, true).await
    }

    async fn build(configure: impl FnOnce(CircleCiBuilder) -> CircleCiBuilder, front: bool) -> Self {
        let clock = ManualClock::new(start());
        let (fake, server) = FakeCircleCi::start(clock.clone()).await;
        let front = match front {
            true => Some(Front::start(fake.clone(), *server.address()).await),
            false => None,
        };
        let mut builder = crate::common::builder(&server);
        if let Some(front) = &front {
            builder = builder.with_base_url(front.uri());
        }
        let circleci = configure(builder).build().expect("a valid configuration");
        let policy = Policy::atlas();
        let directory = StaticDirectory::from_policy(&policy);
        for (person, role) in [("dan", "developer"), ("dan", "dev-team"), ("pat", "product-owner")] {
            directory.grant(person, role);
        }
        let source = MemorySourceControl::new();
        let engine = Promoter::builder(policy)
            .with_ci(Arc::new(circleci.clone()))
            .with_checks(Arc::new(circleci.clone()))
            .with_approvals(Arc::new(circleci.clone()))
            .with_directory(Arc::new(directory))
            .with_source_control(Arc::new(source.clone()))
            .with_store(Arc::new(MemoryStore::new()))
            .with_clock(Arc::new(clock.clone()))
            .with_id("e2e")
            .with_poll_interval(TimeDelta::seconds(30))
            .build()
            .expect("every backend is set");
        Self { engine, fake, server, front, circleci, clock, source, head: None }
    }

    /// `author` merges `sha` (changing `files`) to trunk: CircleCI runs its
    /// push pipeline, and the engine hears of the merge.
    pub async fn merge(&mut self, sha: &str, author: &str, files: &[&str]) {
        self.source.commit(sha, self.head.as_deref(), author, files);
        self.head = Some(sha.to_owned());
        self.fake.push(sha);
        let now = self.clock.now();
        let candidate = Candidate { created_at: Some(now), ..Candidate::trunk(sha, [author]) };
        self.engine.merged(candidate, now).await.expect("the merge is recorded");
    }

    /// Tick until nothing more happens now; no tick may fail.
    pub async fn run(&self) -> Vec<Tick> {
        let ticks = self.engine.run_until_idle(20).await.expect("the store works");
        for tick in &ticks {
            assert!(tick.failures.is_empty(), "{tick}");
        }
        ticks
    }

    /// One tick, whatever happens.
    pub async fn tick(&self) -> Tick {
        self.engine.tick().await.expect("the store works")
    }

    pub async fn state(&self, sha: &str) -> String {
        self.engine.promotion(sha).await.expect("a known candidate").value.promotion.state.to_string()
    }

    /// Let `by` pass, finish every run still going with `status`, and tick.
    pub async fn runs_end(&self, by: TimeDelta, status: &str) -> Vec<String> {
        self.clock.advance(by);
        let keys = self.fake.finish_runs(status);
        self.run().await;
        keys
    }
}

/// The blockers of the last decision about `sha` in `ticks`, as sentences.
pub fn blockers(ticks: &[Tick], sha: &str) -> Vec<String> {
    ticks
        .iter()
        .flat_map(|t| &t.decisions)
        .rfind(|d| d.sha == sha)
        .map(|d| d.blockers.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}
