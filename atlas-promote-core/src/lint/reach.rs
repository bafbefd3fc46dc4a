//! Which stages a candidate can reach, and how long a stage's windows stay closed.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use crate::policy::{Blackout, LocalTime, Policy, StageKind, Weekday, Window};

/// The stages some chain of gates reaches: from trunk for trunk candidates,
/// and the ephemeral environments a review or trunk stage sends branch builds to.
pub(super) fn from_trunk(policy: &Policy) -> BTreeSet<&str> {
    let starts = policy.stages.iter().filter(|s| s.kind != StageKind::Environment);
    let mut reached: BTreeSet<&str> =
        starts.clone().filter(|s| s.kind == StageKind::Trunk).map(|s| s.name.as_str()).collect();
    let mut frontier: Vec<&str> = reached.iter().copied().collect();
    while let Some(at) = frontier.pop() {
        for next in &policy.stages {
            if !next.ephemeral && policy.gate(at, &next.name).is_ok() && reached.insert(next.name.as_str()) {
                frontier.push(next.name.as_str());
            }
        }
    }
    for start in starts {
        for next in policy.stages.iter().filter(|s| s.ephemeral) {
            if policy.gate(&start.name, &next.name).is_ok() {
                reached.insert(next.name.as_str());
            }
        }
    }
    reached
}

/// The longest time, within a week of wall-clock time, during which no
/// window of `windows` is open outside every one of `blackouts`; `None`
/// without windows or when none ever opens. (Windows and blackouts in
/// different time zones are compared by their wall clocks, to the minute.)
pub(super) fn longest_closed_gap(windows: &[Window], blackouts: &[Blackout]) -> Option<TimeDelta> {
    if windows.is_empty() {
        return None;
    }
    let open = week_minutes(windows.iter().map(|w| (w.days.as_slice(), w.start, w.end)));
    let dark = week_minutes(blackouts.iter().map(|b| (b.days.as_slice(), b.start, b.end)));
    let open: Vec<bool> = open.iter().zip(&dark).map(|(o, d)| *o && !*d).collect();
    let first = open.iter().position(|o| *o)?;
    // Around the week from the first open minute: the longest run of closed ones.
    let (mut longest, mut run) = (0i64, 0i64);
    for k in 1..=WEEK {
        if open[(first + k) % WEEK] {
            longest = longest.max(run);
            run = 0;
        } else {
            run += 1;
        }
    }
    Some(TimeDelta::minutes(longest))
}

/// Minutes in a week.
const WEEK: usize = 7 * 24 * 60;

/// Which minutes of a week (from Monday 00:00, wall clock) the spans cover.
fn week_minutes<'a>(spans: impl Iterator<Item = (&'a [Weekday], LocalTime, LocalTime)>) -> Vec<bool> {
    let mut covered = vec![false; WEEK];
    for (days, start, end) in spans {
        let (start, end) = (start.minutes_from_midnight() as usize, end.minutes_from_midnight() as usize);
        let length = if end >= start { end - start } else { end + 24 * 60 - start };
        for day in days {
            let from = chrono::Weekday::from(*day).num_days_from_monday() as usize * 24 * 60 + start;
            for minute in from..from + length {
                covered[minute % WEEK] = true;
            }
        }
    }
    covered
}
