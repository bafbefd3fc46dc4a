//! Webhooks: signature (the published test vector), redeliveries, and each
//! event into core notices.

use atlas_promote_core::{ApprovalDecision, CheckStatus, Error, IdempotencyKey, Notice, RunId, RunKind, RunStatus};
use atlas_promote_github::{Delivery, WebhookReceiver};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::*;

const SECRET: &str = "webhook-secret";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn receiver() -> WebhookReceiver {
    WebhookReceiver::new(SECRET).with_environment("staging", "TST")
}

/// Deliver `payload` as `event` with a valid signature and a fresh delivery id.
fn deliver(receiver: &WebhookReceiver, event: &str, payload: &Value) -> atlas_promote_core::Result<Delivery> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!("delivery-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let body = serde_json::to_vec(payload).unwrap();
    receiver.receive(event, &id, Some(&sign(SECRET, &body)), &body)
}

fn notices(delivery: Delivery) -> Vec<Notice> {
    match delivery {
        Delivery::Notices(n) => n,
        other => panic!("expected notices, got {other:?}"),
    }
}

#[test]
fn the_published_signature_test_vector_verifies() {
    let vector = fixture("webhook_signature_test_vector.json");
    let receiver = WebhookReceiver::new(vector["secret"].as_str().unwrap().to_owned());
    let payload = vector["payload"].as_str().unwrap().as_bytes();
    let header = vector["x_hub_signature_256"].as_str().unwrap();
    receiver.verify(Some(header), payload).unwrap();
    assert_eq!(sign(vector["secret"].as_str().unwrap(), payload), header);
    // One flipped hex digit, a missing header, the SHA-1 header form, non-hex: all refused.
    let flipped = header.replace("757107", "757108");
    for bad in [Some(flipped.as_str()), None, Some("sha1=757107ea"), Some("sha256=zz")] {
        assert!(matches!(receiver.verify(bad, payload), Err(Error::Refused { .. })), "{bad:?}");
    }
    assert!(receiver.verify(Some(header), b"Hello, World?").is_err());
}

