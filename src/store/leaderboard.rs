//! Leaderboard reads over `member_stats`: all time on its totals, today,
//! this week and this month on the member's current periods kept there
//! (`store/periods.rs`: `day`, `week`, `month`, each with its `key`). A page
//! of a ranking and a member's rank. Every query is a prefix of one of the
//! `rank_*` indexes (`schema::RANKED`): `{guild_id, <period>.key: key,
//! <period>.<metric>: {$gt: …}}` sorted by `{<period>.<metric>: -1, user_id:
//! 1}`, so on MongoDB a page is an index scan plus a limit and a rank an
//! index count.

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use super::schema::{from_i64, int, member_id, to_i64, MEMBER_STATS, META};
use super::{Store, StoreError};
use crate::core::leaderboard::{
    agree, offset, page_ranks, By, Entry, Page, Period, PeriodRanks, PAGE_SIZE,
};
use crate::core::stats::Totals;
use crate::core::MemberKey;

/// The `meta` document that says every `member_stats` document has its
/// `voice_secs` ([`Store::backfill_voice_secs_once`]).
const VOICE_SECS_MARKER: &str = "voice_secs_backfilled";

/// The `member_stats` field holding a period (all time: the totals, none).
fn source(period: Period) -> Option<&'static str> {
    match period {
        Period::Today => Some("day"),
        Period::Week => Some("week"),
        Period::Month => Some("month"),
        Period::All => None,
    }
}

fn metric(by: By) -> &'static str {
    match by {
        By::Voice => "voice_secs",
        By::Camera => "voice_cam_on_secs",
        By::Messages => "messages",
    }
}

/// `metric` of the period `field` (all time: of the totals).
fn path(field: Option<&str>, metric: &str) -> String {
    match field {
        Some(f) => format!("{f}.{metric}"),
        None => metric.to_owned(),
    }
}

/// The period `field` of a `member_stats` document when it is at `key`
/// (all time: the document itself); `None` when it is another period.
fn period_of<'d>(d: &'d Document, field: Option<&str>, key: Option<&str>) -> Option<&'d Document> {
    match (field, key) {
        (Some(f), Some(k)) => d
            .get_document(f)
            .ok()
            .filter(|p| p.get_str("key").ok() == Some(k)),
        _ => Some(d),
    }
}

fn totals(d: &Document) -> Totals {
    Totals {
        cam_on_secs: int(d, "voice_cam_on_secs"),
        cam_off_secs: int(d, "voice_cam_off_secs"),
        messages: int(d, "messages"),
    }
}

/// `{guild_id, <field>.key: key, <metric path>: {$gt: gt}}`.
fn ranked_filter(guild: u64, field: Option<&str>, key: Option<&str>, m: &str, gt: i64) -> Document {
    let mut f = doc! { "guild_id": to_i64(guild) };
    if let (Some(field), Some(key)) = (field, key) {
        f.insert(format!("{field}.key"), key);
    }
    f.insert(path(field, m), doc! { "$gt": gt });
    f
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
        let coll = MEMBER_STATS;
        let field = source(period);
        let m = metric(by);
        let sort_on = path(field, m);
        let filter = |gt: i64| ranked_filter(guild, field, key, m, gt);
        let at = |d: &Document| period_of(d, field, key).map_or(0, |p| int(p, m));
        let skip = offset(page);
        let filter = &filter;
        // Three chains at once (a page read, a count, the caller's place),
        // each at most two round trips deep.
        let page_docs = async {
            let docs: Vec<Document> = self
                .db
                .collection::<Document>(coll)
                .find(filter(0))
                .sort(doc! { sort_on.as_str(): -1, "user_id": 1 })
                .skip(skip)
                .limit(i64::try_from(PAGE_SIZE).unwrap_or(10))
                .await?
                .try_collect()
                .await?;
            let first_rank = match docs.first() {
                Some(d) => 1 + self.count(coll, filter(at(d))).await?,
                None => 1,
            };
            Ok::<_, StoreError>((docs, first_rank))
        };
        let caller_entry = async {
            let Some(user) = caller else {
                return Ok(None);
            };
            let member = MemberKey { guild, user };
            Ok(self
                .rank_of(member, field, key, m, filter)
                .await?
                .map(|(rank, totals)| Entry { rank, user, totals }))
        };
        let ((docs, first_rank), ranked, caller) =
            futures::try_join!(page_docs, self.count(coll, filter(0)), caller_entry)?;
        let values: Vec<i64> = docs.iter().map(at).collect();
        let entries = docs
            .iter()
            .zip(page_ranks(&values, first_rank, skip))
            .map(|(d, rank)| Entry {
                rank,
                user: from_i64(int(d, "user_id")),
                totals: period_of(d, field, key).map(totals).unwrap_or_default(),
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
        let field = source(period);
        let filter = |gt: i64| ranked_filter(member.guild, field, key, "voice_secs", gt);
        Ok(self
            .rank_of(member, field, key, "voice_secs", filter)
            .await?
            .map(|(rank, _)| rank))
    }

    /// The rank (1 + members with a strictly greater `metric`) and totals
    /// of `member` in the period `field` at `key`; `None` if they have
    /// nothing there.
    async fn rank_of(
        &self,
        member: MemberKey,
        field: Option<&str>,
        key: Option<&str>,
        metric: &str,
        filter: impl Fn(i64) -> Document,
    ) -> Result<Option<(u64, Totals)>, StoreError> {
        let Some(d) = self
            .db
            .collection::<Document>(MEMBER_STATS)
            .find_one(doc! { "_id": member_id(member) })
            .await?
        else {
            return Ok(None);
        };
        let Some(p) = period_of(&d, field, key) else {
            return Ok(None);
        };
        let value = int(p, metric);
        if value <= 0 {
            return Ok(None);
        }
        let above = self.count(MEMBER_STATS, filter(value)).await?;
        Ok(Some((above + 1, totals(p))))
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
