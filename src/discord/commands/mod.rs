//! Slash commands, one file each; [`all`] is the registry poise serves.

mod history;
mod leaderboard;
mod ud;

use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::{Context, Data, Error};
use crate::core::{policy, MemberKey};

/// Every slash command the bot offers.
pub(super) fn all() -> Vec<poise::Command<Data, Error>> {
    vec![ud::ud(), history::history(), leaderboard::leaderboard()]
}

/// The member a member-facing command is about (the option, or the caller),
/// recorded on the command's span. `None` after replying, privately, why
/// there is nothing to show: not in a server, or a bot (bots are not
/// tracked).
async fn target<'a>(
    ctx: Context<'a>,
    member: Option<&'a serenity::User>,
    command: &str,
) -> Result<Option<(MemberKey, &'a serenity::User)>, Error> {
    let user = member.unwrap_or_else(|| ctx.author());
    let Some(guild) = ctx.guild_id() else {
        let reply = format!("`/{command}` works in a server, not in direct messages.");
        ctx.send(CreateReply::default().content(reply).ephemeral(true))
            .await?;
        return Ok(None);
    };
    let span = tracing::Span::current();
    span.record("guild_id", guild.get());
    span.record("user_id", user.id.get());
    if !policy::tracks_user(user.bot) {
        let reply = format!(
            "**{}** is a bot; bots are not tracked.",
            user.display_name()
        );
        ctx.send(CreateReply::default().content(reply).ephemeral(true))
            .await?;
        return Ok(None);
    }
    let key = MemberKey {
        guild: guild.get(),
        user: user.id.get(),
    };
    Ok(Some((key, user)))
}
