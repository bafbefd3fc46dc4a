//! A failed candidate does not stay in the active set for ever: a newer one
//! supersedes it, a retry revives it, or an operator abandons it (issue 10,
//! item 3).

#![cfg(feature = "testkit")]

use atlas_promote_core::testkit::Scenario;
use atlas_promote_core::{Error, Policy, Result};

fn atlas() -> Scenario {
    let mut s = Scenario::new(Policy::atlas());
    s.person("dan", &["developer", "dev-team"]).person("olga", &["developer"]);
    s
}

/// c1 failed to deploy into staging.
async fn c1_failed_in_staging() -> Result<Scenario> {
    let mut s = atlas();
    s.deploys_fail("staging");
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.approve("dan", "staging", "c1").await?;
    s.run_until_idle().await?;
    assert!(s.state("c1").await?.to_string().starts_with("failed in staging"));
    s.deploys_succeed("staging");
    Ok(s)
}

async fn active(s: &Scenario) -> Result<Vec<String>> {
    Ok(s.store.list("active/").await?.into_iter().map(|d| d.key).collect())
}

#[tokio::test]
async fn a_newer_candidate_reaching_the_gate_a_failed_one_failed_at_supersedes_it() -> Result<()> {
    // Given c1 failed in staging
    let mut s = c1_failed_in_staging().await?;
    // When c2 is merged and reaches the gate dev → staging
    s.merge("c2", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");
    // Then c1 is superseded by c2, saying why, and leaves the active set
    assert_eq!(s.state("c1").await?.to_string(), "superseded in staging by c2");
    let audit = s.audit().await?;
    let entry = audit.iter().map(|r| &r.entry).find(|e| e.action == "superseded" && e.subject == "c1");
    let message = &entry.expect("c1's supersession is audited").message;
    assert!(message.contains("c2 is newer and reached the gate into staging that c1 failed to pass"), "{message}");
    assert_eq!(active(&s).await?, ["active/promotion/trunk/c2"]);
    Ok(())
}

#[tokio::test]
async fn a_failed_candidate_no_newer_one_reached_stays_to_be_retried() -> Result<()> {
    // Given c1 failed in staging, and c2 merged but not yet past trunk
    let mut s = c1_failed_in_staging().await?;
    s.engine.hold("dev", "olga", "maintenance").await?;
    s.merge("c2", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "merged to trunk");
    // Then c1 still waits for a retry, and a retry revives it
    assert!(s.state("c1").await?.to_string().starts_with("failed in staging"));
    s.engine.retry("c1", "staging", "olga").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in staging");
    Ok(())
}

#[tokio::test]
async fn an_operator_abandons_a_failed_candidate_and_it_leaves_the_active_set() -> Result<()> {
    // Given c1 failed in staging
    let s = c1_failed_in_staging().await?;
    // A reason is needed
    match s.engine.abandon("c1", "olga", "  ").await {
        Err(Error::Refused { reason }) => assert!(reason.contains("needs a reason"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // When olga abandons it
    s.engine.abandon("c1", "olga", "the build is broken").await?;
    // Then it has ended where it failed, audited, and is no longer active
    assert_eq!(s.state("c1").await?.to_string(), "abandoned in staging by olga");
    let audit = s.audit().await?;
    let last = &audit.last().expect("an audit record").entry;
    assert_eq!(last.action, "abandoned");
    assert_eq!(last.message, "olga abandons c1 after it failed in staging: the build is broken");
    assert!(active(&s).await?.is_empty());
    // And a retry no longer applies
    assert!(s.engine.retry("c1", "staging", "olga").await.is_err());
    Ok(())
}

#[tokio::test]
async fn only_a_failed_candidate_is_abandoned() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    match s.engine.abandon("c1", "olga", "changed my mind").await {
        Err(Error::Refused { reason }) => {
            assert!(
                reason.starts_with("c1 is live in dev: only a candidate whose deploy failed is abandoned"),
                "{reason}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_late_merge_notice_does_not_deploy_over_a_newer_commit_that_runs_after_it_was_abandoned() -> Result<()> {
    use atlas_promote_core::{Candidate, Outcome, RunKind};
    // Given c2, built on c1, deployed into dev, its flush failed, and abandoned
    let mut s = atlas();
    s.source.commit("c1", None, "alice", &["src/a.rs"]);
    s.source.commit("c2", Some("c1"), "bob", &["src/b.rs"]);
    s.ci.set_outcome("dev", RunKind::Flush, Outcome::Fail);
    let at = s.now();
    s.engine.merged(Candidate::trunk("c2", ["bob"]), at).await?;
    s.run_until_idle().await?;
    assert!(s.state("c2").await?.to_string().starts_with("failed in dev"));
    s.engine.abandon("c2", "olga", "the flush is broken").await?;
    // When c1's merge notice arrives late
    s.engine.merged(Candidate::trunk("c1", ["alice"]), at).await?;
    s.run_until_idle().await?;
    // Then c1 does not take dev back to older code: c2, built on it, runs there
    assert_eq!(s.state("c1").await?.to_string(), "superseded in trunk by c2");
    assert!(s.ci.requests().iter().all(|r| r.candidate.sha != "c1"));
    Ok(())
}
