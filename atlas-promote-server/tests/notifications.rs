//! Notifications that arrive: written to the outbox by a round of the loop,
//! delivered to a real local HTTP receiver that checks their signature,
//! retried with backoff when the receiver fails, at least once each.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use atlas_promote_core::{Candidate, Clock as _, OutboxEntry};
use atlas_promote_server::notify::{SIGNATURE_HEADER, Sink, SlackSink, WebhookSink, sign, slack_text};
use axum::http::{HeaderMap, StatusCode};
use chrono::TimeDelta;
use secrecy::SecretString;

const NOTIFY_SECRET: &str = "notify-secret";

/// What the receiver saw, and how many of the next requests it fails.
#[derive(Default)]
struct Seen {
    bodies: Vec<(Option<String>, Vec<u8>)>,
    fail_next: usize,
}

async fn receiver(seen: Arc<Mutex<Seen>>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let mut seen = seen.lock().unwrap();
                let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
                seen.bodies.push((signature, body.to_vec()));
                if seen.fail_next > 0 {
                    seen.fail_next -= 1;
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn webhook_sink(url: &str) -> Sink {
    let sink =
        WebhookSink::new(common::client(), SecretString::from(url.to_owned()), SecretString::from(NOTIFY_SECRET));
    Sink::new(Box::new(sink), None)
}

/// Merge c1 and run rounds until it is live in dev and waits for approval into staging.
async fn to_staging_gate(server: &atlas_promote_server::Server, w: &common::World) -> usize {
    w.source_control.commit("c1", None, "alice", &["src/app.py"]);
    server.promoter().merged(Candidate::trunk("c1", ["alice"]), w.clock.now()).await.unwrap();
    let mut queued = 0;
    for _ in 0..5 {
        let step = server.step().await.unwrap();
        queued += step.queued;
        w.clock.advance(TimeDelta::minutes(1));
    }
    queued
}

fn delivered(seen: &Seen) -> Vec<serde_json::Value> {
    seen.bodies.iter().map(|(_, body)| serde_json::from_slice(body).unwrap()).collect()
}

#[tokio::test]
async fn a_blocked_candidate_is_told_to_a_signed_webhook_with_what_would_unblock_it() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = receiver(Arc::clone(&seen)).await;
    let w = common::world();
    let server = common::builder(&w).with_sink(webhook_sink(&url)).with_public_url("https://atlas.example.com").build();
    let queued = to_staging_gate(&server, &w).await;
    assert!(queued > 0);

    let seen = seen.lock().unwrap();
    for (signature, body) in &seen.bodies {
        assert_eq!(signature.as_deref(), Some(sign(NOTIFY_SECRET.as_bytes(), body).as_str()), "every body is signed");
    }
    let notes = delivered(&seen);
    let request = notes
        .iter()
        .find(|n| n["kind"] == "approval_requested")
        .unwrap_or_else(|| panic!("no approval request among {notes:#?}"));
    assert_eq!(request["payload"]["sha"], "c1");
    assert_eq!(request["payload"]["stage"], "staging");
    assert_eq!(request["payload"]["link"], "https://atlas.example.com/promotions/c1");
    assert!(request["payload"]["unblock"].as_str().unwrap().contains("developer"), "{request:#}");
    let promoted =
        notes.iter().find(|n| n["kind"] == "promoted").unwrap_or_else(|| panic!("no promotion among {notes:#?}"));
    assert_eq!(promoted["payload"]["sha"], "c1");
    assert_eq!(promoted["payload"]["summary"], "c1 deployed to dev");
    let ids: BTreeSet<&str> = notes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), notes.len(), "with a receiver that never fails, each notification arrives once");
}

#[tokio::test]
async fn a_failing_receiver_gets_every_notification_again_after_the_backoff() {
    let seen = Arc::new(Mutex::new(Seen { fail_next: 1_000, ..Seen::default() }));
    let url = receiver(Arc::clone(&seen)).await;
    let w = common::world();
    let server = common::builder(&w).with_sink(webhook_sink(&url)).build();
    to_staging_gate(&server, &w).await;
    let failed: BTreeSet<String> =
        delivered(&seen.lock().unwrap()).iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert!(!failed.is_empty());
    assert!(server.metrics().count("atlas_notifications_total", &[("outcome", "failed")]) > 0);

    // Nothing is retried before its backoff, everything after it.
    server.step().await.unwrap(); // fails again, and backs off from now
    let before = seen.lock().unwrap().bodies.len();
    seen.lock().unwrap().fail_next = 0;
    assert_eq!(server.step().await.unwrap().delivered, 0, "the backoff (2 s and more) has not passed");
    assert_eq!(seen.lock().unwrap().bodies.len(), before);
    w.clock.advance(TimeDelta::minutes(30));
    let mut ok = BTreeSet::new();
    for _ in 0..3 {
        server.step().await.unwrap();
        w.clock.advance(TimeDelta::minutes(30));
    }
    let seen = seen.lock().unwrap();
    for n in delivered(&seen).iter().skip(before) {
        ok.insert(n["id"].as_str().unwrap().to_owned());
    }
    assert!(failed.is_subset(&ok), "every failed notification arrives later: {failed:?} vs {ok:?}");
}

#[tokio::test]
async fn a_slack_message_names_what_happened_what_would_unblock_it_and_links_the_page() {
    let entry = OutboxEntry::new(
        "approval_requested/staging/c1",
        "approval_requested",
        serde_json::json!({ "sha": "c1", "stage": "staging", "summary": "c1 needs approval to enter staging",
                            "unblock": "approve c1 into staging: 1 more from developer",
                            "link": "https://atlas.example.com/promotions/c1" }),
        "2026-05-04T08:00:00Z".parse().unwrap(),
    );
    assert_eq!(
        slack_text(&entry),
        "*approval_requested* c1 needs approval to enter staging\napprove c1 into staging: 1 more from developer\n<https://atlas.example.com/promotions/c1|details>"
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = receiver(Arc::clone(&seen)).await;
    let sink = SlackSink::new(common::client(), SecretString::from(url));
    atlas_promote_core::Notifier::notify(&sink, &entry).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&seen.lock().unwrap().bodies[0].1).unwrap();
    assert_eq!(body["text"], slack_text(&entry));
}

#[test]
fn sinks_never_show_their_url_or_secret() {
    let sink = WebhookSink::new(
        common::client(),
        SecretString::from("https://hooks.example.com/T000/B000/XXXX"),
        SecretString::from(NOTIFY_SECRET),
    );
    let shown = format!("{sink:?}");
    assert!(!shown.contains("XXXX") && !shown.contains(NOTIFY_SECRET), "{shown}");
    let slack = SlackSink::new(common::client(), SecretString::from("https://hooks.slack.com/services/T0/B0/SECRET"));
    assert!(!format!("{slack:?}").contains("SECRET"));
}
