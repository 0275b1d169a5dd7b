//! A server the bot was removed from: its data is kept for
//! `GUILD_RETENTION_DAYS`, then erased by the lease holder; a `GUILD_CREATE`
//! in time cancels it (README, "Privacy").

use std::time::Duration;

use super::App;
use crate::core::Millis;
use crate::store::Actor;

impl App {
    /// How long a server's data is kept after the bot is removed from it.
    pub fn set_guild_retention(&self, keep: Duration) {
        let ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        self.settings
            .retention_ms()
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The bot was removed from `guild` (a `GUILD_DELETE` that is not an
    /// outage): the holder records it, and erases the server's data once
    /// the retention has passed.
    pub async fn guild_removed(&self, guild: u64, now: Millis) {
        self.settings.present().remove(&guild);
        if !self.lease().counts() {
            return;
        }
        match self.store.mark_guild_removed(guild, now).await {
            Ok(()) => {
                self.settings.removed().entry(guild).or_insert(now);
                tracing::info!(
                    guild_id = guild,
                    "removed from a server; its data is kept for the retention, then erased"
                );
            }
            Err(e) => {
                tracing::warn!(guild_id = guild, error = %e, consequence = "recorded at the next removal", "cannot record the removal from a server");
            }
        }
    }

    /// The bot is in `guild` (a `GUILD_CREATE`): a retention under way for
    /// it is cancelled.
    pub async fn guild_present(&self, guild: u64) {
        self.settings.present().insert(guild);
        if !self.settings.removed().contains_key(&guild) || !self.lease().counts() {
            return;
        }
        match self.store.mark_guild_back(guild).await {
            Ok(()) => {
                self.settings.removed().remove(&guild);
                tracing::info!(guild_id = guild, "back in a server; its data is kept");
            }
            Err(e) => {
                tracing::warn!(guild_id = guild, error = %e, "cannot cancel a server's retention; trying again at its next GUILD_CREATE");
            }
        }
    }

    /// Erases the data of every server the bot left longer ago than the
    /// retention (the holder only).
    pub(super) async fn run_retention(&self, now: Millis) {
        if !self.lease().counts() {
            return;
        }
        let keep = self
            .settings
            .retention_ms()
            .load(std::sync::atomic::Ordering::Relaxed);
        let due: Vec<u64> = self
            .settings
            .removed()
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) >= keep)
            .filter(|(g, _)| !self.settings.present().contains(g))
            .map(|(g, _)| *g)
            .collect();
        for guild in due {
            match self.purge_guild(guild, &Actor::Retention, now).await {
                Ok(()) => {
                    self.settings.removed().remove(&guild);
                    tracing::info!(
                        guild_id = guild,
                        "erased a server's data after the retention"
                    );
                }
                Err(e) => {
                    tracing::warn!(guild_id = guild, error = %e, "cannot erase a server's data yet; trying again");
                }
            }
        }
    }
}
