//! The atlas-promote service: webhook intake, the reconcile loop and
//! notification delivery over one [`Promoter`], with health and metrics
//! endpoints, on axum and tokio.
//!
//! Embed it ([`Server::router`] mounts in your own axum service; drive the
//! loop with [`Server::step`] or [`Server::run`]) or run it from a config
//! file with `atlas-promote serve --config atlas-promote.toml`
//! ([`Server::from_config`]).
//!
//! ```no_run
//! # async fn demo(promoter: atlas_promote_core::Promoter) -> Result<(), Box<dyn std::error::Error>> {
//! use atlas_promote_server::{notify::{LogSink, Sink}, Server};
//!
//! let server = Server::builder(promoter).with_sink(Sink::new(Box::new(LogSink), None)).build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server.run(listener, atlas_promote_server::shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! People operate the release through the same process: the operator API
//! under `/api/v1/` (DESIGN §9; every write attributed to the operator whose
//! bearer token came with it, see [`Operators`], and audited with them) and
//! the status page at `/` and `/promotions/{sha}` (server-rendered HTML, no
//! JavaScript). The `atlas-promote` command's `status`, `plan`, `approve`,
//! `hold`, `release`, `override`, `rollback`, `retry` and `audit` speak
//! that API.
//!
//! What one round of the loop does ([`Server::step`]): hand the work the
//! webhooks brought to the engine, tick, write the tick's notifications to
//! the store's outbox, and deliver what the outbox holds. The loop runs a
//! round when the engine's next wake-up comes, when a webhook nudges it, and
//! at the latest after the idle interval (a safety net for a lost webhook:
//! the engine also polls its backends).
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod forge;
mod http;
pub mod intake;
pub mod metrics;
pub mod notify;
mod operator;
mod page;
mod start;
mod views;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atlas_promote_core::{
    ClaimOutbox, Commit, Directory, Promoter, Result, StateStore, StaticDirectory, Tick, Verdict,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use auth::{Operators, ReadAccess};
pub use config::{Config, ConfigError};
pub use forge::{Forge, GitHubForge};
pub use intake::{Received, Rejection, WebhookSource, Work};
pub use metrics::Metrics;
pub use notify::Sink;
pub use start::StartError;

/// The service: one engine, its webhook sources and notification sinks.
#[derive(Debug, Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    promoter: Promoter,
    store: Arc<dyn StateStore>,
    sources: Vec<Arc<dyn WebhookSource>>,
    sinks: Vec<Sink>,
    forge: Option<Arc<dyn Forge>>,
    metrics: Metrics,
    limits: config::HttpLimits,
    public_url: Option<String>,
    idle: Duration,
    queue: Mutex<VecDeque<Work>>,
    nudge: Notify,
    accepting: AtomicBool,
    recent: Mutex<HashSet<String>>,
    operators: Operators,
    directory: Arc<dyn Directory>,
    audit: tokio::sync::Mutex<views::AuditCache>,
    zone: atlas_promote_core::chrono_tz::Tz,
    chain_key: Option<atlas_promote_core::audit::ChainKey>,
}

impl Shared {
    /// Queue work for the loop and wake it.
    pub(crate) fn enqueue(&self, work: Vec<Work>) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).extend(work);
        self.nudge.notify_one();
    }
}

/// Builds a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder {
    promoter: Promoter,
    sources: Vec<Arc<dyn WebhookSource>>,
    sinks: Vec<Sink>,
    forge: Option<Arc<dyn Forge>>,
    limits: config::HttpLimits,
    public_url: Option<String>,
    idle: Duration,
    operators: Operators,
    directory: Option<Arc<dyn Directory>>,
    zone: Option<atlas_promote_core::chrono_tz::Tz>,
    chain_key: Option<atlas_promote_core::audit::ChainKey>,
}

impl ServerBuilder {
    /// The key the store's audit chain is keyed with (HMAC-SHA256), so that
    /// `GET /api/v1/audit/verify` checks the chain under it; without one a
    /// keyed chain reads as broken.
    pub fn with_chain_key(mut self, key: atlas_promote_core::audit::ChainKey) -> Self {
        self.chain_key = Some(key);
        self
    }

