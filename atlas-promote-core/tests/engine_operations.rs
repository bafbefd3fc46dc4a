//! The engine's required behaviour beyond the happy path: supersede, one
//! deploy in flight, operator actions, branch builds, monitoring, plans.

use std::collections::BTreeMap;

use atlas_promote_core::machine::State;
use atlas_promote_core::testkit::Scenario;
use atlas_promote_core::{
    CheckStatus, Deploy, Error, Monitor, OnFailure, OverrideRule, Policy, Result, RunKind, Stage, StageKind, Weekday,
    Window,
};
use chrono::TimeDelta;

fn people(s: &mut Scenario) {
    s.person("dan", &["developer", "dev-team"]).person("pat", &["product-owner"]).person("alice", &["developer"]);
    s.person("olga", &["release-manager"]);
}

fn atlas() -> Scenario {
    let mut policy = Policy::atlas();
    policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    let mut s = Scenario::new(policy);
    people(&mut s);
    s
}

async fn to_staging(s: &mut Scenario, sha: &str) -> Result<()> {
    s.merge(sha, "alice", &["src/lib.rs"]).await?;
    s.run_until_idle().await?;
    s.approve("dan", "staging", sha).await?;
    s.run_until_idle().await?;
    Ok(())
}

async fn to_prod(s: &mut Scenario, sha: &str) -> Result<()> {
    to_staging(s, sha).await?;
    s.nightly("staging", sha, CheckStatus::Passed);
    s.approve("pat", "prod", sha).await?;
    s.approve("dan", "prod", sha).await?;
    s.run_until_idle().await?;
    Ok(())
}

/// The ATLAS scenario with prod's window open 09:00–16:00 Europe/Berlin on `days`.
fn prod_open_on(days: &[Weekday]) -> Scenario {
    let mut policy = Policy::atlas();
    policy.stages[4].windows = vec![Window {
        days: days.to_vec(),
        start: atlas_promote_core::LocalTime::hm(9, 0).unwrap(),
        end: atlas_promote_core::LocalTime::hm(16, 0).unwrap(),
        tz: chrono_tz::Europe::Berlin,
    }];
    let mut s = Scenario::new(policy);
    people(&mut s);
    s
}

async fn state(s: &Scenario, sha: &str) -> String {
    s.state(sha).await.map(|st| st.to_string()).unwrap_or_else(|e| e.to_string())
}

#[tokio::test]
async fn the_newest_trunk_candidate_wins_and_older_waiting_ones_are_superseded() -> Result<()> {
    let mut s = atlas();
    s.deploys_fail("dev");
    s.merge("c1", "alice", &["a"]).await?;
    s.merge("c2", "alice", &["b"]).await?;
    s.merge("c3", "alice", &["c"]).await?;
    s.deploys_succeed("dev");
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c3").await, "live in dev");
    assert!(state(&s, "c1").await.starts_with("superseded in trunk by c3"), "{}", state(&s, "c1").await);
    assert!(state(&s, "c2").await.starts_with("superseded in trunk by c3"));
    let audit = s.audit().await?;
    assert!(audit.iter().any(|r| r.entry.action == "superseded" && r.entry.message.contains("only the newest")));
    Ok(())
}

#[tokio::test]
async fn only_one_deploy_is_in_flight_per_environment() -> Result<()> {
    let mut s = atlas();
    s.ci.set_auto_complete(false);
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "deploying to dev (attempt 1)");
    // A newer commit arrives while c1's deploy runs: it waits, it does not start a second deploy.
    s.merge("c2", "alice", &["b"]).await?;
    s.run_until_idle().await?;
    assert_eq!(s.ci.requests().iter().filter(|r| r.stage == "dev").count(), 1);
    assert_eq!(state(&s, "c2").await, "merged to trunk");
    s.ci.finish_all(s.now());
    s.run_until_idle().await?;
    s.ci.finish_all(s.now());
    s.run_until_idle().await?;
    s.ci.finish_all(s.now());
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c2").await, "live in dev");
    assert!(state(&s, "c1").await.starts_with("superseded in dev by c2"));
    Ok(())
}

