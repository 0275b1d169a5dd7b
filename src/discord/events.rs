//! Gateway events into [`App`](crate::app::App) calls: serenity types become
//! the plain facts [`crate::core::policy`] decides on.

use poise::serenity_prelude as serenity;
use serenity::{FullEvent, VoiceState};
use tracing::instrument;

use super::{Data, Error};
use crate::app::now_millis;
use crate::core::policy::{self, MessageFacts, MessageKind, VoiceFacts};
use crate::core::settings::{ChannelPath, GuildSettings};
use crate::core::{MemberKey, Presence};
use crate::telemetry::prometheus as metric;

#[instrument(skip_all, fields(event = event.snake_case_name()))]
pub(super) async fn on_event(
    ctx: &serenity::Context,
    event: &FullEvent,
    app: &Data,
) -> Result<(), Error> {
    metrics::counter!(metric::EVENTS_RECEIVED, "kind" => event.snake_case_name()).increment(1);
    match event {
        // The gateway is back (a new session, whose guild snapshots follow,
        // or a resumed one, after the replay of what it missed).
        FullEvent::Ready { .. } => app.gateway_connected(ctx.shard_id.0, now_millis()).await,
        FullEvent::Resume { .. } => app.gateway_resumed(ctx.shard_id.0, now_millis()).await,
        FullEvent::GuildCreate { guild, .. } => {
            let present = guild_presences(guild, &app.settings_of(guild.id.get()), app);
            app.guild_snapshot(guild.id.get(), &present, now_millis())
                .await;
            app.guild_present(guild.id.get()).await;
        }
        FullEvent::GuildDelete { incomplete, .. } => {
            // Removed from the guild, or the guild went unavailable: nobody
            // there can be seen any more, so their sessions end now (a later
            // GUILD_CREATE starts tracking again).
            app.guild_snapshot(incomplete.id.get(), &[], now_millis())
                .await;
            // Removed (not an outage): the server's data is kept for
            // GUILD_RETENTION_DAYS, then erased.
            if !incomplete.unavailable {
                app.guild_removed(incomplete.id.get(), now_millis()).await;
            }
        }
        FullEvent::VoiceStateUpdate { new, .. } => {
            let Some(guild) = new.guild_id else {
                return Ok(());
            };
            if !policy::tracks_user(new.member.as_ref().is_some_and(|m| m.user.bot)) {
                return Ok(());
            }
            let member = MemberKey {
                guild: guild.get(),
                user: new.user_id.get(),
            };
            let settings = app.settings_of(guild.get());
            let presence = match ctx.cache.guild(guild) {
                _ if app.opted_out(member) => None,
                Some(g) => presence(new, &g, &settings),
                None => presence_without_cache(new, &settings),
            };
            app.voice_update(member, presence, now_millis()).await;
        }
        // Buttons whose pager is gone (the live ones answer themselves).
        FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Component(press),
        } => super::pager::answer_stale(ctx, press, app).await,
        FullEvent::Message { new_message: m } => {
            let channel = m
                .guild_id
                .and_then(|g| ctx.cache.guild(g).map(|g| channel_path(&g, m.channel_id)))
                .unwrap_or_else(|| ChannelPath::top(m.channel_id.get()));
            let settings = m
                .guild_id
                .map(|g| app.settings_of(g.get()))
                .unwrap_or_default();
            let facts = MessageFacts {
                in_guild: m.guild_id.is_some(),
                channel,
                author_is_bot: m.author.bot,
                from_webhook: m.webhook_id.is_some(),
                kind: match m.kind {
                    serenity::MessageType::Regular => MessageKind::Regular,
                    serenity::MessageType::InlineReply => MessageKind::Reply,
                    _ => MessageKind::System,
                },
            };
            if let (Some(guild), true) = (m.guild_id, policy::counts_message(facts, &settings)) {
                let member = MemberKey {
                    guild: guild.get(),
                    user: m.author.id.get(),
                };
                if !policy::tracks_member(m.author.bot, app.opted_out(member)) {
                    return Ok(());
                }
                app.message_with_id(member, m.id.get(), now_millis());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Who in `guild` is in voice, as tracking sees it under `settings`: its
/// members' voice states (bots left out) decided by the policy. What a guild
/// snapshot reports, at a `GUILD_CREATE` and after a settings change.
pub(super) fn guild_presences(
    guild: &serenity::Guild,
    settings: &GuildSettings,
    app: &Data,
) -> Vec<(u64, Presence)> {
    let opted_out = |user: serenity::UserId| {
        app.opted_out(MemberKey {
            guild: guild.id.get(),
            user: user.get(),
        })
    };
    guild
        .voice_states
        .values()
        .filter(|vs| {
            policy::tracks_member(
                guild.members.get(&vs.user_id).is_some_and(|m| m.user.bot),
                opted_out(vs.user_id),
            )
        })
        .filter_map(|vs| Some((vs.user_id.get(), presence(vs, guild, settings)?)))
        .collect()
}

/// A serenity voice state as the policy's facts, decided.
fn presence(
    vs: &VoiceState,
    guild: &serenity::Guild,
    settings: &GuildSettings,
) -> Option<Presence> {
    let category = vs
        .channel_id
        .and_then(|c| guild.channels.get(&c))
        .and_then(|c| c.parent_id)
        .map(serenity::ChannelId::get);
    policy::presence(
        VoiceFacts {
            channel: vs.channel_id.map(serenity::ChannelId::get),
            category,
            camera: vs.self_video,
            afk_channel: guild.afk_metadata.as_ref().map(|a| a.afk_channel_id.get()),
        },
        settings,
    )
}

/// As [`presence`] for a guild the cache does not hold (no AFK channel or
/// category known).
fn presence_without_cache(vs: &VoiceState, settings: &GuildSettings) -> Option<Presence> {
    policy::presence(
        VoiceFacts {
            channel: vs.channel_id.map(serenity::ChannelId::get),
            category: None,
            camera: vs.self_video,
            afk_channel: None,
        },
        settings,
    )
}

/// Where `channel` is in `guild`: a thread's parent channel, and the
/// category above.
fn channel_path(guild: &serenity::Guild, channel: serenity::ChannelId) -> ChannelPath {
    let parent_of = |c: serenity::ChannelId| {
        guild
            .channels
            .get(&c)
            .and_then(|c| c.parent_id)
            .or_else(|| {
                guild
                    .threads
                    .iter()
                    .find(|t| t.id == c)
                    .and_then(|t| t.parent_id)
            })
    };
    let first = parent_of(channel);
    let is_thread = guild.threads.iter().any(|t| t.id == channel);
    let (parent, category) = if is_thread {
        (first, first.and_then(parent_of))
    } else {
        (None, first)
    };
    ChannelPath {
        channel: channel.get(),
        parent: parent.map(serenity::ChannelId::get),
        category: category.map(serenity::ChannelId::get),
    }
}
