//! Webhook intake under load: signed GitHub deliveries over loopback from
//! many connections at once, on the memory store and on an SQLite file.
//!
//! Prints, per store, deliveries per second accepted, the latency
//! percentiles, and checks afterwards that every delivery id is in the
//! store's deliveries exactly once (a second record of each says duplicate)
//! and that the redeliveries mixed in were dropped.
//!
//! `cargo bench -p atlas-promote-server --bench intake` (targets: at least
//! 2,000 deliveries/s on a 2-core machine, p99 under 50 ms).
//! `ATLAS_BENCH_DELIVERIES` (default 20,000) and `ATLAS_BENCH_CONNECTIONS`
//! (default 64) change the load; `cargo test --benches` runs it once, small.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atlas_promote_core::{
    Delivery, ManualClock, MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, Policy, Promoter,
    StateStore, StaticDirectory,
};
use atlas_promote_server::Server;
use atlas_promote_server::intake::GitHubSource;

const SECRET: &str = "load-test-secret";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn server(store: Arc<dyn StateStore>) -> Server {
    let policy = Policy::atlas();
    let clock = ManualClock::new("2026-05-04T08:00:00Z".parse().unwrap());
    let promoter = Promoter::builder(policy.clone())
        .with_store(store)
        .with_ci(Arc::new(MemoryCi::new()))
        .with_checks(Arc::new(MemoryChecks::new()))
        .with_approvals(Arc::new(MemoryApprovals::new()))
        .with_directory(Arc::new(StaticDirectory::from_policy(&policy)))
        .with_source_control(Arc::new(MemorySourceControl::new()))
        .with_clock(Arc::new(clock))
        .build()
        .expect("an engine on the memory backends");
    let receiver = atlas_promote_github::WebhookReceiver::new(SECRET.to_owned());
    Server::builder(promoter).with_source(Arc::new(GitHubSource::new(receiver, "main"))).build()
}

fn body(i: usize) -> Vec<u8> {
    // Never the all-zero SHA of a deleted branch.
    let i = i + 1;
    serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "after": format!("{i:040x}"),
        "deleted": false,
        "head_commit": { "id": format!("{i:040x}"), "timestamp": "2026-05-04T08:00:00Z" },
    }))
    .expect("JSON")
}

struct Report {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

async fn load(store: Arc<dyn StateStore>, deliveries: usize, connections: usize) -> Report {
    let server = server(Arc::clone(&store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}/webhooks/github", listener.local_addr().expect("bound"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = server.clone();
    tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    // Signed beforehand: the bench measures the server, not the client's HMAC.
    let redeliveries = deliveries / 10;
    let requests: Vec<(String, Vec<u8>, String)> = (0..deliveries + redeliveries)
        .map(|n| {
            let i = if n < deliveries { n } else { (n - deliveries) * 7 % deliveries };
            let body = body(i);
            let signature = atlas_promote_server::notify::sign(SECRET.as_bytes(), &body);
            (format!("load-{i}"), body, signature)
        })
        .collect();
    let requests = Arc::new(requests);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let requests = Arc::clone(&requests);
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // One client per connection: each task is its own keep-alive connection.
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("a client");
            let mut latencies = Vec::new();
            for (id, body, signature) in requests.iter().skip(c).step_by(connections) {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "push")
                    .header("x-github-delivery", id)
                    .header("x-hub-signature-256", signature)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status().as_u16();
                assert!(status == 202 || status == 200, "delivery {id}: {status}");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client task"));
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let metrics = server.metrics();
    let accepted = metrics.count("atlas_webhook_deliveries_total", &[("outcome", "accepted")]);
    let duplicates = metrics.count("atlas_webhook_deliveries_total", &[("outcome", "duplicate")]);
    assert_eq!(accepted as usize, deliveries, "every delivery accepted once");
    assert_eq!(duplicates as usize, redeliveries, "every redelivery dropped");
    assert_eq!(server.pending_work(), deliveries, "one merge queued per delivery, none per redelivery");
    let at_time = "2026-05-04T08:00:00Z".parse().expect("an instant");
    for i in 0..deliveries {
        let again = store.record_delivery("github", &format!("load-{i}"), at_time).await.expect("the store answers");
        assert_eq!(again, Delivery::Duplicate, "delivery load-{i} is in the store");
    }
    Report {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: *latencies.last().expect("some requests"),
    }
}

fn main() {
    // `cargo test --benches` passes no `--bench`: run once, small, as a check.
    let benching = std::env::args().any(|a| a == "--bench");
    let deliveries = env_number("ATLAS_BENCH_DELIVERIES", if benching { 20_000 } else { 500 });
    let connections = env_number("ATLAS_BENCH_CONNECTIONS", if benching { 64 } else { 8 });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let dir = std::env::temp_dir().join(format!("atlas-intake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    runtime.block_on(async {
        let sqlite = format!("sqlite://{}", dir.join("atlas.db").display());
        let stores: Vec<(&str, Arc<dyn StateStore>)> = vec![
            ("memory", Arc::new(MemoryStore::new())),
            ("sqlite", Arc::new(atlas_promote_sql::SqlStore::open(&sqlite).await.expect("an SQLite store"))),
        ];
        for (name, store) in stores {
            let r = load(store, deliveries, connections).await;
            println!(
                "intake/{name}: {deliveries} deliveries + {} redeliveries over {connections} connections: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; each in the store exactly once",
                deliveries / 10,
                r.per_second,
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                r.max.as_secs_f64() * 1e3,
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
