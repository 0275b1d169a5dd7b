//! `audit_log`: an append-only record of what server managers and
//! operators changed (settings, corrections, erasures). Entries are written
//! under ids derived from what they record, by upserts that only insert, so
//! writing one again (a retry, a replay) never duplicates or alters it; no
//! code path updates or deletes an entry.

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};

use super::schema::{from_i64, int};
use super::settings::millis_of;
use super::{Store, StoreError};
use crate::core::Millis;

pub(super) use super::schema::AUDIT_LOG;

/// Who made a change: a member (by id), or an operator at the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Member(u64),
    Operator,
    /// The bot itself: the retention after it was removed from a server.
    Retention,
}

impl Actor {
    /// As stored and exported: the member's id, or `operator`.
    #[must_use]
    pub fn id(&self) -> String {
        match self {
            Actor::Member(id) => id.to_string(),
            Actor::Operator => "operator".to_owned(),
            Actor::Retention => "retention".to_owned(),
        }
    }
}

/// One audit entry. `action` is `settings`, `adjust` or `erase`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub guild: u64,
    pub at: Millis,
    pub actor_id: String,
    pub action: String,
    /// The member concerned (corrections, erasures).
    pub user: Option<u64>,
    /// What changed: a setting's name, or `camera_on|camera_off|messages`.
    pub what: Option<String>,
    /// A correction's signed amount (seconds or messages).
    pub amount: Option<i64>,
    pub reason: Option<String>,
    /// A setting's value before and after.
    pub old: Option<String>,
    pub new: Option<String>,
}

impl AuditEntry {
    /// The record that `member`'s data was erased by `actor` at `at` (no
    /// figures): `erase`, or `purge` for a whole server
    /// ([`super::whole_guild`]).
    #[must_use]
    pub fn erasure(member: crate::core::MemberKey, actor: &Actor, at: Millis) -> AuditEntry {
        let whole = member.user == 0;
        AuditEntry {
            guild: member.guild,
            at,
            actor_id: actor.id(),
            action: if whole { "purge" } else { "erase" }.to_owned(),
            user: (!whole).then_some(member.user),
            what: None,
            amount: None,
            reason: None,
            old: None,
            new: None,
        }
    }

    pub(super) fn to_document(&self) -> Document {
        let opt_str =
            |v: &Option<String>| v.as_ref().map_or(Bson::Null, |s| Bson::from(s.as_str()));
        doc! {
            "guild_id": i64::try_from(self.guild).unwrap_or(i64::MAX),
            "at": DateTime::from_millis(self.at),
            "actor_id": &self.actor_id,
            "action": &self.action,
            "user_id": self.user.map_or(Bson::Null, |u| Bson::from(i64::try_from(u).unwrap_or(i64::MAX))),
            "what": opt_str(&self.what),
            "amount": self.amount.map_or(Bson::Null, Bson::from),
            "reason": opt_str(&self.reason),
            "old": opt_str(&self.old),
            "new": opt_str(&self.new),
        }
    }

    fn of(d: &Document) -> AuditEntry {
        let s = |k: &str| d.get_str(k).ok().map(str::to_owned);
        AuditEntry {
            guild: from_i64(int(d, "guild_id")),
            at: millis_of(d, "at"),
            actor_id: s("actor_id").unwrap_or_default(),
            action: s("action").unwrap_or_default(),
            user: matches!(d.get("user_id"), Some(Bson::Int64(_) | Bson::Int32(_)))
                .then(|| from_i64(int(d, "user_id"))),
            what: s("what"),
            amount: matches!(d.get("amount"), Some(Bson::Int64(_) | Bson::Int32(_)))
                .then(|| int(d, "amount")),
            reason: s("reason"),
            old: s("old"),
            new: s("new"),
        }
    }
}

/// The audit entry's id of correction `id` in `guild`.
pub(super) fn correction_id(guild: u64, id: u64) -> String {
    format!("adjust:{guild}:{id}")
}

/// The audit entry of a correction op (`action: "adjust"`, with its `day`
/// and `correction_id`), without `guild_id` and `user_id` (the statement
/// sets them); none for another op.
pub(super) fn correction_document(op: &crate::durable::op::Op) -> Option<Document> {
    let crate::durable::op::Op::Adjust {
        guild,
        user,
        id,
        what,
        amount,
        at,
        day,
        actor,
        reason,
    } = op
    else {
        return None;
    };
    let mut d = AuditEntry {
        guild: *guild,
        at: *at,
        actor_id: actor.clone(),
        action: "adjust".to_owned(),
        user: Some(*user),
        what: Some(what.clone()),
        amount: Some(*amount),
        reason: Some(reason.clone()),
        old: None,
        new: None,
    }
    .to_document();
    d.remove("guild_id");
    d.remove("user_id");
    d.insert("day", day.as_str());
    d.insert("correction_id", id.to_string());
    Some(d)
}

/// A correction entry as the history and `/ud` read it.
pub(super) fn correction_of(d: &Document) -> Option<crate::core::history::HistoryCorrection> {
    Some(crate::core::history::HistoryCorrection {
        at: millis_of(d, "at"),
        what: crate::core::correction::What::parse(d.get_str("what").ok()?).ok()?,
        amount: int(d, "amount"),
    })
}

impl Store {
    /// The audit log's indexes: a server's entries newest first, and a
    /// member's.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub(super) async fn ensure_audit_indexes(&self) -> Result<(), StoreError> {
        for (key, name) in [
            (doc! { "guild_id": 1, "at": -1 }, "by_guild_at"),
            (
                doc! { "guild_id": 1, "user_id": 1, "at": -1 },
                "by_member_at",
            ),
        ] {
            self.command(
                doc! { "createIndexes": AUDIT_LOG, "indexes": [{ "key": key, "name": name }] },
            )
            .await?;
        }
        Ok(())
    }

    /// Writes `entry` under `id` unless an entry has that id already.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn append_audit(&self, id: &str, entry: &AuditEntry) -> Result<(), StoreError> {
        self.decisive(AUDIT_LOG)
            .update_one(
                doc! { "_id": id },
                doc! { "$setOnInsert": entry.to_document() },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    /// `member`'s latest `limit` corrections, newest first (index
    /// `by_member_at`).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn corrections(
        &self,
        member: crate::core::MemberKey,
        limit: usize,
    ) -> Result<Vec<crate::core::history::HistoryCorrection>, StoreError> {
        let docs: Vec<Document> = self
            .db
            .collection::<Document>(AUDIT_LOG)
            .find(doc! {
                "guild_id": i64::try_from(member.guild).unwrap_or(i64::MAX),
                "user_id": i64::try_from(member.user).unwrap_or(i64::MAX),
                "action": "adjust",
            })
            .sort(doc! { "at": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        Ok(docs.iter().filter_map(correction_of).collect())
    }

    /// A server's entries (only `user`'s when given), newest first, `limit`
    /// of them after skipping `skip`.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn audit_entries(
        &self,
        guild: u64,
        user: Option<u64>,
        skip: u64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut filter = doc! { "guild_id": i64::try_from(guild).unwrap_or(i64::MAX) };
        if let Some(u) = user {
            filter.insert("user_id", i64::try_from(u).unwrap_or(i64::MAX));
        }
        let docs: Vec<Document> = self
            .decisive(AUDIT_LOG)
            .find(filter)
            .sort(doc! { "at": -1, "_id": -1 })
            .skip(skip)
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(docs.iter().map(AuditEntry::of).collect())
    }
}
