//! Durable [`StateStore`](crate::StateStore) implementations.
//!
//! [`FileStore`] is the embedded default: one directory on a local disk,
//! one process at a time.

mod file;
pub(crate) mod table;

pub use file::{AuditProblem, AuditReport, FileStore, TornLine};
