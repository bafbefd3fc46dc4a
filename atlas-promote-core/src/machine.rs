//! The promotion state machine (DESIGN §2): pure, no I/O, no clock reads.
//!
//! A [`Promotion`] is one candidate's journey through the policy's stages.
//! [`Promotion::apply`] takes an [`Event`] and returns the [`Action`]s the
//! engine must perform, or a [`TransitionError`] when the event makes no
//! sense in the current state. The engine persists the new state *before*
//! performing the actions; every trigger carries an idempotency key, so
//! performing an action twice after a crash starts nothing twice.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::decision::{Blocker, Decision, Shortfall};
use crate::evidence::{ApprovalDecision, ApprovalRecord, Candidate, CheckResult, CheckStatus};
use crate::policy::{OnFailure, Person, Policy, Role, StageKind};
use crate::run::{IdempotencyKey, RunId, RunKind, RunRequest};

/// Where a promotion is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// The pull request (or branch) is under review; nothing is deployed.
    UnderReview {
        /// The review stage.
        stage: String,
        /// Since when.
        #[serde(serialize_with = "crate::instant::serialize")]
        since: DateTime<Utc>,
    },
    /// Merged to trunk, waiting for the first environment.
    Merged {
        /// The trunk stage.
        stage: String,
        /// When it was merged.
        #[serde(serialize_with = "crate::instant::serialize")]
        at: DateTime<Utc>,
    },
    /// A deploy into `stage` is in flight.
    Deploying {
        /// The stage deployed to.
        stage: String,
        /// Which attempt (1, 2, …).
        attempt: u32,
        /// The CI run, once it is known.
        run: Option<RunId>,
        /// Whether pipeline code changed, so a flush must follow.
        flush_required: bool,
        /// When the deploy was decided.
        #[serde(serialize_with = "crate::instant::serialize")]
        since: DateTime<Utc>,
    },
    /// Deployed to `stage`; a flush run is in flight.
    Flushing {
        /// The stage.
        stage: String,
        /// Which attempt.
        attempt: u32,
        /// The CI run, once it is known.
        run: Option<RunId>,
        /// When the deploy succeeded.
        #[serde(serialize_with = "crate::instant::serialize")]
        deployed_at: DateTime<Utc>,
    },
    /// Live in `stage`; waiting on the gate to the next stage (or, in the
    /// last stage, released and monitored).
    Live {
        /// The stage.
        stage: String,
        /// When the deploy succeeded.
        #[serde(serialize_with = "crate::instant::serialize")]
        deployed_at: DateTime<Utc>,
        /// Whether a flush was required.
        flush_required: bool,
        /// When the flush succeeded.
        #[serde(serialize_with = "crate::instant::option::serialize")]
        flushed_at: Option<DateTime<Utc>>,
    },
    /// The deploy or flush into `stage` failed.
    Failed {
        /// The stage.
        stage: String,
        /// Which attempt failed.
        attempt: u32,
        /// Whether the failed attempt needed a flush (a retry needs it too).
        flush_required: bool,
        /// What failed, as a sentence.
        reason: String,
        /// When.
        #[serde(serialize_with = "crate::instant::serialize")]
        at: DateTime<Utc>,
    },
    /// A newer candidate took its place.
    Superseded {
        /// The stage it was in.
        stage: String,
        /// The commit that replaced it.
        by: String,
        /// Why, as a sentence.
        reason: String,
        /// When.
        #[serde(serialize_with = "crate::instant::serialize")]
        at: DateTime<Utc>,
    },
    /// An operator gave it up after its deploy or flush into `stage` failed.
    Abandoned {
        /// The stage it failed in.
        stage: String,
        /// Who gave it up.
        by: String,
        /// Why.
        reason: String,
        /// When.
        #[serde(serialize_with = "crate::instant::serialize")]
        at: DateTime<Utc>,
    },
    /// It was rolled back out of `stage`.
    RolledBack {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
        /// When.
        #[serde(serialize_with = "crate::instant::serialize")]
        at: DateTime<Utc>,
    },
}

