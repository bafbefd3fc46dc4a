//! Security of the CircleCI backend (issue 6, item 5): the token and the
//! webhook secret never show in `Debug`, `Display`, errors or `tracing`
//! output, and webhooks with a missing, wrong or replayed signature are
//! refused before their body is read.

mod common;

use atlas_promote_circleci::webhook::WebhookError;
use atlas_promote_core::testkit::CapturedLogs;
use atlas_promote_core::{ApprovalSource, CheckQuery, CheckSource, CiProvider, RunId};
use atlas_promote_fakes::errors::shown;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "whsec-circleci-signing-secret-3b9d";
const WORKFLOW_COMPLETED: &str = "webhook_workflow_completed.github-oauth_bitbucket-cloud.circleci-docs.json";
const JOB_COMPLETED: &str = "webhook_job_completed.github-oauth_bitbucket-cloud.circleci-docs.json";

/// `v1=<hex HMAC-SHA256>` of `body` under `secret`.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

#[tokio::test(flavor = "current_thread")]
async fn the_token_and_the_secret_never_show_in_output_errors_or_logs() {
    // Given a CircleCI that refuses the token on reads, and fails with 500 on everything else
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/pipeline/"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "message": "Invalid token provided." })))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream failure"))
        .mount(&server)
        .await;
    let (logs, _guard) = CapturedLogs::start();
    let builder = builder(&server);
    let mut texts = vec![format!("{builder:?}")];
    let circleci = builder.build().unwrap();
    let receiver = circleci.webhook_receiver(SECRET);
    texts.push(format!("{circleci:?} {receiver:?}"));

    // When it is read (401, 500 retried), written to (500, never retried) and sent webhooks
    let mut errors = vec![
        circleci.status(&RunId("5034460f-c7c4-4c43-9457-de07e2029e7b".into())).await.unwrap_err(),
        circleci.trigger(&deploy_request("9fceb02", "prod")).await.unwrap_err(),
        circleci.approvals("prod", "9fceb02").await.unwrap_err(),
        circleci.checks(&CheckQuery::new("staging", "9fceb02", vec!["integration".into()])).await.unwrap_err(),
    ];
    let job = with(&fixture(JOB_COMPLETED), json!({ "job": { "name": "approve-prod" } }));
    let body = serde_json::to_vec(&job).unwrap();
    let webhook_errors = [
        receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap_err(),
        receiver.receive(Some(&sign("not-the-secret", &body)), &body).await.unwrap_err(),
        receiver.receive(None, &body).await.unwrap_err(),
    ];
    assert!(matches!(webhook_errors[0], WebhookError::Backend(_)), "reading the job failed: {:?}", webhook_errors[0]);
    errors.retain(|e| {
        texts.push(shown(e));
        true
    });
    for e in &webhook_errors {
        texts.push(shown(e));
    }
    texts.push(logs.text());

    // Then neither secret shows anywhere, though the logs and errors say plenty
    let all = texts.join("\n");
    assert!(all.contains("Invalid token provided."), "the 401 is reported: {all}");
    assert!(logs.text().contains("circleci"), "the calls were traced: {}", logs.text());
    assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
    assert!(!all.contains(SECRET), "the webhook secret leaked:\n{all}");
}

#[tokio::test]
async fn a_delivery_without_a_valid_signature_is_refused_before_its_body_is_read() {
    let server = MockServer::start().await;
    let receiver = backend(&server).webhook_receiver(SECRET);
    // A body that is not JSON: reading it would fail with Malformed, so a
    // signature error proves the body was not read.
    let body = b"{ this is not json";
    let good = sign(SECRET, body);
    let cases: [(Option<&str>, &str); 8] = [
        (None, "no header"),
        (Some(""), "an empty header"),
        (Some("v2=0123abcd"), "no v1 signature"),
        (Some("sha256=0123abcd"), "GitHub's scheme"),
        (Some(&sign("not-the-secret", body)), "another secret's signature"),
        (Some(&sign(SECRET, b"{ this is not json!")), "another body's signature"),
        (Some("v1=zz"), "not hex"),
        (Some("v1="), "an empty v1"),
    ];
    for (header, what) in cases {
        let err = receiver.receive(header, body).await.unwrap_err();
        assert!(
            matches!(err, WebhookError::MissingSignature | WebhookError::InvalidSignature),
            "{what}: expected a signature error, got {err:?}"
        );
    }
    // With the right signature the same body is read, and refused as malformed.
    let err = receiver.receive(Some(&good), body).await.unwrap_err();
    assert!(matches!(err, WebhookError::Malformed { .. }), "{err:?}");
}

