//! The pluggable edge (DESIGN §5): the traits every CI system, approval
//! source, directory, source-control host, store and clock implements.
//!
//! Each trait is object-safe (`Arc<dyn CiProvider>` is how the engine holds
//! one), `Send + Sync`, and has an in-memory implementation in
//! [`crate::memory`] plus a conformance suite in the testkit (feature
//! `testkit`) that any implementation's tests should call. For a worked
//! custom adapter see `examples/custom_adapter.rs`.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::coordination::{ClaimOutbox, Commit, Delivery, Lease, LeaseOutcome, OutboxItem};
use crate::error::Result;
use crate::evidence::{ApprovalRecord, CheckResult};
use crate::policy::{Person, Role};

pub use crate::audit::{AuditEntry, AuditRecord};
pub use crate::run::{IdempotencyKey, Run, RunId, RunKind, RunRequest, RunStatus};

/// A CI system that runs deploy and flush workflows.
///
/// # Contract
/// - [`trigger`](Self::trigger) starts one run per call and returns it; it
///   passes `request.key` to the CI system so that [`find`](Self::find) can
///   recover the run by key after a crash. Callers call `find` first; a
///   provider need not deduplicate by itself, but may.
/// - [`find`](Self::find) returns the run started with `key`, or `None`.
///   Once `trigger` returned, `find` with its key returns that run.
/// - [`status`](Self::status) returns the run's current state; a run never
///   goes back from a finished status. An unknown run is [`Error::NotFound`](crate::Error::NotFound).
/// - [`cancel`](Self::cancel) stops a run; cancelling a finished run is not an error.
/// - Failures of the CI system are [`Error::Backend`](crate::Error::Backend) naming the operation,
///   with `temporary` set when a retry may help.
///
/// Example: `examples/custom_adapter.rs` implements this for a local command runner.
#[async_trait]
pub trait CiProvider: fmt::Debug + Send + Sync {
    /// Start a run.
    async fn trigger(&self, request: &RunRequest) -> Result<Run>;
    /// The run started with this key, if any.
    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>>;
    /// The current state of a run.
    async fn status(&self, run: &RunId) -> Result<Run>;
    /// Stop a run.
    async fn cancel(&self, run: &RunId) -> Result<()>;
}

/// Which check results to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckQuery {
    /// The stage whose checks these are.
    pub stage: String,
    /// The commit.
    pub sha: String,
    /// The check names the policy declares for the stage (empty: all).
    pub names: Vec<String>,
    /// Results that started before this instant are not needed (a source may still return them).
    pub since: Option<DateTime<Utc>>,
}

impl CheckQuery {
    /// Results of `names` for `sha` in `stage`.
    pub fn new(stage: impl Into<String>, sha: impl Into<String>, names: Vec<String>) -> Self {
        Self { stage: stage.into(), sha: sha.into(), names, since: None }
    }

    /// Only results that started at or after `since` are needed.
    pub fn since(mut self, since: Option<DateTime<Utc>>) -> Self {
        self.since = since;
        self
    }
}

/// Results of recurring checks (nightly integration, system, data-quality …).
///
/// # Contract
/// - Returns results for `query.sha` only, with every result whose name is in
///   `query.names` (all names when empty) that started at or after
///   `query.since`; it may return more (the gate filters), never fewer.
/// - Each result's `sha` is the commit it ran against; `finished_at` is set
///   exactly when the status is finished.
/// - No results is `Ok(vec![])`, not an error.
#[async_trait]
pub trait CheckSource: fmt::Debug + Send + Sync {
    /// The results for a commit.
    async fn checks(&self, query: &CheckQuery) -> Result<Vec<CheckResult>>;
}

