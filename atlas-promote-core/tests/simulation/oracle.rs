//! The oracle: ground truth the simulation keeps on its own (commits, who
//! holds which role, overrides asked for), and the checks made at the
//! instant something happens: at every commit of the store (I1 and I8:
//! entries into a stage; promotions going live or failing only on runs that
//! did) and at every trigger of the CI (I2, I3, persist-before-act).
//!
//! Plus the wrappers that put it between the engine and its backends, and
//! inject faults: a [`SimStore`] and a [`SimCi`] per engine instance, sharing
//! that instance's [`Life`] (a crashed instance fails every call).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_trait::async_trait;
use atlas_promote_core::engine::records::{
    self, ApprovalsRecord, EnvironmentRecord, Hold, PromotionRecord, approvals_key, environment_key, hold_key,
    promotion_key,
};
use atlas_promote_core::machine::State;
use atlas_promote_core::{
    ApprovalRecord, AuditEntry, AuditRecord, Candidate, CiProvider, Decision, Deployment, Document, Error, Evidence,
    IdempotencyKey, ManualClock, MemoryApprovals, MemoryChecks, MemoryCi, MemoryStore, Origin, Policy, Result, Run,
    RunId, RunKind, RunRequest, RunStatus, Stage, StageKind, StateStore, Write,
};
use chrono::{DateTime, Utc};

use super::policy::{blacked_out, frozen, window_open};
use super::rng::Rng;

/// A commit as the simulation made it.
#[derive(Debug, Clone)]
pub struct Commit {
    pub parent: Option<String>,
    pub author: String,
    pub files: Vec<String>,
    pub branch: Option<String>,
}

/// An override the simulation asked for, while the call is in progress.
#[derive(Debug, Clone)]
pub struct OverrideAsk {
    pub sha: String,
    pub by: String,
    pub bypass: Vec<String>,
    pub reason: String,
}

/// A run the engine triggered, as the oracle saw it go by: index i is the
/// CI's i-th run (`mem-{i+1}`).
#[derive(Debug, Clone)]
pub struct Triggered {
    pub key: IdempotencyKey,
    pub env: String,
    pub sha: String,
    pub kind: RunKind,
}

/// Counters summed over every seed, for the report.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub steps: u64,
    pub ticks: u64,
    pub triggers: u64,
    pub gate_entries: u64,
    pub override_entries: u64,
    pub retry_entries: u64,
    pub redeploy_entries: u64,
    pub went_live: u64,
    pub crashes: u64,
    pub injected_failures: u64,
    pub restarts: u64,
    pub approvals_accepted: u64,
    pub self_approvals_refused: u64,
    /// Approvals refused because they could never count, and accepted ones that do not count.
    pub approvals_refused: u64,
    pub approvals_not_counting: u64,
    /// Failed candidates an operator abandoned.
    pub abandoned: u64,
    pub concurrent_steps: u64,
    /// Promotions found waiting on time after a tick, each checked to have a wake-up.
    pub waits_checked: u64,
    /// Promotions that went live, per stage.
    pub live_in: BTreeMap<String, u64>,
    /// Gate entries into a stage with windows, and of those within a day of a DST change.
    pub windowed_entries: u64,
    pub windowed_entries_near_dst: u64,
    pub failures: BTreeMap<&'static str, u64>,
    pub samples: BTreeSet<String>,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.steps += other.steps;
        self.ticks += other.ticks;
        self.triggers += other.triggers;
        self.gate_entries += other.gate_entries;
        self.override_entries += other.override_entries;
        self.retry_entries += other.retry_entries;
        self.redeploy_entries += other.redeploy_entries;
        self.went_live += other.went_live;
        self.crashes += other.crashes;
        self.injected_failures += other.injected_failures;
        self.restarts += other.restarts;
        self.approvals_accepted += other.approvals_accepted;
        self.self_approvals_refused += other.self_approvals_refused;
        self.approvals_refused += other.approvals_refused;
        self.approvals_not_counting += other.approvals_not_counting;
        self.abandoned += other.abandoned;
        self.concurrent_steps += other.concurrent_steps;
        self.waits_checked += other.waits_checked;
        self.windowed_entries += other.windowed_entries;
        self.windowed_entries_near_dst += other.windowed_entries_near_dst;
        for (k, v) in &other.live_in {
            *self.live_in.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for s in &other.samples {
            if self.samples.len() < 12 {
                self.samples.insert(s.clone());
            }
        }
    }
}

