//! G5 approvals: the target stage's rule, filled by distinct people.

mod gate_support;

use atlas_promote_core::ApprovalDecision::{Approve, Reject, Withdraw};
use atlas_promote_core::{ApprovalRecord, Blocker, Decision, Duration, Policy, Shortfall, Verdict, Warning};
use gate_support::*;

/// Decide staging → prod for the otherwise ready candidate with these records.
fn with_records(records: Vec<ApprovalRecord>) -> Decision {
    let mut evidence = ready_for_prod();
    evidence.approvals = records;
    staging_to_prod(&evidence, NOW)
}

fn short(role: &str, need: u32, have: u32) -> Shortfall {
    Shortfall { role: role.into(), need, have }
}

#[test]
fn g5_both_roles_by_two_people_allow() {
    assert!(staging_to_prod(&ready_for_prod(), NOW).is_allowed());
}

#[test]
fn g5_no_approvals_names_every_short_role() {
    let decision = with_records(vec![]);
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing {
            stage: "prod".into(),
            short: vec![short("dev-team", 1, 0), short("product-owner", 1, 0)]
        }]
    );
    assert_eq!(
        decision.blockers[0].to_string(),
        "needs 1 more approval from dev-team (have 0 of 1) and 1 more approval from product-owner (have 0 of 1) to enter prod"
    );
}

#[test]
fn g5_two_people_with_overlapping_roles_fill_both_slots() {
    // Given a candidate by zoe; alice holds product-owner and dev-team, bob one of them
    for bobs_role in ["product-owner", "dev-team"] {
        let mut evidence = ready_for_prod();
        evidence.candidate.authors = vec!["zoe".into()];
        // When alice approves first, then bob
        evidence.approvals = vec![
            approves_prod("alice", &["product-owner", "dev-team"], "2026-05-05T09:00:00Z"),
            approves_prod("bob", &[bobs_role], "2026-05-05T09:10:00Z"),
        ];
        let decision = staging_to_prod(&evidence, NOW);
        // Then alice fills the role bob does not hold: a greedy pass that gave
        // alice bob's role would leave the other slot empty
        assert_eq!(decision.verdict, Verdict::Allow, "bob holds {bobs_role}: {decision}");
    }
}

#[test]
fn g5_a_crowd_of_one_role_leaves_the_other_short_and_the_one_who_fills_it_is_found() {
    // Given a candidate by zoe, 5,000 product owners approving, and alice
    // (product-owner and dev-team) approving first
    let mut evidence = ready_for_prod();
    evidence.candidate.authors = vec!["zoe".into()];
    evidence.approvals = vec![approves_prod("alice", &["product-owner", "dev-team"], "2026-05-05T09:00:00Z")];
    let crowd = (0..5_000).map(|i| approves_prod(&format!("po-{i:04}"), &["product-owner"], "2026-05-05T09:10:00Z"));
    evidence.approvals.extend(crowd);
    // Then alice moves to dev-team and one of the crowd fills product-owner
    assert_eq!(staging_to_prod(&evidence, NOW).verdict, Verdict::Allow);
    // And without alice the dev-team slot stays empty, whatever the crowd's size
    evidence.approvals.remove(0);
    assert_eq!(
        with_records(evidence.approvals).blockers,
        [Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("dev-team", 1, 0)] }]
    );
}

#[test]
fn g5_one_person_never_fills_two_slots() {
    // Given a candidate by zoe, and only alice, holding both roles, approved
    let mut evidence = ready_for_prod();
    evidence.candidate.authors = vec!["zoe".into()];
    evidence.approvals = vec![approves_prod("alice", &["product-owner", "dev-team"], "2026-05-05T09:00:00Z")];
    let decision = staging_to_prod(&evidence, NOW);
    // Then one of the two slots stays empty
    let Blocker::ApprovalsMissing { short, .. } = &decision.blockers[0] else {
        panic!("expected approvals_missing, got {decision}");
    };
    assert_eq!(short.len(), 1);
    assert_eq!((short[0].need, short[0].have), (1, 0));
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn g5_approvals_for_another_commit_or_stage_do_not_count() {
    let mut other_sha = approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z");
    other_sha.sha = "0000000".into();
    let other_stage = record("pat", &["product-owner"], "staging", Approve, "2026-05-05T09:12:00Z");
    let decision =
        with_records(vec![other_sha, other_stage, approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z")]);
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "prod".into(), short: vec![short("product-owner", 1, 0)] }]
    );
}

#[test]
fn g5_a_withdrawn_approval_does_not_count() {
    let decision = with_records(vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z"),
        record("pat", &["product-owner"], "prod", Withdraw, "2026-05-05T09:40:00Z"),
    ]);
    assert_eq!(blockers(&decision), ["approvals_missing"]);
}

#[test]
fn g5_an_approval_after_a_withdrawal_counts() {
    let decision = with_records(vec![
        record("pat", &["product-owner"], "prod", Withdraw, "2026-05-05T09:00:00Z"),
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z"),
    ]);
    assert!(decision.is_allowed());
}

