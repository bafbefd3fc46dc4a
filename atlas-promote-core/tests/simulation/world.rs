//! One simulated world per seed: a random policy, two engine instances on
//! one store, in-memory backends behind the oracle's wrappers, a manual
//! clock, and a stream of random events. After every step the world's
//! state is checked (I2–I6); at the end of a seed, liveness (I7). The
//! oracle checks entries (I1, I8) as they commit.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use atlas_promote_core::engine::records::{
    ACTIVE_INDEX, ACTIVE_PREFIX, ApprovalsRecord, EnvironmentRecord, PromotionRecord, approvals_key, environment_key,
};
use atlas_promote_core::machine::State;
use atlas_promote_core::{
    ApprovalDecision, ApprovalRecord, AuditRecord, Candidate, CheckResult, CheckStatus, Error, IdempotencyKey,
    ManualClock, MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, Origin, Outcome, Policy,
    Promoter, RunKind, RunStatus, StageKind, StateStore, StaticDirectory, Tick, Verdict,
};
use chrono::{DateTime, TimeDelta, Utc};

use super::oracle::{
    Commit, DST_CHANGES, Fault, Life, Oracle, OverrideAsk, SimCi, SimStore, Stats, both, is_crash, lock, read,
};
use super::policy::{EPHEMERAL, PEOPLE, ROLES, random_policy};
use super::rng::Rng;

/// One engine instance (a process): its name, the engine, and its fate.
struct Node {
    id: String,
    engine: Promoter,
    life: Arc<Life>,
}

/// The blocker kinds an override may name.
const KINDS: [&str; 13] = [
    "origin_not_accepted",
    "not_deployed",
    "flush_pending",
    "check_missing",
    "check_running",
    "check_failed",
    "check_stale",
    "soaking",
    "approvals_missing",
    "rejected",
    "window_closed",
    "blackout",
    "frozen",
];

#[derive(Debug, Clone, Copy)]
enum Event {
    Merge,
    Deliver,
    Redeliver,
    BranchBuild,
    Tick,
    TickOther,
    TickBoth,
    TickAndOperate,
    TickAndHuman,
    Advance,
    AdvanceToWake,
    DstJump,
    ClockBack,
    SetOutcome,
    CompleteRun,
    ToggleAuto,
    Nightly,
    Cooperate,
    Monitor,
    Approve,
    ExternalApproval,
    Grant,
    Revoke,
    Retry,
    Abandon,
    Hold,
    Release,
    Override,
    Rollback,
    ArmFault,
    Restart,
}

const EVENTS: [(Event, u32); 31] = [
    (Event::Merge, 6),
    (Event::Deliver, 3),
    (Event::Redeliver, 2),
    (Event::BranchBuild, 3),
    (Event::Tick, 18),
    (Event::TickOther, 4),
    (Event::TickBoth, 6),
    (Event::TickAndOperate, 3),
    (Event::TickAndHuman, 4),
    (Event::Advance, 10),
    (Event::AdvanceToWake, 6),
    (Event::DstJump, 1),
    (Event::ClockBack, 1),
    (Event::SetOutcome, 3),
    (Event::CompleteRun, 4),
    (Event::ToggleAuto, 1),
    (Event::Nightly, 7),
    (Event::Cooperate, 6),
    (Event::Monitor, 3),
    (Event::Approve, 12),
    (Event::ExternalApproval, 2),
    (Event::Grant, 3),
    (Event::Revoke, 2),
    (Event::Retry, 3),
    (Event::Abandon, 1),
    (Event::Hold, 1),
    (Event::Release, 2),
    (Event::Override, 3),
    (Event::Rollback, 2),
    (Event::ArmFault, 4),
    (Event::Restart, 1),
];

/// An approval, rejection or withdrawal to make, and whether the engine must refuse it.
#[derive(Debug, Clone)]
struct Approval {
    person: String,
    stage: String,
    sha: String,
    decision: ApprovalDecision,
    self_approval: bool,
    /// Why the engine must refuse it, by the rules, as things stood before the call.
    refusal: Option<String>,
}

/// An operator's (or webhook's) call into the engine, which may run interleaved with a tick.
#[derive(Debug, Clone)]
enum Operation {
    Override { sha: String, by: String, bypass: Vec<String>, reason: String },
    Retry { sha: String, stage: String, by: String },
    Abandon { sha: String, by: String, reason: String },
    Rollback { stage: String, branch: Option<String>, by: String },
    Merged { candidate: Candidate, at: DateTime<Utc> },
}

async fn operate(engine: Promoter, op: Operation) -> String {
    let tick = |r: atlas_promote_core::Result<Tick>| match r {
        Ok(t) => format!("ok{}", summary(&t)),
        Err(e) => format!("error: {e}"),
    };
    match op {
        Operation::Override { sha, by, bypass, reason } => {
            let bypass: Vec<&str> = bypass.iter().map(String::as_str).collect();
            tick(engine.override_gate(&sha, &by, &bypass, &reason).await)
        }
        Operation::Retry { sha, stage, by } => tick(engine.retry(&sha, &stage, &by).await),
        Operation::Abandon { sha, by, reason } => match engine.abandon(&sha, &by, &reason).await {
            Ok(()) => "ok".into(),
            Err(e) => format!("error: {e}"),
        },
        Operation::Rollback { stage, branch: None, by } => tick(engine.rollback(&stage, &by, "bad data").await),
        Operation::Rollback { stage, branch: Some(branch), by } => {
            tick(engine.rollback_branch(&stage, &branch, &by, "bad data").await)
        }
        Operation::Merged { candidate, at } => match engine.merged(candidate, at).await {
            Ok(()) => "ok".into(),
            Err(e) => format!("error: {e}"),
        },
    }
}

/// What a tick did, in a few words, for the trace.
fn summary(tick: &Tick) -> String {
    let mut parts: Vec<String> = Vec::new();
    for action in &tick.actions {
        if let atlas_promote_core::machine::Action::Audit(e) = action {
            parts.push(e.message.clone());
        }
    }
    for (subject, error) in &tick.failures {
        parts.push(format!("FAILED {subject}: {error}"));
    }
    if parts.is_empty() { String::new() } else { format!(" [{}]", parts.join(" | ")) }
}

fn classify(error: &Error) -> &'static str {
    match error {
        Error::Conflict { .. } => "conflict",
        Error::Backend { backend, .. } if backend == "sim" => "injected",
        Error::Refused { .. } => "refused",
        Error::NotFound { .. } => "not_found",
        Error::Transition(_) => "transition",
        Error::Invalid { .. } => "invalid",
        _ => "other",
    }
}

pub struct World {
    oracle: Arc<Mutex<Oracle>>,
    policy: Policy,
    clock: ManualClock,
    ci: MemoryCi,
    checks: MemoryChecks,
    external: MemoryApprovals,
    directory: StaticDirectory,
    source: MemorySourceControl,
    store: MemoryStore,
    lease: TimeDelta,
    nodes: Vec<Node>,
    rng: Rng,
    trace: Option<Vec<String>>,
    counter: u32,
    trunk_head: Option<String>,
    pending: Vec<(Candidate, DateTime<Utc>)>,
    delivered: Vec<(Candidate, DateTime<Utc>)>,
    branch_heads: BTreeMap<String, String>,
    accepted: Vec<ApprovalRecord>,
    last_audit: Option<AuditRecord>,
    keys: HashSet<IdempotencyKey>,
    requests_seen: usize,
    next_wake: Option<DateTime<Utc>>,
    auto: bool,
    decoded: std::cell::RefCell<BTreeMap<String, (u64, PromotionRecord)>>,
    approvals_checked: BTreeMap<String, (u64, usize)>,
    /// An engine on the plain backends (no faults, no oracle), to ask for plans.
    observer: Promoter,
}

