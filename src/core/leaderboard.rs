//! Leaderboards: which period a ranking reads, and how it reads. Which
//! rollup a credit lands in is the calendar's (the cut and the period keys
//! of [`super::calendar`]).
//!
//! - **Ranks.** Competition ranking: ties share a rank and the next rank
//!   skips (`1, 1, 3`); a member's rank is 1 + the number of members with a
//!   strictly greater value. Members with nothing are not ranked.
//! - **Paging.** [`PAGE_SIZE`] entries a page, pages numbered from 1.

use chrono::NaiveDate;
use chrono_tz::Tz;

mod board;

pub use board::Board;

use super::calendar::{day_key, month_key, today, week_key};
use super::stats::Totals;
use super::Millis;

/// Entries on one page of a leaderboard.
pub const PAGE_SIZE: u64 = 10;

/// The period a leaderboard ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Today,
    Week,
    Month,
    All,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Today, Period::Week, Period::Month, Period::All];

    /// The option's name: `today`, `week`, `month`, `all`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "week",
            Period::Month => "month",
            Period::All => "all",
        }
    }

    /// The period called `name` (as [`Period::name`] spells it).
    #[must_use]
    pub fn parse(name: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The key of this period's rollup containing the local day `date`;
    /// `None` for all time (no key: the member's totals).
    #[must_use]
    pub fn key(self, date: NaiveDate) -> Option<String> {
        match self {
            Period::Today => Some(day_key(date)),
            Period::Week => Some(week_key(date)),
            Period::Month => Some(month_key(date)),
            Period::All => None,
        }
    }

    /// The key of the period containing `now` in `tz`.
    #[must_use]
    pub fn key_at(self, now: Millis, tz: Tz) -> Option<String> {
        self.key(today(now, tz))
    }
}

/// What a leaderboard ranks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum By {
    /// Total voice time (camera on and off).
    Voice,
    /// Voice time with the camera on.
    Camera,
    Messages,
}

impl By {
    pub const ALL: [By; 3] = [By::Voice, By::Camera, By::Messages];

    /// The option's name: `voice`, `camera`, `messages`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            By::Voice => "voice",
            By::Camera => "camera",
            By::Messages => "messages",
        }
    }

    /// The criterion called `name` (as [`By::name`] spells it).
    #[must_use]
    pub fn parse(name: &str) -> Option<By> {
        By::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The value of `totals` this criterion ranks.
    #[must_use]
    pub fn value(self, totals: &Totals) -> i64 {
        match self {
            By::Voice => totals.voice_secs(),
            By::Camera => totals.cam_on_secs,
            By::Messages => totals.messages,
        }
    }
}

/// The keys of today, this week and this month at `now` in `tz` (where a
/// member's ranks per period are read).
#[must_use]
pub fn voice_rank_keys(now: Millis, tz: Tz) -> [String; 3] {
    let date = today(now, tz);
    [day_key(date), week_key(date), month_key(date)]
}

/// Ranks of a whole ranking's values (any order): 1 + the number of values
/// strictly greater; `None` for a value of 0 or less (not ranked).
#[must_use]
pub fn ranks(values: &[i64]) -> Vec<Option<u64>> {
    values
        .iter()
        .map(|v| (*v > 0).then(|| 1 + values.iter().filter(|w| *w > v).count() as u64))
        .collect()
}

/// The number of pages `ranked` members fill (at least 1).
#[must_use]
pub fn pages(ranked: u64) -> u64 {
    ranked.div_ceil(PAGE_SIZE).max(1)
}

/// Members to skip for `page` (numbered from 1; 0 counts as 1).
#[must_use]
pub fn offset(page: u64) -> u64 {
    page.max(1).saturating_sub(1).saturating_mul(PAGE_SIZE)
}

/// One ranked member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub rank: u64,
    pub user: u64,
    pub totals: Totals,
}

/// One page of a ranking, and the caller's own place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub period: Period,
    pub by: By,
    /// Numbered from 1.
    pub page: u64,
    /// Members ranked (with something in the period).
    pub ranked: u64,
    pub entries: Vec<Entry>,
    /// The caller's entry, if they have something in the period.
    pub caller: Option<Entry>,
}

impl Page {
    /// How many pages the whole ranking fills.
    #[must_use]
    pub fn pages(&self) -> u64 {
        pages(self.ranked)
    }
}

/// A member's rank by total voice in each period (`None`: nothing there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeriodRanks {
    pub today: Option<u64>,
    pub this_week: Option<u64>,
    pub this_month: Option<u64>,
    pub all_time: Option<u64>,
}

#[cfg(test)]
mod tests;
