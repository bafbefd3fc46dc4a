//! What the service tells the forge (GitHub) about a release: the review
//! gate's decision as the commit status `atlas-promote/review` on a pull
//! request's head (so branch protection can require it), the answers to
//! deployment protection rules (answered again when a wait ends, never left
//! hanging), and promotions mirrored as deployments and deployment statuses.
//!
//! The work is queued in the store (documents under `server/forge/`) in the
//! round that finds it and done from there, so a forge that is down, a
//! restart or another instance loses none of it; what was last posted is
//! remembered (under `server/posted/`) so nothing is posted twice.

use std::fmt;

use async_trait::async_trait;
use atlas_promote_core::{
    Action, AuditEntry, Commit, Decision, GateReply, Promoter, Result, State, StateStore, Tick, Verdict, Write,
};
use atlas_promote_github::GitHub;
use atlas_promote_github::model::{CommitState, DeploymentState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The commit status context of the review gate's decision.
pub const REVIEW_CONTEXT: &str = "atlas-promote/review";

/// Where queued forge work is stored.
const QUEUE: &str = "server/forge/";

/// What a forge is told. GitHub is the one built in ([`GitHubForge`]).
#[async_trait]
pub trait Forge: fmt::Debug + Send + Sync {
    /// A short name for logs and metrics (`github`).
    fn name(&self) -> &str;

    /// Post the review gate's decision on the pull request head `sha`.
    async fn post_review(&self, sha: &str, status: &ReviewStatus) -> Result<()>;

    /// The candidate a gate request (`sha`, answered at `reply_to`) is about.
    async fn gate_candidate(&self, sha: &str, reply_to: &str) -> Result<String>;

    /// Answer the gate request at `reply_to` for `stage`.
    async fn answer_gate(&self, stage: &str, reply_to: &str, reply: &GateReply) -> Result<()>;

    /// Mirror the promotion of `sha` into `stage` as being in `state`.
    async fn mirror(&self, stage: &str, sha: &str, state: Mirrored, url: Option<&str>) -> Result<()>;
}

/// The state of a review status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// The review gate allows the merge.
    Success,
    /// Only time stands in the way.
    Pending,
    /// Something must change first.
    Failure,
}

/// The review gate's decision as a forge shows it on a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewStatus {
    /// Allowed, waiting or blocked.
    pub state: ReviewState,
    /// The decision in a line: what is still missing, or that it may merge.
    pub description: String,
    /// The candidate's page, when the service has a public address.
    pub target_url: Option<String>,
}

impl ReviewStatus {
    /// The status that shows `decision`.
    pub fn of(decision: &Decision, target_url: Option<String>) -> Self {
        let state = match decision.verdict {
            Verdict::Allow => ReviewState::Success,
            Verdict::Wait { .. } => ReviewState::Pending,
            Verdict::Block => ReviewState::Failure,
        };
        let description = match decision.blockers.first() {
            None => format!("the review gate allows {} into {}", decision.sha, decision.to),
            Some(first) if decision.blockers.len() == 1 => first.to_string(),
            Some(first) => format!("{first} (and {} more)", decision.blockers.len() - 1),
        };
        Self { state, description, target_url }
    }
}

/// The state a promotion is mirrored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mirrored {
    /// A deploy (or its flush) is running.
    InProgress,
    /// Live.
    Success,
    /// The deploy or flush failed.
    Failure,
    /// Rolled back out of the stage.
    Inactive,
}

impl Mirrored {
    /// How `state` is mirrored, and into which stage; `None`: it is not
    /// (under review, merged, superseded: no deploy of its own).
    pub fn of(state: &State) -> Option<(&str, Self)> {
        let mirrored = match state {
            State::Deploying { .. } | State::Flushing { .. } => Self::InProgress,
            State::Live { .. } => Self::Success,
            State::Failed { .. } => Self::Failure,
            State::RolledBack { .. } => Self::Inactive,
            _ => return None,
        };
        Some((state.stage(), mirrored))
    }
}

/// One piece of queued forge work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
enum Job {
    Review {
        sha: String,
        status: ReviewStatus,
    },
    Gate {
        stage: String,
        /// The deployment's commit, as the request named it.
        sha: String,
        reply_to: String,
        /// The candidate, once the forge said which it is.
        candidate: Option<String>,
        /// The end of the wait last answered, so a wait is commented once.
        answered_wait: Option<DateTime<Utc>>,
    },
    Mirror {
        stage: String,
        sha: String,
        state: Mirrored,
    },
}