impl World {
    pub fn new(seed: u64, trace: bool) -> Self {
        let mut rng = Rng::new(seed);
        let start: DateTime<Utc> = match rng.below(10) {
            0..=3 => "2026-05-04T08:00:00Z".parse().expect("instant"),
            4 | 5 => "2026-03-28T18:00:00Z".parse().expect("instant"),
            6 | 7 => "2026-10-24T18:00:00Z".parse().expect("instant"),
            _ => {
                let base: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("instant");
                base + TimeDelta::minutes(rng.between(0, 365 * 24 * 60))
            }
        };
        let policy = random_policy(&mut rng, start);
        let clock = ManualClock::new(start);
        let auto = rng.chance(75);
        let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(auto);
        let mut roles: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for person in PEOPLE {
            for role in rng.subset(&ROLES, 30) {
                roles.entry(person.to_owned()).or_default().insert(role.to_owned());
            }
        }
        for role in ROLES {
            if !roles.values().any(|r| r.contains(role)) && rng.chance(80) {
                roles.entry(rng.pick(&PEOPLE).to_string()).or_default().insert(role.to_owned());
            }
        }
        let directory =
            StaticDirectory::new(roles.iter().map(|(p, r)| (p.clone(), r.iter().cloned().collect())).collect());
        let checks = MemoryChecks::new();
        let external = MemoryApprovals::new();
        let oracle = Arc::new(Mutex::new(Oracle {
            policy: policy.clone(),
            clock: clock.clone(),
            ci: ci.clone(),
            checks: checks.clone(),
            external: external.clone(),
            roles,
            commits: BTreeMap::new(),
            overriding: Vec::new(),
            triggered: Vec::new(),
            dirty: false,
            violations: Vec::new(),
            sched: rng.fork(),
            concurrent: false,
            stats: Stats::default(),
        }));
        let lease = TimeDelta::minutes(rng.between(2, 10));
        let (source, store) = (MemorySourceControl::new(), MemoryStore::new());
        let observer = Promoter::builder(policy.clone())
            .with_ci(Arc::new(ci.clone()))
            .with_checks(Arc::new(checks.clone()))
            .with_approvals(Arc::new(external.clone()))
            .with_directory(Arc::new(directory.clone()))
            .with_source_control(Arc::new(source.clone()))
            .with_store(Arc::new(store.clone()))
            .with_clock(Arc::new(clock.clone()))
            .with_id("observer")
            .build()
            .expect("every backend is set");
        let mut world = Self {
            oracle,
            policy,
            clock,
            ci,
            checks,
            external,
            directory,
            source,
            store,
            lease,
            nodes: Vec::new(),
            rng,
            trace: trace.then(Vec::new),
            counter: 0,
            trunk_head: None,
            pending: Vec::new(),
            delivered: Vec::new(),
            branch_heads: BTreeMap::new(),
            accepted: Vec::new(),
            last_audit: None,
            keys: HashSet::new(),
            requests_seen: 0,
            next_wake: None,
            auto,
            decoded: Default::default(),
            approvals_checked: BTreeMap::new(),
            observer,
        };
        world.nodes = vec![world.node("A"), world.node("B")];
        if let Some(trace) = &mut world.trace {
            trace.push(format!("start {start}, lease {} min, CI auto-complete {auto}", lease.num_minutes()));
            trace.push(format!("policy: {}", serde_json::to_string(&world.policy).unwrap_or_default()));
            let roles = &lock(&world.oracle).roles;
            trace.push(format!("roles: {roles:?}"));
        }
        world
    }

    fn node(&self, id: &str) -> Node {
        let life = Arc::new(Life::default());
        let store = SimStore { inner: self.store.clone(), life: life.clone(), oracle: self.oracle.clone() };
        let ci = SimCi {
            inner: self.ci.clone(),
            store: self.store.clone(),
            life: life.clone(),
            oracle: self.oracle.clone(),
        };
        let engine = Promoter::builder(self.policy.clone())
            .with_ci(Arc::new(ci))
            .with_checks(Arc::new(self.checks.clone()))
            .with_approvals(Arc::new(self.external.clone()))
            .with_directory(Arc::new(self.directory.clone()))
            .with_source_control(Arc::new(self.source.clone()))
            .with_store(Arc::new(store))
            .with_clock(Arc::new(self.clock.clone()))
            .with_id(id)
            .with_lease(self.lease)
            .with_poll_interval(TimeDelta::minutes(1))
            .build()
            .expect("every backend is set");
        Node { id: id.to_owned(), engine, life }
    }

    pub fn violations(&self) -> Vec<String> {
        lock(&self.oracle).violations.clone()
    }

    pub fn stats(&self) -> Stats {
        lock(&self.oracle).stats.clone()
    }

    pub fn take_trace(&mut self) -> Vec<String> {
        self.trace.take().unwrap_or_default()
    }

    fn now(&self) -> DateTime<Utc> {
        atlas_promote_core::Clock::now(&self.clock)
    }

    fn engine(&self, i: usize) -> Promoter {
        self.nodes[i].engine.clone()
    }

    fn pick_node(&mut self) -> usize {
        usize::from(self.rng.chance(20))
    }

    fn person(&mut self) -> String {
        self.rng.pick(&PEOPLE).to_string()
    }

    /// Someone holding one of `roles`, if anyone does.
    fn holder(&mut self, roles: &[String]) -> Option<String> {
        let holders: Vec<String> = lock(&self.oracle)
            .roles
            .iter()
            .filter(|(_, held)| roles.iter().any(|r| held.contains(r)))
            .map(|(p, _)| p.clone())
            .collect();
        (!holders.is_empty()).then(|| self.rng.pick(&holders).clone())
    }

    fn environments(&self) -> Vec<String> {
        self.policy.stages.iter().filter(|s| s.kind == StageKind::Environment).map(|s| s.name.clone()).collect()
    }

    /// Every promotion as stored (decoded once per version).
    async fn promotions(&self) -> Vec<(String, PromotionRecord)> {
        let docs = self.store.list("promotion/").await.expect("the memory store lists");
        let mut cache = self.decoded.borrow_mut();
        docs.into_iter()
            .filter_map(|d| {
                if let Some((_, p)) = cache.get(&d.key).filter(|(v, _)| *v == d.version) {
                    return Some((d.key, p.clone()));
                }
                let (key, version) = (d.key.clone(), d.version);
                let p = read::<PromotionRecord>(d)?;
                cache.insert(key.clone(), (version, p.clone()));
                Some((key, p))
            })
            .collect()
    }

    /// The stage a promotion's approvals matter for: where it heads next
    /// (or, when it failed there, where a retry would take it).
    fn heading(&self, p: &PromotionRecord) -> Option<String> {
        let state = &p.promotion.state;
        match state {
            State::Failed { stage, .. } | State::Deploying { stage, .. } | State::Flushing { stage, .. } => {
                Some(stage.clone())
            }
            _ if state.is_ended() => None,
            _ => {
                let here = self.policy.stage_index(state.stage())?;
                self.policy.stages[here + 1..].iter().find(|s| !s.ephemeral).map(|s| s.name.clone())
            }
        }
    }