#[tokio::test]
async fn a_flush_runs_only_when_pipeline_code_changed_since_what_is_live() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/a.rs"]).await?;
    s.run_until_idle().await?;
    s.merge("c2", "alice", &["src/b.rs"]).await?;
    s.run_until_idle().await?;
    s.merge("c3", "alice", &["pipelines/etl/load.py"]).await?;
    s.run_until_idle().await?;
    let flushes: Vec<String> =
        s.ci.requests().into_iter().filter(|r| r.kind == RunKind::Flush).map(|r| r.candidate.sha).collect();
    // c1: nothing was live yet; c2: no pipeline file changed; c3: one did.
    assert_eq!(flushes, ["c1", "c3"]);
    Ok(())
}

#[tokio::test]
async fn a_self_approval_is_refused_with_the_reason_and_audited() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    let err = s.approve("alice", "staging", "c1").await.unwrap_err();
    assert!(matches!(err, Error::Refused { .. }));
    assert!(err.to_string().contains("alice authored c1"), "{err}");
    assert!(s.audit().await?.iter().any(|r| r.entry.action == "approval.refused"));
    Ok(())
}

#[tokio::test]
async fn an_approver_who_lost_the_role_before_the_decision_does_not_count() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    s.approve("dan", "staging", "c1").await?;
    s.directory.revoke("dan", "developer");
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in dev");
    Ok(())
}

#[tokio::test]
async fn a_hold_stops_the_line_until_released() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    s.engine.hold("staging", "olga", "incident 42").await?;
    s.approve("dan", "staging", "c1").await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in dev");
    let plan = s.plan("c1").await?.to_string();
    assert!(plan.contains("staging is held by olga") && plan.contains(": incident 42"), "{plan}");
    s.engine.release("staging", "olga").await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in staging");
    Ok(())
}

#[tokio::test]
async fn a_hold_is_a_blocker_of_the_decision_and_its_release_wakes_the_candidate() -> Result<()> {
    // Given c1 live in dev with the developer's approval into staging, and staging held
    let mut s = atlas();
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    s.engine.hold("staging", "olga", "incident 42").await?;
    s.approve("dan", "staging", "c1").await?;
    // When the engine decides dev → staging
    let tick = s.engine.tick().await?;
    // Then the decision blocks on the hold, says who, and names no wake-up
    let decision = tick.decisions.iter().find(|d| d.to == "staging").expect("a dev → staging decision");
    assert_eq!(decision.verdict, atlas_promote_core::Verdict::Block);
    let kinds: Vec<&str> = decision.blockers.iter().map(|b| b.kind()).collect();
    assert_eq!(kinds, ["held"], "{decision}");
    assert!(decision.to_string().contains("staging is held by olga"), "{decision}");
    assert_eq!(tick.next_wake, None);
    let json = serde_json::to_value(decision).expect("a decision serializes");
    assert_eq!(json["blockers"][0]["kind"], "held");
    assert_eq!(json["blockers"][0]["reason"], "incident 42");
    // And releasing the hold moves the candidate on in the release's own tick
    let tick = s.engine.release("staging", "olga").await?;
    assert!(
        tick.actions
            .iter()
            .any(|a| matches!(a, atlas_promote_core::machine::Action::Trigger(r) if r.stage == "staging")),
        "{tick}"
    );
    Ok(())
}

