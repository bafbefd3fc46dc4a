//! Properties of the gate decision over generated policies and evidence.

mod gate_support;

use atlas_promote_core::{
    ApprovalDecision, ApprovalRecord, Candidate, CheckResult, CheckStatus, Deployment, Evidence, Policy, Verdict,
    Weekday,
};
use chrono::{DateTime, TimeDelta, Utc};
use gate_support::*;
use proptest::prelude::*;

const CHECKS: [&str; 4] = ["integration", "system", "data-quality", "lint"];
const PEOPLE: [&str; 6] = ["alice", "bob", "carol", "dan", "pat", "zoe"];
const ROLES: [&str; 3] = ["product-owner", "dev-team", "developer"];
const STATUSES: [CheckStatus; 5] =
    [CheckStatus::Passed, CheckStatus::Failed, CheckStatus::Cancelled, CheckStatus::Errored, CheckStatus::Running];
const DECISIONS: [ApprovalDecision; 3] =
    [ApprovalDecision::Approve, ApprovalDecision::Reject, ApprovalDecision::Withdraw];

fn minutes_from_now(minutes: i64) -> DateTime<Utc> {
    at(NOW) + TimeDelta::minutes(minutes)
}

/// Blackouts prod may have: none, Tuesday and Friday afternoons to
/// midnight, a night past midnight, or office hours (inside the window).
const BLACKOUTS: [(&[Weekday], &str, &str); 4] = [
    (&[], "00:00", "00:00"),
    (&[Weekday::Tue, Weekday::Fri], "15:00", "24:00"),
    (&[Weekday::Wed], "22:00", "04:00"),
    (&[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu], "08:00", "17:00"),
];

/// ATLAS with some of: a soak in staging, office hours, a blackout and a freeze in prod.
fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::option::of(0i64..48),
        any::<bool>(),
        0..BLACKOUTS.len(),
        prop::option::of((-3000i64..3000, prop::option::of(0i64..5000))),
    )
        .prop_map(|(soak, windows, blackout, frozen)| {
            let mut policy = Policy::atlas();
            policy.stages[3].soak = soak.map(atlas_promote_core::Duration::hours);
            if windows {
                let days = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu];
                policy.stages[4].windows = vec![berlin_window(&days, "09:00", "16:00")];
            }
            let (days, start, end) = BLACKOUTS[blackout];
            if !days.is_empty() {
                let window = berlin_window(days, start, end);
                policy.stages[4].blackouts = vec![atlas_promote_core::Blackout {
                    days: window.days,
                    start: window.start,
                    end: window.end,
                    tz: window.tz,
                    reason: None,
                }];
            }
            if let Some((from, length)) = frozen {
                policy.stages[4].freezes = vec![atlas_promote_core::Freeze {
                    from: minutes_from_now(from),
                    until: length.map(|l| minutes_from_now(from + l)),
                    reason: None,
                }];
            }
            policy
        })
}

fn check_result() -> impl Strategy<Value = CheckResult> {
    (0..CHECKS.len(), prop::bool::weighted(0.2), 0..STATUSES.len(), -2000i64..600, prop::option::of(0i64..200))
        .prop_map(|(name, other_sha, status, start, length)| {
            let status = STATUSES[status];
            CheckResult {
                name: CHECKS[name].into(),
                sha: if other_sha { "0000000".into() } else { SHA.into() },
                status,
                started_at: minutes_from_now(start),
                finished_at: if status == CheckStatus::Running {
                    None
                } else {
                    length.map(|l| minutes_from_now(start + l))
                },
            }
        })
}

fn approval_record() -> impl Strategy<Value = ApprovalRecord> {
    (0..PEOPLE.len(), 0u8..8, prop::bool::weighted(0.8), prop::bool::weighted(0.1), 0..DECISIONS.len(), -6000i64..60)
        .prop_map(|(person, roles, for_prod, other_sha, decision, when)| ApprovalRecord {
            approver: PEOPLE[person].into(),
            roles: (0..ROLES.len()).filter(|r| roles & (1 << r) != 0).map(|r| ROLES[r].to_owned()).collect(),
            stage: if for_prod { "prod".into() } else { "staging".into() },
            sha: if other_sha { "0000000".into() } else { SHA.into() },
            decision: DECISIONS[decision],
            at: minutes_from_now(when),
        })
}

/// The ready ATLAS candidate, disturbed: another origin or deployment now
/// and then, extra check results and approval records.
fn evidence() -> impl Strategy<Value = Evidence> {
    (
        prop::bool::weighted(0.1),
        0u8..6,
        prop::collection::vec(check_result(), 0..6),
        prop::collection::vec(approval_record(), 0..6),
    )
        .prop_map(|(branch, deployment, checks, approvals)| {
            let mut evidence = ready_for_prod();
            if branch {
                evidence.candidate = Candidate::branch(SHA, "feature/x", ["alice"]);
            }
            match deployment {
                0 => evidence.deployment = None,
                1 => {
                    evidence.deployment = Some(Deployment {
                        deployed_at: at("2026-05-04T08:00:00Z"),
                        flush_required: true,
                        flushed_at: None,
                    })
                }
                _ => {}
            }
            evidence.checks.extend(checks);
            evidence.approvals.extend(approvals);
            evidence
        })
}

