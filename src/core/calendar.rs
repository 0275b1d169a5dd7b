//! The calendar, in one place: local days in a timezone, where today, this
//! week (Monday) and this month begin, the keys that name a day, a week and a
//! month, and **the cut**: a voice credit `[from, to)` cut at the local
//! midnights it crosses.
//!
//! The zone is always a parameter (a credit's zone is chosen when its op is
//! made, per guild once servers have their own zone), never read from
//! configuration here.
//!
//! - **The cut** ([`split_by_day`]) is DST-aware: a spring-forward day has 23
//!   hours, a fall-back day 25, a midnight that does not exist starts at the
//!   first instant that does. Each piece is worth [`whole_secs`] of its ends,
//!   so the pieces add up to the credit's whole seconds (ARCHITECTURE.md,
//!   invariant 2). It is made once, when the op is made (`Op::effect`), and
//!   carried in the op: the rollups and the segment's per-day seconds come
//!   from the op's pieces, so a replay under another `TIMEZONE` or tzdata
//!   lands on the same days, and every reader sums the same pieces.
//! - **Keys.** Each local day belongs to one day, one week (starting Monday)
//!   and one month: `2026-11-30`, `w2026-11-30`, `m2026-11`. They are pure
//!   functions of the date, so the day keys an op carries imply its week and
//!   month keys.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

use super::{whole_secs, Millis};

/// Voice seconds per local day, oldest first: a credit (or a stretch) cut at
/// local midnights.
pub type DaySecs = Vec<(NaiveDate, i64)>;

/// Where today, this week (Monday) and this month begin, in a timezone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Periods {
    pub today: Start,
    pub week: Start,
    pub month: Start,
    /// The zone they are in (what the session in progress, and stored time
    /// from before the cut was carried, are cut in).
    pub tz: Tz,
}

/// The first instant and the first local day of a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub at: Millis,
    pub day: String,
}

/// How much earlier than a period's start (in one zone) stored time keyed to
/// that period (cut in another zone) can lie: two zones' midnights of the
/// same date are at most 26 hours apart. Readers fetch segments from
/// `start - ZONE_MARGIN` and keep the pieces by key.
pub const ZONE_MARGIN: Millis = 2 * 86_400_000;

impl Periods {
    /// The periods containing `now` in `tz`.
    #[must_use]
    pub fn at(now: Millis, tz: Tz) -> Periods {
        let today = today(now, tz);
        let week = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let month = today.with_day(1).unwrap_or(today);
        let start = |d: NaiveDate| Start {
            at: local_midnight(d, tz),
            day: day_key(d),
        };
        Periods {
            today: start(today),
            week: start(week),
            month: start(month),
            tz,
        }
    }

    /// The local day `now` falls on.
    #[must_use]
    pub fn date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.today.day, "%Y-%m-%d").unwrap_or_default()
    }

    /// Which of today, this week and this month the local day `date` is in
    /// (by key: a day keyed in another zone counts where its key says).
    #[must_use]
    pub fn contain(&self, date: NaiveDate) -> [bool; 3] {
        let today = self.date();
        [
            date == today,
            week_key(date) == week_key(today),
            month_key(date) == month_key(today),
        ]
    }

    /// The earliest of the three starts (what a query needs to fetch).
    #[must_use]
    pub fn earliest(&self) -> &Start {
        if self.week.at < self.month.at {
            &self.week
        } else {
            &self.month
        }
    }
}

/// The local day containing `now` in `tz`.
#[must_use]
pub fn today(now: Millis, tz: Tz) -> NaiveDate {
    tz.timestamp_millis_opt(now)
        .single()
        .map_or_else(NaiveDate::default, |t| t.date_naive())
}

/// `YYYY-MM-DD`: a day's rollup (the `member_days` day).
#[must_use]
pub fn day_key(date: NaiveDate) -> String {
    keyed("", date, true)
}

/// `wYYYY-MM-DD` of the week's Monday.
#[must_use]
pub fn week_key(date: NaiveDate) -> String {
    let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
    keyed("w", monday, true)
}

/// `mYYYY-MM`.
#[must_use]
pub fn month_key(date: NaiveDate) -> String {
    keyed("m", date, false)
}

