//! Notifications: what the engine tells people, and the [`Notifier`] trait a
//! sink (a log, a signed webhook, Slack) implements to deliver one.
//!
//! A notification is an [`OutboxEntry`]: it is written to the store's
//! outbox first and delivered afterwards, at least once, so a receiver drops
//! repeats by its stable [`id`](OutboxEntry::id).
//!
//! ```
//! use atlas_promote_core::{async_trait, Notifier, OutboxEntry, Result};
//!
//! /// Prints every notification.
//! #[derive(Debug)]
//! struct Print;
//!
//! #[async_trait]
//! impl Notifier for Print {
//!     fn name(&self) -> &str {
//!         "print"
//!     }
//!
//!     async fn notify(&self, notification: &OutboxEntry) -> Result<()> {
//!         println!("{} {}", notification.kind, notification.payload["summary"]);
//!         Ok(())
//!     }
//! }
//! ```

use std::fmt;

use async_trait::async_trait;

use crate::coordination::OutboxEntry;
use crate::error::Result;

/// Delivers notifications somewhere people see them.
///
/// `notify` may be called more than once for one notification (a retry
/// after a timeout that in fact delivered): receivers deduplicate by the
/// entry's `id`. A temporary error ([`Error::is_temporary`](crate::Error::is_temporary))
/// is retried with backoff; a permanent one too, but it is also logged as
/// needing attention.
#[async_trait]
pub trait Notifier: fmt::Debug + Send + Sync {
    /// A short name for logs and metrics (`slack`, `webhook`, `log`).
    fn name(&self) -> &str;

    /// Deliver one notification.
    async fn notify(&self, notification: &OutboxEntry) -> Result<()>;
}