#[test]
fn g5_a_reject_from_a_role_holder_blocks() {
    // Given both roles approved, and eve (product-owner) rejects
    let mut records = ready_for_prod().approvals;
    records.push(record("eve", &["product-owner", "finance"], "prod", Reject, "2026-05-05T09:50:00Z"));
    let decision = with_records(records);
    // Then eve's reject blocks on its own, naming her role in the rule
    assert_eq!(
        decision.blockers,
        [Blocker::Rejected {
            approver: "eve".into(),
            roles: vec!["product-owner".into()],
            at: at("2026-05-05T09:50:00Z"),
        }]
    );
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn g5_each_rejecting_person_blocks_once() {
    let decision = with_records(vec![
        record("eve", &["product-owner"], "prod", Reject, "2026-05-05T09:00:00Z"),
        record("eve", &["product-owner"], "prod", Reject, "2026-05-05T09:01:00Z"),
        record("dan", &["dev-team"], "prod", Reject, "2026-05-05T09:02:00Z"),
    ]);
    assert_eq!(blockers(&decision), ["rejected", "rejected", "approvals_missing"]);
}

#[test]
fn g5_at_equal_times_a_reject_wins() {
    let decision = with_records(vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        record("pat", &["product-owner"], "prod", Reject, "2026-05-05T09:12:00Z"),
        approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z"),
    ]);
    assert_eq!(blockers(&decision), ["rejected", "approvals_missing"]);
}

#[test]
fn g5_an_approval_after_a_reject_lifts_it() {
    let decision = with_records(vec![
        record("pat", &["product-owner"], "prod", Reject, "2026-05-05T09:00:00Z"),
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z"),
    ]);
    assert!(decision.is_allowed());
}

#[test]
fn g5_a_reject_from_someone_without_a_role_is_ignored_and_reported() {
    let mut records = ready_for_prod().approvals;
    records.push(record("mallory", &["intern"], "prod", Reject, "2026-05-05T09:50:00Z"));
    let decision = with_records(records);
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(decision.warnings, [Warning::ApproverWithoutRole { approver: "mallory".into(), decision: Reject }]);
}

#[test]
fn g5_an_approver_without_a_role_does_not_count_and_is_reported() {
    let decision = with_records(vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("ivan", &["developer"], "2026-05-05T09:30:00Z"),
    ]);
    assert_eq!(blockers(&decision), ["approvals_missing"]);
    assert_eq!(decision.warnings, [Warning::ApproverWithoutRole { approver: "ivan".into(), decision: Approve }]);
}

#[test]
fn g5_a_self_approval_is_ignored_and_reported() {
    // Given alice authored the candidate and holds dev-team
    let decision = with_records(vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("alice", &["dev-team"], "2026-05-05T09:30:00Z"),
    ]);
    assert_eq!(blockers(&decision), ["approvals_missing"]);
    assert_eq!(decision.warnings, [Warning::SelfApprovalIgnored { approver: "alice".into() }]);
}

#[test]
fn g5_a_self_approval_counts_when_the_rule_allows_it() {
    let mut policy = Policy::atlas();
    if let Some(rule) = policy.stages[4].approvals.as_mut() {
        rule.forbid_self_approval = false;
    }
    let mut evidence = ready_for_prod();
    evidence.approvals = vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("alice", &["dev-team"], "2026-05-05T09:30:00Z"),
    ];
    assert!(policy.gate("staging", "prod").unwrap().evaluate(&evidence, at(NOW)).is_allowed());
}

#[test]
fn g5_an_approval_exactly_ttl_old_counts_and_one_second_older_expires() {
    // Given prod's approvals are valid 72 h and pat approved at 10:00 three days ago
    let records = vec![
        approves_prod("pat", &["product-owner"], "2026-05-02T10:00:00Z"),
        approves_prod("dan", &["dev-team"], "2026-05-05T09:30:00Z"),
    ];
    let mut evidence = ready_for_prod();
    evidence.approvals = records;
    // When decided exactly 72 h later, the approval counts
    assert!(staging_to_prod(&evidence, "2026-05-05T10:00:00Z").is_allowed());
    // Then one second later it has expired
    let decision = staging_to_prod(&evidence, "2026-05-05T10:00:01Z");
    assert_eq!(blockers(&decision), ["approvals_missing"]);
    assert_eq!(
        decision.warnings,
        [Warning::ApprovalExpired { approver: "pat".into(), at: at("2026-05-02T10:00:00Z"), ttl: Duration::hours(72) }]
    );
}

#[test]
fn g5_an_expired_reject_no_longer_blocks() {
    let mut records = ready_for_prod().approvals;
    records.push(record("eve", &["product-owner"], "prod", Reject, "2026-05-01T09:00:00Z"));
    let decision = with_records(records);
    assert!(decision.is_allowed());
    assert_eq!(warnings(&decision), ["rejection_expired"]);
}

#[test]
fn g5_only_the_rule_of_the_target_stage_applies() {
    // Given dev → staging, which needs one developer: dan's prod approval does not count
    let mut evidence = deployed_candidate("2026-05-05T08:00:00Z");
    evidence.approvals = vec![approves_prod("dan", &["developer"], "2026-05-05T09:30:00Z")];
    let decision = Policy::atlas().gate("dev", "staging").unwrap().evaluate(&evidence, at(NOW));
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "staging".into(), short: vec![short("developer", 1, 0)] }]
    );
}

#[test]
fn g5_counts_above_one_need_that_many_people() {
    // Given staging needs two developers here, and three records by two people (one of them the author)
    let mut policy = Policy::atlas();
    policy.stages[3].approvals = Some(require(&[("developer", 2)]));
    let mut evidence = deployed_candidate("2026-05-05T08:00:00Z");
    evidence.approvals = vec![
        record("bob", &["developer"], "staging", Approve, "2026-05-05T09:00:00Z"),
        record("bob", &["developer"], "staging", Approve, "2026-05-05T09:05:00Z"),
        record("alice", &["developer"], "staging", Approve, "2026-05-05T09:10:00Z"),
    ];
    let decision = policy.gate("dev", "staging").unwrap().evaluate(&evidence, at(NOW));
    assert_eq!(
        decision.blockers,
        [Blocker::ApprovalsMissing { stage: "staging".into(), short: vec![short("developer", 2, 1)] }]
    );
    assert!(decision.to_string().contains("needs 1 more approval from developer (have 1 of 2)"));
}
