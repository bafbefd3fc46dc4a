//! Every transition of the promotion state machine, accepted and rejected.

use atlas_promote_core::machine::{Action, Event, Promotion, State};
use atlas_promote_core::{
    ApprovalDecision, ApprovalRecord, Blocker, Candidate, CheckResult, CheckStatus, Decision, OnFailure, OverrideRule,
    Policy, RunId, RunKind, Shortfall, Verdict,
};
use chrono::{DateTime, TimeDelta, Utc};

const SHA: &str = "9fceb02";

fn t0() -> DateTime<Utc> {
    "2026-05-04T08:00:00Z".parse().unwrap()
}

fn now() -> DateTime<Utc> {
    t0() + TimeDelta::hours(1)
}

fn policy() -> Policy {
    let mut p = Policy::atlas();
    p.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    p
}

fn promotion(state: State) -> Promotion {
    let mut p = Promotion::merged(&policy(), Candidate::trunk(SHA, ["alice"]), 1, t0());
    p.state = state;
    p
}

fn review() -> State {
    State::UnderReview { stage: "review".into(), since: t0() }
}
fn merged() -> State {
    State::Merged { stage: "trunk".into(), at: t0() }
}
fn deploying(stage: &str, run: Option<&str>, flush: bool) -> State {
    State::Deploying {
        stage: stage.into(),
        attempt: 1,
        run: run.map(|r| RunId(r.into())),
        flush_required: flush,
        since: t0(),
    }
}
fn flushing(stage: &str) -> State {
    State::Flushing { stage: stage.into(), attempt: 1, run: None, deployed_at: t0() }
}
fn live(stage: &str) -> State {
    State::Live { stage: stage.into(), deployed_at: t0(), flush_required: false, flushed_at: None }
}
fn failed(stage: &str) -> State {
    State::Failed { stage: stage.into(), attempt: 1, flush_required: true, reason: "boom".into(), at: t0() }
}
fn superseded(stage: &str) -> State {
    State::Superseded { stage: stage.into(), by: "abc".into(), reason: "newer".into(), at: t0() }
}
fn rolled_back(stage: &str) -> State {
    State::RolledBack { stage: stage.into(), reason: "bad".into(), at: t0() }
}

fn decision(from: &str, to: &str, verdict: Verdict, blockers: Vec<Blocker>) -> Decision {
    Decision { from: from.into(), to: to.into(), sha: SHA.into(), at: now(), verdict, blockers, warnings: vec![] }
}
fn allowed(from: &str, to: &str) -> Event {
    Event::GateDecided { decision: decision(from, to, Verdict::Allow, vec![]), flush_required: true }
}
fn missing_approval(from: &str, to: &str) -> Event {
    let short = vec![Shortfall { role: "developer".into(), need: 1, have: 0 }];
    let blocker = Blocker::ApprovalsMissing { stage: to.into(), short };
    Event::GateDecided { decision: decision(from, to, Verdict::Block, vec![blocker]), flush_required: false }
}
fn approval(stage: &str, sha: &str, decision: ApprovalDecision) -> ApprovalRecord {
    ApprovalRecord {
        approver: "dan".into(),
        roles: vec!["developer".into()],
        stage: stage.into(),
        sha: sha.into(),
        decision,
        at: now(),
    }
}
fn check(name: &str, sha: &str, status: CheckStatus) -> CheckResult {
    CheckResult { name: name.into(), sha: sha.into(), status, started_at: t0(), finished_at: Some(now()) }
}
fn override_by(roles: &[&str], bypass: &[&str]) -> Event {
    let blocker = Blocker::WindowClosed { stage: "prod".into(), opens_at: None };
    Event::OverrideGranted {
        decision: decision("staging", "prod", Verdict::Block, vec![blocker]),
        by: "olga".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        bypass: bypass.iter().map(|r| r.to_string()).collect(),
        reason: "hotfix for incident 42".into(),
        flush_required: false,
    }
}

/// The kind of each action, in order: `trigger:deploy`, `audit:merged`, …
fn kinds(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Trigger(r) => format!("trigger:{}:{}", r.kind, r.stage),
            Action::RequestApprovals { stage, .. } => format!("request_approvals:{stage}"),
            Action::Alert { stage, .. } => format!("alert:{stage}"),
            Action::RollBack { stage, .. } => format!("rollback:{stage}"),
            Action::Audit(e) => format!("audit:{}", e.action),
            _ => "other".into(),
        })
        .collect()
}

