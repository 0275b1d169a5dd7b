//! Erasures: a member's data deleted on request (`/privacy erase`,
//! `study-tracker erase`), a whole server's (`purge-guild`, the retention
//! after the bot is removed; key [`whole_guild`]), and the tombstones that
//! keep it deleted.
//!
//! Documents used to be never deleted, and exactly-once relied on that: a
//! statement's guard is the document's own `seq`, so a deleted document
//! would take a replayed op again. An erasure therefore leaves a tombstone
//! in `erasures` (`{_id: "g:u", guild_id, user_id, seq, pending,
//! requested_at, done_at}`) and every apply drops the member's ops up to it
//! before building statements:
//! - `pending: true`: requested (by the CLI, or by a holder whose completion
//!   did not finish); every op of the member is dropped until a holder
//!   completes it;
//! - completed: ops with `seq <= seq` are dropped (everything the completing
//!   holder had counted for the member when it completed), later ones apply
//!   (activity after the erasure counts afresh).
//!
//! The tombstones are read before the first apply of a process (and at
//! every settings reload), and the completing holder raises the sequence
//! high-water mark to `seq` first, so a later holder's sequence numbers are
//! all above it.

use std::collections::HashMap;
use std::sync::RwLock;

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};

use super::schema::{
    from_i64, int, seq_bson, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_STATS, MEMBER_WEEKS,
    VOICE_SEGMENTS, VOICE_SESSIONS,
};
use super::{Store, StoreError};
use crate::core::{MemberKey, Millis};
use crate::durable::op::Sequenced;

pub(super) const ERASURES: &str = "erasures";

/// The collections an erasure deletes a member's documents from (and, in
/// the audit log, their corrections; the rest of the audit log and the
/// opt-out are kept: the record that an erasure happened, and the member's
/// choice).
const ERASED: [&str; 6] = [
    MEMBER_STATS,
    MEMBER_DAYS,
    MEMBER_WEEKS,
    MEMBER_MONTHS,
    VOICE_SEGMENTS,
    VOICE_SESSIONS,
];

/// The tombstones this process knows: per member, the highest sequence
/// number erased (`u64::MAX` while pending). `None` until first read.
#[derive(Debug, Default)]
pub(super) struct Tombstones(RwLock<Option<HashMap<MemberKey, u64>>>);

/// A pending erasure, for the holder to complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingErasure {
    pub member: MemberKey,
    pub requested_at: Millis,
}

fn key_of(d: &Document) -> MemberKey {
    MemberKey {
        guild: from_i64(int(d, "guild_id")),
        user: from_i64(int(d, "user_id")),
    }
}

/// The key of a whole server's erasure (`purge-guild`, the retention): no
/// Discord user has id 0.
#[must_use]
pub fn whole_guild(guild: u64) -> MemberKey {
    MemberKey { guild, user: 0 }
}

pub(super) fn id_of(m: MemberKey) -> String {
    if m.user == 0 {
        format!("{}:*", m.guild)
    } else {
        format!("{}:{}", m.guild, m.user)
    }
}

fn to_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

impl Tombstones {
    fn loaded(&self) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// The highest sequence number erased for `m` (none when not erased
    /// or not read yet: [`Tombstones::loaded`] first).
    fn cutoff(&self, m: MemberKey) -> Option<u64> {
        let read = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let all = read.as_ref()?;
        let own = all.get(&m).copied();
        let server = all.get(&whole_guild(m.guild)).copied();
        own.max(server)
    }

    fn set(&self, m: MemberKey, seq: u64) {
        let mut w = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(all) = w.as_mut() {
            all.insert(m, seq);
        }
    }
}

