//! G6 windows and freezes of the target stage, and how long a `wait` waits.

mod gate_support;

use atlas_promote_core::Weekday::{Fri, Mon, Sun, Thu, Tue, Wed};
use atlas_promote_core::{Blocker, CheckSpec, Decision, Duration, Freeze, Policy, Verdict, Window};
use gate_support::*;

/// `build → live` where entering live is limited by `windows` and `freezes`.
fn live_with(windows: Vec<Window>, freezes: Vec<Freeze>) -> Policy {
    two_environments(vec![], |live| {
        live.windows = windows;
        live.freezes = freezes;
    })
}

/// Office hours: Monday to Thursday, 09:00–16:00 in Berlin.
fn office_hours() -> Vec<Window> {
    vec![berlin_window(&[Mon, Tue, Wed, Thu], "09:00", "16:00")]
}

/// A candidate deployed long ago, asking to enter live at `now`.
fn decide(policy: &Policy, now: &str) -> Decision {
    build_to_live(policy, &deployed_candidate("2026-01-01T00:00:00Z"), now)
}

fn closed_until(decision: &Decision) -> Option<chrono::DateTime<chrono::Utc>> {
    match decision.blockers.as_slice() {
        [Blocker::WindowClosed { opens_at, .. }] => *opens_at,
        other => panic!("expected only window_closed, got {other:?}"),
    }
}

#[test]
fn g6_inside_a_window_is_allowed() {
    // Tuesday 12:00 in Berlin (CEST)
    assert!(decide(&live_with(office_hours(), vec![]), "2026-05-05T10:00:00Z").is_allowed());
    // The last second before 16:00 is inside
    assert!(decide(&live_with(office_hours(), vec![]), "2026-05-05T13:59:59Z").is_allowed());
}

#[test]
fn g6_outside_a_window_waits_for_the_next_opening() {
    // Given Tuesday 16:00 in Berlin: the window's end is not in it
    let decision = decide(&live_with(office_hours(), vec![]), "2026-05-05T14:00:00Z");
    // Then it waits for Wednesday 09:00 CEST
    assert_eq!(closed_until(&decision), Some(at("2026-05-06T07:00:00Z")));
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-06T07:00:00Z") });
}

#[test]
fn g6_after_the_last_window_of_the_week_waits_for_monday() {
    let decision = decide(&live_with(office_hours(), vec![]), "2026-05-08T10:00:00Z");
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-11T07:00:00Z") });
}

#[test]
fn g6_the_earliest_of_several_windows_opens_first() {
    let windows = vec![berlin_window(&[Wed], "13:00", "14:00"), berlin_window(&[Wed], "10:00", "11:00")];
    let decision = decide(&live_with(windows, vec![]), "2026-05-05T10:00:00Z");
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-06T08:00:00Z") });
}

#[test]
fn g6_a_window_past_midnight_belongs_to_the_day_it_opens() {
    // Given a window Friday 22:00 to 02:00 in Berlin
    let policy = live_with(vec![berlin_window(&[Fri], "22:00", "02:00")], vec![]);
    // Friday 22:00 local is inside, and so is Saturday 01:59:59, though Saturday is not listed
    assert!(decide(&policy, "2026-05-08T20:00:00Z").is_allowed());
    assert!(decide(&policy, "2026-05-08T23:59:59Z").is_allowed());
    // Saturday 02:00 is not
    assert_eq!(closed_until(&decide(&policy, "2026-05-09T00:00:00Z")), Some(at("2026-05-15T20:00:00Z")));
    // Nor is Saturday 22:30: the window opens on Fridays only
    assert_eq!(closed_until(&decide(&policy, "2026-05-09T20:30:00Z")), Some(at("2026-05-15T20:00:00Z")));
    // Friday 21:00 waits an hour
    assert_eq!(decide(&policy, "2026-05-08T19:00:00Z").verdict, Verdict::Wait { until: at("2026-05-08T20:00:00Z") });
}

