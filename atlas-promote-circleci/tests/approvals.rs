//! ApprovalSource and CheckSource against a local CircleCI: approval jobs in
//! a commit's trunk pipeline, nightly workflows, and what polling costs.

mod common;

use atlas_promote_core::{
    ApprovalDecision, ApprovalRecord, ApprovalSource, CheckQuery, CheckSource, CheckStatus, Error,
};
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "3a82a4bf50efded96b06e726fc52e8522e409d7c";
const PAT: &str = "c0b3a1d2-7e4f-4b8a-9d6c-5e2f1a3b4c5d";
const DAN: &str = "5e1d0c4b-2a3f-4e6d-8c7b-9a0f1e2d3c4b";

fn approval_job(name: &str, changes: Value) -> Value {
    with(&with(&fixture("approval_job.kesin11-capture.json"), json!({ "name": name })), changes)
}

fn workflow(id: &str, name: &str, status: &str) -> Value {
    with(
        &first_item("pycircleci-mock.get_pipeline_workflow_response.json"),
        json!({ "id": id, "name": name, "status": status, "created_at": "2020-05-06T15:36:10Z" }),
    )
}

struct Trunk {
    push: String,
    nightly: String,
}

/// The commit's push pipeline (approval jobs) and a nightly pipeline (checks) on trunk.
async fn mount_trunk(server: &MockServer, jobs: Value) -> Trunk {
    mount_trunk_with(server, jobs, nightly_workflows()).await
}

/// Last night's checks: integration failed then passed on a rerun, system still going, data-quality refused.
fn nightly_workflows() -> Value {
    json!([
        with(
            &workflow("n1", "integration", "failed"),
            json!({ "created_at": "2020-05-07T02:01:00Z", "stopped_at": "2020-05-07T02:30:00Z" })
        ),
        with(
            &workflow("n2", "integration", "success"),
            json!({ "created_at": "2020-05-07T06:00:00Z", "stopped_at": "2020-05-07T06:40:00Z" })
        ),
        with(&workflow("n3", "system", "failing"), json!({ "created_at": "2020-05-07T02:01:00Z", "stopped_at": null })),
        with(
            &workflow("n4", "data-quality", "unauthorized"),
            json!({ "created_at": "2020-05-07T02:01:00Z", "stopped_at": "2020-05-07T02:02:00Z" })
        ),
    ])
}

async fn mount_trunk_with(server: &MockServer, jobs: Value, nightly_workflows: Value) -> Trunk {
    let published = fixture("pycircleci-mock.get_project_pipelines_response.json");
    let push = with(&published[0], json!({ "vcs": { "branch": "main" } }));
    let nightly = with(
        &published[1],
        json!({ "id": "deadbeef-dead-beef-dead-deadbeef0003", "created_at": "2020-05-07T02:00:00Z",
                "trigger": { "type": "scheduled_pipeline", "received_at": "2020-05-07T02:00:00Z",
                             "actor": { "login": "scheduler", "avatar_url": null } },
                "vcs": { "branch": "main", "revision": SHA } }),
    );
    let trunk = Trunk { push: push["id"].as_str().unwrap().into(), nightly: nightly["id"].as_str().unwrap().into() };
    Mock::given(method("GET"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .and(query_param("branch", "main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([nightly, push]), None)))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{}/workflow", trunk.push)))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([workflow("wf-promote", "promote", "on_hold"), workflow("wf-build", "build", "success")]),
            None,
        )))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/workflow/wf-promote/job"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(jobs, None)))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/workflow/wf-build/job"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(fixture("pycircleci-mock.get_workflow_jobs_response.json"), None)),
        )
        .expect(..=1) // finished: read at most once
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{}/workflow", trunk.nightly)))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(nightly_workflows, None)))
        .mount(server)
        .await;
    for (id, login) in [(PAT, "pat"), (DAN, "dan")] {
        Mock::given(method("GET"))
            .and(path(format!("/user/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(with(
                &fixture("get_me.devguide-placeholders.circleci-docs.json"),
                json!({ "id": id, "login": login, "name": login }),
            )))
            .expect(..=1) // logins are cached
            .mount(server)
            .await;
    }
    trunk
}

fn standard_jobs() -> Value {
    json!([
        approval_job("approve-prod--product-owner", json!({})),
        approval_job(
            "approve-prod--dev-team",
            json!({ "id": "7a1b2c3d-0000-4000-8000-000000000002", "status": "on_hold",
                    "approval_request_id": "7a1b2c3d-0000-4000-8000-000000000002",
                    "approved_by": null, "stopped_at": null, "job_number": null }),
        ),
        approval_job(
            "approve-staging",
            json!({ "id": "7a1b2c3d-0000-4000-8000-000000000003", "status": "canceled", "approved_by": null,
                    "canceled_by": DAN, "stopped_at": "2023-11-20T11:00:00Z" }),
        ),
        with(
            &first_item("pycircleci-mock.get_workflow_jobs_response.json"),
            json!({ "name": "announce", "status": "success" })
        ),
    ])
}

