//! `/ud [member]`: a member's study time and messages, rendered by
//! [`crate::render::render_ud`].

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::policy;
use crate::core::MemberKey;
use crate::discord::{Context, Error};
use crate::render::render_ud;

/// Show study time (camera on / off) and messages: all time, today, this week, this month.
#[poise::command(slash_command, guild_only)]
#[instrument(skip_all, fields(command = "ud", guild_id, user_id))]
pub(super) async fn ud(
    ctx: Context<'_>,
    #[description = "Member to show (default: you)"] member: Option<serenity::User>,
) -> Result<(), Error> {
    let user = member.as_ref().unwrap_or_else(|| ctx.author());
    let Some(guild) = ctx.guild_id() else {
        ctx.say("`/ud` works in a server, not in direct messages.")
            .await?;
        return Ok(());
    };
    let span = tracing::Span::current();
    span.record("guild_id", guild.get());
    span.record("user_id", user.id.get());
    if !policy::tracks_user(user.bot) {
        ctx.say(format!(
            "**{}** is a bot; bots are not tracked.",
            user.display_name()
        ))
        .await?;
        return Ok(());
    }
    let key = MemberKey {
        guild: guild.get(),
        user: user.id.get(),
    };
    let (stats, freshness) = ctx.data().member_stats(key, now_millis()).await;
    ctx.say(render_ud(user.display_name(), &stats, freshness))
        .await?;
    Ok(())
}
