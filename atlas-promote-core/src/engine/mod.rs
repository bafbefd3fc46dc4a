//! The engine: a reconcile loop that moves candidates through the policy's
//! stages (DESIGN §2, §5), in the style of kube-rs controllers.
//!
//! [`Promoter::tick`] reads the world through the backend traits, evaluates
//! each candidate's gate, **persists the new state before acting**, then acts
//! (triggers deploys and flushes, raises alerts, asks for approvals), and
//! returns when it wants to be called next ([`Tick::next_wake`]). An
//! embedding program calls `tick` on that schedule and whenever a webhook
//! arrives ([`Promoter::handle`]).

mod approvals;
mod gather;
mod operate;
mod plan;
pub mod records;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use crate::audit::AuditEntry;
use crate::backend::{
    ApprovalSource, CheckSource, CiProvider, Clock, Directory, SourceControl, StateStore, SystemClock,
};
use crate::backend::{Notice, Write};
use crate::decision::{Decision, Verdict};
use crate::error::{Error, Result};
use crate::evidence::{Candidate, Origin};
use crate::key_hash::KeySet;
use crate::machine::{Action, Event, Promotion, State};
use crate::policy::{Policy, Stage};
use crate::run::{Run, RunStatus};

pub use approvals::{ApprovalOutcome, StoreApprovals};
pub use plan::{GateReply, Plan, PlanStep};
use records::{EnvironmentRecord, PromotionRecord, Versioned};

/// Builds a [`Promoter`] from a policy and its backends.
#[derive(Debug)]
pub struct PromoterBuilder {
    policy: Policy,
    ci: Option<Arc<dyn CiProvider>>,
    checks: Option<Arc<dyn CheckSource>>,
    approvals: Vec<Arc<dyn ApprovalSource>>,
    directory: Option<Arc<dyn Directory>>,
    source_control: Option<Arc<dyn SourceControl>>,
    store: Option<Arc<dyn StateStore>>,
    clock: Arc<dyn Clock>,
    id: String,
    lease: TimeDelta,
    poll: TimeDelta,
}

impl PromoterBuilder {
    /// Start from `policy`; every backend but the clock must be set before [`build`](Self::build).
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ci: None,
            checks: None,
            approvals: Vec::new(),
            directory: None,
            source_control: None,
            store: None,
            clock: Arc::new(SystemClock),
            id: format!("engine-{}", std::process::id()),
            lease: TimeDelta::minutes(10),
            poll: TimeDelta::seconds(30),
        }
    }

    /// The CI system that runs deploys and flushes.
    pub fn with_ci(mut self, ci: Arc<dyn CiProvider>) -> Self {
        self.ci = Some(ci);
        self
    }

    /// Where recurring check results come from.
    pub fn with_checks(mut self, checks: Arc<dyn CheckSource>) -> Self {
        self.checks = Some(checks);
        self
    }

    /// An approval source besides the engine's own (native) approvals; may be called several times.
    pub fn with_approvals(mut self, approvals: Arc<dyn ApprovalSource>) -> Self {
        self.approvals.push(approvals);
        self
    }

    /// Who holds which role.
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// What changed between commits, and who wrote them.
    pub fn with_source_control(mut self, source_control: Arc<dyn SourceControl>) -> Self {
        self.source_control = Some(source_control);
        self
    }

    /// Where promotion state and the audit log live.
    pub fn with_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// This engine instance's name, recorded as the owner of the triggers it
    /// starts. Give a restarted engine the same name so it resumes its own
    /// pending triggers at once (default: `engine-<pid>`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// How long a pending trigger stays with the engine that decided it
    /// before another engine may take it over (default 10 minutes).
    pub fn with_lease(mut self, lease: TimeDelta) -> Self {
        self.lease = lease;
        self
    }

    /// How soon to look again at a run in flight (default 30 s).
    pub fn with_poll_interval(mut self, poll: TimeDelta) -> Self {
        self.poll = poll;
        self
    }

    /// The engine; fails naming the first backend that is missing.
    pub fn build(self) -> Result<Promoter> {
        let missing = |what: &str| Error::Invalid {
            what: "promoter".into(),
            message: format!("no {what} was given (PromoterBuilder::with_{what})"),
        };
        let flush_globs = self
            .policy
            .stages
            .iter()
            .filter_map(|s| s.flush.as_ref().map(|f| (s.name.clone(), compile_flush_paths(s, &f.paths))))
            .collect();
        Ok(Promoter {
            flush_globs: Arc::new(flush_globs),
            indexed: Arc::default(),
            decoded: records::Decoded::default(),
            policy: Arc::new(self.policy),
            ci: self.ci.ok_or_else(|| missing("ci"))?,
            checks: self.checks.ok_or_else(|| missing("checks"))?,
            approvals: self.approvals,
            directory: self.directory.ok_or_else(|| missing("directory"))?,
            source_control: self.source_control.ok_or_else(|| missing("source_control"))?,
            store: self.store.ok_or_else(|| missing("store"))?,
            clock: self.clock,
            id: self.id,
            lease: self.lease,
            poll: self.poll,
        })
    }
}

