//! Conformance suites for backend implementations (feature `testkit`).
//!
//! Each suite is a public `async fn` taking the implementation as a trait
//! object, the way object_store's integration tests run against every
//! backend. Call them from your backend's tests; what differs between
//! backends (a source that cannot submit approvals, results the test seeded)
//! is an argument. A suite panics with a message naming the contract rule
//! that was broken: it is test code.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use atlas_promote_core::memory::MemoryStore;
//! use atlas_promote_core::testkit;
//!
//! testkit::state_store_suite(&MemoryStore::new()).await;
//! # }
//! ```

mod approvals;
mod checks;
mod ci;
mod coordination;
mod counting;
mod directory;
mod logs;
mod scenario;
mod source_control;
mod state_store;
mod working_set;

pub use approvals::{Capabilities, approval_source_suite};
pub use checks::check_source_suite;
pub use ci::ci_provider_suite;
pub use coordination::{delivery_suite, lease_suite, outbox_suite};
pub use counting::CountingStore;
pub use directory::directory_suite;
pub use logs::{CapturedLogs, Capturing};
pub use scenario::{Scenario, default_start};
pub use source_control::{History, source_control_suite};
pub use state_store::state_store_suite;
pub use working_set::working_set_suite;
