//! `stats`: print what is stored for one member, as text or JSON.

use anyhow::Context as _;

use super::connect;
use crate::app::now_millis;
use crate::config::{redact_uri, Settings};
use crate::core::periods::Periods;
use crate::core::stats::{self, Freshness, Totals};
use crate::core::MemberKey;
use crate::render::render_ud;

/// `stats`: print what is stored for one member.
///
/// # Errors
/// MongoDB cannot be read.
pub async fn stats(settings: &Settings, guild: u64, user: u64, json: bool) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let now = now_millis();
    let periods = Periods::at(now, settings.tracking.timezone);
    let earliest = periods.earliest();
    let stored = store
        .member(MemberKey { guild, user }, earliest.at, &earliest.day)
        .await
        .with_context(|| {
            format!(
                "cannot read from MongoDB at {}",
                redact_uri(&settings.mongo.uri)
            )
        })?;
    let s = stats::compute(&stored, None, &periods);
    if json {
        let t = |t: &Totals| {
            serde_json::json!({
                "voice_cam_on_secs": t.cam_on_secs,
                "voice_cam_off_secs": t.cam_off_secs,
                "messages": t.messages,
            })
        };
        let mut out = t(&s.all_time);
        out["guild_id"] = guild.to_string().into();
        out["user_id"] = user.to_string().into();
        out["timezone"] = settings.tracking.timezone.name().into();
        out["today"] = t(&s.today);
        out["this_week"] = t(&s.this_week);
        out["this_month"] = t(&s.this_month);
        println!("{out}");
    } else {
        println!(
            "{}",
            render_ud(
                &format!("user {user} in guild {guild}"),
                &s,
                Freshness::Current
            )
        );
    }
    Ok(())
}
