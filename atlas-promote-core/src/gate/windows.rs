//! G6: the deployment windows, blackouts and freezes of the target stage.
//!
//! A window is a set of instants, defined by the wall clock in its time zone:
//! an instant is inside when its wall-clock time falls in `[start, end)` on
//! one of the window's days, or, for a window past midnight (`end < start`),
//! in `[start, 24:00)` on one of its days or `[00:00, end)` on the day after
//! one. A wall-clock time skipped by a DST change never occurs; a repeated
//! one occurs twice. A window with `start == end` is empty: it never opens.
//! A blackout is the same kind of set, of instants when entering is
//! forbidden; it wins over every window.
//!
//! The next opening is found exactly: the first instant of a window is either
//! one at which the wall clock reads `start` on a listed day (zero, one or
//! two instants per day, by `from_local_datetime`), or one at which the zone
//! changes its offset and the wall clock jumps into the window (to 03:00 on
//! the spring-forward day of a 02:30–04:00 window, say). The end of a
//! blackout is found the same way, from the instants the wall clock reads
//! `end` and the offset changes. The zone's offset changes are found by
//! sampling its offset every six hours and bisecting to the second; no zone
//! changes its offset twice within six hours.
//!
//! Every search looks [`HORIZON_DAYS`] ahead, so a decision costs a bounded
//! time whatever the windows and blackouts say: a stage whose every window
//! lies inside blackouts is found never to open within the horizon, and a
//! wait for it is a block.

use chrono::{
    DateTime, Datelike, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike,
    Utc,
};
use chrono_tz::Tz;

use crate::decision::Blocker;
use crate::policy::{Blackout, Freeze, LocalTime, Stage, Weekday, Window};

/// How far ahead a window's next opening, or a blackout's end, is looked
/// for. A weekly window opens every week; a DST change can skip one week's
/// opening, not three.
const HORIZON_DAYS: i64 = 22;

/// The spacing of offset samples when looking for a zone's offset changes.
const OFFSET_SAMPLE_SECONDS: i64 = 6 * 60 * 60;

/// A weekly span of wall-clock time: a window or a blackout.
#[derive(Debug, Clone, Copy)]
struct Weekly<'a> {
    days: &'a [Weekday],
    start: LocalTime,
    end: LocalTime,
    tz: Tz,
}

impl<'a> From<&'a Window> for Weekly<'a> {
    fn from(w: &'a Window) -> Self {
        Self { days: &w.days, start: w.start, end: w.end, tz: w.tz }
    }
}

impl<'a> From<&'a Blackout> for Weekly<'a> {
    fn from(b: &'a Blackout) -> Self {
        Self { days: &b.days, start: b.start, end: b.end, tz: b.tz }
    }
}

