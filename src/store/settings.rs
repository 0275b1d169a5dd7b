//! `guild_settings`: each server's settings, and the change protocol that
//! keeps `audit_log` exact without transactions.
//!
//! A change is a compare-and-set on the document's `version` that also
//! stores the change's audit entry in `last_change` (one statement, so the
//! settings and the record of their change cannot part). The entry is then
//! copied into `audit_log` under an id made from the version, an upsert
//! that can run any number of times; `last_change.logged` marks it done,
//! and [`Store::guild_settings_all`] finishes a copy a crash interrupted.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};

use super::audit::{AuditEntry, AUDIT_LOG};
use super::schema::{from_i64, int};
use super::{Store, StoreError};
use crate::core::settings::GuildSettings;
use crate::core::Millis;

pub(super) const GUILD_SETTINGS: &str = "guild_settings";

/// A server's settings as stored, with the version a change compares on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSettings {
    pub guild: u64,
    pub settings: GuildSettings,
    pub version: i64,
    /// When the bot was removed from the server (not an outage), if it has
    /// not come back since: its data is erased after the retention.
    pub removed_at: Option<Millis>,
}

/// Why a settings change was not saved.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Another change landed first: read again and retry.
    #[error("the settings changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Every server's stored settings; finishes any audit copy a crash left
    /// undone.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn guild_settings_all(&self) -> Result<Vec<StoredSettings>, StoreError> {
        let docs: Vec<Document> = self
            .decisive(GUILD_SETTINGS)
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let mut all = Vec::with_capacity(docs.len());
        for d in &docs {
            if let Ok(change) = d.get_document("last_change") {
                if !change.get_bool("logged").unwrap_or(false) {
                    self.log_change(int(d, "guild_id"), int(d, "version"), change)
                        .await?;
                }
            }
            all.push(stored_of(d));
        }
        Ok(all)
    }

    /// One server's stored settings (nothing set: defaults, version 0).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn guild_settings(&self, guild: u64) -> Result<StoredSettings, StoreError> {
        let found = self
            .decisive(GUILD_SETTINGS)
            .find_one(doc! { "_id": guild.to_string() })
            .await?;
        Ok(found.map_or_else(
            || StoredSettings {
                guild,
                ..StoredSettings::default()
            },
            |d| stored_of(&d),
        ))
    }

    /// Saves `new` over the settings read at `version`, with `entry` as the
    /// record of the change, and copies the entry into `audit_log`.
    ///
    /// # Errors
    /// [`ChangeError::Conflict`] when another change landed since `version`;
    /// the server is unreachable or refuses.
    pub async fn change_guild_settings(
        &self,
        guild: u64,
        version: i64,
        new: &GuildSettings,
        entry: &AuditEntry,
    ) -> Result<i64, ChangeError> {
        let id = guild.to_string();
        let g = i64::try_from(guild).unwrap_or(i64::MAX);
        let coll = self.decisive(GUILD_SETTINGS);
        if version == 0 {
            // Exists before the compare-and-set: an upsert on `_id` alone
            // never conflicts (the duplicate-key code differs by server).
            coll.update_one(
                doc! { "_id": &id },
                doc! { "$setOnInsert": { "guild_id": g, "version": 0_i64 } },
            )
            .upsert(true)
            .await
            .map_err(StoreError::from)?;
        }
        let next = version + 1;
        let change = entry.to_document();
        let set = doc! {
            "guild_id": g,
            "timezone": new.timezone.map_or(Bson::Null, |tz| Bson::from(tz.name())),
            "excluded_channels": new.excluded.iter().map(|c| Bson::from(c.to_string())).collect::<Vec<_>>(),
            "streak_min_minutes": new.streak_min_minutes.map_or(Bson::Null, |m| Bson::from(i64::from(m))),
            "version": next,
            "updated_at": DateTime::from_millis(entry.at),
            "last_change": change.clone(),
        };
        let done = coll
            .update_one(
                doc! { "_id": &id, "version": version },
                doc! { "$set": set },
            )
            .await
            .map_err(StoreError::from)?;
        if done.matched_count == 0 {
            return Err(ChangeError::Conflict);
        }
        self.log_change(g, next, &change).await?;
        Ok(next)
    }

    /// Records that the bot was removed from `guild` at `at` (kept if
    /// already recorded: the first removal starts the retention).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn mark_guild_removed(&self, guild: u64, at: Millis) -> Result<(), StoreError> {
        let g = i64::try_from(guild).unwrap_or(i64::MAX);
        self.decisive(GUILD_SETTINGS)
            .update_one(
                doc! { "_id": guild.to_string() },
                vec![doc! { "$set": {
                    "guild_id": g,
                    "version": { "$ifNull": ["$version", 0_i64] },
                    "removed_at": { "$ifNull": ["$removed_at", DateTime::from_millis(at)] },
                } }],
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    /// The bot is in `guild` again: no retention runs.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn mark_guild_back(&self, guild: u64) -> Result<(), StoreError> {
        self.decisive(GUILD_SETTINGS)
            .update_one(
                doc! { "_id": guild.to_string() },
                doc! { "$unset": { "removed_at": "" } },
            )
            .await?;
        Ok(())
    }

    /// Copies a change's entry into `audit_log` (idempotent), then marks it
    /// logged.
    async fn log_change(
        &self,
        guild: i64,
        version: i64,
        change: &Document,
    ) -> Result<(), StoreError> {
        let audit_id = format!("settings:{guild}:{version}");
        let mut entry = change.clone();
        entry.remove("logged");
        self.decisive(AUDIT_LOG)
            .update_one(doc! { "_id": &audit_id }, doc! { "$setOnInsert": entry })
            .upsert(true)
            .await?;
        self.decisive(GUILD_SETTINGS)
            .update_one(
                doc! { "_id": guild.to_string(), "version": version },
                doc! { "$set": { "last_change.logged": true } },
            )
            .await?;
        Ok(())
    }
}

fn stored_of(d: &Document) -> StoredSettings {
    let excluded: BTreeSet<u64> = d
        .get_array("excluded_channels")
        .map(|a| {
            a.iter()
                .filter_map(|b| match b {
                    Bson::String(s) => s.parse().ok(),
                    Bson::Int64(i) => Some(from_i64(*i)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let streak = u32::try_from(int(d, "streak_min_minutes"))
        .ok()
        .filter(|m| *m > 0);
    StoredSettings {
        guild: from_i64(int(d, "guild_id")),
        settings: GuildSettings {
            timezone: d.get_str("timezone").ok().and_then(|t| t.parse().ok()),
            excluded,
            streak_min_minutes: streak,
        },
        version: int(d, "version"),
        removed_at: d
            .get_datetime("removed_at")
            .ok()
            .map(|t| t.timestamp_millis()),
    }
}

/// Milliseconds of a BSON date (0 when absent).
pub(super) fn millis_of(d: &Document, key: &str) -> Millis {
    d.get_datetime(key).map_or(0, |t| t.timestamp_millis())
}
