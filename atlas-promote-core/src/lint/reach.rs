//! Which stages a candidate can reach, and how long a stage's windows stay closed.

use std::collections::BTreeSet;

use chrono::{TimeDelta, Timelike};

use crate::policy::{Policy, StageKind, Window};

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

/// The longest time, within a week of wall-clock time, during which none of
/// `windows` is open; `None` without windows or when none ever opens.
/// (Windows in different time zones are compared by their wall clocks.)
pub(super) fn longest_closed_gap(windows: &[Window]) -> Option<TimeDelta> {
    const WEEK: i64 = 7 * 24 * 60;
    let minute = |t: chrono::NaiveTime| i64::from(t.hour() * 60 + t.minute());
    let mut open: Vec<(i64, i64)> = Vec::new();
    for window in windows {
        let (start, end) = (minute(window.start.0), minute(window.end.0));
        let length = if end > start { end - start } else { end + 24 * 60 - start };
        for day in &window.days {
            let from = i64::from(chrono::Weekday::from(*day).num_days_from_monday()) * 24 * 60 + start;
            open.push((from, from + length));
        }
    }
    if open.is_empty() {
        return None;
    }
    open.sort_unstable();
    // Gaps between one opening's end and the next start, around the week.
    let mut longest = 0;
    let mut reach = open[0].1;
    for &(from, to) in &open[1..] {
        longest = longest.max(from - reach);
        reach = reach.max(to);
    }
    longest = longest.max(open[0].0 + WEEK - reach);
    Some(TimeDelta::minutes(longest.max(0)))
}
