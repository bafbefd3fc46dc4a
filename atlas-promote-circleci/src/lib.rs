#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod approvals;
mod cache;
mod checks;
mod ci;
mod client;
pub mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod model;
mod pipelines;
pub mod webhook;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// How requests are retried, and how long one call may take (the core's type).
pub use atlas_promote_core::RetrySettings;
pub use config::CircleCiBuilder;
pub use error::{CircleCiError, CircleCiErrorKind, PipelineNotCreated};
pub use webhook::{Delivery, WebhookError, WebhookReceiver, verify_signature};

use crate::cache::Cache;
use crate::client::Client;
use crate::config::Settings;

/// The CircleCI backend: a [`CiProvider`](atlas_promote_core::CiProvider),
/// [`ApprovalSource`](atlas_promote_core::ApprovalSource) and
/// [`CheckSource`](atlas_promote_core::CheckSource) in one value.
///
/// Cheap to clone: clones share the HTTP client, the caches and the request
/// counter, so one value can back all three of an engine's
/// `Arc<dyn CiProvider>`, `Arc<dyn CheckSource>` and `Arc<dyn ApprovalSource>`.
/// Build one with [`CircleCiBuilder`].
#[derive(Clone)]
pub struct CircleCi {
    inner: Arc<Inner>,
}

struct Inner {
    client: Arc<Client>,
    settings: Settings,
    cache: Mutex<Cache>,
}

impl fmt::Debug for CircleCi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircleCi")
            .field("project_slug", &self.inner.settings.project_slug)
            .field("base_url", &self.inner.settings.base_url)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl CircleCi {
    pub(crate) fn from_parts(client: Arc<Client>, settings: Settings) -> Self {
        Self { inner: Arc::new(Inner { client, settings, cache: Mutex::new(Cache::default()) }) }
    }

    /// A builder; same as [`CircleCiBuilder::new`].
    pub fn builder() -> CircleCiBuilder {
        CircleCiBuilder::new()
    }

    /// HTTP requests sent to CircleCI so far by this value and its clones,
    /// retries included: the backend's real cost (rate limits).
    pub fn request_count(&self) -> u64 {
        self.inner.client.request_count()
    }

    /// The project slug.
    pub fn project_slug(&self) -> &str {
        &self.inner.settings.project_slug
    }

    /// Forget everything cached (pipelines, workflows, jobs, logins, runs).
    pub fn clear_cache(&self) {
        *lock(&self.inner.cache) = Cache::default();
    }
}

/// Lock a mutex, surviving a panic of another holder (the caches stay usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
