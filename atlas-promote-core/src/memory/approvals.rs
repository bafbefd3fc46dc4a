use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::lock;
use crate::backend::ApprovalSource;
use crate::error::Result;
use crate::evidence::ApprovalRecord;

/// Approval records in memory: a native approval store that supports [`submit`](ApprovalSource::submit).
///
/// Records are kept as submitted (roles included) and returned in the order submitted.
#[derive(Debug, Clone, Default)]
pub struct MemoryApprovals {
    records: Arc<Mutex<Vec<ApprovalRecord>>>,
}

impl MemoryApprovals {
    /// No records yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store a record, as [`submit`](ApprovalSource::submit) does, without `.await`.
    pub fn add(&self, record: ApprovalRecord) {
        lock(&self.records).push(record);
    }

    /// Every record stored so far.
    pub fn records(&self) -> Vec<ApprovalRecord> {
        lock(&self.records).clone()
    }
}

#[async_trait]
impl ApprovalSource for MemoryApprovals {
    async fn approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>> {
        let records = lock(&self.records);
        Ok(records.iter().filter(|r| r.stage == stage && r.sha == sha).cloned().collect())
    }

    async fn submit(&self, record: &ApprovalRecord) -> Result<()> {
        self.add(record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApprovalDecision;

    fn record(approver: &str, stage: &str, sha: &str) -> ApprovalRecord {
        ApprovalRecord {
            approver: approver.into(),
            roles: vec![],
            stage: stage.into(),
            sha: sha.into(),
            decision: ApprovalDecision::Approve,
            at: "2026-05-05T09:12:00Z".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn returns_the_records_for_the_stage_and_sha() {
        let approvals = MemoryApprovals::new();
        approvals.submit(&record("pat", "prod", "a1")).await.unwrap();
        approvals.add(record("dan", "staging", "a1"));
        approvals.add(record("dan", "prod", "b2"));
        let got = approvals.approvals("prod", "a1").await.unwrap();
        assert_eq!(got, [record("pat", "prod", "a1")]);
        assert_eq!(approvals.records().len(), 3);
    }
}
