//! CiProvider against a local server speaking the CircleCI API: trigger on
//! both endpoints, status, find after a crash, cancel, and the error paths.

mod common;

use std::time::{Duration, Instant};

use atlas_promote_circleci::{CircleCiError, CircleCiErrorKind, PipelineNotCreated, RetrySettings};
use atlas_promote_core::{CiProvider, Error, IdempotencyKey, RunId, RunStatus};
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "ca67134f650e362133e51a9ffdb8e5ddc7fa53a5";

fn created_pipeline(id: &str) -> Value {
    let item = fixture("list_project_pipelines.devguide.circleci-docs.json")["items"][0].clone();
    with(&item, json!({ "id": id, "created_at": chrono::Utc::now().to_rfc3339() }))
}

fn workflow(id: &str, name: &str, status: &str, created_at: &str) -> Value {
    with(
        &first_item("pycircleci-mock.get_pipeline_workflow_response.json"),
        json!({ "id": id, "name": name, "status": status, "created_at": created_at }),
    )
}

#[tokio::test]
async fn trigger_on_the_legacy_endpoint_sends_the_request_as_pipeline_parameters() {
    let server = MockServer::start().await;
    let request = deploy_request(SHA, "prod");
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .and(header("Circle-Token", TOKEN))
        .and(header("accept", "application/json"))
        .and(body_partial_json(json!({
            "branch": "main",
            "parameters": {
                "atlas_key": request.key.as_str(), "atlas_workflow": "deploy", "atlas_stage": "prod",
                "atlas_sha": SHA, "atlas_flush": false, "atlas_environment": "prod"
            }
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("trigger_pipeline.devguide.circleci-docs.json")))
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let run = circleci.trigger(&request).await.unwrap();

    assert_eq!(run.id, RunId("e411ea74-c64a-4d60-9292-115e782802ed".into()));
    assert_eq!(run.key, request.key);
    assert_eq!(run.status, RunStatus::Pending);
    let agent = &server.received_requests().await.unwrap()[0].headers["user-agent"];
    assert!(agent.to_str().unwrap().starts_with("atlas-promote-circleci/"));
}

#[tokio::test]
async fn trigger_on_the_run_endpoint_sends_the_definition_id_and_nothing_else() {
    let server = MockServer::start().await;
    let request = deploy_request(SHA, "staging");
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline/run"))
        .and(body_partial_json(json!({
            "definition_id": "9d2f1c3e-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
            "config": { "branch": "main" }, "checkout": { "branch": "main" },
            "parameters": { "atlas_key": request.key.as_str(), "atlas_environment": "staging" }
        })))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(fixture("pycircleci-mock.trigger_pipeline_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let circleci = builder(&server).with_definition_id("9d2f1c3e-6a7b-4c8d-9e0f-1a2b3c4d5e6f").build().unwrap();

    let run = circleci.trigger(&request).await.unwrap();

    assert_eq!(run.id.0, "deadbeef-dead-beef-dead-deaddeafbeef");
    let body: Value = serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["checkout", "config", "definition_id", "parameters"], "additionalProperties: false");
}

#[tokio::test]
async fn trigger_answered_200_no_pipeline_created_is_a_distinct_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline/run"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "message": "Ignoring pipeline due to CI skip in the commit" })),
        )
        .mount(&server)
        .await;
    let circleci = builder(&server).with_definition_id("9d2f1c3e-6a7b-4c8d-9e0f-1a2b3c4d5e6f").build().unwrap();

    let err = circleci.trigger(&deploy_request(SHA, "dev")).await.unwrap_err();

    let Error::Backend { source, temporary, .. } = &err else { panic!("{err:?}") };
    assert!(!temporary);
    let not_created = source.downcast_ref::<PipelineNotCreated>().expect("source is PipelineNotCreated");
    assert_eq!(not_created.message, "Ignoring pipeline due to CI skip in the commit");
}

#[tokio::test]
async fn trigger_is_never_retried_on_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "message": "Internal server error." })))
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let err = circleci.trigger(&deploy_request(SHA, "dev")).await.unwrap_err();

    assert!(err.is_temporary(), "a 500 is worth retrying later, by the engine: {err}");
    assert_eq!(circleci.request_count(), 1);
}

