//! Webhooks: signatures from the published test vectors, and the published
//! `workflow-completed` / `job-completed` samples turned into notices.

mod common;

use atlas_promote_circleci::webhook::{WebhookError, verify_signature};
use atlas_promote_core::{ApprovalDecision, CheckStatus, Notice, RunStatus};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "webhook-signing-secret";
const WORKFLOW_COMPLETED: &str = "webhook_workflow_completed.github-oauth_bitbucket-cloud.circleci-docs.json";
const JOB_COMPLETED: &str = "webhook_job_completed.github-oauth_bitbucket-cloud.circleci-docs.json";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

#[test]
fn published_signature_vectors_verify() {
    let vectors = fixture("webhook_signature_test_vectors.transcribed.circleci-docs.json");
    for v in vectors["vectors"].as_array().unwrap() {
        let (body, secret, v1) =
            (v["body"].as_str().unwrap(), v["secret"].as_str().unwrap(), v["v1"].as_str().unwrap());
        let header = format!("v1={v1}");
        assert!(verify_signature(secret.as_bytes(), Some(&header), body.as_bytes()).is_ok(), "{body}");
        // Several versions in one header: only v1 is checked.
        let several = format!("v2=abcdef,v1={v1},v3=0123");
        assert!(verify_signature(secret.as_bytes(), Some(&several), body.as_bytes()).is_ok());
    }
}

#[test]
fn a_wrong_signature_is_rejected() {
    let vectors = fixture("webhook_signature_test_vectors.transcribed.circleci-docs.json");
    let invalid = &vectors["invalid_example"];
    let (body, secret) = (invalid["body"].as_str().unwrap(), invalid["secret"].as_str().unwrap());
    let err = verify_signature(secret.as_bytes(), invalid["header"].as_str(), body.as_bytes()).unwrap_err();
    assert!(matches!(err, WebhookError::InvalidSignature), "{err:?}");
    // The right signature under another secret, and for another body.
    let v = &vectors["vectors"][0];
    let header = format!("v1={}", v["v1"].as_str().unwrap());
    assert!(matches!(
        verify_signature(b"not-the-secret", Some(&header), b"hello world"),
        Err(WebhookError::InvalidSignature)
    ));
    assert!(matches!(verify_signature(b"secret", Some(&header), b"hello world!"), Err(WebhookError::InvalidSignature)));
}

#[test]
fn a_missing_signature_is_rejected() {
    for header in [None, Some(""), Some("v2=abcdef")] {
        let err = verify_signature(b"secret", header, b"hello world").unwrap_err();
        assert!(matches!(err, WebhookError::MissingSignature), "{header:?}: {err:?}");
    }
}

#[tokio::test]
async fn the_signature_is_checked_before_the_body_is_parsed() {
    let server = MockServer::start().await;
    let receiver = backend(&server).webhook_receiver(SECRET);

    let unsigned = receiver.receive(None, b"not json at all").await.unwrap_err();
    let wrong = receiver.receive(Some(&sign("other", b"not json at all")), b"not json at all").await.unwrap_err();
    let signed_garbage =
        receiver.receive(Some(&sign(SECRET, b"not json at all")), b"not json at all").await.unwrap_err();

    assert!(matches!(unsigned, WebhookError::MissingSignature), "{unsigned:?}");
    assert!(matches!(wrong, WebhookError::InvalidSignature), "{wrong:?}");
    assert!(matches!(signed_garbage, WebhookError::Malformed { .. }), "{signed_garbage:?}");
}

