//! Security of the core (issue 6, item 5): approvals that must never count,
//! and overrides by someone without a permitted role.
//!
//! The gate takes each approver's roles as the evidence gives them ("the
//! roles they hold now"); refreshing them from the `Directory` before a
//! decision is the engine's part. Here: given those roles, nothing that must
//! not count ever does. The backends' secrets and webhook signatures are
//! tested in each backend's `tests/security.rs`.

mod gate_support;

use atlas_promote_core::ApprovalDecision::{self, Approve, Reject, Withdraw};
use atlas_promote_core::machine::{Event, Promotion, State};
use atlas_promote_core::{
    ApprovalRecord, Blocker, Candidate, Decision, OverrideRule, Policy, Shortfall, Verdict, Warning,
};
use gate_support::*;
use proptest::prelude::*;

fn short(role: &str, need: u32, have: u32) -> Shortfall {
    Shortfall { role: role.into(), need, have }
}

#[test]
fn an_author_approving_their_own_candidate_never_counts() {
    // Given alice's candidate, approved by pat (product-owner) and by alice herself, holding dev-team
    let mut evidence = ready_for_prod();
    evidence.approvals = vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("alice", &["developer", "dev-team"], "2026-05-05T09:30:00Z"),
    ];
    // When prod's gate decides
    let decision = staging_to_prod(&evidence, NOW);
    // Then the dev-team slot is empty, and the self-approval is reported
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("dev-team", 1, 0)] }]
    );
    assert!(decision.warnings.contains(&Warning::SelfApprovalIgnored { approver: "alice".into() }), "{decision}");
}

#[test]
fn a_co_author_approving_never_counts_either() {
    // Given a candidate of two commits, by alice and by dan
    let mut evidence = ready_for_prod();
    evidence.candidate.authors = vec!["alice".into(), "dan".into()];
    // When dan (dev-team) approves it
    let decision = staging_to_prod(&evidence, NOW);
    // Then his approval does not count
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("dev-team", 1, 0)] }]
    );
}

#[test]
fn approvals_of_another_commit_or_stage_never_count() {
    // Given approvals that look close to the real ones: the full SHA of
    // which the candidate's is a prefix, a longer or shorter SHA, another
    // case or spacing of the stage, the stage before
    let mut evidence = ready_for_prod();
    let dan = approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z");
    let lookalike = |sha: &str, stage: &str| ApprovalRecord {
        approver: "pat".into(),
        roles: vec!["product-owner".into()],
        stage: stage.into(),
        sha: sha.into(),
        decision: Approve,
        at: at("2026-05-05T09:12:00Z"),
    };
    evidence.approvals = vec![
        dan,
        lookalike("9fceb02d0ae598e95dc970b74767f19372d61af8", "prod"),
        lookalike("9fceb0", "prod"),
        lookalike("9FCEB02", "prod"),
        lookalike("9fceb02 ", "prod"),
        lookalike(SHA, "Prod"),
        lookalike(SHA, " prod"),
        lookalike(SHA, "staging"),
        lookalike(SHA, ""),
    ];
    // When prod's gate decides
    let decision = staging_to_prod(&evidence, NOW);
    // Then pat's product-owner slot is empty
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("product-owner", 1, 0)] }]
    );
}

#[test]
fn an_approver_who_lost_the_role_before_the_decision_does_not_count() {
    // Given dan approved while in dev-team, and left the team before the
    // decision: the engine gives the gate his roles as they are now
    let mut evidence = ready_for_prod();
    evidence.approvals[1].roles = vec!["developer".into()];
    // When prod's gate decides
    let decision = staging_to_prod(&evidence, NOW);
    // Then his approval fills no slot, and the gate says why
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("dev-team", 1, 0)] }]
    );
    assert!(
        decision.warnings.contains(&Warning::ApproverWithoutRole { approver: "dan".into(), decision: Approve }),
        "{decision}"
    );
    // And with no role at all left, the same
    evidence.approvals[1].roles.clear();
    assert_eq!(blockers(&staging_to_prod(&evidence, NOW)), ["approvals_missing"]);
}

/// Records that must never count, by people who are not among the base
/// evidence's approvers (so they cannot stand for one of them).
fn never_counting() -> impl Strategy<Value = ApprovalRecord> {
    let decision = prop_oneof![Just(Approve), Just(Reject), Just(Withdraw)];
    let roles = proptest::sample::subsequence(vec!["product-owner", "dev-team", "developer"], 0..=3);
    let minute = 0u32..(24 * 60);
    let kind = 0u8..5;
    (kind, decision, roles, minute, 0u8..4).prop_map(|(kind, decision, roles, minute, who)| {
        let roles: Vec<String> = roles.into_iter().map(str::to_owned).collect();
        let at = at("2026-05-04T10:00:00Z") + chrono::TimeDelta::minutes(i64::from(minute));
        let mallory = format!("mallory-{who}");
        let (approver, roles, stage, sha) = match kind {
            // The author, holding any roles.
            0 => ("alice".to_owned(), roles, "prod".to_owned(), SHA.to_owned()),
            // Another commit.
            1 => (mallory, roles, "prod".to_owned(), format!("{SHA}{who}")),
            // Another stage.
            2 => (mallory, roles, ["staging", "Prod", "prod ", "dev"][usize::from(who)].to_owned(), SHA.to_owned()),
            // No role the rule names (lost, or never held).
            3 => (mallory, vec!["developer".to_owned()], "prod".to_owned(), SHA.to_owned()),
            _ => (mallory, Vec::new(), "prod".to_owned(), SHA.to_owned()),
        };
        ApprovalRecord { approver, roles, stage, sha, decision, at }
    })
}