struct Case {
    name: &'static str,
    from: State,
    event: Event,
    /// `Ok((state after, action kinds))` or `Err(part of the reason)`.
    expect: Result<(&'static str, Vec<&'static str>), &'static str>,
}

fn ok(state: &'static str, actions: &[&'static str]) -> Result<(&'static str, Vec<&'static str>), &'static str> {
    Ok((state, actions.to_vec()))
}

fn cases() -> Vec<Case> {
    let mut monitored = policy();
    monitored.stages[4].monitor.as_mut().unwrap().on_failure = OnFailure::Alert;
    vec![
        Case {
            name: "review + merged → merged",
            from: review(),
            event: Event::Merged { at: now() },
            expect: ok("merged to trunk", &["audit:merged"]),
        },
        Case {
            name: "merged + merged is refused",
            from: merged(),
            event: Event::Merged { at: now() },
            expect: Err("does not apply"),
        },
        Case {
            name: "merged + allowed → deploying to dev",
            from: merged(),
            event: allowed("trunk", "dev"),
            expect: ok("deploying to dev (attempt 1)", &["audit:gate.allowed", "trigger:deploy:dev"]),
        },
        Case {
            name: "review + allowed into trunk is refused: trunk is entered by merging",
            from: review(),
            event: allowed("review", "trunk"),
            expect: Err("merged"),
        },
        Case {
            name: "live in dev + allowed → deploying to staging",
            from: live("dev"),
            event: allowed("dev", "staging"),
            expect: ok("deploying to staging (attempt 1)", &["audit:gate.allowed", "trigger:deploy:staging"]),
        },
        Case {
            name: "a decision about another stage is refused",
            from: live("dev"),
            event: allowed("staging", "prod"),
            expect: Err("leaving staging"),
        },
        Case {
            name: "a gate decision while deploying is refused",
            from: deploying("dev", None, false),
            event: allowed("dev", "staging"),
            expect: Err("not waiting on a gate"),
        },
        Case {
            name: "blocked on approvals → request approvals once",
            from: live("dev"),
            event: missing_approval("dev", "staging"),
            expect: ok("live in dev", &["request_approvals:staging"]),
        },
        Case {
            name: "override by a permitted role → deploying to prod",
            from: live("staging"),
            event: override_by(&["release-manager"], &["window_closed"]),
            expect: ok("deploying to prod (attempt 1)", &["audit:override.granted", "trigger:deploy:prod"]),
        },
        Case {
            name: "override without a permitted role is refused",
            from: live("staging"),
            event: override_by(&["developer"], &["window_closed"]),
            expect: Err("no role the policy permits"),
        },
        Case {
            name: "override that does not name every blocker is refused",
            from: live("staging"),
            event: override_by(&["release-manager"], &["frozen"]),
            expect: Err("does not bypass window_closed"),
        },
        Case {
            name: "deploying + started → records the run",
            from: deploying("dev", None, false),
            event: Event::DeployStarted { stage: "dev".into(), run: RunId("r1".into()) },
            expect: ok("deploying to dev (attempt 1)", &["audit:deploy.started"]),
        },
        Case {
            name: "a second run for the same deploy is refused",
            from: deploying("dev", Some("r1"), false),
            event: Event::DeployStarted { stage: "dev".into(), run: RunId("r2".into()) },
            expect: Err("already runs"),
        },
        Case {
            name: "deploying + succeeded, no flush → live",
            from: deploying("dev", Some("r1"), false),
            event: Event::DeploySucceeded { stage: "dev".into(), at: now() },
            expect: ok("live in dev", &["audit:deploy.succeeded"]),
        },
        Case {
            name: "deploying + succeeded, flush required → flushing",
            from: deploying("dev", Some("r1"), true),
            event: Event::DeploySucceeded { stage: "dev".into(), at: now() },
            expect: ok("flushing dev", &["audit:deploy.succeeded", "trigger:flush:dev"]),
        },
        Case {
            name: "a success for another stage is refused",
            from: deploying("dev", Some("r1"), false),
            event: Event::DeploySucceeded { stage: "prod".into(), at: now() },
            expect: Err("does not apply"),
        },
        Case {
            name: "deploying + failed → failed",
            from: deploying("dev", Some("r1"), false),
            event: Event::DeployFailed { stage: "dev".into(), reason: "exit 1".into() },
            expect: ok("failed in dev: deploy failed: exit 1", &["audit:deploy.failed"]),
        },
        Case {
            name: "flushing + started → records the run",
            from: flushing("dev"),
            event: Event::FlushStarted { stage: "dev".into(), run: RunId("f1".into()) },
            expect: ok("flushing dev", &["audit:flush.started"]),
        },
        Case {
            name: "flushing + succeeded → live",
            from: flushing("dev"),
            event: Event::FlushSucceeded { stage: "dev".into(), at: now() },
            expect: ok("live in dev", &["audit:flush.succeeded"]),
        },
        Case {
            name: "flushing + failed → failed",
            from: flushing("dev"),
            event: Event::FlushFailed { stage: "dev".into(), reason: "exit 2".into() },
            expect: ok("failed in dev: flush failed: exit 2", &["audit:flush.failed"]),
        },
        Case {
            name: "a flush success while deploying is refused",
            from: deploying("dev", None, true),
            event: Event::FlushSucceeded { stage: "dev".into(), at: now() },
            expect: Err("does not apply"),
        },
        Case {
            name: "failed + retry → deploying attempt 2",
            from: failed("dev"),
            event: Event::RetryRequested { stage: "dev".into(), by: "dan".into() },
            expect: ok("deploying to dev (attempt 2)", &["audit:retry", "trigger:deploy:dev"]),
        },
        Case {
            name: "retry of a live candidate is refused",
            from: live("dev"),
            event: Event::RetryRequested { stage: "dev".into(), by: "dan".into() },
            expect: Err("does not apply"),
        },
        Case {
            name: "a check result is recorded silently",
            from: live("staging"),
            event: Event::CheckReported(check("integration", SHA, CheckStatus::Passed)),
            expect: ok("live in staging", &[]),
        },
        Case {
            name: "a check result for another commit is refused",
            from: live("staging"),
            event: Event::CheckReported(check("integration", "other", CheckStatus::Passed)),
            expect: Err("commit other"),
        },
        Case {
            name: "failing data-quality in prod raises an alert",
            from: live("prod"),
            event: Event::CheckReported(check("data-quality", SHA, CheckStatus::Failed)),
            expect: ok("live in prod", &["alert:prod", "audit:monitor.alert"]),
        },
        Case {
            name: "passing data-quality in prod is quiet",
            from: live("prod"),
            event: Event::CheckReported(check("data-quality", SHA, CheckStatus::Passed)),
            expect: ok("live in prod", &[]),
        },
        Case {
            name: "approval recorded is audited",
            from: live("dev"),
            event: Event::ApprovalRecorded(approval("staging", SHA, ApprovalDecision::Approve)),
            expect: ok("live in dev", &["audit:approval.approve"]),
        },
        Case {
            name: "withdrawal is audited",
            from: live("dev"),
            event: Event::ApprovalWithdrawn(approval("staging", SHA, ApprovalDecision::Withdraw)),
            expect: ok("live in dev", &["audit:approval.withdraw"]),
        },
        Case {
            name: "rejection is audited",
            from: live("dev"),
            event: Event::ApprovalRejected(approval("staging", SHA, ApprovalDecision::Reject)),
            expect: ok("live in dev", &["audit:approval.reject"]),
        },
        Case {
            name: "an approval for another commit is refused",
            from: live("dev"),
            event: Event::ApprovalRecorded(approval("staging", "other", ApprovalDecision::Approve)),
            expect: Err("commit other"),
        },
        Case {
            name: "an approval for a stage already passed is refused",
            from: live("staging"),
            event: Event::ApprovalRecorded(approval("dev", SHA, ApprovalDecision::Approve)),
            expect: Err("already past dev"),
        },
        Case {
            name: "a record whose decision contradicts the event is refused",
            from: live("dev"),
            event: Event::ApprovalRecorded(approval("staging", SHA, ApprovalDecision::Reject)),
            expect: Err("says reject"),
        },
        Case {
            name: "time passing changes nothing",
            from: live("dev"),
            event: Event::TimePassed,
            expect: ok("live in dev", &[]),
        },
        Case {
            name: "merged + superseded → superseded",
            from: merged(),
            event: Event::Superseded { by: "abc".into(), reason: "newer".into() },
            expect: ok("superseded in trunk by abc", &["audit:superseded"]),
        },
        Case {
            name: "live + superseded → superseded",
            from: live("staging"),
            event: Event::Superseded { by: "abc".into(), reason: "newer".into() },
            expect: ok("superseded in staging by abc", &["audit:superseded"]),
        },
        Case {
            name: "a deploy in flight cannot be superseded",
            from: deploying("dev", Some("r1"), false),
            event: Event::Superseded { by: "abc".into(), reason: "newer".into() },
            expect: Err("does not apply"),
        },
        Case {
            name: "live in prod + rollback → rolled back",
            from: live("prod"),
            event: Event::RollbackRequested { stage: "prod".into(), by: "olga".into(), reason: "bad data".into() },
            expect: ok("rolled back from prod", &["audit:rollback"]),
        },
        Case {
            name: "rollback of a stage it is not live in is refused",
            from: live("staging"),
            event: Event::RollbackRequested { stage: "prod".into(), by: "olga".into(), reason: "x".into() },
            expect: Err("does not apply"),
        },
        Case {
            name: "superseded in prod + redeploy → deploying to prod",
            from: superseded("prod"),
            event: Event::Redeploy { stage: "prod".into(), reason: "rollback".into(), flush_required: false },
            expect: ok("deploying to prod (attempt 1)", &["audit:redeploy", "trigger:deploy:prod"]),
        },
        Case {
            name: "rolled back + redeploy → deploying",
            from: rolled_back("prod"),
            event: Event::Redeploy { stage: "prod".into(), reason: "fixed".into(), flush_required: false },
            expect: ok("deploying to prod (attempt 1)", &["audit:redeploy", "trigger:deploy:prod"]),
        },
        Case {
            name: "an ended promotion takes no approvals",
            from: superseded("dev"),
            event: Event::ApprovalRecorded(approval("staging", SHA, ApprovalDecision::Approve)),
            expect: Err("has ended"),
        },
        Case {
            name: "an ended promotion takes no gate decisions",
            from: rolled_back("prod"),
            event: allowed("prod", "prod"),
            expect: Err("has ended"),
        },
    ]
}

