//! The one-time import of the previous bot's totals (collection `users`).

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};

use super::apply::write_errors;
use super::schema::{int, member_id, to_i64, DUPLICATE_KEY, LEGACY_USERS, MEMBER_STATS};
use super::{Store, StoreError};
use crate::core::MemberKey;

/// What `import-legacy` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    pub already_imported: u64,
    pub skipped: u64,
}

impl Store {
    /// Adds the previous bot's totals (collection `users`) to `guild`, once
    /// per member: a marker on the member's document makes a second run a no-op.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn import_legacy(&self, guild: u64) -> Result<ImportReport, StoreError> {
        let users: Vec<Document> = self
            .db
            .collection::<Document>(LEGACY_USERS)
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let mut report = ImportReport::default();
        for user in users {
            let id = match user.get("_id") {
                Some(Bson::String(s)) => s.parse::<u64>().ok(),
                Some(Bson::Int64(i)) => u64::try_from(*i).ok(),
                _ => None,
            };
            let Some(id) = id else {
                if user.get_str("_id") != Ok("mongodb_test") {
                    tracing::warn!(id = ?user.get("_id"), "legacy document without a numeric user id; skipped");
                }
                report.skipped += 1;
                continue;
            };
            let data = user.get_document("data").cloned().unwrap_or_default();
            let on_min = int(&data, "voice_cam_on_minutes");
            let off_min = int(&data, "voice_cam_off_minutes");
            let messages = int(&data, "message_count");
            let member = MemberKey { guild, user: id };
            let update = doc! {
                "update": MEMBER_STATS,
                "updates": [{
                    "q": { "_id": member_id(member), "legacy_import": { "$exists": false } },
                    "u": {
                        "$inc": {
                            "voice_cam_on_secs": on_min * 60,
                            "voice_cam_off_secs": off_min * 60,
                            // The all-time ranking sorts on the sum.
                            "voice_secs": (on_min + off_min) * 60,
                            "messages": messages,
                        },
                        "$set": {
                            "guild_id": to_i64(guild),
                            "user_id": to_i64(id),
                            "legacy_import": {
                                "at": DateTime::now(),
                                "voice_cam_on_minutes": on_min,
                                "voice_cam_off_minutes": off_min,
                                "message_count": messages,
                            },
                        },
                        // Ops only match documents with a lower `seq`.
                        "$setOnInsert": { "seq": 0_i64 },
                    },
                    "upsert": true,
                }],
            };
            // A duplicate key means the document exists with the marker, or
            // the bot created it a moment ago: then the update matches now.
            let mut outcome = None;
            for _ in 0..3 {
                let reply = self.command(update.clone()).await?;
                match write_errors(&reply).first() {
                    None => {
                        outcome = Some(true);
                        break;
                    }
                    Some((_, DUPLICATE_KEY, _)) => {
                        let marked = self
                            .db
                            .collection::<Document>(MEMBER_STATS)
                            .find_one(doc! { "_id": member_id(member), "legacy_import": { "$exists": true } })
                            .await?
                            .is_some();
                        if marked {
                            outcome = Some(false);
                            break;
                        }
                    }
                    Some((_, code, msg)) => {
                        return Err(StoreError::Permanent(format!(
                            "import of user {id} rejected (code {code}): {msg}"
                        )))
                    }
                }
            }
            match outcome {
                Some(true) => report.imported += 1,
                Some(false) => report.already_imported += 1,
                None => {
                    return Err(StoreError::Transient(format!(
                        "import of user {id} kept colliding with live writes; run it again"
                    )))
                }
            }
        }
        Ok(report)
    }
}