/// What the simulation knows independently of the engine.
#[derive(Debug)]
pub struct Oracle {
    pub policy: Policy,
    pub clock: ManualClock,
    pub ci: MemoryCi,
    pub checks: MemoryChecks,
    pub external: MemoryApprovals,
    /// Who holds which role, as the simulation granted and revoked them.
    pub roles: BTreeMap<String, BTreeSet<String>>,
    pub commits: BTreeMap<String, Commit>,
    pub overriding: Vec<OverrideAsk>,
    /// Every trigger, in order (the CI's runs in the same order).
    pub triggered: Vec<Triggered>,
    /// Whether the store or the CI may have changed since the world was last checked.
    pub dirty: bool,
    pub violations: Vec<String>,
    /// Decides interleavings (how often a backend call yields).
    pub sched: Rng,
    /// Whether two engine calls run interleaved in this step.
    pub concurrent: bool,
    pub stats: Stats,
}

/// The DST changes of the zones windows use (Berlin, New York, Sydney), 2026–2027.
pub const DST_CHANGES: [&str; 8] = [
    "2026-03-08T07:00:00Z",
    "2026-03-29T01:00:00Z",
    "2026-04-04T16:00:00Z",
    "2026-10-03T16:00:00Z",
    "2026-10-25T01:00:00Z",
    "2026-11-01T06:00:00Z",
    "2027-03-14T07:00:00Z",
    "2027-03-28T01:00:00Z",
];

/// The blocker kinds that describe the target stage's own rules, not the
/// candidate's readiness in its current stage.
const TARGET_RULES: [&str; 6] =
    ["origin_not_accepted", "approvals_missing", "rejected", "window_closed", "blackout", "frozen"];

fn decode<T: serde::de::DeserializeOwned>(doc: &Option<Document>) -> Option<T> {
    doc.as_ref().and_then(|d| serde_json::from_value(d.value.clone()).ok())
}

/// The environment a run deploys into: per branch for branch builds.
pub fn env_of(request: &RunRequest) -> String {
    environment_key(&request.stage, &request.candidate)
}

impl Oracle {
    pub fn violation(&mut self, text: String) {
        self.violations.push(format!("{} {text}", self.clock_text()));
    }

    fn clock_text(&self) -> String {
        atlas_promote_core::Clock::now(&self.clock).format("[%Y-%m-%d %H:%M:%S UTC]").to_string()
    }

    pub fn now(&self) -> DateTime<Utc> {
        atlas_promote_core::Clock::now(&self.clock)
    }

    /// The candidate as the simulation made it (authors, origin, branch).
    pub fn truth(&self, stored: &Candidate) -> Candidate {
        match self.commits.get(&stored.sha) {
            Some(c) => match &c.branch {
                Some(b) => Candidate::branch(stored.sha.clone(), b.clone(), [c.author.clone()]),
                None => Candidate::trunk(stored.sha.clone(), [c.author.clone()]),
            },
            None => stored.clone(),
        }
    }