impl State {
    /// The stage the promotion is in (or was in, when it ended).
    pub fn stage(&self) -> &str {
        match self {
            Self::UnderReview { stage, .. }
            | Self::Merged { stage, .. }
            | Self::Deploying { stage, .. }
            | Self::Flushing { stage, .. }
            | Self::Live { stage, .. }
            | Self::Failed { stage, .. }
            | Self::Superseded { stage, .. }
            | Self::Abandoned { stage, .. }
            | Self::RolledBack { stage, .. } => stage,
        }
    }

    /// Whether the promotion has ended (superseded, abandoned or rolled back).
    pub fn is_ended(&self) -> bool {
        matches!(self, Self::Superseded { .. } | Self::Abandoned { .. } | Self::RolledBack { .. })
    }

    /// Whether a CI run is in flight.
    pub fn is_in_flight(&self) -> bool {
        matches!(self, Self::Deploying { .. } | Self::Flushing { .. })
    }

    /// Whether the promotion waits on the gate out of its stage.
    pub fn awaits_gate(&self) -> bool {
        matches!(self, Self::UnderReview { .. } | Self::Merged { .. } | Self::Live { .. })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnderReview { stage, .. } => write!(f, "under review ({stage})"),
            Self::Merged { stage, .. } => write!(f, "merged to {stage}"),
            Self::Deploying { stage, attempt, .. } => write!(f, "deploying to {stage} (attempt {attempt})"),
            Self::Flushing { stage, .. } => write!(f, "flushing {stage}"),
            Self::Live { stage, .. } => write!(f, "live in {stage}"),
            Self::Failed { stage, reason, .. } => write!(f, "failed in {stage}: {reason}"),
            Self::Superseded { stage, by, .. } => write!(f, "superseded in {stage} by {by}"),
            Self::Abandoned { stage, by, .. } => write!(f, "abandoned in {stage} by {by}"),
            Self::RolledBack { stage, .. } => write!(f, "rolled back from {stage}"),
        }
    }
}

