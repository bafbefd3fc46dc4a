//! What the operator API and the status page show: the environments, the
//! promotions with their plans, and the audit trail, read from the store
//! and the engine. One read model, so the page and the JSON never disagree.

use std::collections::{HashMap, VecDeque};

use atlas_promote_core::engine::records::{self, EnvironmentRecord};
use atlas_promote_core::{AuditRecord, Decision, Hold, Plan, Promotion, PromotionRecord, Result, State, StateStore};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Shared;

/// How many audit records the board keeps for its trail.
pub(crate) const RECENT_AUDIT: usize = 200;

/// One environment: what is live, since when, what is on its way in.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EnvironmentView {
    pub(crate) stage: String,
    /// For an ephemeral environment: the branch this instance of it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) branch: Option<String>,
    pub(crate) ephemeral: bool,
    pub(crate) live: Option<CommitView>,
    pub(crate) in_flight: Option<CommitView>,
    pub(crate) hold: Option<Hold>,
}

/// A commit in an environment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CommitView {
    pub(crate) sha: String,
    /// Its promotion's state, as a phrase (`live in staging`).
    pub(crate) state: String,
    /// Since when it is live here, or since when it is on its way.
    pub(crate) since: Option<DateTime<Utc>>,
}

/// A promotion, as listed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PromotionView {
    pub(crate) sha: String,
    pub(crate) origin: atlas_promote_core::Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) branch: Option<String>,
    pub(crate) authors: Vec<String>,
    /// Arrival order: higher is newer.
    pub(crate) seq: u64,
    pub(crate) stage: String,
    /// The state as a phrase (`live in dev`, `deploying to staging (attempt 1)`).
    pub(crate) state: String,
    pub(crate) active: bool,
    /// The state as data.
    pub(crate) detail: State,
}

impl PromotionView {
    pub(crate) fn of(promotion: &Promotion) -> Self {
        let c = &promotion.candidate;
        Self {
            sha: c.sha.clone(),
            origin: c.origin,
            branch: c.branch.clone(),
            authors: c.authors.clone(),
            seq: promotion.seq,
            stage: promotion.state.stage().to_owned(),
            state: promotion.state.to_string(),
            active: !promotion.state.is_ended(),
            detail: promotion.state.clone(),
        }
    }
}

/// A promotion with the road ahead and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PromotionDetail {
    #[serde(flatten)]
    pub(crate) promotion: PromotionView,
    /// The live decision of the gate it waits on, if it waits on one.
    pub(crate) decision: Option<Decision>,
    /// When the engine looks at it again at the latest (a wait's end).
    pub(crate) next_wake: Option<DateTime<Utc>>,
    pub(crate) plan: Option<Plan>,
    /// Why the plan could not be made (a backend did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plan_error: Option<String>,
    /// Every audit record about this commit, oldest first.
    pub(crate) timeline: Vec<AuditRecord>,
}

/// The audit log as the server has read it so far: the recent records, and
/// when each commit last went live in each environment.
#[derive(Debug, Default)]
pub(crate) struct AuditCache {
    seen: u64,
    recent: VecDeque<AuditRecord>,
    /// (stage, sha) → when its deploy there last succeeded.
    deployed: HashMap<(String, String), DateTime<Utc>>,
}

impl AuditCache {
    /// Read what was appended since the last call.
    async fn refresh(&mut self, store: &dyn StateStore) -> Result<()> {
        for record in store.audit(self.seen).await? {
            self.seen = self.seen.max(record.seq);
            let entry = &record.entry;
            if entry.action == "deploy.succeeded"
                && let Some(stage) = entry.message.strip_prefix(&format!("{} deployed to ", entry.subject))
            {
                self.deployed.insert((stage.to_owned(), entry.subject.clone()), entry.at);
            }
            if self.recent.len() == RECENT_AUDIT {
                self.recent.pop_front();
            }
            self.recent.push_back(record);
        }
        Ok(())
    }
}

