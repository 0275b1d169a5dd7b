//! A member's numbers for `/ud` and the CLI: stored totals plus the session
//! in progress, with how current they are; for the `/ud` card also the last
//! days and the streaks.

use std::time::Duration;

use tracing::instrument;

use super::App;
use crate::core::calendar::{self, Periods, ZONE_MARGIN};
use crate::core::daily::{self, DayTotals};
use crate::core::history::{self, Session};
use crate::core::leaderboard::PeriodRanks;
use crate::core::stats::{self, Freshness, Stats, StoredMember};
use crate::core::streak::{self, Streaks};
use crate::core::tracker::Pending;
use crate::core::{MemberKey, Millis};
use crate::telemetry::cause_chain;

/// Everything the `/ud` card shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberCard {
    pub stats: Stats,
    pub freshness: Freshness,
    /// The last [`CARD_DAYS`] local days, oldest first, the session in
    /// progress included; `None` when the stored history could not be read
    /// (a chart of blank days would read as a fact).
    pub days: Option<Vec<DayTotals>>,
    /// `None` when the stored history could not be read (a streak of 0
    /// would read as "my streak reset").
    pub streaks: Option<Streaks>,
    /// The member's rank in the server by total voice per period.
    pub ranks: PeriodRanks,
}

/// How many days the card's chart shows (the chart's own constant, kept
/// here so `app` does not depend on `render`).
pub const CARD_DAYS: usize = 14;

impl App {
    /// A member's numbers up to `now`, including their session in progress.
    /// Never fails: if MongoDB cannot be read in time, the answer holds what
    /// this process knows and says so.
    #[instrument(skip_all, fields(guild_id = member.guild, user_id = member.user))]
    pub async fn member_stats(&self, member: MemberKey, now: Millis) -> (Stats, Freshness) {
        let periods = Periods::at(now, self.timezone_of(member.guild));
        let earliest = periods.earliest().clone();
        // Segments from a margin earlier: time cut in another zone before a
        // `TIMEZONE` change can be keyed to this period (ZONE_MARGIN).
        let since = earliest.at.saturating_sub(ZONE_MARGIN);
        let (stored, pending, freshness) =
            self.read_member(member, now, since, &earliest.day).await;
        (stats::compute(&stored, pending, &periods), freshness)
    }

    /// The `/ud` card: [`App::member_stats`] plus the last [`CARD_DAYS`]
    /// days and the streaks. Reads every segment of the member (streaks
    /// span all history; see ARCHITECTURE.md on its cost). Never fails, as
    /// `member_stats`.
    #[instrument(skip_all, fields(guild_id = member.guild, user_id = member.user))]
    pub async fn member_card(&self, member: MemberKey, now: Millis) -> MemberCard {
        let tz = self.timezone_of(member.guild);
        let periods = Periods::at(now, tz);
        let window = daily::window_start(now, tz, CARD_DAYS);
        // Message days from whichever starts first: the month, the week or
        // the chart's window (`YYYY-MM-DD` sorts as dates do).
        let days_since = periods.earliest().day.clone().min(window.day);
        let ((stored, pending, freshness), ranks) = tokio::join!(
            self.read_member(member, now, 0, &days_since),
            self.voice_ranks(member, now)
        );
        // Without the stored history, the days and the streaks are unknown,
        // not empty.
        let known = freshness != Freshness::Unavailable;
        let days = known.then(|| daily::daily(&stored, pending, now, tz, CARD_DAYS));
        let streaks = known.then(|| {
            let by_day = daily::voice_by_day(&stored, pending, tz);
            let min_secs = self.streak_min_secs_of(member.guild);
            streak::streaks(&by_day, calendar::today(now, tz), min_secs)
        });
        MemberCard {
            stats: stats::compute(&stored, pending, &periods),
            freshness,
            days,
            streaks,
            ranks,
        }
    }

    /// The member's stored numbers (segments ending after `segments_since`,
    /// message days from `days_since`) and session in progress, bounded in
    /// time: without MongoDB, what this process knows.
    async fn read_member(
        &self,
        member: MemberKey,
        now: Millis,
        segments_since: Millis,
        days_since: &str,
    ) -> (StoredMember, Option<Pending>, Freshness) {
        let pending = self.pending(member, now).await;
        let (stored, freshness) = self
            .read_fresh(
                "stats",
                self.store.member(member, segments_since, days_since),
            )
            .await;
        (stored, pending, freshness)
    }
}

impl App {
    /// A member's latest sessions, newest first, with the session in
    /// progress counted up to `now` (as `/ud` counts it), at least `wanted`
    /// of them when there are that many, every one whole; and whether every
    /// older session was read too (`complete`; if not, the list stops at
    /// `wanted`, since the oldest session read may be cut short). Never
    /// fails: if MongoDB cannot be read in time, the answer holds the
    /// session in progress only and says so.
    #[instrument(skip_all, fields(guild_id = member.guild, user_id = member.user))]
    pub async fn member_history(
        &self,
        member: MemberKey,
        now: Millis,
        wanted: usize,
    ) -> (Vec<Session>, bool, Freshness) {
        let pending = self.pending(member, now).await;
        let (stored, freshness) = self
            .read_fresh("history", self.store.history(member, wanted))
            .await;
        let mut sessions = history::with_corrections(
            history::with_pending(
                history::sessions(&stored.segments, stored.open_segment_start),
                pending,
            ),
            &stored.corrections,
        );
        if !stored.complete {
            sessions.truncate(wanted);
        }
        (sessions, stored.complete, freshness)
    }
}

impl App {
    /// The member's session in progress up to `now`. The tracker lock can
    /// be held while the writer applies backpressure: answer without it
    /// then.
    async fn pending(&self, member: MemberKey, now: Millis) -> Option<Pending> {
        match tokio::time::timeout(TRACKER_WAIT, self.tracker.lock()).await {
            Ok(tracker) => tracker.pending(member, now),
            Err(_) => None,
        }
    }

    /// A read for an answer, bounded in time, with how current it is:
    /// without MongoDB, an empty value (what this process knows is added by
    /// the caller) and [`Freshness::Unavailable`].
    pub(super) async fn read_fresh<T: Default>(
        &self,
        what: &str,
        read: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
    ) -> (T, Freshness) {
        match tokio::time::timeout(STATS_READ_TIMEOUT, read).await {
            Ok(Ok(value)) => {
                let status = self.writer.status();
                let lag = !status.db_ok || status.backlog > 0;
                let freshness = if lag {
                    Freshness::MayLag
                } else {
                    Freshness::Current
                };
                (value, freshness)
            }
            Ok(Err(e)) => {
                tracing::warn!(what, error = %cause_chain(&e), consequence = "answering from memory", "cannot read from MongoDB");
                (T::default(), Freshness::Unavailable)
            }
            Err(_) => {
                tracing::warn!(
                    what,
                    consequence = "answering from memory",
                    "reading from MongoDB timed out"
                );
                (T::default(), Freshness::Unavailable)
            }
        }
    }
}

/// How long `/ud` waits for the tracker before answering without the
/// session in progress.
const TRACKER_WAIT: Duration = Duration::from_millis(500);

/// How long `/ud` waits for MongoDB before answering from memory (Discord
/// wants an answer within 3 s).
const STATS_READ_TIMEOUT: Duration = Duration::from_secs(2);
