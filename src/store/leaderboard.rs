//! Leaderboard reads: a page of a ranking and a member's ranks, each from
//! one snapshot of the period's rollups (`store/boards.rs`), so the ranks
//! on a page, the count and the caller's place agree with one another.
//! And the one-time `voice_secs` backfill the all-time ranking needed.

use mongodb::bson::doc;

use super::schema::{int, MEMBER_STATS, META};
use super::{Store, StoreError};
use crate::core::leaderboard::{By, Page, Period, PeriodRanks};
use crate::core::MemberKey;

/// The `meta` document that says every `member_stats` document has its
/// `voice_secs` ([`Store::backfill_voice_secs_once`]).
const VOICE_SECS_MARKER: &str = "voice_secs_backfilled";

impl Store {
    /// Page `page` (from 1) of the ranking of `guild` in the period `key`
    /// names (`None` for all time) by `by`, and the caller's entry when they
    /// have something there. Members with 0 are not ranked, nor those who
    /// opted out.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn leaderboard(
        &self,
        guild: u64,
        period: Period,
        key: Option<&str>,
        by: By,
        page: u64,
        caller: Option<u64>,
    ) -> Result<Page, StoreError> {
        let board = self.board(guild, period, key).await?;
        Ok(board.page(by, page, caller, &self.hidden_in(guild)))
    }

    /// A member's rank by total voice in each period, from the rollups the
    /// keys name (`keys`: today, this week, this month).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn voice_ranks(
        &self,
        member: MemberKey,
        keys: [&str; 3],
    ) -> Result<PeriodRanks, StoreError> {
        let g = member.guild;
        let (today, week, month, all) = futures::try_join!(
            self.board(g, Period::Today, Some(keys[0])),
            self.board(g, Period::Week, Some(keys[1])),
            self.board(g, Period::Month, Some(keys[2])),
            self.board(g, Period::All, None),
        )?;
        let hidden = self.hidden_in(g);
        let rank = |b: &crate::core::leaderboard::Board| b.rank(By::Voice, member.user, &hidden);
        Ok(PeriodRanks {
            today: rank(&today),
            this_week: rank(&week),
            this_month: rank(&month),
            all_time: rank(&all),
        })
    }

    /// Gives every `member_stats` document its `voice_secs` (on + off, the
    /// all-time ranking's key) where it lacks it or disagrees: documents
    /// written before the rollups, or by the previous bot's import. One
    /// `update` with `multi: true` whose filter (`$expr`) and change (a
    /// pipeline) both read the document's own fields, so each document is
    /// fixed atomically on the server: an increment the writer applies at
    /// the same time lands either before (and is summed) or after (and adds
    /// to the sum); nothing read earlier is written back. A camera field
    /// that is not a number counts as 0 (that document's increments are
    /// dead letters anyway). Returns how many it fixed.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn backfill_voice_secs(&self) -> Result<u64, StoreError> {
        let number = |field: &str| {
            doc! { "$convert": { "input": field, "to": "long", "onError": 0_i64, "onNull": 0_i64 } }
        };
        let sum = doc! { "$add": [number("$voice_cam_on_secs"), number("$voice_cam_off_secs")] };
        let reply = self
            .command(doc! {
                "update": MEMBER_STATS,
                "updates": [{
                    "q": { "$expr": { "$ne": ["$voice_secs", sum.clone()] } },
                    "u": [{ "$set": { "voice_secs": sum } }],
                    "multi": true,
                }],
            })
            .await?;
        if let Ok(errors) = reply.get_array("writeErrors") {
            return Err(StoreError::Permanent(format!(
                "preparing the all-time voice totals: {errors:?}"
            )));
        }
        let fixed = u64::try_from(int(&reply, "nModified")).unwrap_or(0);
        if fixed > 0 {
            tracing::info!(
                members = fixed,
                "all-time voice totals prepared for the leaderboard"
            );
        }
        Ok(fixed)
    }

    /// [`Store::backfill_voice_secs`] once per database: skipped when the
    /// `meta` marker says a backfill completed, which is then set. Every
    /// writer statement since the rollups keeps `voice_secs` with the totals,
    /// so once every document has it, a later start has nothing to fix (only
    /// an instance of a version from before the rollups could write a
    /// document without it).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn backfill_voice_secs_once(&self) -> Result<(), StoreError> {
        let marker = self
            .decisive(META)
            .find_one(doc! { "_id": VOICE_SECS_MARKER })
            .await?;
        if marker.is_some() {
            return Ok(());
        }
        let fixed = self.backfill_voice_secs().await?;
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": VOICE_SECS_MARKER },
                "u": { "$set": { "at": mongodb::bson::DateTime::now(), "fixed": i64::try_from(fixed).unwrap_or(i64::MAX) } },
                "upsert": true,
            }],
        })
        .await?;
        Ok(())
    }
}
