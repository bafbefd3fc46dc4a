//! Security of the GitHub backend (issue 6, item 5): tokens, the App's
//! private key and installation tokens, and webhook secrets never show in
//! `Debug`, `Display`, errors or `tracing` output; webhooks with a missing,
//! wrong or replayed signature are refused before their body is read.

use std::collections::BTreeMap;

use atlas_promote_core::testkit::CapturedLogs;
use atlas_promote_core::{
    ApprovalSource, Candidate, CiProvider, Directory, Error, IdempotencyKey, RunKind, RunRequest, SourceControl,
};
use atlas_promote_fakes::errors::shown;
use atlas_promote_github::{Delivery, GitHubBuilder, WebhookReceiver};
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const SECRET: &str = "whsec-github-webhook-secret-91c2";
const REVIEWER_TOKEN: &str = "ghp_ReviewerTokenNeverShown4242";
const INSTALLATION_TOKEN: &str = "ghs_InstallationTokenNeverShown77";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub(super) fn deploy_request() -> RunRequest {
    RunRequest {
        key: IdempotencyKey::new("9fceb02", "prod", RunKind::Deploy, 1),
        kind: RunKind::Deploy,
        stage: "prod".into(),
        candidate: Candidate::trunk("9fceb02", ["alice"]),
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".into(), "prod".into())]),
    }
}

/// A GitHub that refuses the credentials on some reads (401) and fails
/// with 500 on everything else.
async fn hostile_github() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(repo("commits/abc/statuses")))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"message": "Bad credentials"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/99/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "token": INSTALLATION_TOKEN,
            "expires_at": (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339(),
        })))
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream failure"))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "current_thread")]
async fn no_token_key_or_secret_shows_in_output_errors_or_logs() {
    let server = hostile_github().await;
    let (logs, _guard) = CapturedLogs::start();
    let key_pem = raw("test_app_key.pem");
    let key_body: String = key_pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");

    let token_builder = builder(&server)
        .with_reviewer_token(REVIEWER_TOKEN)
        .with_org("octo-org")
        .with_team_role("release", "product-owner");
    let app_builder = GitHubBuilder::new()
        .with_app(1, key_pem.clone(), 99)
        .with_org("octo-org")
        .with_team_role("release", "product-owner")
        .with_repository(REPO)
        .with_base_url(server.uri())
        .with_retry(fast_retry());
    let mut texts = vec![format!("{token_builder:?}"), format!("{app_builder:?}")];
    let mut errors = Vec::new();
    for gh in [token_builder.build().unwrap(), app_builder.build().unwrap()] {
        texts.push(format!("{gh:?}"));
        texts.push(format!("{:?}", gh.webhooks(SECRET)));
        // When it is read (401, 500 retried) and written to (500, never retried)
        errors.push(gh.commit_statuses("abc").await.unwrap_err());
        errors.push(gh.changed_files("a", "b").await.unwrap_err());
        errors.push(gh.trigger(&deploy_request()).await.unwrap_err());
        errors.push(gh.approvals("prod", "9fceb02").await.unwrap_err());
        errors.push(gh.roles("dan").await.unwrap_err());
    }
    let receiver = WebhookReceiver::new(SECRET);
    for signature in [None, Some("sha256=00"), Some(sign("not-the-secret", b"{}").as_str())] {
        errors.push(receiver.receive("workflow_run", "d-1", signature, b"{}").unwrap_err());
    }
    texts.extend(errors.iter().map(|e| shown(e)));
    texts.push(format!("{receiver:?}"));
    texts.push(logs.text());

    // Then no secret shows anywhere, though the errors and logs say plenty
    let all = texts.join("\n");
    assert!(all.contains("Bad credentials"), "the 401 is reported: {all}");
    assert!(logs.text().contains("github.request"), "the calls were traced: {}", logs.text());
    for secret in [TOKEN, REVIEWER_TOKEN, INSTALLATION_TOKEN, SECRET, "PRIVATE KEY", &key_body[..40]] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    // Nor does the JWT signed with the App's key (three base64url parts).
    let jwt = regex_like_jwt(&all);
    assert!(jwt.is_none(), "a JWT leaked: {jwt:?}");
}

/// A word shaped like a JWT (`eyJ….….…`), if the text has one.
fn regex_like_jwt(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .find(|w| w.starts_with("eyJ") && w.split('.').count() == 3)
}