#[test]
fn g6_a_wall_clock_time_skipped_by_spring_forward_never_occurs() {
    // Given a Sunday window 02:00–03:00 in Berlin; on 2026-03-29 clocks jump from 02:00 to 03:00
    let policy = live_with(vec![berlin_window(&[Sun], "02:00", "03:00")], vec![]);
    // At 01:30 CET, and at 03:00 CEST right after the jump, it is closed
    for now in ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"] {
        let decision = decide(&policy, now);
        // Then the window opens next on the following Sunday, 02:00 CEST
        assert_eq!(closed_until(&decision), Some(at("2026-04-05T00:00:00Z")), "at {now}");
    }
}

#[test]
fn g6_a_window_starting_in_the_skipped_hour_opens_when_the_clock_lands_in_it() {
    // Given a Sunday window 02:30–04:00: on 2026-03-29 the wall clock never reads 02:30,
    // but reads 03:00 (inside) right after the jump
    let policy = live_with(vec![berlin_window(&[Sun], "02:30", "04:00")], vec![]);
    let decision = decide(&policy, "2026-03-29T00:30:00Z");
    assert_eq!(closed_until(&decision), Some(at("2026-03-29T01:00:00Z")));
    assert!(decide(&policy, "2026-03-29T01:00:00Z").is_allowed());
    assert!(!decide(&policy, "2026-03-29T02:00:00Z").is_allowed());
}

#[test]
fn g6_a_wall_clock_time_repeated_by_fall_back_occurs_twice() {
    // Given a Sunday window 02:30–03:00; on 2026-10-25 clocks go back from 03:00 CEST to 02:00 CET
    let policy = live_with(vec![berlin_window(&[Sun], "02:30", "03:00")], vec![]);
    // 02:45 CEST is inside
    assert!(decide(&policy, "2026-10-25T00:45:00Z").is_allowed());
    // 02:15 CET, after the clocks went back, is outside, and the window opens again at 02:30 CET
    assert_eq!(closed_until(&decide(&policy, "2026-10-25T01:15:00Z")), Some(at("2026-10-25T01:30:00Z")));
    assert!(decide(&policy, "2026-10-25T01:45:00Z").is_allowed());
    // 03:00 CET closes it until next Sunday
    assert_eq!(closed_until(&decide(&policy, "2026-10-25T02:00:00Z")), Some(at("2026-11-01T01:30:00Z")));
}

#[test]
fn g6_the_repeated_hour_is_one_long_window_on_fall_back_day() {
    // Given a Sunday window 02:00–03:00: on 2026-10-25 it lasts two hours, 00:00–02:00 UTC
    let policy = live_with(vec![berlin_window(&[Sun], "02:00", "03:00")], vec![]);
    for now in ["2026-10-25T00:00:00Z", "2026-10-25T00:59:59Z", "2026-10-25T01:00:00Z", "2026-10-25T01:59:59Z"] {
        assert!(decide(&policy, now).is_allowed(), "at {now}");
    }
    assert!(!decide(&policy, "2026-10-25T02:00:00Z").is_allowed());
    assert_eq!(closed_until(&decide(&policy, "2026-10-24T23:00:00Z")), Some(at("2026-10-25T00:00:00Z")));
}

#[test]
fn g6_a_freeze_covers_its_start_but_not_its_end() {
    let policy = live_with(vec![], vec![freeze("2026-05-05T09:00:00Z", Some("2026-05-05T11:00:00Z"))]);
    assert!(decide(&policy, "2026-05-05T08:59:59Z").is_allowed());
    let decision = decide(&policy, "2026-05-05T09:00:00Z");
    assert_eq!(
        decision.blockers,
        [Blocker::Frozen {
            stage: "live".into(),
            reason: Some("holidays".into()),
            until: Some(at("2026-05-05T11:00:00Z"))
        }]
    );
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-05T11:00:00Z") });
    assert_eq!(decide(&policy, "2026-05-05T10:59:59Z").verdict, Verdict::Wait { until: at("2026-05-05T11:00:00Z") });
    assert!(decide(&policy, "2026-05-05T11:00:00Z").is_allowed());
}

#[test]
fn g6_a_freeze_without_end_blocks() {
    let policy = live_with(vec![], vec![freeze("2026-05-01T00:00:00Z", None)]);
    let decision = decide(&policy, NOW);
    assert_eq!(blockers(&decision), ["frozen"]);
    assert_eq!(decision.verdict, Verdict::Block);
    assert_eq!(decision.blockers[0].to_string(), "live is frozen (holidays) until the freeze is removed");
}