    /// The people who may act through the operator API, and whether reads
    /// need a token (default: nobody may write; reads are open).
    pub fn with_operators(mut self, operators: Operators) -> Self {
        self.operators = operators;
        self
    }

    /// The time zone the status page shows times in, UTC beside (default:
    /// the zone of the policy's first window or blackout, else UTC).
    pub fn with_time_zone(mut self, zone: atlas_promote_core::chrono_tz::Tz) -> Self {
        self.zone = Some(zone);
        self
    }

    /// Where the operator API reads an operator's roles (for overrides);
    /// default: the policy's `[directory]`. Give the engine's own.
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Take deliveries from `source` at `/webhooks/{name}`.
    pub fn with_source(mut self, source: Arc<dyn WebhookSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// Deliver notifications through `sink`.
    pub fn with_sink(mut self, sink: Sink) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Tell `forge` about the release: review statuses, answers to
    /// deployment protection rules, deployments ([`forge`]).
    pub fn with_forge(mut self, forge: Arc<dyn Forge>) -> Self {
        self.forge = Some(forge);
        self
    }

    /// Limits of the webhook intake (body size, read timeouts).
    pub fn with_limits(mut self, limits: config::HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The service's public address, for links in notifications.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Run a round at the latest this long after the last (default 5 minutes).
    pub fn with_idle_interval(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// The server.
    pub fn build(self) -> Server {
        let store = Arc::clone(self.promoter.store());
        let directory =
            self.directory.unwrap_or_else(|| Arc::new(StaticDirectory::from_policy(self.promoter.policy())));
        let zone = self.zone.unwrap_or_else(|| policy_zone(self.promoter.policy()));
        Server {
            shared: Arc::new(Shared {
                promoter: self.promoter,
                store,
                sources: self.sources,
                sinks: self.sinks,
                forge: self.forge,
                metrics: Metrics::default(),
                limits: self.limits,
                public_url: self.public_url,
                idle: self.idle,
                queue: Mutex::new(VecDeque::new()),
                nudge: Notify::new(),
                accepting: AtomicBool::new(true),
                recent: Mutex::new(HashSet::new()),
                operators: self.operators,
                directory,
                audit: tokio::sync::Mutex::default(),
                chain_key: self.chain_key,
                zone,
            }),
        }
    }
}

/// The zone a policy's deployment windows (or else blackouts) are written in: UTC without either.
fn policy_zone(policy: &atlas_promote_core::Policy) -> atlas_promote_core::chrono_tz::Tz {
    let windows = policy.stages.iter().flat_map(|s| s.windows.iter().map(|w| w.tz));
    let blackouts = policy.stages.iter().flat_map(|s| s.blackouts.iter().map(|b| b.tz));
    windows.chain(blackouts).next().unwrap_or(atlas_promote_core::chrono_tz::Tz::UTC)
}

/// What one round of the loop did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Step {
    /// The tick, and the ticks of the webhooks' notices before it.
    pub ticks: Vec<Tick>,
    /// Work that failed to reach the engine, with why (it was logged).
    pub failed_work: Vec<(Work, atlas_promote_core::Error)>,
    /// Notifications written to the outbox.
    pub queued: usize,
    /// Notifications delivered to every sink that takes them.
    pub delivered: usize,
    /// Forge work done (statuses posted, gates answered, deployments mirrored).
    pub forge_done: usize,
    /// Forge work that failed this round (a temporary failure is tried again).
    pub forge_failed: usize,
}

impl Server {
    /// Start building a server around `promoter` (its store is the server's).
    pub fn builder(promoter: Promoter) -> ServerBuilder {
        ServerBuilder {
            promoter,
            sources: Vec::new(),
            sinks: Vec::new(),
            forge: None,
            limits: config::HttpLimits::default(),
            public_url: None,
            idle: Duration::from_secs(300),
            operators: Operators::default(),
            directory: None,
            zone: None,
            chain_key: None,
        }
    }

    /// The engine.
    pub fn promoter(&self) -> &Promoter {
        &self.shared.promoter
    }

    /// The counters `/metrics` shows.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The routes (`/healthz`, `/readyz`, `/metrics`, `/webhooks/{source}`,
    /// the operator API under `/api/v1/`, the status page at `/` and
    /// `/promotions/{sha}`), to serve or to mount in your own axum service.
    pub fn router(&self) -> axum::Router {
        http::router(Arc::clone(&self.shared))
    }

    /// Work the webhooks queued and the loop has not yet handed to the engine.
    pub fn pending_work(&self) -> usize {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// One round of the loop: the queued work to the engine, a tick, its
    /// notifications to the outbox, and the outbox to the sinks.
    ///
    /// Errors are those of the store: the engine's failures per candidate
    /// are in the ticks, the work that could not be handled in `failed_work`.
    pub async fn step(&self) -> Result<Step> {
        let shared = &self.shared;
        let mut step = Step {
            ticks: Vec::new(),
            failed_work: Vec::new(),
            queued: 0,
            delivered: 0,
            forge_done: 0,
            forge_failed: 0,
        };
        let forge = self.forge_work();
        let work: Vec<Work> = shared.queue.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for item in work {
            let done = match &item {
                Work::Notice(atlas_promote_core::Notice::GateRequested { stage, sha, reply_to }) => match &forge {
                    Some(forge) => forge.request_gate(stage, sha, reply_to).await.map(|()| None),
                    None => {
                        tracing::warn!(%stage, %sha, "a gate request arrived but no forge is configured to answer it");
                        Ok(None)
                    }
                },
                Work::Notice(notice) => shared.promoter.handle(notice.clone()).await.map(Some),
                Work::Review(candidate) => match shared.promoter.open_review(candidate.clone()).await {
                    // A pull request updated with the same head: already under review.
                    Err(atlas_promote_core::Error::Conflict { .. }) => Ok(None),
                    other => other.map(|()| None),
                },
            };
            match done {
                Ok(tick) => step.ticks.extend(tick),
                Err(e) => {
                    tracing::warn!(work = ?item, error = %e, "webhook work not handled");
                    step.failed_work.push((item, e));
                }
            }
        }
        let tick = shared.promoter.tick().await;
        shared.metrics.tick(tick.is_err());
        step.ticks.push(tick?);
        for tick in &step.ticks {
            for decision in &tick.decisions {
                shared.metrics.decision(match decision.verdict {
                    Verdict::Allow => "allow",
                    Verdict::Wait { .. } => "wait",
                    Verdict::Block => "block",
                });
            }
            for entry in notify::notifications(tick, shared.public_url.as_deref()) {
                if !self.remember(&entry.id) {
                    continue;
                }
                // An id already in the outbox is the same notification (the
                // same decision on a later tick, or after a restart): once is enough.
                match shared.store.commit_with(Commit::new().with_outbox(entry)).await {
                    Ok(_) => step.queued += 1,
                    Err(atlas_promote_core::Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        step.delivered = self.deliver().await?;
        if let Some(forge) = &forge {
            forge.queue(&step.ticks).await?;
            let done = forge.run().await?;
            shared.metrics.forge(done.done as u64, done.failed as u64);
            (step.forge_done, step.forge_failed) = (done.done, done.failed);
        }
        Ok(step)
    }

    fn forge_work(&self) -> Option<forge::ForgeWork<'_>> {
        let shared = &self.shared;
        shared.forge.as_deref().map(|forge| forge::ForgeWork {
            forge,
            promoter: &shared.promoter,
            store: &*shared.store,
            link: shared.public_url.as_deref(),
        })
    }

    /// Whether `id` is new to this process (bounded: forgets all at 10,000,
    /// after which the store's outbox still refuses a repeated id).
    fn remember(&self, id: &str) -> bool {
        let mut recent = self.shared.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= 10_000 {
            recent.clear();
        }
        recent.insert(id.to_owned())
    }

    /// Deliver what the outbox holds now; how many were delivered.
    async fn deliver(&self) -> Result<usize> {
        let shared = &self.shared;
        let now = shared.promoter.now();
        let claimed = shared.store.claim_outbox(ClaimOutbox::at(now)).await?;
        shared.metrics.outbox_pending(claimed.len() as u64);
        let mut delivered = 0;
        for item in claimed {
            let mut failure = None;
            for sink in shared.sinks.iter().filter(|s| s.takes(&item.entry.kind)) {
                let name = sink.notifier().name().to_owned();
                let sent = tokio::time::timeout(notify::ATTEMPT_TIMEOUT, sink.notifier().notify(&item.entry)).await;
                match sent {
                    Ok(Ok(())) => shared.metrics.notification(&name, "delivered"),
                    Ok(Err(e)) => {
                        shared.metrics.notification(&name, "failed");
                        failure = Some(format!("{name}: {e}"));
                    }
                    Err(_) => {
                        shared.metrics.notification(&name, "timeout");
                        failure = Some(format!("{name}: no answer within {:?}", notify::ATTEMPT_TIMEOUT));
                    }
                }
            }
            match failure {
                None => {
                    shared.store.outbox_delivered(&item.entry.id).await?;
                    delivered += 1;
                }
                Some(error) => {
                    let next = now + notify::backoff(&item.entry.id, item.attempts);
                    tracing::warn!(id = %item.entry.id, attempts = item.attempts, %error, retry_at = %next, "notification not delivered");
                    shared.store.outbox_failed(&item.entry.id, &error, next).await?;
                }
            }
        }
        Ok(delivered)
    }

    /// How long to sleep after a round whose last tick said `next_wake`.
    fn sleep_after(&self, step: Option<&Step>) -> Duration {
        let idle = self.shared.idle;
        let Some(wake) = step.and_then(|s| s.ticks.last()).and_then(|t| t.next_wake) else { return idle };
        let until = (wake - self.shared.promoter.now()).to_std().unwrap_or(Duration::ZERO);
        until.min(idle)
    }

    /// Serve the routes on `listener` (no loop: drive it with
    /// [`step`](Self::step)) until `shutdown` resolves, with the header
    /// read timeout of the limits; requests in progress get 5 seconds to finish.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        let header_timeout = Duration::from_secs(self.shared.limits.header_timeout_secs);
        http::serve(listener, self.router(), header_timeout, Duration::from_secs(5), shutdown).await;
    }

    /// Serve HTTP on `listener` and run the loop until `shutdown` resolves;
    /// then stop taking webhooks, finish the round in progress and return.
    pub async fn run(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let stop = Arc::new(Notify::new());
        let header_timeout = Duration::from_secs(self.shared.limits.header_timeout_secs);
        let http = {
            let stop = Arc::clone(&stop);
            tokio::spawn(http::serve(listener, self.router(), header_timeout, Duration::from_secs(5), async move {
                stop.notified().await
            }))
        };
        let looping = {
            let server = self.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { server.run_loop(stop).await })
        };
        shutdown.await;
        tracing::info!("shutting down: no more webhooks; finishing the round in progress");
        self.shared.accepting.store(false, Ordering::SeqCst);
        stop.notify_waiters();
        let _ = http.await;
        // The loop sees the stop between rounds, never in the middle of one.
        self.shared.nudge.notify_one();
        let _ = looping.await;
        Ok(())
    }

    async fn run_loop(&self, stop: Arc<Notify>) {
        let stopped = stop.notified();
        tokio::pin!(stopped);
        let mut last = None;
        let mut first = true;
        loop {
            if !self.shared.accepting.load(Ordering::SeqCst) {
                break;
            }
            // The first round runs at once: a restart picks up where the last process stopped.
            let sleep = if std::mem::take(&mut first) { Duration::ZERO } else { self.sleep_after(last.as_ref()) };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.shared.nudge.notified() => {}
                () = &mut stopped => break,
            }
            if !self.shared.accepting.load(Ordering::SeqCst) {
                break;
            }
            match self.step().await {
                Ok(step) => last = Some(step),
                Err(e) => {
                    tracing::error!(error = %e, "a round of the loop failed; trying again");
                    last = None;
                }
            }
        }
    }
}

/// A future that resolves on SIGTERM or Ctrl-C (SIGINT).
///
/// The handlers are installed when this is called (inside a tokio runtime),
/// not when the future is first polled: a signal that arrives in between
/// stops the service cleanly instead of killing the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(terminate) => {}
                () = wait(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
