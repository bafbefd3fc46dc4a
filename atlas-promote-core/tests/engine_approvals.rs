//! Approvals that can never count are refused, saying why; one that is
//! recorded says whether it counts (issue 10, item 5).

#![cfg(feature = "testkit")]

use atlas_promote_core::testkit::Scenario;
use atlas_promote_core::{ApprovalDecision, ApprovalOutcome, Error, Policy, Result};

fn atlas() -> Scenario {
    let mut s = Scenario::new(Policy::atlas());
    s.person("dan", &["developer", "dev-team"]).person("pat", &["product-owner"]);
    s
}

fn refusal<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(Error::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_approval_into_a_stage_the_candidate_has_passed_is_refused_with_the_reason() -> Result<()> {
    // Given c1 live in staging
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.approve("dan", "staging", "c1").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in staging");
    // When dan approves it into staging again
    let reason = refusal(s.engine.approve("dan", "staging", "c1", ApprovalDecision::Approve).await);
    // Then the engine refuses, saying the candidate is past that gate, and audits the refusal
    assert_eq!(
        reason,
        "an approval of c1 into staging can never count: it is live in staging, past the gate into staging"
    );
    let audit = s.audit().await?;
    let last = &audit.last().expect("an audit record").entry;
    assert_eq!((last.action.as_str(), last.message.as_str()), ("approval.refused", reason.as_str()));
    Ok(())
}

#[tokio::test]
async fn an_approval_into_a_stage_without_an_approval_rule_is_refused_with_the_reason() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    // dev has no approval rule in ATLAS
    let reason = refusal(s.engine.approve("dan", "dev", "c1", ApprovalDecision::Approve).await);
    assert_eq!(reason, "stage dev of policy atlas has no approval rule, so no approval into it can count");
    Ok(())
}

#[tokio::test]
async fn an_approval_of_a_commit_the_engine_does_not_know_is_refused_with_the_reason() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    let reason = refusal(s.engine.approve("dan", "staging", "c9", ApprovalDecision::Approve).await);
    assert_eq!(reason, "atlas-promote does not know commit c9: approvals count only for a candidate it promotes");
    Ok(())
}

#[tokio::test]
async fn an_approver_holding_none_of_the_rules_roles_is_recorded_but_told_it_does_not_count() -> Result<()> {
    // Given c1 live in dev; staging needs one developer
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    // When pat, a product owner, approves it into staging
    let outcome = s.engine.approve("pat", "staging", "c1", ApprovalDecision::Approve).await?;
    // Then the approval is recorded, but the call says it does not count, and why
    let ApprovalOutcome::RecordedNotCounting { record, reason } = &outcome else {
        panic!("expected an approval that does not count, got {outcome:?}");
    };
    assert_eq!(record.approver, "pat");
    assert_eq!(
        reason,
        "pat holds none of the roles an approval into staging counts for (developer); they hold product-owner"
    );
    let audit = s.audit().await?;
    let last = &audit.last().expect("an audit record").entry;
    assert_eq!(last.action, "approval.approve");
    assert!(last.message.ends_with(&format!("; it does not count: {reason}")), "{}", last.message);
    // And it does not let c1 into staging; dan's does, and counts
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in dev");
    let outcome = s.approve("dan", "staging", "c1").await?;
    assert!(outcome.counts(), "{outcome:?}");
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in staging");
    Ok(())
}
