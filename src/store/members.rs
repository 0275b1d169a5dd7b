//! Reads behind `/ud` and `stats`: a member's totals, recent segments and
//! message days, returned as the core's read model.

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};

use super::audit::correction_of;
use super::schema::{int, member_id, to_i64, AUDIT_LOG, MEMBER_DAYS, MEMBER_STATS, VOICE_SEGMENTS};
use super::{Store, StoreError};
use crate::core::calendar::{parse_day, DaySecs};
use crate::core::correction::What;
use crate::core::stats::{StoredMember, StoredSegment};
use crate::core::{MemberKey, Millis};

impl Store {
    /// For each of `members` with totals (`member_stats`), the highest
    /// message id they hold (`None`: written only by versions that did not
    /// keep it); members without totals, or whose totals count no message,
    /// are absent. What
    /// a takeover at an expiry asks about the buffered messages below the
    /// expiry (`app/takeover.rs`). An erased member (or server) holds
    /// everything: nothing they sent before is counted again.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn messages_written(
        &self,
        members: &[MemberKey],
    ) -> Result<std::collections::HashMap<MemberKey, Option<u64>>, StoreError> {
        let ids: Vec<String> = members.iter().map(|m| member_id(*m)).collect();
        let docs: Vec<Document> = self
            .decisive(MEMBER_STATS)
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "guild_id": 1, "user_id": 1, "msg_max": 1, "messages": 1 })
            .await?
            .try_collect()
            .await?;
        let mut written: std::collections::HashMap<MemberKey, Option<u64>> = docs
            .iter()
            // Totals without a message hold none, whoever wrote them.
            .filter(|d| d.contains_key("msg_max") || int(d, "messages") != 0)
            .map(|d| {
                let member = MemberKey {
                    guild: super::schema::from_i64(int(d, "guild_id")),
                    user: super::schema::from_i64(int(d, "user_id")),
                };
                let max = d
                    .contains_key("msg_max")
                    .then(|| super::schema::from_i64(int(d, "msg_max")));
                (member, max)
            })
            .collect();
        // An erased member's totals are gone, not unwritten: what they sent
        // before is never counted again (their erasure or their server's).
        let erasure_ids: Vec<String> = members
            .iter()
            .flat_map(|m| {
                [
                    super::erasure::id_of(*m),
                    super::erasure::id_of(super::erasure::whole_guild(m.guild)),
                ]
            })
            .collect();
        let erased: Vec<Document> = self
            .decisive(super::erasure::ERASURES)
            .find(doc! { "_id": { "$in": erasure_ids } })
            .projection(doc! { "guild_id": 1, "user_id": 1 })
            .await?
            .try_collect()
            .await?;
        for e in &erased {
            let guild = super::schema::from_i64(int(e, "guild_id"));
            let user = super::schema::from_i64(int(e, "user_id"));
            for m in members
                .iter()
                .filter(|m| m.guild == guild && (user == 0 || m.user == user))
            {
                written.insert(*m, Some(u64::MAX));
            }
        }
        Ok(written)
    }

    /// A member's totals, segments ending after `segments_since` and message
    /// counts on days from `days_since` (`YYYY-MM-DD`).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn member(
        &self,
        member: MemberKey,
        segments_since: Millis,
        days_since: &str,
    ) -> Result<StoredMember, StoreError> {
        let (g, u) = (to_i64(member.guild), to_i64(member.user));
        // The member's days and segments by `_id` range (`g:u:…`, the
        // member's own prefix; `;` follows `:`): an `_id` index scan of
        // their documents alone, where `{guild_id, user_id, …}` narrows only
        // by the guild on DocumentDB (BENCHMARKS.md, "Leaderboards"). The
        // four reads go out at once.
        let own = member_id(member);
        let (from, past) = (format!("{own}:"), format!("{own};"));
        let totals = async {
            Ok::<_, StoreError>(
                self.db
                    .collection::<Document>(MEMBER_STATS)
                    .find_one(doc! { "_id": &own })
                    .await?
                    .unwrap_or_default(),
            )
        };
        let segments = async {
            Ok::<_, StoreError>(
                self.db
                    .collection::<Document>(VOICE_SEGMENTS)
                    .find(doc! {
                        "_id": { "$gte": &from, "$lt": &past },
                        "end": { "$gt": DateTime::from_millis(segments_since) },
                    })
                    .hint(by_id())
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await?,
            )
        };
        let days = async {
            Ok::<_, StoreError>(
                self.db
                    .collection::<Document>(MEMBER_DAYS)
                    .find(doc! { "_id": { "$gte": format!("{from}{days_since}"), "$lt": &past } })
                    .hint(by_id())
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await?,
            )
        };
        // Voice corrections count on their day like everything else: as a
        // stretch of no length carrying their seconds on that day.
        let corrections = async {
            Ok::<_, StoreError>(
                self.db
                    .collection::<Document>(AUDIT_LOG)
                    .find(doc! { "guild_id": g, "user_id": u, "action": "adjust" })
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await?,
            )
        };
        let (totals, segments, days, corrections) = futures::try_join!(
            Box::pin(totals),
            Box::pin(segments),
            Box::pin(days),
            Box::pin(corrections)
        )?;
        let mut segments: Vec<StoredSegment> = segments
            .iter()
            .filter_map(|s| {
                Some(StoredSegment {
                    camera: s.get_bool("camera").ok()?,
                    start: s.get_datetime("start").ok()?.timestamp_millis(),
                    end: s.get_datetime("end").ok()?.timestamp_millis(),
                    secs: s.contains_key("secs").then(|| int(s, "secs")),
                    days: carried_days(s),
                })
            })
            .collect();
        let days: Vec<(String, i64)> = days
            .iter()
            .filter_map(|d| Some((d.get_str("day").ok()?.to_owned(), int(d, "messages"))))
            .collect();
        for d in &corrections {
            let (Some(c), Ok(day)) = (correction_of(d), d.get_str("day")) else {
                continue;
            };
            // Message corrections are in the day rollups already (`days`).
            match c.what {
                What::Messages => {}
                what if c.at > segments_since => segments.push(StoredSegment {
                    camera: what == What::CameraOn,
                    start: c.at,
                    end: c.at,
                    secs: Some(c.amount),
                    days: parse_day(day)
                        .map(|date| vec![(date, c.amount)])
                        .unwrap_or_default(),
                }),
                _ => {}
            }
        }
        Ok(StoredMember {
            cam_on_secs: int(&totals, "voice_cam_on_secs"),
            cam_off_secs: int(&totals, "voice_cam_off_secs"),
            messages: int(&totals, "messages"),
            segments,
            days,
        })
    }
}

/// A segment's `days` (`{"YYYY-MM-DD": secs}`, what its ops carried), sorted
/// by day; empty for a segment from before.
fn carried_days(segment: &Document) -> DaySecs {
    let Ok(days) = segment.get_document("days") else {
        return Vec::new();
    };
    let mut out: DaySecs = days
        .keys()
        .filter_map(|k| Some((parse_day(k)?, int(days, k))))
        .collect();
    out.sort_unstable();
    out
}

/// The `_id` index, named for a read the planner would otherwise serve by
/// an index whose first key is the guild (all of its members).
fn by_id() -> mongodb::options::Hint {
    mongodb::options::Hint::Keys(doc! { "_id": 1 })
}