/// Something that happened to a promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The pull request was merged to trunk.
    Merged {
        /// When.
        at: DateTime<Utc>,
    },
    /// The gate out of the current stage was evaluated at `now`.
    ///
    /// An allowing decision moves the promotion on (deploying into
    /// `decision.to`); a blocking one may request approvals.
    GateDecided {
        /// The decision, for this candidate, out of its current stage, made at `now`.
        decision: Decision,
        /// Whether pipeline code changed between what is live in the target and this candidate.
        flush_required: bool,
    },
    /// Someone permitted by the policy overrides the gate, bypassing named rules.
    OverrideGranted {
        /// The decision being overridden (made at `now`).
        decision: Decision,
        /// Who grants it.
        by: Person,
        /// The roles they hold now.
        roles: Vec<Role>,
        /// The blocker kinds bypassed (`"window_closed"`, `"approvals_missing"`, …).
        bypass: Vec<String>,
        /// Why, recorded in the audit log.
        reason: String,
        /// Whether pipeline code changed (as for [`Event::GateDecided`]).
        flush_required: bool,
    },
    /// The deploy run started.
    DeployStarted {
        /// The stage.
        stage: String,
        /// The CI run.
        run: RunId,
    },
    /// The deploy run succeeded.
    DeploySucceeded {
        /// The stage.
        stage: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The deploy run failed (or was cancelled).
    DeployFailed {
        /// The stage.
        stage: String,
        /// What happened.
        reason: String,
    },
    /// The flush run started.
    FlushStarted {
        /// The stage.
        stage: String,
        /// The CI run.
        run: RunId,
    },
    /// The flush run succeeded.
    FlushSucceeded {
        /// The stage.
        stage: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The flush run failed.
    FlushFailed {
        /// The stage.
        stage: String,
        /// What happened.
        reason: String,
    },
    /// A recurring check reported a result for this candidate.
    CheckReported(CheckResult),
    /// Someone approved.
    ApprovalRecorded(ApprovalRecord),
    /// Someone withdrew their earlier record.
    ApprovalWithdrawn(ApprovalRecord),
    /// Someone rejected.
    ApprovalRejected(ApprovalRecord),
    /// Time passed; nothing else happened.
    TimePassed,
    /// A newer candidate replaces this one in its stage.
    Superseded {
        /// The newer commit.
        by: String,
        /// Why, as a sentence.
        reason: String,
    },
    /// Roll this candidate back out of the environment it is live in.
    RollbackRequested {
        /// The environment.
        stage: String,
        /// Who asks (a person, or `engine` for a monitor).
        by: String,
        /// Why.
        reason: String,
    },
    /// Deploy this candidate into `stage` again: the target of a rollback.
    Redeploy {
        /// The environment.
        stage: String,
        /// Why.
        reason: String,
        /// Whether a flush run must follow: pipeline code differs between
        /// the commit the environment leaves and the one restored.
        #[serde(default)]
        flush_required: bool,
    },
    /// Retry the failed deploy.
    RetryRequested {
        /// The stage.
        stage: String,
        /// Who asks.
        by: String,
    },
    /// Give up a candidate whose deploy or flush failed: it ends where it failed.
    Abandoned {
        /// Who gives it up.
        by: String,
        /// Why.
        reason: String,
    },
}

impl Event {
    fn phrase(&self) -> String {
        match self {
            Self::Merged { .. } => "merged".into(),
            Self::GateDecided { decision, .. } => format!("gate {} → {} decided", decision.from, decision.to),
            Self::OverrideGranted { by, .. } => format!("override granted by {by}"),
            Self::DeployStarted { stage, .. } => format!("deploy to {stage} started"),
            Self::DeploySucceeded { stage, .. } => format!("deploy to {stage} succeeded"),
            Self::DeployFailed { stage, .. } => format!("deploy to {stage} failed"),
            Self::FlushStarted { stage, .. } => format!("flush of {stage} started"),
            Self::FlushSucceeded { stage, .. } => format!("flush of {stage} succeeded"),
            Self::FlushFailed { stage, .. } => format!("flush of {stage} failed"),
            Self::CheckReported(r) => format!("check {} reported", r.name),
            Self::ApprovalRecorded(r) => format!("approval by {}", r.approver),
            Self::ApprovalWithdrawn(r) => format!("withdrawal by {}", r.approver),
            Self::ApprovalRejected(r) => format!("rejection by {}", r.approver),
            Self::TimePassed => "time passed".into(),
            Self::Superseded { by, .. } => format!("superseded by {by}"),
            Self::RollbackRequested { stage, .. } => format!("rollback of {stage} requested"),
            Self::Redeploy { stage, .. } => format!("redeploy to {stage}"),
            Self::RetryRequested { stage, .. } => format!("retry of {stage} requested"),
            Self::Abandoned { by, .. } => format!("abandoned by {by}"),
        }
    }
}

/// What the engine must do after a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Start a deploy or flush run (find it by its key first: it may have started before a crash).
    Trigger(RunRequest),
    /// Ask the people holding these roles to approve.
    RequestApprovals {
        /// The stage to enter.
        stage: String,
        /// The commit.
        sha: String,
        /// The roles short, and by how many.
        short: Vec<Shortfall>,
    },
    /// Tell people something is wrong in a live environment.
    Alert {
        /// The environment.
        stage: String,
        /// The commit live there.
        sha: String,
        /// What is wrong.
        message: String,
    },
    /// Roll the environment back to its previous live commit.
    RollBack {
        /// The environment.
        stage: String,
        /// Why.
        reason: String,
    },
    /// Append to the audit log.
    Audit(AuditEntry),
}

/// An event that makes no sense in the promotion's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {event} to {sha}, which is {state}: {reason}")]
pub struct TransitionError {
    /// The candidate's commit.
    pub sha: String,
    /// The state, as a phrase (`deploying to staging (attempt 1)`).
    pub state: String,
    /// The event, as a phrase.
    pub event: String,
    /// Why not.
    pub reason: String,
}

/// One candidate's promotion through the stages of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// The candidate.
    pub candidate: Candidate,
    /// Arrival order among candidates: higher is newer.
    pub seq: u64,
    /// Where it is.
    pub state: State,
    /// Deploy attempts made per stage, for idempotency keys.
    #[serde(default)]
    pub attempts: std::collections::BTreeMap<String, u32>,
    /// Stages for which approvals were already requested.
    #[serde(default)]
    pub approvals_requested: BTreeSet<String>,
}

