//! What people (and webhooks) tell the engine: merges, branch builds,
//! approvals, holds, overrides, rollbacks and retries.

use chrono::{DateTime, Utc};

use crate::audit::AuditEntry;
use crate::backend::Write;
use crate::decision::Blocker;
use crate::error::{Error, Result};
use crate::evidence::{ApprovalDecision, ApprovalRecord, Candidate, Origin};
use crate::machine::{Action, Event, Promotion, State};

use super::records::{self, EnvironmentRecord, Hold, PromotionRecord, Versioned};
use super::{ApprovalOutcome, DecisionReads, Extra, Promoter, Tick, audit_entries};

/// `decision` as a noun, with its article and without.
fn noun(decision: ApprovalDecision) -> (&'static str, &'static str) {
    match decision {
        ApprovalDecision::Approve => ("an approval", "approval"),
        ApprovalDecision::Reject => ("a rejection", "rejection"),
        ApprovalDecision::Withdraw => ("a withdrawal", "withdrawal"),
    }
}

impl Promoter {
    fn new_record(&self, promotion: Promotion, target: Option<String>, now: DateTime<Utc>) -> PromotionRecord {
        PromotionRecord { promotion, target, owner: self.id.clone(), owned_at: now }
    }

    async fn next_seq(&self) -> Result<Versioned<u64>> {
        self.decoded.get_or_default(&*self.store, "meta/seq").await.map(|mut v: Versioned<u64>| {
            v.value += 1;
            v
        })
    }

    /// The promotion of this trunk commit (or, failing that, of a branch build of it).
    pub async fn promotion(&self, sha: &str) -> Result<Versioned<PromotionRecord>> {
        if let Some(record) = self.decoded.get(&*self.store, &format!("promotion/trunk/{sha}")).await? {
            return Ok(record);
        }
        self.promotions()
            .await?
            .into_iter()
            .rev()
            .find(|r| r.value.promotion.candidate.sha == sha)
            .ok_or_else(|| Error::NotFound { backend: "engine".into(), what: format!("candidate {sha}") })
    }

    /// Every promotion the engine knows, oldest first.
    pub async fn all(&self) -> Result<Vec<Promotion>> {
        let mut all: Vec<Promotion> = self.promotions().await?.into_iter().map(|r| r.value.promotion).collect();
        all.sort_by_key(|p| p.seq);
        Ok(all)
    }

    async fn create(
        &self,
        promotion: Promotion,
        target: Option<String>,
        message: String,
        more: Vec<AuditEntry>,
    ) -> Result<()> {
        let now = self.clock.now();
        let key = records::promotion_key(&promotion.candidate);
        let seq = self.next_seq().await?;
        let promotion = Promotion { seq: seq.value, ..promotion };
        let record = Versioned { key, version: None, value: self.new_record(promotion, target, now) };
        let audit = AuditEntry {
            at: now,
            actor: "engine".into(),
            action: "candidate.registered".into(),
            subject: record.value.promotion.candidate.sha.clone(),
            message,
        };
        let mut writes = vec![record.write()?, seq.write()?];
        if self.store.get(records::ACTIVE_INDEX).await?.is_none() {
            // The first candidate with the index: mark every promotion still active.
            for other in self.promotions().await? {
                if !other.value.promotion.state.is_ended() {
                    writes.extend(self.index_write(&other.key, true).await?);
                }
            }
            let flag = serde_json::Value::Bool(true);
            writes.push(Write::Put { key: records::ACTIVE_INDEX.into(), expected: None, value: flag });
        }
        if !record.value.promotion.state.is_ended() {
            // A candidate registered already superseded (a late merge notice) is not active.
            writes.extend(self.index_write(&record.key, true).await?);
        }
        let mut entries = vec![audit];
        entries.extend(more);
        self.store.commit(writes, entries).await.map(|_| ())
    }

