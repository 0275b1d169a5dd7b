//! Gateway events into [`App`](crate::app::App) calls: serenity types become
//! the plain facts [`crate::core::policy`] decides on.

use poise::serenity_prelude as serenity;
use serenity::{FullEvent, VoiceState};
use tracing::instrument;

use super::{Data, Error};
use crate::app::now_millis;
use crate::core::policy::{self, MessageFacts, MessageKind, VoiceFacts};
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
            let afk = guild.afk_metadata.as_ref().map(|a| a.afk_channel_id);
            let present: Vec<(u64, Presence)> = guild
                .voice_states
                .values()
                .filter(|vs| {
                    policy::tracks_user(guild.members.get(&vs.user_id).is_some_and(|m| m.user.bot))
                })
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
            if !policy::tracks_user(new.member.as_ref().is_some_and(|m| m.user.bot)) {
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
        // Buttons whose pager is gone (the live ones answer themselves).
        FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Component(press),
        } => super::pager::answer_stale(ctx, press, app).await,
        FullEvent::Message { new_message: m } => {
            let facts = MessageFacts {
                in_guild: m.guild_id.is_some(),
                author_is_bot: m.author.bot,
                from_webhook: m.webhook_id.is_some(),
                kind: match m.kind {
                    serenity::MessageType::Regular => MessageKind::Regular,
                    serenity::MessageType::InlineReply => MessageKind::Reply,
                    _ => MessageKind::System,
                },
            };
            if let (Some(guild), true) = (m.guild_id, policy::counts_message(facts)) {
                let member = MemberKey {
                    guild: guild.get(),
                    user: m.author.id.get(),
                };
                app.message_with_id(member, m.id.get(), now_millis());
            }
        }
        _ => {}
    }
    Ok(())
}

/// A serenity voice state as the policy's facts, decided.
fn presence(vs: &VoiceState, afk: Option<serenity::ChannelId>) -> Option<Presence> {
    policy::presence(VoiceFacts {
        channel: vs.channel_id.map(serenity::ChannelId::get),
        camera: vs.self_video,
        afk_channel: afk.map(serenity::ChannelId::get),
    })
}