    pub fn roles_of(&self, person: &str) -> Vec<String> {
        self.roles.get(person).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every approval record for (stage, sha): the native ones in `doc` and
    /// the external source's, each with the roles its approver holds now.
    fn approvals(&self, stage: &str, sha: &str, doc: &Option<Document>) -> Vec<ApprovalRecord> {
        let native: ApprovalsRecord = decode(doc).unwrap_or_default();
        let external = self.external.records().into_iter().filter(|r| r.stage == stage && r.sha == sha);
        native
            .records
            .into_iter()
            .chain(external)
            .map(|mut r| {
                r.roles = self.roles_of(&r.approver);
                r
            })
            .collect()
    }

    /// The decision on moving `candidate` out of `from_state` into `to` now,
    /// on the evidence visible now.
    fn decide(
        &self,
        from_state: &State,
        to: &str,
        candidate: &Candidate,
        approvals: &Option<Document>,
    ) -> std::result::Result<Decision, String> {
        let gate = self.policy.gate(from_state.stage(), to).map_err(|e| e.to_string())?;
        let mut evidence = Evidence::new(candidate.clone());
        match from_state {
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
        evidence.checks = self.checks.results().into_iter().filter(|r| r.sha == candidate.sha).collect();
        evidence.approvals = self.approvals(to, &candidate.sha, approvals);
        Ok(gate.evaluate(&evidence, self.now()))
    }

    /// The target's own rules (origin, approvals, windows, freezes) for
    /// entering `to` now, whatever the candidate's readiness elsewhere.
    fn target_rules(&self, to: &str, candidate: &Candidate, approvals: &Option<Document>) -> Vec<String> {
        let index = self.policy.stage_index(to).unwrap_or(0);
        let from = match candidate.origin {
            Origin::Branch => self.policy.stages.iter().find(|s| s.kind == StageKind::Review),
            Origin::Trunk => self.policy.stages[..index].iter().rev().find(|s| !s.ephemeral),
        };
        let gate = match from.map(|f| self.policy.gate(&f.name, to)) {
            Some(Ok(gate)) => gate,
            _ => return vec![format!("no stage leads to {to}")],
        };
        let evidence =
            Evidence { approvals: self.approvals(to, &candidate.sha, approvals), ..Evidence::new(candidate.clone()) };
        let decision = gate.evaluate(&evidence, self.now());
        decision.blockers.iter().filter(|b| TARGET_RULES.contains(&b.kind())).map(|b| b.to_string()).collect()
    }

    /// Windows and freezes of `stage` checked without the gate's code.
    fn windows_closed(&self, stage: &Stage, bypass: &[String]) -> Option<String> {
        let now = self.now();
        let may = |kind: &str| bypass.iter().any(|b| b == kind);
        if !stage.windows.is_empty() && !stage.windows.iter().any(|w| window_open(w, now)) && !may("window_closed") {
            return Some(format!("no window of {} is open (independent check)", stage.name));
        }
        if let Some(b) = stage.blackouts.iter().find(|b| blacked_out(b, now)).filter(|_| !may("blackout")) {
            return Some(format!("{} is in the blackout {b} (independent check)", stage.name));
        }
        if let Some(f) = stage.freezes.iter().find(|f| frozen(f, now)).filter(|_| !may("frozen")) {
            return Some(format!("{} is frozen from {} until {:?} (independent check)", stage.name, f.from, f.until));
        }
        None
    }

    /// Whether files under `pipelines/` changed from `base` to `head`
    /// (anything may have changed when `base` is not an ancestor of `head`).
    fn pipelines_changed(&self, base: &str, head: &str) -> bool {
        let mut touched = false;
        let mut at = Some(head.to_owned());
        let mut steps = 0;
        while let Some(sha) = at {
            if sha == base {
                return touched;
            }
            let Some(commit) = self.commits.get(&sha) else { return true };
            touched |= commit.files.iter().any(|f| f.starts_with("pipelines/"));
            at = commit.parent.clone();
            steps += 1;
            if steps > 10_000 {
                return true;
            }
        }
        true
    }

    /// Whether `a` is a strict ancestor of `b` in the simulation's history.
    fn is_ancestor(&self, a: &str, b: &str) -> bool {
        let mut at = self.commits.get(b).and_then(|c| c.parent.clone());
        let mut steps = 0;
        while let Some(sha) = at {
            if sha == a {
                return true;
            }
            at = self.commits.get(&sha).and_then(|c| c.parent.clone());
            steps += 1;
            if steps > 10_000 {
                return false;
            }
        }
        false
    }

    /// I8: a trunk commit never enters an environment over one of its own
    /// descendants (older code over newer), unless that one was rolled back.
    fn check_forward(
        &mut self,
        sha: &str,
        to: &str,
        candidate: &Candidate,
        env: Option<&EnvironmentRecord>,
        before: &BTreeMap<String, Option<Document>>,
        how: &str,
    ) {
        if candidate.origin != Origin::Trunk {
            return;
        }
        let Some((live_key, live_sha)) = env.and_then(|e| e.live.clone().zip(e.live_sha.clone())) else { return };
        if live_sha == sha {
            return;
        }
        let live: Option<PromotionRecord> = decode(before.get(&live_key).unwrap_or(&None));
        if live.is_some_and(|p| matches!(p.promotion.state, State::RolledBack { .. })) {
            return;
        }
        if self.is_ancestor(sha, &live_sha) {
            self.violation(format!(
                "I8: {how} takes {sha} into {to} over {live_sha}, a newer commit built on it: {to} would go backwards"
            ));
        }
    }

    fn run_by_key(&self, key: &IdempotencyKey) -> Option<Run> {
        self.ci.runs().into_iter().rev().find(|r| &r.key == key)
    }

    /// A store commit succeeded: check every promotion it moved.
    pub fn on_commit(&mut self, before: &BTreeMap<String, Option<Document>>, writes: &[Write], audit: &[AuditEntry]) {
        for write in writes {
            let Write::Put { key, value, .. } = write else { continue };
            if !key.starts_with("promotion/") {
                continue;
            }
            let new: PromotionRecord = match serde_json::from_value(value.clone()) {
                Ok(p) => p,
                Err(e) => {
                    self.violation(format!("the engine wrote an unreadable promotion {key}: {e}"));
                    continue;
                }
            };
            let old: Option<PromotionRecord> = decode(before.get(key).unwrap_or(&None));
            self.check_transition(key, old.as_ref(), &new, before, writes, audit);
        }
    }

    fn check_transition(
        &mut self,
        key: &str,
        old: Option<&PromotionRecord>,
        new: &PromotionRecord,
        before: &BTreeMap<String, Option<Document>>,
        writes: &[Write],
        audit: &[AuditEntry],
    ) {
        let sha = new.promotion.candidate.sha.clone();
        let old_state = old.map(|o| &o.promotion.state);
        match (old_state, &new.promotion.state) {
            (_, State::Deploying { stage, attempt, run: None, flush_required, .. }) if !matches!(old_state, Some(State::Deploying { stage: s, attempt: a, .. }) if s == stage && a == attempt) =>
            {
                let entry = Entry { key, sha: &sha, stage, attempt: *attempt, flush_required: *flush_required };
                self.check_entry(&entry, old, new, before, writes, audit);
            }
            (
                Some(State::Deploying { stage, attempt, flush_required: needs_flush, .. }),
                State::Live { stage: s, deployed_at, flush_required, flushed_at },
            ) if s == stage => {
                self.stats.went_live += 1;
                *self.stats.live_in.entry(stage.clone()).or_default() += 1;
                let deploy = IdempotencyKey::new(&sha, stage, RunKind::Deploy, *attempt);
                self.expect_run(&deploy, RunStatus::Succeeded, Some(*deployed_at), "went live");
                let flush_declared = self.policy.stage(stage).is_some_and(|s| s.flush.is_some());
                if (*needs_flush && flush_declared) || *flush_required || flushed_at.is_some() {
                    self.violation(format!(
                        "{sha} went live in {stage} without its flush (flush needed: {needs_flush}, state: {:?})",
                        new.promotion.state
                    ));
                }
            }
            (
                Some(State::Flushing { stage, attempt, deployed_at: d, .. }),
                State::Live { stage: s, deployed_at, flush_required, flushed_at },
            ) if s == stage => {
                self.stats.went_live += 1;
                *self.stats.live_in.entry(stage.clone()).or_default() += 1;
                let flush = IdempotencyKey::new(&sha, stage, RunKind::Flush, *attempt);
                self.expect_run(&flush, RunStatus::Succeeded, *flushed_at, "went live after its flush");
                if d != deployed_at || !flush_required || flushed_at.is_none() {
                    self.violation(format!(
                        "{sha} went live in {stage} with a mangled deployment: {:?}",
                        new.promotion.state
                    ));
                }
            }
            (
                Some(State::Deploying { stage, attempt, flush_required, .. }),
                State::Flushing { stage: s, attempt: a, run: None, deployed_at },
            ) if s == stage => {
                let deploy = IdempotencyKey::new(&sha, stage, RunKind::Deploy, *attempt);
                self.expect_run(&deploy, RunStatus::Succeeded, Some(*deployed_at), "started its flush");
                if a != attempt || !flush_required {
                    self.violation(format!("{sha} flushes {stage} unasked or as another attempt"));
                }
            }
            (
                Some(State::Deploying { stage, attempt, .. } | State::Flushing { stage, attempt, .. }),
                State::Failed { stage: s, attempt: a, .. },
            ) if s == stage => {
                let kind =
                    if matches!(old_state, Some(State::Deploying { .. })) { RunKind::Deploy } else { RunKind::Flush };
                let key = IdempotencyKey::new(&sha, stage, kind, *attempt);
                match self.run_by_key(&key) {
                    Some(run) if matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) => {}
                    other => self.violation(format!("{sha} marked failed in {stage} but run {key} is {other:?}")),
                }
                if a != attempt {
                    self.violation(format!("{sha} failed in {stage} as attempt {a}, was {attempt}"));
                }
            }
            (
                Some(State::Deploying { stage, attempt, run: None, .. }),
                State::Deploying { stage: s, run: Some(run), .. },
            )
            | (
                Some(State::Flushing { stage, attempt, run: None, .. }),
                State::Flushing { stage: s, run: Some(run), .. },
            ) if s == stage => {
                let kind =
                    if matches!(old_state, Some(State::Deploying { .. })) { RunKind::Deploy } else { RunKind::Flush };
                let key = IdempotencyKey::new(&sha, stage, kind, *attempt);
                if self.run_by_key(&key).is_none_or(|r| &r.id != run) {
                    self.violation(format!("{sha} follows run {run} in {stage}, which the CI does not know as {key}"));
                }
            }
            (Some(State::Live { stage, .. }), State::Live { stage: s, .. }) if s != stage => {
                self.violation(format!("{sha} jumped from live in {stage} to live in {s}"));
            }
            _ => {}
        }
    }

    /// The run with `key` must have `status` (finished at `at`).
    fn expect_run(&mut self, key: &IdempotencyKey, status: RunStatus, at: Option<DateTime<Utc>>, what: &str) {
        match self.run_by_key(key) {
            Some(run) if run.status == status && (at.is_none() || run.finished_at == at) => {}
            other => self.violation(format!("I6: {what}, but run {key} is {other:?} (expected {status} at {at:?})")),
        }
    }

    fn check_entry(
        &mut self,
        entry: &Entry<'_>,
        old: Option<&PromotionRecord>,
        new: &PromotionRecord,
        before: &BTreeMap<String, Option<Document>>,
        writes: &[Write],
        audit: &[AuditEntry],
    ) {
        let Entry { key, sha, stage: to, attempt, flush_required } = *entry;
        let Some(target) = self.policy.stage(to).cloned() else {
            self.violation(format!("{sha} entered {to}, which the policy does not have"));
            return;
        };
        let candidate = self.truth(&new.promotion.candidate);
        // I2: a fresh attempt, never triggered before.
        let previous = old.and_then(|o| o.promotion.attempts.get(to).copied()).unwrap_or(0);
        let failed_here = match old.map(|o| &o.promotion.state) {
            Some(State::Failed { stage, attempt, .. }) if stage == to => *attempt,
            _ => 0,
        };
        if attempt <= previous.max(failed_here) {
            self.violation(format!("I2: {sha} enters {to} as attempt {attempt} again"));
        }
        let run_key = IdempotencyKey::new(sha, to, RunKind::Deploy, attempt);
        if self.run_by_key(&run_key).is_some() {
            self.violation(format!("I2: {sha} enters {to} with key {run_key}, which already ran"));
        }
        // I3: the environment is taken in the same commit, and was free.
        let env_key = environment_key(to, &new.promotion.candidate);
        let env_written = writes.iter().find_map(|w| match w {
            Write::Put { key: k, value, .. } if *k == env_key => {
                serde_json::from_value::<EnvironmentRecord>(value.clone()).ok()
            }
            _ => None,
        });
        if env_written.as_ref().and_then(|e| e.in_flight.as_deref()) != Some(key) {
            self.violation(format!("I3: {sha} enters {to} without taking {env_key} in the same commit"));
        }
        let env_before: Option<EnvironmentRecord> = decode(before.get(&env_key).unwrap_or(&None));
        if let Some(other) = env_before.as_ref().and_then(|e| e.in_flight.as_ref()).filter(|k| k.as_str() != key) {
            self.violation(format!("I3: {sha} enters {to} while {other} is in flight there"));
        }
        let approvals = before.get(&approvals_key(to, sha)).cloned().flatten();
        let hold: Option<Hold> = decode::<Option<Hold>>(before.get(&hold_key(to)).unwrap_or(&None)).flatten();
        let audited = |action: &str| audit.iter().any(|e| e.action == action && e.subject == *sha);
        let old_state = old.map(|o| o.promotion.state.clone());
        match &old_state {
            Some(from) if from.awaits_gate() => {
                let decision = match self.decide(from, to, &candidate, &approvals) {
                    Ok(d) => d,
                    Err(e) => {
                        self.violation(format!("I1: {sha} entered {to} from {}, which has no gate: {e}", from.stage()));
                        return;
                    }
                };
                let mut bypass = Vec::new();
                if audited("override.granted") {
                    self.stats.override_entries += 1;
                    match self.overriding.iter().find(|o| o.sha == *sha).cloned() {
                        None => self.violation(format!("I1: an override let {sha} into {to}, but nobody asked")),
                        Some(ask) => {
                            let allowed = self.policy.overrides.as_ref().map(|o| o.roles.clone()).unwrap_or_default();
                            let held = self.roles_of(&ask.by);
                            if !allowed.iter().any(|r| held.contains(r)) {
                                self.violation(format!(
                                    "I1: {} overrode {sha} into {to} holding {held:?}; the policy permits {allowed:?}",
                                    ask.by
                                ));
                            }
                            if ask.reason.trim().is_empty() {
                                self.violation(format!("I1: an override of {sha} into {to} without a reason"));
                            }
                            let unbypassed: Vec<&str> = decision
                                .blockers
                                .iter()
                                .map(|b| b.kind())
                                .filter(|k| !ask.bypass.iter().any(|b| b == k))
                                .collect();
                            if !unbypassed.is_empty() {
                                self.violation(format!(
                                    "I1: an override bypassing {:?} let {sha} into {to}, but the gate also says {unbypassed:?}: {}",
                                    ask.bypass,
                                    decision.to_string().trim_end()
                                ));
                            }
                            bypass = ask.bypass;
                        }
                    }
                } else {
                    self.stats.gate_entries += 1;
                    if !decision.is_allowed() {
                        self.violation(format!(
                            "I1: {sha} entered {to} from {} but the gate, on the evidence visible now, says: {}",
                            from.stage(),
                            decision.to_string().trim_end()
                        ));
                    }
                }
                if !target.windows.is_empty() {
                    self.stats.windowed_entries += 1;
                    let now = self.now();
                    if DST_CHANGES
                        .iter()
                        .any(|t| (now - t.parse::<DateTime<Utc>>().unwrap_or(now)).num_hours().abs() < 24)
                    {
                        self.stats.windowed_entries_near_dst += 1;
                    }
                }
                if let Some(why) = self.windows_closed(&target, &bypass) {
                    self.violation(format!("I1: {sha} entered {to}: {why}"));
                }
                if let Some(hold) = hold {
                    self.violation(format!("I1: {sha} entered {to}, which {} holds: {}", hold.by, hold.reason));
                }
                let how = if audited("override.granted") { "an override" } else { "the gate" };
                self.check_forward(sha, to, &candidate, env_before.as_ref(), before, how);
                let live = env_before.and_then(|e| e.live_sha);
                let needed = target.flush.is_some()
                    && match &live {
                        None => true,
                        Some(l) if l == sha => false,
                        Some(l) => self.pipelines_changed(l, sha),
                    };
                if needed != flush_required {
                    self.violation(format!(
                        "I1: {sha} enters {to} with flush_required = {flush_required}, but pipeline code changed since {live:?}: {needed}"
                    ));
                }
            }
            Some(State::Failed { stage, flush_required: f, .. }) if stage == to => {
                self.stats.retry_entries += 1;
                if !audited("retry") {
                    self.violation(format!("I1: {sha} re-entered {to} after failing, with no audited retry"));
                }
                let blockers = self.target_rules(to, &candidate, &approvals);
                if !blockers.is_empty() {
                    self.violation(format!("I1: a retry let {sha} into {to} although: {}", blockers.join("; ")));
                }
                if let Some(why) = self.windows_closed(&target, &[]) {
                    self.violation(format!("I1: a retry let {sha} into {to}: {why}"));
                }
                if let Some(hold) = hold {
                    self.violation(format!(
                        "I1: a retry let {sha} into {to}, which {} holds: {}",
                        hold.by, hold.reason
                    ));
                }
                self.check_forward(sha, to, &candidate, env_before.as_ref(), before, "a retry");
                if flush_required != (*f && target.flush.is_some()) {
                    self.violation(format!("a retry of {sha} into {to} changed flush_required from {f}"));
                }
            }
            Some(State::Superseded { stage, .. } | State::RolledBack { stage, .. }) if stage == to => {
                self.stats.redeploy_entries += 1;
                if !audited("redeploy") {
                    self.violation(format!("I1: {sha} came back into {to} with no audited rollback"));
                }
                if matches!(old_state, Some(State::RolledBack { .. })) {
                    self.violation(format!(
                        "I1: a rollback of {to} brings back {sha}, which was rolled back out of {to}"
                    ));
                }
                let succeeded_here = self.triggered.iter().zip(self.ci.runs()).any(|(t, run)| {
                    t.kind == RunKind::Deploy && t.sha == *sha && t.env == env_key && run.status == RunStatus::Succeeded
                });
                if !succeeded_here {
                    self.violation(format!("I1: a rollback redeploys {sha} into {to}, where it never ran"));
                }
                // DESIGN §3: a flush follows a redeploy when pipeline code differs between the two commits.
                let live = env_before.and_then(|e| e.live_sha);
                let needed = target.flush.is_some()
                    && match &live {
                        None => true,
                        Some(l) if l == sha => false,
                        Some(l) if self.is_ancestor(sha, l) => self.pipelines_changed(sha, l),
                        Some(l) if self.is_ancestor(l, sha) => self.pipelines_changed(l, sha),
                        Some(_) => true,
                    };
                if needed != flush_required {
                    self.violation(format!(
                        "I1: a rollback redeploys {sha} into {to} with flush_required = {flush_required}, but pipeline code differs from {live:?}: {needed}"
                    ));
                }
            }
            other => self.violation(format!("I1: {sha} entered {to} from {other:?}")),
        }
    }

    /// The engine is about to trigger `request`; `doc` is its promotion as stored.
    pub fn on_trigger(&mut self, request: &RunRequest, doc: Option<Document>) {
        self.stats.triggers += 1;
        if self.triggered.iter().any(|t| t.key == request.key) {
            self.violation(format!("I2: {} is triggered a second time", request.key));
        }
        let env = env_of(request);
        let runs = self.ci.runs();
        let open: Vec<String> = self
            .triggered
            .iter()
            .zip(&runs)
            .filter(|(t, run)| t.env == env && !run.status.is_finished())
            .map(|(t, run)| format!("{} ({}) is {}", t.key, run.id, run.status))
            .collect();
        for other in open {
            self.violation(format!("I3: {} starts in {env} while {other}", request.key));
        }
        self.triggered.push(Triggered {
            key: request.key.clone(),
            env,
            sha: request.candidate.sha.clone(),
            kind: request.kind,
        });
        let stored: Option<PromotionRecord> = decode(&doc);
        let pending = stored.as_ref().and_then(|p| match &p.promotion.state {
            State::Deploying { stage, attempt, run: None, .. } => Some((stage.clone(), *attempt, RunKind::Deploy)),
            State::Flushing { stage, attempt, run: None, .. } => Some((stage.clone(), *attempt, RunKind::Flush)),
            _ => None,
        });
        let expected =
            pending.map(|(stage, attempt, kind)| IdempotencyKey::new(&request.candidate.sha, &stage, kind, attempt));
        if expected.as_ref() != Some(&request.key) {
            self.violation(format!(
                "persist before act: {} is triggered but the stored state is {:?}",
                request.key,
                stored.map(|p| p.promotion.state)
            ));
        }
    }
}

#[derive(Clone, Copy)]
struct Entry<'a> {
    key: &'a str,
    sha: &'a str,
    stage: &'a str,
    attempt: u32,
    flush_required: bool,
}