/// Approval records for promotions.
///
/// # Contract
/// - [`approvals`](Self::approvals) returns every record for promotions of
///   `sha` into `stage` (approvals, rejections, withdrawals), each with the
///   time it was made. Records for other commits or stages may be returned
///   and are ignored by the gate. `roles` may be empty: the engine fills in
///   the roles each approver holds now from the [`Directory`].
/// - [`submit`](Self::submit) records a decision through this source, when
///   it can (a native store, an approval job, a deployment review); a source
///   that cannot returns [`Error::Unsupported`](crate::Error::Unsupported). After
///   `submit` returns, `approvals` includes the record.
#[async_trait]
pub trait ApprovalSource: fmt::Debug + Send + Sync {
    /// Records for promotions of `sha` into `stage`.
    async fn approvals(&self, stage: &str, sha: &str) -> Result<Vec<ApprovalRecord>>;
    /// Record a decision through this source.
    async fn submit(&self, record: &ApprovalRecord) -> Result<()>;
}

/// Who holds which role.
///
/// # Contract
/// - [`roles`](Self::roles) returns the roles `person` holds now; someone
///   unknown holds none (`Ok(vec![])`), which is not an error.
#[async_trait]
pub trait Directory: fmt::Debug + Send + Sync {
    /// The roles `person` holds now.
    async fn roles(&self, person: &str) -> Result<Vec<Role>>;
}

/// Files changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChangedFiles {
    /// Paths changed, added, removed, or renamed (both the old and the new path).
    pub files: Vec<String>,
    /// `false` when the list may be incomplete (truncated, or the commits
    /// diverged): callers must then assume anything changed.
    pub complete: bool,
}

/// The source-control host: what changed, and who wrote it.
///
/// # Contract
/// - [`changed_files`](Self::changed_files) lists the paths changed from
///   `base` to `head`; when it cannot tell for sure it says so with
///   `complete: false` rather than failing. Unknown commits are
///   [`Error::NotFound`](crate::Error::NotFound).
/// - [`authors`](Self::authors) lists the distinct authors of the commits in
///   `(base, head]` (all ancestors of `head` when `base` is `None`).
#[async_trait]
pub trait SourceControl: fmt::Debug + Send + Sync {
    /// Paths changed from `base` to `head`.
    async fn changed_files(&self, base: &str, head: &str) -> Result<ChangedFiles>;
    /// Authors of the commits after `base` up to `head`.
    async fn authors(&self, base: Option<&str>, head: &str) -> Result<Vec<Person>>;
}

/// A stored document and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The document's key, e.g. `promotion/9fceb02`.
    pub key: String,
    /// Its version: 1 when first written, one more on each write.
    pub version: u64,
    /// Its content.
    pub value: serde_json::Value,
}

/// What [`StateStore::get_if_changed`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The document is still at the version the caller holds.
    Unchanged,
    /// The document as it is now (`None`: there is none).
    Current(Option<Document>),
}

/// One write of a [`StateStore::commit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Write {
    /// Create or replace a document. `expected` is the version read
    /// (`None`: the document must not exist yet).
    Put {
        /// The key.
        key: String,
        /// The version the writer read.
        expected: Option<u64>,
        /// The new content.
        value: serde_json::Value,
    },
    /// Remove a document at the version read.
    Delete {
        /// The key.
        key: String,
        /// The version the writer read.
        expected: u64,
    },
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { key, .. } | Self::Delete { key, .. } => key,
        }
    }
}

