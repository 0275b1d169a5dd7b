//! `/privacy export|optout|optin`: what a member controls about their own
//! data in a server. Every reply is ephemeral, and each acts on the caller
//! only.

use poise::serenity_prelude as serenity;
use poise::CreateReply;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::MemberKey;
use crate::discord::{Context, Error};

/// Your data in this server: export it, or stop and resume tracking.
#[poise::command(
    slash_command,
    guild_only,
    subcommands("export", "optout", "optin"),
    subcommand_required
)]
#[allow(
    clippy::unused_async,
    reason = "poise's command signature; Discord runs the subcommands only"
)]
pub(super) async fn privacy(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// The caller as a member of this server.
fn caller(ctx: Context<'_>) -> Option<MemberKey> {
    let guild = ctx.guild_id()?;
    tracing::Span::current().record("guild_id", guild.get());
    Some(MemberKey {
        guild: guild.get(),
        user: ctx.author().id.get(),
    })
}

const UNAVAILABLE: &str =
    "⚠️ The database does not answer right now; nothing changed. Please try again in a minute.";

/// Get everything stored about you in this server, as a JSON file.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "privacy export", guild_id))]
async fn export(ctx: Context<'_>) -> Result<(), Error> {
    let Some(me) = caller(ctx) else {
        return Ok(());
    };
    ctx.defer_ephemeral().await?;
    match ctx.data().store().member_documents(me).await {
        Ok(docs) => {
            let json = serde_json::to_vec_pretty(&docs.export_json(me))?;
            let name = format!("study-tracker-{}-{}.json", me.guild, me.user);
            ctx.send(
                CreateReply::default()
                    .content("Everything this bot stores about you in this server is in the attached file.")
                    .attachment(serenity::CreateAttachment::bytes(json, name))
                    .ephemeral(true),
            )
            .await?;
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a member's data for an export");
            super::private(
                ctx,
                "⚠️ Your data cannot be read right now; please try again in a minute.".to_owned(),
            )
            .await
        }
    }
}

/// Stop tracking your voice time and messages in this server.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "privacy optout", guild_id))]
async fn optout(ctx: Context<'_>) -> Result<(), Error> {
    let Some(me) = caller(ctx) else {
        return Ok(());
    };
    let app = ctx.data();
    if app.opted_out(me) {
        return super::private(
            ctx,
            "You have already opted out here; nothing changed. `/privacy optin` resumes tracking."
                .to_owned(),
        )
        .await;
    }
    match app.set_opted_out(me, true, now_millis()).await {
        Ok(()) => super::private(ctx, "✅ You are no longer tracked in this server: voice time up to now is kept, nothing more is counted, and you are left off the leaderboards. `/privacy optin` resumes tracking; `/privacy export` shows what is kept.".to_owned()).await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot save an opt-out");
            super::private(ctx, UNAVAILABLE.to_owned()).await
        }
    }
}

/// Resume tracking your voice time and messages in this server.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "privacy optin", guild_id))]
async fn optin(ctx: Context<'_>) -> Result<(), Error> {
    let Some(me) = caller(ctx) else {
        return Ok(());
    };
    let app = ctx.data();
    if !app.opted_out(me) {
        return super::private(
            ctx,
            "You are tracked here already; nothing changed.".to_owned(),
        )
        .await;
    }
    match app.set_opted_out(me, false, now_millis()).await {
        Ok(()) => {
            // Counted from now if in voice.
            let here = ctx.serenity_context().cache.guild(me.guild).map(|g| {
                let settings = app.settings_of(me.guild);
                crate::discord::events::guild_presences(&g, &settings, app)
                    .into_iter()
                    .find(|(u, _)| *u == me.user)
                    .map(|(_, p)| p)
            });
            if let Some(presence) = here.flatten() {
                app.voice_update(me, Some(presence), now_millis()).await;
            }
            super::private(
                ctx,
                "✅ You are tracked in this server again, from now on.".to_owned(),
            )
            .await
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot save an opt-in");
            super::private(ctx, UNAVAILABLE.to_owned()).await
        }
    }
}
