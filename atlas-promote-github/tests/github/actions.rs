//! CiProvider for GitHub Actions: dispatch (with and without the run id),
//! find by run-name, status mapping, cancel, jobs.

use std::collections::BTreeMap;

use atlas_promote_core::{Candidate, CiProvider, Error, IdempotencyKey, RunId, RunKind, RunRequest, RunStatus};
use wiremock::matchers::{body_partial_json, query_param};
use wiremock::{MockServer, ResponseTemplate};

use super::*;

const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";

fn request(kind: RunKind, attempt: u32) -> RunRequest {
    RunRequest {
        key: IdempotencyKey::new(SHA, "staging", kind, attempt),
        kind,
        stage: "staging".into(),
        candidate: Candidate::trunk(SHA, ["alice"]),
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".to_string(), "staging".to_string())]),
    }
}

/// The published workflow run, renamed the way the sample workflow's `run-name` does.
fn run_with_key(key: &IdempotencyKey, status: &str, conclusion: Option<&str>) -> serde_json::Value {
    let mut run = fixture("get_workflow_run.json");
    run["display_title"] = format!("deploy staging {SHA} [{key}]").into();
    run["status"] = status.into();
    run["conclusion"] = conclusion.map_or(serde_json::Value::Null, Into::into);
    run["event"] = "workflow_dispatch".into();
    run
}

fn runs_page(runs: Vec<serde_json::Value>) -> serde_json::Value {
    let mut page = fixture("list_workflow_runs.json");
    page["total_count"] = runs.len().into();
    page["workflow_runs"] = runs.into();
    page
}

