//! Session checkpoints read back at start-up, with their resume points.

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};

use super::schema::{from_i64, segment_id, VOICE_SEGMENTS, VOICE_SESSIONS};
use super::{Store, StoreError};
use crate::core::tracker::{RestoredSession, VoiceSession};
use crate::core::MemberKey;

impl Store {
    /// Open session checkpoints, with the moment each was last credited (the
    /// end of its open segment).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn open_sessions(&self) -> Result<Vec<RestoredSession>, StoreError> {
        let sessions: Vec<Document> = self
            .db
            .collection::<Document>(VOICE_SESSIONS)
            .find(doc! { "open": true })
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions {
            let (Ok(g), Ok(u), Ok(ch), Ok(cam), Ok(start)) = (
                s.get_i64("guild_id"),
                s.get_i64("user_id"),
                s.get_i64("channel_id"),
                s.get_bool("camera"),
                s.get_datetime("segment_start"),
            ) else {
                tracing::warn!(session = %s, "ignoring malformed session checkpoint");
                continue;
            };
            let member = MemberKey {
                guild: from_i64(g),
                user: from_i64(u),
            };
            let start = start.timestamp_millis();
            let end = self
                .db
                .collection::<Document>(VOICE_SEGMENTS)
                .find_one(doc! { "_id": segment_id(member, start) })
                .await?
                .and_then(|d| d.get_datetime("end").ok().map(|e| e.timestamp_millis()))
                .unwrap_or(start);
            out.push(RestoredSession {
                member,
                session: VoiceSession {
                    channel: from_i64(ch),
                    camera: cam,
                    segment_start: start,
                    last_credit: end,
                },
            });
        }
        Ok(out)
    }
}
