//! G6 blackouts: weekly times when entering a stage is forbidden, whatever
//! its windows say; `end = "24:00"`; and how a wait accounts for them.

mod gate_support;

use atlas_promote_core::Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
use atlas_promote_core::{Blackout, Blocker, Decision, Duration, LocalTime, Policy, Verdict, Weekday, Window};
use gate_support::*;

/// `build → live` where entering live is limited by `windows` and `blackouts`.
fn live_with(windows: Vec<Window>, blackouts: Vec<Blackout>) -> Policy {
    two_environments(vec![], |live| {
        live.windows = windows;
        live.blackouts = blackouts;
    })
}

fn time(text: &str) -> LocalTime {
    let (h, m) = text.split_once(':').expect("HH:MM");
    LocalTime::hm(h.parse().expect("hours"), m.parse().expect("minutes")).expect("a valid time")
}

/// A blackout on `days` from `start` to `end` (`HH:MM`) in Europe/Berlin.
fn berlin_blackout(days: &[Weekday], start: &str, end: &str) -> Blackout {
    Blackout {
        days: days.to_vec(),
        start: time(start),
        end: time(end),
        tz: chrono_tz::Europe::Berlin,
        reason: Some("no Friday deploys".into()),
    }
}

/// No deploys on Friday after 15:00 Berlin, the issue's example.
fn friday_afternoons() -> Vec<Blackout> {
    vec![berlin_blackout(&[Fri], "15:00", "24:00")]
}

/// A candidate deployed long ago, asking to enter live at `now`.
fn decide(policy: &Policy, now: &str) -> Decision {
    build_to_live(policy, &deployed_candidate("2026-01-01T00:00:00Z"), now)
}

const FRIDAY_BLACKOUT: &str = r#"
name = "fridays"

[[stage]]
name = "build"
kind = "environment"

[[stage]]
name = "live"
kind = "environment"
blackouts = [{ days = ["fri"], start = "15:00", end = "24:00", tz = "Europe/Berlin" }]
"#;

#[test]
fn g6_a_blackout_blocks_with_its_own_blocker_naming_it_and_its_end() {
    let policy = Policy::from_toml_str(FRIDAY_BLACKOUT, "fridays.toml").expect("a valid policy");
    // Given Friday 16:00 in Berlin (CEST, 14:00 UTC)
    let decision = decide(&policy, "2026-05-08T14:00:00Z");
    // Then the blackout blocks until Saturday 00:00 Berlin, and the gate waits for it
    match decision.blockers.as_slice() {
        [Blocker::Blackout { stage, blackout, reason: None, until }] => {
            assert_eq!(stage, "live");
            assert_eq!(blackout, "fri 15:00–24:00 Europe/Berlin");
            assert_eq!(*until, Some(at("2026-05-08T22:00:00Z")));
        }
        other => panic!("expected one blackout, got {other:?}"),
    }
    assert_eq!(decision.blockers[0].kind(), "blackout");
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-08T22:00:00Z") });
    let text = decision.to_string();
    assert!(text.contains("live is in a blackout (fri 15:00–24:00 Europe/Berlin) until 2026-05-08 22:00"), "{text}");
}

#[test]
fn g6_outside_a_blackout_the_gate_is_open() {
    let policy = live_with(vec![], friday_afternoons());
    // Friday 14:59 Berlin, Saturday 00:00 Berlin, and Thursday afternoon
    for now in ["2026-05-08T12:59:00Z", "2026-05-08T22:00:00Z", "2026-05-07T14:00:00Z"] {
        assert!(decide(&policy, now).is_allowed(), "{now}: {}", decide(&policy, now));
    }
    // Friday 15:00 Berlin is inside: the start belongs to the blackout
    assert_eq!(blockers(&decide(&policy, "2026-05-08T13:00:00Z")), ["blackout"]);
}

#[test]
fn g6_the_blackout_reason_is_shown() {
    let decision = decide(&live_with(vec![], friday_afternoons()), "2026-05-08T14:00:00Z");
    assert!(decision.to_string().contains("(no Friday deploys: fri 15:00–24:00 Europe/Berlin)"), "{decision}");
}

#[test]
fn g6_a_blackout_wins_over_a_window_it_overlaps() {
    // Given a window all day on weekdays and the Friday blackout
    let windows = vec![berlin_window(&[Mon, Tue, Wed, Thu, Fri], "00:00", "24:00")];
    let decision = decide(&live_with(windows, friday_afternoons()), "2026-05-08T14:00:00Z");
    // Then Friday 16:00 is blocked, and the next open instant is Monday 00:00 Berlin
    assert_eq!(blockers(&decision), ["blackout"]);
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-10T22:00:00Z") });
}

