//! Random policies from a family around the ATLAS preset, and the
//! independent window check the oracle uses.

use std::collections::BTreeMap;

use atlas_promote_core::{
    ApprovalRule, Blackout, CheckSpec, Deploy, Duration, Flush, Freeze, LocalTime, Monitor, OnFailure, OverrideRule,
    Policy, Stage, StageKind, Weekday, Window,
};
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use super::rng::Rng;

pub const PEOPLE: [&str; 7] = ["alice", "bob", "carol", "dan", "erin", "frank", "mallory"];
pub const ROLES: [&str; 5] = ["developer", "dev-team", "product-owner", "qa", "release-manager"];
pub const EPHEMERAL: &str = "preview";

const ZONES: [Tz; 7] = [
    Tz::Europe__Berlin,
    Tz::Europe__Berlin,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Australia__Sydney,
    Tz::Asia__Kolkata,
    Tz::UTC,
];

/// Wall-clock times windows open and close at: around the DST changes
/// (02:00–03:00 is skipped or repeated in Berlin), office hours, overnight.
const TIMES: [(u32, u32); 11] =
    [(0, 0), (1, 30), (2, 0), (2, 30), (3, 0), (6, 0), (9, 0), (12, 0), (16, 0), (18, 0), (22, 0)];

const DAYS: [Weekday; 7] =
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

fn rule(rng: &mut Rng) -> ApprovalRule {
    let mut require = BTreeMap::new();
    let roles = 1 + rng.below(2);
    for _ in 0..roles {
        let role = *rng.pick(&ROLES);
        require.insert(role.to_owned(), 1 + u32::from(rng.chance(25)));
    }
    let ttl = match rng.below(10) {
        0..=5 => None,
        6 => Some(Duration::hours(2)),
        7 => Some(Duration::hours(24)),
        _ => Some(Duration::hours(72)),
    };
    ApprovalRule { require, forbid_self_approval: !rng.chance(15), ttl }
}

fn window(rng: &mut Rng) -> Window {
    let (start, end) = loop {
        let s = *rng.pick(&TIMES);
        let e = *rng.pick(&TIMES);
        if s != e {
            break (s, e);
        }
    };
    let mut days = rng.subset(&DAYS, 60);
    if days.is_empty() {
        days.push(*rng.pick(&DAYS));
    }
    let hm = |(h, m): (u32, u32)| LocalTime::hm(h, m).expect("valid time of day");
    Window { days, start: hm(start), end: hm(end), tz: *rng.pick(&ZONES) }
}

fn blackout(rng: &mut Rng) -> Blackout {
    let w = window(rng);
    // Now and then to the end of the day, written 24:00.
    let end = if rng.chance(30) { LocalTime::END_OF_DAY } else { w.end };
    Blackout { days: w.days, start: w.start, end, tz: w.tz, reason: Some("blackout".into()) }
}

fn freeze(rng: &mut Rng, start: DateTime<Utc>) -> Freeze {
    let from = start + TimeDelta::hours(rng.between(-24, 24 * 8));
    let until = (!rng.chance(25)).then(|| from + TimeDelta::hours(rng.between(1, 72)));
    Freeze { from, until, reason: Some("release freeze".into()) }
}

/// A policy of the ATLAS family: the preset with stages dropped or added
/// and every rule varied.
pub fn random_policy(rng: &mut Rng, start: DateTime<Utc>) -> Policy {
    let mut policy = Policy::atlas();
    policy.name = "sim".into();
    if rng.chance(20) {
        policy.stages.retain(|s| s.name != "staging");
    }
    if rng.chance(35) {
        let mut preview = Stage::new(EPHEMERAL, StageKind::Environment);
        preview.ephemeral = true;
        preview.deploy = Some(Deploy { workflow: "preview".into(), parameters: BTreeMap::new() });
        if rng.chance(50) {
            preview.flush = Some(Flush {
                paths: vec!["pipelines/**".into()],
                workflow: "flush".into(),
                parameters: BTreeMap::new(),
            });
        }
        let at = policy.stage_index("trunk").map_or(2, |i| i + 1);
        policy.stages.insert(at, preview);
    }
    if rng.chance(60) {
        let roles = if rng.chance(70) { vec!["release-manager".to_owned()] } else { vec!["dev-team".to_owned()] };
        policy.overrides = Some(OverrideRule { roles });
    }
    let last = policy.stages.len() - 1;
    for (i, stage) in policy.stages.iter_mut().enumerate() {
        if stage.kind == StageKind::Trunk && rng.chance(30) {
            stage.approvals = rng.chance(50).then(|| rule(rng));
        }
        if stage.kind != StageKind::Environment || stage.ephemeral {
            continue;
        }
        if rng.chance(20) {
            stage.flush = None;
        }
        stage.soak = match rng.below(10) {
            0 => Some(Duration::minutes(30)),
            1 => Some(Duration::hours(4)),
            2 => Some(Duration::hours(24)),
            _ => None,
        };
        for check in &mut stage.checks {
            if rng.chance(30) {
                check.blocking = !check.blocking;
            }
            if rng.chance(30) {
                check.max_age = match rng.below(3) {
                    0 => None,
                    1 => Some(Duration::hours(6)),
                    _ => Some(Duration::hours(26)),
                };
            }
        }
        let entry_rules = stage.name != "dev" || rng.chance(15);
        if entry_rules && rng.chance(60) {
            stage.approvals = Some(rule(rng));
        }
        if stage.name != "dev" && rng.chance(40) {
            stage.windows = (0..1 + rng.below(2)).map(|_| window(rng)).collect();
        }
        if stage.name != "dev" && rng.chance(25) {
            stage.blackouts = vec![blackout(rng)];
        }
        if rng.chance(25) {
            stage.freezes = vec![freeze(rng, start)];
        }
        if i == last {
            if !stage.checks.iter().any(|c| c.name == "data-quality") {
                stage.checks.push(CheckSpec::advisory("data-quality"));
            }
            let on_failure = if rng.chance(50) { OnFailure::Rollback } else { OnFailure::Alert };
            stage.monitor = Some(Monitor { check: "data-quality".into(), on_failure });
        }
    }
    policy
}

/// Whether `now` lies in `window`, computed independently of the gate:
/// the wall-clock time of `now` in the window's zone, on the day it opens.
pub fn window_open(window: &Window, now: DateTime<Utc>) -> bool {
    weekly_contains(&window.days, window.start, window.end, window.tz, now)
}

/// Whether `now` lies in `blackout`, computed like [`window_open`].
pub fn blacked_out(blackout: &Blackout, now: DateTime<Utc>) -> bool {
    weekly_contains(&blackout.days, blackout.start, blackout.end, blackout.tz, now)
}

/// Minutes and seconds of the wall clock against `[start, end)` (`24:00` is 1440 minutes).
fn weekly_contains(days: &[Weekday], start: LocalTime, end: LocalTime, tz: Tz, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&tz);
    let (day, t) = (local.weekday(), local.time().num_seconds_from_midnight());
    let opens_on = |d: chrono::Weekday| days.iter().any(|w| chrono::Weekday::from(*w) == d);
    let (start, end) = (start.minutes_from_midnight() * 60, end.minutes_from_midnight() * 60);
    if start < end {
        opens_on(day) && start <= t && t < end
    } else {
        (opens_on(day) && t >= start) || (opens_on(day.pred()) && t < end)
    }
}

/// Whether `now` lies in `freeze`.
pub fn frozen(freeze: &Freeze, now: DateTime<Utc>) -> bool {
    freeze.from <= now && freeze.until.is_none_or(|u| now < u)
}
