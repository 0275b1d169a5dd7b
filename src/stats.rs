//! Pure computations behind `/ud` and `stats`: calendar periods in a
//! timezone, per-period sums from stored segments and day counts, and the
//! rendered answer.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::store::StoredMember;
use crate::tracker::{whole_secs, Millis, Pending};

/// Voice seconds by camera state and messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub cam_on_secs: i64,
    pub cam_off_secs: i64,
    pub messages: i64,
}

impl Totals {
    #[must_use]
    pub fn voice_secs(&self) -> i64 {
        self.cam_on_secs + self.cam_off_secs
    }

    fn add_voice(&mut self, camera: bool, secs: i64) {
        if camera {
            self.cam_on_secs += secs;
        } else {
            self.cam_off_secs += secs;
        }
    }
}

/// A member's numbers: all time and the calendar periods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub all_time: Totals,
    pub today: Totals,
    pub this_week: Totals,
    pub this_month: Totals,
}

impl Stats {
    /// Whether there is nothing at all to show.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.all_time == Totals::default()
    }
}

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

/// First instant of local day `d` (a day whose midnight is skipped by a DST
/// change starts at the first instant that exists).
fn local_midnight(d: NaiveDate, tz: Tz) -> Millis {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..=4)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map_or(0, |t| t.timestamp_millis())
}

/// Combines stored numbers with the session in progress into [`Stats`].
#[must_use]
pub fn compute(stored: &StoredMember, pending: Option<Pending>, periods: &Periods) -> Stats {
    let mut stats = Stats {
        all_time: Totals {
            cam_on_secs: stored.cam_on_secs,
            cam_off_secs: stored.cam_off_secs,
            messages: stored.messages,
        },
        ..Stats::default()
    };
    let spans = stored
        .segments
        .iter()
        .map(|s| (s.camera, s.start, s.end))
        .chain(pending.map(|p| (p.camera, p.from, p.to)));
    for (camera, start, end) in spans {
        for (totals, from) in [
            (&mut stats.today, periods.today.at),
            (&mut stats.this_week, periods.week.at),
            (&mut stats.this_month, periods.month.at),
        ] {
            let s = start.max(from);
            if end > s {
                totals.add_voice(camera, whole_secs(s, end));
            }
        }
    }
    if let Some(p) = pending {
        stats.all_time.add_voice(p.camera, whole_secs(p.from, p.to));
    }
    for (day, n) in &stored.days {
        for (totals, from) in [
            (&mut stats.today, &periods.today.day),
            (&mut stats.this_week, &periods.week.day),
            (&mut stats.this_month, &periods.month.day),
        ] {
            if day >= from {
                totals.messages += n;
            }
        }
    }
    stats
}

/// `2h 5m 13s`; leading zero units are left out, `0s` for nothing.
#[must_use]
pub fn format_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// How current the stored part of an answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Everything counted so far is in MongoDB.
    Current,
    /// Some increments are still on their way to MongoDB.
    MayLag,
    /// MongoDB could not be read: only the session in progress is shown.
    Unavailable,
}

/// The `/ud` answer for the member called `name`.
#[must_use]
pub fn render_ud(name: &str, stats: &Stats, freshness: Freshness) -> String {
    let lag = match freshness {
        Freshness::Current => "",
        Freshness::MayLag => {
            "\n-# ⚠️ The database is catching up; these numbers may lag a little behind. Nothing is lost."
        }
        Freshness::Unavailable => {
            "\n-# ⚠️ The database is unreachable right now, so this shows only your session in progress. Nothing is lost; try again later."
        }
    };
    if stats.is_empty() {
        return format!(
            "**{name}** has no study time yet. Join a voice channel or send a message and it starts counting.{lag}"
        );
    }
    let a = &stats.all_time;
    let period = |label: &str, t: &Totals| {
        format!(
            "**{label}:** {} voice ({} cam on, {} cam off) · {} messages",
            format_duration(t.voice_secs()),
            format_duration(t.cam_on_secs),
            format_duration(t.cam_off_secs),
            t.messages
        )
    };
    format!(
        "📊 **Study stats for {name}**\n\
         📷 Camera on: **{}**\n\
         🎧 Camera off: **{}**\n\
         ⏱️ Total voice: **{}**\n\
         💬 Messages: **{}**\n\n\
         {}\n{}\n{}{lag}",
        format_duration(a.cam_on_secs),
        format_duration(a.cam_off_secs),
        format_duration(a.voice_secs()),
        a.messages,
        period("Today", &stats.today),
        period("This week", &stats.this_week),
        period("This month", &stats.this_month),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredSegment;

    fn ms(rfc3339: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn formats_durations_without_truncation() {
        assert_eq!(format_duration(7513), "2h 5m 13s");
        assert_eq!(format_duration(90), "1m 30s");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(3600), "1h 0m 0s");
    }

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
    fn computes_periods_from_segments_days_and_the_session_in_progress() {
        let now = ms("2026-11-26T12:00:00Z"); // Thursday
        let periods = Periods::at(now, chrono_tz::UTC);
        let stored = StoredMember {
            cam_on_secs: 10_000,
            cam_off_secs: 500,
            messages: 9,
            segments: vec![
                // Crosses midnight: 30 min yesterday, 30 min today.
                StoredSegment {
                    camera: true,
                    start: ms("2026-11-25T23:30:00Z"),
                    end: ms("2026-11-26T00:30:00Z"),
                },
                // Last week: only in the month.
                StoredSegment {
                    camera: false,
                    start: ms("2026-11-20T10:00:00Z"),
                    end: ms("2026-11-20T10:01:40Z"),
                },
            ],
            days: vec![("2026-11-20".into(), 4), ("2026-11-26".into(), 5)],
        };
        let pending = Pending {
            camera: false,
            from: ms("2026-11-26T11:59:00Z"),
            to: now,
        };
        let s = compute(&stored, Some(pending), &periods);
        assert_eq!(s.all_time.cam_on_secs, 10_000);
        assert_eq!(s.all_time.cam_off_secs, 560);
        assert_eq!(s.today.cam_on_secs, 1800);
        assert_eq!(s.today.cam_off_secs, 60);
        assert_eq!(s.today.messages, 5);
        assert_eq!(s.this_week.cam_on_secs, 3600);
        assert_eq!(s.this_month.cam_off_secs, 160);
        assert_eq!(s.this_month.messages, 9);
    }

    #[test]
    fn renders_numbers_and_a_friendly_empty_answer() {
        let empty = render_ud("Ada", &Stats::default(), Freshness::Current);
        assert!(empty.contains("no study time yet"), "{empty}");
        let s = Stats {
            all_time: Totals {
                cam_on_secs: 7513,
                cam_off_secs: 90,
                messages: 3,
            },
            ..Stats::default()
        };
        let text = render_ud("Ada", &s, Freshness::MayLag);
        assert!(text.contains("Camera on: **2h 5m 13s**"), "{text}");
        assert!(text.contains("Camera off: **1m 30s**"), "{text}");
        assert!(text.contains("Total voice: **2h 6m 43s**"), "{text}");
        assert!(text.contains("Messages: **3**"), "{text}");
        assert!(text.contains("may lag"), "{text}");
    }
}
