//! Givens shared by the gate tests: instants, evidence builders and the
//! ATLAS `staging → prod` candidate that passes every rule.
#![allow(dead_code)]

use std::collections::BTreeMap;

use atlas_promote_core::{
    ApprovalDecision, ApprovalRecord, ApprovalRule, Candidate, CheckResult, CheckSpec, CheckStatus, Decision,
    Deployment, Evidence, Freeze, LocalTime, Policy, Stage, StageKind, Weekday, Window,
};
use chrono::{DateTime, Utc};

pub(crate) const SHA: &str = "9fceb02";

/// An instant written in RFC 3339.
pub(crate) fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|e| panic!("{text:?} is not an RFC 3339 instant: {e}"))
}

/// The kinds of a decision's blockers, in order.
pub(crate) fn blockers(decision: &Decision) -> Vec<&'static str> {
    decision.blockers.iter().map(|b| b.kind()).collect()
}

/// The kinds of a decision's warnings, in order.
pub(crate) fn warnings(decision: &Decision) -> Vec<&'static str> {
    decision.warnings.iter().map(|w| w.kind()).collect()
}

/// A deployment that succeeded at `deployed_at` and needs no flush.
pub(crate) fn deployed(deployed_at: &str) -> Option<Deployment> {
    Some(Deployment { deployed_at: at(deployed_at), flush_required: false, flushed_at: None })
}

/// A finished run of check `name` on [`SHA`].
pub(crate) fn run(name: &str, status: CheckStatus, started: &str, finished: &str) -> CheckResult {
    CheckResult { name: name.into(), sha: SHA.into(), status, started_at: at(started), finished_at: Some(at(finished)) }
}

/// A passed run of check `name` on [`SHA`].
pub(crate) fn passed(name: &str, started: &str, finished: &str) -> CheckResult {
    run(name, CheckStatus::Passed, started, finished)
}

/// A failed run of check `name` on [`SHA`].
pub(crate) fn failed(name: &str, started: &str, finished: &str) -> CheckResult {
    run(name, CheckStatus::Failed, started, finished)
}

/// A run of check `name` on [`SHA`] that is still going.
pub(crate) fn running(name: &str, started: &str) -> CheckResult {
    CheckResult {
        name: name.into(),
        sha: SHA.into(),
        status: CheckStatus::Running,
        started_at: at(started),
        finished_at: None,
    }
}

/// A record by `approver`, holding `roles`, for entering `stage` with [`SHA`].
pub(crate) fn record(
    approver: &str,
    roles: &[&str],
    stage: &str,
    decision: ApprovalDecision,
    when: &str,
) -> ApprovalRecord {
    ApprovalRecord {
        approver: approver.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        stage: stage.into(),
        sha: SHA.into(),
        decision,
        at: at(when),
    }
}

/// An approval of entering prod.
pub(crate) fn approves_prod(approver: &str, roles: &[&str], when: &str) -> ApprovalRecord {
    record(approver, roles, "prod", ApprovalDecision::Approve, when)
}

/// When the ATLAS candidate below is decided.
pub(crate) const NOW: &str = "2026-05-05T10:00:00Z";

/// A trunk candidate by alice, deployed to staging and flushed, whose
/// nightly checks passed last night, approved for prod by pat
/// (product-owner) and dan (dev-team): at [`NOW`] it may enter prod.
pub(crate) fn ready_for_prod() -> Evidence {
    let mut evidence = Evidence::new(Candidate::trunk(SHA, ["alice"]));
    evidence.deployment = Some(Deployment {
        deployed_at: at("2026-05-04T08:00:00Z"),
        flush_required: true,
        flushed_at: Some(at("2026-05-04T08:20:00Z")),
    });
    evidence.checks = ["integration", "system", "data-quality"]
        .into_iter()
        .map(|name| passed(name, "2026-05-04T22:00:00Z", "2026-05-04T22:40:00Z"))
        .collect();
    evidence.approvals = vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("dan", &["developer", "dev-team"], "2026-05-05T09:30:00Z"),
    ];
    evidence
}

/// Decide the ATLAS `staging → prod` gate.
pub(crate) fn staging_to_prod(evidence: &Evidence, now: &str) -> Decision {
    Policy::atlas().gate("staging", "prod").expect("ATLAS has staging → prod").evaluate(evidence, at(now))
}

/// A policy `build → live` of two environments: `build` has the given
/// checks, `live` is configured by `live`. No approvals unless added.
pub(crate) fn two_environments(checks: Vec<CheckSpec>, live: impl FnOnce(&mut Stage)) -> Policy {
    let mut build = Stage::new("build", StageKind::Environment);
    build.checks = checks;
    let mut target = Stage::new("live", StageKind::Environment);
    live(&mut target);
    Policy { name: "small".into(), directory: BTreeMap::new(), overrides: None, stages: vec![build, target] }
}

/// Decide `build → live` of `policy`.
pub(crate) fn build_to_live(policy: &Policy, evidence: &Evidence, now: &str) -> Decision {
    policy.gate("build", "live").expect("build → live").evaluate(evidence, at(now))
}

/// A trunk candidate deployed to `build` at `deployed_at`, nothing else known.
pub(crate) fn deployed_candidate(deployed_at: &str) -> Evidence {
    let mut evidence = Evidence::new(Candidate::trunk(SHA, ["alice"]));
    evidence.deployment = deployed(deployed_at);
    evidence
}

/// An approval rule requiring `roles`, self-approval forbidden, no ttl.
pub(crate) fn require(roles: &[(&str, u32)]) -> ApprovalRule {
    ApprovalRule::require(roles.iter().copied())
}

/// A window on `days` from `start` to `end` (`HH:MM`) in Europe/Berlin.
pub(crate) fn berlin_window(days: &[Weekday], start: &str, end: &str) -> Window {
    let time = |text: &str| {
        let (h, m) = text.split_once(':').expect("HH:MM");
        LocalTime::hm(h.parse().expect("hours"), m.parse().expect("minutes")).expect("a valid time")
    };
    Window { days: days.to_vec(), start: time(start), end: time(end), tz: chrono_tz::Europe::Berlin }
}

/// A freeze of `[from, until)`.
pub(crate) fn freeze(from: &str, until: Option<&str>) -> Freeze {
    Freeze { from: at(from), until: until.map(at), reason: Some("holidays".into()) }
}
