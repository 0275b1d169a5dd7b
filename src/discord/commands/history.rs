//! `/history [member]`: a member's latest sessions, rendered by
//! [`crate::render::render_history`]. Ephemeral: it is the member's own
//! check of "my hours are wrong", not something to post in the channel.

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::policy;
use crate::core::MemberKey;
use crate::discord::{Context, Error};
use crate::render::render_history;

/// Sessions read to count the older ones not shown ("…and N older").
const SESSIONS_READ: usize = 100;

/// Show the latest voice sessions: start and end, channel, camera on / off, total.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "history", guild_id, user_id))]
pub(super) async fn history(
    ctx: Context<'_>,
    #[description = "Member to show (default: you)"] member: Option<serenity::User>,
) -> Result<(), Error> {
    let user = member.as_ref().unwrap_or_else(|| ctx.author());
    let Some(guild) = ctx.guild_id() else {
        ctx.say("`/history` works in a server, not in direct messages.")
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
    let app = ctx.data();
    let (sessions, complete, freshness) =
        app.member_history(key, now_millis(), SESSIONS_READ).await;
    ctx.say(render_history(
        user.display_name(),
        &sessions,
        complete,
        app.timezone(),
        freshness,
    ))
    .await?;
    Ok(())
}