#[tokio::test]
async fn dispatch_with_return_run_details_gets_the_run_id_in_one_request() {
    let server = MockServer::start().await;
    let req = request(RunKind::Deploy, 1);
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .and(body_partial_json(serde_json::json!({
            "ref": "main",
            "return_run_details": true,
            "inputs": {"environment": "staging", "key": req.key.as_str(), "sha": SHA, "flush": "false"},
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("create_workflow_dispatch.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let run = gh.trigger(&req).await.unwrap();
    assert_eq!(run.id, RunId("1".into()));
    assert_eq!(run.key, req.key);
    assert_eq!(run.status, RunStatus::Pending);
    assert_eq!(run.url.as_deref(), Some("https://github.com/octo-org/octo-repo/actions/runs/1"));
    assert_eq!(gh.stats().sent, 1);
}

#[tokio::test]
async fn a_flush_run_says_so_and_branch_builds_dispatch_on_their_branch() {
    let server = MockServer::start().await;
    let mut req = request(RunKind::Flush, 1);
    req.workflow = "flush".into();
    req.candidate = Candidate::branch(SHA, "feature/x", ["alice"]);
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .and(body_partial_json(serde_json::json!({"ref": "feature/x", "inputs": {"flush": "true"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("create_workflow_dispatch.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = builder(&server).with_workflow("flush", "deploy.yml").build().unwrap();
    gh.trigger(&req).await.unwrap();
}

#[tokio::test]
async fn more_than_25_inputs_or_a_reserved_name_is_refused_before_any_request() {
    let server = MockServer::start().await;
    let gh = github(&server);
    let mut req = request(RunKind::Deploy, 1);
    for i in 0..23 {
        req.parameters.insert(format!("p{i}"), "v".into());
    }
    let err = gh.trigger(&req).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { message, .. } if message.contains("at most 25")), "{err:?}");
    let mut req = request(RunKind::Deploy, 1);
    req.parameters.insert("sha".into(), "other".into());
    assert!(matches!(gh.trigger(&req).await.unwrap_err(), Error::Invalid { .. }));
    assert_eq!(gh.stats().sent, 0);
}

#[tokio::test]
async fn without_a_run_id_the_run_is_found_by_its_run_name() {
    let server = MockServer::start().await;
    let req = request(RunKind::Deploy, 2);
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204).insert_header("date", "Tue, 05 May 2026 10:00:00 GMT"))
        .expect(1)
        .mount(&server)
        .await;
    let other = IdempotencyKey::new(SHA, "staging", RunKind::Deploy, 1);
    let mut older = run_with_key(&other, "completed", Some("failure"));
    older["id"] = 11.into();
    api("GET", &repo("actions/workflows/deploy.yml/runs"))
        .and(query_param("event", "workflow_dispatch"))
        .and(query_param("branch", "main"))
        .and(query_param("created", ">=2026-05-05T09:58:00Z"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(runs_page(vec![older, run_with_key(&req.key, "queued", None)])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let run = github(&server).trigger(&req).await.unwrap();
    assert_eq!(run.id, RunId("30433642".into()));
    assert_eq!(run.status, RunStatus::Pending);
}

#[tokio::test]
async fn a_server_that_rejects_return_run_details_gets_the_plain_dispatch() {
    let server = MockServer::start().await;
    let req = request(RunKind::Deploy, 1);
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .and(body_partial_json(serde_json::json!({"return_run_details": true})))
        .respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!({
            "message": "Invalid request.\n\n\"return_run_details\" is not a permitted key.",
            "documentation_url": "https://docs.github.com/enterprise-server@3.14/rest/actions/workflows#create-a-workflow-dispatch-event"
        })))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &repo("actions/workflows/deploy.yml/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(runs_page(vec![run_with_key(
            &req.key,
            "in_progress",
            None,
        )])))
        .mount(&server)
        .await;
    let run = github(&server).trigger(&req).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
}

#[tokio::test]
async fn a_run_that_has_not_appeared_yet_is_a_temporary_error_and_find_recovers_it() {
    let server = MockServer::start().await;
    let req = request(RunKind::Deploy, 1);
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    api("GET", &repo("actions/workflows/deploy.yml/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(runs_page(vec![])))
        .expect(3)
        .mount(&server)
        .await;
    let gh = builder(&server).with_return_run_details(false).build().unwrap();
    let err = gh.trigger(&req).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains("find() will recover it"), "{err}");

    // Later (another process, say): the run is listed among recent dispatches.
    api("GET", &repo("actions/runs"))
        .and(query_param("event", "workflow_dispatch"))
        .respond_with(ResponseTemplate::new(200).set_body_json(runs_page(vec![run_with_key(
            &req.key,
            "completed",
            Some("success"),
        )])))
        .mount(&server)
        .await;
    let run = gh.find(&req.key).await.unwrap().expect("found by run-name");
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.finished_at, Some("2020-01-22T19:33:08Z".parse().unwrap()));
    assert_eq!(gh.find(&IdempotencyKey::new(SHA, "prod", RunKind::Deploy, 1)).await.unwrap(), None);
}

#[tokio::test]
async fn a_dispatch_that_fails_with_5xx_is_not_blindly_re_posted() {
    let server = MockServer::start().await;
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let err = github(&server).trigger(&request(RunKind::Deploy, 1)).await.unwrap_err();
    assert!(err.is_temporary());
}

#[tokio::test]
async fn status_maps_status_and_conclusion_including_unknown_values() {
    let server = MockServer::start().await;
    let key = IdempotencyKey::new(SHA, "staging", RunKind::Deploy, 1);
    let cases = [
        (1u64, "queued", None, RunStatus::Pending),
        (2, "waiting", None, RunStatus::Pending),
        (3, "in_progress", None, RunStatus::Running),
        (4, "completed", Some("success"), RunStatus::Succeeded),
        (5, "completed", Some("cancelled"), RunStatus::Cancelled),
        (6, "completed", Some("timed_out"), RunStatus::Failed),
        (7, "teleporting", None, RunStatus::Unknown("teleporting".into())),
        (8, "completed", Some("vaporised"), RunStatus::Unknown("completed/vaporised".into())),
    ];
    for (id, status, conclusion, _) in &cases {
        let mut run = run_with_key(&key, status, *conclusion);
        run["id"] = (*id).into();
        api("GET", &repo(&format!("actions/runs/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(run))
            .mount(&server)
            .await;
    }
    let gh = github(&server);
    for (id, _, _, expected) in cases {
        let run = gh.status(&RunId(id.to_string())).await.unwrap();
        assert_eq!(run.status, expected, "run {id}");
        assert_eq!(run.key, key);
        assert_eq!(run.finished_at.is_some(), run.status.is_finished());
    }
}

#[tokio::test]
async fn status_of_a_run_without_a_key_in_its_run_name_says_how_to_fix_it() {
    let server = MockServer::start().await;
    api("GET", &repo("actions/runs/30433642"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_workflow_run.json")))
        .mount(&server)
        .await;
    let err = github(&server).status(&RunId("30433642".into())).await.unwrap_err();
    assert!(err.to_string().contains("run-name"), "{err}");
    let err = github(&server).status(&RunId("not-a-number".into())).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "a GitHub run id is a number: {err:?}");
}

#[tokio::test]
async fn status_of_a_run_this_value_dispatched_needs_no_key_in_the_run_name() {
    let server = MockServer::start().await;
    api("POST", &repo("actions/workflows/deploy.yml/dispatches"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"workflow_run_id": 30433642, "run_url": "u", "html_url": "h"})),
        )
        .mount(&server)
        .await;
    api("GET", &repo("actions/runs/30433642"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_workflow_run.json")))
        .mount(&server)
        .await;
    let gh = github(&server);
    let req = request(RunKind::Deploy, 1);
    gh.trigger(&req).await.unwrap();
    assert_eq!(gh.status(&RunId("30433642".into())).await.unwrap().key, req.key);
    assert_eq!(gh.find(&req.key).await.unwrap().unwrap().id, RunId("30433642".into()));
}

#[tokio::test]
async fn unknown_run_is_not_found() {
    let server = MockServer::start().await;
    api("GET", &repo("actions/runs/5"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    assert!(matches!(github(&server).status(&RunId("5".into())).await.unwrap_err(), Error::NotFound { .. }));
}

#[tokio::test]
async fn cancel_is_a_post_and_a_finished_run_409_is_not_an_error() {
    let server = MockServer::start().await;
    api("POST", &repo("actions/runs/1/cancel"))
        .respond_with(ResponseTemplate::new(202).set_body_json(serde_json::json!({})))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", &repo("actions/runs/2/cancel"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(serde_json::json!({"message": "Cannot cancel a workflow run that is completed."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    gh.cancel(&RunId("1".into())).await.unwrap();
    gh.cancel(&RunId("2".into())).await.unwrap();
}

#[tokio::test]
async fn jobs_are_listed_with_open_statuses() {
    let server = MockServer::start().await;
    let mut jobs = fixture("list_jobs_for_workflow_run.json");
    let mut requested = jobs["jobs"][0].clone();
    requested["id"] = 2.into();
    requested["status"] = "requested".into();
    requested["conclusion"] = serde_json::Value::Null;
    jobs["jobs"].as_array_mut().unwrap().push(requested);
    api("GET", &repo("actions/runs/29679449/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jobs))
        .mount(&server)
        .await;
    let jobs = github(&server).jobs(29679449).await.unwrap();
    let mapped: Vec<RunStatus> =
        jobs.iter().map(|j| atlas_promote_github::run_status(Some(&j.status), j.conclusion.as_ref())).collect();
    assert_eq!(mapped, vec![RunStatus::Succeeded, RunStatus::Pending]);
}