#[tokio::test]
async fn an_override_by_a_permitted_role_bypasses_the_named_rules_and_is_audited() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    // Not permitted: refused, and the refusal is audited.
    let refused = s.engine.override_gate("c1", "dan", &["approvals_missing"], "in a hurry").await.unwrap_err();
    assert!(matches!(refused, Error::Refused { .. }), "{refused}");
    // Permitted, but naming too little: refused.
    let narrow = s.engine.override_gate("c1", "olga", &["frozen"], "hotfix").await.unwrap_err();
    assert!(narrow.to_string().contains("approvals_missing"), "{narrow}");
    s.engine.override_gate("c1", "olga", &["approvals_missing"], "hotfix for incident 42").await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in staging");
    let audit = s.audit().await?;
    assert_eq!(audit.iter().filter(|r| r.entry.action == "override.refused").count(), 2);
    assert!(audit.iter().any(|r| r.entry.action == "override.granted" && r.entry.message.contains("incident 42")));
    Ok(())
}

#[tokio::test]
async fn a_failed_deploy_can_be_retried_with_a_new_attempt() -> Result<()> {
    let mut s = atlas();
    s.deploys_fail("dev");
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    assert!(state(&s, "c1").await.starts_with("failed in dev"));
    s.deploys_succeed("dev");
    s.engine.retry("c1", "dev", "dan").await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in dev");
    let keys: Vec<String> = s.ci.requests().iter().map(|r| r.key.to_string()).collect();
    assert!(keys.contains(&"atlas.c1.dev.deploy.2".to_owned()), "{keys:?}");
    Ok(())
}

#[tokio::test]
async fn rollback_returns_an_environment_to_its_previous_live_commit() -> Result<()> {
    let mut s = atlas();
    to_prod(&mut s, "c1").await?;
    to_prod(&mut s, "c2").await?;
    assert_eq!(state(&s, "c2").await, "live in prod");
    assert!(state(&s, "c1").await.starts_with("superseded in prod by c2"));
    s.engine.rollback("prod", "olga", "bad data").await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in prod");
    assert_eq!(state(&s, "c2").await, "rolled back from prod");
    let env = s.store.get("environment/prod").await?.expect("prod has a record");
    assert_eq!(env.value["live_sha"], "c1");
    s.audit().await?;
    Ok(())
}

#[tokio::test]
async fn a_failing_data_quality_result_in_prod_raises_an_alert_once() -> Result<()> {
    let mut s = atlas();
    to_prod(&mut s, "c1").await?;
    s.report("c1", "data-quality", CheckStatus::Failed, TimeDelta::minutes(10));
    let ticks = s.run_until_idle().await?;
    let alerts = ticks
        .iter()
        .flat_map(|t| &t.actions)
        .filter(|a| matches!(a, atlas_promote_core::machine::Action::Alert { .. }))
        .count();
    assert_eq!(alerts, 1);
    // The same result does not alert again.
    let again = s.run_until_idle().await?;
    assert!(again.iter().all(|t| t.actions.is_empty()));
    Ok(())
}

#[tokio::test]
async fn a_rollback_monitor_rolls_prod_back_on_failure() -> Result<()> {
    let mut policy = Policy::atlas();
    policy.stages[4].monitor = Some(Monitor { check: "data-quality".into(), on_failure: OnFailure::Rollback });
    let mut s = Scenario::new(policy);
    people(&mut s);
    to_prod(&mut s, "c1").await?;
    to_prod(&mut s, "c2").await?;
    s.report("c2", "data-quality", CheckStatus::Failed, TimeDelta::minutes(10));
    s.run_until_idle().await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c2").await, "rolled back from prod");
    assert_eq!(state(&s, "c1").await, "live in prod");
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

#[tokio::test]
async fn a_branch_build_goes_to_its_ephemeral_environment_and_never_further() -> Result<()> {
    let mut s = Scenario::new(with_preview(Policy::atlas()));
    people(&mut s);
    s.branch_build("b1", "feature/x", "alice", "preview").await?;
    // A branch build passes review's quality checks before it is deployed.
    for check in ["build", "lint", "unit"] {
        s.report("b1", check, CheckStatus::Passed, TimeDelta::minutes(1));
    }
    s.run_until_idle().await?;
    assert_eq!(state(&s, "b1").await, "live in preview");
    // A newer build of the same branch replaces it there.
    s.branch_build("b2", "feature/x", "alice", "preview").await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "b2").await, "under review (review)", "b2's checks have not run");
    for check in ["build", "lint", "unit"] {
        s.report("b2", check, CheckStatus::Passed, TimeDelta::minutes(1));
    }
    s.run_until_idle().await?;
    assert_eq!(state(&s, "b2").await, "live in preview");
    assert!(state(&s, "b1").await.starts_with("superseded in preview by b2"), "{}", state(&s, "b1").await);
    // Trunk candidates skip the ephemeral environment.
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    assert_eq!(state(&s, "c1").await, "live in dev");
    // A branch build is never promoted beyond preview, and dev refuses it.
    assert!(s.plan("b2").await?.steps.is_empty());
    let refused =
        s.engine.deploy_branch(atlas_promote_core::Candidate::branch("b3", "feature/x", ["alice"]), "dev").await;
    assert!(matches!(refused, Err(Error::Refused { .. })));
    Ok(())
}

