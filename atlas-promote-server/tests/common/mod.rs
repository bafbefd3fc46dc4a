//! A server on the in-memory backends and a manual clock, listening on a
//! loopback port, and signed deliveries to send it.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use atlas_promote_core::{
    ManualClock, MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, Policy, Promoter,
    StateStore, StaticDirectory,
};
use atlas_promote_server::config::HttpLimits;
use atlas_promote_server::intake::GitHubSource;
use atlas_promote_server::{Server, ServerBuilder};
use tokio::sync::oneshot;

pub const SECRET: &str = "It's a Secret to Everybody";

/// The world around the server.
pub struct World {
    pub clock: ManualClock,
    pub ci: MemoryCi,
    pub store: Arc<dyn StateStore>,
    pub source_control: MemorySourceControl,
}

pub fn world() -> World {
    world_on(Arc::new(MemoryStore::new()))
}

/// A world whose state lives in `store`.
pub fn world_on(store: Arc<dyn StateStore>) -> World {
    let clock = ManualClock::new("2026-05-04T08:00:00Z".parse().unwrap());
    World {
        ci: MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true),
        clock,
        store,
        source_control: MemorySourceControl::new(),
    }
}

pub fn builder(world: &World) -> ServerBuilder {
    let policy = Policy::atlas();
    let promoter = Promoter::builder(policy.clone())
        .with_store(world.store.clone())
        .with_ci(Arc::new(world.ci.clone()))
        .with_checks(Arc::new(MemoryChecks::new()))
        .with_approvals(Arc::new(MemoryApprovals::new()))
        .with_directory(Arc::new(StaticDirectory::from_policy(&policy)))
        .with_source_control(Arc::new(world.source_control.clone()))
        .with_clock(Arc::new(world.clock.clone()))
        .build()
        .unwrap();
    let receiver = atlas_promote_github::WebhookReceiver::new(SECRET.to_owned());
    Server::builder(promoter).with_source(Arc::new(GitHubSource::new(receiver, "main"))).with_limits(limits())
}

/// Small limits, so that the limit tests are quick.
pub fn limits() -> HttpLimits {
    let mut limits = HttpLimits::default();
    limits.max_body_bytes = 64 * 1024;
    limits.header_timeout_secs = 1;
    limits.body_timeout_secs = 1;
    limits
}

/// A server serving HTTP on a loopback port (the loop is driven by the test
/// through `step`); dropping it stops the server.
pub struct Running {
    pub server: Server,
    pub url: String,
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(server: Server) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = server.clone();
    tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Running { server, url: format!("http://{addr}"), addr, stop: Some(stop) }
}

/// `sha256=<hex>` of the body under the test secret.
pub fn signature(body: &[u8]) -> String {
    atlas_promote_server::notify::sign(SECRET.as_bytes(), body)
}

/// A push to `refs/heads/{branch}` whose head is `sha` (the fields of
/// GitHub's `push` event the service reads; GitHub publishes no example
/// payload of it among the fixtures).
pub fn push(branch: &str, sha: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": sha,
        "deleted": false,
        "head_commit": { "id": sha, "timestamp": "2026-05-04T08:00:00Z", "author": { "username": "alice" } },
        "repository": { "full_name": "acme/atlas" },
    }))
    .unwrap()
}

/// A `pull_request` delivery (the fields of GitHub's documented event that
/// the service reads, plus the ones around them).
pub fn pull_request(action: &str, base: &str, head: &str, sha: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "action": action,
        "number": 2,
        "pull_request": {
            "number": 2,
            "state": "open",
            "title": "Update the pipeline",
            "user": { "login": user, "type": "User" },
            "created_at": "2026-05-04T07:50:00Z",
            "updated_at": "2026-05-04T07:55:00Z",
            "merge_commit_sha": null,
            "head": { "label": format!("acme:{head}"), "ref": head, "sha": sha },
            "base": { "label": format!("acme:{base}"), "ref": base, "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e" },
        },
        "repository": { "full_name": "acme/atlas" },
        "sender": { "login": user },
    }))
    .unwrap()
}

/// POST a GitHub delivery.
pub async fn deliver(
    url: &str,
    event: &str,
    id: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> (u16, serde_json::Value) {
    let mut request = client()
        .post(format!("{url}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .body(body);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An HTTP client (reqwest on rustls with the ring provider, as the service's own).
pub fn client() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::new()
}

pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}
