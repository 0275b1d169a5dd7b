//! Study streaks: runs of consecutive local days with at least a minimum of
//! voice time (`STREAK_MIN_MINUTES`).
//!
//! The **current** streak is the run that ends today, or, while today has not
//! reached the minimum yet, the run that ends yesterday: a streak is not
//! broken before the day is over, so the morning after a good day still shows
//! it. It is 0 once a whole local day without the minimum has passed. The
//! **longest** streak is the longest run in the history given (today counts
//! once it reaches the minimum).

use chrono::{Duration, NaiveDate};

/// A member's current and longest streaks, in days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Streaks {
    pub current_days: u32,
    pub longest_days: u32,
}

/// The streaks from per-local-day voice seconds (`days`: sorted by date,
/// oldest first, one entry per date; days missing from it had no voice time)
/// as of the local day `today`. A day counts when it has at least `min_secs`;
/// days after `today` (a clock behind the data) are ignored.
#[must_use]
pub fn streaks(days: &[(NaiveDate, i64)], today: NaiveDate, min_secs: i64) -> Streaks {
    let mut longest = 0u32;
    let mut run = 0u32;
    let mut last: Option<NaiveDate> = None;
    for &(date, secs) in days {
        if date > today || secs < min_secs.max(1) {
            continue;
        }
        run = match last {
            Some(prev) if prev == date => run,
            Some(prev) if prev + Duration::days(1) == date => run + 1,
            _ => 1,
        };
        longest = longest.max(run);
        last = Some(date);
    }
    let current = match last {
        Some(d) if d == today || d + Duration::days(1) == today => run,
        _ => 0,
    };
    Streaks {
        current_days: current,
        longest_days: longest,
    }
}

#[cfg(test)]
mod tests;
