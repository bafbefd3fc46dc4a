//! A server with operators, on the in-memory backends and a manual clock,
//! serving HTTP on a loopback port; and a client that speaks to its API.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use atlas_promote_core::{
    Candidate, CheckResult, CheckStatus, ManualClock, MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl,
    MemoryStore, OverrideRule, Policy, Promoter, StateStore, StaticDirectory,
};
use atlas_promote_server::auth::token_sha256;
use atlas_promote_server::{Operators, ReadAccess, Server};
use serde_json::Value;
use tokio::sync::oneshot;

/// The people: dan (developer, dev-team), pat (product-owner), alice
/// (developer, who writes the commits), rita (release-manager: may override).
pub const DAN: &str = "dan-6f1c0a-bearer";
pub const PAT: &str = "pat-93b2de-bearer";
pub const ALICE: &str = "alice-0d77e1-bearer";
pub const RITA: &str = "rita-5a0c44-bearer";

pub fn policy() -> Policy {
    let mut policy = Policy::atlas();
    policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    policy
}

pub fn directory() -> StaticDirectory {
    let directory = StaticDirectory::new(Default::default());
    for (person, roles) in [
        ("dan", &["developer", "dev-team"][..]),
        ("pat", &["product-owner"]),
        ("alice", &["developer"]),
        ("rita", &["release-manager"]),
    ] {
        for role in roles {
            directory.grant(person, role);
        }
    }
    directory
}

pub fn operators() -> Operators {
    [("dan", DAN), ("pat", PAT), ("alice", ALICE), ("rita", RITA)]
        .into_iter()
        .try_fold(Operators::new(), |ops, (person, token)| ops.with_operator(person, &token_sha256(token)))
        .unwrap()
}

/// The world around the server.
pub struct World {
    pub clock: ManualClock,
    pub ci: MemoryCi,
    pub checks: MemoryChecks,
    pub store: Arc<dyn StateStore>,
    pub source_control: MemorySourceControl,
    pub promoter: Promoter,
    pub server: Server,
}

pub fn world(reads: ReadAccess) -> World {
    let clock = ManualClock::new("2026-05-04T08:00:00Z".parse().unwrap());
    let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
    let checks = MemoryChecks::new();
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let source_control = MemorySourceControl::new();
    let directory = Arc::new(directory());
    let policy = policy();
    let promoter = Promoter::builder(policy)
        .with_store(store.clone())
        .with_ci(Arc::new(ci.clone()))
        .with_checks(Arc::new(checks.clone()))
        .with_approvals(Arc::new(MemoryApprovals::new()))
        .with_directory(directory.clone())
        .with_source_control(Arc::new(source_control.clone()))
        .with_clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let server = Server::builder(promoter.clone())
        .with_operators(operators().with_reads(reads))
        .with_directory(directory)
        .build();
    World { clock, ci, checks, store, source_control, promoter, server }
}

impl World {
    /// alice merges `sha` (touching pipeline code) and the engine runs until
    /// nothing more happens: the commit is live in dev, waiting for a
    /// developer's approval into staging.
    pub async fn merged_and_live_in_dev(&self, sha: &str) {
        self.source_control.commit(sha, None, "alice", &["pipelines/etl.py"]);
        let now = self.promoter.now();
        let candidate = Candidate { created_at: Some(now), ..Candidate::trunk(sha, ["alice"]) };
        self.promoter.merged(candidate, now).await.unwrap();
        self.settle().await;
    }

    /// Ticks until the engine is idle, a minute apart.
    pub async fn settle(&self) {
        for _ in 0..20 {
            self.clock.advance(chrono::TimeDelta::minutes(1));
            let tick = self.promoter.tick().await.unwrap();
            if tick.is_idle() {
                break;
            }
        }
    }

    /// Every nightly check passes for `sha`, now.
    pub fn nightly_passes(&self, sha: &str) {
        let now = self.promoter.now();
        for name in ["integration", "system", "data-quality"] {
            self.checks.report(CheckResult {
                name: name.into(),
                sha: sha.into(),
                status: CheckStatus::Passed,
                started_at: now,
                finished_at: Some(now + chrono::TimeDelta::minutes(10)),
            });
        }
        self.clock.advance(chrono::TimeDelta::minutes(11));
    }

    pub async fn state(&self, sha: &str) -> String {
        self.promoter.promotion(sha).await.unwrap().value.promotion.state.to_string()
    }

    /// Every audit entry as `actor action subject`.
    pub async fn audit_lines(&self) -> Vec<String> {
        self.store
            .audit(0)
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {} {}", r.entry.actor, r.entry.action, r.entry.subject))
            .collect()
    }
}

/// A server serving HTTP on a loopback port; dropping it stops the server.
pub struct Running {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(server: &Server) -> Running {
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
    Running { url: format!("http://{addr}"), stop: Some(stop) }
}

/// An HTTP client (reqwest on rustls with the ring provider, as the service's own).
pub fn client() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::new()
}

/// A response's status and its body (JSON, or the text as a JSON string).
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `method path` with `token` as the bearer (if any) and `body` as JSON (if any).
pub async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

pub async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    call(base, reqwest::Method::POST, path, token, Some(body)).await
}

pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    call(base, reqwest::Method::GET, path, token, None).await
}

/// The error kind of a `{"error": {"kind", "message"}}` body.
pub fn kind(body: &Value) -> &str {
    body["error"]["kind"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

impl World {
    /// The seed's flow up to a candidate blocked in staging: c1 approved into
    /// staging by dan and live there, waiting on its nightly checks and the
    /// prod approvals; c2 live in dev behind it, waiting on a developer.
    pub async fn c1_blocked_in_staging_c2_in_dev(&self) {
        self.merged_and_live_in_dev("c1").await;
        self.promoter.approve("dan", "staging", "c1", atlas_promote_core::ApprovalDecision::Approve).await.unwrap();
        self.settle().await;
        assert_eq!(self.state("c1").await, "live in staging");
        self.source_control.commit("c2", Some("c1"), "bob", &["src/report.py"]);
        let now = self.promoter.now();
        let candidate = Candidate { created_at: Some(now), ..Candidate::trunk("c2", ["bob"]) };
        self.promoter.merged(candidate, now).await.unwrap();
        self.settle().await;
        assert_eq!(self.state("c2").await, "live in dev");
    }
}
