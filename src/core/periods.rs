//! Calendar periods in a timezone: where today, this week (Monday) and this
//! month begin, and which local day an instant falls on.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

use super::Millis;

/// Where today, this week (Monday) and this month begin, in a timezone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Periods {
    pub today: Start,
    pub week: Start,
    pub month: Start,
}

/// The first instant and the first local day of a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub at: Millis,
    pub day: String,
}

impl Periods {
    /// The periods containing `now` in `tz`.
    #[must_use]
    pub fn at(now: Millis, tz: Tz) -> Periods {
        let today = tz
            .timestamp_millis_opt(now)
            .single()
            .map_or_else(NaiveDate::default, |t| t.date_naive());
        let week = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let month = today.with_day(1).unwrap_or(today);
        let start = |d: NaiveDate| Start {
            at: local_midnight(d, tz),
            day: d.format("%Y-%m-%d").to_string(),
        };
        Periods {
            today: start(today),
            week: start(week),
            month: start(month),
        }
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

/// `YYYY-MM-DD` of the instant `at` in `tz`.
#[must_use]
pub fn local_day(at: Millis, tz: Tz) -> String {
    tz.timestamp_millis_opt(at).single().map_or_else(
        || "1970-01-01".to_owned(),
        |t| t.format("%Y-%m-%d").to_string(),
    )
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
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_periods_in_the_timezone() {
        // Wednesday 2026-11-25 23:30 UTC is Thursday 05:00 in Kolkata.
        let now = ms("2026-11-25T23:30:00Z");
        let utc = Periods::at(now, chrono_tz::UTC);
        assert_eq!(utc.today.day, "2026-11-25");
        assert_eq!(utc.week.day, "2026-11-23");
        assert_eq!(utc.month.day, "2026-11-01");
        let ist = Periods::at(now, chrono_tz::Asia::Kolkata);
        assert_eq!(ist.today.day, "2026-11-26");
        assert_eq!(ist.today.at, ms("2026-11-25T18:30:00Z"));
        // A month that starts mid-week: the week reaches back into October.
        let p = Periods::at(ms("2026-11-02T12:00:00Z"), chrono_tz::UTC);
        assert_eq!(p.week.day, "2026-11-02");
        assert_eq!(p.earliest().day, "2026-11-01");
        let p = Periods::at(ms("2026-12-01T12:00:00Z"), chrono_tz::UTC);
        assert_eq!(p.earliest().day, "2026-11-30");
    }

    #[test]
    fn local_day_follows_the_timezone() {
        let at = ms("2026-11-25T23:30:00Z");
        assert_eq!(local_day(at, chrono_tz::UTC), "2026-11-25");
        assert_eq!(local_day(at, chrono_tz::Asia::Kolkata), "2026-11-26");
    }
}