#[tokio::test]
async fn status_follows_the_newest_workflow_of_the_requested_name() {
    let server = MockServer::start().await;
    let id = "e411ea74-c64a-4d60-9292-115e782802ed";
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("trigger_pipeline.devguide.circleci-docs.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(created_pipeline(id)))
        .expect(1) // once created, only the workflows are read
        .mount(&server)
        .await;
    let workflows = json!([
        workflow("w1", "deploy", "failed", "2026-05-04T08:00:00Z"),
        workflow("w2", "deploy", "running", "2026-05-04T08:30:00Z"), // the rerun
        workflow("w3", "lint", "failed", "2026-05-04T08:00:00Z"),
    ]);
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}/workflow")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(workflows, None)))
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let run = circleci.trigger(&deploy_request(SHA, "dev")).await.unwrap();

    assert_eq!(circleci.status(&run.id).await.unwrap().status, RunStatus::Running);
    assert_eq!(circleci.status(&run.id).await.unwrap().status, RunStatus::Running);
}

#[tokio::test]
async fn an_unknown_workflow_status_is_reported_as_unknown() {
    let server = MockServer::start().await;
    let id = "e411ea74-c64a-4d60-9292-115e782802ed";
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("trigger_pipeline.devguide.circleci-docs.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(created_pipeline(id)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}/workflow")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(page(
                json!([workflow("w1", "deploy", "paused-by-policy", "2026-05-04T08:00:00Z")]),
                None,
            )),
        )
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let run = circleci.trigger(&deploy_request(SHA, "dev")).await.unwrap();

    let status = circleci.status(&run.id).await.unwrap().status;

    assert_eq!(status, RunStatus::Unknown("paused-by-policy".into()));
}

#[tokio::test]
async fn a_finished_run_reports_when_it_finished_and_is_not_read_again() {
    let server = MockServer::start().await;
    let id = "03fcbba0-d847-4c8b-a553-6fdd7854b893";
    let key = IdempotencyKey::new(SHA, "dev", atlas_promote_core::RunKind::Deploy, 1);
    // After a restart: nothing cached, the key is read back from the pipeline values.
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("list_project_pipelines.devguide.circleci-docs.json")["items"][0].clone()),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}/values")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "pipeline.parameters.atlas_key": key.as_str(),
            "pipeline.parameters.atlas_workflow": "deploy",
            "pipeline.git.revision": SHA
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}/workflow")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(fixture("pycircleci-mock.get_pipeline_workflow_response.json"), None)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let run = circleci.status(&RunId(id.into())).await.unwrap();
    let again = circleci.status(&RunId(id.into())).await.unwrap();

    assert_eq!(run.key, key);
    assert_eq!(run.status, RunStatus::Succeeded, "smoke-test succeeded; no `deploy` workflow: all count");
    assert_eq!(run.finished_at, Some("2020-05-24T08:31:20Z".parse().unwrap()));
    assert_eq!(again, run);
    assert_eq!(circleci.request_count(), 3);
}

#[tokio::test]
async fn an_errored_pipeline_is_a_failed_run() {
    let server = MockServer::start().await;
    let id = "e411ea74-c64a-4d60-9292-115e782802ed";
    Mock::given(method("POST"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("trigger_pipeline.devguide.circleci-docs.json")))
        .mount(&server)
        .await;
    let errored = with(
        &created_pipeline(id),
        json!({ "state": "errored", "errors": [{ "type": "config", "message": "Unknown parameter atlas_sha" }] }),
    );
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(errored))
        .mount(&server)
        .await;
    let circleci = backend(&server);
    let run = circleci.trigger(&deploy_request(SHA, "dev")).await.unwrap();

    assert_eq!(circleci.status(&run.id).await.unwrap().status, RunStatus::Failed);
}