/// Promotion state and the audit log.
///
/// # Contract
/// - Documents are versioned. [`commit`](Self::commit) applies all its
///   writes and appends all its audit entries, or none of them: if any
///   write's `expected` version differs from the stored one it fails with
///   [`Error::Conflict`](crate::Error::Conflict) and changes nothing. A stale
///   write is a conflict, never a lost update.
/// - Versions start at 1 and grow by one per write of a key. A delete is a
///   write too: [`commit`](Self::commit) returns the version of the deletion,
///   and a store may continue the numbering when the key is created again
///   (the in-memory and SQL stores do), so that a writer still holding a
///   version from before the delete gets a conflict rather than overwriting
///   the new document.
/// - [`list`](Self::list) returns the documents whose key starts with
///   `prefix`, ordered by key.
/// - [`get_if_changed`](Self::get_if_changed) answers
///   [`Fetched::Unchanged`] exactly when [`get`](Self::get) would return
///   the document at that version; the provided implementation calls
///   `get`, and a store that can compare versions without copying the
///   document should override it (the engine reads the same documents on
///   every tick and keeps what it decoded).
/// - The audit log is append-only: records are numbered from 1 without gaps
///   and each carries the hash of the one before;
///   [`audit`](Self::audit) returns them in order.
///
/// What several instances sharing a store need is provided with a default
/// that answers [`Error::Unsupported`](crate::Error::Unsupported), so a store
/// for one process may leave it out; every store shipped implements it:
/// - [`commit_with`](Self::commit_with) is [`commit`](Self::commit) with
///   outbox entries appended in the same transaction. An entry whose id is
///   already in the outbox is a [`Conflict`](crate::Error::Conflict) on the
///   key `outbox/<id>`, and nothing of the commit is written.
/// - Leases: [`acquire_lease`](Self::acquire_lease) grants a lease that is
///   free, lapsed (`until <= now`) or already the caller's (then renewed,
///   same token); a lease changing hands gets the next token.
///   [`renew_lease`](Self::renew_lease) extends a lease only while its
///   holder still has it (same token) and it has not lapsed;
///   [`release_lease`](Self::release_lease) frees it only for the holder
///   with that token.
/// - Deliveries: [`record_delivery`](Self::record_delivery) answers
///   [`Delivery::First`] the first time a
///   `(source, id)` pair is recorded and
///   [`Delivery::Duplicate`] after, until
///   [`prune_deliveries`](Self::prune_deliveries) removes the ones seen
///   before a time.
/// - Outbox: [`claim_outbox`](Self::claim_outbox) returns the undelivered
///   entries whose next attempt is due, oldest first, counts the attempt and
///   holds them from other claimants until `now + hold`;
///   [`outbox_delivered`](Self::outbox_delivered) removes an entry from
///   delivery for good; [`outbox_failed`](Self::outbox_failed) records why
///   an attempt failed and when to try again.
#[async_trait]
pub trait StateStore: fmt::Debug + Send + Sync {
    /// The document at `key`.
    async fn get(&self, key: &str) -> Result<Option<Document>>;
    /// The documents whose keys start with `prefix`, ordered by key.
    async fn list(&self, prefix: &str) -> Result<Vec<Document>>;
    /// The document at `key`, unless it is still at `version`: how a cache
    /// of decoded documents asks whether what it holds is current.
    async fn get_if_changed(&self, key: &str, version: u64) -> Result<Fetched> {
        Ok(match self.get(key).await? {
            Some(doc) if doc.version == version => Fetched::Unchanged,
            other => Fetched::Current(other),
        })
    }
    /// Apply `writes` and append `audit`, all or nothing; returns the new versions of the writes' keys.
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditEntry>) -> Result<Vec<u64>>;
    /// The audit records with `seq > after`, in order.
    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>>;

    /// Apply `commit`'s writes and append its audit and outbox entries, all
    /// or nothing; returns the new versions of the writes' keys.
    ///
    /// The provided implementation commits a commit without outbox entries
    /// and refuses one with them.
    async fn commit_with(&self, commit: Commit) -> Result<Vec<u64>> {
        if commit.outbox.is_empty() {
            self.commit(commit.writes, commit.audit).await
        } else {
            Err(unsupported("an outbox"))
        }
    }

    /// Take the lease `name` for `holder` until `now + ttl`, unless another
    /// holder has it and it has not lapsed.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<LeaseOutcome> {
        let _ = (name, holder, now, ttl);
        Err(unsupported("leases"))
    }

    /// Extend `lease` until `now + ttl`; `None` when its holder no longer
    /// has it (it lapsed, was released, or changed hands).
    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: TimeDelta) -> Result<Option<Lease>> {
        let _ = (lease, now, ttl);
        Err(unsupported("leases"))
    }

    /// Give up `lease`; `false` when its holder no longer had it. A released
    /// lease stays listed by [`leases`](Self::leases), with `until` at the
    /// earliest time there is, so that its next holder's token is still one more.
    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        let _ = lease;
        Err(unsupported("leases"))
    }

    /// The leases whose names start with `prefix`, lapsed or not, ordered by name.
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let _ = prefix;
        Err(unsupported("leases"))
    }

    /// Record that delivery `id` from `source` (e.g. `github`) arrived at `at`.
    async fn record_delivery(&self, source: &str, id: &str, at: DateTime<Utc>) -> Result<Delivery> {
        let _ = (source, id, at);
        Err(unsupported("deliveries"))
    }

    /// Forget the deliveries recorded before `before`; returns how many.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64> {
        let _ = before;
        Err(unsupported("deliveries"))
    }

    /// Claim the outbox entries due for delivery.
    async fn claim_outbox(&self, claim: ClaimOutbox) -> Result<Vec<OutboxItem>> {
        let _ = claim;
        Err(unsupported("an outbox"))
    }

    /// The entry `id` was delivered: never claim it again.
    /// Unknown or already delivered ids are [`Error::NotFound`](crate::Error::NotFound).
    async fn outbox_delivered(&self, id: &str) -> Result<()> {
        let _ = id;
        Err(unsupported("an outbox"))
    }

    /// The attempt to deliver `id` failed with `error`: claim it again at `next_attempt_at`.
    /// Unknown or already delivered ids are [`Error::NotFound`](crate::Error::NotFound).
    async fn outbox_failed(&self, id: &str, error: &str, next_attempt_at: DateTime<Utc>) -> Result<()> {
        let _ = (id, error, next_attempt_at);
        Err(unsupported("an outbox"))
    }
}