/// The roles each of [`PEOPLE`] holds: a record carries the roles its
/// approver holds now, the same in every record of one evidence.
fn roles_of(person: usize) -> Vec<String> {
    let roles: &[&str] = match PEOPLE[person] {
        "alice" => &["product-owner", "dev-team"],
        "bob" | "pat" => &["product-owner"],
        "carol" => &["dev-team"],
        "dan" => &["developer", "dev-team"],
        _ => &[],
    };
    roles.iter().map(|r| (*r).to_owned()).collect()
}

/// A record whose approver holds the roles [`roles_of`] gives.
fn directory_record() -> impl Strategy<Value = ApprovalRecord> {
    approval_record().prop_map(|mut record| {
        let person = PEOPLE.iter().position(|p| *p == record.approver).unwrap_or(0);
        record.roles = roles_of(person);
        record
    })
}

/// The ready ATLAS candidate with a little noise that mostly leaves it allowed.
fn calm_evidence() -> impl Strategy<Value = Evidence> {
    (prop::collection::vec(check_result(), 0..3), prop::collection::vec(directory_record(), 0..4)).prop_map(
        |(checks, approvals)| {
            let mut evidence = ready_for_prod();
            evidence.checks.extend(checks);
            evidence.approvals.extend(approvals);
            evidence
        },
    )
}

fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..3000).prop_map(minutes_from_now)
}

fn decide(policy: &Policy, evidence: &Evidence, now: DateTime<Utc>) -> atlas_promote_core::Decision {
    policy.gate("staging", "prod").expect("ATLAS has staging → prod").evaluate(evidence, now)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_decision_is_deterministic(policy in policy(), evidence in evidence(), now in now()) {
        let first = decide(&policy, &evidence, now);
        let second = decide(&policy, &evidence.clone(), now);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(first.to_string(), second.to_string());
    }

    #[test]
    fn the_verdict_follows_the_blockers(policy in policy(), evidence in evidence(), now in now()) {
        let decision = decide(&policy, &evidence, now);
        match decision.verdict {
            Verdict::Allow => prop_assert!(decision.blockers.is_empty()),
            Verdict::Wait { until } => {
                prop_assert!(until >= now);
                prop_assert!(decision.blockers.iter().all(|b| b.is_time_based()));
                // At `until` no time-based blocker holds. (Other rules may fail
                // by then: a check can go stale or an approval expire.)
                let later = decide(&policy, &evidence, until);
                prop_assert!(!later.blockers.iter().any(|b| b.is_time_based()), "{} then {}", decision, later);
            }
            Verdict::Block => prop_assert!(!decision.blockers.is_empty()),
        }
    }

    #[test]
    fn adding_an_eligible_approval_never_turns_allow_into_anything_else(
        evidence in calm_evidence(),
        now in (0i64..600).prop_map(minutes_from_now),
        person in 1usize..5,
        age in 0i64..(72 * 60),
    ) {
        let policy = Policy::atlas();
        let before = decide(&policy, &evidence, now);
        prop_assume!(before.is_allowed());
        let mut more = evidence.clone();
        more.approvals.push(ApprovalRecord {
            // Not alice, the author, nor zoe, who holds no role; within the ttl
            approver: PEOPLE[person].into(),
            roles: roles_of(person),
            stage: "prod".into(),
            sha: SHA.into(),
            decision: ApprovalDecision::Approve,
            at: now - TimeDelta::minutes(age),
        });
        let after = decide(&policy, &more, now);
        prop_assert!(after.is_allowed(), "{}", after);
    }

    #[test]
    fn adding_a_newer_failing_result_never_turns_block_into_allow(
        policy in policy(),
        evidence in evidence(),
        now in now(),
        check in 0usize..3,
        status in 1usize..4,
    ) {
        let before = decide(&policy, &evidence, now);
        // A finished result without a finish time is dated at its start (see gate/checks.rs).
        let newest = evidence.checks.iter().map(|c| c.finished_at.unwrap_or(c.started_at)).max().unwrap_or(now).max(now);
        let mut more = evidence.clone();
        more.checks.push(CheckResult {
            name: CHECKS[check].into(),
            sha: SHA.into(),
            status: STATUSES[status],
            started_at: newest,
            finished_at: Some(newest + TimeDelta::minutes(1)),
        });
        let after = decide(&policy, &more, now);
        if before.verdict == Verdict::Block {
            prop_assert_eq!(after.verdict, Verdict::Block, "{}", after);
        }
        // Whenever G2 holds, a newer failure of a blocking check blocks
        prop_assert!(!after.is_allowed(), "{}", after);
    }
}
