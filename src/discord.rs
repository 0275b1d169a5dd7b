//! The Discord adapter: turns serenity events into [`App`] calls and `/ud`
//! into a rendered reply. Nothing else; the rules live in the tracker.

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use serenity::{FullEvent, GatewayIntents, VoiceState};

use crate::app::{now_millis, App};
use crate::stats::render_ud;
use crate::tracker::{MemberKey, Presence};

/// Data every command and event handler sees.
pub type Data = Arc<App>;
type Error = anyhow::Error;
type Context<'a> = poise::Context<'a, Data, Error>;

/// Only what tracking needs; no privileged intents (no message content, no
/// member list).
#[must_use]
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_VOICE_STATES | GatewayIntents::GUILD_MESSAGES
}

/// Builds the serenity client: HTTP pointed at `api_url` (a Discord-compatible
/// test server when it is not Discord's), poise with `/ud`, the event handler.
///
/// # Errors
/// The client cannot be built.
pub async fn client(
    token: &str,
    api_url: &str,
    dev_guild: Option<u64>,
    app: Data,
) -> anyhow::Result<serenity::Client> {
    let mut http = serenity::HttpBuilder::new(token);
    if api_url.trim_end_matches('/') != crate::config::DEFAULT_DISCORD_API_URL {
        http = http
            .proxy(api_url.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![ud()],
            event_handler: |ctx, event, _framework, data| Box::pin(on_event(ctx, event, data)),
            on_error: |error| Box::pin(on_error(error)),
            ..Default::default()
        })
        .setup(move |ctx, ready, framework| {
            tracing::info!(
                bot = %ready.user.name,
                guilds = ready.guilds.len(),
                "connected to Discord"
            );
            // Poise holds every event back until `setup` returns, so the
            // registration (an HTTP round trip that may fail) runs on its own.
            let ctx = ctx.clone();
            let commands = framework
                .options()
                .commands
                .iter()
                .map(|c| c.create_as_slash_command())
                .collect::<Vec<_>>();
            tokio::spawn(register_commands(
                ctx,
                commands.into_iter().flatten().collect(),
                dev_guild,
            ));
            Box::pin(async move { Ok(app) })
        })
        .build();
    Ok(
        serenity::ClientBuilder::new_with_http(http.build(), intents())
            .framework(framework)
            .await?,
    )
}

/// Registers `/ud` globally, or on the development guild for instant updates.
async fn register_commands(
    ctx: serenity::Context,
    commands: Vec<serenity::CreateCommand>,
    dev_guild: Option<u64>,
) {
    let result = match dev_guild {
        Some(g) => serenity::GuildId::new(g)
            .set_commands(&ctx.http, commands)
            .await
            .map(|_| format!("registered /ud on the development guild {g}")),
        None => serenity::Command::set_global_commands(&ctx.http, commands)
            .await
            .map(|_| "registered /ud globally".to_owned()),
    };
    match result {
        Ok(done) => tracing::info!("{done}"),
        Err(e) => {
            tracing::error!(error = %e, "cannot register /ud; members will not see the command until the next start")
        }
    }
}

async fn on_event(ctx: &serenity::Context, event: &FullEvent, app: &Data) -> Result<(), Error> {
    match event {
        FullEvent::GuildCreate { guild, .. } => {
            let afk = guild.afk_metadata.as_ref().map(|a| a.afk_channel_id);
            let present: Vec<(u64, Presence)> = guild
                .voice_states
                .values()
                .filter(|vs| !guild.members.get(&vs.user_id).is_some_and(|m| m.user.bot))
                .filter_map(|vs| Some((vs.user_id.get(), presence(vs, afk)?)))
                .collect();
            app.guild_snapshot(guild.id.get(), &present, now_millis())
                .await;
        }
        FullEvent::GuildDelete { incomplete, .. } => {
            // Removed from the guild, or the guild went unavailable: nobody
            // there can be seen any more, so their sessions end now (a later
            // GUILD_CREATE starts tracking again).
            app.guild_snapshot(incomplete.id.get(), &[], now_millis())
                .await;
        }
        FullEvent::VoiceStateUpdate { new, .. } => {
            let Some(guild) = new.guild_id else {
                return Ok(());
            };
            if new.member.as_ref().is_some_and(|m| m.user.bot) {
                return Ok(());
            }
            let afk = ctx
                .cache
                .guild(guild)
                .and_then(|g| g.afk_metadata.as_ref().map(|a| a.afk_channel_id));
            let member = MemberKey {
                guild: guild.get(),
                user: new.user_id.get(),
            };
            app.voice_update(member, presence(new, afk), now_millis())
                .await;
        }
        FullEvent::Message { new_message: m } => {
            let counted = matches!(
                m.kind,
                serenity::MessageType::Regular | serenity::MessageType::InlineReply
            );
            if let (Some(guild), false, None, true) =
                (m.guild_id, m.author.bot, m.webhook_id, counted)
            {
                let member = MemberKey {
                    guild: guild.get(),
                    user: m.author.id.get(),
                };
                app.message(member, now_millis()).await;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A voice state as tracking sees it: not in a channel, or in the AFK
/// channel, is no presence.
fn presence(vs: &VoiceState, afk: Option<serenity::ChannelId>) -> Option<Presence> {
    let channel = vs.channel_id.filter(|c| Some(*c) != afk)?;
    Some(Presence {
        channel: channel.get(),
        camera: vs.self_video,
    })
}

/// Show study time (camera on / off) and messages: all time, today, this week, this month.
#[poise::command(slash_command, guild_only)]
pub async fn ud(
    ctx: Context<'_>,
    #[description = "Member to show (default: you)"] member: Option<serenity::User>,
) -> Result<(), Error> {
    let user = member.as_ref().unwrap_or_else(|| ctx.author());
    let Some(guild) = ctx.guild_id() else {
        ctx.say("`/ud` works in a server, not in direct messages.")
            .await?;
        return Ok(());
    };
    if user.bot {
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
    let (stats, freshness) = ctx.data().stats(key, now_millis()).await;
    ctx.say(render_ud(user.display_name(), &stats, freshness))
        .await?;
    Ok(())
}

/// The one place a failed command becomes a polite reply.
async fn on_error(error: poise::FrameworkError<'_, Data, Error>) {
    match error {
        poise::FrameworkError::Command { error, ctx, .. } => {
            tracing::error!(command = %ctx.command().name, error = %error, "command failed");
            let _ = ctx
                .say("Sorry, something went wrong while answering. Please try again in a moment.")
                .await;
        }
        poise::FrameworkError::Setup { error, .. } => {
            tracing::error!(error = %error, "start-up on Discord failed (registering /ud)");
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::error!(error = %e, "error while handling an error");
            }
        }
    }
}
