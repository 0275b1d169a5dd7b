//! The one-time carry of an earlier version's current periods into
//! `member_stats` (`store/periods.rs`): versions before it kept each day,
//! week and month in `member_days`, `member_weeks` and `member_months`, and
//! the leaderboards of the periods running at the upgrade would otherwise
//! start from what this version counted alone.
//!
//! Each recent rollup document (a day from two days ago on, a week from nine
//! days ago, a month from 33 days ago: every zone's current period is among
//! them) is added to its member's period by the same rule the writer rolls
//! over by (`periods::rolled`: added at the same key, replacing an older
//! one, never over a newer one), in one pipeline statement per document that
//! also records the rollup's `_id` in `carried`, and matches only a
//! `member_stats` that has not recorded it: a carry cut by a crash and done
//! again adds nothing twice. Of a day's messages, those this version wrote
//! (`messages_in_periods`, in its periods already) are left out.
//!
//! Run at a takeover (the previous holder is fenced by then) and once more
//! until the `meta` marker `periods_carried` says it completed.

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use super::periods::rolled;
use super::schema::{int, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_STATS, MEMBER_WEEKS, META};
use super::{Store, StoreError};
use crate::core::calendar::{day_key, month_key, week_key};
use crate::core::stats::Totals;

const MARKER: &str = "periods_carried";

impl Store {
    /// Carries the recent rollups of an earlier version into the current
    /// periods, unless the marker says it was done (see the module).
    /// Returns how many documents it carried.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn carry_periods_once(&self) -> Result<u64, StoreError> {
        if self
            .decisive(META)
            .find_one(doc! { "_id": MARKER })
            .await?
            .is_some()
        {
            return Ok(0);
        }
        let today = chrono::Utc::now().date_naive();
        let ago = |days| today - chrono::Duration::days(days);
        let sources = [
            (MEMBER_DAYS, "day", day_key(ago(2))),
            (MEMBER_WEEKS, "week", week_key(ago(9))),
            (MEMBER_MONTHS, "month", month_key(ago(33))),
        ];
        let mut carried = 0_u64;
        for (coll, name, from) in sources {
            carried += self.carry(coll, name, &from).await?;
        }
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": MARKER },
                "u": { "$set": { "at": mongodb::bson::DateTime::now(), "carried": i64::try_from(carried).unwrap_or(i64::MAX) } },
                "upsert": true,
            }],
        })
        .await?;
        if carried > 0 {
            tracing::info!(
                documents = carried,
                "the running days, weeks and months of the previous version carried into member_stats"
            );
        }
        Ok(carried)
    }

    async fn carry(&self, coll: &str, name: &str, from: &str) -> Result<u64, StoreError> {
        let mut cursor = self
            .decisive(coll)
            .find(doc! { name: { "$gte": from } })
            .batch_size(1000)
            .await?;
        let (mut n, mut statements) = (0_u64, Vec::new());
        while let Some(d) = cursor.try_next().await? {
            if let Some(s) = carry_statement(&d, name) {
                statements.push(s);
            }
            if statements.len() >= 1000 {
                n += self.send_carry(std::mem::take(&mut statements)).await?;
            }
        }
        if !statements.is_empty() {
            n += self.send_carry(statements).await?;
        }
        Ok(n)
    }

    async fn send_carry(&self, statements: Vec<Document>) -> Result<u64, StoreError> {
        let reply = self
            .command(doc! {
                "update": MEMBER_STATS,
                "updates": statements,
                "ordered": false,
                "writeConcern": { "w": self.write_concern.clone() },
            })
            .await?;
        if let Ok(errors) = reply.get_array("writeErrors") {
            return Err(StoreError::Permanent(format!(
                "carrying the running periods into member_stats: {errors:?}"
            )));
        }
        Ok(u64::try_from(int(&reply, "nModified")).unwrap_or(0))
    }
}

/// The statement adding rollup `d` (of period field `name`) to its member's
/// period, once.
fn carry_statement(d: &Document, name: &str) -> Option<Document> {
    let id = d.get_str("_id").ok()?;
    let key = d.get_str(name).ok()?;
    let member = id.strip_suffix(key)?.strip_suffix(':')?;
    let t = Totals {
        cam_on_secs: int(d, "voice_cam_on_secs"),
        cam_off_secs: int(d, "voice_cam_off_secs"),
        messages: int(d, "messages") - int(d, "messages_in_periods"),
    };
    let carried = Bson::Document(
        doc! { "$concatArrays": [{ "$ifNull": ["$carried", []] }, [{ "$literal": id }]] },
    );
    let mut set = Document::new();
    set.insert(name, rolled(name, key, &t));
    set.insert("carried", carried);
    Some(doc! {
        "q": { "_id": member, "carried": { "$ne": id } },
        "u": [{ "$set": set }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_carry_leaves_out_what_this_version_wrote() {
        let d = doc! {
            "_id": "1:2:2026-12-01", "day": "2026-12-01",
            "voice_cam_on_secs": 60_i64, "messages": 5_i64, "messages_in_periods": 2_i64,
        };
        let s = carry_statement(&d, "day").unwrap();
        assert_eq!(
            s.get_document("q").unwrap(),
            &doc! { "_id": "1:2", "carried": { "$ne": "1:2:2026-12-01" } }
        );
        let text = format!("{s}");
        assert!(
            text.contains("\"$literal\": Int64(3)") || text.contains("\"$literal\": 3"),
            "{text}"
        );
        // An `_id` that does not end in its key is not carried.
        assert!(carry_statement(&doc! { "_id": "x", "day": "2026-12-01" }, "day").is_none());
    }
}
