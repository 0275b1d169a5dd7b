//! Session checkpoints read back at start-up, with their resume points, in
//! a constant number of round trips: one query for the open checkpoints and
//! one `$in` per [`IDS_PER_QUERY`] members for the resume points.

use std::collections::HashMap;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use tokio::time::Instant;

use super::schema::{
    from_i64, member_id, segment_id, MEMBER_STATS, VOICE_SEGMENTS, VOICE_SESSIONS,
};
use super::{Store, StoreError};
use crate::core::tracker::{RestoredSession, VoiceSession};
use crate::core::{MemberKey, Millis};

/// Ids per `$in` query (well under the 16 MB command limit), and documents
/// per reply batch.
const IDS_PER_QUERY: usize = 10_000;

/// What a restore read, and whether it read everything.
#[derive(Debug, Default)]
pub struct OpenSessions {
    pub sessions: Vec<RestoredSession>,
    /// False when the deadline cut the read short: `sessions` holds those
    /// whose resume point was read.
    pub complete: bool,
    /// Round trips used.
    pub round_trips: u64,
}

/// An open checkpoint before its resume point is known.
struct Open {
    member: MemberKey,
    channel: u64,
    camera: bool,
    segment_start: Millis,
}

impl Store {
    /// Open session checkpoints, each with the moment it was last credited:
    /// `credited_until` of the member's totals (written in the same
    /// statement as the totals), else (documents from before that field)
    /// the end of the open segment, else the segment's start. Stops at
    /// `deadline` and returns what it could read.
    ///
    /// # Errors
    /// The server is unreachable before anything could be read.
    pub async fn open_sessions(&self, deadline: Instant) -> Result<OpenSessions, StoreError> {
        let mut out = OpenSessions::default();
        let batch = u32::try_from(IDS_PER_QUERY).unwrap_or(u32::MAX);
        let mut cursor = self
            .decisive(VOICE_SESSIONS)
            .find(doc! { "open": true })
            .batch_size(batch)
            .await?;
        out.round_trips += 1;
        let mut open = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, cursor.try_next()).await;
            match next {
                Ok(Ok(Some(s))) => {
                    if let Some(o) = parse_checkpoint(&s) {
                        open.push(o);
                    }
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Ok(out),
            }
        }
        for chunk in open.chunks(IDS_PER_QUERY) {
            let Ok(read) = tokio::time::timeout_at(deadline, self.resume_points(chunk)).await
            else {
                return Ok(out);
            };
            let (points, trips) = read?;
            out.round_trips += trips;
            out.sessions.extend(chunk.iter().map(|o| {
                RestoredSession {
                    member: o.member,
                    session: VoiceSession {
                        channel: o.channel,
                        camera: o.camera,
                        segment_start: o.segment_start,
                        last_credit: points
                            .get(&o.member)
                            .copied()
                            .unwrap_or(o.segment_start)
                            .max(o.segment_start),
                    },
                }
            }));
        }
        out.complete = true;
        Ok(out)
    }

    /// Resume points of these members (one query; a second one only for
    /// members whose totals predate `credited_until`).
    async fn resume_points(
        &self,
        open: &[Open],
    ) -> Result<(HashMap<MemberKey, Millis>, u64), StoreError> {
        let ids: Vec<String> = open.iter().map(|o| member_id(o.member)).collect();
        let by_id: HashMap<String, &Open> = ids.iter().cloned().zip(open.iter()).collect();
        let batch = u32::try_from(IDS_PER_QUERY).unwrap_or(u32::MAX);
        let stats: Vec<Document> = self
            .decisive(MEMBER_STATS)
            .find(doc! { "_id": { "$in": &ids } })
            .projection(doc! { "credited_until": 1 })
            .batch_size(batch)
            .await?
            .try_collect()
            .await?;
        let mut trips = 1;
        let mut points = HashMap::new();
        for d in &stats {
            let (Ok(id), Ok(until)) = (d.get_str("_id"), d.get_datetime("credited_until")) else {
                continue;
            };
            if let Some(o) = by_id.get(id) {
                points.insert(o.member, until.timestamp_millis());
            }
        }
        let legacy: Vec<String> = open
            .iter()
            .filter(|o| !points.contains_key(&o.member))
            .map(|o| segment_id(o.member, o.segment_start))
            .collect();
        if !legacy.is_empty() {
            let segments: Vec<Document> = self
                .decisive(VOICE_SEGMENTS)
                .find(doc! { "_id": { "$in": &legacy } })
                .projection(doc! { "end": 1, "guild_id": 1, "user_id": 1 })
                .batch_size(batch)
                .await?
                .try_collect()
                .await?;
            trips += 1;
            for s in &segments {
                let (Ok(g), Ok(u), Ok(end)) = (
                    s.get_i64("guild_id"),
                    s.get_i64("user_id"),
                    s.get_datetime("end"),
                ) else {
                    continue;
                };
                let member = MemberKey {
                    guild: from_i64(g),
                    user: from_i64(u),
                };
                points.insert(member, end.timestamp_millis());
            }
        }
        Ok((points, trips))
    }
}

fn parse_checkpoint(s: &Document) -> Option<Open> {
    let parsed = (|| {
        Some(Open {
            member: MemberKey {
                guild: from_i64(s.get_i64("guild_id").ok()?),
                user: from_i64(s.get_i64("user_id").ok()?),
            },
            channel: from_i64(s.get_i64("channel_id").ok()?),
            camera: s.get_bool("camera").ok()?,
            segment_start: s.get_datetime("segment_start").ok()?.timestamp_millis(),
        })
    })();
    if parsed.is_none() {
        tracing::warn!(session = %s, "ignoring malformed session checkpoint");
    }
    parsed
}