impl Job {
    fn key(&self) -> String {
        match self {
            Self::Review { sha, .. } => format!("{QUEUE}review/{sha}"),
            Self::Gate { stage, sha, reply_to, .. } => {
                let hash: String =
                    Sha256::digest(reply_to.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("{QUEUE}gate/{stage}/{sha}/{hash}")
            }
            Self::Mirror { stage, sha, .. } => format!("{QUEUE}mirror/{stage}/{sha}"),
        }
    }

    /// Where what was last posted for this job's subject is remembered
    /// (gate answers are not remembered: each request is answered once).
    fn posted_key(&self) -> Option<String> {
        match self {
            Self::Review { sha, .. } => Some(format!("server/posted/review/{sha}")),
            Self::Mirror { stage, sha, .. } => Some(format!("server/posted/mirror/{stage}/{sha}")),
            Self::Gate { .. } => None,
        }
    }

    /// What is remembered once the job is done.
    fn posted(&self) -> serde_json::Value {
        match self {
            Self::Review { status, .. } => {
                serde_json::json!({ "state": status.state, "description": status.description })
            }
            Self::Mirror { state, .. } => serde_json::json!({ "state": state }),
            Self::Gate { .. } => serde_json::Value::Null,
        }
    }
}

/// Forge work: queueing what a round found, doing what is queued.
#[derive(Debug)]
pub(crate) struct ForgeWork<'a> {
    pub(crate) forge: &'a dyn Forge,
    pub(crate) promoter: &'a Promoter,
    pub(crate) store: &'a dyn StateStore,
    pub(crate) link: Option<&'a str>,
}

/// What a round of forge work did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForgeDone {
    pub(crate) done: usize,
    pub(crate) failed: usize,
}

impl ForgeWork<'_> {
    /// Queue a gate request to be answered.
    pub(crate) async fn request_gate(&self, stage: &str, sha: &str, reply_to: &str) -> Result<()> {
        let job = Job::Gate {
            stage: stage.to_owned(),
            sha: sha.to_owned(),
            reply_to: reply_to.to_owned(),
            candidate: None,
            answered_wait: None,
        };
        let key = job.key();
        if self.store.get(&key).await?.is_some() {
            // The same request delivered again: it is queued already.
            return Ok(());
        }
        self.put(&job, None).await
    }

    /// Queue what `ticks` tell the forge: the review decisions and the
    /// promotions that moved.
    pub(crate) async fn queue(&self, ticks: &[Tick]) -> Result<()> {
        let policy = self.promoter.policy();
        let mut jobs = Vec::new();
        for tick in ticks {
            for decision in &tick.decisions {
                let review =
                    policy.stage(&decision.from).is_some_and(|s| s.kind == atlas_promote_core::StageKind::Review);
                let to_trunk =
                    policy.stage(&decision.to).is_some_and(|s| s.kind == atlas_promote_core::StageKind::Trunk);
                if review && to_trunk {
                    jobs.push(Job::Review {
                        sha: decision.sha.clone(),
                        status: ReviewStatus::of(decision, crate::notify::page(self.link, &decision.sha)),
                    });
                }
            }
            let mut moved: Vec<&str> = Vec::new();
            for action in &tick.actions {
                if let Action::Audit(AuditEntry { subject, .. }) = action
                    && !moved.contains(&subject.as_str())
                {
                    moved.push(subject);
                }
            }
            for sha in moved {
                let Ok(record) = self.promoter.promotion(sha).await else { continue };
                if let Some((stage, state)) = Mirrored::of(&record.value.promotion.state) {
                    jobs.push(Job::Mirror { stage: stage.to_owned(), sha: sha.to_owned(), state });
                }
            }
        }
        for job in jobs {
            // Already posted as it is: nothing to do.
            if let Some(posted) = job.posted_key()
                && self.store.get(&posted).await?.is_some_and(|d| d.value == job.posted())
            {
                continue;
            }
            let existing = self.store.get(&job.key()).await?;
            if existing
                .as_ref()
                .is_some_and(|d| serde_json::from_value::<Job>(d.value.clone()).ok() == Some(job.clone()))
            {
                continue;
            }
            raced(self.put(&job, existing.map(|d| d.version)).await)?;
        }
        Ok(())
    }

    async fn put(&self, job: &Job, expected: Option<u64>) -> Result<()> {
        let value = serde_json::to_value(job)
            .map_err(|e| atlas_promote_core::Error::Invalid { what: "forge job".into(), message: e.to_string() })?;
        self.store.commit(vec![Write::Put { key: job.key(), expected, value }], Vec::new()).await.map(|_| ())
    }

    /// Do the queued work; a job that fails stays queued when the error is
    /// temporary and is dropped (logged) when it is not.
    pub(crate) async fn run(&self) -> Result<ForgeDone> {
        let mut done = ForgeDone::default();
        for doc in self.store.list(QUEUE).await? {
            let job: Job = match serde_json::from_value(doc.value.clone()) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(key = %doc.key, error = %e, "a queued forge job cannot be read; dropped");
                    self.finish(&doc.key, doc.version, None, None).await?;
                    continue;
                }
            };
            match self.attempt(&job).await {
                Ok(Outcome::Done(audit)) => {
                    let posted = job.posted_key().map(|k| (k, job.posted()));
                    self.finish(&doc.key, doc.version, posted, audit).await?;
                    done.done += 1;
                }
                Ok(Outcome::Keep(updated)) => {
                    if let Some(updated) = updated {
                        raced(self.put(&updated, Some(doc.version)).await)?;
                    }
                }
                Err(e) => {
                    done.failed += 1;
                    if e.is_temporary() {
                        tracing::warn!(key = %doc.key, forge = self.forge.name(), error = %e, "forge work failed; tried again next round");
                    } else {
                        tracing::error!(key = %doc.key, forge = self.forge.name(), error = %e, "forge work failed for good; dropped");
                        self.finish(&doc.key, doc.version, None, None).await?;
                    }
                }
            }
        }
        Ok(done)
    }

    async fn attempt(&self, job: &Job) -> Result<Outcome> {
        match job {
            Job::Review { sha, status } => {
                self.forge.post_review(sha, status).await?;
                Ok(Outcome::Done(None))
            }
            Job::Mirror { stage, sha, state } => {
                let url = crate::notify::page(self.link, sha);
                self.forge.mirror(stage, sha, *state, url.as_deref()).await?;
                Ok(Outcome::Done(None))
            }
            Job::Gate { stage, sha, reply_to, candidate, answered_wait } => {
                let candidate = match candidate {
                    Some(c) => c.clone(),
                    None => self.forge.gate_candidate(sha, reply_to).await?,
                };
                let reply = self.promoter.gate_reply(&candidate, stage).await?;
                if let Verdict::Wait { until } = reply.verdict {
                    let mut updated = job.clone();
                    if let Job::Gate { candidate: c, answered_wait: w, .. } = &mut updated {
                        *c = Some(candidate.clone());
                        if *answered_wait != Some(until) {
                            self.forge.answer_gate(stage, reply_to, &reply).await?;
                            *w = Some(until);
                        }
                    }
                    return Ok(Outcome::Keep((updated != *job).then_some(updated)));
                }
                self.forge.answer_gate(stage, reply_to, &reply).await?;
                let answer = if reply.verdict == Verdict::Allow { "approved" } else { "rejected" };
                let audit = AuditEntry {
                    at: self.promoter.now(),
                    actor: "engine".into(),
                    action: "gate.answered".into(),
                    subject: candidate.clone(),
                    message: format!(
                        "{} protection rule for {candidate} into {stage} {answer}: {}",
                        self.forge.name(),
                        reply.comment
                    ),
                };
                Ok(Outcome::Done(Some(audit)))
            }
        }
    }

    async fn finish(
        &self,
        key: &str,
        version: u64,
        posted: Option<(String, serde_json::Value)>,
        audit: Option<AuditEntry>,
    ) -> Result<()> {
        let mut writes = vec![Write::Delete { key: key.to_owned(), expected: version }];
        if let Some((posted_key, value)) = posted {
            let expected = self.store.get(&posted_key).await?.map(|d| d.version);
            writes.push(Write::Put { key: posted_key, expected, value });
        }
        let commit = Commit::new().with_writes(writes).with_audit(audit.into_iter().collect());
        raced(self.store.commit_with(commit).await.map(|_| ()))
    }
}