/// Trunk pipelines, newest first: a push pipeline and an API one (a deploy atlas started).
async fn mount_trunk_pipelines(server: &MockServer) -> (String, String) {
    let published = fixture("pycircleci-mock.get_project_pipelines_response.json");
    let push = with(&published[0], json!({ "vcs": { "branch": "main" } }));
    let deploy = with(
        &published[1],
        json!({ "trigger": { "type": "api", "received_at": "2020-05-06T15:36:05.239Z",
                             "actor": { "login": "atlas-bot", "avatar_url": null } },
                "vcs": { "branch": "main" } }),
    );
    let ids = (push["id"].as_str().unwrap().to_owned(), deploy["id"].as_str().unwrap().to_owned());
    Mock::given(method("GET"))
        .and(path("/project/gh/foo/bar/pipeline"))
        .and(query_param("branch", "main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([deploy, push]), None)))
        .mount(server)
        .await;
    ids
}

#[tokio::test]
async fn find_recovers_a_run_by_its_key_after_a_crash_from_the_compiled_config() {
    let server = MockServer::start().await;
    let (push, deploy) = mount_trunk_pipelines(&server).await;
    let key = IdempotencyKey::new(SHA, "prod", atlas_promote_core::RunKind::Deploy, 2);
    // This CircleCI does not list parameters among the values: fall back to the compiled config.
    for id in [&push, &deploy] {
        Mock::given(method("GET"))
            .and(path(format!("/pipeline/{id}/values")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "pipeline.git.revision": SHA })))
            .mount(&server)
            .await;
    }
    let compiled = format!(
        "version: 2\njobs:\n  deploy:\n    environment:\n      ATLAS_KEY: {key}\n    docker:\n    - image: cimg/base:current\n"
    );
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{deploy}/config")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "source": "…", "compiled": compiled })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{push}/config")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "source": "…", "compiled": "version: 2\n" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{deploy}/workflow")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(json!([workflow("w9", "deploy", "on_hold", "2020-05-06T15:36:06Z")]), None)),
        )
        .mount(&server)
        .await;
    let circleci = backend(&server); // a fresh process: nothing cached

    let run = circleci.find(&key).await.unwrap().expect("found by key");
    let other = IdempotencyKey::new(SHA, "prod", atlas_promote_core::RunKind::Deploy, 3);
    let missing = circleci.find(&other).await.unwrap();

    assert_eq!(run.id.0, deploy);
    assert_eq!(run.key, key);
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(missing, None);
}

#[tokio::test]
async fn find_reads_the_key_from_pipeline_values_when_listed_there() {
    let server = MockServer::start().await;
    let (push, deploy) = mount_trunk_pipelines(&server).await;
    let key = IdempotencyKey::new(SHA, "dev", atlas_promote_core::RunKind::Flush, 1);
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{deploy}/values")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "pipeline.parameters.atlas_key": key.as_str(), "pipeline.parameters.atlas_workflow": "flush"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{push}/values")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{deploy}/workflow")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(json!([workflow("w9", "flush", "success", "2020-05-06T15:36:06Z")]), None)),
        )
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let run = circleci.find(&key).await.unwrap().expect("found by key");

    assert_eq!(run.id.0, deploy);
    assert_eq!(run.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn cancel_cancels_every_workflow_still_going() {
    let server = MockServer::start().await;
    let id = "e411ea74-c64a-4d60-9292-115e782802ed";
    Mock::given(method("GET"))
        .and(path(format!("/pipeline/{id}/workflow")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([
                workflow("w1", "deploy", "running", "2026-05-04T08:00:00Z"),
                workflow("w0", "lint", "success", "2026-05-04T08:00:00Z"),
            ]),
            None,
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/workflow/w1/cancel"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "message": "Accepted." })))
        .expect(1)
        .mount(&server)
        .await;
    let circleci = backend(&server);

    circleci.cancel(&RunId(id.into())).await.unwrap();
}

#[tokio::test]
async fn status_of_an_unknown_pipeline_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/pipeline/nope"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Pipeline not found." })))
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let err = circleci.status(&RunId("nope".into())).await.unwrap_err();

    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(circleci.request_count(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_401_is_permanent_names_the_reason_and_never_shows_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "message": "Invalid token provided." })))
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let err = circleci.status(&RunId("p".into())).await.unwrap_err();

    assert!(!err.is_temporary());
    let shown = format!("{err} {err:?} {circleci:?} {:?}", builder(&server));
    assert!(shown.contains("Invalid token provided."), "{shown}");
    assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
}

