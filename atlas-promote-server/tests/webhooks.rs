//! The webhook intake over a real HTTP server and a real HTTP client:
//! signatures before anything else, limits, deduplication through the
//! store, and the loop acting on what was accepted.

mod common;

use std::time::Duration;

use atlas_promote_core::{RunKind, State};
use common::{SECRET, deliver, fixture, push, signature, start, world};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_published_test_vector_signs_like_github() {
    let vector: serde_json::Value = serde_json::from_slice(&fixture("webhook_signature_test_vector.json")).unwrap();
    assert_eq!(vector["secret"], SECRET);
    let signed = atlas_promote_server::notify::sign(SECRET.as_bytes(), vector["payload"].as_str().unwrap().as_bytes());
    assert_eq!(signed, vector["x_hub_signature_256"].as_str().unwrap());
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    let client = common::client();
    let health = client.get(format!("{}/healthz", running.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(format!("{}/readyz", running.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = client.get(format!("{}/metrics", running.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE atlas_ticks_total counter\natlas_ticks_total 0\n"), "{text}");
    let missing = client.get(format!("{}/nowhere", running.url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "not_found");
}

#[tokio::test]
async fn an_unsigned_or_wrongly_signed_delivery_is_401_and_nothing_is_acted_on() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    let body = push("main", "c1");
    let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), None).await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(reply["error"]["kind"], "unauthorized");
    let wrong = atlas_promote_server::notify::sign(b"another secret", &body);
    let (status, _) = deliver(&running.url, "push", "d-2", body.clone(), Some(wrong)).await;
    assert_eq!(status, 401);
    // A body changed after signing.
    let (status, _) = deliver(&running.url, "push", "d-3", push("main", "c2"), Some(signature(&body))).await;
    assert_eq!(status, 401);
    assert_eq!(running.server.pending_work(), 0);
    assert_eq!(running.server.metrics().count("atlas_webhook_deliveries_total", &[("outcome", "unauthorized")]), 3);
    // None of them was recorded as a delivery: the same id, signed, is new.
    let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("accepted")));
}

#[tokio::test]
async fn a_push_to_trunk_is_a_merge_the_loop_deploys_and_a_redelivery_is_dropped() {
    let w = world();
    w.source_control.commit("c1", None, "alice", &["src/app.py"]);
    let running = start(common::builder(&w).build()).await;
    let body = push("main", "c1");
    let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["outcome"], "accepted");
    let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "duplicate");
    assert_eq!(running.server.pending_work(), 1, "the redelivery queued nothing");

    let step = running.server.step().await.unwrap();
    assert!(step.failed_work.is_empty(), "{:?}", step.failed_work);
    let deploys: Vec<_> = w.ci.requests().into_iter().filter(|r| r.kind == RunKind::Deploy).collect();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert_eq!((deploys[0].candidate.sha.as_str(), deploys[0].stage.as_str()), ("c1", "dev"));
    let promotion = running.server.promoter().promotion("c1").await.unwrap();
    assert!(!matches!(promotion.value.promotion.state, State::Merged { .. } | State::UnderReview { .. }));
    assert_eq!(running.server.metrics().count("atlas_webhook_deliveries_total", &[("outcome", "duplicate")]), 1);
}

#[tokio::test]
async fn a_push_elsewhere_a_ping_and_an_event_not_acted_on_are_acknowledged_with_the_reason() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    let body = push("feature/x", "c9");
    let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("ignored")), "{reply}");
    assert_eq!(reply["reason"], "a push to refs/heads/feature/x, not to trunk");
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#.to_vec();
    let (status, reply) = deliver(&running.url, "ping", "d-2", ping.clone(), Some(signature(&ping))).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("ignored")), "{reply}");
    let star = br#"{"action":"created","starred_at":"2026-05-04T08:00:00Z"}"#.to_vec();
    let (status, reply) = deliver(&running.url, "star", "d-3", star.clone(), Some(signature(&star))).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("ignored")), "{reply}");
    assert!(reply["reason"].as_str().is_some_and(|r| !r.is_empty()), "{reply}");
    assert_eq!(running.server.pending_work(), 0);
}

#[tokio::test]
async fn a_published_workflow_run_delivery_nudges_the_engine_with_its_notice() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    let body = fixture("webhook_workflow_run_completed.json");
    let (status, reply) = deliver(&running.url, "workflow_run", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("accepted")), "{reply}");
    assert_eq!(running.server.pending_work(), 1);
}

