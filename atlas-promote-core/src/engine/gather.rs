//! Gathering the evidence for one gate through the backends.

use std::collections::BTreeMap;

use tracing::Instrument;

use crate::backend::CheckQuery;
use crate::error::Result;
use crate::evidence::{Deployment, Evidence};
use crate::machine::State;
use crate::policy::Stage;

use super::Promoter;
use super::StoreApprovals;
use super::records::PromotionRecord;
use crate::backend::ApprovalSource;

impl Promoter {
    /// The evidence for moving `record`'s candidate from `from` to `to`,
    /// asking each backend only what the gate will look at.
    pub(super) async fn gather(&self, record: &PromotionRecord, from: &Stage, to: &Stage) -> Result<Evidence> {
        let promotion = &record.promotion;
        let sha = promotion.candidate.sha.clone();
        let mut evidence = Evidence::new(promotion.candidate.clone());
        match &promotion.state {
            State::Live { deployed_at, flush_required, flushed_at, .. } => {
                evidence.deployment = Some(Deployment {
                    deployed_at: *deployed_at,
                    flush_required: *flush_required,
                    flushed_at: *flushed_at,
                });
            }
            State::UnderReview { since, .. } => evidence.entered_at = Some(*since),
            State::Merged { at, .. } => evidence.entered_at = Some(*at),
            _ => {}
        }
        if !from.checks.is_empty() {
            let ready_at = evidence
                .deployment
                .as_ref()
                .map(|d| d.flushed_at.map_or(d.deployed_at, |f| f.max(d.deployed_at)))
                .or(evidence.entered_at);
            let names = from.checks.iter().map(|c| c.name.clone()).collect();
            let query = CheckQuery::new(from.name.clone(), sha.clone(), names).since(ready_at);
            let span = tracing::info_span!("checks", stage = %from.name, sha = %sha);
            evidence.checks = self.checks.checks(&query).instrument(span).await?;
        }
        if to.approvals.is_some() {
            evidence.approvals = self.approval_records(&to.name, &sha).await?;
        }
        Ok(evidence)
    }

    /// Every approval record for (stage, sha): the engine's own and every
    /// source's, each approver's roles as the directory says *now*.
    pub(super) async fn approval_records(&self, stage: &str, sha: &str) -> Result<Vec<crate::ApprovalRecord>> {
        let mut all = StoreApprovals::sharing(self.store.clone(), self.decoded.clone()).approvals(stage, sha).await?;
        for source in &self.approvals {
            let span = tracing::info_span!("approvals", stage = %stage, sha = %sha);
            all.extend(source.approvals(stage, sha).instrument(span).await?);
        }
        let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for record in &all {
            if !roles.contains_key(&record.approver) {
                roles.insert(record.approver.clone(), self.directory.roles(&record.approver).await?);
            }
        }
        for record in &mut all {
            // Someone who lost a role since approving no longer counts for it.
            record.roles = roles.get(&record.approver).cloned().unwrap_or_default();
        }
        Ok(all)
    }
}
