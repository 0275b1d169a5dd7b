//! Each server's settings: kept in memory for the event path (what counts
//! is decided on every voice change and message), loaded from MongoDB at
//! start and every [`REFRESH_EVERY`] (so a standby follows the holder's
//! changes), and changed by `/settings` and `study-tracker settings`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::App;
use crate::core::settings::{Defaults, GuildSettings};
use crate::core::Millis;
use crate::store::{Actor, AuditEntry, ChangeError, Store, StoreError};

/// How often every instance reloads the servers' settings.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// What `/settings` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsChange {
    Timezone(Tz),
    Exclude(u64),
    Include(u64),
    StreakMinutes(u32),
}

/// A change as saved: the setting's name and its values before and after,
/// as the audit log and the reply show them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub what: &'static str,
    pub old: String,
    pub new: String,
    pub settings: GuildSettings,
}

/// Why a change was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Nothing to change (already so): said to the member, nothing written.
    #[error("{0}")]
    Unchanged(String),
    #[error("the settings cannot be saved right now: {0}")]
    Store(#[from] StoreError),
}

/// The servers' settings this instance knows (shared with the event path),
/// when the bot was removed from which (the retention), and how long their
/// data is kept after that.
#[derive(Debug, Default)]
pub(super) struct SettingsCache(
    std::sync::RwLock<HashMap<u64, GuildSettings>>,
    std::sync::RwLock<HashMap<u64, Millis>>,
    std::sync::atomic::AtomicI64,
    /// Servers the gateway says the bot is in (a `GUILD_CREATE` since the
    /// last removal): never erased by the retention, whatever a reload read.
    std::sync::RwLock<std::collections::HashSet<u64>>,
);

