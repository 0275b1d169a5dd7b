//! The read behind `/history` and `history`: a member's latest voice
//! segments, newest first, enough for the sessions asked for, and the
//! member's open checkpoint (which session is still going on).

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use super::schema::{from_i64, int, member_id, to_i64, VOICE_SEGMENTS, VOICE_SESSIONS};
use super::{Store, StoreError};
use crate::core::history::{sessions, HistorySegment, StoredHistory};
use crate::core::MemberKey;

/// Segments read per session asked for at first (a session is a join plus
/// its toggles and moves); the read grows fourfold until it holds enough.
const SEGMENTS_PER_SESSION: usize = 4;

impl Store {
    /// The member's latest segments, enough for at least `wanted` whole
    /// sessions (or all of them), and their open checkpoint. Reads
    /// `voice_segments` by `{guild_id, user_id}` sorted by `start`
    /// descending with a limit (index `by_member_start`); when the segments
    /// read hold `wanted` sessions and the start of an older one, the newest
    /// `wanted` are whole.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn history(
        &self,
        member: MemberKey,
        wanted: usize,
    ) -> Result<StoredHistory, StoreError> {
        let (g, u) = (to_i64(member.guild), to_i64(member.user));
        let segments_coll = self.db.collection::<Document>(VOICE_SEGMENTS);
        let mut limit = (wanted + 1).saturating_mul(SEGMENTS_PER_SESSION);
        let (segments, complete) = loop {
            let docs: Vec<Document> = segments_coll
                .find(doc! { "guild_id": g, "user_id": u })
                .sort(doc! { "start": -1 })
                .limit(i64::try_from(limit).unwrap_or(i64::MAX))
                .projection(doc! { "channel_id": 1, "camera": 1, "start": 1, "end": 1, "secs": 1 })
                .await?
                .try_collect()
                .await?;
            let complete = docs.len() < limit;
            let segments: Vec<HistorySegment> = docs.iter().filter_map(parse_segment).collect();
            if complete || sessions(&segments, None).len() > wanted {
                break (segments, complete);
            }
            limit = limit.saturating_mul(4);
        };
        let checkpoint = self
            .db
            .collection::<Document>(VOICE_SESSIONS)
            .find_one(doc! { "_id": member_id(member), "open": true })
            .await?;
        // The newest corrections, as many as sessions asked for: with the
        // sessions, enough for the newest `wanted` lines of both.
        let limit = wanted + 1;
        let corrections = self.corrections(member, limit).await?;
        Ok(StoredHistory {
            segments,
            open_segment_start: checkpoint
                .and_then(|c| c.get_datetime("segment_start").ok().copied())
                .map(mongodb::bson::DateTime::timestamp_millis),
            complete: complete && corrections.len() < limit,
            corrections,
        })
    }
}

fn parse_segment(d: &Document) -> Option<HistorySegment> {
    Some(HistorySegment {
        channel: d.get_i64("channel_id").map_or(0, from_i64),
        camera: d.get_bool("camera").ok()?,
        start: d.get_datetime("start").ok()?.timestamp_millis(),
        end: d.get_datetime("end").ok()?.timestamp_millis(),
        secs: int(d, "secs"),
    })
}