/// The engine: moves candidates through a policy's stages. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Promoter {
    policy: Arc<Policy>,
    ci: Arc<dyn CiProvider>,
    checks: Arc<dyn CheckSource>,
    approvals: Vec<Arc<dyn ApprovalSource>>,
    directory: Arc<dyn Directory>,
    source_control: Arc<dyn SourceControl>,
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    id: String,
    lease: TimeDelta,
    poll: TimeDelta,
    /// Each stage's flush paths, compiled once (or why they do not compile).
    flush_globs: Arc<FlushGlobs>,
    /// Whether the store was seen to keep the active index.
    indexed: Arc<std::sync::atomic::AtomicBool>,
    /// The documents decoded so far, by version.
    decoded: records::Decoded,
}

type FlushGlobs = std::collections::HashMap<String, std::result::Result<globset::GlobSet, (String, String)>>;

/// A stage's flush paths as one glob set; on failure, what failed and why.
fn compile_flush_paths(stage: &Stage, paths: &[String]) -> std::result::Result<globset::GlobSet, (String, String)> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in paths {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| (format!("flush path of stage {}", stage.name), e.to_string()))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| (format!("flush paths of stage {}", stage.name), e.to_string()))
}

/// What one [`Promoter::tick`] saw and did.
#[derive(Debug)]
pub struct Tick {
    /// The instant of the tick.
    pub at: DateTime<Utc>,
    /// When to call `tick` again at the latest (a gate opens, a run needs
    /// polling, a failed candidate is retried); `None`: only when something happens.
    pub next_wake: Option<DateTime<Utc>>,
    /// Every gate decision made, in order.
    pub decisions: Vec<Decision>,
    /// Every action performed: triggers, approval requests, alerts, rollbacks, audit entries.
    pub actions: Vec<Action>,
    /// Candidates the engine could not move this time, and why; the others moved on.
    pub failures: Vec<(String, Error)>,
    /// Keys this tick wrote (or tried to): what it read of them before is stale.
    written: KeySet<String>,
}

impl Tick {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            at,
            next_wake: None,
            decisions: Vec::new(),
            actions: Vec::new(),
            failures: Vec::new(),
            written: KeySet::default(),
        }
    }

    /// Note that `writes` are about to be committed.
    fn writing(&mut self, writes: &[Write]) {
        for write in writes {
            // Most keys are written again and again: copy each once.
            if !self.written.contains(write.key()) {
                self.written.insert(write.key().to_owned());
            }
        }
    }

    fn wake(&mut self, at: DateTime<Utc>) {
        self.next_wake = Some(self.next_wake.map_or(at, |w| w.min(at)));
    }

    /// Whether nothing happened: no transition, no action, no failure.
    pub fn is_idle(&self) -> bool {
        self.actions.is_empty() && self.failures.is_empty()
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            match action {
                Action::Audit(e) => writeln!(f, "{} {}", e.at.format("%a %Y-%m-%d %H:%M"), e.message)?,
                Action::Alert { message, .. } => writeln!(f, "ALERT {message}")?,
                Action::RequestApprovals { stage, sha, short } => {
                    let roles: Vec<String> = short.iter().map(|s| format!("{} {}", s.need - s.have, s.role)).collect();
                    writeln!(f, "approval requested for {sha} into {stage}: {}", roles.join(", "))?
                }
                _ => {}
            }
        }
        for (subject, error) in &self.failures {
            writeln!(f, "FAILED {subject}: {error}")?;
        }
        Ok(())
    }
}

/// One promotion, as the engine saw it at the start of a tick.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    sha: String,
    seq: u64,
    origin: Origin,
    branch: Option<String>,
    stage: Option<usize>,
    ended: bool,
    awaits_gate: bool,
}

/// Every promotion, as the engine saw them at the start of a tick.
#[derive(Debug, Clone)]
struct Snapshot {
    rows: Vec<Row>,
}

