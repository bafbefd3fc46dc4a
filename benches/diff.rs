//! `atlas-promote diff`'s cost: 100,000 generated cases for one gate, each
//! decided under two policies and compared (the target: under 1 s).
//!
//! The gate is ATLAS `staging → prod` (three blocking nightly checks with a
//! 26 h `max_age`, a 72 h approval `ttl`, two roles), against the same policy
//! with a 20 h `max_age` and a Berlin weekday window into prod: the
//! generator probes results, approvals, windows and their DST days.

use std::hint::black_box;

use atlas_promote::impact::compare_gate;
use atlas_promote::{Duration, LocalTime, Policy, Weekday, Window};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CASES: usize = 100_000;

fn changed() -> Policy {
    let mut policy = Policy::atlas();
    for check in &mut policy.stages[3].checks {
        check.max_age = Some(Duration::hours(20));
    }
    policy.stages[4].windows = vec![Window {
        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu],
        start: LocalTime::hm(9, 0).expect("a time"),
        end: LocalTime::hm(16, 0).expect("a time"),
        tz: atlas_promote::chrono_tz::Europe::Berlin,
    }];
    policy
}

fn diff(c: &mut Criterion) {
    let (old, new) = (Policy::atlas(), changed());
    let mut group = c.benchmark_group("diff");
    group.throughput(Throughput::Elements(CASES as u64));
    group.sample_size(10);
    group.bench_function("staging_to_prod_100k_cases", |b| {
        b.iter(|| black_box(compare_gate(&old, &new, "staging", "prod", black_box(CASES), 1)))
    });
    group.finish();
}

criterion_group!(benches, diff);
criterion_main!(benches);
