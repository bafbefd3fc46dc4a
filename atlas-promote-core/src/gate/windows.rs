//! G6: the deployment windows and freezes of the target stage.
//!
//! A window is a set of instants, defined by the wall clock in its time zone:
//! an instant is inside when its wall-clock time falls in `[start, end)` on
//! one of the window's days, or, for a window past midnight (`end < start`),
//! in `[start, 24:00)` on one of its days or `[00:00, end)` on the day after
//! one. A wall-clock time skipped by a DST change never occurs; a repeated
//! one occurs twice. A window with `start == end` is empty: it never opens.
//!
//! The next opening is found exactly: the first instant of a window is either
//! one at which the wall clock reads `start` on a listed day (zero, one or
//! two instants per day, by `from_local_datetime`), or one at which the zone
//! changes its offset and the wall clock jumps into the window (to 03:00 on
//! the spring-forward day of a 02:30–04:00 window, say). The zone's offset
//! changes are found by sampling its offset every six hours and bisecting to
//! the second; no zone changes its offset twice within six hours.

use chrono::{DateTime, Datelike, FixedOffset, MappedLocalTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::decision::Blocker;
use crate::policy::{Freeze, Stage, Weekday, Window};

/// How far ahead a window's next opening is looked for. A weekly window
/// opens every week; a DST change can skip one week's opening, not three.
const HORIZON_DAYS: i64 = 22;

/// The spacing of offset samples when looking for a zone's offset changes.
const OFFSET_SAMPLE_SECONDS: i64 = 6 * 60 * 60;

/// Apply G6: block when `now` is outside every window of `stage` (if it has
/// windows), and when a freeze of `stage` covers `now`.
pub(super) fn evaluate(stage: &Stage, now: DateTime<Utc>, blockers: &mut Vec<Blocker>) {
    if !stage.windows.is_empty() && !stage.windows.iter().any(|w| contains(w, now)) {
        blockers.push(Blocker::WindowClosed { stage: stage.name.clone(), opens_at: next_opening(&stage.windows, now) });
    }
    // Of several freezes covering now, name the one that lasts longest.
    let freeze = stage.freezes.iter().filter(|f| covers(f, now)).max_by_key(|f| (f.until.is_none(), f.until));
    if let Some(freeze) = freeze {
        blockers.push(Blocker::Frozen {
            stage: stage.name.clone(),
            reason: freeze.reason.clone(),
            until: freeze.until,
        });
    }
}

/// The earliest instant at or after `from` that is inside a window of
/// `stage` (when it has windows) and outside all of its freezes; `None` if
/// there is none, e.g. a freeze without end begins first.
///
/// The freezes are swept once in the order they begin, whatever the order
/// they are listed in: `t` only moves forward, so a freeze that began at or
/// before `t` never needs looking at again, and `t` is inside a freeze iff
/// the latest end among those begun is after it.
pub(super) fn first_open(stage: &Stage, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut freezes: Vec<&Freeze> = stage.freezes.iter().collect();
    freezes.sort_unstable_by_key(|f| f.from);
    let mut begun = freezes.iter().peekable();
    // The latest end of the freezes begun so far.
    let mut frozen_until = DateTime::<Utc>::MIN_UTC;
    let mut t = from;
    loop {
        while let Some(freeze) = begun.next_if(|f| f.from <= t) {
            // A freeze without end that has begun covers every later instant.
            frozen_until = frozen_until.max(freeze.until?);
        }
        if t < frozen_until {
            t = frozen_until;
            continue;
        }
        if !stage.windows.is_empty() && !stage.windows.iter().any(|w| contains(w, t)) {
            let opens = next_opening(&stage.windows, t)?;
            if opens > t {
                t = opens;
                continue;
            }
        }
        return Some(t);
    }
}

/// Whether `freeze` covers `t`: `from <= t < until`.
fn covers(freeze: &Freeze, t: DateTime<Utc>) -> bool {
    freeze.from <= t && freeze.until.is_none_or(|until| t < until)
}

/// Whether the instant `t` lies in `window`.
fn contains(window: &Window, t: DateTime<Utc>) -> bool {
    let Some(local) = wall_clock(window.tz, t) else { return false };
    let time = local.time();
    let opens_on = |day: chrono::Weekday| window.days.contains(&Weekday::from(day));
    let (start, end) = (window.start.0, window.end.0);
    if start < end {
        opens_on(local.weekday()) && start <= time && time < end
    } else if end < start {
        (opens_on(local.weekday()) && start <= time) || (opens_on(local.weekday().pred()) && time < end)
    } else {
        false
    }
}

/// The earliest instant at or after `t` inside one of `windows`.
fn next_opening(windows: &[Window], t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    windows.iter().filter_map(|w| next_in(w, t)).min()
}

/// The earliest instant at or after `t` inside `window`, looking
/// [`HORIZON_DAYS`] ahead.
fn next_in(window: &Window, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if window.days.is_empty() || window.start == window.end {
        return None;
    }
    if contains(window, t) {
        return Some(t);
    }
    let horizon = t.checked_add_signed(TimeDelta::try_days(HORIZON_DAYS)?)?;
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |x: DateTime<Utc>| {
        if t <= x && x < horizon && best.is_none_or(|b| x < b) && contains(window, x) {
            best = Some(x);
        }
    };
    // From the day before `t`'s local date: a zone setting its clock back
    // over midnight repeats the end of the previous day.
    let first_day = wall_clock(window.tz, t)?.date().pred_opt()?;
    let days = usize::try_from(HORIZON_DAYS).unwrap_or(0) + 3;
    for day in first_day.iter_days().take(days) {
        if !window.days.contains(&Weekday::from(day.weekday())) {
            continue;
        }
        match window.tz.from_local_datetime(&day.and_time(window.start.0)) {
            MappedLocalTime::Single(x) => consider(x.to_utc()),
            MappedLocalTime::Ambiguous(first, second) => {
                consider(first.to_utc());
                consider(second.to_utc());
            }
            MappedLocalTime::None => {}
        }
    }
    each_offset_change(window.tz, t, horizon, consider);
    best
}

/// The wall-clock time in `tz` at `t`; `None` beyond the calendar's range.
fn wall_clock(tz: Tz, t: DateTime<Utc>) -> Option<NaiveDateTime> {
    let utc = t.naive_utc();
    utc.checked_add_offset(tz.offset_from_utc_datetime(&utc).fix())
}

/// Call `f` with each instant in `(from, to]` at which `tz` changes its
/// offset from UTC (the first instant of the new offset).
fn each_offset_change(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>, mut f: impl FnMut(DateTime<Utc>)) {
    let offset_at = |second: i64| -> Option<FixedOffset> {
        let t = DateTime::from_timestamp(second, 0)?;
        Some(tz.offset_from_utc_datetime(&t.naive_utc()).fix())
    };
    let (mut low, end) = (from.timestamp(), to.timestamp());
    let Some(mut low_offset) = offset_at(low) else { return };
    while low < end {
        let high = low.saturating_add(OFFSET_SAMPLE_SECONDS).min(end);
        let Some(high_offset) = offset_at(high) else { return };
        if high_offset != low_offset {
            // Invariant: the offset at `a` is the old one, at `b` the new one.
            let (mut a, mut b) = (low, high);
            while b - a > 1 {
                let mid = a + (b - a) / 2;
                if offset_at(mid) == Some(low_offset) {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            if let Some(change) = DateTime::from_timestamp(b, 0) {
                f(change);
            }
        }
        (low, low_offset) = (high, high_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::LocalTime;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a valid instant")
    }

    fn window(days: &[Weekday], start: (u32, u32), end: (u32, u32)) -> Window {
        Window {
            days: days.to_vec(),
            start: LocalTime::hm(start.0, start.1).expect("a valid time"),
            end: LocalTime::hm(end.0, end.1).expect("a valid time"),
            tz: chrono_tz::Europe::Berlin,
        }
    }

    #[test]
    fn berlin_changes_offset_at_one_utc_on_the_last_sunday_of_march() {
        let mut changes = Vec::new();
        each_offset_change(chrono_tz::Europe::Berlin, at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"), |x| {
            changes.push(x)
        });
        assert_eq!(changes, vec![at("2026-03-29T01:00:00Z")]);
    }

    #[test]
    fn instants_at_the_ends_of_time_do_not_panic() {
        let all = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
        let w = window(&all, (22, 0), (2, 0));
        assert_eq!(next_in(&w, DateTime::<Utc>::MAX_UTC), None);
        for t in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            let _ = contains(&w, t);
            let _ = next_in(&w, t);
        }
    }
}