impl Promoter {
    /// Start building an engine for `policy`.
    pub fn builder(policy: Policy) -> PromoterBuilder {
        PromoterBuilder::new(policy)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The current time of the engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Reconcile every active candidate once.
    ///
    /// A failure with one candidate is reported in [`Tick::failures`] and
    /// does not stop the others; only a failure to read the store is an error.
    #[tracing::instrument(skip(self), fields(engine = %self.id))]
    pub async fn tick(&self) -> Result<Tick> {
        let now = self.clock.now();
        let mut tick = Tick::new(now);
        let mut records = self.active_promotions().await?;
        records.sort_by_key(|r| r.value.promotion.seq);
        let snapshot = Snapshot {
            rows: records
                .iter()
                .map(|r| {
                    let p = &r.value.promotion;
                    Row {
                        key: r.key.clone(),
                        sha: p.candidate.sha.clone(),
                        seq: p.seq,
                        origin: p.candidate.origin,
                        branch: p.candidate.branch.clone(),
                        stage: self.policy.stage_index(p.state.stage()),
                        ended: p.state.is_ended(),
                        awaits_gate: p.state.awaits_gate(),
                    }
                })
                .collect(),
        };
        for record in records {
            if record.value.promotion.state.is_ended() {
                continue;
            }
            let key = record.key.clone();
            // Read again only what this tick changed since (a candidate that went
            // live replaces the one before it); another engine's change shows as
            // a conflict when committing, as it would after a fresh read.
            let record = if tick.written.contains(&key) { None } else { Some(*record) };
            if let Err(error) = self.reconcile(&key, record, &snapshot, now, &mut tick).await {
                tracing::warn!(candidate = %key, %error, "reconcile failed");
                // Nothing else may wake the engine for this candidate: try again at the next poll.
                tick.wake(now + self.poll);
                tick.failures.push((key, error));
            }
        }
        Ok(tick)
    }

    /// Tick until nothing more happens at this instant (at most `limit` ticks); returns every tick's report.
    pub async fn run_until_idle(&self, limit: usize) -> Result<Vec<Tick>> {
        let mut ticks = Vec::new();
        for _ in 0..limit {
            let tick = self.tick().await?;
            let idle = tick.is_idle();
            ticks.push(tick);
            if idle {
                break;
            }
        }
        Ok(ticks)
    }

    /// Take a notice from a webhook into account, then reconcile.
    pub async fn handle(&self, notice: Notice) -> Result<Tick> {
        if let Notice::Merged { sha, at } = &notice {
            // Its authors are those of the commits it brings to trunk: since
            // the newest trunk commit the engine knows (all of history only
            // for the first one it sees).
            let base = self.newest_on_trunk(sha).await?;
            let authors = self.source_control.authors(base.as_deref(), sha).await?;
            let candidate =
                crate::evidence::Candidate { created_at: Some(*at), ..crate::Candidate::trunk(sha.clone(), authors) };
            self.merged(candidate, *at).await?;
        }
        self.tick().await
    }

    /// The newest trunk commit other than `sha` that is on its way or live.
    async fn newest_on_trunk(&self, sha: &str) -> Result<Option<String>> {
        Ok(self
            .active_promotions()
            .await?
            .into_iter()
            .map(|r| r.value.promotion)
            .filter(|p| p.candidate.origin == Origin::Trunk && p.candidate.sha != sha)
            .filter(|p| !matches!(p.state, State::UnderReview { .. }))
            .max_by_key(|p| p.seq)
            .map(|p| p.candidate.sha))
    }

    pub(crate) async fn promotions(&self) -> Result<Vec<Versioned<PromotionRecord>>> {
        self.store.list("promotion/").await?.into_iter().map(records::decode).collect()
    }

    /// The promotions that have not ended. With the active index, only
    /// those are read: the cost of a tick does not grow with history.
    ///
    /// Each is boxed: a list of a few records side by side is an allocation
    /// large enough to make the allocator consolidate its free lists (read
    /// each tick, that was several per cent of the engine's time).
    async fn active_promotions(&self) -> Result<Vec<Box<Versioned<PromotionRecord>>>> {
        // Once indexed, a store stays indexed: remember it rather than ask each tick.
        let indexed = self.indexed.load(std::sync::atomic::Ordering::Relaxed)
            || self.store.get(records::ACTIVE_INDEX).await?.is_some();
        if !indexed {
            // An empty store, or one written before the index: read them all.
            let all = self.promotions().await?;
            return Ok(all.into_iter().filter(|r| !r.value.promotion.state.is_ended()).map(Box::new).collect());
        }
        self.indexed.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut active = Vec::new();
        for marker in self.store.list(records::ACTIVE_PREFIX).await? {
            let Some(key) = marker.key.strip_prefix(records::ACTIVE_PREFIX) else { continue };
            if let Some(record) = self.decoded.get(&*self.store, key).await? {
                active.push(Box::new(record));
            }
        }
        Ok(active)
    }

    /// The write that keeps the active index in step when the promotion at
    /// `key` becomes active (`true`) or ends (`false`), if one is needed.
    pub(crate) async fn index_write(&self, key: &str, active: bool) -> Result<Option<Write>> {
        let marker = records::active_key(key);
        Ok(match (active, self.store.get(&marker).await?) {
            (true, None) => Some(Write::Put { key: marker, expected: None, value: serde_json::Value::Bool(true) }),
            (false, Some(doc)) => Some(Write::Delete { key: marker, expected: doc.version }),
            _ => None,
        })
    }

    async fn reconcile(
        &self,
        key: &str,
        read: Option<Versioned<PromotionRecord>>,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<()> {
        let record = match read {
            Some(record) => record,
            None => match self.decoded.get(&*self.store, key).await? {
                Some(record) => record,
                None => return Ok(()),
            },
        };
        match &record.value.promotion.state {
            State::UnderReview { .. } | State::Merged { .. } | State::Live { .. } => {
                self.advance(record, snapshot, now, tick).await
            }
            State::Deploying { run: None, .. } | State::Flushing { run: None, .. } => {
                self.start_run(record, now, tick).await
            }
            State::Deploying { run: Some(_), .. } | State::Flushing { run: Some(_), .. } => {
                self.follow_run(record, now, tick).await
            }
            State::Failed { .. } => self.end_failed_if_superseded(record, snapshot, now, tick).await,
            State::Superseded { .. } | State::Abandoned { .. } | State::RolledBack { .. } => Ok(()),
        }
    }

    /// The stage a promotion heads for next, if it moves on by itself.
    fn target(&self, record: &PromotionRecord) -> Option<&Stage> {
        let promotion = &record.promotion;
        let here = self.policy.stage_index(promotion.state.stage())?;
        match promotion.candidate.origin {
            Origin::Branch => {
                let target = record.target.as_deref()?;
                let t = self.policy.stage(target)?;
                (matches!(promotion.state, State::UnderReview { .. }) && t.ephemeral).then_some(t)
            }
            Origin::Trunk => self.policy.stages[here + 1..].iter().find(|s| !s.ephemeral),
        }
    }

    /// The stage whose gate a candidate that failed in `stage` went
    /// through: for a trunk commit the environment before it (or trunk), for
    /// a branch build the review.
    pub(crate) fn gate_source(&self, promotion: &Promotion, stage: &str) -> Option<&Stage> {
        let index = self.policy.stage_index(stage)?;
        match promotion.candidate.origin {
            Origin::Branch => self.policy.stages.iter().find(|s| s.kind == crate::policy::StageKind::Review),
            Origin::Trunk => self.policy.stages[..index].iter().rev().find(|s| !s.ephemeral),
        }
    }

    /// The newer candidate that makes this waiting (or failed) one
    /// pointless, if any: a newer commit of the same line (trunk, or the
    /// same branch) that is past the stage this one waits in, or waits on
    /// the same gate. A failed candidate waits, in that sense, at the gate
    /// it failed to pass.
    fn superseded_by<'s>(&self, key: &str, promotion: &Promotion, snapshot: &'s Snapshot) -> Option<&'s str> {
        if promotion.candidate.origin == Origin::Trunk && matches!(promotion.state, State::UnderReview { .. }) {
            // Pull requests are independent of each other.
            return None;
        }
        let here = match &promotion.state {
            State::Failed { stage, .. } => {
                self.gate_source(promotion, stage).and_then(|from| self.policy.stage_index(&from.name))
            }
            state => self.policy.stage_index(state.stage()),
        };
        snapshot
            .rows
            .iter()
            .filter(|r| {
                r.key != key
                    && !r.ended
                    && r.seq > promotion.seq
                    && r.origin == promotion.candidate.origin
                    && r.branch == promotion.candidate.branch
                    && (r.stage > here || (r.stage == here && r.awaits_gate))
            })
            .map(|r| r.sha.as_str())
            .next_back()
    }