impl Store {
    /// Reads every tombstone (before the first apply, and at each reload).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn load_tombstones(&self) -> Result<Vec<PendingErasure>, StoreError> {
        let docs: Vec<Document> = self
            .decisive(ERASURES)
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let mut all = HashMap::new();
        let mut pending = Vec::new();
        for d in &docs {
            let m = key_of(d);
            if d.get_bool("pending").unwrap_or(false) {
                all.insert(m, u64::MAX);
                pending.push(PendingErasure {
                    member: m,
                    requested_at: d
                        .get_datetime("requested_at")
                        .map_or(0, |t| t.timestamp_millis()),
                });
            } else {
                all.insert(m, u64::try_from(int(d, "seq")).unwrap_or(0));
            }
        }
        *self
            .tombstones
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(all);
        Ok(pending)
    }

    /// `batch` without the ops an erasure covers (read first if not yet).
    ///
    /// # Errors
    /// The tombstones cannot be read: nothing may be applied before.
    /// When an erasure between two attempts of a batch drops more of it, the
    /// steps are numbered afresh and all sent again (replays change nothing).
    pub(super) async fn without_erased(
        &self,
        batch: &[Sequenced],
        progress: &mut super::ApplyProgress,
    ) -> Result<Option<Vec<Sequenced>>, StoreError> {
        if !self.tombstones.loaded() {
            self.load_tombstones().await?;
        }
        let erased = |o: &Sequenced| {
            self.tombstones
                .cutoff(o.op.member())
                .is_some_and(|s| o.seq <= s)
        };
        let n = batch.iter().filter(|o| !erased(o)).count();
        if progress.kept.replace(n).is_some_and(|k| k != n) {
            progress.done.clear();
        }
        if n == batch.len() {
            return Ok(None);
        }
        let kept: Vec<Sequenced> = batch.iter().filter(|o| !erased(o)).cloned().collect();
        tracing::info!(
            dropped = batch.len() - kept.len(),
            "dropped ops of erased members"
        );
        Ok(Some(kept))
    }

    /// Records that `member`'s data is to be erased (pending): from now on
    /// no apply writes anything of theirs until an erasure completes.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn request_erasure(&self, member: MemberKey, at: Millis) -> Result<(), StoreError> {
        self.decisive(ERASURES)
            .update_one(
                doc! { "_id": id_of(member) },
                doc! { "$set": {
                    "guild_id": to_i64(member.guild),
                    "user_id": to_i64(member.user),
                    "pending": true,
                    "requested_at": DateTime::from_millis(at),
                } },
            )
            .upsert(true)
            .await?;
        self.tombstones.set(member, u64::MAX);
        Ok(())
    }

    /// Completes `member`'s erasure at sequence number `seq` (everything this
    /// writer counted for them so far): the high-water mark raised to it,
    /// their documents deleted, the tombstone completed. Idempotent.
    ///
    /// # Errors
    /// The server is unreachable or refuses (run it again).
    pub async fn complete_erasure(
        &self,
        member: MemberKey,
        seq: u64,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.raise_seq_high_water(seq).await?;
        self.delete_member_documents(member).await?;
        self.decisive(ERASURES)
            .update_one(
                doc! { "_id": id_of(member) },
                vec![doc! { "$set": {
                    "guild_id": to_i64(member.guild),
                    "user_id": to_i64(member.user),
                    "pending": false,
                    "seq": { "$max": [{ "$ifNull": ["$seq", 0_i64] }, seq_bson(seq)] },
                    "done_at": DateTime::from_millis(at),
                } }],
            )
            .upsert(true)
            .await?;
        self.tombstones.set(member, seq);
        Ok(())
    }

    /// Deletes `member`'s documents in every collection an erasure covers.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn delete_member_documents(&self, member: MemberKey) -> Result<u64, StoreError> {
        let mut filter = doc! { "guild_id": to_i64(member.guild) };
        if member.user != 0 {
            filter.insert("user_id", to_i64(member.user));
        }
        let mut deleted = 0;
        for coll in ERASED {
            deleted += self
                .decisive(coll)
                .delete_many(filter.clone())
                .await?
                .deleted_count;
        }
        self.forget_boards(member.guild);
        // An operator's correction not finished yet never comes back.
        deleted += self
            .decisive(super::corrections::CORRECTIONS_PENDING)
            .delete_many(filter.clone())
            .await?
            .deleted_count;
        // Corrections are the member's figures too: their entries go; the
        // audit log keeps the record that the erasure happened.
        let mut corrections = filter.clone();
        corrections.insert("action", "adjust");
        deleted += self
            .decisive(super::schema::AUDIT_LOG)
            .delete_many(corrections)
            .await?
            .deleted_count;
        if member.user == 0 {
            // The whole server: its settings and its members' choices too.
            for coll in [
                super::settings::GUILD_SETTINGS,
                super::privacy::MEMBER_PRIVACY,
            ] {
                deleted += self
                    .decisive(coll)
                    .delete_many(filter.clone())
                    .await?
                    .deleted_count;
            }
        }
        Ok(deleted)
    }

    /// Whether `member` (or their whole server) was erased at or after `at`.
    ///
    /// # Errors
    /// The server is unreachable.
    pub(super) async fn erased_since(
        &self,
        member: MemberKey,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let found = self
            .decisive(ERASURES)
            .find_one(doc! {
                "_id": { "$in": [id_of(member), id_of(whole_guild(member.guild))] },
                "requested_at": { "$gte": DateTime::from_millis(at) },
            })
            .await?;
        Ok(found.is_some())
    }

    /// Whether anything of `member` is stored in the erased collections.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn has_member_documents(&self, member: MemberKey) -> Result<bool, StoreError> {
        let mut filter = doc! { "guild_id": to_i64(member.guild) };
        if member.user != 0 {
            filter.insert("user_id", to_i64(member.user));
        }
        let mut corrections = filter.clone();
        corrections.insert("action", "adjust");
        let checks = ERASED
            .iter()
            .map(|c| (*c, filter.clone()))
            .chain([(super::schema::AUDIT_LOG, corrections)]);
        for (coll, filter) in checks {
            if self.decisive(coll).find_one(filter).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