#[tokio::test]
async fn an_approved_job_is_an_approve_record_by_the_approvers_login() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    let circleci = backend(&server);

    let records = circleci.approvals("prod", SHA).await.unwrap();

    assert_eq!(
        records,
        [ApprovalRecord {
            approver: "pat".into(),
            roles: vec![],
            stage: "prod".into(),
            sha: SHA.into(),
            decision: ApprovalDecision::Approve,
            at: "2023-11-20T10:02:41Z".parse().unwrap(),
        }]
    );
}

#[tokio::test]
async fn an_approval_job_mapped_explicitly_approves_its_stage_whatever_its_name() {
    // CircleCI's own docs name their approval job `hold`.
    let server = MockServer::start().await;
    mount_trunk(&server, json!([approval_job("hold", json!({}))])).await;
    let circleci = builder(&server).with_approval_job("hold", "prod").build().unwrap();

    let prod = circleci.approvals("prod", SHA).await.unwrap();
    let staging = circleci.approvals("staging", SHA).await.unwrap();

    assert_eq!(prod.iter().map(|r| (r.approver.as_str(), r.stage.as_str())).collect::<Vec<_>>(), [("pat", "prod")]);
    assert!(staging.is_empty(), "{staging:?}");
}

#[tokio::test]
async fn a_cancelled_approval_job_is_a_reject_record_by_whoever_cancelled_it() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    let circleci = backend(&server);

    let records = circleci.approvals("staging", &SHA[..7]).await.unwrap();

    assert_eq!(records.len(), 1);
    assert_eq!(records[0].approver, "dan");
    assert_eq!(records[0].decision, ApprovalDecision::Reject);
    assert_eq!(records[0].sha, &SHA[..7]);
}

#[tokio::test]
async fn approvals_of_a_commit_without_a_trunk_pipeline_are_empty() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    let circleci = backend(&server);

    assert!(circleci.approvals("prod", "0123456789abcdef").await.unwrap().is_empty());
}

#[tokio::test]
async fn steady_state_poll_of_a_candidate_waiting_on_approval_costs_one_request() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    let circleci = backend(&server);
    circleci.approvals("prod", SHA).await.unwrap(); // warm: pipelines, workflows, jobs, logins

    let before = circleci.request_count();
    for _ in 0..3 {
        circleci.approvals("prod", SHA).await.unwrap();
    }

    let per_poll = (circleci.request_count() - before) / 3;
    assert_eq!(per_poll, 1, "GET /workflow/{{id}}/job of the on-hold workflow only");
}

#[tokio::test]
async fn steady_state_engine_tick_of_checks_and_approvals_costs_at_most_two_requests() {
    let server = MockServer::start().await;
    let finished = json!(["integration", "system", "data-quality"].map(|name| with(
        &workflow(name, name, "success"),
        json!({ "created_at": "2020-05-07T02:01:00Z", "stopped_at": "2020-05-07T02:30:00Z" })
    )));
    mount_trunk_with(&server, standard_jobs(), finished).await;
    let circleci = backend(&server);
    let query = CheckQuery::new("staging", SHA, vec!["integration".into(), "system".into(), "data-quality".into()]);
    circleci.checks(&query).await.unwrap();
    circleci.approvals("prod", SHA).await.unwrap();

    let before = circleci.request_count();
    let checks = circleci.checks(&query).await.unwrap();
    let approvals = circleci.approvals("prod", SHA).await.unwrap();
    let tick = circleci.request_count() - before;

    assert!(tick <= 2, "one engine tick cost {tick} requests");
    assert_eq!(checks.len(), 3);
    assert_eq!(approvals.len(), 1);
}

#[tokio::test]
async fn nightly_checks_take_the_newest_workflow_per_name_and_map_statuses() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    let circleci = backend(&server);
    let query = CheckQuery::new("staging", SHA, vec![]);

    let results = circleci.checks(&query).await.unwrap();

    let summary: Vec<(&str, CheckStatus, bool)> =
        results.iter().map(|r| (r.name.as_str(), r.status, r.finished_at.is_some())).collect();
    assert_eq!(
        summary,
        [
            ("data-quality", CheckStatus::Errored, true),
            ("integration", CheckStatus::Passed, true),
            ("system", CheckStatus::Running, false),
        ]
    );
    let integration = &results[1];
    assert_eq!(integration.started_at, "2020-05-07T06:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert_eq!(integration.finished_at, Some("2020-05-07T06:40:00Z".parse().unwrap()));
    assert!(results.iter().all(|r| r.sha == SHA));
}

#[tokio::test]
async fn scheduled_only_checks_ignore_workflows_of_push_pipelines() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    let circleci = builder(&server).with_check_workflow("build-check", "build").build().unwrap();
    let only_scheduled = builder(&server).with_check_workflow("build-check", "build").with_scheduled_checks_only(true);
    let only_scheduled = only_scheduled.build().unwrap();
    let query = CheckQuery::new("staging", SHA, vec!["build-check".into()]);

    let any = circleci.checks(&query).await.unwrap();
    let scheduled = only_scheduled.checks(&query).await.unwrap();

    assert_eq!(any.len(), 1, "the push pipeline's `build` workflow reports `build-check`");
    assert!(scheduled.is_empty());
}

