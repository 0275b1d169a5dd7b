//! `render-ud`: write one member's 14-day chart as a PNG (what `/ud` will
//! attach), for operators and for looking at it.

use std::path::Path;

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::now_millis;
use crate::config::Settings;
use crate::core::daily::{daily, window_start};
use crate::core::MemberKey;
use crate::render::chart::{render_chart, CHART_DAYS, HEIGHT, WIDTH};

/// `render-ud`: read the member, draw the last [`CHART_DAYS`] local days in
/// `TIMEZONE`, write the PNG to `out`.
///
/// # Errors
/// MongoDB cannot be read, or `out` cannot be written.
pub async fn render_ud(
    settings: &Settings,
    guild: u64,
    user: u64,
    out: &Path,
) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let now = now_millis();
    let (tz, _) = super::guild_settings(&store, settings, guild).await?;
    let since = window_start(now, tz, CHART_DAYS);
    let stored = store
        .member(MemberKey { guild, user }, since.at, &since.day)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let days = daily(&stored, None, now, tz, CHART_DAYS);
    let title = format!("user {user}: last {CHART_DAYS} days ({})", tz.name());
    // CPU work, but this process does nothing else meanwhile.
    let png = render_chart(&days, &title)?;
    tokio::fs::write(out, &png)
        .await
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{}: {WIDTH}x{HEIGHT} PNG, {} bytes",
        out.display(),
        png.len()
    );
    Ok(())
}