#[test]
fn the_signature_is_checked_before_the_body_is_parsed() {
    let r = receiver();
    let garbage = b"{not json";
    let err = r.receive("workflow_run", "d1", Some("sha256=00"), garbage).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    let err = r.receive("workflow_run", "d1", Some(&sign(SECRET, garbage)), garbage).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[test]
fn a_redelivered_id_is_dropped_and_the_set_is_bounded() {
    let r = WebhookReceiver::new(SECRET).with_dedup_capacity(2);
    let body = raw("webhook_workflow_run_completed.json").into_bytes();
    let sig = sign(SECRET, &body);
    assert!(matches!(r.receive("workflow_run", "a", Some(&sig), &body).unwrap(), Delivery::Notices(_)));
    assert_eq!(r.receive("workflow_run", "a", Some(&sig), &body).unwrap(), Delivery::Duplicate);
    r.receive("workflow_run", "b", Some(&sig), &body).unwrap();
    r.receive("workflow_run", "c", Some(&sig), &body).unwrap();
    // "a" was the oldest of three with room for two: forgotten, so accepted again.
    assert!(matches!(r.receive("workflow_run", "a", Some(&sig), &body).unwrap(), Delivery::Notices(_)));
    // A forged redelivery does not even reach the duplicate check.
    assert!(r.receive("workflow_run", "c", Some("sha256=00"), &body).is_err());
}

#[test]
fn headers_are_read_from_the_request() {
    let body = raw("webhook_workflow_run_requested.json").into_bytes();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-github-event", "workflow_run".parse().unwrap());
    headers.insert("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap());
    headers.insert("x-hub-signature-256", sign(SECRET, &body).parse().unwrap());
    let n = notices(receiver().receive_headers(&headers, &body).unwrap());
    assert!(matches!(&n[0], Notice::RunChanged { status: RunStatus::Pending, .. }));
}

#[test]
fn workflow_run_becomes_run_changed_with_the_key_from_its_run_name() {
    let r = receiver();
    let n = notices(deliver(&r, "workflow_run", &fixture("webhook_workflow_run_completed.json")).unwrap());
    assert_eq!(
        n,
        vec![Notice::RunChanged {
            run: RunId("289782451".into()),
            key: None,
            status: RunStatus::Succeeded,
            at: "2020-10-05T16:33:49Z".parse().unwrap(),
        }]
    );
    let key = IdempotencyKey::new("abc", "dev", RunKind::Deploy, 1);
    let mut payload = fixture("webhook_workflow_run_completed.json");
    payload["workflow_run"]["display_title"] = format!("deploy dev abc [{key}]").into();
    payload["workflow_run"]["conclusion"] = "brand_new_conclusion".into();
    let n = notices(deliver(&r, "workflow_run", &payload).unwrap());
    assert!(
        matches!(&n[0], Notice::RunChanged { key: Some(k), status: RunStatus::Unknown(_), .. } if *k == key),
        "{n:?}"
    );
}

#[test]
fn workflow_job_becomes_a_check_result() {
    let n = notices(deliver(&receiver(), "workflow_job", &fixture("webhook_workflow_job_waiting.json")).unwrap());
    let Notice::CheckReported(result) = &n[0] else { panic!("{n:?}") };
    assert_eq!(result.name, "test");
    assert_eq!(result.sha, "16c5286e8d9a0629956a28938386b36608707a71");
    assert_eq!(result.status, CheckStatus::Running);
    assert_eq!(result.finished_at, None);
}

#[test]
fn deployment_review_requested_marks_the_run_pending_and_approved_is_an_approval() {
    let r = receiver();
    let requested = fixture("webhook_deployment_review_requested.json");
    let n = notices(deliver(&r, "deployment_review", &requested).unwrap());
    assert!(matches!(&n[0], Notice::RunChanged { status: RunStatus::Pending, .. }), "{n:?}");

    // No published `approved` example exists: the `requested` one with the
    // fields the schema adds for approved (approver, comment, workflow_job_runs).
    let key = IdempotencyKey::new("9fceb02", "staging", RunKind::Deploy, 1);
    let mut approved = requested.clone();
    approved["action"] = "approved".into();
    approved["approver"] = requested["sender"].clone();
    approved["comment"] = "ship it".into();
    approved["workflow_job_runs"] = json!([requested["workflow_job_run"].clone()]);
    approved["workflow_run"]["display_title"] = format!("deploy staging 9fceb02 [{key}]").into();
    let n = notices(deliver(&r, "deployment_review", &approved).unwrap());
    let Notice::ApprovalReported(record) = &n[0] else { panic!("{n:?}") };
    assert_eq!(record.stage, "staging", "environment TST is stage staging");
    assert_eq!(record.sha, "9fceb02", "the candidate from the key, not the dispatch branch's head");
    assert_eq!(record.approver, requested["sender"]["login"].as_str().unwrap());
    assert_eq!(record.decision, ApprovalDecision::Approve);
    assert_eq!(record.at, "2023-07-04T09:28:15Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());

    approved["action"] = "rejected".into();
    let n = notices(deliver(&r, "deployment_review", &approved).unwrap());
    assert!(matches!(&n[0], Notice::ApprovalReported(rec) if rec.decision == ApprovalDecision::Reject));
}

#[test]
fn deployment_protection_rule_asks_for_a_gate_decision() {
    // No published example exists (schema only): built from the published
    // deployment payload plus the schema's fields.
    let deployment = fixture("webhook_deployment.json");
    let payload = json!({
        "action": "requested",
        "environment": "TST",
        "event": "workflow_dispatch",
        "deployment_callback_url": "https://api.github.com/repos/Codertocat/Hello-World/actions/runs/42/deployment_protection_rule",
        "deployment": deployment["deployment"],
        "repository": deployment["repository"],
        "sender": deployment["sender"],
    });
    let n = notices(deliver(&receiver(), "deployment_protection_rule", &payload).unwrap());
    assert_eq!(
        n,
        vec![Notice::GateRequested {
            stage: "staging".into(),
            sha: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
            reply_to: payload["deployment_callback_url"].as_str().unwrap().into(),
        }]
    );
}

#[test]
fn pull_request_reviews_become_approvals_comments_nothing() {
    let r = receiver();
    let submitted = fixture("webhook_pull_request_review_submitted.json");
    // The published example is a lower-case `commented` review: no notice.
    assert_eq!(notices(deliver(&r, "pull_request_review", &submitted).unwrap()), vec![]);

    let mut approved = submitted.clone();
    approved["review"]["state"] = "approved".into();
    let n = notices(deliver(&r, "pull_request_review", &approved).unwrap());
    let Notice::ApprovalReported(record) = &n[0] else { panic!("{n:?}") };
    assert_eq!((record.approver.as_str(), record.stage.as_str()), ("Codertocat", "trunk"));
    assert_eq!(record.sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert_eq!(record.decision, ApprovalDecision::Approve);

    let mut dismissed = submitted.clone();
    dismissed["action"] = "dismissed".into();
    dismissed["review"]["state"] = "dismissed".into();
    dismissed["pull_request"]["updated_at"] = "2019-05-16T10:00:00Z".into();
    let n = notices(deliver(&r, "pull_request_review", &dismissed).unwrap());
    assert!(matches!(&n[0], Notice::ApprovalReported(rec)
        if rec.decision == ApprovalDecision::Withdraw && rec.at == "2019-05-16T10:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()));

    let mut rejected = submitted;
    rejected["review"]["state"] = "changes_requested".into();
    let n = notices(deliver(&r, "pull_request_review", &rejected).unwrap());
    assert!(matches!(&n[0], Notice::ApprovalReported(rec) if rec.decision == ApprovalDecision::Reject));
}

#[test]
fn check_runs_and_check_suites_become_check_results() {
    let r = receiver();
    let run = fixture("list_check_runs_for_ref.json")["check_runs"][0].clone();
    let n = notices(deliver(&r, "check_run", &json!({"action": "completed", "check_run": run})).unwrap());
    assert!(matches!(&n[0], Notice::CheckReported(c) if c.name == "mighty_readme" && c.status == CheckStatus::Passed));

    // No published check_suite example is kept: the fields reference §4 lists.
    let suite = json!({"action": "completed", "check_suite": {
        "id": 5, "head_sha": "abc", "head_branch": "main", "status": "completed", "conclusion": "failure",
        "app": run["app"], "created_at": "2026-05-04T22:00:00Z", "updated_at": "2026-05-04T22:40:00Z",
    }});
    let n = notices(deliver(&r, "check_suite", &suite).unwrap());
    let Notice::CheckReported(c) = &n[0] else { panic!("{n:?}") };
    assert_eq!((c.name.as_str(), c.status), ("octoapp", CheckStatus::Failed));
    assert_eq!(c.finished_at, Some("2026-05-04T22:40:00Z".parse().unwrap()));
}

#[test]
fn deployment_status_of_a_workflow_run_is_a_run_change_others_are_ignored() {
    let r = receiver();
    let payload = fixture("webhook_deployment_status.json");
    assert!(matches!(deliver(&r, "deployment_status", &payload).unwrap(), Delivery::Ignored { .. }));
    let mut with_run = payload;
    with_run["workflow_run"] = fixture("webhook_workflow_run_completed.json")["workflow_run"].clone();
    let n = notices(deliver(&r, "deployment_status", &with_run).unwrap());
    assert_eq!(
        n,
        vec![Notice::RunChanged {
            run: RunId("289782451".into()),
            key: None,
            status: RunStatus::Succeeded,
            at: "2019-05-15T15:20:55Z".parse().unwrap(),
        }]
    );
}

#[test]
fn other_events_are_ignored_and_broken_payloads_are_errors() {
    let r = receiver();
    assert!(matches!(
        deliver(&r, "workflow_dispatch", &fixture("webhook_workflow_dispatch.json")).unwrap(),
        Delivery::Ignored { .. }
    ));
    let err = deliver(&r, "workflow_run", &json!({"action": "completed"})).unwrap_err();
    assert!(matches!(&err, Error::Invalid { message, .. } if message.contains("workflow_run")), "{err:?}");
    let err = deliver(&r, "workflow_run", &json!({"workflow_run": {"id": "nope"}})).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }));
}

#[test]
fn the_secret_is_not_in_debug() {
    assert!(!format!("{:?}", receiver()).contains(SECRET));
}
