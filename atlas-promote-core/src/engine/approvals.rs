//! Native approvals: records kept in the engine's own store.

use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::AuditEntry;
use crate::backend::{ApprovalSource, StateStore};
use crate::error::Result;
use crate::evidence::ApprovalRecord;

use super::records::{self, ApprovalsRecord, Decoded, Versioned};

/// What became of an approval, rejection or withdrawal given through
/// [`Promoter::approve`](super::Promoter::approve). (One that could never
/// count is refused instead, as [`Error::Refused`](crate::Error::Refused).)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalOutcome {
    /// Recorded, and it counts toward the stage's approval rule.
    Counted {
        /// The record stored.
        record: ApprovalRecord,
    },
    /// Recorded (and audited), but it does not count toward the rule.
    RecordedNotCounting {
        /// The record stored.
        record: ApprovalRecord,
        /// Why it does not count, as a sentence.
        reason: String,
    },
}

impl ApprovalOutcome {
    /// The record stored.
    pub fn record(&self) -> &ApprovalRecord {
        match self {
            Self::Counted { record } | Self::RecordedNotCounting { record, .. } => record,
        }
    }

    /// Whether it counts toward the stage's approval rule.
    pub fn counts(&self) -> bool {
        matches!(self, Self::Counted { .. })
    }

    /// Why it does not count, if it does not.
    pub fn not_counting_because(&self) -> Option<&str> {
        match self {
            Self::Counted { .. } => None,
            Self::RecordedNotCounting { reason, .. } => Some(reason),
        }
    }
}

/// An [`ApprovalSource`] backed by a [`StateStore`]: the approvals people give
/// through the engine ([`Promoter::approve`](super::Promoter::approve)), each
/// stored with its audit entry in one commit so neither is lost.
#[derive(Debug, Clone)]
pub struct StoreApprovals {
    store: Arc<dyn StateStore>,
    decoded: Decoded,
}

impl StoreApprovals {
    /// Approvals kept in `store`.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Self { store, decoded: Decoded::default() }
    }

    /// Approvals kept in `store`, sharing an engine's decoded documents.
    pub(crate) fn sharing(store: Arc<dyn StateStore>, decoded: Decoded) -> Self {
        Self { store, decoded }
    }

    /// Append `record`, together with `audit`, in one commit.
    pub async fn record(&self, record: &ApprovalRecord, audit: AuditEntry) -> Result<()> {
        let key = records::approvals_key(&record.stage, &record.sha);
        let mut stored: Versioned<ApprovalsRecord> = self.decoded.get_or_default(&*self.store, &key).await?;
        stored.value.records.push(record.clone());
        let versions = self.store.commit(vec![stored.write()?], vec![audit]).await?;
        stored.version = versions.first().copied();
        self.decoded.keep_record(stored);
        Ok(())
    }
}

#[async_trait]
impl ApprovalSource for StoreApprovals {
    async fn approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        let stored: Versioned<ApprovalsRecord> =
            self.decoded.get_or_default(&*self.store, &records::approvals_key(stage, sha)).await?;
        Ok(stored.value.records)
    }

    async fn submit(&self, record: &ApprovalRecord) -> Result<()> {
        let audit = AuditEntry {
            at: record.at,
            actor: record.approver.clone(),
            action: format!("approval.{}", record.decision),
            subject: record.sha.clone(),
            message: format!("{} {}s {} into {}", record.approver, record.decision, record.sha, record.stage),
        };
        self.record(record, audit).await
    }
}
