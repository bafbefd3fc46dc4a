//! The gate decision's cost: one ATLAS `staging → prod` decision with a
//! realistic amount of evidence, and a batch of 10,000 candidates; and on
//! hostile sizes, which must stay near-linear (each under 50 ms): 100,000
//! approvals from distinct product owners and no dev-team approver, a
//! prod with 20,000 freezes listed latest first, and a prod whose windows
//! all lie inside blackouts, with 20,000 freezes besides.
//!
//! The evidence: staging's three blocking nightly checks with 30 results
//! each (a month of nights, a few failures, the newest passing), and 10
//! approval records (for prod and for staging, for this commit and an older
//! one, with a withdrawal). The decision allows, so no text is rendered.

use std::hint::black_box;

use atlas_promote::chrono::{DateTime, TimeDelta, Utc};
use atlas_promote::{
    ApprovalDecision, ApprovalRecord, Candidate, CheckResult, CheckStatus, Deployment, Evidence, Freeze, Policy,
    Verdict,
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

/// 100,000 product owners approve; nobody from the dev team does.
fn hostile_approvals(c: &mut Criterion) {
    let policy = Policy::atlas();
    let gate = policy.gate("staging", "prod").expect("ATLAS has staging → prod");
    let now = at("2026-05-05T10:00:00Z");
    let mut evidence = evidence("9fceb02");
    evidence.approvals = (0..100_000u32)
        .map(|i| {
            record(
                &format!("po-{i:06}"),
                &["product-owner"],
                "prod",
                "9fceb02",
                ApprovalDecision::Approve,
                "2026-05-05T09:00:00Z",
            )
        })
        .collect();
    let decision = gate.evaluate(&evidence, now);
    assert_eq!(decision.verdict, Verdict::Block, "{decision}");
    assert_eq!(decision.blockers.len(), 1, "{decision}");
    let mut group = c.benchmark_group("gate_hostile");
    group.sample_size(20);
    group.bench_function("approvals_100k_no_dev_team", |b| b.iter(|| gate.evaluate(black_box(&evidence), now)));
    group.finish();
}

/// Prod frozen by 20,000 back-to-back one-hour freezes, listed latest first:
/// the wait ends after the last one.
fn hostile_freezes(c: &mut Criterion) {
    let mut policy = Policy::atlas();
    let now = at("2026-05-05T10:00:00Z");
    let freezes = 20_000i64;
    policy.stages[4].freezes = (0..freezes)
        .rev()
        .map(|i| Freeze {
            from: now + TimeDelta::hours(i),
            until: Some(now + TimeDelta::hours(i + 1)),
            reason: Some(format!("freeze {i}")),
        })
        .collect();
    let gate = policy.gate("staging", "prod").expect("ATLAS has staging → prod");
    let single = evidence("9fceb02");
    let decision = gate.evaluate(&single, now);
    assert_eq!(decision.verdict, Verdict::Wait { until: now + TimeDelta::hours(freezes) }, "{decision}");
    let mut group = c.benchmark_group("gate_hostile");
    group.sample_size(20);
    group.bench_function("freezes_20k_latest_first", |b| b.iter(|| gate.evaluate(black_box(&single), now)));
    group.finish();
}

/// Prod open on weekdays 09:00–16:00 Berlin, but every window lies inside a
/// blackout (08:00–17:00), and 20,000 one-minute freezes a day apart: no
/// instant ever opens, and the decision must find that out in bounded time.
fn hostile_blackouts(c: &mut Criterion) {
    use atlas_promote::{Blackout, LocalTime, Weekday, Window};
    let mut policy = Policy::atlas();
    let now = at("2026-05-05T10:00:00Z");
    let days = vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
    let time = |h| LocalTime::hm(h, 0).expect("a time");
    let tz = atlas_promote::chrono_tz::Europe::Berlin;
    policy.stages[4].windows = vec![Window { days: days.clone(), start: time(9), end: time(16), tz }];
    policy.stages[4].blackouts = vec![Blackout { days, start: time(8), end: time(17), tz, reason: None }];
    policy.stages[4].freezes = (0..20_000i64)
        .map(|i| Freeze {
            from: now + TimeDelta::days(i),
            until: Some(now + TimeDelta::days(i) + TimeDelta::minutes(1)),
            reason: None,
        })
        .collect();
    let gate = policy.gate("staging", "prod").expect("ATLAS has staging → prod");
    let single = evidence("9fceb02");
    let decision = gate.evaluate(&single, now);
    assert_eq!(decision.verdict, Verdict::Block, "{decision}");
    let mut group = c.benchmark_group("gate_hostile");
    group.sample_size(20);
    group.bench_function("windows_inside_blackouts_20k_freezes", |b| b.iter(|| gate.evaluate(black_box(&single), now)));
    group.finish();
}

criterion_group!(benches, gate, hostile_approvals, hostile_freezes, hostile_blackouts);
criterion_main!(benches);