#[test]
fn g6_a_window_that_never_opens_blocks() {
    let policy = live_with(vec![berlin_window(&[], "09:00", "16:00")], vec![]);
    let decision = decide(&policy, NOW);
    assert_eq!(decision.blockers, [Blocker::WindowClosed { stage: "live".into(), opens_at: None }]);
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn wait_jumps_past_a_freeze_into_the_next_window() {
    // Given office hours and a freeze until Wednesday 19:00 CET, after Wednesday's window
    let policy = live_with(office_hours(), vec![freeze("2026-12-21T00:00:00Z", Some("2026-12-23T18:00:00Z"))]);
    // When asked on Monday 11:00 CET, inside the window but frozen
    let decision = decide(&policy, "2026-12-21T10:00:00Z");
    // Then it waits for Thursday 09:00 CET
    assert_eq!(blockers(&decision), ["frozen"]);
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-12-24T08:00:00Z") });
}

#[test]
fn wait_skips_every_window_inside_a_long_freeze() {
    let policy = live_with(office_hours(), vec![freeze("2026-12-18T00:00:00Z", Some("2027-01-04T00:00:00Z"))]);
    let decision = decide(&policy, "2026-12-21T10:00:00Z");
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2027-01-04T08:00:00Z") });
}

#[test]
fn wait_follows_freezes_that_chain_and_overlap() {
    // Given freezes [Mon, Wed 12:00) and [Wed 10:00, Thu 10:00), no windows
    let policy = live_with(
        vec![],
        vec![
            freeze("2026-12-23T10:00:00Z", Some("2026-12-24T10:00:00Z")),
            freeze("2026-12-21T00:00:00Z", Some("2026-12-23T12:00:00Z")),
        ],
    );
    let decision = decide(&policy, "2026-12-21T10:00:00Z");
    // Then "frozen" names the one freeze covering now, and the wait ends when neither holds
    assert_eq!(blockers(&decision), ["frozen"]);
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-12-24T10:00:00Z") });
}

#[test]
fn wait_becomes_block_when_an_endless_freeze_begins_before_the_window_opens() {
    // Given Friday (no window) and a freeze without end from Saturday
    let policy = live_with(office_hours(), vec![freeze("2026-05-09T00:00:00Z", None)]);
    let decision = decide(&policy, "2026-05-08T10:00:00Z");
    // Then only the window blocks now, but it never reopens unfrozen
    assert_eq!(blockers(&decision), ["window_closed"]);
    assert_eq!(decision.verdict, Verdict::Block);
}

#[test]
fn wait_combines_soak_and_window() {
    // Given build soaks 24 h and live has office hours
    let mut policy = live_with(office_hours(), vec![]);
    policy.stages[0].soak = Some(Duration::hours(24));
    // And the candidate was deployed on Thursday 16:30 CEST
    let evidence = deployed_candidate("2026-05-07T14:30:00Z");
    // When asked on Thursday 17:00 CEST
    let decision = build_to_live(&policy, &evidence, "2026-05-07T15:00:00Z");
    // Then the soak ends on Friday, when no window is open, so it waits for Monday
    assert_eq!(blockers(&decision), ["soaking", "window_closed"]);
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-11T07:00:00Z") });

    // And a soak that ends inside a window waits for the soak alone
    let evidence = deployed_candidate("2026-05-05T08:00:00Z");
    let decision = build_to_live(&policy, &evidence, "2026-05-05T09:00:00Z");
    assert_eq!(blockers(&decision), ["soaking"]);
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-06T08:00:00Z") });
}

#[test]
fn a_closed_window_and_a_failing_check_block() {
    let mut policy = live_with(office_hours(), vec![]);
    policy.stages[0].checks = vec![CheckSpec::blocking("smoke")];
    let decision = decide(&policy, "2026-05-08T10:00:00Z");
    assert_eq!(blockers(&decision), ["check_missing", "window_closed"]);
    assert_eq!(decision.verdict, Verdict::Block);
}
