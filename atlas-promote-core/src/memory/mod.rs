//! In-memory implementations of every backend trait, for tests, examples and
//! simulations.
//!
//! Each is a cheap handle (`Clone` shares the same data), so a test can keep
//! one copy to script or inspect while the engine holds another:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atlas_promote_core::Error> {
//! use std::sync::Arc;
//! use atlas_promote_core::memory::{MemoryCi, Outcome};
//! use atlas_promote_core::{Candidate, CiProvider, IdempotencyKey, RunKind, RunRequest, RunStatus};
//!
//! let ci = MemoryCi::new().with_auto_complete(true);
//! ci.set_outcome("prod", RunKind::Deploy, Outcome::Fail);
//! let engine_side: Arc<dyn CiProvider> = Arc::new(ci.clone());
//!
//! let request = RunRequest {
//!     key: IdempotencyKey::new("9fceb02", "prod", RunKind::Deploy, 1),
//!     kind: RunKind::Deploy,
//!     stage: "prod".into(),
//!     candidate: Candidate::trunk("9fceb02", ["alice"]),
//!     workflow: "deploy".into(),
//!     parameters: Default::default(),
//! };
//! let run = engine_side.trigger(&request).await?;
//! assert_eq!(engine_side.status(&run.id).await?.status, RunStatus::Failed);
//! assert_eq!(ci.trigger_count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! They keep their data behind a [`std::sync::Mutex`] that is never held
//! across an `.await`; a panic in another thread holding it does not make
//! them unusable.

mod approvals;
mod checks;
mod ci;
mod directory;
mod source_control;
mod store;
mod table;

pub use approvals::MemoryApprovals;
pub use checks::MemoryChecks;
pub use ci::{MemoryCi, Outcome};
pub use directory::StaticDirectory;
pub use source_control::MemorySourceControl;
pub use store::MemoryStore;

use std::sync::{Mutex, MutexGuard};

/// Lock `mutex`, ignoring poisoning: every critical section leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found(backend: &str, what: impl Into<String>) -> crate::Error {
    crate::Error::NotFound { backend: backend.to_owned(), what: what.into() }
}
