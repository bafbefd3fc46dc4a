//! The engine on the fake GitHub: one `GitHub` value as CI provider, check
//! source, approval source (pull-request reviews), source control and
//! directory; an in-memory store; a manual clock shared with the fake.

use std::sync::Arc;
use std::time::Duration;

use atlas_promote_core::{ApprovalDecision, Clock, ManualClock, MemoryStore, Notice, Policy, Promoter, Tick};
use atlas_promote_github::{GitHub, GitHubBuilder, RetrySettings};
use chrono::{DateTime, TimeDelta, Utc};
use wiremock::MockServer;

use super::FakeGitHub;
use super::Front;

/// `main` before anything under test: the base of every pull request.
pub const C0: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

pub struct Harness {
    pub engine: Promoter,
    pub fake: FakeGitHub,
    pub github: GitHub,
    pub clock: ManualClock,
    /// Between the backend and the fake when it must drop connections.
    pub front: Option<Front>,
    _server: MockServer,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|b| b).await
    }

    /// A harness whose backend is configured further by `configure`.
    pub async fn start_with(configure: impl FnOnce(GitHubBuilder) -> GitHubBuilder) -> Self {
        Self::build(configure, false).await
    }

    /// A harness whose backend talks through a [`Front`] (so connections can be dropped).
    pub async fn through_front(configure: impl FnOnce(GitHubBuilder) -> GitHubBuilder) -> Self {
        Self::build(configure, true).await
    }

    async fn build(configure: impl FnOnce(GitHubBuilder) -> GitHubBuilder, front: bool) -> Self {
        let clock = ManualClock::new(DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap());
        let (fake, server) = FakeGitHub::start(clock.clone()).await;
        fake.team("engineers", &["alice", "bob", "dan"]);
        fake.team("product", &["pat"]);
        fake.team("platform", &["dan"]);
        fake.push(C0, "alice", &["README.md", "pipelines/etl.py"]);
        let front = match front {
            true => Some(Front::start(fake.clone(), *server.address()).await),
            false => None,
        };
        let base_url = front.as_ref().map_or_else(|| server.uri(), Front::uri);
        let github = configure(
            GitHubBuilder::new()
                .with_token(super::TOKEN)
                .with_repository(format!("{}/{}", super::OWNER, super::REPO))
                .with_base_url(base_url)
                .with_team_role("engineers", "developer")
                .with_team_role("product", "product-owner")
                .with_team_role("platform", "dev-team")
                .with_workflow("deploy", "deploy.yml")
                .with_workflow("flush", "deploy.yml")
                .with_dispatch_ref("main")
                .with_retry(
                    RetrySettings::default()
                        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
                        .with_max_wait(Duration::from_millis(500)),
                )
                .with_secondary_rate_limit_wait(Duration::from_millis(20)),
        )
        .build()
        .expect("a valid configuration");
        let engine = Promoter::builder(Policy::atlas())
            .with_ci(Arc::new(github.clone()))
            .with_checks(Arc::new(github.clone()))
            .with_approvals(Arc::new(github.clone()))
            .with_directory(Arc::new(github.clone()))
            .with_source_control(Arc::new(github.clone()))
            .with_store(Arc::new(MemoryStore::new()))
            .with_clock(Arc::new(clock.clone()))
            .with_id("e2e")
            .with_poll_interval(TimeDelta::seconds(30))
            .build()
            .expect("every backend is set");
        Self { engine, fake, github, clock, front, _server: server }
    }

    /// Tick until nothing more happens now; no tick may fail.
    pub async fn run(&self) -> Vec<Tick> {
        let ticks = self.engine.run_until_idle(20).await.expect("the store works");
        for tick in &ticks {
            assert!(tick.failures.is_empty(), "{tick}");
        }
        ticks
    }

    pub async fn state(&self, sha: &str) -> String {
        self.engine.promotion(sha).await.expect("a known candidate").value.promotion.state.to_string()
    }

    /// Let `by` pass, finish every run still going with `conclusion`, and tick.
    pub async fn runs_end(&self, by: TimeDelta, conclusion: &str) -> Vec<String> {
        self.clock.advance(by);
        let keys = self.fake.finish_runs(conclusion);
        self.run().await;
        keys
    }

    /// `sha` was merged: the notice a `push` webhook gives the engine.
    pub async fn merged(&self, sha: &str) -> Tick {
        let tick = self.engine.handle(Notice::Merged { sha: sha.into(), at: self.clock.now() }).await.unwrap();
        assert!(tick.failures.is_empty(), "{tick}");
        self.run().await;
        tick
    }

    pub async fn approve(&self, person: &str, stage: &str, sha: &str) {
        self.engine.approve(person, stage, sha, ApprovalDecision::Approve).await.expect("the approval is recorded");
    }

    /// (requests, of which 304s) of `ticks` steady-state ticks 30 s apart.
    pub async fn steady_ticks(&self, ticks: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for _ in 0..ticks {
            self.clock.advance(TimeDelta::seconds(30));
            let before = self.github.stats();
            let tick = self.engine.tick().await.unwrap();
            assert!(tick.failures.is_empty() && tick.actions.is_empty(), "{tick}");
            let after = self.github.stats();
            out.push((after.sent - before.sent, after.not_modified - before.not_modified));
        }
        out
    }
}

pub fn blockers(ticks: &[Tick], sha: &str) -> Vec<String> {
    ticks
        .iter()
        .flat_map(|t| &t.decisions)
        .rfind(|d| d.sha == sha)
        .map(|d| d.blockers.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}