#[test]
fn g6_window_end_24_00_lasts_to_midnight() {
    let policy = live_with(vec![berlin_window(&[Wed], "18:00", "24:00")], vec![]);
    // Wednesday 23:59 Berlin is inside; Thursday 00:00 is not
    assert!(decide(&policy, "2026-05-06T21:59:00Z").is_allowed());
    let closed = decide(&policy, "2026-05-06T22:00:00Z");
    assert_eq!(blockers(&closed), ["window_closed"]);
    assert_eq!(closed.verdict, Verdict::Wait { until: at("2026-05-13T16:00:00Z") });
}

#[test]
fn g6_a_wait_for_a_soak_ending_inside_a_blackout_waits_for_the_blackout_to_end() {
    // Given a soak of 4h in build that ends on Friday 16:00 Berlin
    let mut policy = live_with(vec![], friday_afternoons());
    policy.stages[0].soak = Some(Duration::hours(4));
    let evidence = deployed_candidate("2026-05-08T10:00:00Z");
    // When decided on Friday 13:00 Berlin, before the blackout
    let decision = build_to_live(&policy, &evidence, "2026-05-08T11:00:00Z");
    // Then it waits past the soak's end, for the blackout to end at midnight
    assert_eq!(blockers(&decision), ["soaking"]);
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-08T22:00:00Z") });
}

#[test]
fn g6_a_blackout_past_midnight_ends_at_the_wall_clock_time_across_a_dst_change() {
    // Saturday 22:00 to 04:00 Berlin, over the night clocks go forward (29 March 2026)
    let policy = live_with(vec![], vec![berlin_blackout(&[Sat], "22:00", "04:00")]);
    // At Sunday 01:30 CET (00:30 UTC), inside
    let decision = decide(&policy, "2026-03-29T00:30:00Z");
    // It ends at 04:00 CEST, 02:00 UTC: six wall-clock hours, five real ones
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-03-29T02:00:00Z") });
    assert!(decide(&policy, "2026-03-29T02:00:00Z").is_allowed());
}

#[test]
fn g6_blackouts_in_a_row_end_when_the_last_one_does() {
    let blackouts = vec![berlin_blackout(&[Sat], "00:00", "24:00"), berlin_blackout(&[Fri], "15:00", "24:00")];
    let decision = decide(&live_with(vec![], blackouts), "2026-05-08T14:00:00Z");
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-09T22:00:00Z") });
    match &decision.blockers[..] {
        [Blocker::Blackout { until, .. }] => assert_eq!(*until, Some(at("2026-05-09T22:00:00Z"))),
        other => panic!("expected one blackout, got {other:?}"),
    }
}

#[test]
fn g6_blackouts_that_cover_the_whole_week_block_for_good() {
    let all = [Mon, Tue, Wed, Thu, Fri, Sat, Sun];
    let decision = decide(&live_with(vec![], vec![berlin_blackout(&all, "00:00", "24:00")]), NOW);
    assert_eq!(decision.verdict, Verdict::Block);
    assert!(matches!(decision.blockers[..], [Blocker::Blackout { until: None, .. }]), "{decision}");
    assert!(!decision.blockers[0].is_time_based());
}

#[test]
fn g6_windows_all_inside_blackouts_never_open_so_a_closed_window_blocks() {
    // Office hours, and a blackout around every one of them
    let windows = vec![berlin_window(&[Mon, Tue, Wed, Thu], "09:00", "16:00")];
    let blackouts = vec![berlin_blackout(&[Mon, Tue, Wed, Thu], "08:00", "17:00")];
    let policy = live_with(windows, blackouts);
    // Outside the window: no instant ever opens, so this is no wait
    let closed = decide(&policy, "2026-05-05T17:00:00Z");
    assert_eq!(blockers(&closed), ["window_closed"]);
    assert_eq!(closed.verdict, Verdict::Block);
    // Inside the window and the blackout
    let dark = decide(&policy, "2026-05-05T10:00:00Z");
    assert_eq!(blockers(&dark), ["blackout"]);
    assert_eq!(dark.verdict, Verdict::Block);
}

#[test]
fn lint_windows_all_inside_blackouts_never_open() {
    let mut policy = Policy::atlas();
    policy.stages[4].windows = vec![berlin_window(&[Mon, Tue, Wed, Thu], "09:00", "16:00")];
    policy.stages[4].blackouts = vec![berlin_blackout(&[Mon, Tue, Wed, Thu], "08:00", "17:00")];
    let findings = policy.lint();
    let finding = findings.iter().find(|f| f.field.as_deref() == Some("stage[4].blackouts")).expect("a finding");
    assert_eq!(finding.severity, atlas_promote_core::Severity::Error);
    assert!(finding.message.contains("every one of its windows lies inside its blackouts"), "{finding}");
}