pub fn lock(oracle: &Mutex<Oracle>) -> MutexGuard<'_, Oracle> {
    oracle.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fault to inject into one engine instance after `after` more calls of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The process dies during a commit, before the store applied it.
    CrashBeforeCommit,
    /// The process dies right after the store applied a commit, before acting on it.
    CrashAfterCommit,
    /// The process dies as it was about to trigger a run.
    CrashBeforeTrigger,
    /// The process dies right after the CI accepted a trigger, before recording the run.
    CrashAfterTrigger,
    /// A commit fails (e.g. the database is briefly unreachable); the process lives on.
    FailCommit,
    /// A trigger fails without starting anything; the process lives on.
    FailTrigger,
    /// A status or find call fails; the process lives on.
    FailStatus,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::CrashBeforeCommit,
        Fault::CrashAfterCommit,
        Fault::CrashBeforeTrigger,
        Fault::CrashAfterTrigger,
        Fault::FailCommit,
        Fault::FailTrigger,
        Fault::FailStatus,
    ];

    fn op(self) -> Op {
        match self {
            Self::CrashBeforeCommit | Self::CrashAfterCommit | Self::FailCommit => Op::Commit,
            Self::CrashBeforeTrigger | Self::CrashAfterTrigger | Self::FailTrigger => Op::Trigger,
            Self::FailStatus => Op::Status,
        }
    }

    fn is_crash(self) -> bool {
        !matches!(self, Self::FailCommit | Self::FailTrigger | Self::FailStatus)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Commit,
    Trigger,
    Status,
}

