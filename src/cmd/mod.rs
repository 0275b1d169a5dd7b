//! One file per CLI subcommand other than `run` (which is
//! [`crate::startup::Application`]).

mod adjust;
mod audit;
mod check;
mod dead_letters;
mod erase;
mod export;
mod history;
mod import_legacy;
mod leaderboard;
mod render_ud;
mod settings;
mod stats;

pub use adjust::adjust;
pub use audit::audit;
pub use check::check;
pub use dead_letters::dead_letters;
pub use erase::{erase, purge_guild};
pub use export::export;
pub use history::history;
pub use import_legacy::import_legacy;
pub use leaderboard::leaderboard;
pub use render_ud::render_ud;
pub use settings::settings;
pub use stats::stats;

use crate::config::MongoSettings;
use crate::store::Store;

async fn connect(mongo: &MongoSettings) -> anyhow::Result<Store> {
    Ok(Store::connect(&mongo.uri, &mongo.db)
        .await?
        .with_write_concern(mongo.write_concern))
}

/// The context of a failed read for a CLI answer: which server (password
/// redacted).
fn cannot_read(mongo: &MongoSettings) -> impl FnOnce() -> String + '_ {
    || {
        format!(
            "cannot read from MongoDB at {}",
            crate::config::redact_uri(&mongo.uri)
        )
    }
}

/// The server's settings in force (its own where set, the defaults else):
/// what its days, periods and streaks are cut by; and who opted out (read
/// for the rankings).
async fn guild_settings(
    store: &Store,
    settings: &crate::config::Settings,
    guild: u64,
) -> anyhow::Result<(chrono_tz::Tz, u32)> {
    use anyhow::Context as _;
    let stored = store
        .guild_settings(guild)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    // Who opted out, left off the rankings.
    store
        .load_hidden()
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let defaults = crate::core::settings::Defaults {
        timezone: settings.tracking.timezone,
        streak_min_minutes: settings.tracking.streak_min_minutes,
    };
    Ok((
        stored.settings.timezone_or(defaults),
        stored.settings.streak_min_minutes_or(defaults),
    ))
}