/// The ATLAS prod candidate with each of pat's and dan's records kept or not.
fn base_evidence() -> impl Strategy<Value = atlas_promote_core::Evidence> {
    (any::<bool>(), any::<bool>()).prop_map(|(pat, dan)| {
        let mut evidence = ready_for_prod();
        let keep = [pat, dan];
        evidence.approvals = evidence.approvals.into_iter().zip(keep).filter(|(_, k)| *k).map(|(r, _)| r).collect();
        evidence
    })
}

fn blockers_of(decision: &Decision) -> &[Blocker] {
    &decision.blockers
}

proptest! {
    #[test]
    fn records_that_must_not_count_never_change_what_blocks(
        evidence in base_evidence(),
        hostile in proptest::collection::vec(never_counting(), 0..12),
        insert_at in any::<proptest::sample::Index>(),
    ) {
        let honest = staging_to_prod(&evidence, NOW);
        let mut attacked = evidence.clone();
        let at = insert_at.index(attacked.approvals.len() + 1);
        attacked.approvals.splice(at..at, hostile);
        let decision = staging_to_prod(&attacked, NOW);
        prop_assert_eq!(blockers_of(&decision), blockers_of(&honest));
        prop_assert_eq!(decision.verdict, honest.verdict);
    }
}

fn override_policy() -> Policy {
    let mut policy = Policy::atlas();
    policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    policy
}

fn blocked_promotion(policy: &Policy) -> (Promotion, Decision) {
    let now = at(NOW);
    let mut promotion = Promotion::merged(policy, Candidate::trunk(SHA, ["alice"]), 1, at("2026-05-04T07:00:00Z"));
    promotion.state = State::Live {
        stage: "staging".into(),
        deployed_at: at("2026-05-04T08:00:00Z"),
        flush_required: false,
        flushed_at: None,
    };
    let decision = Decision {
        from: "staging".into(),
        to: "prod".into(),
        sha: SHA.into(),
        at: now,
        verdict: Verdict::Block,
        blockers: vec![Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("dev-team", 1, 0)] }],
        warnings: vec![],
    };
    (promotion, decision)
}

fn override_by(decision: &Decision, by: &str, roles: &[&str]) -> Event {
    Event::OverrideGranted {
        decision: decision.clone(),
        by: by.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        bypass: vec!["approvals_missing".into()],
        reason: "incident 42: the fix must ship".into(),
        flush_required: false,
    }
}

#[test]
fn an_override_by_someone_without_a_permitted_role_is_refused_and_changes_nothing() {
    let policy = override_policy();
    let (promotion, decision) = blocked_promotion(&policy);
    let lookalikes: [&[&str]; 5] =
        [&[], &["developer", "dev-team", "product-owner"], &["Release-Manager"], &["release-manager "], &["release"]];
    for roles in lookalikes {
        // Given a blocked promotion, when someone holding `roles` overrides the gate
        let mut attempted = promotion.clone();
        let result = attempted.apply(override_by(&decision, "mallory", roles), &policy, at(NOW));
        // Then it is refused, saying why, and the promotion is as it was: no deploy, no audit entry of a grant
        let err = result.expect_err("an override without a permitted role");
        assert!(err.reason.contains("no role the policy permits to override"), "{err}");
        assert_eq!(attempted, promotion, "roles {roles:?}");
    }
    // And the same override by a release manager goes through
    let mut granted = promotion.clone();
    granted.apply(override_by(&decision, "olga", &["release-manager"]), &policy, at(NOW)).unwrap();
    assert!(matches!(granted.state, State::Deploying { ref stage, .. } if stage == "prod"), "{:?}", granted.state);
}

#[test]
fn no_one_may_override_when_the_policy_permits_no_override() {
    let policy = Policy::atlas();
    assert!(policy.overrides.is_none(), "the ATLAS preset permits no override");
    let (promotion, decision) = blocked_promotion(&policy);
    let mut attempted = promotion.clone();
    let result = attempted.apply(override_by(&decision, "olga", &["release-manager"]), &policy, at(NOW));
    assert!(result.is_err(), "{:?}", attempted.state);
    assert_eq!(attempted, promotion);
}

#[test]
fn a_self_approval_warning_names_only_approvals() {
    // A reject or withdrawal by the author is not reported as a self-approval.
    let mut evidence = ready_for_prod();
    evidence.approvals.push(record("alice", &["dev-team"], "prod", ApprovalDecision::Reject, "2026-05-05T09:40:00Z"));
    let decision = staging_to_prod(&evidence, NOW);
    assert!(decision.is_allowed(), "an author's reject does not veto when self-approval is forbidden: {decision}");
    assert!(!decision.warnings.iter().any(|w| matches!(w, Warning::SelfApprovalIgnored { .. })), "{decision}");
}
