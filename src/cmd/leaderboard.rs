//! `leaderboard`: print a page of a server's ranking, as a table or JSON.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::{leaderboard_page, now_millis};
use crate::cli::{ByArg, PeriodArg};
use crate::config::Settings;
use crate::core::leaderboard::{By, Page, Period};
use crate::render::render_leaderboard_table;

/// `leaderboard`: page `page` of `guild`'s ranking in the period containing
/// now (in `TIMEZONE`), from the rollups as stored.
///
/// # Errors
/// MongoDB cannot be read.
pub async fn leaderboard(
    settings: &Settings,
    guild: u64,
    period: PeriodArg,
    by: ByArg,
    page: u64,
    json: bool,
) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let period = match period {
        PeriodArg::Today => Period::Today,
        PeriodArg::Week => Period::Week,
        PeriodArg::Month => Period::Month,
        PeriodArg::All => Period::All,
    };
    let by = match by {
        ByArg::Voice => By::Voice,
        ByArg::Camera => By::Camera,
        ByArg::Messages => By::Messages,
    };
    let (tz, _) = super::guild_settings(&store, settings, guild).await?;
    let page = leaderboard_page(&store, guild, period, by, page, None, now_millis(), tz)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    if json {
        println!("{}", to_json(&page));
    } else {
        print!("{}", render_leaderboard_table(&page));
    }
    Ok(())
}

/// `{"period", "by", "entries": [{"rank", "user_id", "voice_cam_on_secs",
/// "voice_cam_off_secs", "messages"}]}`, ids as strings (as Discord writes them).
fn to_json(page: &Page) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = page
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "rank": e.rank,
                "user_id": e.user.to_string(),
                "voice_cam_on_secs": e.totals.cam_on_secs,
                "voice_cam_off_secs": e.totals.cam_off_secs,
                "messages": e.totals.messages,
            })
        })
        .collect();
    serde_json::json!({
        "period": page.period.name(),
        "by": page.by.name(),
        "entries": entries,
    })
}
