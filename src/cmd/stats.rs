//! `stats`: print what is stored for one member, as text or JSON.

use anyhow::Context as _;

use super::{cannot_read, connect};
use crate::app::{member_voice_ranks, now_millis};
use crate::config::Settings;
use crate::core::calendar::{self, Periods};
use crate::core::daily;
use crate::core::stats::{self, Freshness, Totals};
use crate::core::streak;
use crate::core::MemberKey;
use crate::render::render_ud;

/// `stats`: print what is stored for one member.
///
/// # Errors
/// MongoDB cannot be read.
pub async fn stats(settings: &Settings, guild: u64, user: u64, json: bool) -> anyhow::Result<()> {
    let store = connect(&settings.mongo).await?;
    let now = now_millis();
    let (tz, min_minutes) = super::guild_settings(&store, settings, guild).await?;
    let periods = Periods::at(now, tz);
    let earliest = periods.earliest();
    // Every segment: the streaks span all history.
    let stored = store
        .member(MemberKey { guild, user }, 0, &earliest.day)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let s = stats::compute(&stored, None, &periods);
    let ranks = member_voice_ranks(&store, MemberKey { guild, user }, now, tz)
        .await
        .with_context(cannot_read(&settings.mongo))?;
    let streaks = streak::streaks(
        &daily::voice_by_day(&stored, None, tz),
        calendar::today(now, tz),
        i64::from(min_minutes) * 60,
    );
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
        out["timezone"] = tz.name().into();
        out["today"] = t(&s.today);
        out["this_week"] = t(&s.this_week);
        out["this_month"] = t(&s.this_month);
        out["streak"] = serde_json::json!({
            "current_days": streaks.current_days,
            "longest_days": streaks.longest_days,
        });
        out["rank"] = serde_json::json!({
            "today": ranks.today,
            "this_week": ranks.this_week,
            "this_month": ranks.this_month,
            "all_time": ranks.all_time,
        });
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
        println!(
            "🔥 Streak: {} days now, {} at most (days with at least {min_minutes} min of voice)",
            streaks.current_days, streaks.longest_days
        );
        let rank = |r: Option<u64>| r.map_or_else(|| "-".to_owned(), |r| format!("#{r}"));
        println!(
            "🏆 Rank by voice: today {}, this week {}, this month {}, all time {}",
            rank(ranks.today),
            rank(ranks.this_week),
            rank(ranks.this_month),
            rank(ranks.all_time)
        );
    }
    Ok(())
}
