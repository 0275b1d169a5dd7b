//! Each server's settings: kept in memory for the event path (what counts
//! is decided on every voice change and message), loaded from MongoDB at
//! start and every [`REFRESH_EVERY`] (so a standby follows the holder's
//! changes), and changed by `/settings` and `study-tracker settings`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

mod local_copy;

use super::App;
use crate::core::settings::{Defaults, GuildSettings};
use crate::core::Millis;
use crate::store::{Actor, AuditEntry, ChangeError, Store, StoreError};

/// How often every instance reloads the servers' settings.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// [`REFRESH_EVERY`]; in debug builds (the tests' binary)
/// `STUDY_TRACKER_DEBUG_SETTINGS_REFRESH_MS` changes it, so a test can hold
/// a standby's view still. Release builds never read it.
fn refresh_every() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("STUDY_TRACKER_DEBUG_SETTINGS_REFRESH_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Duration::from_millis(ms);
    }
    REFRESH_EVERY
}

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
    /// Where the last settings read are kept for a start without MongoDB.
    std::sync::OnceLock<std::path::PathBuf>,
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

    pub(super) fn present(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::collections::HashSet<u64>> {
        self.3
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn retention_ms(&self) -> &std::sync::atomic::AtomicI64 {
        &self.2
    }

    pub(super) fn removed(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Millis>> {
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
        self.keep_settings_copy();
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
    /// Keeps a copy of every server's settings (and the opt-outs) in
    /// `path` after each read, for a start while MongoDB does not answer.
    pub fn keep_settings_in(&self, path: std::path::PathBuf) {
        let _ = self.settings.4.set(path);
    }

    fn keep_settings_copy(&self) {
        let Some(path) = self.settings.4.get() else {
            return;
        };
        let servers: Vec<(u64, GuildSettings)> = self
            .settings
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(g, s)| (*g, s.clone()))
            .collect();
        let copy = local_copy::Copy {
            servers,
            opted_out: self.opted_out_list(),
        };
        if let Err(e) = local_copy::write(path, &copy) {
            tracing::warn!(error = %e, path = %path.display(), "cannot keep a local copy of the servers' settings");
        }
    }

    /// The first read of the settings at start, bounded by `wait`; without
    /// MongoDB, the local copy the last read left in `SPOOL_DIR`.
    pub async fn read_settings_at_start(&self, wait: Duration) {
        match tokio::time::timeout(wait, self.load_settings()).await {
            Ok(Ok(n)) => tracing::info!(servers = n, "read the servers' settings"),
            _ => {
                if let Some(n) = self.settings_from_local_copy() {
                    tracing::warn!(
                        servers = n,
                        consequence = "the settings last read apply until MongoDB answers",
                        "cannot read the servers' settings; using the local copy in SPOOL_DIR"
                    );
                } else {
                    tracing::warn!(
                        consequence = "the defaults apply until MongoDB answers",
                        "cannot read the servers' settings, and no local copy"
                    );
                }
            }
        }
    }

    /// Puts the local copy's settings in force (a start while MongoDB does
    /// not answer); returns how many servers it held.
    fn settings_from_local_copy(&self) -> Option<usize> {
        let copy = local_copy::read(self.settings.4.get()?)?;
        let n = copy.servers.len();
        for (g, s) in copy.servers {
            self.settings.set(g, s);
        }
        self.set_opted_out_list(copy.opted_out);
        Some(n)
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
        app.finish_operator_corrections(super::now_millis()).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(refresh_every()) => {}
        }
    }
}