#[tokio::test]
async fn workflow_completed_of_a_deploy_is_a_run_change_and_a_redelivery_is_dropped() {
    let server = MockServer::start().await;
    let receiver = backend(&server).webhook_receiver(SECRET);
    let body = fixture_bytes(WORKFLOW_COMPLETED);

    let first = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap();
    let again = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap();

    assert_eq!(first.id, "3888f21b-eaa7-38e3-8f3d-75a63bba8895");
    assert!(!first.duplicate);
    assert_eq!(
        first.notices,
        [Notice::RunChanged {
            run: atlas_promote_core::RunId("1285fe1d-d3a6-44fc-8886-8979558254c4".into()),
            key: None,
            status: RunStatus::Succeeded,
            at: "2021-09-01T22:49:34.317Z".parse().unwrap(),
        }]
    );
    assert!(again.duplicate);
    assert!(again.notices.is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 0, "no API call for a workflow event");
}

#[tokio::test]
async fn workflow_completed_of_a_check_workflow_on_trunk_is_a_check_result() {
    let server = MockServer::start().await;
    let circleci = builder(&server).with_check_workflow("integration", "build-test-deploy").build().unwrap();
    let receiver = circleci.webhook_receiver(SECRET);
    let body = fixture_bytes(WORKFLOW_COMPLETED);

    let delivery = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap();

    let [Notice::CheckReported(result)] = delivery.notices.as_slice() else { panic!("{:?}", delivery.notices) };
    assert_eq!(result.name, "integration");
    assert_eq!(result.sha, "1dc6aa69429bff4806ad6afe58d3d8f57e25973e");
    assert_eq!(result.status, CheckStatus::Passed);
    assert_eq!(result.started_at, "2021-09-01T22:49:03.616Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert_eq!(result.finished_at, Some("2021-09-01T22:49:34.170Z".parse().unwrap()));
}

#[tokio::test]
async fn job_completed_of_a_build_job_says_nothing() {
    let server = MockServer::start().await;
    let receiver = backend(&server).webhook_receiver(SECRET);
    let body = fixture_bytes(JOB_COMPLETED);

    let delivery = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap();

    assert!(delivery.notices.is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn job_completed_of_an_approval_job_is_an_approval_by_the_approvers_login() {
    let server = MockServer::start().await;
    let mut event: Value = fixture(JOB_COMPLETED);
    event["job"]["name"] = json!("approve-prod--product-owner");
    let body = serde_json::to_vec(&event).unwrap();
    let job_id = event["job"]["id"].as_str().unwrap();
    let approval = with(
        &fixture("approval_job.kesin11-capture.json"),
        json!({ "id": job_id, "approval_request_id": job_id, "name": "approve-prod--product-owner" }),
    );
    let approver = approval["approved_by"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path("/workflow/fda08377-fe7e-46b1-8992-3a7aaecac9c3/job"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(json!([approval]), None)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/user/{approver}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "id": approver, "login": "pat", "name": "Pat" })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let receiver = backend(&server).webhook_receiver(SECRET);

    let delivery = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap();

    let [Notice::ApprovalReported(record)] = delivery.notices.as_slice() else { panic!("{:?}", delivery.notices) };
    assert_eq!(record.approver, "pat");
    assert_eq!(record.stage, "prod");
    assert_eq!(record.sha, "1dc6aa69429bff4806ad6afe58d3d8f57e25973e");
    assert_eq!(record.decision, ApprovalDecision::Approve);
}

#[tokio::test]
async fn a_delivery_that_failed_is_handled_again_when_redelivered() {
    let server = MockServer::start().await;
    let mut event: Value = fixture(JOB_COMPLETED);
    event["job"]["name"] = json!("approve-prod");
    let body = serde_json::to_vec(&event).unwrap();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "message": "Invalid token provided." })))
        .expect(2)
        .mount(&server)
        .await;
    let receiver = backend(&server).webhook_receiver(SECRET);

    let first = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap_err();
    let second = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap_err();

    assert!(matches!(first, WebhookError::Backend(_)), "{first:?}");
    assert!(matches!(second, WebhookError::Backend(_)), "not dropped as a duplicate: {second:?}");
    assert!(!format!("{first} {first:?} {receiver:?}").contains(TOKEN));
    assert!(!format!("{receiver:?}").contains(SECRET));
}
