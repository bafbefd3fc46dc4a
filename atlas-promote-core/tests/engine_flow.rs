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
