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
