//! The last few local days, one total per day: what the `/ud` chart draws.
//!
//! Voice time goes to the local days its ops were cut into when they were
//! made (`StoredSegment::by_day`: the segment's carried pieces, the same the
//! day rollups got, so the chart, the streaks, `/ud` and the leaderboards
//! agree after a `TIMEZONE` change); the session in progress, and time
//! credited before ops carried their days, are cut in the zone given, by
//! [`super::calendar::split_by_day`]. Messages come from the per-day counts,
//! bucketed by the local day they were sent on.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::calendar::{local_midnight, parse_day, today, Start};
use super::stats::{pending_by_day, StoredMember};
use super::tracker::Pending;
use super::Millis;

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

/// Where the window of the last `days` local days (today included) begins:
/// what a query must fetch (segments ending after `at` less
/// [`super::calendar::ZONE_MARGIN`], message days from `day`).
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
    let first = out.first().map_or(last, |d| d.date);
    let spans = stored
        .segments
        .iter()
        .map(|s| (s.camera, s.by_day(tz)))
        .chain(pending.map(|p| (p.camera, pending_by_day(&p, tz))));
    for (camera, pieces) in spans {
        for (date, secs) in pieces {
            if date < first || date > last {
                continue;
            }
            let day = &mut out[usize::try_from((date - first).num_days()).unwrap_or(0)];
            if camera {
                day.cam_on_secs += secs;
            } else {
                day.cam_off_secs += secs;
            }
        }
    }
    for (day, n) in &stored.days {
        if let Some(date) = parse_day(day) {
            if let Some(d) = out.iter_mut().find(|d| d.date == date) {
                d.messages += n;
            }
        }
    }
    out
}

/// Voice seconds per local day over the whole history given (the stored
/// segments plus the session in progress), sorted by date, one entry per day
/// with voice time: what streaks are computed from. The days are those of
/// [`daily`]; the work is linear in the segments plus the days they span.
#[must_use]
pub fn voice_by_day(
    stored: &StoredMember,
    pending: Option<Pending>,
    tz: Tz,
) -> Vec<(NaiveDate, i64)> {
    let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let pieces = stored
        .segments
        .iter()
        .map(|s| s.by_day(tz))
        .chain(pending.map(|p| pending_by_day(&p, tz)));
    for (day, secs) in pieces.flatten() {
        *by_day.entry(day).or_default() += secs;
    }
    by_day.into_iter().collect()
}

#[cfg(test)]
mod tests;
