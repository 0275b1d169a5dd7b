//! Members' privacy in the event path: who opted out of tracking (kept in
//! memory, loaded with the settings), opting out and back in.

use std::collections::HashSet;

use super::App;
use crate::core::{MemberKey, Millis};
use crate::store::StoreError;

/// The members who opted out, as this instance knows them, and those
/// whose tracking is paused while their data is erased.
#[derive(Debug, Default)]
pub(super) struct OptOuts(
    std::sync::RwLock<HashSet<MemberKey>>,
    std::sync::RwLock<HashSet<MemberKey>>,
);

impl OptOuts {
    fn contains(&self, m: MemberKey) -> bool {
        let read = |s: &std::sync::RwLock<HashSet<MemberKey>>| {
            s.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&m)
        };
        read(&self.0) || read(&self.1)
    }

    fn pause(&self, m: MemberKey, paused: bool) {
        toggle(&self.1, m, paused);
    }

    fn set(&self, m: MemberKey, out: bool) {
        toggle(&self.0, m, out);
    }

    pub(super) fn replace(&self, all: HashSet<MemberKey>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = all;
    }
}

/// `m` in `set` or not.
fn toggle(set: &std::sync::RwLock<HashSet<MemberKey>>, m: MemberKey, on: bool) {
    let mut set = set
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if on {
        set.insert(m);
    } else {
        set.remove(&m);
    }
}

impl App {
    /// Whether `member` opted out of tracking in their server.
    #[must_use]
    pub fn opted_out(&self, member: MemberKey) -> bool {
        self.opt_outs.contains(member)
    }

    /// Who opted out, as known here.
    pub(super) fn opted_out_list(&self) -> Vec<MemberKey> {
        self.opt_outs
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Who opted out, from the local copy (a start without MongoDB).
    pub(super) fn set_opted_out_list(&self, list: Vec<MemberKey>) {
        self.store.hide(&list);
        self.opt_outs.replace(list.into_iter().collect());
    }

    /// Reloads who opted out.
    ///
    /// # Errors
    /// MongoDB is unreachable: those known stay.
    pub async fn load_opt_outs(&self) -> Result<usize, StoreError> {
        let list = self.store.opted_out_members().await?;
        self.store.hide(&list);
        let all: HashSet<MemberKey> = list.into_iter().collect();
        let n = all.len();
        self.opt_outs.replace(all);
        Ok(n)
    }

    /// Saves `member`'s choice and puts it in force from `now`: opting out
    /// credits an open session up to now and ends it (the caller's next
    /// events for them are no presence); opting in is followed by the
    /// caller's report of where they are.
    ///
    /// # Errors
    /// MongoDB refused or is unreachable: nothing changed.
    pub async fn set_opted_out(
        &self,
        member: MemberKey,
        out: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.store.set_opted_out(member, out, now).await?;
        self.opt_outs.set(member, out);
        // The rankings follow (others' opt-outs may have changed too).
        if let Err(e) = self.load_opt_outs().await {
            tracing::warn!(error = %e, consequence = "the rankings follow at the next reload", "cannot reload the opt-outs");
        }
        if out {
            self.voice_update(member, None, super::now_millis().max(now))
                .await;
        }
        Ok(())
    }
}

/// How long an erasure waits for the writer (ops counted before it to be in
/// the spool; the applier to finish what it had in flight).
const ERASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl App {
    /// Erases everything stored about `member` (ARCHITECTURE.md, invariant
    /// 20): tracking paused for them, their session ended, a pending
    /// tombstone (nothing of theirs applies from then on), then, once every
    /// op counted for them is in the spool, the tombstone completed at this
    /// writer's last sequence number and their documents deleted; the audit
    /// log records it. Activity after it counts afresh (the caller reports
    /// where they are).
    ///
    /// # Errors
    /// MongoDB refused or is unreachable: the erasure may be pending (a
    /// tombstone that drops their ops), and running it again finishes it.
    pub async fn erase_member(
        &self,
        member: MemberKey,
        actor: &crate::store::Actor,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.opt_outs.pause(member, true);
        self.voice_update_paused(member, now).await;
        let result = async {
            self.store.request_erasure(member, now).await?;
            let seq = self.finish_erasure(member, now).await?;
            let entry = crate::store::AuditEntry::erasure(member, actor, now);
            self.store
                .append_audit(
                    &format!("erase:{}:{}:{seq}", member.guild, member.user),
                    &entry,
                )
                .await
        }
        .await;
        self.opt_outs.pause(member, false);
        result
    }

    /// Erases everything stored about `guild` (`purge-guild`, the
    /// retention): [`App::erase_member`] with the whole server's key (no
    /// member's tracking to pause); the audit log records a `purge`.
    ///
    /// # Errors
    /// As [`App::erase_member`].
    pub async fn purge_guild(
        &self,
        guild: u64,
        actor: &crate::store::Actor,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.erase_member(crate::store::whole_guild(guild), actor, now)
            .await
    }

    /// Completes the erasures requested elsewhere (the CLI) or left pending;
    /// only the instance that counts does.
    pub async fn complete_pending_erasures(&self, pending: Vec<crate::store::PendingErasure>) {
        if !self.lease().counts() {
            return;
        }
        for p in pending {
            self.opt_outs.pause(p.member, true);
            self.voice_update_paused(p.member, super::now_millis())
                .await;
            match self.finish_erasure(p.member, super::now_millis()).await {
                Ok(seq) => tracing::info!(
                    guild_id = p.member.guild,
                    user_id = p.member.user,
                    seq,
                    "completed a requested erasure"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, guild_id = p.member.guild, user_id = p.member.user, "cannot complete an erasure yet; their ops stay dropped");
                }
            }
            self.opt_outs.pause(p.member, false);
        }
    }

    /// The session of a paused member ends now (credited, then erased).
    async fn voice_update_paused(&self, member: MemberKey, now: Millis) {
        self.voice_update(member, None, now).await;
    }

    /// The barrier, the completion at this writer's last sequence number,
    /// and a second delete once what the applier had in flight is done.
    async fn finish_erasure(&self, member: MemberKey, now: Millis) -> Result<u64, StoreError> {
        if !self.writer.wait_spooled(ERASE_WAIT).await {
            tracing::warn!(
                "ops still reaching the spool at an erasure; erasing up to the last one spooled"
            );
        }
        let seq = self.writer.last_seq();
        self.store.complete_erasure(member, seq, now).await?;
        let _ = self.writer.wait_idle(ERASE_WAIT).await;
        self.store.delete_member_documents(member).await?;
        Ok(seq)
    }
}