impl SettingsCache {
    fn get(&self, guild: u64) -> GuildSettings {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&guild)
            .cloned()
            .unwrap_or_default()
    }

    fn set(&self, guild: u64, s: GuildSettings) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(guild, s);
    }

    fn present(&self) -> std::sync::RwLockWriteGuard<'_, std::collections::HashSet<u64>> {
        self.3
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn removed(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Millis>> {
        self.1
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl App {
    /// The deployment's defaults (`TIMEZONE`, `STREAK_MIN_MINUTES`).
    #[must_use]
    pub fn defaults(&self) -> Defaults {
        Defaults {
            timezone: self.tz,
            streak_min_minutes: self.streak_min_minutes(),
        }
    }

    /// A server's settings as this instance knows them.
    #[must_use]
    pub fn settings_of(&self, guild: u64) -> GuildSettings {
        self.settings.get(guild)
    }

    /// The timezone a server's days, periods and streaks are cut in.
    #[must_use]
    pub fn timezone_of(&self, guild: u64) -> Tz {
        self.settings_of(guild).timezone_or(self.defaults())
    }

    /// `effect` as an op, its days cut in its server's zone.
    pub(super) fn op_of(&self, effect: crate::core::tracker::Effect) -> crate::durable::op::Op {
        let guild = match &effect {
            crate::core::tracker::Effect::Credit(c) => c.member.guild,
            crate::core::tracker::Effect::Checkpoint { member, .. } => member.guild,
        };
        crate::durable::op::Op::effect(effect, self.timezone_of(guild))
    }

    /// Voice seconds a local day needs in `guild` to count towards a streak.
    #[must_use]
    pub fn streak_min_secs_of(&self, guild: u64) -> i64 {
        i64::from(
            self.settings_of(guild)
                .streak_min_minutes_or(self.defaults()),
        ) * 60
    }

    /// Reloads every server's settings from MongoDB.
    ///
    /// # Errors
    /// MongoDB is unreachable: the settings known stay in force.
    pub async fn load_settings(&self) -> Result<usize, StoreError> {
        let all = self.store.guild_settings_all().await?;
        let n = all.len();
        let mut removed = HashMap::new();
        for s in all {
            if let Some(at) = s.removed_at {
                removed.insert(s.guild, at);
            }
            self.settings.set(s.guild, s.settings);
        }
        removed.retain(|g, _| !self.settings.present().contains(g));
        *self.settings.removed() = removed;
        self.load_opt_outs().await?;
        Ok(n)
    }

    /// Saves a change to a server's settings by `actor`, audited, and puts
    /// it in force here; returns what changed. The caller applies it to the
    /// members in voice (a guild snapshot under the new settings).
    ///
    /// # Errors
    /// Nothing to change, or MongoDB refused or is unreachable (nothing
    /// changed then).
    pub async fn change_settings(
        &self,
        guild: u64,
        actor: &Actor,
        change: SettingsChange,
        now: Millis,
    ) -> Result<Changed, SettingsError> {
        change_settings(&self.store, self.defaults(), guild, actor, change, now)
            .await
            .inspect(|c| self.settings.set(guild, c.settings.clone()))
    }
}

impl App {
    /// How long a server's data is kept after the bot is removed from it.
    pub fn set_guild_retention(&self, keep: Duration) {
        let ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        self.settings
            .2
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
    async fn run_retention(&self, now: Millis) {
        if !self.lease().counts() {
            return;
        }
        let keep = self.settings.2.load(std::sync::atomic::Ordering::Relaxed);
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

/// [`App::change_settings`] without an [`App`] (the CLI): reads the stored
/// settings, applies `change`, saves with a compare-and-set (tried again
/// when another change landed first).
///
/// # Errors
/// As [`App::change_settings`].
pub async fn change_settings(
    store: &Store,
    defaults: Defaults,
    guild: u64,
    actor: &Actor,
    change: SettingsChange,
    now: Millis,
) -> Result<Changed, SettingsError> {
    for _ in 0..5 {
        let stored = store.guild_settings(guild).await?;
        let changed = apply(&stored.settings, defaults, change)?;
        let entry = AuditEntry {
            guild,
            at: now,
            actor_id: actor.id(),
            action: "settings".to_owned(),
            user: None,
            what: Some(changed.what.to_owned()),
            amount: None,
            reason: None,
            old: Some(changed.old.clone()),
            new: Some(changed.new.clone()),
        };
        match store
            .change_guild_settings(guild, stored.version, &changed.settings, &entry)
            .await
        {
            Ok(_) => return Ok(changed),
            Err(ChangeError::Conflict) => {}
            Err(ChangeError::Store(e)) => return Err(e.into()),
        }
    }
    Err(StoreError::Transient("other changes kept landing first".to_owned()).into())
}

/// `change` applied to `s`.
fn apply(s: &GuildSettings, d: Defaults, change: SettingsChange) -> Result<Changed, SettingsError> {
    let mut new = s.clone();
    let (what, old, value) = match change {
        SettingsChange::Timezone(tz) => {
            if s.timezone == Some(tz) {
                return Err(SettingsError::Unchanged(format!(
                    "The timezone is already {}; nothing changed.",
                    tz.name()
                )));
            }
            new.timezone = Some(tz);
            (
                "timezone",
                s.timezone_or(d).name().to_owned(),
                tz.name().to_owned(),
            )
        }
        SettingsChange::StreakMinutes(m) => {
            if s.streak_min_minutes == Some(m) {
                return Err(SettingsError::Unchanged(format!(
                    "A streak day already needs {m} minutes; nothing changed."
                )));
            }
            new.streak_min_minutes = Some(m);
            (
                "streak_min_minutes",
                s.streak_min_minutes_or(d).to_string(),
                m.to_string(),
            )
        }
        SettingsChange::Exclude(c) => {
            if !new.excluded.insert(c) {
                return Err(SettingsError::Unchanged(format!(
                    "<#{c}> is already excluded; nothing changed."
                )));
            }
            (
                "excluded_channels",
                "counted".to_owned(),
                format!("excluded {c}"),
            )
        }
        SettingsChange::Include(c) => {
            if !new.excluded.remove(&c) {
                return Err(SettingsError::Unchanged(format!(
                    "<#{c}> is not excluded; nothing changed."
                )));
            }
            (
                "excluded_channels",
                "excluded".to_owned(),
                format!("counted {c}"),
            )
        }
    };
    Ok(Changed {
        what,
        old,
        new: value,
        settings: new,
    })
}

/// Reloads the settings every [`REFRESH_EVERY`] until `stop`: a standby
/// follows the holder's changes, and a takeover starts from them.
pub async fn settings_loop(app: Arc<App>, stop: CancellationToken) {
    loop {
        if let Err(e) = app.load_settings().await {
            tracing::debug!(error = %e, "cannot reload the servers' settings; keeping those known");
        }
        match app.store().load_tombstones().await {
            Ok(pending) => app.complete_pending_erasures(pending).await,
            Err(e) => tracing::debug!(error = %e, "cannot reload the erasures"),
        }
        app.run_retention(super::now_millis()).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
    }
}