impl Promotion {
    /// A candidate under review in the policy's first review stage (or its
    /// first stage, when it has none).
    pub fn under_review(policy: &Policy, candidate: Candidate, seq: u64, now: DateTime<Utc>) -> Self {
        let stage = policy
            .stages
            .iter()
            .find(|s| s.kind == StageKind::Review)
            .or(policy.stages.first())
            .map_or_else(|| "review".to_owned(), |s| s.name.clone());
        Self::new(candidate, seq, State::UnderReview { stage, since: now })
    }

    /// A candidate merged to the policy's trunk stage at `at`.
    pub fn merged(policy: &Policy, candidate: Candidate, seq: u64, at: DateTime<Utc>) -> Self {
        Self::new(candidate, seq, State::Merged { stage: trunk_stage(policy), at })
    }

    fn new(candidate: Candidate, seq: u64, state: State) -> Self {
        Self { candidate, seq, state, attempts: Default::default(), approvals_requested: BTreeSet::new() }
    }

    /// The run a `Deploying` or `Flushing` promotion waits to start (its run
    /// not yet known), rebuilt from the policy: what to trigger, or find by
    /// its key, after a crash.
    pub fn pending_run(&self, policy: &Policy) -> Option<RunRequest> {
        let (stage, attempt, kind) = match &self.state {
            State::Deploying { stage, attempt, run: None, .. } => (stage, *attempt, RunKind::Deploy),
            State::Flushing { stage, attempt, run: None, .. } => (stage, *attempt, RunKind::Flush),
            _ => return None,
        };
        let target = policy.stage(stage)?;
        let (workflow, parameters) = match kind {
            RunKind::Deploy => target.deploy.as_ref().map(|d| (&d.workflow, &d.parameters))?,
            RunKind::Flush => target.flush.as_ref().map(|f| (&f.workflow, &f.parameters))?,
        };
        Some(RunRequest {
            key: IdempotencyKey::new(&self.candidate.sha, stage, kind, attempt),
            kind,
            stage: stage.clone(),
            candidate: self.candidate.clone(),
            workflow: workflow.clone(),
            parameters: parameters.clone(),
        })
    }

    /// Apply `event` at `now`: move to the next state and return the actions to perform.
    ///
    /// On error the promotion is unchanged.
    pub fn apply(&mut self, event: Event, policy: &Policy, now: DateTime<Utc>) -> Result<Vec<Action>, TransitionError> {
        // A transition changes only these; the candidate and its `seq` stay as they are.
        let saved = (self.state.clone(), self.attempts.clone(), self.approvals_requested.clone());
        self.transition(event, policy, now).inspect_err(|_| {
            (self.state, self.attempts, self.approvals_requested) = saved;
        })
    }

    fn refuse(&self, event: &Event, reason: impl Into<String>) -> TransitionError {
        TransitionError {
            sha: self.candidate.sha.clone(),
            state: self.state.to_string(),
            event: event.phrase(),
            reason: reason.into(),
        }
    }

    fn audit(&self, now: DateTime<Utc>, actor: &str, action: &str, message: String) -> Action {
        Action::Audit(AuditEntry {
            at: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: self.candidate.sha.clone(),
            message,
        })
    }

