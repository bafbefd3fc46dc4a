//! Every conformance suite against every in-memory implementation.

use std::collections::BTreeMap;

use atlas_promote_core::memory::{
    MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, Outcome, StaticDirectory,
};
use atlas_promote_core::testkit::{self, Capabilities, History};
use atlas_promote_core::{Candidate, CheckResult, CheckStatus, IdempotencyKey, Policy, RunKind, RunRequest};
use chrono::{DateTime, TimeDelta, Utc};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn sample(stage: &str) -> RunRequest {
    RunRequest {
        key: IdempotencyKey::new("9fceb02", stage, RunKind::Deploy, 1),
        kind: RunKind::Deploy,
        stage: stage.into(),
        candidate: Candidate::trunk("9fceb02", ["alice"]),
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".into(), stage.into())]),
    }
}

fn check(name: &str, sha: &str, status: CheckStatus, started: &str) -> CheckResult {
    let started_at = at(started);
    let finished_at = status.is_finished().then(|| started_at + TimeDelta::minutes(40));
    CheckResult { name: name.into(), sha: sha.into(), status, started_at, finished_at }
}

#[tokio::test]
async fn memory_store_conforms() {
    let store = MemoryStore::new();
    testkit::state_store_suite(&store).await;
    store.verify_audit().unwrap();
}

#[tokio::test]
async fn memory_store_leases_conform() {
    testkit::lease_suite(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_deliveries_conform() {
    testkit::delivery_suite(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_outbox_conforms() {
    testkit::outbox_suite(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_ci_conforms_with_runs_left_pending() {
    testkit::ci_provider_suite(&MemoryCi::new(), sample("prod")).await;
}

#[tokio::test]
async fn memory_ci_conforms_with_auto_completed_runs() {
    for outcome in [Outcome::Succeed, Outcome::Fail, Outcome::Hang] {
        let ci = MemoryCi::new().with_auto_complete(true);
        ci.set_default_outcome(outcome);
        testkit::ci_provider_suite(&ci, sample("staging")).await;
        assert_eq!(ci.trigger_count(), 1, "the suite triggers once");
    }
}

#[tokio::test]
async fn memory_checks_conform() {
    let checks = MemoryChecks::new();
    let seeded = [
        check("integration", "a1", CheckStatus::Passed, "2026-05-04T22:00:00Z"),
        check("integration", "a1", CheckStatus::Failed, "2026-05-05T22:00:00Z"),
        check("system", "a1", CheckStatus::Running, "2026-05-05T23:00:00Z"),
        check("data-quality", "b2", CheckStatus::Errored, "2026-05-04T22:00:00Z"),
    ];
    for result in &seeded {
        checks.report(result.clone());
    }
    testkit::check_source_suite(&checks, &seeded).await;
}

#[tokio::test]
async fn memory_approvals_conform() {
    testkit::approval_source_suite(&MemoryApprovals::new(), Capabilities { can_submit: true }).await;
}

#[tokio::test]
async fn static_directory_conforms() {
    let directory =
        StaticDirectory::new(BTreeMap::from([("dan".to_owned(), vec!["developer".to_owned(), "dev-team".to_owned()])]));
    testkit::directory_suite(&directory, ("dan", &["developer", "dev-team"])).await;
    directory.grant("pat", "product-owner");
    testkit::directory_suite(&directory, ("pat", &["product-owner"])).await;
}

#[tokio::test]
async fn static_directory_from_the_atlas_policy_conforms() {
    let policy = Policy::atlas();
    let directory = StaticDirectory::from_policy(&policy);
    if let Some((person, roles)) = policy.directory.iter().next() {
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        testkit::directory_suite(&directory, (person, &roles)).await;
    } else {
        testkit::directory_suite(&directory, ("anyone", &[])).await;
    }
}

#[tokio::test]
async fn memory_source_control_conforms() {
    let git = MemorySourceControl::new();
    git.commit("a1", None, "alice", &["README.md"]);
    git.commit("b2", Some("a1"), "bob", &["pipelines/load.sql"]);
    git.commit("c3", Some("b2"), "carol", &["src/app.rs", "pipelines/load.sql"]);
    let history =
        History { base: "a1", head: "c3", files: &["pipelines/load.sql", "src/app.rs"], authors: &["bob", "carol"] };
    testkit::source_control_suite(&git, history).await;
}

#[tokio::test]
async fn store_approvals_keep_the_approval_source_contract() {
    let store = std::sync::Arc::new(atlas_promote_core::memory::MemoryStore::new());
    let approvals = atlas_promote_core::StoreApprovals::new(store);
    testkit::approval_source_suite(&approvals, Capabilities { can_submit: true }).await;
}

#[tokio::test]
async fn memory_store_working_set_does_not_grow_with_history() {
    testkit::working_set_suite(std::sync::Arc::new(MemoryStore::new())).await;
}
