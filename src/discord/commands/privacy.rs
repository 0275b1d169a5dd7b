//! `/privacy export|optout|optin`: what a member controls about their own
//! data in a server. Every reply is ephemeral, and each acts on the caller
//! only.

use poise::serenity_prelude as serenity;
use poise::CreateReply;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::MemberKey;
use crate::discord::{Context, Error};

/// Your data in this server: export or erase it, or stop and resume tracking.
#[poise::command(
    slash_command,
    guild_only,
    subcommands("export", "erase", "optout", "optin"),
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
            resume_if_in_voice(ctx, me).await;
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

/// How long the erase button waits for the member's confirmation.
const CONFIRM_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Delete everything stored about you in this server (asks to confirm).
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "privacy erase", guild_id))]
async fn erase(ctx: Context<'_>) -> Result<(), Error> {
    let Some(me) = caller(ctx) else {
        return Ok(());
    };
    let prefix = format!("erase:{}", ctx.id());
    let buttons = |enabled: bool| {
        vec![serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(format!("{prefix}:confirm"))
                .label("Erase my data")
                .style(serenity::ButtonStyle::Danger)
                .disabled(!enabled),
            serenity::CreateButton::new(format!("{prefix}:cancel"))
                .label("Cancel")
                .style(serenity::ButtonStyle::Secondary)
                .disabled(!enabled),
        ])]
    };
    let ask = "This deletes your voice time, messages counted, days and sessions in this server, for good (`/privacy export` first if you want a copy). Tracking goes on afterwards unless you also `/privacy optout`. The button works for a minute.";
    // Listening before the question is sent: a press right after it is
    // not missed.
    let wanted = format!("{prefix}:");
    let owner = ctx.author().id;
    let mut presses = serenity::ComponentInteractionCollector::new(ctx)
        .filter(move |p| p.user.id == owner && p.data.custom_id.starts_with(&wanted))
        .timeout(CONFIRM_FOR)
        .stream();
    let reply = ctx
        .send(
            CreateReply::default()
                .content(ask)
                .components(buttons(true))
                .ephemeral(true),
        )
        .await?;
    let press = futures::StreamExt::next(&mut presses).await;
    let Some(press) = press else {
        reply
            .edit(
                ctx,
                CreateReply::default()
                    .content("The erase button expired; nothing was erased.")
                    .components(buttons(false)),
            )
            .await?;
        return Ok(());
    };
    press
        .create_response(ctx, serenity::CreateInteractionResponse::Acknowledge)
        .await?;
    let text = if press.data.custom_id.ends_with(":confirm") {
        let app = ctx.data();
        let actor = crate::store::Actor::Member(me.user);
        match app.erase_member(me, &actor, now_millis()).await {
            Ok(()) => {
                resume_if_in_voice(ctx, me).await;
                "✅ Your data in this server is erased. What you do from now on counts afresh (`/privacy optout` to stop that)."
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot erase a member's data");
                resume_if_in_voice(ctx, me).await;
                "⚠️ The erasure could not finish (the database does not answer). Nothing of yours is counted meanwhile; run `/privacy erase` again in a minute to finish it."
            }
        }
    } else {
        "Cancelled; nothing was erased."
    };
    // The message pressed on, edited through the press (after its type 6).
    press
        .edit_response(
            ctx,
            serenity::EditInteractionResponse::new()
                .content(text)
                .components(buttons(false)),
        )
        .await?;
    Ok(())
}

/// Reports where `me` is in voice now (after an opt-in or an erasure).
async fn resume_if_in_voice(ctx: Context<'_>, me: MemberKey) {
    let app = ctx.data();
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
}