    fn transition(
        &mut self,
        event: Event,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Vec<Action>, TransitionError> {
        if self.state.is_ended() && !matches!(event, Event::TimePassed | Event::Redeploy { .. }) {
            return Err(self.refuse(&event, "the promotion has ended"));
        }
        match (&self.state, &event) {
            (State::UnderReview { .. }, Event::Merged { at }) => {
                let at = *at;
                self.state = State::Merged { stage: trunk_stage(policy), at };
                Ok(vec![self.audit(now, "engine", "merged", format!("{} merged to trunk", self.candidate.sha))])
            }
            (_, Event::GateDecided { decision, flush_required }) => {
                self.check_decision(&event, decision, now)?;
                if decision.is_allowed() {
                    let message = format!("{decision}").trim_end().to_owned();
                    let mut actions = vec![self.audit(now, "engine", "gate.allowed", message)];
                    actions.extend(self.enter(&event, policy, &decision.to, *flush_required, now)?);
                    return Ok(actions);
                }
                let short = decision.blockers.iter().find_map(|b| match b {
                    Blocker::ApprovalsMissing { short, .. } => Some(short.clone()),
                    _ => None,
                });
                match short {
                    Some(short) if self.approvals_requested.insert(decision.to.clone()) => {
                        Ok(vec![Action::RequestApprovals {
                            stage: decision.to.clone(),
                            sha: self.candidate.sha.clone(),
                            short,
                        }])
                    }
                    _ => Ok(Vec::new()),
                }
            }
            (_, Event::OverrideGranted { decision, by, roles, bypass, reason, flush_required }) => {
                self.check_decision(&event, decision, now)?;
                let permitted = policy.overrides.as_ref().is_some_and(|o| o.roles.iter().any(|r| roles.contains(r)));
                if !permitted {
                    return Err(self.refuse(&event, format!("{by} holds no role the policy permits to override")));
                }
                if reason.trim().is_empty() {
                    return Err(self.refuse(&event, "an override needs a reason"));
                }
                if let Some(b) = decision.blockers.iter().find(|b| !bypass.iter().any(|k| k == b.kind())) {
                    return Err(self.refuse(&event, format!("the override does not bypass {}: {b}", b.kind())));
                }
                let message = format!(
                    "{by} overrode {} → {} bypassing [{}]: {reason}",
                    decision.from,
                    decision.to,
                    bypass.join(", ")
                );
                let mut actions = vec![self.audit(now, by, "override.granted", message)];
                actions.extend(self.enter(&event, policy, &decision.to, *flush_required, now)?);
                Ok(actions)
            }
            (State::Deploying { stage, run, .. }, Event::DeployStarted { stage: s, run: started }) if stage == s => {
                if run.as_ref().is_some_and(|r| r != started) {
                    return Err(self
                        .refuse(&event, format!("the deploy already runs as {}", run.as_ref().map_or("", |r| &r.0))));
                }
                let message = format!("deploy of {} to {stage} runs as {started}", self.candidate.sha);
                let audit = self.audit(now, "engine", "deploy.started", message);
                if let State::Deploying { run, .. } = &mut self.state {
                    *run = Some(started.clone());
                }
                Ok(vec![audit])
            }
            (State::Deploying { stage, attempt, flush_required, .. }, Event::DeploySucceeded { stage: s, at })
                if stage == s =>
            {
                let (stage, attempt, at) = (stage.clone(), *attempt, *at);
                let mut actions = vec![self.audit(
                    now,
                    "engine",
                    "deploy.succeeded",
                    format!("{} deployed to {stage}", self.candidate.sha),
                )];
                let flush = policy.stage(&stage).and_then(|s| s.flush.as_ref());
                match flush {
                    Some(flush) if *flush_required => {
                        actions.push(Action::Trigger(RunRequest {
                            key: IdempotencyKey::new(&self.candidate.sha, &stage, RunKind::Flush, attempt),
                            kind: RunKind::Flush,
                            stage: stage.clone(),
                            candidate: self.candidate.clone(),
                            workflow: flush.workflow.clone(),
                            parameters: flush.parameters.clone(),
                        }));
                        self.state = State::Flushing { stage, attempt, run: None, deployed_at: at };
                    }
                    _ => {
                        self.state = State::Live { stage, deployed_at: at, flush_required: false, flushed_at: None };
                    }
                }
                Ok(actions)
            }
            (State::Deploying { stage, attempt, .. }, Event::DeployFailed { stage: s, reason })
            | (State::Flushing { stage, attempt, .. }, Event::FlushFailed { stage: s, reason })
                if stage == s =>
            {
                let (what, flush_required) = match &self.state {
                    State::Deploying { flush_required, .. } => ("deploy", *flush_required),
                    _ => ("flush", true),
                };
                let message = format!("{what} of {} to {stage} failed: {reason}", self.candidate.sha);
                let audit = self.audit(now, "engine", &format!("{what}.failed"), message);
                let reason = format!("{what} failed: {reason}");
                self.state = State::Failed { stage: stage.clone(), attempt: *attempt, flush_required, reason, at: now };
                Ok(vec![audit])
            }
            (State::Flushing { stage, run, .. }, Event::FlushStarted { stage: s, run: started }) if stage == s => {
                if run.as_ref().is_some_and(|r| r != started) {
                    return Err(self.refuse(&event, "the flush already runs as another run"));
                }
                let message = format!("flush of {stage} for {} runs as {started}", self.candidate.sha);
                let audit = self.audit(now, "engine", "flush.started", message);
                if let State::Flushing { run, .. } = &mut self.state {
                    *run = Some(started.clone());
                }
                Ok(vec![audit])
            }
            (State::Flushing { stage, deployed_at, .. }, Event::FlushSucceeded { stage: s, at }) if stage == s => {
                let message = format!("flush of {stage} for {} succeeded", self.candidate.sha);
                let audit = self.audit(now, "engine", "flush.succeeded", message);
                self.state = State::Live {
                    stage: stage.clone(),
                    deployed_at: *deployed_at,
                    flush_required: true,
                    flushed_at: Some(*at),
                };
                Ok(vec![audit])
            }
            (_, Event::CheckReported(result)) => {
                if result.sha != self.candidate.sha {
                    return Err(self.refuse(&event, format!("the result is for commit {}", result.sha)));
                }
                Ok(self.monitor(policy, result, now))
            }
            (_, Event::ApprovalRecorded(r) | Event::ApprovalWithdrawn(r) | Event::ApprovalRejected(r)) => {
                let expected = match event {
                    Event::ApprovalRecorded(_) => ApprovalDecision::Approve,
                    Event::ApprovalWithdrawn(_) => ApprovalDecision::Withdraw,
                    _ => ApprovalDecision::Reject,
                };
                if r.decision != expected {
                    return Err(self.refuse(&event, format!("the record says {}, not {expected}", r.decision)));
                }
                if r.sha != self.candidate.sha {
                    return Err(self.refuse(&event, format!("the record is for commit {}", r.sha)));
                }
                let here = policy.stage_index(self.state.stage());
                match (policy.stage_index(&r.stage), here) {
                    (None, _) => Err(self.refuse(&event, format!("the policy has no stage {}", r.stage))),
                    (Some(t), Some(h)) if t <= h => {
                        Err(self.refuse(&event, format!("the candidate is already past {}", r.stage)))
                    }
                    _ => {
                        let message = format!("{} {}s {} into {}", r.approver, r.decision, r.sha, r.stage);
                        Ok(vec![self.audit(now, &r.approver, &format!("approval.{}", r.decision), message)])
                    }
                }
            }
            (_, Event::TimePassed) => Ok(Vec::new()),
            (
                State::UnderReview { stage, .. }
                | State::Merged { stage, .. }
                | State::Live { stage, .. }
                | State::Failed { stage, .. },
                Event::Superseded { by, reason },
            ) => {
                let stage = stage.clone();
                let message = format!("{} superseded in {stage} by {by}: {reason}", self.candidate.sha);
                let audit = self.audit(now, "engine", "superseded", message);
                self.state = State::Superseded { stage, by: by.clone(), reason: reason.clone(), at: now };
                Ok(vec![audit])
            }
            (State::Live { stage, .. }, Event::RollbackRequested { stage: s, by, reason }) if stage == s => {
                let message = format!("{} rolled back from {stage} by {by}: {reason}", self.candidate.sha);
                let audit = self.audit(now, by, "rollback", message);
                self.state = State::RolledBack { stage: stage.clone(), reason: reason.clone(), at: now };
                Ok(vec![audit])
            }
            (
                State::Superseded { stage, .. } | State::RolledBack { stage, .. },
                Event::Redeploy { stage: s, reason, flush_required },
            ) if stage == s => {
                let (stage, flush_required) = (stage.clone(), *flush_required);
                let message = format!("{} redeployed to {stage}: {reason}", self.candidate.sha);
                let mut actions = vec![self.audit(now, "engine", "redeploy", message)];
                actions.extend(self.enter(&event, policy, &stage, flush_required, now)?);
                Ok(actions)
            }
            (State::Failed { stage, flush_required, .. }, Event::RetryRequested { stage: s, by }) if stage == s => {
                let (stage, flush_required) = (stage.clone(), *flush_required);
                let message = format!("{by} retries the deploy of {} to {stage}", self.candidate.sha);
                let mut actions = vec![self.audit(now, by, "retry", message)];
                actions.extend(self.enter(&event, policy, &stage, flush_required, now)?);
                Ok(actions)
            }
            (State::Failed { stage, .. }, Event::Abandoned { by, reason }) => {
                if reason.trim().is_empty() {
                    return Err(self.refuse(&event, "giving a candidate up needs a reason"));
                }
                let stage = stage.clone();
                let message = format!("{by} abandons {} after it failed in {stage}: {reason}", self.candidate.sha);
                let audit = self.audit(now, by, "abandoned", message);
                self.state = State::Abandoned { stage, by: by.clone(), reason: reason.clone(), at: now };
                Ok(vec![audit])
            }
            _ => Err(self.refuse(&event, "it does not apply in this state")),
        }
    }

    /// The decision must be about this candidate, out of its current stage, made now.
    fn check_decision(&self, event: &Event, decision: &Decision, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if !self.state.awaits_gate() {
            return Err(self.refuse(event, "it is not waiting on a gate"));
        }
        if decision.sha != self.candidate.sha {
            return Err(self.refuse(event, format!("the decision is about commit {}", decision.sha)));
        }
        if decision.from != self.state.stage() {
            return Err(self.refuse(event, format!("the decision is about leaving {}", decision.from)));
        }
        if decision.at != now {
            return Err(self.refuse(event, "the decision was not made at this instant"));
        }
        Ok(())
    }

    /// Enter `stage`: deploy there if it is an environment.
    fn enter(
        &mut self,
        event: &Event,
        policy: &Policy,
        stage: &str,
        flush_required: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Action>, TransitionError> {
        let Some(target) = policy.stage(stage) else {
            return Err(self.refuse(event, format!("the policy has no stage {stage}")));
        };
        match target.kind {
            StageKind::Review => Err(self.refuse(event, "nothing is promoted into review")),
            StageKind::Trunk => Err(self.refuse(event, "a candidate enters trunk by being merged")),
            StageKind::Environment => {
                let last_here = match &self.state {
                    State::Failed { stage: s, attempt, .. } if s == stage => *attempt,
                    _ => 0,
                };
                let attempt = self.attempts.get(stage).copied().unwrap_or(0).max(last_here) + 1;
                self.attempts.insert(stage.to_owned(), attempt);
                let flush_required = flush_required && target.flush.is_some();
                let Some(deploy) = &target.deploy else {
                    // An environment without a deploy workflow is deployed by hand: live at once.
                    self.state = State::Live {
                        stage: stage.to_owned(),
                        deployed_at: now,
                        flush_required: false,
                        flushed_at: None,
                    };
                    return Ok(Vec::new());
                };
                let request = RunRequest {
                    key: IdempotencyKey::new(&self.candidate.sha, stage, RunKind::Deploy, attempt),
                    kind: RunKind::Deploy,
                    stage: stage.to_owned(),
                    candidate: self.candidate.clone(),
                    workflow: deploy.workflow.clone(),
                    parameters: deploy.parameters.clone(),
                };
                self.state =
                    State::Deploying { stage: stage.to_owned(), attempt, run: None, flush_required, since: now };
                self.approvals_requested.remove(stage);
                Ok(vec![Action::Trigger(request)])
            }
        }
    }

    /// A failing monitored check in the environment this candidate is live in raises an alert.
    fn monitor(&self, policy: &Policy, result: &CheckResult, now: DateTime<Utc>) -> Vec<Action> {
        let State::Live { stage, .. } = &self.state else { return Vec::new() };
        let Some(monitor) = policy.stage(stage).and_then(|s| s.monitor.as_ref()) else { return Vec::new() };
        let failing = matches!(result.status, CheckStatus::Failed | CheckStatus::Errored);
        if monitor.check != result.name || !failing {
            return Vec::new();
        }
        let message = format!(
            "{} {} for {} live in {stage}: data may be changing or carry unsupported values",
            result.name, result.status, self.candidate.sha
        );
        let mut actions = vec![
            Action::Alert { stage: stage.clone(), sha: self.candidate.sha.clone(), message: message.clone() },
            self.audit(now, "engine", "monitor.alert", message.clone()),
        ];
        if monitor.on_failure == OnFailure::Rollback {
            actions.push(Action::RollBack { stage: stage.clone(), reason: message });
        }
        actions
    }
}

fn trunk_stage(policy: &Policy) -> String {
    policy.stages.iter().find(|s| s.kind == StageKind::Trunk).map_or_else(|| "trunk".to_owned(), |s| s.name.clone())
}