#[test]
fn a_delivery_without_a_valid_signature_is_refused_before_its_body_is_read() {
    let receiver = WebhookReceiver::new(SECRET);
    // Not JSON: reading it would be Error::Invalid, so Refused proves it was not read.
    let body = b"{ this is not json";
    let plus = {
        // A signature byte below 0x10 spelled "+x" instead of "0x": not hex.
        let body = (0..).map(|n| format!("{n}")).find(|b| sign(SECRET, b.as_bytes()).as_bytes()[7] == b'0').unwrap();
        (format!("sha256=+{}", &sign(SECRET, body.as_bytes())[8..]), body)
    };
    let cases: [(Option<&str>, &[u8], &str); 8] = [
        (None, body, "no header"),
        (Some(""), body, "an empty header"),
        (Some("sha1=0123abcd"), body, "the SHA-1 scheme"),
        (Some("v1=0123abcd"), body, "CircleCI's scheme"),
        (Some(&sign("not-the-secret", body)), body, "another secret's signature"),
        (Some(&sign(SECRET, b"{ this is not json!")), body, "another body's signature"),
        (Some("sha256="), body, "an empty signature"),
        (Some(&plus.0), plus.1.as_bytes(), "a sign among the hex digits"),
    ];
    for (signature, body, what) in cases {
        let err = receiver.receive("workflow_run", "d-1", signature, body).unwrap_err();
        assert!(matches!(err, Error::Refused { .. }), "{what}: expected a refusal, got {err:?}");
    }
    let err = receiver.receive("workflow_run", "d-1", Some(&sign(SECRET, body)), body).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "signed, the same body is read: {err:?}");
}

#[test]
fn a_replayed_delivery_is_dropped_before_its_body_is_read() {
    let receiver = WebhookReceiver::new(SECRET);
    let body = raw("webhook_workflow_run_completed.json").into_bytes();
    let signature = sign(SECRET, &body);
    // Given a delivery that was handled
    assert!(
        matches!(receiver.receive("workflow_run", "d-7", Some(&signature), &body), Ok(Delivery::Notices(n)) if !n.is_empty())
    );
    // When it is replayed, it is dropped
    assert_eq!(receiver.receive("workflow_run", "d-7", Some(&signature), &body).unwrap(), Delivery::Duplicate);
    // Even when the replay's (signed) body is unreadable: the id is checked before the body is read
    let garbage = b"{ not json";
    let replay = receiver.receive("workflow_run", "d-7", Some(&sign(SECRET, garbage)), garbage);
    assert_eq!(replay.unwrap(), Delivery::Duplicate);
    // And a replay of the id with another body under the old signature is refused
    let mut changed = body.clone();
    changed.extend_from_slice(b"\n");
    let err = receiver.receive("workflow_run", "d-7", Some(&signature), &changed).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
}

/// A server (or proxy) that echoes the request's headers, and the bearer
/// token alone, into its answers: GitHub's published 422 error with the echo
/// as its message and in `errors[]`, or, for `ok`, a 200 whose body is the
/// echo as a JSON string (no payload this crate reads; serde quotes it).
struct EchoHeaders {
    ok: bool,
}

impl wiremock::Respond for EchoHeaders {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let headers: String = request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}\n", value.to_str().unwrap_or_default()))
            .collect();
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = auth.strip_prefix("Bearer ").unwrap_or_default();
        let echo = format!("Headers received:\n{headers}Token {token} may not do this.");
        if self.ok {
            return ResponseTemplate::new(200).set_body_json(echo);
        }
        let mut body = fixture("error_422_validation_failed.json");
        body["message"] = echo.clone().into();
        body["errors"][0]["message"] = echo.into();
        ResponseTemplate::new(422).set_body_json(body)
    }
}

#[tokio::test]
async fn secrets_never_come_back_through_an_error() {
    // Given a GitHub whose reads of a comparison answer 200 with an echo of
    // the request's headers, and whose every other call answers 422 with it
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app/installations/99/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "token": INSTALLATION_TOKEN,
            "expires_at": (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339(),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("/compare/"))
        .respond_with(EchoHeaders { ok: true })
        .mount(&server)
        .await;
    Mock::given(any()).respond_with(EchoHeaders { ok: false }).mount(&server).await;
    let app = GitHubBuilder::new()
        .with_app(1, raw("test_app_key.pem"), 99)
        .with_repository(REPO)
        .with_base_url(server.uri())
        .with_retry(fast_retry());

    // When it is read and written to, with a token and as an App
    for (gh, token) in [(github(&server), TOKEN), (app.build().unwrap(), INSTALLATION_TOKEN)] {
        let errors = [
            gh.commit_statuses("abc").await.unwrap_err(),
            gh.changed_files("a", "b").await.unwrap_err(),
            gh.trigger(&deploy_request()).await.unwrap_err(),
        ];
        // Then every error says what the server answered, with the token redacted
        for text in errors.iter().map(|e| shown(e)) {
            assert!(text.contains("authorization: [redacted]"), "{text}");
            assert!(text.contains("Token [redacted] may not"), "{text}");
            assert!(!text.contains(token), "the token came back:\n{text}");
        }
    }

    // And a signed delivery that quotes the webhook secret is refused without it
    let receiver = WebhookReceiver::new(SECRET);
    let mut quoting = fixture("webhook_workflow_run_completed.json");
    quoting["workflow_run"] = format!("secret {SECRET}, Authorization: Bearer {TOKEN}").into();
    let body = serde_json::to_vec(&quoting).unwrap();
    let err = receiver.receive("workflow_run", "d-9", Some(&sign(SECRET, &body)), &body).unwrap_err();
    let text = shown(&err);
    assert!(text.contains("secret [redacted], Authorization: [redacted]"), "{text}");
    assert!(!text.contains(SECRET) && !text.contains(TOKEN), "a secret came back:\n{text}");
}
