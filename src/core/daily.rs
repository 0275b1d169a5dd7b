//! The last few local days, one total per day: what the `/ud` chart draws.
//!
//! Voice time is cut at each local midnight in the timezone (DST-aware: a
//! spring-forward day has 23 hours, a fall-back day 25), and each piece is
//! worth [`whole_secs`] of its ends, so the pieces of a stretch add up to the
//! stretch's whole seconds (ARCHITECTURE.md, invariant 2). Messages come from
//! the per-day counts, already bucketed by local day when they were counted.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::leaderboard::split_by_day;
use super::periods::{local_midnight, Start};
use super::stats::StoredMember;
use super::tracker::Pending;
use super::{whole_secs, Millis};

/// One local day's totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayTotals {
    /// The local day.
    pub date: NaiveDate,
    pub cam_on_secs: i64,
    pub cam_off_secs: i64,
    pub messages: i64,
}

impl DayTotals {
    #[must_use]
    pub fn voice_secs(&self) -> i64 {
        self.cam_on_secs + self.cam_off_secs
    }
}

/// The local day containing `now` in `tz`.
#[must_use]
pub fn today(now: Millis, tz: Tz) -> NaiveDate {
    use chrono::TimeZone as _;
    tz.timestamp_millis_opt(now)
        .single()
        .map_or_else(NaiveDate::default, |t| t.date_naive())
}

/// Where the window of the last `days` local days (today included) begins:
/// what a query must fetch (segments ending after `at`, message days from
/// `day`).
#[must_use]
pub fn window_start(now: Millis, tz: Tz, days: usize) -> Start {
    let back = i64::try_from(days.saturating_sub(1)).unwrap_or(i64::MAX / 2);
    let first = today(now, tz) - Duration::days(back.min(100_000));
    Start {
        at: local_midnight(first, tz),
        day: first.format("%Y-%m-%d").to_string(),
    }
}

/// The last `days` local days in `tz`, oldest first and today last, from the
/// stored segments and message days plus the session in progress.
#[must_use]
pub fn daily(
    stored: &StoredMember,
    pending: Option<Pending>,
    now: Millis,
    tz: Tz,
    days: usize,
) -> Vec<DayTotals> {
    if days == 0 {
        return Vec::new();
    }
    let last = today(now, tz);
    let back = i64::try_from(days - 1).unwrap_or(i64::MAX / 2).min(100_000);
    let mut out: Vec<DayTotals> = (0..=back)
        .map(|i| DayTotals {
            date: last - Duration::days(back - i),
            cam_on_secs: 0,
            cam_off_secs: 0,
            messages: 0,
        })
        .collect();
    // bounds[i]..bounds[i + 1] is day i; the last bound is tomorrow's midnight.
    let bounds: Vec<Millis> = out
        .iter()
        .map(|d| d.date)
        .chain(std::iter::once(last + Duration::days(1)))
        .map(|d| local_midnight(d, tz))
        .collect();
    let spans = stored
        .segments
        .iter()
        .map(|s| (s.camera, s.start, s.end))
        .chain(pending.map(|p| (p.camera, p.from, p.to)));
    for (camera, start, end) in spans {
        for (day, w) in out.iter_mut().zip(bounds.windows(2)) {
            let (a, b) = (start.max(w[0]), end.min(w[1]));
            if b > a {
                let secs = whole_secs(a, b);
                if camera {
                    day.cam_on_secs += secs;
                } else {
                    day.cam_off_secs += secs;
                }
            }
        }
    }
    for (day, n) in &stored.days {
        if let Ok(date) = NaiveDate::parse_from_str(day, "%Y-%m-%d") {
            if let Some(d) = out.iter_mut().find(|d| d.date == date) {
                d.messages += n;
            }
        }
    }
    out
}

/// Voice seconds per local day over the whole history given (the stored
/// segments plus the session in progress), sorted by date, one entry per day
/// with voice time: what streaks are computed from. Each stretch is cut at
/// the local midnights it crosses, as in [`daily`]; the work is linear in
/// the segments plus the days they span.
#[must_use]
pub fn voice_by_day(
    stored: &StoredMember,
    pending: Option<Pending>,
    tz: Tz,
) -> Vec<(NaiveDate, i64)> {
    let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let spans = stored
        .segments
        .iter()
        .map(|s| (s.start, s.end))
        .chain(pending.map(|p| (p.from, p.to)));
    for (start, end) in spans {
        for (day, secs) in split_by_day(start, end, tz) {
            *by_day.entry(day).or_default() += secs;
        }
    }
    by_day.into_iter().collect()
}

#[cfg(test)]
mod tests;