    /// The newest trunk candidate still on its way (merged, deploying or
    /// live somewhere, or failed) whose commit is built on `sha`, if any;
    /// else a commit built on `sha` that runs in an environment.
    ///
    /// Arrival order is what makes a candidate newer, so a merge notice
    /// that arrives late (webhooks are retried and reordered) would make an
    /// older commit overtake the newer ones: supersede them in trunk and be
    /// deployed over them. Whether `sha` is an ancestor comes from source
    /// control (a complete list of changes from `sha` to the other commit);
    /// when it cannot tell, the candidate is taken as it comes.
    async fn newer_built_on(&self, sha: &str) -> Result<Option<String>> {
        let mut known = self.active_promotions().await?;
        known.sort_by_key(|r| std::cmp::Reverse(r.value.promotion.seq));
        for record in known {
            let promotion = &record.value.promotion;
            let on_its_way = !promotion.state.is_ended() && !matches!(promotion.state, State::UnderReview { .. });
            if promotion.candidate.origin != Origin::Trunk || !on_its_way || promotion.candidate.sha == sha {
                continue;
            }
            if self.built_on(sha, &promotion.candidate.sha).await? {
                return Ok(Some(promotion.candidate.sha.clone()));
            }
        }
        // A newer commit may run in an environment although its promotion
        // ended there (abandoned after its flush failed, say).
        let trunk = Candidate::trunk(sha, Vec::<String>::new());
        for stage in self.policy.stages.iter().filter(|s| s.is_environment() && !s.ephemeral) {
            let key = records::environment_key(&stage.name, &trunk);
            let Some(env) = self.decoded.get::<EnvironmentRecord>(&*self.store, &key).await? else { continue };
            if let Some(live) = env.value.live_sha.filter(|live| live != sha)
                && self.built_on(sha, &live).await?
            {
                return Ok(Some(live));
            }
        }
        Ok(None)
    }

