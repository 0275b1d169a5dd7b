//! A member's numbers: the read model the store fills for `/ud` and `stats`
//! ([`StoredMember`]), and the pure sums per calendar period over it.

use chrono_tz::Tz;

use super::calendar::{merge_days, parse_day, split_by_day, DaySecs, Periods};
use super::tracker::Pending;
use super::{whole_secs, Millis};

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

/// A member's stored numbers and recent history, as read for `/ud`. The
/// store fills it; the core only reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredMember {
    pub cam_on_secs: i64,
    pub cam_off_secs: i64,
    pub messages: i64,
    /// Segments ending after the requested instant.
    pub segments: Vec<StoredSegment>,
    /// Message counts per local day, on or after the requested day.
    pub days: Vec<(String, i64)>,
}

/// One stretch of voice time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSegment {
    pub camera: bool,
    pub start: Millis,
    pub end: Millis,
    /// The whole seconds stored for it (`secs`), if the store has them.
    pub secs: Option<i64>,
    /// Its seconds per local day as its ops carried them (the cut made when
    /// each op was made); empty for a segment credited before ops carried it.
    pub days: DaySecs,
}

impl StoredSegment {
    /// A segment without stored pieces or seconds (from before either).
    #[must_use]
    pub fn span(camera: bool, start: Millis, end: Millis) -> StoredSegment {
        StoredSegment {
            camera,
            start,
            end,
            ..StoredSegment::default()
        }
    }

    /// Its seconds per local day: the pieces its ops carried, so every reader
    /// sees the days the rollups were given whatever the zone now. Time its
    /// pieces do not cover was credited before ops carried them, at the
    /// start of the segment: that part (the whole segment, for one without
    /// pieces) is cut in `tz`, the zone of the reader.
    #[must_use]
    pub fn by_day(&self, tz: Tz) -> DaySecs {
        if self.days.is_empty() {
            return split_by_day(self.start, self.end, tz);
        }
        let carried: i64 = self.days.iter().map(|(_, s)| s).sum();
        let rest = self.secs.unwrap_or(carried) - carried;
        let mut out = if rest > 0 {
            split_by_day(self.start, self.start.saturating_add(rest * 1000), tz)
        } else {
            Vec::new()
        };
        merge_days(&mut out, &self.days);
        out
    }
}

/// Voice seconds per local day of the session in progress, cut in `tz` (the
/// zone its op will be cut in when it is credited).
#[must_use]
pub fn pending_by_day(pending: &Pending, tz: Tz) -> DaySecs {
    split_by_day(pending.from, pending.to, tz)
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
        .map(|s| (s.camera, s.by_day(periods.tz)))
        .chain(pending.map(|p| (p.camera, pending_by_day(&p, periods.tz))));
    for (camera, pieces) in spans {
        for (date, secs) in pieces {
            let inside = periods.contain(date);
            for (totals, yes) in [
                &mut stats.today,
                &mut stats.this_week,
                &mut stats.this_month,
            ]
            .into_iter()
            .zip(inside)
            {
                if yes {
                    totals.add_voice(camera, secs);
                }
            }
        }
    }
    if let Some(p) = pending {
        stats.all_time.add_voice(p.camera, whole_secs(p.from, p.to));
    }
    for (day, n) in &stored.days {
        let Some(date) = parse_day(day) else { continue };
        let inside = periods.contain(date);
        for (totals, yes) in [
            &mut stats.today,
            &mut stats.this_week,
            &mut stats.this_month,
        ]
        .into_iter()
        .zip(inside)
        {
            if yes {
                totals.messages += n;
            }
        }
    }
    stats
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::calendar::ms;

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
                StoredSegment::span(true, ms("2026-11-25T23:30:00Z"), ms("2026-11-26T00:30:00Z")),
                // Last week: only in the month.
                StoredSegment::span(
                    false,
                    ms("2026-11-20T10:00:00Z"),
                    ms("2026-11-20T10:01:40Z"),
                ),
            ],
            days: vec![("2026-11-20".into(), 4), ("2026-11-26".into(), 5)],
        };
        let pending = Pending {
            channel: 1,
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
}