/// One engine instance's fate: alive, or crashed; and the fault armed for it.
#[derive(Debug, Default)]
pub struct Life {
    state: Mutex<(bool, Option<(u32, Fault)>)>,
}

impl Life {
    fn state(&self) -> MutexGuard<'_, (bool, Option<(u32, Fault)>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_dead(&self) -> bool {
        self.state().0
    }

    pub fn arm(&self, after: u32, fault: Fault) {
        self.state().1 = Some((after, fault));
    }

    pub fn disarm(&self) {
        self.state().1 = None;
    }

    fn die(&self) {
        self.state().0 = true;
    }

    fn alive(&self) -> Result<()> {
        if self.is_dead() { Err(injected("any call (the engine crashed)")) } else { Ok(()) }
    }

    /// Count one call of `op`; the armed fault, when its time has come.
    fn fire(&self, op: Op) -> Option<Fault> {
        let mut state = self.state();
        let (after, fault) = state.1?;
        if fault.op() != op {
            return None;
        }
        if after > 0 {
            state.1 = Some((after - 1, fault));
            return None;
        }
        state.1 = None;
        Some(fault)
    }
}

fn injected(operation: &str) -> Error {
    Error::Backend {
        backend: "sim".into(),
        operation: operation.into(),
        temporary: true,
        source: "injected fault".into(),
    }
}

