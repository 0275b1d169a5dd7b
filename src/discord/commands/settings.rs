//! `/settings show|timezone|exclude|include|streak`: a server's settings, for
//! its managers. Registered with Manage Server as the default member
//! permission, and checked again on every use from the interaction's member
//! permissions (server admins can grant the command to others per role and
//! channel). Every reply is ephemeral; bad input changes nothing.
//!
//! A change is saved (audited) before it takes effect, then applied at that
//! moment to the members in voice: a guild snapshot under the new settings
//! credits sessions in a newly excluded channel up to now and ends them, and
//! starts those in a newly included one from now.

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::{now_millis, SettingsChange, SettingsError};
use crate::core::settings::{check_streak_minutes, parse_timezone, timezone_choices};
use crate::discord::events::guild_presences;
use crate::discord::{Context, Error};
use crate::render::settings::render_settings;
use crate::store::Actor;

/// Server settings: timezone, channels that do not count, streak threshold.
#[poise::command(
    slash_command,
    guild_only,
    subcommands("show", "timezone", "exclude", "include", "streak"),
    subcommand_required,
    default_member_permissions = "MANAGE_GUILD"
)]
#[allow(
    clippy::unused_async,
    reason = "poise's command signature; Discord runs the subcommands only"
)]
pub(super) async fn settings(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Show this server's settings.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "settings show", guild_id))]
async fn show(ctx: Context<'_>) -> Result<(), Error> {
    let Some(guild) = super::manager(ctx, "settings").await? else {
        return Ok(());
    };
    let app = ctx.data();
    let text = render_settings(&app.settings_of(guild), app.defaults(), now_millis());
    super::private(ctx, text).await
}

/// Set the timezone days, weeks, months and streaks are counted in.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "settings timezone", guild_id))]
async fn timezone(
    ctx: Context<'_>,
    #[description = "IANA timezone, e.g. Europe/Berlin"]
    #[autocomplete = "autocomplete_timezone"]
    name: String,
) -> Result<(), Error> {
    let Some(guild) = super::manager(ctx, "settings").await? else {
        return Ok(());
    };
    match parse_timezone(&name) {
        Ok(tz) => change(ctx, guild, SettingsChange::Timezone(tz)).await,
        Err(line) => super::private(ctx, line).await,
    }
}

/// Stop counting a voice channel, a text channel or a whole category.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "settings exclude", guild_id))]
async fn exclude(
    ctx: Context<'_>,
    #[description = "Voice, stage or text channel, or a category"]
    #[channel_types("Voice", "Stage", "Text", "News", "Category", "Forum")]
    channel: serenity::PartialChannel,
) -> Result<(), Error> {
    channel_change(ctx, &channel, SettingsChange::Exclude).await
}

/// Count a channel or category again.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "settings include", guild_id))]
async fn include(
    ctx: Context<'_>,
    #[description = "A channel or category excluded before"]
    #[channel_types("Voice", "Stage", "Text", "News", "Category", "Forum")]
    channel: serenity::PartialChannel,
) -> Result<(), Error> {
    channel_change(ctx, &channel, SettingsChange::Include).await
}

/// Set the voice minutes a day needs to count towards a streak.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "settings streak", guild_id))]
async fn streak(
    ctx: Context<'_>,
    #[description = "Minutes of voice a day needs (1 to 1440)"] minutes: i64,
) -> Result<(), Error> {
    let Some(guild) = super::manager(ctx, "settings").await? else {
        return Ok(());
    };
    match check_streak_minutes(minutes) {
        Ok(m) => change(ctx, guild, SettingsChange::StreakMinutes(m)).await,
        Err(line) => super::private(ctx, line).await,
    }
}

/// Timezone names containing what is typed, each with its local time.
#[allow(clippy::unused_async, reason = "poise's autocomplete signature")]
async fn autocomplete_timezone(
    _ctx: Context<'_>,
    partial: &str,
) -> impl Iterator<Item = serenity::AutocompleteChoice> {
    timezone_choices(partial, now_millis())
        .into_iter()
        .map(|(label, value)| serenity::AutocompleteChoice::new(label, value))
}

/// Excluding or including `channel`, once it is known to be a channel of
/// this server of a kind that can count.
async fn channel_change(
    ctx: Context<'_>,
    channel: &serenity::PartialChannel,
    to: fn(u64) -> SettingsChange,
) -> Result<(), Error> {
    let Some(guild) = super::manager(ctx, "settings").await? else {
        return Ok(());
    };
    let countable = matches!(
        channel.kind,
        serenity::ChannelType::Voice
            | serenity::ChannelType::Stage
            | serenity::ChannelType::Text
            | serenity::ChannelType::News
            | serenity::ChannelType::Category
            | serenity::ChannelType::Forum
    );
    if !countable {
        let line = format!(
            "<#{}> is not a voice, stage or text channel or a category; nothing changed.",
            channel.id
        );
        return super::private(ctx, line).await;
    }
    let here = ctx.guild().is_none_or(|g| {
        g.channels.contains_key(&channel.id) || g.threads.iter().any(|t| t.id == channel.id)
    });
    if !here {
        let line = format!(
            "<#{}> is not a channel of this server; nothing changed.",
            channel.id
        );
        return super::private(ctx, line).await;
    }
    change(ctx, guild, to(channel.id.get())).await
}

/// Saves `what`, applies it to the members in voice, and says what changed.
async fn change(ctx: Context<'_>, guild: u64, what: SettingsChange) -> Result<(), Error> {
    let app = ctx.data();
    let actor = Actor::Member(ctx.author().id.get());
    match app.change_settings(guild, &actor, what, now_millis()).await {
        Ok(changed) => {
            tracing::info!(setting = changed.what, old = %changed.old, new = %changed.new, actor = %actor.id(), "server settings changed");
            // Taken now, after the change is in force for new events.
            let present = ctx
                .serenity_context()
                .cache
                .guild(guild)
                .map(|g| guild_presences(&g, &changed.settings, app));
            if let Some(present) = present {
                app.guild_snapshot(guild, &present, now_millis()).await;
            }
            let text = format!(
                "✅ Saved. {}\n\n{}",
                describe(what),
                render_settings(&changed.settings, app.defaults(), now_millis())
            );
            super::private(ctx, text).await
        }
        Err(SettingsError::Unchanged(line)) => super::private(ctx, line).await,
        Err(e @ SettingsError::Store(_)) => {
            tracing::warn!(error = %e, "cannot save a settings change");
            super::private(
                ctx,
                "⚠️ The settings cannot be saved right now (the database does not answer); nothing changed. Please try again in a minute.".to_owned(),
            )
            .await
        }
    }
}

/// What a change does, from now on.
fn describe(what: SettingsChange) -> String {
    match what {
        SettingsChange::Timezone(tz) => format!(
            "Days, weeks, months and streaks are counted in `{}` from now on; earlier days keep the zone they were counted in.",
            tz.name()
        ),
        SettingsChange::Exclude(c) => format!(
            "<#{c}> no longer counts: voice time there was credited up to now, and messages there stop counting."
        ),
        SettingsChange::Include(c) => {
            format!("<#{c}> counts again from now on (members already there count from now).")
        }
        SettingsChange::StreakMinutes(m) => {
            format!("A day needs {m} minutes of voice to count towards a streak.")
        }
    }
}