#[tokio::test]
async fn a_403_is_permanent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({ "message": "Permission denied." })))
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let err = circleci.trigger(&deploy_request(SHA, "prod")).await.unwrap_err();

    assert!(!err.is_temporary());
    assert!(err.to_string().contains("Permission denied."), "{err}");
}

#[tokio::test]
async fn a_malformed_body_is_a_permanent_error_quoting_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/pipeline/p/workflow"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>Gateway login</html>"))
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let err = circleci.cancel(&RunId("p".into())).await.unwrap_err();

    assert!(!err.is_temporary());
    assert!(err.to_string().contains("<html>Gateway login"), "{err}");
}

async fn pipeline_workflows_after(server: &MockServer, first: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(path("/pipeline/p/workflow"))
        .respond_with(first)
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/pipeline/p/workflow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([]), None)))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_429_with_retry_after_seconds_is_waited_out_then_retried() {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_string("Rate limited.");
    pipeline_workflows_after(&server, limited, 1).await;
    let circleci = backend(&server);

    let started = Instant::now();
    circleci.cancel(&RunId("p".into())).await.unwrap();

    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(circleci.request_count(), 2);
}

#[tokio::test]
async fn a_429_with_retry_after_as_an_http_date_is_waited_out_then_retried() {
    let server = MockServer::start().await;
    let at = (chrono::Utc::now() + chrono::TimeDelta::seconds(2)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let limited = ResponseTemplate::new(429).insert_header("Retry-After", at.as_str()).set_body_json(json!({}));
    pipeline_workflows_after(&server, limited, 1).await;
    let circleci = backend(&server);

    let started = Instant::now();
    circleci.cancel(&RunId("p".into())).await.unwrap();

    assert!(started.elapsed() >= Duration::from_millis(250), "waited {:?}", started.elapsed());
    assert_eq!(circleci.request_count(), 2);
}

#[tokio::test]
async fn a_500_twice_then_success_is_retried() {
    let server = MockServer::start().await;
    let failing = ResponseTemplate::new(500).set_body_json(json!({ "message": "Internal server error." }));
    pipeline_workflows_after(&server, failing, 2).await;
    let circleci = backend(&server);

    circleci.cancel(&RunId("p".into())).await.unwrap();

    assert_eq!(circleci.request_count(), 3);
}

#[tokio::test]
async fn a_500_that_persists_gives_up_after_the_configured_retries_as_temporary() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "message": "Service unavailable." })))
        .expect(4)
        .mount(&server)
        .await;
    let circleci = backend(&server);

    let err = circleci.cancel(&RunId("p".into())).await.unwrap_err();

    assert!(err.is_temporary());
}

#[tokio::test]
async fn listings_follow_next_page_token_across_three_pages() {
    let server = MockServer::start().await;
    let published = fixture("pycircleci-mock.get_pipeline_workflow_response.json");
    for (token, next, id) in [(None, Some("p2"), "w1"), (Some("p2"), Some("p3"), "w2"), (Some("p3"), None, "w3")] {
        let item = with(&published[0], json!({ "id": id, "name": id, "status": "running" }));
        let mock = Mock::given(method("GET")).and(path("/pipeline/p/workflow"));
        let mock = match token {
            Some(t) => mock.and(query_param("page-token", t)),
            None => mock.and(query_param_is_missing("page-token")),
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(page(json!([item]), next)))
            .expect(1)
            .mount(&server)
            .await;
    }
    for id in ["w1", "w2", "w3"] {
        Mock::given(method("POST"))
            .and(path(format!("/workflow/{id}/cancel")))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "message": "Accepted." })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let circleci = backend(&server);

    circleci.cancel(&RunId("p".into())).await.unwrap();

    assert_eq!(circleci.request_count(), 6);
}

#[tokio::test]
async fn listings_stop_at_the_page_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/pipeline/p/workflow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([]), Some("again"))))
        .expect(2)
        .mount(&server)
        .await;
    let circleci = builder(&server).with_page_limit(2).build().unwrap();

    circleci.cancel(&RunId("p".into())).await.unwrap();
}