/// Apply G6: block when `now` is outside every window of `stage` (if it has
/// windows), inside one of its blackouts, or inside one of its freezes.
pub(super) fn evaluate(stage: &Stage, now: DateTime<Utc>, blockers: &mut Vec<Blocker>) {
    if !stage.windows.is_empty() && !stage.windows.iter().any(|w| contains(w.into(), now)) {
        blockers.push(Blocker::WindowClosed { stage: stage.name.clone(), opens_at: next_opening(&stage.windows, now) });
    }
    if let Some(blackout) = stage.blackouts.iter().find(|b| contains((*b).into(), now)) {
        blockers.push(Blocker::Blackout {
            stage: stage.name.clone(),
            blackout: blackout.to_string(),
            reason: blackout.reason.clone(),
            until: first_outside(&stage.blackouts, now),
        });
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
/// `stage` (when it has windows), outside all of its blackouts and outside
/// all of its freezes; `None` if there is none, e.g. a freeze without end
/// begins first, or no window is ever open outside the blackouts.
pub(super) fn first_open(stage: &Stage, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    search(&stage.windows, &stage.blackouts, &stage.freezes, from)
}

/// Whether a candidate can ever enter `stage` by its windows and
/// blackouts (freezes aside): some instant within [`HORIZON_DAYS`] of
/// `from` is inside a window (when it has windows) and outside every
/// blackout.
pub(crate) fn opens_within_horizon(stage: &Stage, from: DateTime<Utc>) -> bool {
    search(&stage.windows, &stage.blackouts, &[], from).is_some()
}

/// [`first_open`] of the given windows, blackouts and freezes.
///
/// The freezes are swept once in the order they begin, whatever the order
/// they are listed in: `t` only moves forward, so a freeze that began at or
/// before `t` never needs looking at again, and `t` is inside a freeze iff
/// the latest end among those begun is after it.
///
/// Windows and blackouts repeat weekly, so a search among them that finds
/// nothing within [`HORIZON_DAYS`] finds nothing ever. Whether they open at
/// all is asked once, before the freezes are swept: otherwise each freeze's
/// end would begin a fruitless search of its own.
fn search(
    windows: &[Window],
    blackouts: &[Blackout],
    freezes: &[Freeze],
    from: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !windows.is_empty() && !blackouts.is_empty() && !freezes.is_empty() {
        search(windows, blackouts, &[], from)?;
    }
    let mut freezes: Vec<&Freeze> = freezes.iter().collect();
    freezes.sort_unstable_by_key(|f| f.from);
    let mut begun = freezes.iter().peekable();
    // The latest end of the freezes begun so far.
    let mut frozen_until = DateTime::<Utc>::MIN_UTC;
    let mut t = from;
    // Where the search among windows and blackouts began.
    let mut searched_from = from;
    loop {
        while let Some(freeze) = begun.next_if(|f| f.from <= t) {
            // A freeze without end that has begun covers every later instant.
            frozen_until = frozen_until.max(freeze.until?);
        }
        if t < frozen_until {
            t = frozen_until;
            searched_from = t;
            continue;
        }
        if t > searched_from.checked_add_signed(TimeDelta::try_days(HORIZON_DAYS)?)? {
            return None;
        }
        if !windows.is_empty() && !windows.iter().any(|w| contains(w.into(), t)) {
            let opens = next_opening(windows, t)?;
            if opens > t {
                t = opens;
                continue;
            }
        }
        if blackouts.iter().any(|b| contains(b.into(), t)) {
            t = first_outside(blackouts, t)?;
            continue;
        }
        return Some(t);
    }
}

/// Whether `freeze` covers `t`: `from <= t < until`.
fn covers(freeze: &Freeze, t: DateTime<Utc>) -> bool {
    freeze.from <= t && freeze.until.is_none_or(|until| t < until)
}

/// Whether the instant `t` lies in the weekly span `w`.
fn contains(w: Weekly<'_>, t: DateTime<Utc>) -> bool {
    let Some(local) = wall_clock(w.tz, t) else { return false };
    let time = local.num_seconds_from_midnight();
    let opens_on = |day: chrono::Weekday| w.days.contains(&Weekday::from(day));
    let (start, end) = (w.start.minutes_from_midnight() * 60, w.end.minutes_from_midnight() * 60);
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
    windows.iter().filter_map(|w| next_in(w.into(), t)).min()
}

/// The earliest instant at or after `t` outside every one of `blackouts`;
/// `None` if the blackouts last beyond [`HORIZON_DAYS`] (they cover the
/// whole week).
fn first_outside(blackouts: &[Blackout], t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let horizon = t.checked_add_signed(TimeDelta::try_days(HORIZON_DAYS)?)?;
    let mut t = t;
    // Each step leaves the blackout `t` is in at one of its ends, so `t`
    // moves strictly forward, through at most a few ends a day.
    while let Some(blackout) = blackouts.iter().find(|b| contains((*b).into(), t)) {
        t = next_out(blackout.into(), t)?;
        if t >= horizon {
            return None;
        }
    }
    Some(t)
}

/// The instants in `tz` at which the wall clock reads `time` on `day`
/// (`24:00` is `00:00` of the next day): none, one, or two.
fn local_instants(tz: Tz, day: NaiveDate, time: LocalTime, mut f: impl FnMut(DateTime<Utc>)) {
    let Some(local) = day
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.checked_add_signed(TimeDelta::minutes(i64::from(time.minutes_from_midnight()))))
    else {
        return;
    };
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(x) => f(x.to_utc()),
        MappedLocalTime::Ambiguous(first, second) => {
            f(first.to_utc());
            f(second.to_utc());
        }
        MappedLocalTime::None => {}
    }
}

/// The local days to look at for an edge of `w` in `[t, t + horizon)`: from
/// the day before `t`'s local date, since a zone setting its clock back
/// over midnight repeats the end of the previous day.
fn days_ahead(w: Weekly<'_>, t: DateTime<Utc>) -> Option<impl Iterator<Item = NaiveDate>> {
    let first_day = wall_clock(w.tz, t)?.date().pred_opt()?;
    let days = usize::try_from(HORIZON_DAYS).unwrap_or(0) + 3;
    Some(first_day.iter_days().take(days))
}

/// The earliest instant at or after `t` inside `w`, looking [`HORIZON_DAYS`] ahead.
fn next_in(w: Weekly<'_>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if w.days.is_empty() || w.start == w.end {
        return None;
    }
    if contains(w, t) {
        return Some(t);
    }
    let horizon = t.checked_add_signed(TimeDelta::try_days(HORIZON_DAYS)?)?;
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |x: DateTime<Utc>| {
        if t <= x && x < horizon && best.is_none_or(|b| x < b) && contains(w, x) {
            best = Some(x);
        }
    };
    for day in days_ahead(w, t)? {
        if w.days.contains(&Weekday::from(day.weekday())) {
            local_instants(w.tz, day, w.start, &mut consider);
        }
    }
    each_offset_change(w.tz, t, horizon, consider);
    best
}

/// The earliest instant at or after `t` outside `w`, looking [`HORIZON_DAYS`] ahead.
///
/// The wall clock leaves `w` where it reads `end` (on any day: which day
/// ends a span past midnight depends on the day it began, and `contains`
/// tells), or where the zone changes its offset and the clock jumps out.
fn next_out(w: Weekly<'_>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !contains(w, t) {
        return Some(t);
    }
    let horizon = t.checked_add_signed(TimeDelta::try_days(HORIZON_DAYS)?)?;
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |x: DateTime<Utc>| {
        if t <= x && x < horizon && best.is_none_or(|b| x < b) && !contains(w, x) {
            best = Some(x);
        }
    };
    for day in days_ahead(w, t)? {
        local_instants(w.tz, day, w.end, &mut consider);
    }
    each_offset_change(w.tz, t, horizon, consider);
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
        assert_eq!(next_in((&w).into(), DateTime::<Utc>::MAX_UTC), None);
        for t in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            let _ = contains((&w).into(), t);
            let _ = next_in((&w).into(), t);
            let _ = next_out((&w).into(), t);
        }
    }
}