#[tokio::test]
async fn a_plan_lists_the_steps_ahead_with_their_blockers() -> Result<()> {
    let mut s = prod_open_on(&[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu]);
    s.merge("c1", "alice", &["a"]).await?;
    s.run_until_idle().await?;
    let plan = s.plan("c1").await?.to_string();
    assert!(
        plan.starts_with("c1 is live in dev; ahead:\n  dev → staging:\n    - needs 1 more approval from developer"),
        "{plan}"
    );
    assert!(plan.contains("\n  staging → prod:\n"), "{plan}");
    assert!(plan.contains("needs approvals: 1 from dev-team and 1 from product-owner"), "{plan}");
    assert!(plan.ends_with("window opens Mon,Tue,Wed,Thu 09:00–16:00 Europe/Berlin"), "{plan}");
    Ok(())
}

#[tokio::test]
async fn the_engine_returns_when_to_wake_it_for_a_closed_window() -> Result<()> {
    let mut s = prod_open_on(&[Weekday::Tue]);
    to_prod(&mut s, "c1").await?;
    assert_eq!(state(&s, "c1").await, "live in staging");
    let ticks = s.run_until_idle().await?;
    let wake = ticks.iter().filter_map(|t| t.next_wake).min().expect("a wake-up time");
    // Tuesday 09:00 in Berlin is 07:00 UTC in May.
    assert_eq!(wake.to_rfc3339(), "2026-05-05T07:00:00+00:00");
    s.run_until_settled(5).await?;
    assert_eq!(state(&s, "c1").await, "live in prod");
    Ok(())
}

#[tokio::test]
async fn a_plan_says_what_would_still_block_when_a_wait_ends() -> Result<()> {
    // Given prod opens on Fridays only, and c1 ready for it on Monday night
    let mut s = prod_open_on(&[Weekday::Fri]);
    to_prod(&mut s, "c1").await?;
    assert_eq!(state(&s, "c1").await, "live in staging");
    // Then the plan says the window is closed, and that by Friday the
    // nightly passes will be older than 26 hours
    let plan = s.plan("c1").await?;
    let decision = plan.steps[0].decision.as_ref().expect("the next step's decision");
    assert!(matches!(decision.verdict, atlas_promote_core::Verdict::Wait { .. }), "{decision}");
    let text = plan.to_string();
    assert!(
        text.contains("- the deployment window of prod is closed; it next opens at 2026-05-08 07:00 UTC"),
        "{text}"
    );
    for check in ["integration", "system", "data-quality"] {
        let stale = format!("- the wait ends at 2026-05-08 07:00 UTC, but by then: check {check} last passed at ");
        assert!(text.contains(&stale), "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn a_state_matches_its_promotion_document() -> Result<()> {
    let mut s = atlas();
    to_staging(&mut s, "c1").await?;
    assert!(matches!(s.state("c1").await?, State::Live { ref stage, .. } if stage == "staging"));
    Ok(())
}