#[tokio::test]
async fn signed_bodies_that_are_not_json_or_not_a_push_are_400() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    for (event, body) in [
        ("push", b"not json".to_vec()),
        ("push", b"{\"ref\": 3}".to_vec()),
        ("push", b"{\"ref\":\"refs/heads/main\"".to_vec()),
    ] {
        let (status, reply) = deliver(&running.url, event, "d-1", body.clone(), Some(signature(&body))).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["kind"], "malformed");
    }
    let (status, reply) =
        deliver(&running.url, "push", "", push("main", "c1"), Some(signature(&push("main", "c1")))).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("X-GitHub-Delivery"), "{reply}");
    assert_eq!(running.server.pending_work(), 0);
}

#[tokio::test]
async fn a_form_encoded_delivery_says_to_set_the_content_type_to_json() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    let body = b"payload=%7B%7D".to_vec();
    let response = common::client()
        .post(format!("{}/webhooks/github", running.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "push")
        .header("x-github-delivery", "d-1")
        .header("x-hub-signature-256", signature(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reply: serde_json::Value = response.json().await.unwrap();
    assert!(reply["error"]["message"].as_str().unwrap().contains("application/json"), "{reply}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_whether_declared_or_streamed() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    let big = vec![b'x'; 64 * 1024 + 1];
    let (status, reply) = deliver(&running.url, "push", "d-1", big.clone(), Some(signature(&big))).await;
    assert_eq!(status, 413, "{reply}");
    // Chunked, with no Content-Length to refuse it by.
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nx-github-event: push\r\nx-github-delivery: d-2\r\nx-hub-signature-256: {}\r\nconnection: close\r\n\r\n",
        signature(&big)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.chunks(8192) {
        // The server may answer and close before the last chunk: that is the point.
        if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(running.server.metrics().count("atlas_webhook_deliveries_total", &[("outcome", "too_large")]), 2);
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_or_body_is_cut_off_and_does_not_slow_the_others() {
    let w = world();
    let running = start(common::builder(&w).build()).await;
    // Headers one byte at a time, never finished.
    let mut slow_headers = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    slow_headers.write_all(b"POST /webhooks/github HTTP/1.1\r\nHo").await.unwrap();
    // Headers complete, body promised and never sent.
    let mut slow_body = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let request = format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nx-github-event: push\r\nx-github-delivery: d-1\r\nx-hub-signature-256: {}\r\n\r\n{{",
        signature(b"{}")
    );
    slow_body.write_all(request.as_bytes()).await.unwrap();

    // Meanwhile others are served.
    for _ in 0..20 {
        let health = common::get(&format!("{}/healthz", running.url)).await;
        assert_eq!(health.status(), 200);
    }

    // The stalled body gets 408 once the body timeout (1 s) passes.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow_body.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server must close a connection whose body stalls");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The stalled headers are dropped once the header timeout (1 s) passes.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow_headers.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server must close a connection whose headers stall");
}

#[tokio::test]
async fn the_loop_acts_on_a_webhook_at_once_and_stops_when_asked() {
    let w = world();
    w.source_control.commit("c1", None, "alice", &["src/app.py"]);
    let server = common::builder(&w).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.clone().run(listener, async {
        let _ = stopped.await;
    }));
    let body = push("main", "c1");
    let (status, _) = deliver(&url, "push", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!(status, 202);
    // No step is called here: the delivery nudges the loop (its idle interval is 5 minutes).
    let deployed = async {
        while !w.ci.requests().iter().any(|r| r.kind == RunKind::Deploy && r.candidate.sha == "c1") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), deployed).await.expect("the loop deployed c1 to dev");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("run returns once asked to stop")
        .unwrap()
        .unwrap();
    // Stopped: the port no longer takes deliveries.
    assert!(common::client().get(format!("{url}/healthz")).send().await.is_err());
}

#[tokio::test]
async fn a_redelivery_after_a_restart_on_the_same_sqlite_file_is_still_a_duplicate() {
    let dir = std::env::temp_dir().join(format!("atlas-server-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("atlas.db").display());
    let body = push("main", "c1");
    {
        let store = atlas_promote_sql::SqlStore::open(&url).await.unwrap();
        let w = common::world_on(std::sync::Arc::new(store));
        let running = start(common::builder(&w).build()).await;
        let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), Some(signature(&body))).await;
        assert_eq!((status, reply["outcome"].as_str()), (202, Some("accepted")), "{reply}");
    }
    let store = atlas_promote_sql::SqlStore::open(&url).await.unwrap();
    let w = common::world_on(std::sync::Arc::new(store));
    let running = start(common::builder(&w).build()).await;
    let (status, reply) = deliver(&running.url, "push", "d-1", body.clone(), Some(signature(&body))).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("duplicate")), "{reply}");
    assert_eq!(running.server.pending_work(), 0);
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}
