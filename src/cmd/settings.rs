//! `settings`: print a server's settings, as `/settings show` would.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::now_millis;
use crate::config::Settings;
use crate::core::settings::Defaults;
use crate::render::settings::{render_settings, settings_json};

/// `settings --guild ID [--json]`.
///
/// # Errors
/// MongoDB cannot be read.
pub async fn settings(settings: &Settings, guild: u64, json: bool) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let stored = store
        .guild_settings(guild)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let defaults = Defaults {
        timezone: settings.tracking.timezone,
        streak_min_minutes: settings.tracking.streak_min_minutes,
    };
    if json {
        println!("{}", settings_json(&stored.settings, defaults));
    } else {
        println!(
            "{}",
            render_settings(&stored.settings, defaults, now_millis())
        );
    }
    Ok(())
}
