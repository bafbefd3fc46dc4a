//! G3 checks: the deciding result of each check of the source stage.

mod gate_support;

use atlas_promote_core::{Blocker, CheckResult, CheckSpec, CheckStatus, Duration, Policy, Verdict, Warning};
use gate_support::*;

const DEPLOYED: &str = "2026-05-05T08:00:00Z";

/// `build → live` where build has one blocking check `smoke`.
fn smoke_blocks() -> Policy {
    two_environments(vec![CheckSpec::blocking("smoke")], |_| {})
}

fn decide(policy: &Policy, checks: Vec<CheckResult>) -> atlas_promote_core::Decision {
    let mut evidence = deployed_candidate(DEPLOYED);
    evidence.checks = checks;
    build_to_live(policy, &evidence, NOW)
}

#[test]
fn g3_a_blocking_check_without_results_is_missing() {
    let decision = decide(&smoke_blocks(), vec![]);
    assert_eq!(decision.blockers, [Blocker::CheckMissing { check: "smoke".into(), since: Some(at(DEPLOYED)) }]);
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn g3_a_blocking_check_with_only_running_results_is_running() {
    let decision = decide(
        &smoke_blocks(),
        vec![running("smoke", "2026-05-05T08:10:00Z"), running("smoke", "2026-05-05T08:30:00Z")],
    );
    assert_eq!(
        decision.blockers,
        [Blocker::CheckRunning { check: "smoke".into(), started_at: at("2026-05-05T08:30:00Z") }]
    );
}

#[test]
fn g3_at_equal_finish_times_a_non_pass_wins() {
    // Given two runs finishing in the same second, one passed, one errored (in either order)
    for results in [
        vec![
            passed("smoke", "2026-05-05T08:10:00Z", "2026-05-05T09:00:00Z"),
            run("smoke", CheckStatus::Errored, "2026-05-05T08:20:00Z", "2026-05-05T09:00:00Z"),
        ],
        vec![
            run("smoke", CheckStatus::Errored, "2026-05-05T08:20:00Z", "2026-05-05T09:00:00Z"),
            passed("smoke", "2026-05-05T08:10:00Z", "2026-05-05T09:00:00Z"),
        ],
    ] {
        // When the gate decides
        let decision = decide(&smoke_blocks(), results);
        // Then the errored run is the deciding one
        assert_eq!(
            decision.blockers,
            [Blocker::CheckFailed {
                check: "smoke".into(),
                status: CheckStatus::Errored,
                finished_at: at("2026-05-05T09:00:00Z"),
            }]
        );
    }
}

#[test]
fn g3_a_pass_after_a_failure_holds() {
    let decision = decide(
        &smoke_blocks(),
        vec![
            failed("smoke", "2026-05-05T08:10:00Z", "2026-05-05T08:20:00Z"),
            passed("smoke", "2026-05-05T08:30:00Z", "2026-05-05T08:40:00Z"),
        ],
    );
    assert_eq!(decision.verdict, Verdict::Allow);
}

#[test]
fn g3_a_failure_after_a_pass_blocks() {
    let decision = decide(
        &smoke_blocks(),
        vec![
            passed("smoke", "2026-05-05T08:10:00Z", "2026-05-05T08:20:00Z"),
            run("smoke", CheckStatus::Cancelled, "2026-05-05T08:30:00Z", "2026-05-05T08:40:00Z"),
        ],
    );
    assert_eq!(blockers(&decision), ["check_failed"]);
    assert!(decision.blockers[0].to_string().contains("check smoke cancelled"));
}

#[test]
fn g3_the_latest_finish_decides_not_the_latest_start() {
    // Given a long run that started first and failed last
    let decision = decide(
        &smoke_blocks(),
        vec![
            failed("smoke", "2026-05-05T08:05:00Z", "2026-05-05T09:30:00Z"),
            passed("smoke", "2026-05-05T08:30:00Z", "2026-05-05T08:40:00Z"),
        ],
    );
    assert_eq!(blockers(&decision), ["check_failed"]);
}

#[test]
fn g3_a_result_that_started_before_ready_at_does_not_count() {
    // Given a pass that started one second before the deploy succeeded
    let decision = decide(&smoke_blocks(), vec![passed("smoke", "2026-05-05T07:59:59Z", "2026-05-05T08:30:00Z")]);
    assert_eq!(blockers(&decision), ["check_missing"]);
    // And one that started at the deploy counts
    let decision = decide(&smoke_blocks(), vec![passed("smoke", DEPLOYED, "2026-05-05T08:30:00Z")]);
    assert!(decision.is_allowed());
}

#[test]
fn g3_results_for_another_commit_or_check_do_not_count() {
    let mut other_sha = passed("smoke", "2026-05-05T08:10:00Z", "2026-05-05T08:20:00Z");
    other_sha.sha = "0000000".into();
    let other_check = passed("smoky", "2026-05-05T08:10:00Z", "2026-05-05T08:20:00Z");
    let decision = decide(&smoke_blocks(), vec![other_sha, other_check]);
    assert_eq!(blockers(&decision), ["check_missing"]);
}

#[test]
fn g3_a_pass_older_than_max_age_is_stale() {
    // Given smoke must be fresh within 90 minutes, and it passed at 08:30
    let policy = two_environments(vec![CheckSpec::blocking("smoke").with_max_age(Duration::minutes(90))], |_| {});
    let mut evidence = deployed_candidate(DEPLOYED);
    evidence.checks = vec![passed("smoke", "2026-05-05T08:10:00Z", "2026-05-05T08:30:00Z")];
    // When decided exactly 90 minutes later, it is still fresh
    assert!(build_to_live(&policy, &evidence, "2026-05-05T10:00:00Z").is_allowed());
    // Then one second later it is stale
    let decision = build_to_live(&policy, &evidence, "2026-05-05T10:00:01Z");
    assert_eq!(
        decision.blockers,
        [Blocker::CheckStale {
            check: "smoke".into(),
            finished_at: at("2026-05-05T08:30:00Z"),
            max_age: Duration::minutes(90),
        }]
    );
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn g3_an_advisory_check_failing_is_only_a_warning() {
    // Given dev's nightly checks are advisory and integration failed on dev
    let mut evidence = deployed_candidate(DEPLOYED);
    evidence.checks = vec![
        failed("integration", "2026-05-05T08:10:00Z", "2026-05-05T08:20:00Z"),
        passed("system", "2026-05-05T08:10:00Z", "2026-05-05T08:20:00Z"),
        running("data-quality", "2026-05-05T08:10:00Z"),
    ];
    evidence.approvals =
        vec![record("bob", &["developer"], "staging", atlas_promote_core::ApprovalDecision::Approve, NOW)];
    // When it asks to enter staging
    let decision = Policy::atlas().gate("dev", "staging").unwrap().evaluate(&evidence, at(NOW));
    // Then it may go, with a warning for each check that did not pass
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(warnings(&decision), ["advisory_check_failed", "advisory_check_running"]);
    assert!(decision.warnings[0].to_string().contains("(not blocking)"));
}

#[test]
fn g3_a_rerun_after_the_deciding_result_is_a_warning() {
    // Given smoke passed at 08:40 and a new run started at 09:00 is still going
    let decision = decide(
        &smoke_blocks(),
        vec![passed("smoke", "2026-05-05T08:30:00Z", "2026-05-05T08:40:00Z"), running("smoke", "2026-05-05T09:00:00Z")],
    );
    // Then the pass decides, and the rerun is only worth knowing about
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(
        decision.warnings,
        [Warning::CheckRerunning { check: "smoke".into(), started_at: at("2026-05-05T09:00:00Z") }]
    );
}

#[test]
fn g3_a_run_that_started_before_the_deciding_result_finished_is_not_a_rerun() {
    let decision = decide(
        &smoke_blocks(),
        vec![running("smoke", "2026-05-05T08:35:00Z"), passed("smoke", "2026-05-05T08:30:00Z", "2026-05-05T08:40:00Z")],
    );
    assert_eq!(decision.verdict, Verdict::Allow);
    assert!(decision.warnings.is_empty());
}

#[test]
fn g3_one_blocker_per_failing_blocking_check() {
    // Given staging's three nightly checks: one failed, one stale, one missing
    let mut evidence = ready_for_prod();
    evidence.checks = vec![
        failed("integration", "2026-05-04T22:00:00Z", "2026-05-04T22:40:00Z"),
        failed("integration", "2026-05-04T22:00:00Z", "2026-05-04T22:41:00Z"),
        passed("system", "2026-05-04T08:30:00Z", "2026-05-04T08:40:00Z"),
    ];
    // When it asks to enter prod two hours later than usual
    let decision = staging_to_prod(&evidence, "2026-05-05T12:00:00Z");
    // Then each check that fails G3 blocks once, in the order the stage lists them
    assert_eq!(blockers(&decision), ["check_failed", "check_stale", "check_missing"]);
}