/// `prefix` + `YYYY-MM[-DD]`, what chrono's `%Y-%m-%d` writes, without its
/// format parser (a flush of 100,000 credits makes 300,000 keys). Years
/// outside 0..=9999 go through chrono (it signs them).
fn keyed(prefix: &str, date: NaiveDate, with_day: bool) -> String {
    let Ok(year @ 0..=9999) = u32::try_from(date.year()) else {
        let format = if with_day { "%Y-%m-%d" } else { "%Y-%m" };
        return format!("{prefix}{}", date.format(format));
    };
    let mut key = String::with_capacity(prefix.len() + 10);
    key.push_str(prefix);
    let digit = |n: u32| char::from(b'0' + u8::try_from(n % 10).unwrap_or(0));
    for n in [year / 1000, year / 100, year / 10, year] {
        key.push(digit(n));
    }
    let parts = [date.month(), date.day()];
    for n in &parts[..if with_day { 2 } else { 1 }] {
        key.push('-');
        key.push(digit(n / 10));
        key.push(digit(*n));
    }
    key
}

/// The date of a day key `YYYY-MM-DD` (a message's day bucket); `None` if it
/// is not a date.
#[must_use]
pub fn parse_day(day: &str) -> Option<NaiveDate> {
    // The keys `day_key` writes, without chrono's format parser; anything
    // else as chrono reads it.
    let b = day.as_bytes();
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0_u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) {
            return i32::try_from(y)
                .ok()
                .and_then(|y| NaiveDate::from_ymd_opt(y, m, d));
        }
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// The week and month keys of a day given as `YYYY-MM-DD` (a message's day
/// bucket); `None` if it is not a date.
#[must_use]
pub fn period_keys_of_day(day: &str) -> Option<(String, String)> {
    let date = parse_day(day)?;
    Some((week_key(date), month_key(date)))
}

/// The cut: `[from, to)` cut at the local midnights of `tz`, whole seconds
/// per local day, oldest first, days with 0 seconds left out. The pieces add
/// up to `whole_secs(from, to)`.
#[must_use]
pub fn split_by_day(from: Millis, to: Millis, tz: Tz) -> DaySecs {
    let mut out = Vec::new();
    let mut start = from;
    let mut day = today(from, tz);
    while start < to {
        let next = local_midnight(day + Duration::days(1), tz);
        // A midnight that does not move forward (an unrepresentable date)
        // would loop forever: the rest goes to this day.
        let end = if next <= start { to } else { to.min(next) };
        let secs = whole_secs(start, end);
        if secs > 0 {
            out.push((day, secs));
        }
        start = end;
        day += Duration::days(1);
    }
    out
}

/// Adds `more` into `pieces` (both sorted by day), keeping them sorted: two
/// credits of one segment folded into one op.
pub fn merge_days(pieces: &mut DaySecs, more: &[(NaiveDate, i64)]) {
    for &(day, secs) in more {
        match pieces.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => pieces[i].1 += secs,
            Err(i) => pieces.insert(i, (day, secs)),
        }
    }
}

/// Discord's epoch (2015-01-01T00:00:00Z): a snowflake's top 42 bits are
/// the milliseconds since it.
pub const DISCORD_EPOCH: Millis = 1_420_070_400_000;

/// How late a message can be processed and still count on the day it was
/// sent (a gateway `RESUME` replays what was missed; older is not a replay
/// but a clock that is off).
pub const LATEST_REPLAY: Millis = 86_400_000;

/// When a message was sent, from its snowflake's time `sent` (Discord's
/// clock), seen at `now`: the snowflake's time, never after `now` (a clock
/// behind Discord's) nor more than [`LATEST_REPLAY`] before it. A message
/// sent before midnight and processed after (a `RESUME` replay) lands on the
/// day it was sent.
#[must_use]
pub fn sent_at(sent: Millis, now: Millis) -> Millis {
    sent.clamp(now.saturating_sub(LATEST_REPLAY), now)
}

/// The time of a snowflake (milliseconds since the Unix epoch).
#[must_use]
pub fn snowflake_millis(id: u64) -> Millis {
    Millis::try_from(id >> 22).unwrap_or(0) + DISCORD_EPOCH
}

/// `YYYY-MM-DD` of the instant `at` in `tz`.
#[must_use]
pub fn local_day(at: Millis, tz: Tz) -> String {
    tz.timestamp_millis_opt(at)
        .single()
        .map_or_else(|| "1970-01-01".to_owned(), |t| day_key(t.date_naive()))
}

/// First instant of local day `d` (a day whose midnight is skipped by a DST
/// change starts at the first instant that exists).
#[must_use]
pub fn local_midnight(d: NaiveDate, tz: Tz) -> Millis {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..=4)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map_or(0, |t| t.timestamp_millis())
}

/// An RFC 3339 instant as [`Millis`] (the core's tests write times this way).
#[cfg(test)]
pub(super) fn ms(rfc3339: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

#[cfg(test)]
mod tests;