#[tokio::test]
async fn listings_stop_at_their_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/pipeline/p/workflow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([]), Some("again"))))
        .expect(1)
        .mount(&server)
        .await;
    let circleci = builder(&server).with_page_deadline(Duration::ZERO).build().unwrap();

    circleci.cancel(&RunId("p".into())).await.unwrap();
}

#[tokio::test]
async fn an_api_error_is_readable_by_a_program_through_the_core_errors_source() {
    // Given a CircleCI that refuses the trigger (the spec's 403 body), rate
    // limits reads with a Retry-After, and answers a workflow read with a body
    // that is no workflow list (cancelling a run reads its workflows first)
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({ "message": "Permission denied." })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/pipeline/5034460f-c7c4-4c43-9457-de07e2029e7b/workflow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "items": "none" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_json(json!({ "message": "Rate limit exceeded." })),
        )
        .mount(&server)
        .await;
    let no_retries = RetrySettings::default().with_max_retries(0);
    let circleci = builder(&server).with_retry(no_retries).build().unwrap();

    // When the calls fail, the core error's source is a CircleCiError that says what the API answered
    let refused = circleci.trigger(&deploy_request(SHA, "prod")).await.unwrap_err();
    let e = CircleCiError::of(&refused).unwrap_or_else(|| panic!("no CircleCiError in {refused:?}"));
    assert_eq!((e.kind(), e.status(), e.message()), (CircleCiErrorKind::Status, Some(403), Some("Permission denied.")));
    assert_eq!(e.body(), Some(r#"{"message":"Permission denied."}"#));
    assert!(!e.is_temporary() && !refused.is_temporary());
    assert_eq!(e.retry_after(), None);

    let limited = circleci.status(&RunId("0f8a2b6e-1d2c-4a57-9e1b-7c3d5e9f1a20".into())).await.unwrap_err();
    let e = CircleCiError::of(&limited).unwrap_or_else(|| panic!("no CircleCiError in {limited:?}"));
    assert_eq!((e.status(), e.message()), (Some(429), Some("Rate limit exceeded.")));
    assert!(e.is_temporary() && limited.is_temporary());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

    let unreadable = circleci.cancel(&RunId("5034460f-c7c4-4c43-9457-de07e2029e7b".into())).await.unwrap_err();
    let e = CircleCiError::of(&unreadable).unwrap_or_else(|| panic!("no CircleCiError in {unreadable:?}"));
    assert_eq!((e.kind(), e.status(), e.message()), (CircleCiErrorKind::Decode, None, None));
    assert!(!e.is_temporary());

    // And one that is not about an API answer has none
    assert!(CircleCiError::of(&Error::Refused { reason: "no".into() }).is_none());
}

#[tokio::test]
async fn a_call_ends_at_its_deadline_when_the_server_stalls() {
    // Given a CircleCI that takes a minute to answer, a request timeout of
    // 10 s and 3 retries (40 s without a deadline), and a deadline of 300 ms
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let circleci = builder(&server)
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(10))
        .with_retry(RetrySettings::default().with_deadline(Duration::from_millis(300)))
        .build()
        .unwrap();

    // When a run's workflows are read, the call ends at its deadline, temporary
    let err = circleci.cancel(&RunId("5034460f-c7c4-4c43-9457-de07e2029e7b".into())).await.unwrap_err();
    let e = CircleCiError::of(&err).unwrap_or_else(|| panic!("no CircleCiError in {err:?}"));
    assert_eq!(e.kind(), CircleCiErrorKind::Deadline, "{err}");
    assert!(err.is_temporary() && err.to_string().contains("deadline of 300ms"), "{err}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_longest_wait_ends_the_call_at_once_temporary() {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(429).insert_header("Retry-After", "60").set_body_string("Rate limited.");
    Mock::given(method("GET")).and(path("/pipeline/p/workflow")).respond_with(limited).mount(&server).await;
    let circleci = backend(&server); // waits of up to 3 s honoured

    let err = circleci.cancel(&RunId("p".into())).await.unwrap_err();

    assert_eq!(circleci.request_count(), 1, "not retried before the server's minute is up");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(CircleCiError::of(&err).and_then(CircleCiError::retry_after), Some(Duration::from_secs(60)));
}
