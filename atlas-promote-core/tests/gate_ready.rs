//! G2 ready and G4 soak of the source stage.

mod gate_support;

use atlas_promote_core::{Blocker, Candidate, CheckSpec, Deployment, Duration, Evidence, Policy, Verdict};
use gate_support::*;

#[test]
fn g2_not_deployed_short_circuits_checks_and_soak() {
    // Given staging soaks 24 h and the candidate has no deployment there
    let mut policy = Policy::atlas();
    policy.stages[3].soak = Some(Duration::hours(24));
    let mut evidence = ready_for_prod();
    evidence.deployment = None;
    evidence.checks.clear();
    // When it asks to enter prod
    let decision = policy.gate("staging", "prod").unwrap().evaluate(&evidence, at(NOW));
    // Then only "not deployed" speaks for G2–G4: no missing checks, no soak
    assert_eq!(blockers(&decision), ["not_deployed"]);
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn g2_a_required_flush_that_has_not_run_is_pending() {
    let mut evidence = ready_for_prod();
    evidence.deployment =
        Some(Deployment { deployed_at: at("2026-05-04T08:00:00Z"), flush_required: true, flushed_at: None });
    let decision = staging_to_prod(&evidence, NOW);
    assert_eq!(blockers(&decision), ["flush_pending"]);
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn g2_a_flush_before_the_deploy_leaves_the_flush_pending() {
    // Given the last flush ran before this deploy
    let mut evidence = ready_for_prod();
    evidence.deployment = Some(Deployment {
        deployed_at: at("2026-05-04T08:00:00Z"),
        flush_required: true,
        flushed_at: Some(at("2026-05-04T07:59:59Z")),
    });
    let decision = staging_to_prod(&evidence, NOW);
    assert_eq!(blockers(&decision), ["flush_pending"]);
}

#[test]
fn g2_once_flushed_the_candidate_is_ready_at_the_flush() {
    // Given the flush finished at 23:00, after last night's checks started
    let mut evidence = ready_for_prod();
    evidence.deployment = Some(Deployment {
        deployed_at: at("2026-05-04T08:00:00Z"),
        flush_required: true,
        flushed_at: Some(at("2026-05-04T23:00:00Z")),
    });
    // When it asks to enter prod
    let decision = staging_to_prod(&evidence, NOW);
    // Then the checks that started at 22:00 tested unflushed data and do not count
    assert_eq!(blockers(&decision), ["check_missing", "check_missing", "check_missing"]);
    assert_eq!(
        decision.blockers[0],
        Blocker::CheckMissing { check: "integration".into(), since: Some(at("2026-05-04T23:00:00Z")) }
    );
}

#[test]
fn g2_a_review_candidate_is_ready_when_it_entered_review() {
    // Given a pull request opened at 09:00 whose build ran at 08:00 (an earlier push)
    let mut evidence = Evidence::new(Candidate::trunk(SHA, ["alice"]));
    evidence.entered_at = Some(at("2026-05-05T09:00:00Z"));
    evidence.checks = vec![
        passed("build", "2026-05-05T08:00:00Z", "2026-05-05T08:10:00Z"),
        passed("lint", "2026-05-05T09:00:00Z", "2026-05-05T09:05:00Z"),
        passed("unit", "2026-05-05T09:01:00Z", "2026-05-05T09:20:00Z"),
    ];
    evidence.approvals = vec![record(
        "bob",
        &["developer"],
        "trunk",
        atlas_promote_core::ApprovalDecision::Approve,
        "2026-05-05T09:30:00Z",
    )];
    // When it asks to enter trunk
    let decision = Policy::atlas().gate("review", "trunk").unwrap().evaluate(&evidence, at(NOW));
    // Then the build from before it entered review does not count; lint at exactly 09:00 does
    assert_eq!(blockers(&decision), ["check_missing"]);
    assert!(matches!(&decision.blockers[0], Blocker::CheckMissing { check, .. } if check == "build"));
}

#[test]
fn g2_an_unknown_entry_time_counts_every_result_and_says_so() {
    // Given a pull request whose entry time the evidence does not give
    let mut evidence = Evidence::new(Candidate::trunk(SHA, ["alice"]));
    evidence.checks = ["build", "lint", "unit"]
        .into_iter()
        .map(|name| passed(name, "2020-01-01T00:00:00Z", "2020-01-01T00:10:00Z"))
        .collect();
    evidence.approvals = vec![record(
        "bob",
        &["developer"],
        "trunk",
        atlas_promote_core::ApprovalDecision::Approve,
        "2026-05-05T09:30:00Z",
    )];
    // When it asks to enter trunk
    let decision = Policy::atlas().gate("review", "trunk").unwrap().evaluate(&evidence, at(NOW));
    // Then every result counts, and the decision warns that the entry time is unknown
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(warnings(&decision), ["entered_at_unknown"]);
}

#[test]
fn g4_a_candidate_soaks_before_it_may_leave() {
    // Given build soaks 24 h and the candidate was deployed there at 08:00 yesterday
    let policy = two_environments(vec![], |_| {});
    let mut policy = policy;
    policy.stages[0].soak = Some(Duration::hours(24));
    let evidence = deployed_candidate("2026-05-04T10:00:00Z");
    // When it asks to move on one second before the soak ends
    let decision = build_to_live(&policy, &evidence, "2026-05-05T09:59:59Z");
    // Then it waits for the soak
    let until = at("2026-05-05T10:00:00Z");
    assert_eq!(decision.blockers, [Blocker::Soaking { stage: "build".into(), until }]);
    assert_eq!(decision.verdict, Verdict::Wait { until });
    // And at the end of the soak it may go
    assert!(build_to_live(&policy, &evidence, "2026-05-05T10:00:00Z").is_allowed());
}

#[test]
fn g4_a_soak_without_a_known_entry_time_blocks_and_says_the_entry_time_is_unknown() {
    // Given trunk soaks 1 h and the evidence does not say when the candidate was merged
    let mut policy = Policy::atlas();
    policy.stages[1].soak = Some(Duration::hours(1));
    let evidence = Evidence::new(Candidate::trunk(SHA, ["alice"]));
    let gate = policy.gate("trunk", "dev").unwrap();
    // When it asks to enter dev, now and an hour later
    for now in [NOW, "2026-05-05T11:00:00Z"] {
        let decision = gate.evaluate(&evidence, at(now));
        // Then it cannot be waited out: it blocks, saying the entry time is unknown
        assert_eq!(decision.verdict, Verdict::Block, "{decision}");
        assert_eq!(decision.blockers, [Blocker::SoakStartUnknown { stage: "trunk".into(), soak: Duration::hours(1) }]);
        assert!(decision.to_string().contains("does not say when the candidate entered trunk"), "{decision}");
    }
    // And once the entry time is known, it soaks from then
    let mut known = evidence.clone();
    known.entered_at = Some(at("2026-05-05T09:30:00Z"));
    assert_eq!(gate.evaluate(&known, at(NOW)).verdict, Verdict::Wait { until: at("2026-05-05T10:30:00Z") });
}

#[test]
fn g4_soak_and_failing_checks_block() {
    // Given a soak still running and a blocking check that failed
    let mut policy = two_environments(vec![CheckSpec::blocking("smoke")], |_| {});
    policy.stages[0].soak = Some(Duration::hours(24));
    let mut evidence = deployed_candidate("2026-05-05T08:00:00Z");
    evidence.checks = vec![failed("smoke", "2026-05-05T08:05:00Z", "2026-05-05T08:10:00Z")];
    // When it asks to move on
    let decision = build_to_live(&policy, &evidence, NOW);
    // Then time alone will not help: block, listing both
    assert_eq!(blockers(&decision), ["check_failed", "soaking"]);
    assert_eq!(decision.verdict, Verdict::Block);
}
