//! The Discord adapter: builds the serenity/poise client, turns gateway
//! events into [`App`] calls ([`events`]), reports the gateway's health
//! ([`watch`]) and turns slash commands into rendered replies ([`commands`]).
//! It holds no rules: what is tracked is decided in [`crate::core::policy`],
//! what an outage credits in [`crate::core::tracker`].

mod commands;
mod errors;
mod events;
mod pager;
mod watch;

pub use watch::watch_gateway;

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use serenity::GatewayIntents;

use crate::app::App;
use crate::telemetry::cause_chain;

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
/// test server when it is not Discord's), poise with the slash commands, the
/// event handler; paged answers keep their buttons for `buttons_timeout`.
///
/// # Errors
/// The client cannot be built.
pub async fn client(
    token: &str,
    api_url: &str,
    dev_guild: Option<u64>,
    buttons_timeout: std::time::Duration,
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
            commands: commands::all(),
            event_handler: |ctx, event, _framework, data| {
                Box::pin(events::on_event(ctx, event, data))
            },
            on_error: |error| Box::pin(errors::on_error(error)),
            // Only the instance that counts answers; a standby stays silent.
            command_check: Some(|ctx| Box::pin(async move { Ok(ctx.data().lease().counts()) })),
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
                .map(poise::Command::create_as_slash_command)
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
            .type_map_insert::<pager::ButtonsTimeout>(buttons_timeout)
            .type_map_insert::<pager::LivePagers>(std::sync::Arc::default())
            .framework(framework)
            .await?,
    )
}

/// Registers the slash commands globally, or on the development guild for
/// instant updates.
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
            tracing::error!(
                error = %cause_chain(&e),
                consequence = "members will not see the command until the next start",
                "cannot register /ud"
            );
        }
    }
}