/// A write that lost a race to another round or instance doing the same
/// work (a `Conflict`) is as good as done.
fn raced(written: Result<()>) -> Result<()> {
    match written {
        Err(atlas_promote_core::Error::Conflict { .. }) => Ok(()),
        other => other,
    }
}

enum Outcome {
    /// Done; the audit entry to record with it.
    Done(Option<AuditEntry>),
    /// Not yet; the job as it is now, when it changed.
    Keep(Option<Job>),
}

/// [`Forge`] on GitHub: commit statuses, protection-rule callbacks and
/// deployments through the configured client.
#[derive(Debug, Clone)]
pub struct GitHubForge {
    github: GitHub,
}

impl GitHubForge {
    /// The forge on `github`.
    pub fn new(github: GitHub) -> Self {
        Self { github }
    }
}

#[async_trait]
impl Forge for GitHubForge {
    fn name(&self) -> &str {
        "github"
    }

    async fn post_review(&self, sha: &str, status: &ReviewStatus) -> Result<()> {
        let state = match status.state {
            ReviewState::Success => CommitState::Success,
            ReviewState::Pending => CommitState::Pending,
            ReviewState::Failure => CommitState::Failure,
        };
        self.github
            .post_commit_status(sha, REVIEW_CONTEXT, state, &status.description, status.target_url.as_deref())
            .await
            .map(|_| ())
    }

    async fn gate_candidate(&self, sha: &str, reply_to: &str) -> Result<String> {
        self.github.gate_candidate(sha, reply_to).await
    }

    async fn answer_gate(&self, stage: &str, reply_to: &str, reply: &GateReply) -> Result<()> {
        let answer = atlas_promote_github::GateAnswer::from(&reply.verdict);
        self.github.answer_protection_rule(stage, reply_to, answer, &reply.comment).await
    }

    async fn mirror(&self, stage: &str, sha: &str, state: Mirrored, url: Option<&str>) -> Result<()> {
        let state = match state {
            Mirrored::InProgress => DeploymentState::InProgress,
            Mirrored::Success => DeploymentState::Success,
            Mirrored::Failure => DeploymentState::Failure,
            Mirrored::Inactive => DeploymentState::Inactive,
        };
        self.github.mirror_promotion(stage, sha, state, url).await.map(|_| ())
    }
}
