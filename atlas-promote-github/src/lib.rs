//! GitHub as an atlas-promote backend: GitHub Actions as the
//! [`CiProvider`](atlas_promote_core::CiProvider), pull-request reviews and
//! environment deployment reviews as [`ApprovalSource`](atlas_promote_core::ApprovalSource)s,
//! check runs and commit statuses as the [`CheckSource`](atlas_promote_core::CheckSource),
//! compare as [`SourceControl`](atlas_promote_core::SourceControl), teams as the
//! [`Directory`](atlas_promote_core::Directory); plus deployments mirroring,
//! custom deployment protection rules and verified webhooks.
//!
//! One [`GitHub`] value plays every role; it is a cheap `Clone` (an `Arc`),
//! so an engine holds it as each `Arc<dyn …>`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use atlas_promote_core::{ApprovalSource, CheckQuery, CheckSource, CiProvider, Directory};
//! use atlas_promote_github::GitHubBuilder;
//!
//! # async fn run() -> atlas_promote_core::Result<()> {
//! let github = GitHubBuilder::from_env()
//!     .with_team_role("engineers", "developer")
//!     .with_team_role("product", "product-owner")
//!     .build()?;
//! let checks: Arc<dyn CheckSource> = Arc::new(github.clone());
//! let approvals: Arc<dyn ApprovalSource> = Arc::new(github.clone());
//! let ci: Arc<dyn CiProvider> = Arc::new(github.clone());
//! let directory: Arc<dyn Directory> = Arc::new(github);
//!
//! let sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";
//! let results = checks.checks(&CheckQuery::new("review", sha, vec![])).await?;
//! let reviews = approvals.approvals("trunk", sha).await?;
//! println!("{} check results, {} review records", results.len(), reviews.len());
//! # let _ = (ci, directory);
//! # Ok(()) }
//! ```
//!
//! # Cost
//! Reads are conditional requests: an unchanged answer is a `304 Not
//! Modified` served from the client's cache, which costs no rate limit.
//! Polling the approvals of a candidate waiting for review costs 1 request
//! (its pull request's reviews; the pull requests of the commit are read
//! once and remembered); with roles cached by the
//! [`Directory`](atlas_promote_core::Directory) for its TTL, nothing else.
//! See [`GitHub::stats`].
//!
//! # Setup
//! Token permissions, the team → role mapping and a workflow file that works
//! with this backend are in the crate's README.
#![forbid(unsafe_code)]

mod actions;
mod auth;
mod checks;
mod client;
mod compare;
mod config;
mod deployments;
mod environments;
mod error;
mod etag;
#[doc(hidden)]
pub mod fuzz;
pub mod model;
mod protection;
mod reviews;
mod teams;
pub mod webhook;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use atlas_promote_core::IdempotencyKey;
use reqwest::Url;
use secrecy::SecretString;

pub use actions::{MAX_INPUTS, RESERVED_INPUTS, dispatch_inputs, run_status};
/// How requests are retried, and how long one call may take (the core's type).
pub use atlas_promote_core::RetrySettings;
pub use checks::{check_run_result, commit_status_results};
pub use client::RequestStats;
pub use config::{DEFAULT_API_URL, GitHubBuilder};
pub use error::{FieldError, GitHubError, GitHubErrorKind};
pub use protection::{GateAnswer, GateRequest};
pub use reviews::review_records;
pub use webhook::{Delivery, WebhookReceiver};

use crate::client::Client;
use crate::config::Config;

/// The GitHub backend: one value implementing every backend trait of the
/// core. Build it with [`GitHubBuilder`]; clone it freely.
#[derive(Clone)]
pub struct GitHub {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    client: Client,
    reviewer_token: Option<SecretString>,
    teams: teams::TeamCache,
    /// Keys of runs this value dispatched, for runs whose `run-name` lacks one.
    run_keys: Mutex<HashMap<u64, IdempotencyKey>>,
    /// Dispatches whose answer was lost (a timeout, a 5xx), by key, and when:
    /// GitHub may have started their run (see `actions.rs`).
    lost_dispatches: Mutex<HashMap<IdempotencyKey, std::time::Instant>>,
    /// The pull requests of a commit, and when they were read (see `reviews.rs`).
    pulls: Mutex<HashMap<String, (std::time::Instant, Vec<model::PullRequest>)>>,
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("GitHub")
            .field("repository", &format_args!("{}/{}", c.owner, c.repo))
            .field("api", &self.inner.client.base().as_str())
            .field("credentials", &self.inner.client)
            .field("org", &c.org)
            .field("team_roles", &c.team_roles)
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// A builder; the same as [`GitHubBuilder::new`].
    pub fn builder() -> GitHubBuilder {
        GitHubBuilder::new()
    }

    pub(crate) fn from_parts(config: Config, client: Client, reviewer_token: Option<SecretString>) -> Self {
        Self {
            inner: Arc::new(Inner {
                teams: teams::TeamCache::new(config.directory_ttl),
                config,
                client,
                reviewer_token,
                run_keys: Mutex::new(HashMap::new()),
                lost_dispatches: Mutex::new(HashMap::new()),
                pulls: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The repository, as `owner/repo`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.inner.config.owner, self.inner.config.repo)
    }

    /// How many requests this value (and its clones) made, and how many were free 304s.
    pub fn stats(&self) -> RequestStats {
        self.inner.client.stats()
    }

    /// A receiver for this repository's webhooks, verifying with `secret`
    /// and mapping environments to stages as this backend does.
    pub fn webhooks(&self, secret: impl Into<SecretString>) -> WebhookReceiver {
        let c = &self.inner.config;
        let mut receiver = WebhookReceiver::new(secret).with_review_stage(c.review_stage.clone());
        for (stage, environment) in &c.environments {
            receiver = receiver.with_environment(stage.clone(), environment.clone());
        }
        receiver
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    /// `…/repos/{owner}/{repo}/{rest…}`.
    fn repo_url(&self, rest: &[&str]) -> Url {
        let c = &self.inner.config;
        let mut segments = vec!["repos", c.owner.as_str(), c.repo.as_str()];
        segments.extend_from_slice(rest);
        self.inner.client.url(&segments)
    }
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