    fn note(&mut self, n: usize, text: impl FnOnce() -> String) {
        if self.trace.is_some() {
            let line = format!("#{n} {} {}", self.now().format("%a %Y-%m-%d %H:%M"), text());
            if let Some(trace) = &mut self.trace {
                trace.push(line);
            }
        }
    }

    fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    pub async fn step(&mut self, n: usize) {
        lock(&self.oracle).stats.steps += 1;
        let stuck = !self.auto && self.ci.runs().iter().any(|r| !r.status.is_finished());
        let weights: Vec<u32> = EVENTS
            .iter()
            .map(|(e, w)| match e {
                // Without auto-completion, runs finish only when the CI says so.
                Event::CompleteRun if stuck => 15,
                _ => *w,
            })
            .collect();
        let event = EVENTS[self.rng.weighted(&weights)].0;
        let text = self.event(event).await;
        self.note(n, || text);
        let webhook = matches!(
            event,
            Event::Merge
                | Event::Deliver
                | Event::BranchBuild
                | Event::CompleteRun
                | Event::Nightly
                | Event::Monitor
                | Event::Approve
                | Event::Release
        );
        if webhook && self.rng.chance(50) && !self.nodes[0].life.is_dead() {
            // The embedding program ticks when a webhook arrives.
            let text = self.ticks(0).await;
            self.note(n, || format!("   (webhook) {text}"));
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].life.is_dead() {
                let text = self.restart(i);
                self.note(n, || text);
            }
        }
        self.check_world().await;
    }

    fn restart(&mut self, i: usize) -> String {
        let old = self.nodes[i].id.clone();
        let id = if self.rng.chance(70) {
            old.clone()
        } else {
            self.counter += 1;
            format!("{}{}", if i == 0 { "A" } else { "B" }, self.counter)
        };
        self.nodes[i] = self.node(&id);
        lock(&self.oracle).stats.restarts += 1;
        format!("   engine {old} restarts as {id}, reloading from the store")
    }

    async fn event(&mut self, event: Event) -> String {
        match event {
            Event::Merge => self.merge().await,
            Event::Deliver => {
                if self.pending.is_empty() {
                    return self.merge().await;
                }
                let i = self.rng.below(self.pending.len());
                let (candidate, at) = self.pending.remove(i);
                self.delivered.push((candidate.clone(), at));
                let node = self.pick_node();
                let sha = candidate.sha.clone();
                let r = operate(self.engine(node), Operation::Merged { candidate, at }).await;
                format!("{}: late merge notice of {sha} (merged {at}) → {r}", self.nodes[node].id)
            }
            Event::Redeliver => {
                if self.delivered.is_empty() {
                    return self.merge().await;
                }
                let (candidate, at) = self.rng.pick(&self.delivered).clone();
                let node = self.pick_node();
                let sha = candidate.sha.clone();
                let r = operate(self.engine(node), Operation::Merged { candidate, at }).await;
                format!("{}: duplicate merge notice of {sha} → {r}", self.nodes[node].id)
            }
            Event::BranchBuild => self.branch_build().await,
            Event::Tick => self.ticks(0).await,
            Event::TickOther => self.ticks(1).await,
            Event::TickBoth => {
                lock(&self.oracle).stats.concurrent_steps += 1;
                let (a, b) = (self.engine(0), self.engine(1));
                lock(&self.oracle).concurrent = true;
                let (ra, rb) = both(&self.oracle, a.tick(), b.tick()).await;
                lock(&self.oracle).concurrent = false;
                let ra = self.tick_report(ra);
                let rb = self.tick_report(rb);
                format!("{} and {} tick at once → {ra} / {rb}", self.nodes[0].id, self.nodes[1].id)
            }
            Event::TickAndOperate => {
                lock(&self.oracle).stats.concurrent_steps += 1;
                let Some(op) = self.operation().await else { return self.ticks(0).await };
                let (ticking, operating) = if self.rng.chance(50) { (0, 1) } else { (1, 0) };
                let text = format!("{op:?}");
                if let Operation::Override { sha, by, bypass, reason } = &op {
                    self.ask_override(sha, by, bypass, reason);
                }
                let (a, b) = (self.engine(ticking), self.engine(operating));
                lock(&self.oracle).concurrent = true;
                let (rt, ro) = both(&self.oracle, a.tick(), operate(b, op)).await;
                let mut o = lock(&self.oracle);
                o.concurrent = false;
                o.overriding.clear();
                drop(o);
                let rt = self.tick_report(rt);
                format!("{} ticks while {} runs {text} → {rt} / {ro}", self.nodes[ticking].id, self.nodes[operating].id)
            }
            Event::TickAndHuman => self.tick_and_human().await,
            Event::Advance => {
                let by = match self.rng.below(20) {
                    0..=9 => TimeDelta::minutes(self.rng.between(1, 30)),
                    10..=16 => TimeDelta::hours(self.rng.between(1, 12)),
                    _ => TimeDelta::days(self.rng.between(1, 3)),
                };
                self.clock.advance(by);
                format!("time passes: {} min", by.num_minutes())
            }
            Event::AdvanceToWake => match self.next_wake.filter(|w| *w > self.now()) {
                Some(wake) => {
                    let extra = TimeDelta::seconds(self.rng.between(0, 120));
                    self.clock.set(wake + extra);
                    self.ticks(0).await
                }
                None => {
                    self.clock.advance(TimeDelta::minutes(1));
                    "time passes: 1 min".into()
                }
            },
            Event::DstJump => {
                let now = self.now();
                let next = DST_CHANGES.iter().map(|t| t.parse::<DateTime<Utc>>().expect("instant")).find(|t| *t > now);
                match next {
                    Some(t) => {
                        let to = t - TimeDelta::minutes(self.rng.between(0, 150));
                        let to = to.max(now);
                        self.clock.set(to);
                        format!("clock jumps to {to}, near a DST change at {t}")
                    }
                    None => {
                        self.clock.advance(TimeDelta::hours(1));
                        "time passes: 60 min".into()
                    }
                }
            }
            Event::ClockBack => {
                let by = TimeDelta::minutes(self.rng.between(1, 15));
                self.clock.set(self.now() - by);
                format!("clock steps back {} min", by.num_minutes())
            }
            Event::SetOutcome => {
                let envs = self.environments();
                let stage = self.rng.pick(&envs).clone();
                let kind = if self.rng.chance(70) { RunKind::Deploy } else { RunKind::Flush };
                let outcome = match self.rng.below(20) {
                    0..=10 => Outcome::Succeed,
                    11..=16 => Outcome::Fail,
                    _ => Outcome::Hang,
                };
                self.ci.set_outcome(&stage, kind, outcome);
                format!("CI: {kind} runs into {stage} will {outcome:?}")
            }
            Event::CompleteRun => {
                let open: Vec<_> = self.ci.runs().into_iter().filter(|r| !r.status.is_finished()).collect();
                if open.is_empty() {
                    return "CI: nothing to complete".into();
                }
                let run = self.rng.pick(&open).clone();
                let status = match self.rng.below(20) {
                    0..=11 => RunStatus::Succeeded,
                    12..=16 => RunStatus::Failed,
                    _ => RunStatus::Cancelled,
                };
                let r = self.ci.complete(&run.id, status.clone(), self.now());
                lock(&self.oracle).dirty = true;
                format!("CI: run {} ({}) finishes {status} → {:?}", run.id, run.key, r.map(|r| r.status))
            }
            Event::ToggleAuto => {
                self.auto = !self.auto;
                self.ci.set_auto_complete(self.auto);
                format!("CI: auto-complete {}", self.auto)
            }
            Event::Nightly => self.nightly().await,
            Event::Cooperate => self.cooperate().await,
            Event::Monitor => self.monitor().await,
            Event::Approve => self.approve().await,
            Event::ExternalApproval => {
                let (stage, sha) = self.approval_target().await;
                let approver = self.person();
                let decision = self.decision();
                let claimed: Vec<String> = self.rng.subset(&ROLES, 50).into_iter().map(str::to_owned).collect();
                let record = ApprovalRecord { approver, roles: claimed, stage, sha, decision, at: self.now() };
                let text = format!("external source: {record:?}");
                self.external.add(record);
                text
            }
            Event::Grant => {
                let person = self.person();
                let role = self.rng.pick(&ROLES).to_string();
                self.directory.grant(&person, &role);
                lock(&self.oracle).roles.entry(person.clone()).or_default().insert(role.clone());
                format!("{person} gains {role}")
            }
            Event::Revoke => {
                let held: Vec<(String, String)> = lock(&self.oracle)
                    .roles
                    .iter()
                    .flat_map(|(p, rs)| rs.iter().map(move |r| (p.clone(), r.clone())))
                    .collect();
                if held.is_empty() {
                    return "nobody holds a role".into();
                }
                let (person, role) = self.rng.pick(&held).clone();
                self.directory.revoke(&person, &role);
                if let Some(rs) = lock(&self.oracle).roles.get_mut(&person) {
                    rs.remove(&role);
                }
                format!("{person} loses {role}")
            }
            Event::Abandon => {
                let op = self.abandon_op().await;
                let Operation::Abandon { sha, reason, .. } = &op else { unreachable!("an abandon") };
                let (sha, blank) = (sha.clone(), reason.trim().is_empty());
                let failed = |p: &[(String, PromotionRecord)]| {
                    p.iter().any(|(_, p)| {
                        p.promotion.candidate.sha == sha && matches!(p.promotion.state, State::Failed { .. })
                    })
                };
                let before = failed(&self.promotions().await);
                let node = self.pick_node();
                let text = format!("{}: {op:?}", self.nodes[node].id);
                let r = operate(self.engine(node), op).await;
                let after = self.promotions().await;
                let abandoned = after.iter().any(|(_, p)| {
                    p.promotion.candidate.sha == sha && matches!(p.promotion.state, State::Abandoned { .. })
                });
                let mut o = lock(&self.oracle);
                match r.as_str() {
                    "ok" if !before || blank || !abandoned => {
                        o.violation(format!("{text} was taken, but {sha} was not failed or no reason was given"))
                    }
                    "ok" => o.stats.abandoned += 1,
                    refused if refused.starts_with("error: refused:") && before && !blank => {
                        o.violation(format!("{text} was refused although {sha} had failed: {refused}"))
                    }
                    _ => {}
                }
                drop(o);
                format!("{text} → {r}")
            }
            Event::Retry | Event::Override | Event::Rollback => {
                let op = match event {
                    Event::Retry => self.retry_op().await,
                    Event::Override => self.override_op().await,
                    _ => self.rollback_op(),
                };
                let node = self.pick_node();
                let text = format!("{}: {op:?}", self.nodes[node].id);
                if let Operation::Override { sha, by, bypass, reason } = &op {
                    self.ask_override(sha, by, bypass, reason);
                }
                let r = operate(self.engine(node), op).await;
                lock(&self.oracle).overriding.clear();
                format!("{text} → {r}")
            }
            Event::Hold | Event::Release => {
                let envs = self.environments();
                let stage = self.rng.pick(&envs).clone();
                let by = self.person();
                let node = self.pick_node();
                let engine = self.engine(node);
                let r = match event {
                    Event::Hold => engine.hold(&stage, &by, "incident").await,
                    _ => engine.release(&stage, &by).await.map(|_| ()),
                };
                format!("{by} {event:?}s {stage} → {r:?}")
            }
            Event::ArmFault => {
                let node = self.pick_node();
                let fault = *self.rng.pick(&Fault::ALL);
                let after = self.rng.below(6) as u32;
                self.nodes[node].life.arm(after, fault);
                let kind = if is_crash(fault) { "crash" } else { "fault" };
                format!("{kind} armed in {}: {fault:?} after {after} more such calls", self.nodes[node].id)
            }
            Event::Restart => {
                let node = self.pick_node();
                self.restart(node)
            }
        }
    }

    fn ask_override(&mut self, sha: &str, by: &str, bypass: &[String], reason: &str) {
        lock(&self.oracle).overriding.push(OverrideAsk {
            sha: sha.to_owned(),
            by: by.to_owned(),
            bypass: bypass.to_vec(),
            reason: reason.to_owned(),
        });
    }

    async fn operation(&mut self) -> Option<Operation> {
        Some(match self.rng.below(4) {
            0 => self.override_op().await,
            1 => self.retry_op().await,
            2 => self.rollback_op(),
            _ => {
                if self.delivered.is_empty() {
                    return None;
                }
                let (candidate, at) = self.rng.pick(&self.delivered).clone();
                Operation::Merged { candidate, at }
            }
        })
    }

    async fn retry_op(&mut self) -> Operation {
        let failed: Vec<(String, String)> = self
            .promotions()
            .await
            .into_iter()
            .filter_map(|(_, p)| match &p.promotion.state {
                State::Failed { stage, .. } => Some((p.promotion.candidate.sha.clone(), stage.clone())),
                _ => None,
            })
            .collect();
        let (sha, stage) = if !failed.is_empty() && self.rng.chance(85) {
            self.rng.pick(&failed).clone()
        } else {
            let envs = self.environments();
            (self.known_sha(), self.rng.pick(&envs).clone())
        };
        Operation::Retry { sha, stage, by: self.person() }
    }

    async fn abandon_op(&mut self) -> Operation {
        let failed: Vec<String> = self
            .promotions()
            .await
            .into_iter()
            .filter(|(_, p)| matches!(p.promotion.state, State::Failed { .. }))
            .map(|(_, p)| p.promotion.candidate.sha)
            .collect();
        let sha =
            if !failed.is_empty() && self.rng.chance(85) { self.rng.pick(&failed).clone() } else { self.known_sha() };
        let reason = if self.rng.chance(90) { "the build is broken".to_owned() } else { " ".to_owned() };
        Operation::Abandon { sha, by: self.person(), reason }
    }

    async fn override_op(&mut self) -> Operation {
        let waiting: Vec<String> = self
            .promotions()
            .await
            .into_iter()
            .filter(|(_, p)| p.promotion.state.awaits_gate())
            .map(|(_, p)| p.promotion.candidate.sha)
            .collect();
        let sha =
            if !waiting.is_empty() && self.rng.chance(85) { self.rng.pick(&waiting).clone() } else { self.known_sha() };
        let permitted = self.policy.overrides.as_ref().map(|o| o.roles.clone()).unwrap_or_default();
        let by = match self.rng.chance(50).then(|| self.holder(&permitted)).flatten() {
            Some(p) => p,
            None => self.person(),
        };
        let bypass: Vec<String> = match self.rng.below(10) {
            0..=4 => KINDS.iter().map(|k| k.to_string()).collect(),
            5..=7 => self.rng.subset(&KINDS, 50).into_iter().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let reason = if self.rng.chance(90) { "hotfix for an incident".to_owned() } else { "  ".to_owned() };
        Operation::Override { sha, by, bypass, reason }
    }

    fn rollback_op(&mut self) -> Operation {
        let envs = self.environments();
        let stage = self.rng.pick(&envs).clone();
        let branch = (stage == EPHEMERAL && self.rng.chance(80))
            .then(|| self.rng.pick(&["feature/a", "feature/b", "fix/c"]).to_string());
        Operation::Rollback { stage, branch, by: self.person() }
    }

    fn known_sha(&mut self) -> String {
        let shas: Vec<String> = lock(&self.oracle).commits.keys().cloned().collect();
        if shas.is_empty() || self.rng.chance(5) { "c999".into() } else { self.rng.pick(&shas).clone() }
    }

    fn decision(&mut self) -> ApprovalDecision {
        match self.rng.below(20) {
            0..=13 => ApprovalDecision::Approve,
            14..=16 => ApprovalDecision::Reject,
            _ => ApprovalDecision::Withdraw,
        }
    }

    fn files(&mut self) -> Vec<String> {
        let n = self.counter;
        match self.rng.below(4) {
            0 => vec![format!("pipelines/p{}.py", n % 3)],
            1 => vec![format!("pipelines/p{}.py", n % 3), format!("src/m{}.rs", n % 5)],
            _ => vec![format!("src/m{}.rs", n % 5)],
        }
    }

    async fn merge(&mut self) -> String {
        self.counter += 1;
        let sha = format!("c{}", self.counter);
        let author = self.person();
        let files = self.files();
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        self.source.commit(&sha, self.trunk_head.as_deref(), &author, &refs);
        let commit =
            Commit { parent: self.trunk_head.clone(), author: author.clone(), files: files.clone(), branch: None };
        lock(&self.oracle).commits.insert(sha.clone(), commit);
        self.trunk_head = Some(sha.clone());
        let now = self.now();
        let candidate = Candidate { created_at: Some(now), ..Candidate::trunk(sha.clone(), [author.clone()]) };
        let node = self.pick_node();
        let engine = self.engine(node);
        let mut text = format!("{author} merges {sha} {files:?}");
        let review = self.rng.chance(15);
        if review {
            let r = engine.open_review(Candidate::trunk(sha.clone(), [author.clone()])).await;
            text.push_str(&format!("; its pull request was opened → {r:?}"));
        }
        if review || self.rng.chance(20) {
            self.pending.push((candidate, now));
            text.push_str("; the merge notice is delayed");
            return text;
        }
        self.delivered.push((candidate.clone(), now));
        let r = engine.merged(candidate, now).await;
        format!("{text} → {}: {r:?}", self.nodes[node].id)
    }

    async fn branch_build(&mut self) -> String {
        if self.policy.stage(EPHEMERAL).is_none() {
            return self.merge().await;
        }
        let branch = self.rng.pick(&["feature/a", "feature/b", "fix/c"]).to_string();
        self.counter += 1;
        let sha = format!("b{}", self.counter);
        let author = self.person();
        let files = self.files();
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        let parent = self.branch_heads.get(&branch).cloned().or_else(|| self.trunk_head.clone());
        self.source.commit(&sha, parent.as_deref(), &author, &refs);
        let commit = Commit { parent, author: author.clone(), files: files.clone(), branch: Some(branch.clone()) };
        lock(&self.oracle).commits.insert(sha.clone(), commit);
        self.branch_heads.insert(branch.clone(), sha.clone());
        let node = self.pick_node();
        let r = self
            .engine(node)
            .deploy_branch(Candidate::branch(sha.clone(), branch.clone(), [author.clone()]), EPHEMERAL)
            .await;
        format!("{author} asks for {branch}@{sha} {files:?} in {EPHEMERAL} → {r:?}")
    }

    fn tick_report(&mut self, result: atlas_promote_core::Result<Tick>) -> String {
        match result {
            Ok(tick) => {
                let mut o = lock(&self.oracle);
                o.stats.ticks += 1;
                for (_, error) in &tick.failures {
                    let class = classify(error);
                    *o.stats.failures.entry(class).or_default() += 1;
                    if matches!(class, "transition" | "other" | "invalid" | "not_found") && o.stats.samples.len() < 12 {
                        o.stats.samples.insert(error.to_string());
                    }
                }
                drop(o);
                self.next_wake = tick.next_wake;
                if self.tracing() { format!("tick{}", summary(&tick)) } else { String::new() }
            }
            Err(e) => format!("tick error: {e}"),
        }
    }

    async fn ticks(&mut self, node: usize) -> String {
        let engine = self.engine(node);
        let mut out = Vec::new();
        for _ in 0..4 {
            let result = engine.tick().await;
            let idle = result.as_ref().map_or(true, Tick::is_idle);
            if let Ok(tick) = &result {
                self.check_wakes(tick).await;
            }
            out.push(self.tick_report(result));
            if idle {
                break;
            }
        }
        format!("{} ticks: {}", self.nodes[node].id, out.join(" ; "))
    }

    /// After a tick no other call ran alongside: every promotion waiting on
    /// time (its next gate says *wait until*, as [`Promoter::plan`] sees it
    /// now, through the plain backends) has a wake-up in the tick no later
    /// than that instant, unless the tick failed with it (then it is
    /// retried at the poll).
    async fn check_wakes(&mut self, tick: &Tick) {
        let failed: HashSet<&str> = tick.failures.iter().map(|(key, _)| key.as_str()).collect();
        let mut found = Vec::new();
        for (key, p) in self.promotions().await {
            if !p.promotion.state.awaits_gate() || failed.contains(key.as_str()) {
                continue;
            }
            let sha = &p.promotion.candidate.sha;
            let plan = match self.observer.plan(sha).await {
                Ok(plan) => plan,
                Err(e) => {
                    found.push(format!("wake: the plan of {sha} failed: {e}"));
                    continue;
                }
            };
            let Some(Verdict::Wait { until }) = plan.steps.first().and_then(|s| s.decision.as_ref()).map(|d| d.verdict)
            else {
                continue;
            };
            lock(&self.oracle).stats.waits_checked += 1;
            if tick.next_wake.is_none_or(|w| w > until) {
                found.push(format!(
                    "wake: {key} waits until {until} to leave {}, but the tick names {:?}",
                    p.promotion.state.stage(),
                    tick.next_wake
                ));
            }
        }
        let mut o = lock(&self.oracle);
        for f in found {
            o.violation(f);
        }
    }

    async fn nightly(&mut self) -> String {
        let promotions = self.promotions().await;
        let mut active: Vec<PromotionRecord> =
            promotions.into_iter().map(|(_, p)| p).filter(|p| !p.promotion.state.is_ended()).collect();
        active.sort_by_key(|p| p.promotion.seq);
        let sha = if active.is_empty() || self.rng.chance(10) {
            self.known_sha()
        } else {
            let i = if self.rng.chance(40) { active.len() - 1 } else { self.rng.below(active.len()) };
            active[i].promotion.candidate.sha.clone()
        };
        let here =
            active.iter().find(|p| p.promotion.candidate.sha == sha).map(|p| p.promotion.state.stage().to_owned());
        let with_checks: Vec<String> =
            self.policy.stages.iter().filter(|s| !s.checks.is_empty()).map(|s| s.name.clone()).collect();
        let stage = match here.filter(|h| with_checks.contains(h)) {
            Some(h) if self.rng.chance(80) => h,
            _ => self.rng.pick(&with_checks).clone(),
        };
        let names: Vec<String> =
            self.policy.stage(&stage).map(|s| s.checks.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
        let mode = self.rng.below(20);
        let odd = self.rng.below(names.len().max(1));
        let started_at = self.now();
        self.clock.advance(TimeDelta::minutes(self.rng.between(10, 60)));
        let finished = self.now();
        let mut statuses = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let status = match mode {
                0..=11 => CheckStatus::Passed,
                12..=14 if i == odd => CheckStatus::Failed,
                15 | 16 => CheckStatus::Failed,
                17 | 18 if i == odd => CheckStatus::Running,
                19 if i == odd => CheckStatus::Errored,
                _ => CheckStatus::Passed,
            };
            statuses.push(format!("{name} {status}"));
            let finished_at = status.is_finished().then_some(finished);
            self.checks.report(CheckResult { name: name.clone(), sha: sha.clone(), status, started_at, finished_at });
        }
        format!("checks of {stage} on {sha}: {}", statuses.join(", "))
    }

    /// The team does what the newest waiting candidate needs next: its
    /// stage's checks pass, and eligible people (not its author) approve it
    /// into the next stage; then the engine ticks.
    async fn cooperate(&mut self) -> String {
        let mut waiting: Vec<PromotionRecord> = self
            .promotions()
            .await
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.promotion.state.awaits_gate() && p.promotion.candidate.origin == Origin::Trunk)
            .collect();
        if waiting.is_empty() {
            return self.merge().await;
        }
        waiting.sort_by_key(|p| p.promotion.seq);
        let i = if self.rng.chance(70) { waiting.len() - 1 } else { self.rng.below(waiting.len()) };
        let p = waiting[i].clone();
        let sha = p.promotion.candidate.sha.clone();
        let here = p.promotion.state.stage().to_owned();
        let mut done = Vec::new();
        let names: Vec<String> =
            self.policy.stage(&here).map(|s| s.checks.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
        if !names.is_empty() {
            let started_at = self.now();
            self.clock.advance(TimeDelta::minutes(20));
            for name in &names {
                let result = CheckResult {
                    name: name.clone(),
                    sha: sha.clone(),
                    status: CheckStatus::Passed,
                    started_at,
                    finished_at: Some(self.now()),
                };
                self.checks.report(result);
            }
            done.push(format!("checks of {here} pass"));
        }
        if let Some(to) = self.heading(&p) {
            let rule = self.policy.stage(&to).and_then(|s| s.approvals.clone());
            let author = lock(&self.oracle).commits.get(&sha).map(|c| c.author.clone());
            let mut chosen: Vec<String> = Vec::new();
            for (role, count) in rule.map(|r| r.require).unwrap_or_default() {
                for _ in 0..count {
                    let holders: Vec<String> = lock(&self.oracle)
                        .roles
                        .iter()
                        .filter(|(person, held)| {
                            held.contains(&role) && Some(*person) != author.as_ref() && !chosen.contains(person)
                        })
                        .map(|(person, _)| person.clone())
                        .collect();
                    if holders.is_empty() {
                        continue;
                    }
                    let person = self.rng.pick(&holders).clone();
                    chosen.push(person.clone());
                    let approval = Approval {
                        person: person.clone(),
                        stage: to.clone(),
                        sha: sha.clone(),
                        decision: ApprovalDecision::Approve,
                        self_approval: false,
                        refusal: None,
                    };
                    let approval = self.with_refusal(approval).await;
                    let result = self.engine(0).approve(&person, &to, &sha, ApprovalDecision::Approve).await;
                    done.push(self.approved(&approval, &result).await);
                }
            }
        }
        let ticked = if self.nodes[0].life.is_dead() { String::new() } else { self.ticks(0).await };
        format!("the team helps {sha} out of {here}: {} ; {ticked}", done.join(", "))
    }

    async fn monitor(&mut self) -> String {
        let Some(stage) = self.policy.stages.iter().find(|s| s.monitor.is_some()).cloned() else {
            return "no monitor".into();
        };
        let Some(monitor) = stage.monitor.clone() else { return "no monitor".into() };
        let live = match self.store.get(&format!("environment/{}", stage.name)).await.expect("memory store") {
            Some(doc) => read::<EnvironmentRecord>(doc).and_then(|e| e.live_sha),
            None => None,
        };
        let Some(sha) = live else { return format!("nothing live in {} to monitor", stage.name) };
        let status = match self.rng.below(20) {
            0..=9 => CheckStatus::Passed,
            10..=16 => CheckStatus::Failed,
            _ => CheckStatus::Errored,
        };
        let started_at = self.now();
        self.clock.advance(TimeDelta::minutes(5));
        let finished_at = Some(self.now());
        self.checks.report(CheckResult {
            name: monitor.check.clone(),
            sha: sha.clone(),
            status,
            started_at,
            finished_at,
        });
        format!("monitor: {} {status} on {sha} live in {}", monitor.check, stage.name)
    }

    /// A (stage, sha) worth approving: mostly where an active promotion heads.
    async fn approval_target(&mut self) -> (String, String) {
        let promotions = self.promotions().await;
        let mut promotions = promotions;
        promotions.sort_by_key(|(_, p)| p.promotion.seq);
        let heading: Vec<(String, String)> = promotions
            .iter()
            .filter_map(|(_, p)| {
                let to = self.heading(p)?;
                self.policy.stage(&to)?.approvals.as_ref()?;
                Some((to, p.promotion.candidate.sha.clone()))
            })
            .collect();
        if !heading.is_empty() && self.rng.chance(80) {
            // People mostly look at the newest candidates.
            let i = if self.rng.chance(50) { heading.len() - 1 } else { self.rng.below(heading.len()) };
            return heading[i].clone();
        }
        let with_rules: Vec<String> =
            self.policy.stages.iter().filter(|s| s.approvals.is_some()).map(|s| s.name.clone()).collect();
        let stage = if with_rules.is_empty() || self.rng.chance(10) {
            self.rng.pick(&self.policy.stages).name.clone()
        } else {
            self.rng.pick(&with_rules).clone()
        };
        (stage, self.known_sha())
    }

    /// Someone approves, rejects or withdraws: who, what and where.
    async fn approval(&mut self) -> Approval {
        let (stage, sha) = self.approval_target().await;
        let rule = self.policy.stage(&stage).and_then(|s| s.approvals.clone());
        let author = lock(&self.oracle).commits.get(&sha).map(|c| c.author.clone());
        let person = match self.rng.below(20) {
            0..=2 => author.clone().unwrap_or_else(|| self.person()),
            3..=12 => {
                let roles: Vec<String> = rule.as_ref().map(|r| r.require.keys().cloned().collect()).unwrap_or_default();
                self.holder(&roles).unwrap_or_else(|| self.person())
            }
            _ => self.person(),
        };
        let decision = self.decision();
        let self_approval = rule.as_ref().is_some_and(|r| r.forbid_self_approval)
            && decision == ApprovalDecision::Approve
            && author.as_deref() == Some(person.as_str());
        self.with_refusal(Approval { person, stage, sha, decision, self_approval, refusal: None }).await
    }

    /// `approval`, with why the engine must refuse it now, if it must.
    async fn with_refusal(&self, approval: Approval) -> Approval {
        let refusal = self.refusal(&approval).await;
        Approval { refusal, ..approval }
    }

    /// Why the engine must refuse `a` now, by the rules: an approval that
    /// could never count (the stage has no approval rule, the commit is
    /// not a candidate, or the candidate will never enter the stage again:
    /// it ended, it is past the stage and did not fail there, or its road
    /// does not lead there), or a self-approval the policy forbids.
    async fn refusal(&self, a: &Approval) -> Option<String> {
        let Some(stage) = self.policy.stage(&a.stage) else { return Some("no such stage".into()) };
        if stage.approvals.is_none() {
            return Some(format!("{} has no approval rule", a.stage));
        }
        let promotions = self.promotions().await;
        let Some((_, p)) = promotions.iter().find(|(_, p)| p.promotion.candidate.sha == a.sha) else {
            return Some(format!("no candidate {}", a.sha));
        };
        let state = &p.promotion.state;
        if state.is_ended() {
            return Some(format!("{} has ended", a.sha));
        }
        let on_its_road = match p.promotion.candidate.origin {
            Origin::Branch => p.target.as_deref() == Some(a.stage.as_str()),
            Origin::Trunk => !stage.ephemeral,
        };
        if !on_its_road {
            return Some(format!("{} never goes to {}", a.sha, a.stage));
        }
        let index = |name: &str| self.policy.stages.iter().position(|s| s.name == name);
        let failed_there = matches!(state, State::Failed { stage, .. } if *stage == a.stage);
        if index(&a.stage) <= index(state.stage()) && !failed_there {
            return Some(format!("{} is {state}, past {}", a.sha, a.stage));
        }
        a.self_approval.then(|| format!("{} authored {}", a.person, a.sha))
    }

    /// What the engine answered to an approval: refused when the rules say
    /// so before or after the call (a tick may run alongside), accepted
    /// otherwise; counting when the approver holds a role of the rule.
    async fn approved(
        &mut self,
        a: &Approval,
        result: &atlas_promote_core::Result<atlas_promote_core::ApprovalOutcome>,
    ) -> String {
        let after = self.refusal(a).await;
        let Approval { person, stage, sha, decision, self_approval, refusal } = a;
        let rule_roles: Vec<String> = self
            .policy
            .stage(stage)
            .and_then(|s| s.approvals.as_ref())
            .map(|r| r.require.keys().cloned().collect())
            .unwrap_or_default();
        let mut o = lock(&self.oracle);
        match result {
            Ok(outcome) => {
                o.stats.approvals_accepted += 1;
                if let (Some(before), Some(after)) = (refusal, &after) {
                    o.violation(format!(
                        "{person}'s {decision} of {sha} into {stage} was taken, but must be refused: {before} (after: {after})"
                    ));
                }
                let record = outcome.record();
                if record.approver != *person
                    || record.stage != *stage
                    || record.sha != *sha
                    || record.decision != *decision
                {
                    o.violation(format!("approve returned another record than asked: {record:?}"));
                }
                let held = o.roles.get(person).cloned().unwrap_or_default();
                let counts = rule_roles.iter().any(|r| held.contains(r));
                if outcome.counts() != counts {
                    o.violation(format!(
                        "{person}'s {decision} of {sha} into {stage} counts: {}, but {person} holds {held:?} and the rule counts {rule_roles:?}",
                        outcome.counts()
                    ));
                }
                if !counts {
                    o.stats.approvals_not_counting += 1;
                }
                self.accepted.push(record.clone());
            }
            Err(Error::Refused { reason }) => {
                if *self_approval {
                    o.stats.self_approvals_refused += 1;
                } else {
                    o.stats.approvals_refused += 1;
                }
                if refusal.is_none() && after.is_none() {
                    o.violation(format!("{person}'s {decision} of {sha} into {stage} was refused: {reason}"));
                }
            }
            Err(_) => {}
        }
        format!("{person} {decision}s {sha} into {stage} → {result:?}")
    }

    async fn approve(&mut self) -> String {
        let approval = self.approval().await;
        let node = self.pick_node();
        let Approval { person, stage, sha, decision, .. } = &approval;
        let result = self.engine(node).approve(person, stage, sha, *decision).await;
        let text = self.approved(&approval, &result).await;
        format!("{}: {text}", self.nodes[node].id)
    }

    /// A person acts (approves, rejects, withdraws, holds or releases)
    /// while an engine ticks: their call interleaves with the tick's.
    async fn tick_and_human(&mut self) -> String {
        lock(&self.oracle).stats.concurrent_steps += 1;
        let (ticking, acting) = if self.rng.chance(50) { (0, 1) } else { (1, 0) };
        let (a, b) = (self.engine(ticking), self.engine(acting));
        if self.rng.chance(70) {
            let approval = self.approval().await;
            let Approval { person, stage, sha, decision, .. } = approval.clone();
            lock(&self.oracle).concurrent = true;
            let (rt, ra) =
                both(&self.oracle, a.tick(), async move { b.approve(&person, &stage, &sha, decision).await }).await;
            lock(&self.oracle).concurrent = false;
            let rt = self.tick_report(rt);
            let text = self.approved(&approval, &ra).await;
            return format!("{} ticks while {}: {text} → {rt}", self.nodes[ticking].id, self.nodes[acting].id);
        }
        let envs = self.environments();
        let stage = self.rng.pick(&envs).clone();
        let by = self.person();
        let hold = self.rng.chance(60);
        lock(&self.oracle).concurrent = true;
        let (rt, rh) = both(&self.oracle, a.tick(), async {
            if hold { b.hold(&stage, &by, "incident").await } else { b.release(&stage, &by).await.map(|_| ()) }
        })
        .await;
        lock(&self.oracle).concurrent = false;
        let rt = self.tick_report(rt);
        let what = if hold { "holds" } else { "releases" };
        format!("{} ticks while {by} {what} {stage} → {rh:?} / {rt}", self.nodes[ticking].id)
    }

    /// The world's state after a step: I2 (no key triggered twice), I3 (one
    /// deploy in flight per environment), I4 (nothing lost), I5 (the audit
    /// chain), I6 (live commits deployed), and no stuck environment.
    async fn check_world(&mut self) {
        // Only commits and the CI change what is checked here.
        if !std::mem::take(&mut lock(&self.oracle).dirty) {
            return;
        }
        let mut found = Vec::new();
        // I2, on the CI's own record of every trigger.
        let triggered = lock(&self.oracle).triggered.clone();
        let count = self.ci.trigger_count();
        if count != triggered.len() {
            found.push(format!("the CI has {count} runs, the oracle saw {} triggers", triggered.len()));
        }
        if count > self.requests_seen {
            for r in &self.ci.requests()[self.requests_seen..] {
                if !self.keys.insert(r.key.clone()) {
                    found.push(format!("I2: {} was triggered twice", r.key));
                }
            }
            self.requests_seen = count;
        }
        // I4 and I5: the audit log only grows, and every new record chains to the one before.
        let after = self.last_audit.as_ref().map_or(0, |r| r.seq - 1);
        let records = self.store.audit(after).await.expect("memory store");
        let mut records = records.into_iter();
        let mut prev = self.last_audit.clone();
        if let Some(last) = &self.last_audit {
            let now = records.next();
            if now.as_ref() != Some(last) {
                found.push(format!("I4: audit record {} changed or vanished: now {now:?}", last.seq));
            }
        }
        for record in records {
            let expected = atlas_promote_core::audit::chain(prev.as_ref(), record.entry.clone());
            if expected != record {
                found.push(format!("I5: audit record {} does not chain to the one before", record.seq));
            }
            prev = Some(record);
        }
        self.last_audit = prev;
        // I4: every approval the engine accepted is still stored.
        let mut by_doc: BTreeMap<String, Vec<&ApprovalRecord>> = BTreeMap::new();
        for record in &self.accepted {
            by_doc.entry(approvals_key(&record.stage, &record.sha)).or_default().push(record);
        }
        for (key, accepted) in by_doc {
            let doc = self.store.get(&key).await.expect("memory store");
            // A document only changes with its version: check each version once.
            let seen = (doc.as_ref().map_or(0, |d| d.version), accepted.len());
            if self.approvals_checked.get(&key) == Some(&seen) {
                continue;
            }
            self.approvals_checked.insert(key.clone(), seen);
            let stored = doc.and_then(read::<ApprovalsRecord>).unwrap_or_default();
            for record in accepted {
                if !stored.records.contains(record) {
                    found.push(format!("I4: the accepted approval {record:?} is gone from {key}"));
                }
            }
        }
        // I3 and I6, from the environments and the promotions as stored.
        let promotions = self.promotions().await;
        // The engine's active index (once it has one) marks exactly the promotions that have not ended.
        if self.store.get(ACTIVE_INDEX).await.expect("memory store").is_some() {
            let marked: BTreeSet<String> = self
                .store
                .list(ACTIVE_PREFIX)
                .await
                .expect("memory store")
                .into_iter()
                .filter_map(|d| d.key.strip_prefix(ACTIVE_PREFIX).map(str::to_owned))
                .collect();
            let active: BTreeSet<String> =
                promotions.iter().filter(|(_, p)| !p.promotion.state.is_ended()).map(|(k, _)| k.clone()).collect();
            if marked != active {
                let missing: Vec<&String> = active.difference(&marked).collect();
                let stale: Vec<&String> = marked.difference(&active).collect();
                found.push(format!("the active index misses {missing:?} and marks ended {stale:?}"));
            }
        }
        let mut in_flight: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, p) in &promotions {
            if let State::Deploying { stage, .. } | State::Flushing { stage, .. } = &p.promotion.state {
                in_flight.entry(environment_key(stage, &p.promotion.candidate)).or_default().push(key.clone());
            }
        }
        let runs = self.ci.runs();
        let envs = self.store.list("environment/").await.expect("memory store");
        let mut seen = HashSet::new();
        for doc in envs {
            let env_key = doc.key.clone();
            seen.insert(env_key.clone());
            let Some(env) = read::<EnvironmentRecord>(doc) else {
                found.push(format!("{env_key} is unreadable"));
                continue;
            };
            let flying = in_flight.get(&env_key).cloned().unwrap_or_default();
            if flying.len() > 1 {
                found.push(format!("I3: {flying:?} are all in flight into {env_key}"));
            }
            match (&env.in_flight, flying.first()) {
                (Some(k), Some(f)) if k == f => {}
                (None, None) => {}
                (marked, flying) => {
                    found.push(format!("I3: {env_key} marks {marked:?} in flight, but {flying:?} is deploying"));
                }
            }
            if let Some(live) = &env.live_sha {
                let succeeded: Vec<&str> = triggered
                    .iter()
                    .zip(&runs)
                    .filter(|(t, run)| {
                        t.kind == RunKind::Deploy && t.env == env_key && run.status == RunStatus::Succeeded
                    })
                    .map(|(t, _)| t.sha.as_str())
                    .collect();
                if !succeeded.contains(&live.as_str()) {
                    found.push(format!("I6: {live} is live in {env_key}, but no deploy of it there succeeded"));
                } else if env.in_flight.is_none() && succeeded.last() != Some(&live.as_str()) {
                    found.push(format!(
                        "I6: {live} is live in {env_key}, but the last deploy that succeeded there is {:?}",
                        succeeded.last()
                    ));
                }
            }
        }
        for (env_key, flying) in in_flight {
            if !seen.contains(&env_key) {
                found.push(format!("I3: {flying:?} deploy into {env_key}, which is not marked taken"));
            }
        }
        let mut o = lock(&self.oracle);
        for f in found {
            o.violation(f);
        }
    }

    /// The end of a seed: verify the whole audit log, then let every fault
    /// go, finish every run and tick until nothing moves: nothing may stay
    /// in flight (no forgotten run, no environment stuck).
    pub async fn finish(&mut self) {
        let all = self.store.audit(0).await.expect("memory store");
        if let Err(broken) = atlas_promote_core::audit::verify(&all) {
            lock(&self.oracle).violation(format!("I5: the audit log does not verify: {broken}"));
        }
        for i in 0..self.nodes.len() {
            self.nodes[i].life.disarm();
            if self.nodes[i].life.is_dead() {
                self.restart(i);
            }
        }
        for stage in self.environments() {
            self.ci.set_outcome(&stage, RunKind::Deploy, Outcome::Succeed);
            self.ci.set_outcome(&stage, RunKind::Flush, Outcome::Succeed);
        }
        self.ci.set_auto_complete(true);
        for run in self.ci.runs().into_iter().filter(|r| !r.status.is_finished()) {
            let _ = self.ci.complete(&run.id, RunStatus::Succeeded, self.now());
        }
        let engine = self.engine(0);
        for _ in 0..6 {
            if let Err(e) = engine.run_until_idle(20).await {
                lock(&self.oracle).violation(format!("drain: tick failed: {e}"));
            }
            if !self.promotions().await.iter().any(|(_, p)| p.promotion.state.is_in_flight()) {
                break;
            }
            // A step another engine owned is taken over once its lease is over.
            self.clock.advance(self.lease + TimeDelta::minutes(1));
        }
        self.note(usize::MAX, || "drain: CI finished every run; the engine ticked until idle".into());
        for (key, p) in self.promotions().await {
            if p.promotion.state.is_in_flight() {
                lock(&self.oracle).violation(format!(
                    "liveness: {key} is still {} after the CI finished every run",
                    p.promotion.state
                ));
            }
        }
        self.check_failed_end().await;
        lock(&self.oracle).dirty = true;
        self.check_world().await;
    }

    /// Once the engine is idle, no failed candidate is still active while a
    /// newer candidate of its line (trunk, or the same branch) reached the
    /// gate it failed at (waits at it, or is past it): it was superseded.
    async fn check_failed_end(&mut self) {
        let promotions = self.promotions().await;
        let index = |name: &str| self.policy.stages.iter().position(|s| s.name == name);
        let mut found = Vec::new();
        for (key, p) in &promotions {
            let State::Failed { stage, .. } = &p.promotion.state else { continue };
            let Some(into) = index(stage) else { continue };
            // The gate it failed at leaves the review (a branch build) or the stage before (trunk).
            let from = match p.promotion.candidate.origin {
                Origin::Branch => self.policy.stages.iter().position(|s| s.kind == StageKind::Review),
                Origin::Trunk => self.policy.stages[..into].iter().rposition(|s| !s.ephemeral),
            };
            let Some(from) = from else { continue };
            let newer = promotions.iter().find(|(_, q)| {
                let (c, d) = (&q.promotion.candidate, &p.promotion.candidate);
                let at = index(q.promotion.state.stage());
                q.promotion.seq > p.promotion.seq
                    && !q.promotion.state.is_ended()
                    && c.origin == d.origin
                    && c.branch == d.branch
                    && !(c.origin == Origin::Trunk && matches!(q.promotion.state, State::UnderReview { .. }))
                    && (at > Some(from) || (at == Some(from) && q.promotion.state.awaits_gate()))
            });
            if let Some((newer, q)) = newer {
                found.push(format!(
                    "{key} stays {} although {newer} ({}) reached the gate into {stage}",
                    p.promotion.state, q.promotion.state
                ));
            }
        }
        let mut o = lock(&self.oracle);
        for f in found {
            o.violation(format!("failed-end: {f}"));
        }
    }
}
