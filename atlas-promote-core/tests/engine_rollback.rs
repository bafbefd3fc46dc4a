//! A rollback is right for every environment: the per-branch ephemeral
//! ones too, and with the flush DESIGN §3 asks for (issue 10, item 4).

#![cfg(feature = "testkit")]

use std::collections::BTreeMap;

use atlas_promote_core::policy::{Deploy, Stage, StageKind};
use atlas_promote_core::testkit::Scenario;
use atlas_promote_core::{CheckStatus, Error, Policy, Result, RunKind};

fn atlas(policy: Policy) -> Scenario {
    let mut s = Scenario::new(policy);
    s.person("dan", &["developer", "dev-team"]).person("olga", &["developer"]);
    s
}

/// How many runs of `kind` for `sha` into `stage` were triggered.
fn runs(s: &Scenario, kind: RunKind, sha: &str, stage: &str) -> usize {
    s.ci.requests().iter().filter(|r| r.kind == kind && r.candidate.sha == sha && r.stage == stage).count()
}

/// c1, then c2 changing `files`, went live in dev.
async fn c2_over_c1_in_dev(files: &[&str]) -> Result<Scenario> {
    let mut s = atlas(Policy::atlas());
    s.merge("c1", "alice", &["src/a.rs"]).await?;
    s.run_until_idle().await?;
    s.merge("c2", "alice", files).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");
    Ok(s)
}

#[tokio::test]
async fn a_rollback_redeploy_runs_the_flush_when_pipeline_code_differs_between_the_two_commits() -> Result<()> {
    // Given c2, which changed pipeline code, live in dev over c1
    let mut s = c2_over_c1_in_dev(&["pipelines/etl.py"]).await?;
    assert_eq!(runs(&s, RunKind::Flush, "c1", "dev"), 1, "c1's first deploy flushed: nothing was live");
    // When dev is rolled back to c1
    s.engine.rollback("dev", "olga", "bad data").await?;
    s.run_until_idle().await?;
    // Then c1 is live again after a flush run, and the audit log says why
    assert_eq!(s.state("c1").await?.to_string(), "live in dev");
    assert_eq!(runs(&s, RunKind::Flush, "c1", "dev"), 2);
    let audit = s.audit().await?;
    let why = audit
        .iter()
        .map(|r| &r.entry)
        .find(|e| e.action == "flush.required" && e.subject == "c1" && e.message.contains("redeploy"));
    assert_eq!(
        why.expect("the flush of the redeploy is audited").message,
        "a flush run will follow the redeploy of c1 to dev: pipeline code pipelines/etl.py differs between c2, which is live there, and c1"
    );
    Ok(())
}

#[tokio::test]
async fn a_rollback_redeploy_runs_no_flush_when_no_pipeline_code_differs() -> Result<()> {
    let mut s = c2_over_c1_in_dev(&["src/b.rs"]).await?;
    s.engine.rollback("dev", "olga", "bad data").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in dev");
    assert_eq!(runs(&s, RunKind::Flush, "c1", "dev"), 1);
    Ok(())
}

fn with_preview(mut policy: Policy) -> Policy {
    let mut preview = Stage::new("preview", StageKind::Environment);
    preview.ephemeral = true;
    preview.deploy = Some(Deploy {
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".into(), "preview".into())]),
    });
    policy.stages.insert(2, preview);
    policy
}

async fn build(s: &mut Scenario, sha: &str) -> Result<()> {
    s.branch_build(sha, "feature/x", "alice", "preview").await?;
    for check in ["build", "lint", "unit"] {
        s.report(sha, check, CheckStatus::Passed, chrono::TimeDelta::minutes(1));
    }
    s.run_until_idle().await?;
    assert_eq!(s.state(sha).await?.to_string(), "live in preview");
    Ok(())
}

#[tokio::test]
async fn an_ephemeral_environment_is_rolled_back_per_branch() -> Result<()> {
    // Given two builds of feature/x, one after the other, in preview
    let mut s = atlas(with_preview(Policy::atlas()));
    build(&mut s, "b1").await?;
    build(&mut s, "b2").await?;
    // A rollback of preview must name the branch
    match s.engine.rollback("preview", "olga", "broken").await {
        Err(Error::Refused { reason }) => {
            assert_eq!(reason, "preview exists once per branch: name the branch to roll back")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // When feature/x's preview is rolled back
    s.engine.rollback_branch("preview", "feature/x", "olga", "broken").await?;
    s.run_until_idle().await?;
    // Then b1 runs there again and b2 was rolled back
    assert_eq!(s.state("b1").await?.to_string(), "live in preview");
    assert_eq!(s.state("b2").await?.to_string(), "rolled back from preview");
    Ok(())
}
