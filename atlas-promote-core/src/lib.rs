//! The core of atlas-promote: release policies as data, gate decisions as pure
//! functions.
//!
//! ```
//! use atlas_promote_core::{Candidate, Evidence, Policy};
//!
//! let policy = Policy::atlas();
//! let evidence = Evidence::new(Candidate::trunk("9fceb02", ["alice"]));
//! let now = "2026-05-05T10:00:00Z".parse().unwrap();
//! let decision = policy.gate("staging", "prod").unwrap().evaluate(&evidence, now);
//! assert!(!decision.is_allowed());
//! ```
//!
//! The parts: [`policy`] (the rules as data, read from TOML or YAML files),
//! [`gate`] (the pure decision, DESIGN §4), [`machine`] (a candidate's
//! promotion as a pure state machine), [`backend`] (the traits CI systems,
//! approval sources, directories, source control and stores implement),
//! [`engine`] (the reconcile loop that moves candidates), [`memory`]
//! (in-memory backends; the durable stores, SQLite and PostgreSQL, are in the
//! crate `atlas-promote-sql`), and, with the feature
//! `testkit`, `testkit` (conformance suites and release-policy scenarios).
#![cfg_attr(
    feature = "testkit",
    doc = r#"
## Testing a release policy

A [`testkit::Scenario`] runs the real engine on in-memory backends and a
manual clock, so a release-policy test reads like the policy:

```
# #[tokio::main(flavor = "current_thread")]
# async fn main() -> atlas_promote_core::Result<()> {
use atlas_promote_core::{testkit::Scenario, CheckStatus, Policy};

let mut s = Scenario::new(Policy::atlas());
s.person("dan", &["developer", "dev-team"]).person("pat", &["product-owner"]);
s.merge("c1", "alice", &["pipelines/etl.py"]).await?;
s.approve("dan", "staging", "c1").await?;
s.run_until_idle().await?;
s.nightly("staging", "c1", CheckStatus::Failed);
s.approve("pat", "prod", "c1").await?;
s.approve("dan", "prod", "c1").await?;
s.run_until_idle().await?;
assert_eq!(s.state("c1").await?.to_string(), "live in staging"); // a failed night blocks prod
# Ok(())
# }
```
"#
)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The crates whose types the public API makes users name: a user who
// depends on this crate (or the `atlas-promote` facade) alone writes
// `atlas_promote::chrono::TimeDelta` and `#[atlas_promote::async_trait]`.

/// The [`async_trait`](macro@async_trait::async_trait) attribute every backend
/// trait is declared with; put it on your `impl` of one.
pub use async_trait::async_trait;
/// The date and time crate of every instant (`DateTime<Utc>`) and span
/// (`TimeDelta`) in the API.
pub use chrono;
/// The time zones of deployment windows ([`Window::tz`]).
pub use chrono_tz;
/// JSON, the form of decisions, plans and evidence.
pub use serde_json;

pub mod audit;
pub mod backend;
pub mod coordination;
pub mod decision;
mod duration;
pub mod engine;
mod error;
pub mod evidence;
mod file;
#[doc(hidden)]
pub mod fuzz;
pub mod gate;
pub mod impact;
mod instant;
mod key_hash;
mod lint;
pub mod machine;
pub mod memory;
pub mod notify;
pub mod policy;
pub mod policy_test;
mod retry;
pub mod run;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use audit::{AuditBreak, AuditEntry, AuditHead, AuditRecord, BreakKind};
pub use backend::{
    ApprovalSource, ChangedFiles, CheckQuery, CheckSource, CiProvider, Clock, Directory, Document, Fetched,
    ManualClock, Notice, SourceControl, StateStore, SystemClock, Write,
};
pub use coordination::{ClaimOutbox, Commit, Delivery, Lease, LeaseOutcome, OutboxEntry, OutboxItem};
pub use decision::{Blocker, Decision, Shortfall, Verdict, Warning};
pub use duration::{Duration, ParseDurationError};
pub use engine::records::{Hold, PromotionRecord, Versioned};
pub use engine::{ApprovalOutcome, GateReply, Plan, PlanStep, Promoter, PromoterBuilder, StoreApprovals, Tick};
pub use error::{BoxError, Error, Result, with_innermost_cause};
pub use evidence::{
    ApprovalDecision, ApprovalRecord, Candidate, CheckResult, CheckStatus, Deployment, Evidence, EvidenceError, Origin,
};
pub use file::{LocatedFile, PolicyError};
pub use gate::{Gate, GateError, evaluate};
pub use lint::{Finding, Severity};
pub use machine::{Action, Event, Promotion, State, TransitionError};
pub use memory::{MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, Outcome, StaticDirectory};
pub use notify::Notifier;
pub use policy::{
    ApprovalRule, Blackout, CheckSpec, Deploy, Flush, Freeze, LocalTime, Monitor, OnFailure, OverrideRule, Person,
    Policy, Role, Stage, StageKind, Weekday, Window,
};
pub use retry::RetrySettings;
pub use run::{IdempotencyKey, Run, RunId, RunKind, RunRequest, RunStatus};