    /// Whether commit `head` is built on commit `base`: source control lists
    /// the changes from `base` to `head` completely. `false` when it cannot
    /// tell (a truncated comparison, an unknown commit).
    async fn built_on(&self, base: &str, head: &str) -> Result<bool> {
        match self.source_control.changed_files(base, head).await {
            Ok(changed) => Ok(changed.complete),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A pull request (or branch) is up for review: the engine reports its
    /// review → trunk decision until it is merged.
    pub async fn open_review(&self, candidate: Candidate) -> Result<()> {
        let now = self.clock.now();
        let message = format!("{} is up for review", candidate.sha);
        self.create(Promotion::under_review(&self.policy, candidate, 0, now), None, message, Vec::new()).await
    }

    /// `candidate` was merged to trunk at `at`: it starts its way to the environments.
    pub async fn merged(&self, candidate: Candidate, at: DateTime<Utc>) -> Result<()> {
        let now = self.clock.now();
        let key = records::promotion_key(&candidate);
        if let Some(doc) = self.store.get(&key).await? {
            let mut record: Versioned<PromotionRecord> = records::decode(doc)?;
            if matches!(record.value.promotion.state, State::UnderReview { .. }) {
                let mut actions = record.value.promotion.apply(Event::Merged { at }, &self.policy, now)?;
                actions.extend(self.supersede_if_late(&mut record.value.promotion, now).await?);
                record.value.owner = self.id.clone();
                record.value.owned_at = now;
                let mut writes = vec![record.write()?];
                if record.value.promotion.state.is_ended() {
                    writes.extend(self.index_write(&record.key, false).await?);
                }
                self.store.commit(writes, audit_entries(actions)).await?;
            }
            // Already merged: a repeated notice changes nothing.
            return Ok(());
        }
        let message = format!("{} merged to trunk by {}", candidate.sha, candidate.authors.join(", "));
        let mut promotion = Promotion::merged(&self.policy, Candidate { origin: Origin::Trunk, ..candidate }, 0, at);
        let more = audit_entries(self.supersede_if_late(&mut promotion, now).await?);
        self.create(promotion, None, message, more).await
    }

    /// A merge notice came late if a newer commit built on this one is
    /// already on its way: the promotion, just merged, is superseded by it.
    async fn supersede_if_late(&self, promotion: &mut Promotion, now: DateTime<Utc>) -> Result<Vec<Action>> {
        let Some(newer) = self.newer_built_on(&promotion.candidate.sha).await? else { return Ok(Vec::new()) };
        let reason = format!("the merge notice came late: {newer}, built on it, is already on its way");
        Ok(promotion.apply(Event::Superseded { by: newer, reason }, &self.policy, now)?)
    }

    /// Deploy a branch build to the ephemeral environment `stage` (the
    /// seed's ephemeral test image). It never goes further; a newer build of
    /// the same branch replaces it there.
    pub async fn deploy_branch(&self, candidate: Candidate, stage: &str) -> Result<()> {
        let target = self.policy.stage(stage).ok_or_else(|| Error::Invalid {
            what: "stage".into(),
            message: format!("the policy has no stage {stage}"),
        })?;
        if !target.ephemeral {
            return Err(Error::Refused {
                reason: format!("{stage} is not an ephemeral environment; branch builds only go to ephemeral ones"),
            });
        }
        if candidate.origin != Origin::Branch || candidate.branch.is_none() {
            return Err(Error::Invalid {
                what: "candidate".into(),
                message: "a branch build needs origin = branch and the branch's name".into(),
            });
        }
        let now = self.clock.now();
        let message = format!(
            "{} of branch {} asked for {stage}",
            candidate.sha,
            candidate.branch.as_deref().unwrap_or_default()
        );
        let promotion = Promotion::under_review(&self.policy, candidate, 0, now);
        self.create(promotion, Some(stage.to_owned()), message, Vec::new()).await
    }

    /// `person` approves, rejects or withdraws the promotion of `sha` into
    /// `stage`. Recorded with the audit entry in one commit, so neither is
    /// lost, and says whether it counts toward the stage's approval rule
    /// (not when `person` holds none of its roles).
    ///
    /// Refused ([`Error::Refused`], saying why) when it could never count:
    /// `stage` has no approval rule, the engine does not know `sha`, the
    /// candidate will not enter `stage` again (it is past it, has ended, or
    /// its road does not go there), or it is a self-approval the policy
    /// forbids. Refusals about a known candidate are audited.
    pub async fn approve(
        &self,
        person: &str,
        stage: &str,
        sha: &str,
        decision: ApprovalDecision,
    ) -> Result<ApprovalOutcome> {
        let now = self.clock.now();
        let target = self.policy.stage(stage).ok_or_else(|| Error::Invalid {
            what: format!("the {decision} of {sha}"),
            message: format!("policy {} has no stage {stage}", self.policy.name),
        })?;
        let Some(rule) = target.approvals.as_ref() else {
            return Err(Error::Refused {
                reason: format!(
                    "stage {stage} of policy {} has no approval rule, so no {} into it can count",
                    self.policy.name,
                    noun(decision).1
                ),
            });
        };
        let record = match self.promotion(sha).await {
            Ok(record) => record,
            Err(Error::NotFound { .. }) => {
                return Err(Error::Refused {
                    reason: format!(
                        "atlas-promote does not know commit {sha}: approvals count only for a candidate it promotes"
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        if let Some(reason) = self.never_enters(&record.value, target) {
            let reason = format!("{} of {sha} into {stage} can never count: {reason}", noun(decision).0);
            self.audit(person, "approval.refused", sha, reason.clone()).await?;
            return Err(Error::Refused { reason });
        }
        let promotion = record.value.promotion;
        let roles = self.directory.roles(person).await?;
        let record =
            ApprovalRecord { approver: person.into(), roles, stage: stage.into(), sha: sha.into(), decision, at: now };
        if rule.forbid_self_approval && decision == ApprovalDecision::Approve && promotion.candidate.is_author(person) {
            let reason = format!(
                "{person} authored {sha}; the policy forbids self-approval into {stage}, so another person must approve"
            );
            self.audit(person, "approval.refused", sha, reason.clone()).await?;
            return Err(Error::Refused { reason });
        }
        let not_counting = (!record.roles.iter().any(|r| rule.require.contains_key(r))).then(|| {
            let needed: Vec<&str> = rule.require.keys().map(String::as_str).collect();
            let held = match record.roles.as_slice() {
                [] => "no role".to_owned(),
                held => held.join(", "),
            };
            format!(
                "{person} holds none of the roles {} into {stage} counts for ({}); they hold {held}",
                noun(decision).0,
                needed.join(", ")
            )
        });
        let mut message = format!("{person} ({}) {decision}s {sha} into {stage}", record.roles.join(", "));
        if let Some(why) = &not_counting {
            message.push_str(&format!("; it does not count: {why}"));
        }
        let entry = AuditEntry {
            at: now,
            actor: person.into(),
            action: format!("approval.{decision}"),
            subject: sha.into(),
            message,
        };
        super::StoreApprovals::sharing(self.store.clone(), self.decoded.clone()).record(&record, entry).await?;
        Ok(match not_counting {
            None => ApprovalOutcome::Counted { record },
            Some(reason) => ApprovalOutcome::RecordedNotCounting { record, reason },
        })
    }

    /// Why the candidate of `record` will never (again) enter `stage`, if
    /// it will not: so an approval into `stage` can never count for it.
    ///
    /// A candidate may still enter the stages ahead of where it is and, when
    /// its deploy failed there, the stage it failed in (a retry enters it
    /// again). A trunk commit goes through the environments that are not
    /// ephemeral; a branch build only to the ephemeral one it was asked for.
    fn never_enters(&self, record: &PromotionRecord, stage: &crate::policy::Stage) -> Option<String> {
        let promotion = &record.promotion;
        let state = &promotion.state;
        if state.is_ended() {
            return Some(format!("it is {state}; nothing moves it on any more"));
        }
        match promotion.candidate.origin {
            Origin::Branch => {
                let asked = record.target.as_deref().unwrap_or_default();
                if stage.name != asked {
                    return Some(format!("a branch build only goes to {asked}"));
                }
            }
            Origin::Trunk if stage.ephemeral => {
                return Some(format!("{} is an environment for branch builds only", stage.name));
            }
            Origin::Trunk => {}
        }
        let here = self.policy.stage_index(state.stage())?;
        let into = self.policy.stage_index(&stage.name)?;
        let retried_into = matches!(state, State::Failed { stage: s, .. } if *s == stage.name);
        let ahead = into > here || retried_into;
        // A pull request under review has not entered trunk yet.
        (!ahead).then(|| format!("it is {state}, past the gate into {}", stage.name))
    }

    async fn audit(&self, actor: &str, action: &str, subject: &str, message: String) -> Result<()> {
        let entry = AuditEntry {
            at: self.clock.now(),
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            message,
        };
        self.store.commit(Vec::new(), vec![entry]).await.map(|_| ())
    }

    /// The hold on `stage`, if the line is stopped there.
    pub async fn held(&self, stage: &str) -> Result<Option<Hold>> {
        Ok(self.decoded.get::<Option<Hold>>(&*self.store, &records::hold_key(stage)).await?.and_then(|h| h.value))
    }

    /// Stop the line: nothing is promoted into `stage` until [`release`](Self::release).
    pub async fn hold(&self, stage: &str, by: &str, reason: &str) -> Result<()> {
        self.set_hold(stage, by, Some(reason)).await
    }

    /// Lift the hold on `stage`, then reconcile at once: a candidate the
    /// hold blocked moves on in the returned tick (a blocked decision names
    /// no wake-up, so nothing else would wake it).
    pub async fn release(&self, stage: &str, by: &str) -> Result<Tick> {
        self.set_hold(stage, by, None).await?;
        self.tick().await
    }

    async fn set_hold(&self, stage: &str, by: &str, reason: Option<&str>) -> Result<()> {
        if self.policy.stage(stage).is_none_or(|s| !s.is_environment()) {
            return Err(Error::Invalid {
                what: "stage".into(),
                message: format!("{stage} is not an environment of the policy"),
            });
        }
        let now = self.clock.now();
        let key = records::hold_key(stage);
        let mut hold: Versioned<Option<Hold>> = self.decoded.get_or_default(&*self.store, &key).await?;
        hold.value = reason.map(|r| Hold { by: by.into(), reason: r.into(), at: now });
        let (action, message) = match reason {
            Some(r) => ("hold", format!("{by} stopped the line into {stage}: {r}")),
            None => ("release", format!("{by} released {stage}")),
        };
        let entry = AuditEntry { at: now, actor: by.into(), action: action.into(), subject: stage.into(), message };
        self.store.commit(vec![hold.write()?], vec![entry]).await.map(|_| ())
    }

    /// Override the gate out of the candidate's current stage, bypassing the
    /// named blocker kinds, with a reason. Allowed only to people holding a
    /// role the policy's `overrides` names; a refusal is audited too.
    pub async fn override_gate(&self, sha: &str, by: &str, bypass: &[&str], reason: &str) -> Result<Tick> {
        let now = self.clock.now();
        let record = self.promotion(sha).await?;
        let Some(target) = self.target(&record.value) else {
            return Err(Error::Refused { reason: format!("{sha} is not waiting on a gate") });
        };
        let gate = self.policy.gate(record.value.promotion.state.stage(), &target.name)?;
        let reads = self.decision_reads(target, sha).await?;
        let evidence = self.gather(&record.value, gate.from(), gate.to()).await?;
        let decision = gate.evaluate(&evidence, now);
        let to = target.name.clone();
        if let Some(hold) = reads.hold() {
            // A hold stops the line into `to`, overrides included: release it first.
            let reason = format!("{to} is held by {}: {}; release it first", hold.by, hold.reason);
            self.audit(by, "override.refused", sha, reason.clone()).await?;
            return Err(Error::Refused { reason });
        }
        let roles = self.directory.roles(by).await?;
        let env_key = records::environment_key(&to, &record.value.promotion.candidate);
        let mut env: Versioned<EnvironmentRecord> = self.decoded.get_or_default(&*self.store, &env_key).await?;
        if env.value.in_flight.as_ref().is_some_and(|k| *k != record.key) {
            return Err(Error::Refused { reason: format!("a deploy into {to} is in flight; try again when it ends") });
        }
        let flush_required = self.flush_reason(target, &env.value, sha).await?.is_some();
        let event = Event::OverrideGranted {
            decision,
            by: by.into(),
            roles,
            bypass: bypass.iter().map(|s| s.to_string()).collect(),
            reason: reason.into(),
            flush_required,
        };
        let mut tick = Tick::new(now);
        let mut trial = record.value.promotion.clone();
        if let Err(e) = trial.apply(event.clone(), &self.policy, now) {
            self.audit(by, "override.refused", sha, e.to_string()).await?;
            return Err(Error::Refused { reason: e.reason });
        }
        env.value.in_flight = Some(record.key.clone());
        let mut writes = vec![env.write()?];
        writes.extend(reads.writes()?);
        let record = self.transition(record, event, now, Extra::writes(writes), &mut tick).await?;
        self.start_run(record, now, &mut tick).await?;
        Ok(tick)
    }

    /// Roll `stage` back to its previous live commit. An ephemeral
    /// environment exists once per branch: name it with
    /// [`rollback_branch`](Self::rollback_branch).
    pub async fn rollback(&self, stage: &str, by: &str, reason: &str) -> Result<Tick> {
        self.rollback_in(stage, None, by, reason).await
    }

    /// Roll the ephemeral environment `stage` of `branch` back to that
    /// branch's previous build there.
    pub async fn rollback_branch(&self, stage: &str, branch: &str, by: &str, reason: &str) -> Result<Tick> {
        self.rollback_in(stage, Some(branch), by, reason).await
    }

    async fn rollback_in(&self, stage: &str, branch: Option<&str>, by: &str, reason: &str) -> Result<Tick> {
        let now = self.clock.now();
        let target = self.policy.stage(stage).filter(|s| s.is_environment()).ok_or_else(|| Error::Invalid {
            what: "rollback".into(),
            message: format!("{stage} is not an environment of policy {}", self.policy.name),
        })?;
        // The environment's document is found as everywhere else: from a candidate of its line.
        let line = match (target.ephemeral, branch) {
            (true, Some(branch)) => Candidate::branch("", branch, Vec::<String>::new()),
            (true, None) => {
                return Err(Error::Refused {
                    reason: format!("{stage} exists once per branch: name the branch to roll back"),
                });
            }
            (false, Some(_)) => {
                return Err(Error::Refused {
                    reason: format!("{stage} is not per branch: roll it back without naming a branch"),
                });
            }
            (false, None) => Candidate::trunk("", Vec::<String>::new()),
        };
        let mut tick = Tick::new(now);
        let env_key = records::environment_key(stage, &line);
        self.roll_back_inner(stage, &env_key, by, reason, now, &mut tick).await?;
        Ok(tick)
    }

    /// Roll back the environment `stage` whose document is at `env_key`
    /// ([`records::environment_key`]).
    pub(super) async fn roll_back_inner(
        &self,
        stage: &str,
        env_key: &str,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<()> {
        let mut env: Versioned<EnvironmentRecord> = self.decoded.get_or_default(&*self.store, env_key).await?;
        if env.value.in_flight.is_some() {
            return Err(Error::Refused {
                reason: format!("a deploy into {stage} is in flight; roll back when it ends"),
            });
        }
        let (Some(live_key), Some(previous_key)) = (env.value.live.clone(), env.value.previous.last().cloned()) else {
            return Err(Error::Refused { reason: format!("{stage} has no earlier live commit to roll back to") });
        };
        let load = |key: String| async move {
            self.decoded
                .get::<PromotionRecord>(&*self.store, &key)
                .await?
                .ok_or_else(|| Error::NotFound { backend: "engine".into(), what: format!("promotion {key}") })
        };
        let mut live = load(live_key).await?;
        let previous = load(previous_key).await?;
        let rollback = Event::RollbackRequested { stage: stage.into(), by: by.into(), reason: reason.into() };
        let audit = audit_entries(live.value.promotion.apply(rollback, &self.policy, now)?);
        // DESIGN §3: a flush follows any deploy that changes pipeline code, a rollback's too.
        let restored = previous.value.promotion.candidate.sha.clone();
        let flush = match self.policy.stage(stage) {
            Some(target) => self.rollback_flush_reason(target, &env.value, &restored).await?,
            None => None,
        };
        env.value.previous.pop();
        env.value.in_flight = Some(previous.key.clone());
        // The rolled-back candidate's new state is committed with the redeploy, all at once.
        let mut extra = Extra {
            writes: vec![live.write()?, env.write()?],
            audit,
            ended: vec![live.key.clone()],
            ..Extra::default()
        };
        if let Some(why) = &flush {
            extra.then.push(AuditEntry {
                at: now,
                actor: "engine".into(),
                action: "flush.required".into(),
                subject: restored.clone(),
                message: format!("a flush run will follow the redeploy of {restored} to {stage}: {why}"),
            });
        }
        let redeploy = Event::Redeploy {
            stage: stage.into(),
            reason: format!("rollback by {by}: {reason}"),
            flush_required: flush.is_some(),
        };
        let record = self.transition(previous, redeploy, now, extra, tick).await?;
        self.start_run(record, now, tick).await
    }

    /// Give up the candidate `sha`, whose deploy or flush failed: it ends
    /// where it failed (audited, with `by` and `reason`) and leaves the
    /// active set. Refused, saying why, for a candidate that has not failed.
    pub async fn abandon(&self, sha: &str, by: &str, reason: &str) -> Result<()> {
        let now = self.clock.now();
        let record = self.promotion(sha).await?;
        if !matches!(record.value.promotion.state, State::Failed { .. }) {
            return Err(Error::Refused {
                reason: format!(
                    "{sha} is {}: only a candidate whose deploy failed is abandoned (one that waits ends when a newer one supersedes it)",
                    record.value.promotion.state
                ),
            });
        }
        let mut tick = Tick::new(now);
        let event = Event::Abandoned { by: by.into(), reason: reason.trim().into() };
        match self.transition(record, event, now, Extra::default(), &mut tick).await {
            Ok(record) => {
                self.decoded.keep_record(record);
                Ok(())
            }
            Err(Error::Transition(e)) => Err(Error::Refused { reason: e.reason }),
            Err(e) => Err(e),
        }
    }

    /// Retry the failed deploy of `sha` into `stage`.
    pub async fn retry(&self, sha: &str, stage: &str, by: &str) -> Result<Tick> {
        let now = self.clock.now();
        let mut tick = Tick::new(now);
        let record = self.promotion(sha).await?;
        let state = &record.value.promotion.state;
        if !matches!(state, State::Failed { stage: s, .. } if s == stage) {
            // Also a failed candidate a newer one superseded, or an operator abandoned.
            return Err(Error::Refused {
                reason: format!("{sha} is {state}: only a deploy that failed in {stage} is retried there"),
            });
        }
        let reads = match self.policy.stage(stage) {
            Some(target) => Some(self.decision_reads(target, sha).await?),
            None => None,
        };
        let env_key = records::environment_key(stage, &record.value.promotion.candidate);
        let mut env: Versioned<EnvironmentRecord> = self.decoded.get_or_default(&*self.store, &env_key).await?;
        if let Some(reason) = self.retry_blocked(&record.value, stage, reads.as_ref(), &env.value, now).await? {
            self.audit(by, "retry.refused", sha, reason.clone()).await?;
            return Err(Error::Refused { reason });
        }
        if env.value.in_flight.as_ref().is_some_and(|k| *k != record.key) {
            return Err(Error::Refused { reason: format!("a deploy into {stage} is in flight; retry when it ends") });
        }
        env.value.in_flight = Some(record.key.clone());
        let event = Event::RetryRequested { stage: stage.into(), by: by.into() };
        let mut writes = vec![env.write()?];
        if let Some(reads) = &reads {
            writes.extend(reads.writes()?);
        }
        let record = self.transition(record, event, now, Extra::writes(writes), &mut tick).await?;
        self.start_run(record, now, &mut tick).await?;
        Ok(tick)
    }

    /// Why a retry of the failed deploy of `record` into `stage` may not go
    /// ahead now, if it may not.
    ///
    /// A retry enters `stage` again, so the rules of `stage` itself must
    /// still hold at this instant: it is not held, no newer commit built on
    /// this one went live there meanwhile, and its gate shows no
    /// origin, approval (a rejection, a withdrawal, an expired approval, an
    /// approver who lost the role), window or freeze blocker. The
    /// candidate's readiness in the stage it came from was established by
    /// the decision that let the failed attempt in, and is not asked again.
    async fn retry_blocked(
        &self,
        record: &PromotionRecord,
        stage: &str,
        reads: Option<&DecisionReads>,
        env: &EnvironmentRecord,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let promotion = &record.promotion;
        if !matches!(&promotion.state, State::Failed { stage: s, .. } if s == stage) {
            // Not a retry the machine takes: it refuses it, saying why.
            return Ok(None);
        }
        if let Some(hold) = reads.and_then(DecisionReads::hold) {
            return Ok(Some(format!("{stage} is held by {}: {}; release it first", hold.by, hold.reason)));
        }
        let sha = &promotion.candidate.sha;
        if let Some(live) = env.live_sha.as_deref().filter(|live| *live != sha)
            && self.built_on(sha, live).await?
        {
            // A newer commit went live there since: retrying would take the environment back.
            return Ok(Some(format!("{live}, built on {sha}, is live in {stage} now; a retry would go back")));
        }
        let Some(from) = self.gate_source(promotion, stage) else { return Ok(None) };
        let gate = self.policy.gate(&from.name, stage)?;
        let mut evidence = crate::evidence::Evidence::new(promotion.candidate.clone());
        if gate.to().approvals.is_some() {
            evidence.approvals = self.approval_records(stage, &promotion.candidate.sha).await?;
        }
        // No deployment in `from` is given: only the target's own rules below count.
        let decision = gate.evaluate(&evidence, now);
        let blockers: Vec<String> = decision
            .blockers
            .iter()
            .filter(|b| {
                matches!(
                    b,
                    Blocker::OriginNotAccepted { .. }
                        | Blocker::ApprovalsMissing { .. }
                        | Blocker::Rejected { .. }
                        | Blocker::WindowClosed { .. }
                        | Blocker::Blackout { .. }
                        | Blocker::Frozen { .. }
                )
            })
            .map(|b| b.to_string())
            .collect();
        Ok((!blockers.is_empty()).then(|| format!("a retry would enter {stage} now, but: {}", blockers.join("; "))))
    }
}
