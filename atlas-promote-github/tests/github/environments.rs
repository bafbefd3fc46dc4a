//! Environment deployment reviews: the approvals history as an approval
//! source, and approving pending deployments with a user token.

use atlas_promote_core::{ApprovalDecision, ApprovalRecord, ApprovalSource, Error, IdempotencyKey, RunKind};
use wiremock::matchers::{body_json, header};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

fn dispatched_run(id: u64, stage: &str, status: &str) -> serde_json::Value {
    let key = IdempotencyKey::new(SHA, stage, RunKind::Deploy, 1);
    let mut run = fixture("get_workflow_run.json");
    run["id"] = id.into();
    run["display_title"] = format!("deploy {stage} {SHA} [{key}]").into();
    run["status"] = status.into();
    run["event"] = "workflow_dispatch".into();
    run
}

async fn serve_runs(server: &MockServer, runs: Vec<serde_json::Value>) {
    let mut page = fixture("list_workflow_runs.json");
    page["workflow_runs"] = runs.into();
    api("GET", &repo("actions/runs")).respond_with(ResponseTemplate::new(200).set_body_json(page)).mount(server).await;
}

fn record(approver: &str, decision: ApprovalDecision) -> ApprovalRecord {
    ApprovalRecord {
        approver: approver.into(),
        roles: vec![],
        stage: "staging".into(),
        sha: SHA.into(),
        decision,
        at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn the_review_history_of_the_promoting_run_gives_approval_records() {
    let server = MockServer::start().await;
    serve_runs(&server, vec![dispatched_run(7, "staging", "in_progress"), dispatched_run(8, "prod", "waiting")]).await;
    api("GET", &repo("actions/runs/7/approvals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_environment_approvals_for_run.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let records = gh.approvals("staging", SHA).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].approver, "octocat");
    assert_eq!(records[0].decision, ApprovalDecision::Approve);
    assert_eq!(records[0].sha, SHA);
    // The history has no time per review: the run's creation bounds it from below.
    assert_eq!(records[0].at, "2020-01-22T19:33:08Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert_eq!(gh.stats().sent, 2);
}

#[tokio::test]
async fn reviews_of_another_environment_and_unknown_states_do_not_count() {
    let server = MockServer::start().await;
    serve_runs(&server, vec![dispatched_run(7, "staging", "completed")]).await;
    let mut history = fixture("list_environment_approvals_for_run.json");
    let mut odd = history[0].clone();
    odd["state"] = "deferred".into();
    history.as_array_mut().unwrap().push(odd);
    api("GET", &repo("actions/runs/7/approvals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(history))
        .mount(&server)
        .await;
    // Stage staging is the GitHub environment "stage-env": the history names "staging".
    let gh = builder(&server).with_environment("staging", "stage-env").build().unwrap();
    assert!(gh.approvals("staging", SHA).await.unwrap().is_empty());
    let gh = github(&server);
    assert_eq!(gh.approvals("staging", SHA).await.unwrap().len(), 1, "the unknown state is skipped");
}

#[tokio::test]
async fn pending_deployments_are_read() {
    let server = MockServer::start().await;
    api("GET", &repo("actions/runs/7/pending_deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_pending_deployments_for_run.json")))
        .mount(&server)
        .await;
    let pending = github(&server).pending_deployments(7).await.unwrap();
    assert_eq!(pending[0].environment.name, "staging");
    assert_eq!(pending[0].environment.id, 161088068);
    assert!(pending[0].current_user_can_approve);
}

#[tokio::test]
async fn submit_approves_the_waiting_deployment_with_the_reviewer_token() {
    let server = MockServer::start().await;
    let reviewer = "Bearer ghu_ReviewerUserToken";
    let mut me = fixture("list_team_members.json")[0].clone();
    me["login"] = "octocat".into();
    Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/user"))
        .and(header("authorization", reviewer))
        .respond_with(ResponseTemplate::new(200).set_body_json(me))
        .mount(&server)
        .await;
    serve_runs(&server, vec![dispatched_run(7, "staging", "waiting")]).await;
    api("GET", &repo("actions/runs/7/pending_deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_pending_deployments_for_run.json")))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(repo("actions/runs/7/pending_deployments")))
        .and(header("authorization", reviewer))
        .and(body_json(serde_json::json!({
            "environment_ids": [161088068],
            "state": "approved",
            "comment": "atlas-promote: approve by octocat",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("review_pending_deployments_for_run.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = builder(&server).with_reviewer_token("ghu_ReviewerUserToken").build().unwrap();
    gh.submit(&record("octocat", ApprovalDecision::Approve)).await.unwrap();
}

#[tokio::test]
async fn submit_refuses_to_record_a_review_under_someone_elses_name() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_team_members.json")[0].clone()))
        .mount(&server)
        .await;
    let err = github(&server).submit(&record("pat", ApprovalDecision::Approve)).await.unwrap_err();
    assert!(matches!(&err, Error::Refused { reason } if reason.contains("octocat")), "{err:?}");
    let err = github(&server).submit(&record("octocat", ApprovalDecision::Withdraw)).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
}

#[tokio::test]
async fn submit_without_a_waiting_run_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_team_members.json")[0].clone()))
        .mount(&server)
        .await;
    serve_runs(&server, vec![dispatched_run(7, "staging", "completed")]).await;
    let err = github(&server).submit(&record("octocat", ApprovalDecision::Reject)).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}