/// Every environment of the policy, in stage order; an ephemeral one once
/// per branch that has used it.
pub(crate) async fn environments(shared: &Shared) -> Result<Vec<EnvironmentView>> {
    let store = &*shared.store;
    let policy = shared.promoter.policy();
    let deployed = {
        let mut cache = shared.audit.lock().await;
        cache.refresh(store).await?;
        cache.deployed.clone()
    };
    let mut stored: HashMap<String, EnvironmentRecord> = HashMap::new();
    for doc in store.list("environment/").await? {
        if let Ok(record) = records::decode::<EnvironmentRecord>(doc) {
            stored.insert(record.key, record.value);
        }
    }
    let mut views = Vec::new();
    for stage in policy.stages.iter().filter(|s| s.is_environment()) {
        let hold = shared.promoter.held(&stage.name).await?;
        let own = format!("environment/{}", stage.name);
        let mut instances: Vec<(Option<String>, EnvironmentRecord)> = Vec::new();
        if stage.ephemeral {
            let prefix = format!("{own}/");
            let mut branches: Vec<_> = stored.iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
            branches.sort_by(|a, b| a.0.cmp(b.0));
            for (key, record) in branches {
                instances.push((Some(key[prefix.len()..].to_owned()), record.clone()));
            }
        }
        if instances.is_empty() || stored.contains_key(&own) {
            instances.insert(0, (None, stored.get(&own).cloned().unwrap_or_default()));
        }
        for (branch, record) in instances {
            let live = match &record.live {
                Some(key) => {
                    let promotion = load(store, key).await?;
                    let sha = record.live_sha.clone().or_else(|| promotion.as_ref().map(|p| p.candidate.sha.clone()));
                    sha.map(|sha| CommitView {
                        since: live_since(promotion.as_ref(), &stage.name)
                            .or_else(|| deployed.get(&(stage.name.clone(), sha.clone())).copied()),
                        state: promotion.as_ref().map_or_else(String::new, |p| p.state.to_string()),
                        sha,
                    })
                }
                None => None,
            };
            let in_flight = match &record.in_flight {
                Some(key) => load(store, key).await?.map(|p| CommitView {
                    since: on_its_way_since(&p.state),
                    state: p.state.to_string(),
                    sha: p.candidate.sha,
                }),
                None => None,
            };
            views.push(EnvironmentView {
                stage: stage.name.clone(),
                branch,
                ephemeral: stage.ephemeral,
                live,
                in_flight,
                hold: hold.clone(),
            });
        }
    }
    Ok(views)
}

async fn load(store: &dyn StateStore, key: &str) -> Result<Option<Promotion>> {
    match store.get(key).await? {
        Some(doc) => Ok(records::decode::<PromotionRecord>(doc).ok().map(|r| r.value.promotion)),
        None => Ok(None),
    }
}

fn live_since(promotion: Option<&Promotion>, stage: &str) -> Option<DateTime<Utc>> {
    match &promotion?.state {
        State::Live { stage: s, deployed_at, .. } if s == stage => Some(*deployed_at),
        _ => None,
    }
}

fn on_its_way_since(state: &State) -> Option<DateTime<Utc>> {
    match state {
        State::Deploying { since, .. } => Some(*since),
        State::Flushing { deployed_at, .. } => Some(*deployed_at),
        _ => None,
    }
}

/// The promotions, newest first; only the active ones unless `all`.
pub(crate) async fn promotions(shared: &Shared, all: bool) -> Result<Vec<PromotionView>> {
    let mut list: Vec<PromotionView> =
        shared.promoter.all().await?.iter().filter(|p| all || !p.state.is_ended()).map(PromotionView::of).collect();
    list.sort_by_key(|p| std::cmp::Reverse(p.seq));
    Ok(list)
}

/// One promotion with its live decision, plan and timeline.
pub(crate) async fn promotion(shared: &Shared, sha: &str) -> Result<PromotionDetail> {
    let record = shared.promoter.promotion(sha).await?;
    let view = PromotionView::of(&record.value.promotion);
    let (plan, plan_error) = match shared.promoter.plan(&view.sha).await {
        Ok(plan) => (Some(plan), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let decision = plan.as_ref().and_then(|p| p.steps.first()).and_then(|s| s.decision.clone());
    let next_wake = decision.as_ref().and_then(Decision::until);
    let timeline = shared.store.audit(0).await?.into_iter().filter(|r| r.entry.subject == view.sha).collect();
    Ok(PromotionDetail { promotion: view, decision, next_wake, plan, plan_error, timeline })
}

/// An active candidate with the road ahead, for the board.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CandidateView {
    #[serde(flatten)]
    pub(crate) promotion: PromotionView,
    pub(crate) decision: Option<Decision>,
    pub(crate) next_wake: Option<DateTime<Utc>>,
    pub(crate) plan: Option<Plan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plan_error: Option<String>,
}

/// Every active candidate, newest first, each with its plan and live decision.
pub(crate) async fn candidates(shared: &Shared) -> Result<Vec<CandidateView>> {
    let mut out = Vec::new();
    for promotion in promotions(shared, false).await? {
        let (plan, plan_error) = match shared.promoter.plan(&promotion.sha).await {
            Ok(plan) => (Some(plan), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let decision = plan.as_ref().and_then(|p| p.steps.first()).and_then(|s| s.decision.clone());
        let next_wake = decision.as_ref().and_then(Decision::until);
        out.push(CandidateView { promotion, decision, next_wake, plan, plan_error });
    }
    Ok(out)
}

/// The latest `n` audit records, oldest first.
pub(crate) async fn recent_audit(shared: &Shared, n: usize) -> Result<Vec<AuditRecord>> {
    let mut cache = shared.audit.lock().await;
    cache.refresh(&*shared.store).await?;
    let skip = cache.recent.len().saturating_sub(n);
    Ok(cache.recent.iter().skip(skip).cloned().collect())
}

/// The holds on the policy's environments, in stage order.
pub(crate) async fn holds(shared: &Shared) -> Result<Vec<(String, Hold)>> {
    let mut holds = Vec::new();
    for stage in shared.promoter.policy().stages.iter().filter(|s| s.is_environment()) {
        if let Some(hold) = shared.promoter.held(&stage.name).await? {
            holds.push((stage.name.clone(), hold));
        }
    }
    Ok(holds)
}
