//! Leaderboard reads over the rollups (`store/rollups.rs`): a page of a
//! ranking and a member's rank. Every query is a prefix of one of the
//! `rank_*` indexes (`schema::RANKED`): `{guild_id, <period field>: key,
//! <metric>: {$gt: …}}` sorted by `{<metric>: -1, user_id: 1}`, so on MongoDB
//! a page is an index scan plus a limit and a rank an index count.

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use super::schema::{
    from_i64, int, member_id, to_i64, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_STATS, MEMBER_WEEKS, META,
};
use super::{Store, StoreError};
use crate::core::leaderboard::{
    agree, offset, page_ranks, By, Entry, Page, Period, PeriodRanks, PAGE_SIZE,
};
use crate::core::stats::Totals;
use crate::core::MemberKey;

/// The `meta` document that says every `member_stats` document has its
/// `voice_secs` ([`Store::backfill_voice_secs_once`]).
const VOICE_SECS_MARKER: &str = "voice_secs_backfilled";

/// Where a period's rollups are: the collection and the field holding the
/// period key (all time: the totals, no key).
fn source(period: Period) -> (&'static str, Option<&'static str>) {
    match period {
        Period::Today => (MEMBER_DAYS, Some("day")),
        Period::Week => (MEMBER_WEEKS, Some("week")),
        Period::Month => (MEMBER_MONTHS, Some("month")),
        Period::All => (MEMBER_STATS, None),
    }
}

fn metric(by: By) -> &'static str {
    match by {
        By::Voice => "voice_secs",
        By::Camera => "voice_cam_on_secs",
        By::Messages => "messages",
    }
}

fn totals(d: &Document) -> Totals {
    Totals {
        cam_on_secs: int(d, "voice_cam_on_secs"),
        cam_off_secs: int(d, "voice_cam_off_secs"),
        messages: int(d, "messages"),
    }
}

/// The document id of a member's rollup for `key` (none: the totals).
fn rollup_id(member: MemberKey, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("{}:{k}", member_id(member)),
        None => member_id(member),
    }
}

impl Store {
    /// Page `page` (from 1) of the ranking of `guild` in the period `key`
    /// names (`None` for all time) by `by`, and the caller's entry when they
    /// have something there. Members with 0 are not ranked.
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
        let (coll, field) = source(period);
        let m = metric(by);
        let hidden = self.hidden_in(guild);
        let filter = |gt: i64| {
            let mut f = doc! { "guild_id": to_i64(guild) };
            if let (Some(field), Some(key)) = (field, key) {
                f.insert(field, key);
            }
            f.insert(m, doc! { "$gt": gt });
            not_hidden(&mut f, &hidden);
            f
        };
        let skip = offset(page);
        let filter = &filter;
        // Three chains at once (a page read, a count, the caller's place),
        // each at most two round trips deep.
        let page_docs = async {
            let docs: Vec<Document> = self
                .db
                .collection::<Document>(coll)
                .find(filter(0))
                .sort(doc! { m: -1, "user_id": 1 })
                .skip(skip)
                .limit(i64::try_from(PAGE_SIZE).unwrap_or(10))
                .await?
                .try_collect()
                .await?;
            let first_rank = match docs.first() {
                Some(d) => 1 + self.count(coll, filter(int(d, m))).await?,
                None => 1,
            };
            Ok::<_, StoreError>((docs, first_rank))
        };
        let caller_entry = async {
            let Some(user) = caller.filter(|u| !hidden.contains(&to_i64(*u))) else {
                return Ok(None);
            };
            let member = MemberKey { guild, user };
            Ok(self
                .rank_of(coll, rollup_id(member, key), m, filter)
                .await?
                .map(|(rank, totals)| Entry { rank, user, totals }))
        };
        let ((docs, first_rank), ranked, caller) =
            futures::try_join!(page_docs, self.count(coll, filter(0)), caller_entry)?;
        let values: Vec<i64> = docs.iter().map(|d| int(d, m)).collect();
        let entries = docs
            .iter()
            .zip(page_ranks(&values, first_rank, skip))
            .map(|(d, rank)| Entry {
                rank,
                user: from_i64(int(d, "user_id")),
                totals: totals(d),
            })
            .collect();
        // Three chains read at slightly different moments: the caller's
        // place and the count are made to agree with the page.
        let mut page = Page {
            period,
            by,
            page: page.max(1),
            ranked,
            entries,
            caller,
        };
        agree(&mut page);
        Ok(page)
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
        let (today, week, month, all) = futures::try_join!(
            self.voice_rank(member, Period::Today, Some(keys[0])),
            self.voice_rank(member, Period::Week, Some(keys[1])),
            self.voice_rank(member, Period::Month, Some(keys[2])),
            self.voice_rank(member, Period::All, None),
        )?;
        Ok(PeriodRanks {
            today,
            this_week: week,
            this_month: month,
            all_time: all,
        })
    }

    async fn voice_rank(
        &self,
        member: MemberKey,
        period: Period,
        key: Option<&str>,
    ) -> Result<Option<u64>, StoreError> {
        let (coll, field) = source(period);
        let hidden = self.hidden_in(member.guild);
        if hidden.contains(&to_i64(member.user)) {
            return Ok(None);
        }
        let filter = |gt: i64| {
            let mut f = doc! { "guild_id": to_i64(member.guild) };
            if let (Some(field), Some(key)) = (field, key) {
                f.insert(field, key);
            }
            f.insert("voice_secs", doc! { "$gt": gt });
            not_hidden(&mut f, &hidden);
            f
        };
        Ok(self
            .rank_of(coll, rollup_id(member, key), "voice_secs", filter)
            .await?
            .map(|(rank, _)| rank))
    }

    /// The rank (1 + members with a strictly greater `metric`) and totals
    /// of the document `id`; `None` if it has nothing.
    async fn rank_of(
        &self,
        coll: &str,
        id: String,
        metric: &str,
        filter: impl Fn(i64) -> Document,
    ) -> Result<Option<(u64, Totals)>, StoreError> {
        let Some(d) = self
            .db
            .collection::<Document>(coll)
            .find_one(doc! { "_id": id })
            .await?
        else {
            return Ok(None);
        };
        let value = int(&d, metric);
        if value <= 0 {
            return Ok(None);
        }
        let above = self.count(coll, filter(value)).await?;
        Ok(Some((above + 1, totals(&d))))
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

    /// Documents of `coll` matching `filter` (the `count` command).
    async fn count(&self, coll: &str, filter: Document) -> Result<u64, StoreError> {
        let reply = self
            .command(doc! { "count": coll, "query": filter })
            .await?;
        Ok(u64::try_from(int(&reply, "n")).unwrap_or(0))
    }
}

/// Leaves the members who opted out off a ranking's filter.
fn not_hidden(f: &mut Document, hidden: &[i64]) {
    if !hidden.is_empty() {
        f.insert("user_id", doc! { "$nin": hidden.to_vec() });
    }
}