#[tokio::test]
async fn a_signature_spelled_with_non_hex_digits_is_refused() {
    // `u8::from_str_radix` takes a sign: "+a" would decode as 0x0a. Only
    // the two hex digits of each byte may verify.
    let server = MockServer::start().await;
    let receiver = backend(&server).webhook_receiver(SECRET);
    let body = (0..)
        .map(|n| format!("{{\"n\":{n}}}").into_bytes())
        .find(|body| sign(SECRET, body).as_bytes()[3] == b'0')
        .unwrap();
    let signature = sign(SECRET, &body);
    let plus = format!("v1=+{}", &signature[4..]);
    let err = receiver.receive(Some(&plus), &body).await.unwrap_err();
    assert!(matches!(err, WebhookError::InvalidSignature), "{err:?}");
}

#[tokio::test]
async fn a_replayed_delivery_is_acted_on_once() {
    let server = MockServer::start().await;
    let circleci =
        builder(&server).with_checks(["integration"]).with_check_workflow("integration", "build-test-deploy");
    let receiver = circleci.build().unwrap().webhook_receiver(SECRET);
    let mut payload = fixture(WORKFLOW_COMPLETED);
    payload["pipeline"]["vcs"]["branch"] = json!("main");
    let body = serde_json::to_vec(&payload).unwrap();
    let signature = sign(SECRET, &body);

    // Given a delivery that was handled
    let first = receiver.receive(Some(&signature), &body).await.unwrap();
    assert!(!first.duplicate && !first.notices.is_empty(), "{first:?}");

    // When it is replayed as it was, it is a duplicate and does nothing
    for _ in 0..3 {
        let again = receiver.receive(Some(&signature), &body).await.unwrap();
        assert!(again.duplicate && again.notices.is_empty(), "{again:?}");
    }

    // And a replay with a changed body under the old signature is refused unread
    let mut changed = payload.clone();
    changed["workflow"]["status"] = json!("failed");
    let changed = serde_json::to_vec(&changed).unwrap();
    let err = receiver.receive(Some(&signature), &changed).await.unwrap_err();
    assert!(matches!(err, WebhookError::InvalidSignature), "{err:?}");
}

/// A server (or proxy) that echoes the request's headers, and the token
/// alone, into its answer: an error for `status`, else a 200 that is no
/// payload this crate reads.
struct EchoHeaders(u16);

impl wiremock::Respond for EchoHeaders {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let headers: String = request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}\n", value.to_str().unwrap_or_default()))
            .collect();
        let token = request.headers.get("circle-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let message = format!("Bad request. Headers received:\n{headers}Token {token} is not valid here.");
        // The documented error shape, `{"message": …}`; the 200 puts the echo
        // where a pipeline's id belongs (serde quotes what it could not read).
        let body = if self.0 == 200 {
            json!({ "id": { "echo": message }, "message": message })
        } else {
            json!({ "message": message })
        };
        ResponseTemplate::new(self.0).set_body_json(body)
    }
}

#[tokio::test]
async fn secrets_never_come_back_through_an_error() {
    // Given a CircleCI whose every read answers 400 echoing the request's
    // headers, and whose pipeline trigger answers 200 with the echo
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(EchoHeaders(200)).mount(&server).await;
    Mock::given(method("GET")).respond_with(EchoHeaders(400)).mount(&server).await;
    let circleci = backend(&server);
    let receiver = circleci.webhook_receiver(SECRET);

    // When it is read, triggered, and sent a signed delivery that quotes the secret
    let errors = [
        circleci.status(&RunId("5034460f-c7c4-4c43-9457-de07e2029e7b".into())).await.unwrap_err(),
        circleci.approvals("prod", "9fceb02").await.unwrap_err(),
        circleci.trigger(&deploy_request("9fceb02", "prod")).await.unwrap_err(),
    ];
    let quoting =
        with(&fixture(WORKFLOW_COMPLETED), json!({ "workflow": format!("secret {SECRET}, Authorization: {TOKEN}") }));
    let body = serde_json::to_vec(&quoting).unwrap();
    let malformed = receiver.receive(Some(&sign(SECRET, &body)), &body).await.unwrap_err();
    assert!(matches!(malformed, WebhookError::Malformed { .. }), "{malformed:?}");

    // Then every error says what the server answered, with the secrets redacted
    for text in errors.iter().map(|e| shown(e)) {
        assert!(text.contains("Headers received") && text.contains("circle-token: [redacted]"), "{text}");
        assert!(text.contains("Token [redacted] is not valid"), "{text}");
        assert!(!text.contains(TOKEN), "the token came back:\n{text}");
    }
    let text = shown(&malformed);
    assert!(text.contains("secret [redacted], Authorization: [redacted]"), "{text}");
    assert!(!text.contains(SECRET) && !text.contains(TOKEN), "a secret came back:\n{text}");
}
