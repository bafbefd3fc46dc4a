//! What several instances on one store share: leases, webhook deliveries
//! seen, and the outbox of notifications.
//!
//! These are the values of the [`StateStore`](crate::StateStore) methods
//! that go beyond documents and the audit log. Every time in them is given by
//! the caller (read from its [`Clock`](crate::Clock)), so that tests can
//! drive them with a manual clock; instances sharing one store must have
//! clocks that agree to well within a lease's time to live.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::{AuditEntry, Write};

/// Everything one [`StateStore::commit_with`](crate::StateStore::commit_with)
/// applies in one transaction: document writes, audit entries and outbox
/// entries, all or nothing.
///
/// ```
/// use atlas_promote_core::{Commit, OutboxEntry};
///
/// let at = "2026-05-05T09:12:00Z".parse().unwrap();
/// let commit = Commit::new()
///     .with_outbox(OutboxEntry::new("promoted/9fceb02/prod", "promoted", serde_json::json!({"sha": "9fceb02"}), at));
/// assert_eq!(commit.outbox.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Commit {
    /// The document writes, each checked against its expected version.
    pub writes: Vec<Write>,
    /// The audit entries appended, in order.
    pub audit: Vec<AuditEntry>,
    /// The notifications appended to the outbox, in order.
    pub outbox: Vec<OutboxEntry>,
}

impl Commit {
    /// A commit that changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same commit with these document writes.
    pub fn with_writes(mut self, writes: Vec<Write>) -> Self {
        self.writes = writes;
        self
    }

    /// The same commit with these audit entries.
    pub fn with_audit(mut self, audit: Vec<AuditEntry>) -> Self {
        self.audit = audit;
        self
    }

    /// The same commit with one more outbox entry.
    pub fn with_outbox(mut self, entry: OutboxEntry) -> Self {
        self.outbox.push(entry);
        self
    }
}

/// Who drives a named piece of work (a promotion) until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// What is leased, e.g. `promotion/trunk/9fceb02`.
    pub name: String,
    /// The instance holding it.
    pub holder: String,
    /// When it lapses unless renewed.
    pub until: DateTime<Utc>,
    /// Grows by one each time the lease changes hands (a fencing token):
    /// a holder whose token is no longer the stored one has lost the lease.
    pub token: u64,
}

/// What [`StateStore::acquire_lease`](crate::StateStore::acquire_lease) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease now (newly, or renewed because it already held it).
    Acquired(Lease),
    /// Another instance holds it and it has not lapsed.
    Held(Lease),
}

impl LeaseOutcome {
    /// The lease, when the caller got it.
    pub fn acquired(self) -> Option<Lease> {
        match self {
            Self::Acquired(lease) => Some(lease),
            Self::Held(_) => None,
        }
    }
}

/// What [`StateStore::record_delivery`](crate::StateStore::record_delivery) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The first time this delivery id was recorded: handle it.
    First,
    /// It was recorded before (and not yet pruned): drop it.
    Duplicate,
}

/// A notification waiting in the outbox: a plain value a notifier can send.
///
/// The `id` is stable (a receiver drops repeats by it); `kind` says what
/// happened (`promoted`, `blocked`, `failed`, `alert`, `approvals.requested`,
/// …) and `payload` carries the details as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Unique in the outbox; a receiver deduplicates by it.
    pub id: String,
    /// What kind of notification this is.
    pub kind: String,
    /// Its content.
    pub payload: serde_json::Value,
    /// When it was written (whole seconds or finer, as the store keeps them).
    pub created_at: DateTime<Utc>,
}

impl OutboxEntry {
    /// An entry with these fields.
    pub fn new(
        id: impl Into<String>,
        kind: impl Into<String>,
        payload: serde_json::Value,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self { id: id.into(), kind: kind.into(), payload, created_at }
    }
}

/// An [`OutboxEntry`] as claimed for delivery, with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The notification.
    pub entry: OutboxEntry,
    /// How many times it was claimed, this claim included.
    pub attempts: u32,
    /// When it may be claimed again if this attempt neither delivers it
    /// nor reschedules it (the claim's own expiry).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the attempt before failed, as [`StateStore::outbox_failed`](crate::StateStore::outbox_failed) recorded it.
    pub last_error: Option<String>,
}

/// How [`StateStore::claim_outbox`](crate::StateStore::claim_outbox) claims entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimOutbox {
    /// The time now: entries whose next attempt is due by then are claimed.
    pub now: DateTime<Utc>,
    /// At most this many entries.
    pub limit: usize,
    /// How long a claim keeps the entries from other claimants: a claimant
    /// that dies has them claimed again after this.
    pub hold: TimeDelta,
}

impl ClaimOutbox {
    /// Claim up to 100 entries due at `now`, held for one minute.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self { now, limit: 100, hold: TimeDelta::minutes(1) }
    }

    /// The same claim for at most `limit` entries.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The same claim held for `hold`.
    pub fn with_hold(mut self, hold: TimeDelta) -> Self {
        self.hold = hold;
        self
    }
}

/// The time `ttl` after `now`, saturating at the end of time.
pub(crate) fn after(now: DateTime<Utc>, ttl: TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
