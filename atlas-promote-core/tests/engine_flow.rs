//! The engine drives the seed's release strategy end to end on in-memory backends.

use atlas_promote_core::testkit::Scenario;
use atlas_promote_core::{CheckStatus, Policy, Result};

fn atlas() -> Scenario {
    let mut s = Scenario::new(Policy::atlas());
    s.person("dan", &["developer", "dev-team"]).person("pat", &["product-owner"]).person("alice", &["developer"]);
    s
}

#[tokio::test]
async fn a_merge_goes_through_dev_and_staging_to_prod() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["pipelines/etl.py"]).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in dev");

    s.nightly("dev", "c1", CheckStatus::Passed);
    s.approve("dan", "staging", "c1").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in staging");

    s.nightly("staging", "c1", CheckStatus::Passed);
    s.approve("pat", "prod", "c1").await?;
    s.approve("dan", "prod", "c1").await?;
    s.run_until_idle().await?;
    let timeline = s.timeline().join("\n");
    assert_eq!(s.state("c1").await?.to_string(), "live in prod", "{timeline}");
    s.audit().await?;
    Ok(())
}

/// A check source that is down.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl atlas_promote_core::CheckSource for Down {
    async fn checks(&self, _: &atlas_promote_core::CheckQuery) -> Result<Vec<atlas_promote_core::CheckResult>> {
        Err(atlas_promote_core::Error::backend("nightly", "list results", true, "connection refused"))
    }
}

#[tokio::test]
async fn a_candidate_that_failed_is_retried_at_the_next_poll() -> Result<()> {
    use std::sync::Arc;

    use atlas_promote_core::memory::{MemoryCi, MemorySourceControl, MemoryStore, StaticDirectory};
    use atlas_promote_core::{Candidate, Clock, ManualClock, Promoter};

    let clock = ManualClock::new(atlas_promote_core::testkit::default_start());
    let engine = Promoter::builder(Policy::atlas())
        .with_ci(Arc::new(MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true)))
        .with_checks(Arc::new(Down))
        .with_directory(Arc::new(StaticDirectory::default()))
        .with_source_control(Arc::new(MemorySourceControl::new()))
        .with_store(Arc::new(MemoryStore::new()))
        .with_clock(Arc::new(clock.clone()))
        .with_poll_interval(chrono::TimeDelta::minutes(1))
        .build()?;
    engine.merged(Candidate::trunk("c1", ["alice"]), clock.now()).await?;
    engine.run_until_idle(10).await?;

    // Live in dev; its gate into staging reads the checks of dev, which are down.
    let tick = engine.tick().await?;
    assert_eq!(tick.failures.len(), 1, "{tick}");
    assert_eq!(tick.failures[0].0, "promotion/trunk/c1");
    assert_eq!(tick.next_wake, Some(clock.now() + chrono::TimeDelta::minutes(1)), "{tick}");
    Ok(())
}

#[tokio::test]
async fn the_audit_log_says_why_a_flush_run_follows_a_deploy() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    s.merge("c2", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    s.merge("c3", "alice", &["pipelines/etl.py", "pipelines/load.sql", "src/app.rs"]).await?;
    s.run_until_idle().await?;
    let reasons: Vec<String> =
        s.audit().await?.into_iter().filter(|r| r.entry.action == "flush.required").map(|r| r.entry.message).collect();
    assert_eq!(
        reasons,
        [
            "a flush run will follow the deploy of c1 to dev: nothing is live in dev yet",
            "a flush run will follow the deploy of c3 to dev: pipeline code pipelines/etl.py and 1 more changed since c2, which is live there",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn the_timeline_shows_the_review_decision_and_why_a_self_approval_is_refused() -> Result<()> {
    let mut s = atlas();
    s.open_review("c1", "alice", &["src/app.rs"]).await?;
    for check in ["build", "lint", "unit"] {
        s.report("c1", check, CheckStatus::Passed, chrono::TimeDelta::minutes(3));
    }
    assert!(s.approve("alice", "trunk", "c1").await.is_err());
    s.approve("dan", "trunk", "c1").await?;
    s.run_until_idle().await?;
    let timeline = s.timeline().join("\n");
    assert!(
        timeline.contains(
            "alice's approval of c1 into trunk is refused: alice authored c1; the policy forbids self-approval into trunk"
        ),
        "{timeline}"
    );
    assert!(timeline.ends_with("review → trunk for c1: allowed"), "{timeline}");
    Ok(())
}

#[tokio::test]
async fn a_decision_in_the_timeline_lines_up_its_blockers_under_it() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    let decision = s.timeline().iter().find(|l| l.contains("dev → staging for c1: blocked")).expect("a decision");
    let mut lines = decision.lines();
    assert_eq!(lines.next(), Some("Mon 05-04 08:00 dev → staging for c1: blocked"));
    assert_eq!(
        lines.next(),
        Some("                  blocked: needs 1 more approval from developer (have 0 of 1) to enter staging")
    );
    Ok(())
}

#[tokio::test]
async fn a_tick_lists_each_run_it_triggered_once() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["pipelines/etl.py"]).await?;
    let ticks = s.run_until_idle().await?;
    let listed: Vec<String> = ticks
        .iter()
        .flat_map(|t| &t.actions)
        .filter_map(|a| match a {
            atlas_promote_core::machine::Action::Trigger(request) => Some(request.key.to_string()),
            _ => None,
        })
        .collect();
    let triggered: Vec<String> = s.ci.requests().into_iter().map(|r| r.key.to_string()).collect();
    assert_eq!(triggered.len(), 2, "a deploy to dev and its flush run");
    assert_eq!(listed, triggered, "every trigger, once, in order");
    Ok(())
}

#[tokio::test]
async fn a_merge_notice_names_the_authors_of_the_new_commits_only() -> Result<()> {
    use std::sync::Arc;

    use atlas_promote_core::memory::{MemoryCi, MemoryStore, StaticDirectory};
    use atlas_promote_core::{Clock, ManualClock, Notice, Promoter, memory::MemorySourceControl};

    let clock = ManualClock::new(atlas_promote_core::testkit::default_start());
    let git = MemorySourceControl::new();
    git.commit("a1", None, "alice", &["src/app.rs"]);
    git.commit("b2", Some("a1"), "bob", &["src/app.rs"]);
    git.commit("c3", Some("b2"), "carol", &["src/app.rs"]);
    let engine = Promoter::builder(Policy::atlas())
        .with_ci(Arc::new(MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true)))
        .with_checks(Arc::new(atlas_promote_core::memory::MemoryChecks::new()))
        .with_directory(Arc::new(StaticDirectory::default()))
        .with_source_control(Arc::new(git))
        .with_store(Arc::new(MemoryStore::new()))
        .with_clock(Arc::new(clock.clone()))
        .build()?;
    engine.handle(Notice::Merged { sha: "a1".into(), at: clock.now() }).await?;
    // b2 and c3 arrive together (one push of two commits): c3 brings both.
    engine.handle(Notice::Merged { sha: "c3".into(), at: clock.now() }).await?;
    let authors = |sha: &'static str| {
        let engine = engine.clone();
        async move { engine.promotion(sha).await.map(|r| r.value.promotion.candidate.authors) }
    };
    assert_eq!(authors("a1").await?, ["alice"], "the first commit seen: all of its history");
    assert_eq!(authors("c3").await?, ["bob", "carol"], "only the commits since a1, not alice's");
    Ok(())
}
