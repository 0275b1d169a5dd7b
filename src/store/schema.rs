//! Collection names, document ids and indexes: the shape of the data.

use mongodb::bson::{doc, Bson, Document};

use super::{Store, StoreError};
use crate::core::{MemberKey, Millis};

pub(super) const MEMBER_STATS: &str = "member_stats";
pub(super) const MEMBER_DAYS: &str = "member_days";
pub(super) const MEMBER_WEEKS: &str = "member_weeks";
pub(super) const MEMBER_MONTHS: &str = "member_months";
pub(super) const VOICE_SEGMENTS: &str = "voice_segments";
pub(super) const VOICE_SESSIONS: &str = "voice_sessions";
pub(super) const META: &str = "meta";
pub(super) const LEGACY_USERS: &str = "users";
/// The append-only audit log (`store/audit.rs`); corrections are written
/// into it by the apply, as one more seq-guarded document of their op.
pub(super) const AUDIT_LOG: &str = "audit_log";
/// Every collection the writer applies ops to, in the order a batch's
/// commands go out.
pub(super) const WRITTEN: [&str; 7] = [
    MEMBER_STATS,
    MEMBER_DAYS,
    MEMBER_WEEKS,
    MEMBER_MONTHS,
    VOICE_SEGMENTS,
    VOICE_SESSIONS,
    AUDIT_LOG,
];
/// Write errors with this code mean "this op was already applied".
pub(super) const DUPLICATE_KEY: i32 = 11000;

impl Store {
    /// Creates the indexes the queries need (idempotent).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        // `member_stats` is read by `_id` (and `_id` ranges) only. Its
        // former `by_member` index is dropped: every index is updated by
        // every write (on DocumentDB each costs about as much as the
        // document itself; BENCHMARKS.md, "Server ceiling").
        self.drop_index_if_present(MEMBER_STATS, "by_member").await;
        let indexes = [
            (
                MEMBER_DAYS,
                doc! { "guild_id": 1, "user_id": 1, "day": 1 },
                "by_member_day",
            ),
            (
                VOICE_SEGMENTS,
                doc! { "guild_id": 1, "user_id": 1, "end": 1 },
                "by_member_end",
            ),
            // `/history`: a member's latest segments, newest first.
            (
                VOICE_SEGMENTS,
                doc! { "guild_id": 1, "user_id": 1, "start": 1 },
                "by_member_start",
            ),
            (VOICE_SESSIONS, doc! { "open": 1 }, "by_open"),
        ];
        for (coll, key, name) in indexes {
            self.command(doc! { "createIndexes": coll, "indexes": [{ "key": key, "name": name }] })
                .await?;
        }
        // Leaderboards: a ranking is one read of a server's `member_stats`
        // by `_id` range (store/boards.rs), and the periods live there
        // (store/periods.rs), so no collection written needs a rank index:
        // the ones earlier versions made are dropped, since every index
        // costs every write a whole index update (on DocumentDB about as
        // much as the document itself; BENCHMARKS.md, "Server ceiling").
        // `member_weeks` and `member_months` are no longer written; theirs
        // stay (they cost nothing now, and an older version still reads
        // them if it is rolled back to).
        for coll in [MEMBER_STATS, MEMBER_DAYS] {
            for unused in ["rank_voice", "rank_camera", "rank_messages"] {
                self.drop_index_if_present(coll, unused).await;
            }
        }
        Ok(())
    }
}

impl Store {
    /// Drops an index an earlier version made, if it is there. Not
    /// `self.command`: an absent index or collection is an error reply,
    /// which is no sign of an unhealthy database.
    async fn drop_index_if_present(&self, coll: &str, name: &str) {
        let dropped = tokio::time::timeout(
            self.command_timeout,
            self.db
                .run_command(doc! { "dropIndexes": coll, "index": name }),
        )
        .await;
        if let Ok(Ok(_)) = dropped {
            tracing::info!(
                collection = coll,
                index = name,
                "dropped an index the store no longer uses"
            );
        }
    }
}

pub(super) fn member_id(k: MemberKey) -> String {
    format!("{}:{}", k.guild, k.user)
}

pub(super) fn segment_id(k: MemberKey, start: Millis) -> String {
    format!("{}:{}:{start}", k.guild, k.user)
}

/// Discord snowflakes fit in 63 bits; stored as BSON int64.
#[allow(clippy::cast_possible_wrap)]
pub(super) fn to_i64(id: u64) -> i64 {
    id as i64
}

#[allow(clippy::cast_sign_loss)]
pub(super) fn from_i64(id: i64) -> u64 {
    id as u64
}

#[allow(clippy::cast_possible_wrap)]
pub(super) fn seq_bson(seq: u64) -> i64 {
    seq as i64
}

/// An integer field, whatever numeric type the writer used (the previous bot
/// wrote int32 and doubles).
#[allow(clippy::cast_possible_truncation)]
pub(super) fn int(d: &Document, key: &str) -> i64 {
    match d.get(key) {
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(f)) => f.round() as i64,
        _ => 0,
    }
}
