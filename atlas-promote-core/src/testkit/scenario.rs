//! Release-policy tests that read like the policy: a [`Scenario`] runs the
//! real engine on in-memory backends and a manual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::audit::AuditRecord;
use crate::backend::StateStore;
use crate::engine::{ApprovalOutcome, Plan, Promoter, Tick};
use crate::error::Result;
use crate::evidence::{ApprovalDecision, Candidate, CheckResult, CheckStatus};
use crate::machine::{Action, State};
use crate::memory::{
    MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, Outcome, StaticDirectory,
};
use crate::policy::{Policy, StageKind};
use crate::{ManualClock, RunKind};

/// A release policy under test: the engine, its in-memory backends, a manual
/// clock, and a readable timeline of what happened.
///
/// Deploys and flushes succeed unless told otherwise
/// ([`deploys_fail`](Self::deploys_fail)); nightly checks, approvals and
/// time are what the test says.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> atlas_promote_core::Result<()> {
/// use atlas_promote_core::testkit::Scenario;
/// use atlas_promote_core::Policy;
///
/// let mut s = Scenario::new(Policy::atlas());
/// s.person("dan", &["developer"]);
/// s.merge("c1", "alice", &["pipelines/etl.py"]).await?;
/// s.run_until_idle().await?;
/// assert_eq!(s.state("c1").await?.to_string(), "live in dev");
///
/// s.approve("dan", "staging", "c1").await?;
/// s.run_until_idle().await?;
/// assert_eq!(s.state("c1").await?.to_string(), "live in staging");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Scenario {
    /// The policy.
    pub policy: Policy,
    /// The clock every part reads.
    pub clock: ManualClock,
    /// The CI system (scriptable).
    pub ci: MemoryCi,
    /// Where check results are reported.
    pub checks: MemoryChecks,
    /// An external approval source besides the engine's own approvals.
    pub approvals: MemoryApprovals,
    /// Who holds which role.
    pub directory: StaticDirectory,
    /// The commit graph.
    pub source: MemorySourceControl,
    /// The store.
    pub store: Arc<dyn StateStore>,
    /// The engine under test.
    pub engine: Promoter,
    timeline: Vec<String>,
    last_decision: BTreeMap<(String, String), String>,
    trunk_head: Option<String>,
}

/// Monday 2026-05-04 08:00 UTC, where scenarios start unless told otherwise.
pub fn default_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_777_881_600, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

impl Scenario {
    /// A scenario for `policy` on a fresh in-memory store, starting Monday 2026-05-04 08:00 UTC.
    pub fn new(policy: Policy) -> Self {
        Self::with_store(policy, Arc::new(MemoryStore::new()), default_start())
    }

