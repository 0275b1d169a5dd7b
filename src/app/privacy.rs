//! Members' privacy in the event path: who opted out of tracking (kept in
//! memory, loaded with the settings), opting out and back in.

use std::collections::HashSet;

use super::App;
use crate::core::{MemberKey, Millis};
use crate::store::StoreError;

/// The members who opted out, as this instance knows them.
#[derive(Debug, Default)]
pub(super) struct OptOuts(std::sync::RwLock<HashSet<MemberKey>>);

impl OptOuts {
    fn contains(&self, m: MemberKey) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&m)
    }

    fn set(&self, m: MemberKey, out: bool) {
        let mut set = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if out {
            set.insert(m);
        } else {
            set.remove(&m);
        }
    }

    pub(super) fn replace(&self, all: HashSet<MemberKey>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = all;
    }
}

impl App {
    /// Whether `member` opted out of tracking in their server.
    #[must_use]
    pub fn opted_out(&self, member: MemberKey) -> bool {
        self.opt_outs.contains(member)
    }

    /// Reloads who opted out.
    ///
    /// # Errors
    /// MongoDB is unreachable: those known stay.
    pub async fn load_opt_outs(&self) -> Result<usize, StoreError> {
        let all: HashSet<MemberKey> = self.store.opted_out_members().await?.into_iter().collect();
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
        if out {
            self.voice_update(member, None, super::now_millis().max(now))
                .await;
        }
        Ok(())
    }
}
