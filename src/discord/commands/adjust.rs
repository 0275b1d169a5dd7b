//! `/adjust member what amount reason`: a correction of a member's figures
//! by a server manager (checked on every use, as `/settings`). It goes
//! through the spool like every count (`app/adjust.rs`), is refused if it
//! would take a figure below zero, and is kept in the audit log. Every
//! reply is ephemeral; bad input changes nothing.

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::{now_millis, Adjusted, Correction};
use crate::core::correction::{check_reason, parse_amount, What};
use crate::core::{policy, MemberKey};
use crate::discord::{Context, Error};
use crate::render::adjust::render_adjusted;
use crate::store::Actor;

/// Correct a member's camera-on or camera-off time, or their message count.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD"
)]
#[instrument(skip_all, fields(command = "adjust", guild_id, user_id))]
pub(super) async fn adjust(
    ctx: Context<'_>,
    #[description = "The member whose figures to correct"] member: serenity::User,
    #[description = "camera_on, camera_off or messages"]
    #[autocomplete = "autocomplete_what"]
    what: String,
    #[description = "Signed: time as 1h30m, -45m, 90s or seconds; messages as a count"]
    amount: String,
    #[description = "Why (required, up to 200 characters)"]
    #[max_length = 200]
    reason: String,
) -> Result<(), Error> {
    let Some(guild) = super::manager(ctx, "adjust").await? else {
        return Ok(());
    };
    tracing::Span::current().record("user_id", member.id.get());
    if let Err(line) = check_target(ctx, &member) {
        return super::private(ctx, line).await;
    }
    let parsed = What::parse(&what).and_then(|w| {
        let amount = parse_amount(w, &amount)?;
        Ok((w, amount, check_reason(&reason)?))
    });
    let (what, amount, reason) = match parsed {
        Ok(p) => p,
        Err(line) => return super::private(ctx, line).await,
    };
    ctx.defer_ephemeral().await?;
    let correction = Correction {
        member: MemberKey {
            guild,
            user: member.id.get(),
        },
        what,
        amount,
        actor: Actor::Member(ctx.author().id.get()),
        reason: reason.clone(),
        id: ctx.id(),
    };
    let name = member.display_name().to_owned();
    let line = match ctx.data().adjust(correction, now_millis()).await {
        Adjusted::Applied { total, day } => {
            render_adjusted(&name, what, amount, &day, &reason, Some(&total))
        }
        Adjusted::Spooled { day } => render_adjusted(&name, what, amount, &day, &reason, None),
        Adjusted::Refused(line) => line,
    };
    super::private(ctx, line).await
}

/// Refuses a bot, and a user who is not a member of this server (the
/// interaction resolves the member only when they are one).
fn check_target(ctx: Context<'_>, user: &serenity::User) -> Result<(), String> {
    if !policy::tracks_user(user.bot) {
        return Err(format!(
            "**{}** is a bot; bots are not tracked, so there is nothing to correct.",
            user.display_name()
        ));
    }
    let is_member = match ctx {
        poise::Context::Application(a) => {
            a.interaction.data.resolved.members.contains_key(&user.id)
        }
        poise::Context::Prefix(_) => false,
    };
    if !is_member {
        return Err(format!(
            "**{}** is not a member of this server; only this server's members can be corrected here.",
            user.display_name()
        ));
    }
    Ok(())
}

#[allow(
    clippy::unused_async,
    reason = "poise's autocomplete signature; the names are known"
)]
async fn autocomplete_what(_ctx: Context<'_>, partial: &str) -> Vec<String> {
    What::NAMES
        .iter()
        .filter(|n| n.contains(partial.trim()))
        .map(|n| (*n).to_owned())
        .collect()
}