    /// A scenario on `store`, starting at `start`.
    pub fn with_store(policy: Policy, store: Arc<dyn StateStore>, start: DateTime<Utc>) -> Self {
        let clock = ManualClock::new(start);
        let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
        let checks = MemoryChecks::new();
        let approvals = MemoryApprovals::new();
        let directory = StaticDirectory::from_policy(&policy);
        let source = MemorySourceControl::new();
        let engine = Self::build(&policy, &clock, &ci, &checks, &approvals, &directory, &source, &store, "scenario");
        Self {
            policy,
            clock,
            ci,
            checks,
            approvals,
            directory,
            source,
            store,
            engine,
            timeline: Vec::new(),
            last_decision: BTreeMap::new(),
            trunk_head: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        policy: &Policy,
        clock: &ManualClock,
        ci: &MemoryCi,
        checks: &MemoryChecks,
        approvals: &MemoryApprovals,
        directory: &StaticDirectory,
        source: &MemorySourceControl,
        store: &Arc<dyn StateStore>,
        id: &str,
    ) -> Promoter {
        Promoter::builder(policy.clone())
            .with_ci(Arc::new(ci.clone()))
            .with_checks(Arc::new(checks.clone()))
            .with_approvals(Arc::new(approvals.clone()))
            .with_directory(Arc::new(directory.clone()))
            .with_source_control(Arc::new(source.clone()))
            .with_store(store.clone())
            .with_clock(Arc::new(clock.clone()))
            .with_id(id)
            .with_poll_interval(TimeDelta::minutes(1))
            .build()
            .unwrap_or_else(|e| panic!("a scenario sets every backend: {e}"))
    }

    /// A second engine on the same backends and store (another process, or a
    /// restart after a crash): `id` names it.
    pub fn another_engine(&self, id: &str) -> Promoter {
        Self::build(
            &self.policy,
            &self.clock,
            &self.ci,
            &self.checks,
            &self.approvals,
            &self.directory,
            &self.source,
            &self.store,
            id,
        )
    }

    /// Replace the engine, as after a restart (same name: it resumes its own pending triggers).
    pub fn restart(&mut self) {
        self.engine = self.another_engine("scenario");
    }

    /// Give `person` these roles (in addition to any they hold).
    pub fn person(&mut self, person: &str, roles: &[&str]) -> &mut Self {
        for role in roles {
            self.directory.grant(person, role);
        }
        self
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        crate::Clock::now(&self.clock)
    }

    /// Let time pass.
    pub fn advance(&mut self, by: TimeDelta) -> &mut Self {
        self.clock.advance(by);
        self
    }

    /// Set the clock to `at`.
    pub fn at(&mut self, at: DateTime<Utc>) -> &mut Self {
        self.clock.set(at);
        self
    }

    /// `author` merges commit `sha`, changing `files`, to trunk now.
    pub async fn merge(&mut self, sha: &str, author: &str, files: &[&str]) -> Result<()> {
        self.source.commit(sha, self.trunk_head.as_deref(), author, files);
        self.trunk_head = Some(sha.to_owned());
        let candidate = Candidate { created_at: Some(self.now()), ..Candidate::trunk(sha, [author]) };
        self.line(format!("{author} merges {sha} to trunk"));
        self.engine.merged(candidate, self.now()).await
    }

    /// `author` opens a pull request for `sha`: its review → trunk decision shows in the timeline.
    pub async fn open_review(&mut self, sha: &str, author: &str, files: &[&str]) -> Result<()> {
        self.source.commit(sha, self.trunk_head.as_deref(), author, files);
        self.line(format!("{author} opens a pull request for {sha}"));
        self.engine.open_review(Candidate::trunk(sha, [author])).await
    }

    /// `author` asks for a build of `branch` at `sha` in the ephemeral environment `stage`.
    pub async fn branch_build(&mut self, sha: &str, branch: &str, author: &str, stage: &str) -> Result<()> {
        self.line(format!("{author} asks for {branch}@{sha} in {stage}"));
        self.engine.deploy_branch(Candidate::branch(sha, branch, [author]), stage).await
    }

    /// From now on, deploys into `stage` fail.
    pub fn deploys_fail(&mut self, stage: &str) -> &mut Self {
        self.ci.set_outcome(stage, RunKind::Deploy, Outcome::Fail);
        self
    }

    /// From now on, deploys into `stage` succeed.
    pub fn deploys_succeed(&mut self, stage: &str) -> &mut Self {
        self.ci.set_outcome(stage, RunKind::Deploy, Outcome::Succeed);
        self
    }

    /// Check `check` ran on `sha` and ended with `status`, starting now and finishing `took` later
    /// (the clock moves to the finish).
    pub fn report(&mut self, sha: &str, check: &str, status: CheckStatus, took: TimeDelta) -> &mut Self {
        let started_at = self.now();
        self.clock.advance(took);
        let finished_at = status.is_finished().then(|| self.now());
        self.checks.report(CheckResult { name: check.into(), sha: sha.into(), status, started_at, finished_at });
        self.line(format!("check {check} {status} on {sha}"));
        self
    }

    /// A nightly run of every check the policy declares for `stage`, all
    /// `passed` or all `failed`, taking 40 minutes.
    pub fn nightly(&mut self, stage: &str, sha: &str, status: CheckStatus) -> &mut Self {
        let names: Vec<String> =
            self.policy.stage(stage).map(|s| s.checks.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
        let started_at = self.now();
        self.clock.advance(TimeDelta::minutes(40));
        let finished_at = self.now();
        for name in &names {
            self.checks.report(CheckResult {
                name: name.clone(),
                sha: sha.into(),
                status,
                started_at,
                finished_at: Some(finished_at),
            });
        }
        self.line(format!("nightly {} {status} on {sha} in {stage}", names.join(", ")));
        self
    }

    /// `person` approves `sha` into `stage` through the engine.
    pub async fn approve(&mut self, person: &str, stage: &str, sha: &str) -> Result<ApprovalOutcome> {
        self.decide(person, stage, sha, ApprovalDecision::Approve).await
    }

    /// `person` rejects `sha` into `stage`.
    pub async fn reject(&mut self, person: &str, stage: &str, sha: &str) -> Result<ApprovalOutcome> {
        self.decide(person, stage, sha, ApprovalDecision::Reject).await
    }

    /// `person` withdraws their record for `sha` into `stage`.
    pub async fn withdraw(&mut self, person: &str, stage: &str, sha: &str) -> Result<ApprovalOutcome> {
        self.decide(person, stage, sha, ApprovalDecision::Withdraw).await
    }

    async fn decide(&mut self, person: &str, stage: &str, sha: &str, d: ApprovalDecision) -> Result<ApprovalOutcome> {
        match self.engine.approve(person, stage, sha, d).await {
            Ok(outcome) => {
                let roles = outcome.record().roles.join(", ");
                match outcome.not_counting_because() {
                    None => self.line(format!("{person} ({roles}) {d}s {sha} into {stage}")),
                    Some(why) => {
                        self.line(format!("{person} ({roles}) {d}s {sha} into {stage}; it does not count: {why}"))
                    }
                }
                Ok(outcome)
            }
            Err(e) => {
                let noun = match d {
                    ApprovalDecision::Approve => "approval",
                    ApprovalDecision::Reject => "rejection",
                    ApprovalDecision::Withdraw => "withdrawal",
                };
                let why = match &e {
                    crate::Error::Refused { reason } => reason.clone(),
                    other => other.to_string(),
                };
                self.line(format!("{person}'s {noun} of {sha} into {stage} is refused: {why}"));
                Err(e)
            }
        }
    }

    /// Tick the engine until nothing more happens now (at most 50 ticks), recording the timeline.
    pub async fn run_until_idle(&mut self) -> Result<Vec<Tick>> {
        let ticks = self.engine.run_until_idle(50).await?;
        for tick in &ticks {
            self.record(tick);
        }
        Ok(ticks)
    }

    /// Advance the clock to the engine's next wake-up and run until idle,
    /// as an embedding program would; stops after `limit` wake-ups or when
    /// nothing is scheduled.
    pub async fn run_until_settled(&mut self, limit: usize) -> Result<()> {
        for _ in 0..limit {
            let ticks = self.run_until_idle().await?;
            // A wake-up that is not in the future was due during these ticks, which saw to it.
            let now = self.now();
            let Some(wake) = ticks.iter().filter_map(|t| t.next_wake).filter(|w| *w > now).min() else {
                return Ok(());
            };
            self.clock.set(wake);
        }
        Ok(())
    }

    fn record(&mut self, tick: &Tick) {
        for decision in &tick.decisions {
            // An allowing decision moves the candidate on and is in the audit
            // log, which the timeline shows below; out of review it does not:
            // a pull request enters trunk by being merged.
            let from_review = self.policy.stage(&decision.from).is_some_and(|s| s.kind == StageKind::Review);
            if decision.is_allowed() && !from_review {
                continue;
            }
            let key = (decision.sha.clone(), format!("{} → {}", decision.from, decision.to));
            let text = decision.to_string().trim_end().to_owned();
            let body = text.split_once(": ").map_or(text.as_str(), |(_, rest)| rest).to_owned();
            if self.last_decision.get(&key) != Some(&body) {
                self.last_decision.insert(key, body);
                self.line(text);
            }
        }
        for action in &tick.actions {
            match action {
                // The ALERT line below says the same.
                Action::Audit(entry) if entry.action == "monitor.alert" => {}
                Action::Audit(entry) => self.line(entry.message.clone()),
                Action::Alert { message, .. } => self.line(format!("ALERT {message}")),
                Action::RequestApprovals { stage, sha, short } => {
                    let roles: Vec<String> =
                        short.iter().map(|s| format!("{} {}", s.need.saturating_sub(s.have), s.role)).collect();
                    self.line(format!("approvals requested for {sha} into {stage}: {}", roles.join(", ")));
                }
                _ => {}
            }
        }
        for (subject, error) in &tick.failures {
            self.line(format!("FAILED {subject}: {error}"));
        }
    }

    fn line(&mut self, text: String) {
        let stamp = self.now().format("%a %m-%d %H:%M").to_string();
        // A decision's blockers and warnings line up under its first line.
        let text = text.replace('\n', &format!("\n{:width$} ", "", width = stamp.chars().count()));
        self.timeline.push(format!("{stamp} {text}"));
    }

    /// Where `sha` is now.
    pub async fn state(&self, sha: &str) -> Result<State> {
        Ok(self.engine.promotion(sha).await?.value.promotion.state)
    }

    /// The steps ahead of `sha`.
    pub async fn plan(&self, sha: &str) -> Result<Plan> {
        self.engine.plan(sha).await
    }

    /// Everything that happened, one entry each, in order: the time in UTC,
    /// then what happened. A gate decision that did not let the candidate
    /// through (and one out of review) is an entry too, its blockers and
    /// warnings on further lines; it is repeated only when it changes.
    pub fn timeline(&self) -> &[String] {
        &self.timeline
    }

    /// The audit log; panics if its hash chain does not verify.
    pub async fn audit(&self) -> Result<Vec<AuditRecord>> {
        let records = self.store.audit(0).await?;
        if let Err(broken) = crate::audit::verify(&records) {
            panic!("the audit log does not verify: {broken:?}");
        }
        Ok(records)
    }
}
