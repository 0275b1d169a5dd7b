//! `/history [member]`: a member's latest sessions, rendered by
//! [`crate::render::render_history`]. Ephemeral: it is the member's own
//! check of "my hours are wrong", not something to post in the channel.

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::now_millis;
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
    let Some((key, user)) = super::target(ctx, member.as_ref(), "history").await? else {
        return Ok(());
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
