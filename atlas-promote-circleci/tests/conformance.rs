//! The core testkit's conformance suites, run against this backend on a
//! local server speaking the CircleCI API.

mod common;

use atlas_promote_core::testkit::{Capabilities, approval_source_suite, check_source_suite, ci_provider_suite};
use atlas_promote_core::{CheckResult, CheckStatus};
use common::*;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "3a82a4bf50efded96b06e726fc52e8522e409d7c";

async fn not_found_fallback(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path_regex("^/pipeline/[^/]+$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Pipeline not found." })))
        .with_priority(10)
        .mount(server)
        .await;
}

async fn empty_trunk(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .and(query_param("branch", "main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([]), None)))
        .mount(server)
        .await;
}

#[tokio::test]
async fn ci_provider_conformance() {
    let server = MockServer::start().await;
    let id = fixture("trigger_pipeline.devguide.circleci-docs.json")["id"].as_str().unwrap().to_owned();
    empty_trunk(&server).await;
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("trigger_pipeline.devguide.circleci-docs.json")))
        .expect(1)
        .mount(&server)
        .await;
    let pipeline = with(
        &fixture("list_project_pipelines.devguide.circleci-docs.json")["items"][0],
        json!({ "id": id, "created_at": chrono::Utc::now().to_rfc3339() }),
    );
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(pipeline))
        .mount(&server)
        .await;
    let deploy = with(
        &first_item("pycircleci-mock.get_pipeline_workflow_response.json"),
        json!({ "id": "wf-deploy", "name": "deploy", "status": "running", "stopped_at": null }),
    );
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}/workflow")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([deploy]), None)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/workflow/wf-deploy/cancel"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "message": "Accepted." })))
        .mount(&server)
        .await;
    not_found_fallback(&server).await;

    ci_provider_suite(&backend(&server), deploy_request(SHA, "prod")).await;
}

#[tokio::test]
async fn check_source_conformance() {
    let server = MockServer::start().await;
    let published = fixture("pycircleci-mock.get_project_pipelines_response.json");
    let nightly = with(
        &published[0],
        json!({ "created_at": "2026-05-04T22:00:00Z",
                "trigger": { "type": "scheduled_pipeline", "received_at": "2026-05-04T22:00:00Z",
                             "actor": { "login": "scheduler", "avatar_url": null } },
                "vcs": { "branch": "main" } }),
    );
    let pipeline_id = nightly["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([nightly]), None)))
        .mount(&server)
        .await;
    let workflow = |id: &str, name: &str, status: &str, created: &str, stopped: Option<&str>| {
        with(
            &first_item("pycircleci-mock.get_pipeline_workflow_response.json"),
            json!({ "id": id, "name": name, "status": status, "created_at": created, "stopped_at": stopped }),
        )
    };
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{pipeline_id}/workflow")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([
                workflow("w1", "integration", "success", "2026-05-04T22:00:01Z", Some("2026-05-04T22:40:00Z")),
                workflow("w2", "system", "running", "2026-05-04T22:05:00Z", None),
                workflow("w3", "data-quality", "failed", "2026-05-04T22:10:00Z", Some("2026-05-04T22:20:00Z")),
            ]),
            None,
        )))
        .mount(&server)
        .await;
    let result = |name: &str, status, started: &str, finished: Option<&str>| CheckResult {
        name: name.into(),
        sha: SHA.into(),
        status,
        started_at: started.parse().unwrap(),
        finished_at: finished.map(|f| f.parse().unwrap()),
    };
    let seeded = [
        result("integration", CheckStatus::Passed, "2026-05-04T22:00:01Z", Some("2026-05-04T22:40:00Z")),
        result("system", CheckStatus::Running, "2026-05-04T22:05:00Z", None),
        result("data-quality", CheckStatus::Failed, "2026-05-04T22:10:00Z", Some("2026-05-04T22:20:00Z")),
    ];

    check_source_suite(&backend(&server), &seeded).await;
}

#[tokio::test]
async fn approval_source_conformance_without_submitting_for_others() {
    let server = MockServer::start().await;
    empty_trunk(&server).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with(
            &fixture("get_me.devguide-placeholders.circleci-docs.json"),
            json!({ "login": "atlas-bot" }),
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(202)).expect(0).mount(&server).await;

    // CircleCI records approvals as the token's user only: the suite's
    // records by `testkit-pat` & co. are Unsupported.
    approval_source_suite(&backend(&server), Capabilities { can_submit: false }).await;
}
