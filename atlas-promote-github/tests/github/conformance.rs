//! The core testkit's conformance suites, run against this backend on a
//! local server speaking the GitHub API with the published payloads.

use std::collections::BTreeMap;

use atlas_promote_core::testkit::{self, Capabilities, History};
use atlas_promote_core::{Candidate, CheckResult, CheckStatus, IdempotencyKey, RunKind, RunRequest};
use wiremock::{MockServer, ResponseTemplate};

use super::*;

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn ci_provider_suite() {
    let server = MockServer::start().await;
    let sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";
    let key = IdempotencyKey::new(sha, "dev", RunKind::Deploy, 1);
    // Recent dispatches: only an unrelated run (its run-name carries no key).
    api("GET", &repo("actions/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_workflow_runs.json")))
        .mount(&server)
        .await;
    let mut details = fixture("create_workflow_dispatch.json");
    details["workflow_run_id"] = 77.into();
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .respond_with(ResponseTemplate::new(200).set_body_json(details))
        .expect(1)
        .mount(&server)
        .await;
    let mut run = fixture("get_workflow_run.json");
    run["id"] = 77.into();
    run["status"] = "in_progress".into();
    run["display_title"] = format!("deploy dev {sha} [{key}]").into();
    api("GET", &repo("actions/runs/77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run))
        .mount(&server)
        .await;
    api("POST", &repo("actions/runs/77/cancel"))
        .respond_with(ResponseTemplate::new(202).set_body_json(serde_json::json!({})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("POST", &repo("actions/runs/77/cancel"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(serde_json::json!({"message": "Cannot cancel a workflow run that is completed."})),
        )
        .mount(&server)
        .await;
    let sample = RunRequest {
        key,
        kind: RunKind::Deploy,
        stage: "dev".into(),
        candidate: Candidate::trunk(sha, ["alice"]),
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".to_string(), "dev".to_string())]),
    };
    testkit::ci_provider_suite(&github(&server), sample).await;
}

#[tokio::test]
async fn check_source_suite() {
    let server = MockServer::start().await;
    let sha = "ce587453ced02b1526dfb4cb910479d431683101";
    let mut statuses = fixture("list_commit_statuses_for_ref.json");
    let template = statuses[0].clone();
    for (id, state, at) in [
        (11, "pending", "2026-05-04T22:00:00Z"),
        (12, "failure", "2026-05-04T22:40:00Z"),
        (13, "pending", "2026-05-05T22:00:00Z"),
    ] {
        let mut s = template.clone();
        s["id"] = id.into();
        s["context"] = "data-quality".into();
        s["state"] = state.into();
        s["created_at"] = at.into();
        s["updated_at"] = at.into();
        statuses.as_array_mut().unwrap().insert(0, s);
    }
    api("GET", &repo(&format!("commits/{sha}/check-runs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_check_runs_for_ref.json")))
        .mount(&server)
        .await;
    api("GET", &repo(&format!("commits/{sha}/statuses")))
        .respond_with(ResponseTemplate::new(200).set_body_json(statuses))
        .mount(&server)
        .await;
    api("GET", &repo("commits/testkit-sha-without-results/check-runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"total_count": 0, "check_runs": []})))
        .mount(&server)
        .await;
    api("GET", &repo("commits/testkit-sha-without-results/statuses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    let result = |name: &str, status, started: &str, finished: Option<&str>| CheckResult {
        name: name.into(),
        sha: sha.into(),
        status,
        started_at: t(started),
        finished_at: finished.map(t),
    };
    let seeded = [
        result("mighty_readme", CheckStatus::Passed, "2018-05-04T01:14:52Z", Some("2018-05-04T01:14:52Z")),
        result(
            "continuous-integration/jenkins",
            CheckStatus::Passed,
            "2012-07-20T01:19:13Z",
            Some("2012-07-20T01:19:13Z"),
        ),
        result("data-quality", CheckStatus::Failed, "2026-05-04T22:00:00Z", Some("2026-05-04T22:40:00Z")),
        result("data-quality", CheckStatus::Running, "2026-05-05T22:00:00Z", None),
    ];
    testkit::check_source_suite(&github(&server), &seeded).await;
}

#[tokio::test]
async fn approval_source_suite() {
    let server = MockServer::start().await;
    api("GET", &repo("commits/testkit-sha-without-records/pulls"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    // Pull-request reviews cannot be submitted for someone: the suite's
    // stage is the review stage here, so submit is Unsupported.
    let gh = builder(&server).with_review_stage("testkit-prod").build().unwrap();
    testkit::approval_source_suite(&gh, Capabilities { can_submit: false }).await;
}

#[tokio::test]
async fn directory_suite() {
    let server = MockServer::start().await;
    api("GET", "/orgs/octo-org/teams/engineers/memberships/octocat")
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_team_membership_for_user.json")))
        .mount(&server)
        .await;
    api("GET", "/orgs/octo-org/teams/product/memberships/octocat")
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_team_membership_for_user_pending.json")))
        .mount(&server)
        .await;
    // Everyone else: GitHub's 404 for "not a member".
    let gh = builder(&server)
        .with_team_role("engineers", "developer")
        .with_team_role("product", "product-owner")
        .build()
        .unwrap();
    testkit::directory_suite(&gh, ("octocat", &["developer"])).await;
}

#[tokio::test]
async fn source_control_suite() {
    let server = MockServer::start().await;
    let mut ahead = fixture("compare_commits.json");
    ahead["status"] = "ahead".into();
    api("GET", &repo("compare/base1...head1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ahead))
        .mount(&server)
        .await;
    let mut identical = fixture("compare_commits.json");
    identical["status"] = "identical".into();
    identical["files"] = serde_json::json!([]);
    identical["commits"] = serde_json::json!([]);
    api("GET", &repo("compare/head1...head1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(identical))
        .mount(&server)
        .await;
    api("GET", &repo("compare/base1...ffffffffffffffffffffffffffffffffffffffff"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    let history = History { base: "base1", head: "head1", files: &["file1.txt"], authors: &["octocat"] };
    testkit::source_control_suite(&github(&server), history).await;
}