#[test]
fn lint_blackouts_covering_the_whole_week_never_open() {
    let mut policy = Policy::atlas();
    let all = [Mon, Tue, Wed, Thu, Fri, Sat, Sun];
    policy.stages[4].blackouts = vec![berlin_blackout(&all, "12:00", "12:00"), berlin_blackout(&all, "00:00", "24:00")];
    let findings = policy.lint();
    assert!(
        findings.iter().any(|f| f.field.as_deref() == Some("stage[4].blackouts") && f.message.contains("whole week")),
        "{findings:?}"
    );
}

#[test]
fn lint_a_blackout_beside_open_windows_is_no_finding() {
    let mut policy = Policy::atlas();
    policy.stages[4].windows = vec![berlin_window(&[Mon, Tue, Wed, Thu, Fri], "09:00", "16:00")];
    policy.stages[4].blackouts = friday_afternoons();
    assert!(policy.lint().iter().all(|f| f.field.as_deref() != Some("stage[4].blackouts")));
}

#[test]
fn lint_the_ttl_gap_counts_blackouts() {
    // Windows every weekday 09:00–16:00, but Friday's is blacked out: the
    // longest closed time runs from Thursday 16:00 to Monday 09:00 (89h)
    let mut policy = Policy::atlas();
    policy.stages[4].windows = vec![berlin_window(&[Mon, Tue, Wed, Thu, Fri], "09:00", "16:00")];
    policy.stages[4].blackouts = vec![berlin_blackout(&[Fri], "00:00", "24:00")];
    let findings = policy.lint();
    assert!(findings.iter().any(|f| f.message.contains("stay closed for up to 89h")), "{findings:?}");
}

#[test]
fn file_a_blackout_reads_back_as_written() {
    let policy = Policy::from_toml_str(FRIDAY_BLACKOUT, "fridays.toml").expect("a valid policy");
    assert_eq!(policy.stages[1].blackouts[0].end, LocalTime::END_OF_DAY);
    let again = Policy::from_toml_str(&policy.to_toml_string(), "again.toml").expect("reads back");
    assert_eq!(again, policy);
}

#[test]
fn file_a_blackout_that_starts_at_24_00_is_refused_where_written() {
    let text = FRIDAY_BLACKOUT.replace("start = \"15:00\"", "start = \"24:00\"");
    let err = Policy::from_toml_str(&text, "fridays.toml").unwrap_err();
    assert_eq!(err.field.as_deref(), Some("stage[1].blackouts[0].start"), "{err}");
    assert_eq!((err.line, err.column), (Some(11), Some(40)), "{err}");
    assert!(err.message.contains("24:00 is only an end"), "{err}");
}

#[test]
fn file_a_blackout_with_an_unknown_field_is_refused_where_written() {
    let text = FRIDAY_BLACKOUT.replace("tz = \"Europe/Berlin\"", "tz = \"Europe/Berlin\", why = \"x\"");
    let err = Policy::from_toml_str(&text, "fridays.toml").unwrap_err();
    assert_eq!((err.line, err.column), (Some(11), Some(86)), "{err}");
    assert_eq!(err.field.as_deref(), Some("stage[1].blackouts[0].why"), "{err}");
    assert!(err.message.contains("unknown field `why`"), "{err}");
}

#[test]
fn file_a_time_past_24_00_is_refused_with_the_range() {
    let text = FRIDAY_BLACKOUT.replace("end = \"24:00\"", "end = \"24:30\"");
    let err = Policy::from_toml_str(&text, "fridays.toml").unwrap_err();
    assert_eq!((err.line, err.column), (Some(11), Some(55)), "{err}");
    assert_eq!(err.field.as_deref(), Some("stage[1].blackouts[0].end"), "{err}");
    assert!(err.message.contains("expected HH:MM from 00:00 to 24:00"), "{err}");
}

#[cfg(feature = "yaml")]
#[test]
fn file_a_yaml_blackout_reads_like_the_toml_one() {
    let yaml = r#"
name: fridays
stage:
  - name: build
    kind: environment
  - name: live
    kind: environment
    blackouts:
      - { days: [fri], start: "15:00", end: "24:00", tz: Europe/Berlin }
"#;
    let from_yaml = Policy::from_yaml_str(yaml, "fridays.yaml").expect("a valid policy");
    let from_toml = Policy::from_toml_str(FRIDAY_BLACKOUT, "fridays.toml").expect("a valid policy");
    assert_eq!(from_yaml, from_toml);
    let bad = yaml.replace("start: \"15:00\"", "start: \"15:00\", end: \"15:00\"").replace(", end: \"24:00\"", "");
    let err = Policy::from_yaml_str(&bad, "fridays.yaml").unwrap_err();
    assert_eq!(err.field.as_deref(), Some("stage[1].blackouts[0].end"), "{err}");
    assert_eq!(err.line, Some(9), "{err}");
}
