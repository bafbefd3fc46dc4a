//! The gate decision's cost: one ATLAS `staging → prod` decision with a
//! realistic amount of evidence, and a batch of 10,000 candidates.
//!
//! The evidence: staging's three blocking nightly checks with 30 results
//! each (a month of nights, a few failures, the newest passing), and 10
//! approval records (for prod and for staging, for this commit and an older
//! one, with a withdrawal). The decision allows, so no text is rendered.

use std::hint::black_box;

use atlas_promote::chrono::{DateTime, TimeDelta, Utc};
use atlas_promote::{
    ApprovalDecision, ApprovalRecord, Candidate, CheckResult, CheckStatus, Deployment, Evidence, Policy, Verdict,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const NIGHTS: i64 = 30;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid instant")
}

fn record(
    approver: &str,
    roles: &[&str],
    stage: &str,
    sha: &str,
    decision: ApprovalDecision,
    when: &str,
) -> ApprovalRecord {
    ApprovalRecord {
        approver: approver.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        stage: stage.into(),
        sha: sha.into(),
        decision,
        at: at(when),
    }
}

/// Candidate `sha`, deployed to staging a month ago, checked every night since.
fn evidence(sha: &str) -> Evidence {
    let deployed_at = at("2026-04-04T08:00:00Z");
    let mut evidence = Evidence::new(Candidate::trunk(sha, ["alice", "bob"]));
    evidence.deployment =
        Some(Deployment { deployed_at, flush_required: true, flushed_at: Some(at("2026-04-04T08:20:00Z")) });
    for night in 0..NIGHTS {
        let started_at = at("2026-04-05T22:00:00Z") + TimeDelta::days(night);
        for (n, name) in ["integration", "system", "data-quality"].into_iter().enumerate() {
            // Now and then a night fails; the last night passes.
            let failed = night < NIGHTS - 1 && (night + n as i64) % 7 == 3;
            evidence.checks.push(CheckResult {
                name: name.into(),
                sha: sha.into(),
                status: if failed { CheckStatus::Failed } else { CheckStatus::Passed },
                started_at,
                finished_at: Some(started_at + TimeDelta::minutes(40 + n as i64)),
            });
        }
    }
    use ApprovalDecision::{Approve, Withdraw};
    evidence.approvals = vec![
        record("dan", &["developer"], "staging", sha, Approve, "2026-04-04T07:00:00Z"),
        record("erin", &["developer", "dev-team"], "staging", sha, Approve, "2026-04-04T07:10:00Z"),
        record("pat", &["product-owner"], "prod", "0ld5ha1", Approve, "2026-04-20T09:00:00Z"),
        record("dan", &["developer", "dev-team"], "prod", "0ld5ha1", Approve, "2026-04-20T09:05:00Z"),
        record("pat", &["product-owner"], "prod", sha, Approve, "2026-05-03T09:00:00Z"),
        record("pat", &["product-owner"], "prod", sha, Withdraw, "2026-05-03T09:30:00Z"),
        record("quinn", &["product-owner"], "prod", sha, Approve, "2026-05-04T11:00:00Z"),
        record("erin", &["developer", "dev-team"], "prod", sha, Approve, "2026-05-04T12:00:00Z"),
        record("pat", &["product-owner"], "prod", sha, Approve, "2026-05-05T09:12:00Z"),
        record("dan", &["developer", "dev-team"], "prod", sha, Approve, "2026-05-05T09:30:00Z"),
    ];
    evidence
}

fn gate(c: &mut Criterion) {
    let policy = Policy::atlas();
    let gate = policy.gate("staging", "prod").expect("ATLAS has staging → prod");
    let now = at("2026-05-05T10:00:00Z");

    let single = evidence("9fceb02");
    let decision = gate.evaluate(&single, now);
    assert_eq!(decision.verdict, Verdict::Allow, "{decision}");
    assert!(decision.warnings.is_empty(), "{decision}");
    let batch: Vec<Evidence> = (0..10_000u32).map(|i| evidence(&format!("{i:07x}"))).collect();
    let mut group = c.benchmark_group("gate");
    group.bench_function("staging_to_prod", |b| b.iter(|| gate.evaluate(black_box(&single), black_box(now))));
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("staging_to_prod_10k_candidates", |b| {
        b.iter(|| batch.iter().filter(|e| gate.evaluate(black_box(e), now).is_allowed()).count())
    });
    group.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