#[tokio::test]
async fn check_paging_follows_three_pages_and_stops_at_the_cutoff() {
    let server = MockServer::start().await;
    let published = fixture("pycircleci-mock.get_project_pipelines_response.json");
    let other =
        |id: &str, at: &str| with(&published[1], json!({ "id": id, "created_at": at, "vcs": { "branch": "main" } }));
    let ours = with(&published[0], json!({ "created_at": "2020-05-06T15:36:05Z", "vcs": { "branch": "main" } }));
    let pages = [
        (None, json!([other("a", "2020-05-09T00:00:00Z")]), Some("p2")),
        (Some("p2"), json!([other("b", "2020-05-08T00:00:00Z")]), Some("p3")),
        (Some("p3"), json!([ours, other("c", "2020-05-01T00:00:00Z")]), Some("p4")),
    ];
    for (token, items, next) in pages {
        let mock = Mock::given(method("GET")).and(path("/project/gh/foo/bar/pipeline"));
        let mock = match token {
            Some(t) => mock.and(query_param("page-token", t)),
            None => mock.and(query_param_is_missing("page-token")),
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(page(items, next))).expect(1).mount(&server).await;
    }
    Mock::given(method("GET"))
        .and(query_param("page-token", "p4"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0) // older than the cutoff: never read
        .mount(&server)
        .await;
    let push = published[0]["id"].as_str().unwrap();
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{push}/workflow")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([with(&workflow("i1", "integration", "success"), json!({ "stopped_at": "2020-05-06T16:00:00Z" }))]),
            None,
        )))
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let since = "2020-05-06T12:00:00Z".parse().unwrap();
    let query = CheckQuery::new("staging", SHA, vec!["integration".into()]).since(Some(since));

    let results = circleci.checks(&query).await.unwrap();

    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, CheckStatus::Passed);
}

#[tokio::test]
async fn approving_posts_to_the_workflow_with_the_approval_request_id() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with(
            &fixture("get_me.devguide-placeholders.circleci-docs.json"),
            json!({ "id": DAN, "login": "dan" }),
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/workflow/wf-promote/approve/7a1b2c3d-0000-4000-8000-000000000002"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(fixture("pycircleci-mock.message_accepted_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let record = ApprovalRecord {
        approver: "dan".into(),
        roles: vec![],
        stage: "prod".into(),
        sha: SHA.into(),
        decision: ApprovalDecision::Approve,
        at: chrono::Utc::now(),
    };

    circleci.submit(&record).await.unwrap();
}

#[tokio::test]
async fn approving_falls_back_to_the_job_id_and_rejecting_cancels_the_job() {
    let server = MockServer::start().await;
    let jobs = json!([approval_job(
        "approve-prod",
        json!({ "id": "7a1b2c3d-0000-4000-8000-000000000009", "status": "on_hold", "approval_request_id": null,
                "approved_by": null, "stopped_at": null }),
    )]);
    mount_trunk(&server, jobs).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": DAN, "login": "dan", "name": "Dan" })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/workflow/wf-promote/approve/7a1b2c3d-0000-4000-8000-000000000009"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "message": "Accepted." })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/jobs/7a1b2c3d-0000-4000-8000-000000000009/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "message": "Accepted." })))
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let mut record = ApprovalRecord {
        approver: "dan".into(),
        roles: vec![],
        stage: "prod".into(),
        sha: SHA.into(),
        decision: ApprovalDecision::Approve,
        at: chrono::Utc::now(),
    };

    circleci.submit(&record).await.unwrap();
    record.decision = ApprovalDecision::Reject;
    circleci.submit(&record).await.unwrap();
    record.decision = ApprovalDecision::Withdraw;
    let withdraw = circleci.submit(&record).await.unwrap_err();

    assert!(matches!(withdraw, Error::Unsupported { .. }), "{withdraw:?}");
}

#[tokio::test]
async fn submitting_for_someone_else_is_unsupported_and_does_nothing() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": DAN, "login": "dan", "name": "Dan" })))
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(202)).expect(0).mount(&server).await;
    let circleci = backend(&server);
    let record = ApprovalRecord {
        approver: "pat".into(),
        roles: vec![],
        stage: "prod".into(),
        sha: SHA.into(),
        decision: ApprovalDecision::Approve,
        at: chrono::Utc::now(),
    };

    let err = circleci.submit(&record).await.unwrap_err();

    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn a_403_on_approve_is_a_permanent_error() {
    let server = MockServer::start().await;
    mount_trunk(&server, standard_jobs()).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": DAN, "login": "dan", "name": "Dan" })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({ "message": "Permission denied." })))
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let record = ApprovalRecord {
        approver: "dan".into(),
        roles: vec![],
        stage: "prod".into(),
        sha: SHA.into(),
        decision: ApprovalDecision::Approve,
        at: chrono::Utc::now(),
    };

    let err = circleci.submit(&record).await.unwrap_err();

    assert!(!err.is_temporary());
    assert!(err.to_string().contains("Permission denied."));
}