#[test]
fn every_transition_behaves_as_the_table_says() {
    let policy = policy();
    for case in cases() {
        let mut promotion = promotion(case.from.clone());
        let before = promotion.clone();
        match (promotion.apply(case.event.clone(), &policy, now()), case.expect) {
            (Ok(actions), Ok((state, expected))) => {
                assert_eq!(promotion.state.to_string(), state, "{}: state", case.name);
                assert_eq!(kinds(&actions), expected, "{}: actions", case.name);
            }
            (Err(e), Err(part)) => {
                assert!(e.to_string().contains(part), "{}: error {e:?} should mention {part:?}", case.name);
                assert_eq!(promotion, before, "{}: a refused event changes nothing", case.name);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
        }
    }
}

#[test]
fn a_gate_decision_made_at_another_instant_is_refused() {
    let mut p = promotion(live("dev"));
    let err = p.apply(allowed("dev", "staging"), &policy(), now() + TimeDelta::seconds(1)).unwrap_err();
    assert!(err.reason.contains("not made at this instant"), "{err}");
}

#[test]
fn a_blocking_decision_requests_approvals_only_once_per_stage() {
    let (policy, mut p) = (policy(), promotion(live("dev")));
    assert_eq!(
        kinds(&p.apply(missing_approval("dev", "staging"), &policy, now()).unwrap()),
        ["request_approvals:staging"]
    );
    assert!(p.apply(missing_approval("dev", "staging"), &policy, now()).unwrap().is_empty());
}

#[test]
fn triggers_carry_keys_derived_from_candidate_stage_and_attempt() {
    let policy = policy();
    let mut p = promotion(failed("dev"));
    let actions = p.apply(Event::RetryRequested { stage: "dev".into(), by: "dan".into() }, &policy, now()).unwrap();
    let Some(Action::Trigger(request)) = actions.last() else { panic!("expected a trigger: {actions:?}") };
    assert_eq!(request.kind, RunKind::Deploy);
    assert_eq!(request.key.as_str(), "atlas.9fceb02.dev.deploy.2");
    assert_eq!(request.parameters.get("environment").map(String::as_str), Some("dev"));
}

#[test]
fn a_rollback_monitor_alerts_and_rolls_back() {
    let mut policy = policy();
    policy.stages[4].monitor.as_mut().unwrap().on_failure = OnFailure::Rollback;
    let mut p = promotion(live("prod"));
    let actions =
        p.apply(Event::CheckReported(check("data-quality", SHA, CheckStatus::Errored)), &policy, now()).unwrap();
    assert_eq!(kinds(&actions), ["alert:prod", "audit:monitor.alert", "rollback:prod"]);
}

#[test]
fn promotion_state_round_trips_through_json() {
    for state in [
        review(),
        merged(),
        deploying("dev", Some("r"), true),
        flushing("dev"),
        live("prod"),
        failed("dev"),
        superseded("dev"),
        rolled_back("prod"),
    ] {
        let p = promotion(state);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Promotion>(&json).unwrap(), p);
    }
}