fn unsupported(operation: &str) -> crate::Error {
    crate::Error::Unsupported { backend: "this state store".into(), operation: operation.into() }
}

/// The time, read in one place so tests can set it.
///
/// # Contract
/// - `now` never goes backwards for a [`SystemClock`]; a manual clock does
///   what its test tells it.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told: for tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: std::sync::Arc::new(std::sync::Mutex::new(start)) }
    }

    /// Set the time (it may go backwards: a simulated clock jump).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    /// Move the time forward by `by`.
    pub fn advance(&self, by: chrono::TimeDelta) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a backend learned from outside (a webhook, a poll) that the engine
/// should take into account. Webhook parsers of the backends produce these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// A CI run changed status.
    RunChanged {
        /// The run.
        run: RunId,
        /// Its idempotency key, when the payload carries it.
        key: Option<IdempotencyKey>,
        /// Its new status.
        status: RunStatus,
        /// When it changed.
        at: DateTime<Utc>,
    },
    /// A check result arrived.
    CheckReported(CheckResult),
    /// An approval, rejection or withdrawal arrived.
    ApprovalReported(ApprovalRecord),
    /// A commit was merged to trunk. [`Promoter::handle`](crate::Promoter::handle)
    /// asks [`SourceControl::authors`] who wrote it: the authors of the
    /// commits since the newest trunk commit the engine knows (of all of
    /// its history for the first one), so that a push of several commits
    /// counts each of their authors for self-approval.
    Merged {
        /// The merged commit.
        sha: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A system asks whether `sha` may enter `stage` now (e.g. a GitHub
    /// deployment protection rule); answer through the backend that asked.
    GateRequested {
        /// The stage to enter.
        stage: String,
        /// The commit.
        sha: String,
        /// Backend-specific data needed to answer (e.g. a callback URL).
        reply_to: String,
    },
}
