//! `Policy::to_toml_string` never fails: any policy, valid or not, is written
//! and read back (as TOML data, before validation) unchanged.

use std::collections::BTreeMap;

use atlas_promote_core::{
    ApprovalRule, Blackout, CheckSpec, Deploy, Duration, Flush, Freeze, LocalTime, Monitor, OnFailure, OverrideRule,
    Policy, Stage, StageKind, Weekday, Window,
};
use chrono::{DateTime, Utc};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z][a-z-]{0,10}"]
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..3)
}

fn parameters() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(text(), text(), 0..3)
}

fn duration() -> impl Strategy<Value = Duration> {
    (0i64..10_000_000).prop_map(Duration::minutes)
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap_or_default())
}

fn local_time() -> impl Strategy<Value = LocalTime> {
    // 24:00 (the end of a day) now and then, besides every minute of a day.
    (0u32..25, 0u32..60).prop_map(|(h, m)| LocalTime::hm(h, m).unwrap_or(LocalTime::END_OF_DAY))
}

fn weekday() -> impl Strategy<Value = Weekday> {
    prop::sample::select(vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ])
}

fn window() -> impl Strategy<Value = Window> {
    (
        prop::collection::vec(weekday(), 0..4),
        local_time(),
        local_time(),
        prop::sample::select(&chrono_tz::TZ_VARIANTS[..]),
    )
        .prop_map(|(days, start, end, tz)| Window { days, start, end, tz })
}

fn blackout() -> impl Strategy<Value = Blackout> {
    (window(), prop::option::of(text())).prop_map(|(w, reason)| Blackout {
        days: w.days,
        start: w.start,
        end: w.end,
        tz: w.tz,
        reason,
    })
}

fn freeze() -> impl Strategy<Value = Freeze> {
    (instant(), prop::option::of(instant()), prop::option::of(text())).prop_map(|(from, until, reason)| Freeze {
        from,
        until,
        reason,
    })
}

fn approvals() -> impl Strategy<Value = ApprovalRule> {
    (prop::collection::btree_map(text(), any::<u32>(), 0..3), any::<bool>(), prop::option::of(duration()))
        .prop_map(|(require, forbid_self_approval, ttl)| ApprovalRule { require, forbid_self_approval, ttl })
}

fn stage() -> impl Strategy<Value = Stage> {
    let kind = prop::sample::select(vec![StageKind::Review, StageKind::Trunk, StageKind::Environment]);
    let deploy =
        prop::option::of((text(), parameters()).prop_map(|(workflow, parameters)| Deploy { workflow, parameters }));
    let flush = prop::option::of((texts(), text(), parameters()).prop_map(|(paths, workflow, parameters)| Flush {
        paths,
        workflow,
        parameters,
    }));
    let checks = prop::collection::vec(
        (text(), any::<bool>(), prop::option::of(duration())).prop_map(|(name, blocking, max_age)| CheckSpec {
            name,
            blocking,
            max_age,
        }),
        0..3,
    );
    let monitor = prop::option::of(
        (text(), prop::sample::select(vec![OnFailure::Alert, OnFailure::Rollback]))
            .prop_map(|(check, on_failure)| Monitor { check, on_failure }),
    );
    (
        (text(), kind, deploy, flush, checks),
        (prop::option::of(duration()), prop::option::of(approvals())),
        (
            prop::collection::vec(window(), 0..2),
            prop::collection::vec(blackout(), 0..2),
            prop::collection::vec(freeze(), 0..2),
            any::<bool>(),
            monitor,
        ),
    )
        .prop_map(
            |(
                (name, kind, deploy, flush, checks),
                (soak, approvals),
                (windows, blackouts, freezes, ephemeral, monitor),
            )| Stage {
                name,
                kind,
                deploy,
                flush,
                checks,
                soak,
                approvals,
                windows,
                blackouts,
                freezes,
                ephemeral,
                monitor,
            },
        )
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        text(),
        prop::collection::btree_map(text(), texts(), 0..3),
        prop::option::of(texts().prop_map(|roles| OverrideRule { roles })),
        prop::collection::vec(stage(), 0..4),
    )
        .prop_map(|(name, directory, overrides, stages)| Policy { name, directory, overrides, stages })
}

proptest! {
    #[test]
    fn any_policy_is_written_as_toml_and_read_back_unchanged(policy in policy()) {
        let text = policy.to_toml_string();
        let read: Policy = toml::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(read, policy);
    }
}
