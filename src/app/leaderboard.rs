//! Leaderboards for `/leaderboard` and the `/ud` card: a page of a ranking
//! and a member's ranks, read from the rollups the writer keeps (never by
//! summing segments). Ranks count what MongoDB holds: the sessions in
//! progress join at the next flush, for everyone alike.

use anyhow::Context as _;
use tracing::instrument;

use super::App;
use crate::core::leaderboard::{voice_rank_keys, By, Page, Period, PeriodRanks};
use crate::core::stats::Freshness;
use crate::core::{MemberKey, Millis};
use crate::store::{Store, StoreError};

/// How long `/leaderboard` (and each ◀ ▶ press) waits for MongoDB: Discord
/// wants an answer within 3 s. On a database that scans (FerretDB) a page of
/// 10,000 members takes about 1.3 s (BENCHMARKS.md).
pub const LEADERBOARD_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2_500);

impl App {
    /// Page `page` (from 1) of `guild`'s ranking in the `period` containing
    /// `now`, by `by`, with `caller`'s own entry.
    ///
    /// # Errors
    /// MongoDB could not be read within [`LEADERBOARD_READ_TIMEOUT`].
    pub async fn leaderboard(
        &self,
        guild: u64,
        period: Period,
        by: By,
        page: u64,
        caller: Option<u64>,
        now: Millis,
    ) -> anyhow::Result<Page> {
        let key = self.period_key(guild, period, now);
        self.leaderboard_of(guild, period, key.as_deref(), by, page, caller)
            .await
    }

    /// The key of the `period` containing `now` (`None` for all time): what
    /// `/leaderboard` decides once, when it is run, so that every press
    /// pages the same period even after a midnight.
    #[must_use]
    pub fn period_key(&self, guild: u64, period: Period, now: Millis) -> Option<String> {
        period.key_at(now, self.timezone_of(guild))
    }

    /// Page `page` (from 1) of `guild`'s ranking in the `period` named by
    /// `key` ([`App::period_key`]), by `by`, with `caller`'s own entry.
    ///
    /// # Errors
    /// MongoDB could not be read within [`LEADERBOARD_READ_TIMEOUT`].
    #[instrument(skip_all, fields(guild_id = guild, period = period.name(), key, by = by.name(), page))]
    pub async fn leaderboard_of(
        &self,
        guild: u64,
        period: Period,
        key: Option<&str>,
        by: By,
        page: u64,
        caller: Option<u64>,
    ) -> anyhow::Result<Page> {
        let read = self.store.leaderboard(guild, period, key, by, page, caller);
        tokio::time::timeout(LEADERBOARD_READ_TIMEOUT, read)
            .await
            .context("reading the leaderboard: no reply in time")?
            .context("reading the leaderboard")
    }

    /// `member`'s rank by total voice today, this week, this month and all
    /// time. Never fails: without MongoDB, no ranks.
    pub(super) async fn voice_ranks(&self, member: MemberKey, now: Millis) -> PeriodRanks {
        let keys = voice_rank_keys(now, self.timezone_of(member.guild));
        let [today, week, month] = keys.each_ref().map(String::as_str);
        let (ranks, freshness) = self
            .read_fresh(
                "ranks",
                self.store.voice_ranks(member, [today, week, month]),
            )
            .await;
        if freshness == Freshness::Unavailable {
            return PeriodRanks::default();
        }
        ranks
    }
}

/// A page of `guild`'s ranking in the `period` containing `now` in `tz`: the
/// one query behind `/leaderboard` and `study-tracker leaderboard`.
///
/// # Errors
/// MongoDB cannot be read.
#[allow(clippy::too_many_arguments)] // one query's parameters, named at every call
pub async fn leaderboard_page(
    store: &Store,
    guild: u64,
    period: Period,
    by: By,
    page: u64,
    caller: Option<u64>,
    now: Millis,
    tz: chrono_tz::Tz,
) -> Result<Page, StoreError> {
    let key = period.key_at(now, tz);
    store
        .leaderboard(guild, period, key.as_deref(), by, page, caller)
        .await
}

/// `member`'s ranks by total voice in the periods containing `now` in `tz`
/// (the CLI's `stats`).
///
/// # Errors
/// MongoDB cannot be read.
pub async fn member_voice_ranks(
    store: &Store,
    member: MemberKey,
    now: Millis,
    tz: chrono_tz::Tz,
) -> Result<PeriodRanks, StoreError> {
    let keys = voice_rank_keys(now, tz);
    let [today, week, month] = keys.each_ref().map(String::as_str);
    store.voice_ranks(member, [today, week, month]).await
}
