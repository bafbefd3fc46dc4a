//! Deployments mirroring and the custom deployment protection rule.

use atlas_promote_core::{
    Candidate, Decision, Error, Evidence, IdempotencyKey, Policy, Run, RunId, RunKind, RunStatus, Verdict,
};
use atlas_promote_github::GateAnswer;
use atlas_promote_github::model::DeploymentState;
use wiremock::matchers::{body_partial_json, query_param, query_param_is_missing};
use wiremock::{MockServer, ResponseTemplate};

use super::*;

const SHA: &str = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d";

#[tokio::test]
async fn a_successful_promotion_creates_the_deployment_posts_success_and_retires_the_old_one() {
    let server = MockServer::start().await;
    api("GET", &repo("deployments"))
        .and(query_param("environment", "production"))
        .and(query_param("sha", SHA))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", &repo("deployments"))
        .and(body_partial_json(serde_json::json!({
            "ref": SHA, "environment": "production", "auto_merge": false, "required_contexts": [],
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("create_deployment.json")))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", &repo("deployments/1/statuses"))
        .and(body_partial_json(
            serde_json::json!({"state": "success", "environment": "production", "auto_inactive": false}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("create_deployment_status.json")))
        .expect(1)
        .mount(&server)
        .await;
    let mut old = fixture("get_deployment.json");
    old["id"] = 2.into();
    old["sha"] = "0ld".into();
    api("GET", &repo("deployments"))
        .and(query_param_is_missing("sha"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!([fixture("create_deployment.json"), old])),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &repo("deployments/2/statuses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_deployment_statuses.json")))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", &repo("deployments/2/statuses"))
        .and(body_partial_json(serde_json::json!({"state": "inactive"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("create_deployment_status.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = builder(&server).with_environment("prod", "production").build().unwrap();
    let deployment =
        gh.mirror_promotion("prod", SHA, DeploymentState::Success, Some("https://ci/run/1")).await.unwrap();
    assert_eq!(deployment.id, 1);
}

#[tokio::test]
async fn an_existing_deployment_of_the_commit_is_reused_for_in_progress() {
    let server = MockServer::start().await;
    api("GET", &repo("deployments"))
        .and(query_param("sha", SHA))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([fixture("get_deployment.json")])))
        .mount(&server)
        .await;
    api("POST", &repo("deployments")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    api("POST", &repo("deployments/1/statuses"))
        .and(body_partial_json(
            serde_json::json!({"state": "in_progress", "log_url": "https://github.com/o/r/actions/runs/9"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("create_deployment_status.json")))
        .expect(1)
        .mount(&server)
        .await;
    let run = Run {
        id: RunId("9".into()),
        key: IdempotencyKey::new(SHA, "staging", RunKind::Deploy, 1),
        status: RunStatus::Running,
        url: Some("https://github.com/o/r/actions/runs/9".into()),
        finished_at: None,
    };
    let gh = github(&server);
    assert!(gh.mirror_run("staging", SHA, &run).await.unwrap().is_some());
    let unknown = Run { status: RunStatus::Unknown("x".into()), ..run };
    assert!(gh.mirror_run("staging", SHA, &unknown).await.unwrap().is_none());
}

#[tokio::test]
async fn a_202_created_nothing_and_is_temporary_a_409_is_permanent() {
    let server = MockServer::start().await;
    api("POST", &repo("deployments"))
        .and(body_partial_json(serde_json::json!({"environment": "dev"})))
        .respond_with(ResponseTemplate::new(202).set_body_json(fixture("create_deployment_202_merged_branch.json")))
        .mount(&server)
        .await;
    api("POST", &repo("deployments"))
        .and(body_partial_json(serde_json::json!({"environment": "prod"})))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(serde_json::json!({"message": "Conflict merging main into topic-branch."})),
        )
        .mount(&server)
        .await;
    let gh = github(&server);
    let err = gh.create_deployment("dev", SHA, "d").await.unwrap_err();
    assert!(err.is_temporary() && err.to_string().contains("Auto-merged master"), "{err}");
    let err = gh.create_deployment("prod", SHA, "d").await.unwrap_err();
    assert!(!err.is_temporary() && err.to_string().contains("Conflict merging"), "{err}");
}

fn decision(verdict: Verdict) -> Decision {
    Decision {
        from: "staging".into(),
        to: "prod".into(),
        sha: SHA.into(),
        at: "2026-05-05T10:00:00Z".parse().unwrap(),
        verdict,
        blockers: vec![],
        warnings: vec![],
    }
}

#[tokio::test]
async fn the_protection_rule_is_answered_approved_rejected_or_with_a_comment_only() {
    let server = MockServer::start().await;
    let callback = repo("actions/runs/42/deployment_protection_rule");
    for state in ["approved", "rejected"] {
        api("POST", &callback)
            .and(body_partial_json(serde_json::json!({"environment_name": "production", "state": state})))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
    }
    api("POST", &callback)
        .and(wiremock::matchers::body_json(serde_json::json!({
            "environment_name": "production",
            "comment": "staging → prod for a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d: waiting until 2026-05-06 09:00 UTC",
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let gh = builder(&server).with_environment("prod", "production").build().unwrap();
    let reply_to = format!("{}{callback}", server.uri());
    assert_eq!(gh.answer_gate("prod", &reply_to, &decision(Verdict::Allow)).await.unwrap(), GateAnswer::Approved);
    assert_eq!(gh.answer_gate("prod", &reply_to, &decision(Verdict::Block)).await.unwrap(), GateAnswer::Rejected);
    let wait = Verdict::Wait { until: "2026-05-06T09:00:00Z".parse().unwrap() };
    assert_eq!(gh.answer_gate("prod", &reply_to, &decision(wait)).await.unwrap(), GateAnswer::Pending);
}

#[tokio::test]
async fn review_gate_evaluates_the_candidate_of_the_waiting_run_and_calls_back_with_the_explanation() {
    let server = MockServer::start().await;
    let key = IdempotencyKey::new(SHA, "staging", RunKind::Deploy, 1);
    let mut run = fixture("get_workflow_run.json");
    run["id"] = 42.into();
    run["display_title"] = format!("deploy staging {SHA} [{key}]").into();
    api("GET", &repo("actions/runs/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run))
        .mount(&server)
        .await;
    let callback = repo("actions/runs/42/deployment_protection_rule");
    api("POST", &callback)
        .and(body_partial_json(serde_json::json!({"environment_name": "staging"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let policy = Policy::atlas();
    let now = "2026-05-05T10:00:00Z".parse().unwrap();
    let decision = gh
        .review_gate(
            &policy,
            "staging",
            "acb5820ced9479c074f688cc328bf03f341a511d",
            &format!("{}{callback}", server.uri()),
            now,
            |request| async move {
                assert_eq!((request.from.as_str(), request.to.as_str()), ("dev", "staging"));
                assert_eq!(request.sha, SHA, "the candidate from the run's key, not the deployment's head");
                assert_eq!(request.run, Some(42));
                Ok(Evidence::new(Candidate::trunk(request.sha, ["alice"])))
            },
        )
        .await
        .unwrap();
    assert_eq!((decision.from.as_str(), decision.to.as_str(), decision.sha.as_str()), ("dev", "staging", SHA));
    let posted = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&posted.last().unwrap().body).unwrap();
    assert_eq!(body["comment"], decision.to_string().trim_end());
    // With no approval and no checks, dev → staging is blocked: the run is rejected.
    assert_eq!(decision.verdict, Verdict::Block, "{decision}");
    assert_eq!(body["state"], "rejected");
}

#[tokio::test]
async fn a_callback_outside_the_api_is_refused_without_sending_the_token() {
    let server = MockServer::start().await;
    let gh = github(&server);
    let err = gh
        .answer_gate(
            "prod",
            "https://evil.example/repos/o/r/actions/runs/1/deployment_protection_rule",
            &decision(Verdict::Allow),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused { .. }));
    assert_eq!(gh.stats().sent, 0);
}