    /// A failed candidate is never reconciled again: it ends when a newer
    /// candidate of its line reaches the gate it failed at (or passes it),
    /// superseded, saying so. Until then a retry revives it, or an operator
    /// abandons it ([`Promoter::abandon`]).
    async fn end_failed_if_superseded(
        &self,
        record: Versioned<PromotionRecord>,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<()> {
        let State::Failed { stage, .. } = &record.value.promotion.state else { return Ok(()) };
        let Some(by) = self.superseded_by(&record.key, &record.value.promotion, snapshot) else {
            self.decoded.keep_record(record);
            return Ok(());
        };
        let reason = format!(
            "{by} is newer and reached the gate into {stage} that {} failed to pass; only the newest moves on",
            record.value.promotion.candidate.sha
        );
        let event = Event::Superseded { by: by.to_owned(), reason };
        let record = self.transition(record, event, now, Extra::default(), tick).await?;
        self.decoded.keep_record(record);
        Ok(())
    }

    async fn advance(
        &self,
        mut record: Versioned<PromotionRecord>,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<()> {
        if matches!(record.value.promotion.state, State::Live { .. }) {
            let before = record.value.promotion.state.clone();
            self.monitor(&mut record, now, tick).await?;
            if record.value.promotion.state != before {
                // The monitor rolled it back; the next tick takes it from there.
                return Ok(());
            }
        }
        if let Some(by) = self.superseded_by(&record.key, &record.value.promotion, snapshot) {
            let reason = format!("{by} is newer and heads for the same stages; only the newest moves on");
            let event = Event::Superseded { by: by.to_owned(), reason };
            let record = self.transition(record, event, now, Extra::default(), tick).await?;
            self.decoded.keep_record(record);
            return Ok(());
        }
        let Some(target) = self.target(&record.value) else { return Ok(()) };
        let promotion = &record.value.promotion;
        let sha = promotion.candidate.sha.clone();
        let from = promotion.state.stage();
        let gate = self.policy.gate(from, &target.name)?;
        let reads = self.decision_reads(target, &sha).await?;
        let evidence = self.gather(&record.value, gate.from(), gate.to()).await?;
        let mut decision = gate.evaluate(&evidence, now);
        if let Some(hold) = reads.hold() {
            decision = decision.held(hold.by.clone(), hold.reason.clone(), hold.at);
        }
        tracing::debug!(sha = %sha, from = %from, to = %target.name, verdict = %decision.verdict, "gate evaluated");
        tick.decisions.push(decision.clone());
        if let Verdict::Wait { until } = decision.verdict {
            tick.wake(until);
        }
        if matches!(promotion.state, State::UnderReview { .. }) && promotion.candidate.origin == Origin::Trunk {
            // A pull request enters trunk by being merged, not by the engine.
            return Ok(());
        }
        if !decision.is_allowed() {
            let event = Event::GateDecided { decision, flush_required: false };
            let was_active = !promotion.state.is_ended();
            let actions = record.value.promotion.apply(event, &self.policy, now)?;
            // Most blocked decisions change nothing: then there is nothing to store.
            if actions.is_empty() {
                return Ok(());
            }
            let record = self.commit_transition(record, was_active, actions, now, Extra::default(), tick).await?;
            self.decoded.keep_record(record);
            return Ok(());
        }
        let env_key = records::environment_key(&target.name, &promotion.candidate);
        let mut env: Versioned<EnvironmentRecord> = self.decoded.get_or_default(&*self.store, &env_key).await?;
        if env.value.in_flight.as_ref().is_some_and(|k| *k != record.key) {
            tick.wake(now + self.poll);
            return Ok(());
        }
        let flush = self.flush_reason(target, &env.value, &sha).await?;
        env.value.in_flight = Some(record.key.clone());
        let mut extra = Extra::default();
        extra.put(env)?;
        reads.put_into(&mut extra)?;
        if let Some(why) = &flush {
            extra.then.push(AuditEntry {
                at: now,
                actor: "engine".into(),
                action: "flush.required".into(),
                subject: sha.clone(),
                message: format!("a flush run will follow the deploy of {sha} to {}: {why}", target.name),
            });
        }
        let event = Event::GateDecided { decision, flush_required: flush.is_some() };
        let record = self.transition(record, event, now, extra, tick).await?;
        self.start_run(record, now, tick).await
    }

    /// Apply `event`, commit the new state (with `extra` writes and audit
    /// entries, and those the event produced) and only then perform the
    /// non-audit actions.
    ///
    /// The record returned is not yet kept decoded: a transition is mostly
    /// followed by another (decided, started, succeeded), so whoever ends
    /// the chain keeps it ([`records::Decoded::keep_record`]), once. One
    /// not kept is read from the store again: slower, never stale.
    async fn transition(
        &self,
        mut record: Versioned<PromotionRecord>,
        event: Event,
        now: DateTime<Utc>,
        extra: Extra,
        tick: &mut Tick,
    ) -> Result<Versioned<PromotionRecord>> {
        let was_active = !record.value.promotion.state.is_ended();
        let actions = record.value.promotion.apply(event, &self.policy, now)?;
        self.commit_transition(record, was_active, actions, now, extra, tick).await
    }

    /// Commit a transition already applied to `record` (which was active
    /// before it if `was_active`) that produced `actions`, as
    /// [`transition`](Self::transition) does.
    async fn commit_transition(
        &self,
        mut record: Versioned<PromotionRecord>,
        was_active: bool,
        actions: Vec<Action>,
        now: DateTime<Utc>,
        extra: Extra,
        tick: &mut Tick,
    ) -> Result<Versioned<PromotionRecord>> {
        if record.value.owner != self.id {
            record.value.owner = self.id.clone();
        }
        record.value.owned_at = now;
        let mut writes = vec![record.write()?];
        // Where `extra`'s writes start among the commit's.
        let offset = writes.len();
        writes.extend(extra.writes);
        let is_active = !record.value.promotion.state.is_ended();
        let changed = (was_active != is_active).then_some((record.key.as_str(), is_active));
        for (key, active) in changed.into_iter().chain(extra.ended.iter().map(|k| (k.as_str(), false))) {
            writes.extend(self.index_write(key, active).await?);
        }
        let mut audit = extra.audit;
        let mut rest = Vec::new();
        for action in actions {
            match action {
                Action::Audit(entry) => audit.push(entry),
                action => rest.push(action),
            }
        }
        audit.extend(extra.then);
        for entry in &audit {
            tick.actions.push(Action::Audit(entry.clone()));
        }
        tick.writing(&writes);
        let versions = self.store.commit(writes, audit).await?;
        record.version = versions.first().copied();
        for (index, (key, value)) in extra.keep {
            if let Some(&version) = versions.get(offset + index) {
                self.decoded.keep(key, version, value);
            }
        }
        for action in rest {
            self.perform(action, &record.value.promotion.candidate, now, tick).await?;
        }
        Ok(record)
    }

    /// Perform one action whose state change is already stored.
    /// `candidate` is the one whose transition produced it (a rollback
    /// rolls back the environment of its line).
    async fn perform(&self, action: Action, candidate: &Candidate, now: DateTime<Utc>, tick: &mut Tick) -> Result<()> {
        match &action {
            // Triggers are started by `start_run`, which finds the run by its
            // key first and lists the trigger in the tick only if it started one.
            Action::Trigger(_) => return Ok(()),
            Action::RollBack { stage, reason } => {
                tick.actions.push(action.clone());
                let env_key = records::environment_key(stage, candidate);
                return Box::pin(self.roll_back_inner(stage, &env_key, "engine", reason, now, tick)).await;
            }
            _ => {}
        }
        tick.actions.push(action);
        Ok(())
    }

    /// Start the run a promotion waits for: find it by its idempotency key
    /// (it may have started before a crash), else trigger it.
    async fn start_run(&self, record: Versioned<PromotionRecord>, now: DateTime<Utc>, tick: &mut Tick) -> Result<()> {
        let Some(request) = record.value.promotion.pending_run(&self.policy) else {
            self.decoded.keep_record(record);
            return Ok(());
        };
        let mut record = record;
        let expires = record.value.owned_at + self.lease;
        if record.value.owner != self.id && now < expires {
            // Another engine decided this step and is starting it.
            tick.wake(expires);
            self.decoded.keep_record(record);
            return Ok(());
        }
        if record.value.owner != self.id || now >= expires {
            // Claim the step before starting it, also as its owner once the
            // lease is over: another engine may be taking it over at this very
            // moment. Of two claims on one version only one commits, so only
            // one engine goes on to find or trigger the run.
            record.value.owner = self.id.clone();
            record.value.owned_at = now;
            let writes = vec![record.write()?];
            tick.writing(&writes);
            let versions = self.store.commit(writes, Vec::new()).await?;
            record.version = versions.first().copied();
        }
        let run = match self.ci.find(&request.key).await? {
            Some(run) => run,
            None => {
                let span = tracing::info_span!("trigger", key = %request.key, stage = %request.stage);
                let run = self.ci.trigger(&request).instrument(span).await?;
                tick.actions.push(Action::Trigger(request.clone()));
                run
            }
        };
        let event = match request.kind {
            crate::RunKind::Deploy => Event::DeployStarted { stage: request.stage.clone(), run: run.id.clone() },
            crate::RunKind::Flush => Event::FlushStarted { stage: request.stage.clone(), run: run.id.clone() },
        };
        let record = self.transition(record, event, now, Extra::default(), tick).await?;
        self.settle(record, run, now, tick).await
    }

    async fn follow_run(&self, record: Versioned<PromotionRecord>, now: DateTime<Utc>, tick: &mut Tick) -> Result<()> {
        let run_id = match &record.value.promotion.state {
            State::Deploying { run: Some(run), .. } | State::Flushing { run: Some(run), .. } => run.clone(),
            _ => {
                self.decoded.keep_record(record);
                return Ok(());
            }
        };
        let run = self.ci.status(&run_id).await?;
        self.settle(record, run, now, tick).await
    }

    /// Feed a run's status to the promotion waiting on it.
    async fn settle(
        &self,
        record: Versioned<PromotionRecord>,
        run: Run,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<()> {
        let (stage, deploying) = match &record.value.promotion.state {
            State::Deploying { stage, .. } => (stage.clone(), true),
            State::Flushing { stage, .. } => (stage.clone(), false),
            _ => {
                self.decoded.keep_record(record);
                return Ok(());
            }
        };
        let at = run.finished_at.unwrap_or(now);
        let event = match (&run.status, deploying) {
            (RunStatus::Succeeded, true) => Event::DeploySucceeded { stage: stage.clone(), at },
            (RunStatus::Succeeded, false) => Event::FlushSucceeded { stage: stage.clone(), at },
            (RunStatus::Failed | RunStatus::Cancelled, true) => {
                Event::DeployFailed { stage: stage.clone(), reason: format!("run {} {}", run.id, run.status) }
            }
            (RunStatus::Failed | RunStatus::Cancelled, false) => {
                Event::FlushFailed { stage: stage.clone(), reason: format!("run {} {}", run.id, run.status) }
            }
            _ => {
                tick.wake(now + self.poll);
                self.decoded.keep_record(record);
                return Ok(());
            }
        };
        let env_key = records::environment_key(&stage, &record.value.promotion.candidate);
        let mut env: Versioned<EnvironmentRecord> = self.decoded.get_or_default(&*self.store, &env_key).await?;
        let was_active = !record.value.promotion.state.is_ended();
        let mut record = record;
        let actions = record.value.promotion.apply(event, &self.policy, now)?;
        let promotion = &record.value.promotion;
        let mut extra = Extra::default();
        match &promotion.state {
            State::Flushing { .. } | State::Live { .. } if deploying => {
                // The deploy succeeded: the candidate is what runs here now.
                let old = env.value.live.replace(record.key.clone());
                env.value.live_sha = Some(promotion.candidate.sha.clone());
                if let Some(old) = old.filter(|o| *o != record.key) {
                    let rollback_target;
                    (extra, rollback_target) = self.replace_live(&old, &stage, &promotion.candidate.sha, now).await?;
                    if rollback_target {
                        env.value.push_previous(old);
                    }
                }
                if matches!(promotion.state, State::Live { .. }) {
                    env.value.in_flight = None;
                }
            }
            _ => env.value.in_flight = None,
        }
        extra.put_first(env)?;
        let record = self.commit_transition(record, was_active, actions, now, extra, tick).await?;
        if matches!(record.value.promotion.state, State::Flushing { run: None, .. }) {
            return Box::pin(self.start_run(record, now, tick)).await;
        }
        if record.value.promotion.state.awaits_gate() {
            self.wake_at_next_gate(&record, now, tick).await;
        }
        self.decoded.keep_record(record);
        Ok(())
    }

    /// The run `record` waited for settled and left it waiting at its next
    /// gate (a soak begins, say): evaluate that gate without acting, so the
    /// tick names when it opens. Nothing else would wake the engine for it.
    ///
    /// The transition is already committed, so the call that made it
    /// succeeded: when the gate cannot be evaluated now, the tick lists the
    /// candidate among its failures and asks to look again at the next poll.
    async fn wake_at_next_gate(&self, record: &Versioned<PromotionRecord>, now: DateTime<Utc>, tick: &mut Tick) {
        let Some(target) = self.target(&record.value) else { return };
        let decision = async {
            let gate = self.policy.gate(record.value.promotion.state.stage(), &target.name)?;
            let evidence = self.gather(&record.value, gate.from(), gate.to()).await?;
            Ok::<_, Error>(gate.evaluate(&evidence, now))
        };
        match decision.await {
            Ok(decision) => {
                if let Verdict::Wait { until } = decision.verdict {
                    tick.wake(until);
                }
            }
            Err(error) => {
                tracing::warn!(candidate = %record.key, %error, "the next gate could not be evaluated");
                tick.wake(now + self.poll);
                tick.failures.push((record.key.clone(), error));
            }
        }
    }

    /// The promotion that was live in `stage` is replaced by `by`: it is
    /// superseded there unless it already moved on (or was rolled back).
    ///
    /// Also says whether it stays a rollback target of `stage`: not when it
    /// was rolled back out of `stage` (the redeploy that replaces it is that
    /// rollback), or a second rollback would bring it back.
    async fn replace_live(&self, old_key: &str, stage: &str, by: &str, now: DateTime<Utc>) -> Result<(Extra, bool)> {
        let Some(mut old) = self.decoded.get::<PromotionRecord>(&*self.store, old_key).await? else {
            return Ok((Extra::default(), true));
        };
        if matches!(&old.value.promotion.state, State::RolledBack { stage: s, .. } if s == stage) {
            return Ok((Extra::default(), false));
        }
        if !matches!(&old.value.promotion.state, State::Live { stage: s, .. } if s == stage) {
            return Ok((Extra::default(), true));
        }
        let reason = format!("{by} went live in {stage}");
        let actions = old.value.promotion.apply(Event::Superseded { by: by.to_owned(), reason }, &self.policy, now)?;
        // After the new candidate's deploy, in the audit log.
        let mut extra = Extra { then: audit_entries(actions), ended: vec![old.key.clone()], ..Extra::default() };
        extra.put(old)?;
        Ok((extra, true))
    }

    /// Why `sha` needs a flush run after its deploy into `target`, if it
    /// does: pipeline code changed between what is live there and `sha`, or
    /// nothing is live there yet.
    async fn flush_reason(&self, target: &Stage, env: &EnvironmentRecord, sha: &str) -> Result<Option<String>> {
        let Some(flush) = &target.flush else { return Ok(None) };
        let Some(live) = &env.live_sha else { return Ok(Some(format!("nothing is live in {} yet", target.name))) };
        if live == sha {
            return Ok(None);
        }
        let changed = self.source_control.changed_files(live, sha).await?;
        if !changed.complete {
            return Ok(Some(format!("the files changed since {live} could not all be listed")));
        }
        let matched = self.pipeline_files(target, &flush.paths, &changed.files)?;
        Ok(match matched.as_slice() {
            [] => None,
            [one] => Some(format!("pipeline code {one} changed since {live}, which is live there")),
            [first, rest @ ..] => {
                Some(format!("pipeline code {first} and {} more changed since {live}, which is live there", rest.len()))
            }
        })
    }

    /// Why the rollback redeploy of `restored` into `target`, where `live`
    /// runs, needs a flush run after it, if it does: pipeline code differs
    /// between the two commits (DESIGN §3), which is what `live` changed
    /// since `restored` when it is built on it.
    pub(crate) async fn rollback_flush_reason(
        &self,
        target: &Stage,
        env: &EnvironmentRecord,
        restored: &str,
    ) -> Result<Option<String>> {
        let Some(flush) = &target.flush else { return Ok(None) };
        let Some(live) = env.live_sha.as_deref().filter(|live| *live != restored) else {
            return self.flush_reason(target, env, restored).await;
        };
        let changed = match self.source_control.changed_files(restored, live).await {
            Ok(changed) if changed.complete => changed,
            // Not built on it: compare the other way, as for any deploy.
            Ok(_) | Err(Error::NotFound { .. }) => return self.flush_reason(target, env, restored).await,
            Err(e) => return Err(e),
        };
        let matched = self.pipeline_files(target, &flush.paths, &changed.files)?;
        Ok(match matched.as_slice() {
            [] => None,
            [one] => Some(format!("pipeline code {one} differs between {live}, which is live there, and {restored}")),
            [first, rest @ ..] => Some(format!(
                "pipeline code {first} and {} more differ between {live}, which is live there, and {restored}",
                rest.len()
            )),
        })
    }

    /// The files among `files` that `target`'s flush paths match.
    fn pipeline_files<'f>(&self, target: &Stage, paths: &[String], files: &'f [String]) -> Result<Vec<&'f str>> {
        let set = match self.flush_globs.get(&target.name) {
            Some(Ok(set)) => set,
            Some(Err((what, message))) => {
                return Err(Error::Invalid { what: what.clone(), message: message.clone() });
            }
            None => &compile_flush_paths(target, paths).map_err(|(what, message)| Error::Invalid { what, message })?,
        };
        Ok(files.iter().filter(|f| set.is_match(f)).map(String::as_str).collect())
    }

    /// Act on monitored check results in the environment `record` is live in.
    async fn monitor(
        &self,
        record: &mut Versioned<PromotionRecord>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<()> {
        let State::Live { stage, deployed_at, .. } = &record.value.promotion.state else { return Ok(()) };
        let Some(monitor) = self.policy.stage(stage).and_then(|s| s.monitor.clone()) else { return Ok(()) };
        let (stage, deployed_at) = (stage.clone(), *deployed_at);
        let sha = record.value.promotion.candidate.sha.clone();
        let query = crate::CheckQuery::new(stage.clone(), sha, vec![monitor.check.clone()]).since(Some(deployed_at));
        let mut fresh: Vec<_> = self
            .checks
            .checks(&query)
            .await?
            .into_iter()
            .filter(|r| {
                r.name == monitor.check && r.started_at >= deployed_at && r.finished_at.is_some_and(|f| f > deployed_at)
            })
            .collect();
        if fresh.is_empty() {
            // Nothing finished since the deploy: no need to read the environment.
            return Ok(());
        }
        let env_key = records::environment_key(&stage, &record.value.promotion.candidate);
        let mut env: Versioned<EnvironmentRecord> = self.decoded.get_or_default(&*self.store, &env_key).await?;
        if env.value.live.as_deref() != Some(record.key.as_str()) {
            return Ok(());
        }
        let seen = env.value.monitored_until.unwrap_or(deployed_at);
        fresh.retain(|r| r.finished_at.is_some_and(|f| f > seen));
        if fresh.is_empty() {
            return Ok(());
        }
        fresh.sort_by_key(|r| r.finished_at);
        env.value.monitored_until = fresh.last().and_then(|r| r.finished_at);
        let mut promotion = record.value.promotion.clone();
        let mut actions = Vec::new();
        for result in fresh {
            actions.extend(promotion.apply(Event::CheckReported(result), &self.policy, now)?);
        }
        let audit = audit_entries(actions.clone());
        let writes = vec![env.write()?];
        tick.writing(&writes);
        self.store.commit(writes, audit.clone()).await?;
        tick.actions.extend(audit.into_iter().map(Action::Audit));
        for action in actions.into_iter().filter(|a| !matches!(a, Action::Audit(_))) {
            self.perform(action, &promotion.candidate, now, tick).await?;
        }
        // The monitor may have rolled this candidate back: read it again.
        if let Some(again) = self.decoded.get(&*self.store, &record.key).await? {
            *record = again;
        }
        Ok(())
    }
}

/// What a decision to enter a stage reads that people change: the stage's
/// hold, and the engine's own approvals of the candidate into it.
///
/// The decision's commit writes them back unchanged at the versions read,
/// so a hold, an approval or a withdrawal committed after they were read
/// makes the decision conflict (it is made again on the next tick) instead
/// of overtaking it. They are read before the evidence is gathered.
#[derive(Debug)]
pub(crate) struct DecisionReads {
    hold: Versioned<Option<records::Hold>>,
    approvals: Option<Versioned<records::ApprovalsRecord>>,
}

impl DecisionReads {
    /// The hold on the stage, if the line is stopped there.
    pub(crate) fn hold(&self) -> Option<&records::Hold> {
        self.hold.value.as_ref()
    }

    /// The writes that make the decision's commit conflict if either changed.
    pub(crate) fn writes(&self) -> Result<Vec<Write>> {
        let mut writes = vec![self.hold.write()?];
        if let Some(approvals) = &self.approvals {
            writes.push(approvals.write()?);
        }
        Ok(writes)
    }

    /// Add [`writes`](Self::writes) to `extra`, the documents kept as decoded once committed.
    fn put_into(self, extra: &mut Extra) -> Result<()> {
        extra.put(self.hold)?;
        if let Some(approvals) = self.approvals {
            extra.put(approvals)?;
        }
        Ok(())
    }
}

impl Promoter {
    /// Read what a decision to enter `stage` with `sha` depends on that people change.
    pub(crate) async fn decision_reads(&self, stage: &Stage, sha: &str) -> Result<DecisionReads> {
        let hold = self.decoded.get_or_default(&*self.store, &records::hold_key(&stage.name)).await?;
        let approvals = match &stage.approvals {
            Some(_) => {
                Some(self.decoded.get_or_default(&*self.store, &records::approvals_key(&stage.name, sha)).await?)
            }
            None => None,
        };
        Ok(DecisionReads { hold, approvals })
    }
}

/// Writes and audit entries to commit together with a transition.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    writes: Vec<Write>,
    /// Audit entries before the transition's own.
    audit: Vec<AuditEntry>,
    /// Audit entries after the transition's own.
    then: Vec<AuditEntry>,
    /// Keys of other promotions that end with this commit (their writes are among `writes`).
    ended: Vec<String>,
    /// Documents among `writes` (by index) to keep as decoded once committed.
    keep: Vec<(usize, Kept)>,
}

/// A written document's key and value, to keep as decoded at the version committed.
type Kept = (String, Arc<dyn std::any::Any + Send + Sync>);

impl Extra {
    fn writes(writes: Vec<Write>) -> Self {
        Self { writes, ..Self::default() }
    }

    /// Write `record` (after the writes so far); once committed, its value
    /// is what a read of it at the new version decodes.
    fn put<T: serde::Serialize + Send + Sync + 'static>(&mut self, record: Versioned<T>) -> Result<()> {
        self.writes.push(record.write()?);
        self.keep.push((self.writes.len() - 1, (record.key, Arc::new(record.value))));
        Ok(())
    }

    /// Write `record` before the writes so far, as [`put`](Self::put) does.
    fn put_first<T: serde::Serialize + Send + Sync + 'static>(&mut self, record: Versioned<T>) -> Result<()> {
        self.writes.insert(0, record.write()?);
        for (index, _) in &mut self.keep {
            *index += 1;
        }
        self.keep.insert(0, (0, (record.key, Arc::new(record.value))));
        Ok(())
    }
}

/// The audit entries among `actions`.
fn audit_entries(actions: Vec<Action>) -> Vec<AuditEntry> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Audit(e) => Some(e),
            _ => None,
        })
        .collect()
}
