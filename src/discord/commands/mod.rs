//! Slash commands, one file each; [`all`] is the registry poise serves.

mod adjust;
mod audit;
mod history;
mod leaderboard;
mod privacy;
mod settings;
mod ud;

use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::{Context, Data, Error};
use crate::core::{policy, MemberKey};

/// Every slash command the bot offers.
pub(super) fn all() -> Vec<poise::Command<Data, Error>> {
    vec![
        ud::ud(),
        history::history(),
        leaderboard::leaderboard(),
        settings::settings(),
        adjust::adjust(),
        audit::audit(),
        privacy::privacy(),
    ]
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
    if ctx.data().opted_out(key) {
        let reply = format!(
            "**{}** opted out of tracking in this server; there is nothing to show.",
            user.display_name()
        );
        ctx.send(CreateReply::default().content(reply).ephemeral(true))
            .await?;
        return Ok(None);
    }
    Ok(Some((key, user)))
}

/// The server of a managers' command, once the caller is known to have
/// Manage Server, from the interaction's own member permissions (the
/// registration's default can be overridden per role and channel). `None`
/// after refusing, privately, naming the permission.
async fn manager(ctx: Context<'_>, command: &str) -> Result<Option<u64>, Error> {
    let Some(guild) = ctx.guild_id() else {
        return Ok(None);
    };
    tracing::Span::current().record("guild_id", guild.get());
    let permitted = match ctx {
        poise::Context::Application(a) => a
            .interaction
            .member
            .as_ref()
            .and_then(|m| m.permissions)
            .is_some_and(|p| p.manage_guild() || p.administrator()),
        poise::Context::Prefix(_) => false,
    };
    if permitted {
        return Ok(Some(guild.get()));
    }
    tracing::info!(user_id = ctx.author().id.get(), "refused: no Manage Server");
    private(
        ctx,
        format!("`/{command}` needs the **Manage Server** permission, which you do not have here."),
    )
    .await?;
    Ok(None)
}

/// An ephemeral reply.
async fn private(ctx: Context<'_>, text: String) -> Result<(), Error> {
    ctx.send(CreateReply::default().content(text).ephemeral(true))
        .await?;
    Ok(())
}