/// Yields once to the executor: where two engine calls may interleave.
struct Yield(bool);

impl Future for Yield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

async fn pause(oracle: &Mutex<Oracle>) {
    let yields = {
        let mut o = lock(oracle);
        if o.concurrent { o.sched.below(3) } else { 0 }
    };
    for _ in 0..yields {
        Yield(false).await;
    }
}

/// Run `a` and `b` interleaved at their backend calls, in an order the
/// scheduler's generator picks: two engine instances at work at once.
pub async fn both<A: Future, B: Future>(oracle: &Mutex<Oracle>, a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        let first = match (ra.is_none(), rb.is_none()) {
            (true, true) => lock(oracle).sched.below(2) == 0,
            (a_left, _) => a_left,
        };
        if first {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        } else if let Poll::Ready(v) = b.as_mut().poll(cx) {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            return Poll::Ready((ra.take().expect("set"), rb.take().expect("set")));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// The store as one engine instance sees it: faults, crashes, and the
/// oracle's checks on every commit that went through.
#[derive(Debug)]
pub struct SimStore {
    pub inner: MemoryStore,
    pub life: Arc<Life>,
    pub oracle: Arc<Mutex<Oracle>>,
}

impl SimStore {
    /// The documents the oracle needs to judge `writes`: their previous
    /// versions, and for promotions entering a stage that stage's
    /// approvals, hold and environment.
    async fn before(&self, writes: &[Write]) -> Result<BTreeMap<String, Option<Document>>> {
        let mut keys: Vec<String> = writes.iter().map(|w| w.key().to_owned()).collect();
        for write in writes {
            let Write::Put { key, value, .. } = write else { continue };
            if !key.starts_with("promotion/") {
                continue;
            }
            let Ok(p) = serde_json::from_value::<PromotionRecord>(value.clone()) else { continue };
            if let State::Deploying { stage, .. } = &p.promotion.state {
                keys.push(approvals_key(stage, &p.promotion.candidate.sha));
                keys.push(hold_key(stage));
                let env_key = environment_key(stage, &p.promotion.candidate);
                // And the promotion live there (I8).
                if let Some(live) = decode::<EnvironmentRecord>(&self.inner.get(&env_key).await?).and_then(|e| e.live) {
                    keys.push(live);
                }
                keys.push(env_key);
            }
        }
        let mut docs = BTreeMap::new();
        for key in keys {
            let doc = self.inner.get(&key).await?;
            docs.insert(key, doc);
        }
        Ok(docs)
    }
}

#[async_trait]
impl StateStore for SimStore {
    async fn get(&self, key: &str) -> Result<Option<Document>> {
        pause(&self.oracle).await;
        self.life.alive()?;
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Document>> {
        pause(&self.oracle).await;
        self.life.alive()?;
        self.inner.list(prefix).await
    }

    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditEntry>) -> Result<Vec<u64>> {
        pause(&self.oracle).await;
        self.life.alive()?;
        let fault = self.life.fire(Op::Commit);
        match fault {
            Some(Fault::CrashBeforeCommit) => {
                self.life.die();
                lock(&self.oracle).stats.crashes += 1;
                return Err(injected("commit (the engine crashed before it)"));
            }
            Some(Fault::FailCommit) => {
                lock(&self.oracle).stats.injected_failures += 1;
                return Err(injected("commit"));
            }
            _ => {}
        }
        let before = self.before(&writes).await?;
        let result = self.inner.commit(writes.clone(), audit.clone()).await;
        if result.is_ok() {
            let mut o = lock(&self.oracle);
            o.dirty = true;
            o.on_commit(&before, &writes, &audit);
        }
        if fault == Some(Fault::CrashAfterCommit) {
            self.life.die();
            lock(&self.oracle).stats.crashes += 1;
            return Err(injected("commit (the engine crashed right after it)"));
        }
        result
    }

    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        pause(&self.oracle).await;
        self.life.alive()?;
        self.inner.audit(after).await
    }
}

/// The CI as one engine instance sees it: faults, crashes, and the
/// oracle's checks on every trigger.
#[derive(Debug)]
pub struct SimCi {
    pub inner: MemoryCi,
    pub store: MemoryStore,
    pub life: Arc<Life>,
    pub oracle: Arc<Mutex<Oracle>>,
}

#[async_trait]
impl CiProvider for SimCi {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        pause(&self.oracle).await;
        self.life.alive()?;
        let fault = self.life.fire(Op::Trigger);
        match fault {
            Some(Fault::CrashBeforeTrigger) => {
                self.life.die();
                lock(&self.oracle).stats.crashes += 1;
                return Err(injected("trigger (the engine crashed before it)"));
            }
            Some(Fault::FailTrigger) => {
                lock(&self.oracle).stats.injected_failures += 1;
                return Err(injected("trigger"));
            }
            _ => {}
        }
        let doc = self.store.get(&promotion_key(&request.candidate)).await?;
        {
            let mut o = lock(&self.oracle);
            o.dirty = true;
            o.on_trigger(request, doc);
        }
        let run = self.inner.trigger(request).await?;
        if fault == Some(Fault::CrashAfterTrigger) {
            self.life.die();
            lock(&self.oracle).stats.crashes += 1;
            return Err(injected("trigger (the engine crashed right after it)"));
        }
        Ok(run)
    }

    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        pause(&self.oracle).await;
        self.life.alive()?;
        if self.life.fire(Op::Status).is_some() {
            lock(&self.oracle).stats.injected_failures += 1;
            return Err(injected("find"));
        }
        self.inner.find(key).await
    }

    async fn status(&self, run: &RunId) -> Result<Run> {
        pause(&self.oracle).await;
        self.life.alive()?;
        if self.life.fire(Op::Status).is_some() {
            lock(&self.oracle).stats.injected_failures += 1;
            return Err(injected("status"));
        }
        // Auto-completion may finish the run here.
        lock(&self.oracle).dirty = true;
        self.inner.status(run).await
    }

    async fn cancel(&self, run: &RunId) -> Result<()> {
        pause(&self.oracle).await;
        self.life.alive()?;
        lock(&self.oracle).dirty = true;
        self.inner.cancel(run).await
    }
}

/// Whether a fault is a crash (the instance must be restarted).
pub fn is_crash(fault: Fault) -> bool {
    fault.is_crash()
}

/// Decode a stored document, for the simulation's own reads.
pub fn read<T: serde::de::DeserializeOwned>(doc: Document) -> Option<T> {
    records::decode::<T>(doc).ok().map(|v| v.value)
}
