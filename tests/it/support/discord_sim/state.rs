//! Internal state, and the state helpers: snowflakes, lookups, logging, and the
//! `GUILD_CREATE` payload (sessions and dispatch delivery are in `sessions`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::payloads::{
    bot_role_id, bot_user, channel_json, member_json, role_json, voice_state_json,
};
use super::sessions::Session;
use super::{
    intents, CallbackRecord, SentMessage, SimGuild, SimUser, VoiceFlags, APP_OWNER_ID, BOT_NAME,
    BOT_USER_ID, DISCORD_EPOCH_MS, EVERYONE_PERMISSIONS, P_ADMINISTRATOR,
};

pub(super) struct VoiceEntry {
    pub(super) channel: u64,
    pub(super) flags: VoiceFlags,
    pub(super) session_id: String,
}

pub(super) struct GuildState {
    pub(super) def: SimGuild,
    pub(super) voice: HashMap<u64, VoiceEntry>,
}

pub(super) enum Outgoing {
    Text(String),
    Close(u16, &'static str),
    /// Drop the TCP connection without a close frame: a network outage.
    Drop,
}

pub(super) struct RegisteredCommand {
    pub(super) id: u64,
    pub(super) guild: Option<u64>,
    pub(super) name: String,
    pub(super) json: Value,
}

pub(super) struct InteractionRecord {
    pub(super) id: u64,
    pub(super) token: String,
    /// The command as invoked (`"group sub"` for subcommands), for error messages.
    pub(super) name: String,
    pub(super) channel_id: u64,
    pub(super) guild_id: Option<u64>,
    /// Accepted callback bodies (only ever the first: a second one is refused like
    /// Discord does).
    pub(super) callbacks: Vec<Value>,
    /// Every callback, accepted or refused, in arrival order.
    pub(super) attempts: Vec<CallbackRecord>,
    /// The `@original` message, once a type 4 or 5 callback created it.
    pub(super) original: Option<Value>,
    /// Whether `@original` was edited after a deferred callback.
    pub(super) original_edited: bool,
    /// The files uploaded with `@original` (by the type 4 callback or its last edit
    /// that carried files): names and bytes.
    pub(super) original_files: Vec<(String, Vec<u8>)>,
    pub(super) followups: Vec<Value>,
    /// Files uploaded with the first follow-up.
    pub(super) followup_files: Vec<super::rest::Upload>,
    /// The `INTERACTION_CREATE` payload as dispatched (for a duplicate delivery).
    pub(super) payload: Value,
    /// For a button press: the interaction whose `@original` holds the pressed message.
    pub(super) parent: Option<u64>,
    /// For a button press: the message as the press left it (the updated message after a
    /// type 7 callback or after a type 6 and an edit of `@original`; the new message after
    /// a type 4).
    pub(super) result: Option<Value>,
    /// When it was dispatched (Discord's 3-second window counts from here).
    pub(super) created: std::time::Instant,
}

impl InteractionRecord {
    pub(super) fn new(
        id: u64,
        token: String,
        name: String,
        channel_id: u64,
        guild_id: Option<u64>,
        payload: Value,
    ) -> Self {
        Self {
            id,
            token,
            name,
            channel_id,
            guild_id,
            callbacks: Vec::new(),
            created: std::time::Instant::now(),
            attempts: Vec::new(),
            original: None,
            original_edited: false,
            original_files: Vec::new(),
            followups: Vec::new(),
            followup_files: Vec::new(),
            payload,
            parent: None,
            result: None,
        }
    }
}

pub(super) struct SimState {
    pub(super) started_at: String,
    pub(super) gateway_url: String,
    pub(super) guilds: Vec<GuildState>,
    pub(super) log: Vec<String>,
    pub(super) payload_errors: Vec<String>,
    pub(super) commands: Vec<RegisteredCommand>,
    pub(super) interactions: Vec<InteractionRecord>,
    pub(super) bot_messages: Vec<SentMessage>,
    pub(super) dm_channels: HashMap<u64, u64>,
    /// Live gateway sessions, oldest first (see `sessions`).
    pub(super) sessions: Vec<Session>,
    /// How long a session without a websocket stays resumable.
    pub(super) resume_window: std::time::Duration,
    /// How long after a button press its first callback is still accepted
    /// (`None`: any time; [`DiscordSim::set_press_window`]).
    pub(super) press_window: Option<std::time::Duration>,
    pub(super) next_conn_id: u64,
    pub(super) identifies: usize,
    pub(super) resumes: usize,
    /// Until then, websocket upgrades are refused (a gateway outage); the HTTP API answers.
    pub(super) refuse_gateway_until: Option<std::time::Instant>,
    /// Websocket upgrades refused during outages.
    pub(super) refused_upgrades: usize,
    pub(super) last_intents: Option<u64>,
    pub(super) id_counter: u64,
    pub(super) echo: bool,
    pub(super) print_log: bool,
    /// `member.permissions` in interactions, by (guild, user), where a test set them.
    pub(super) member_permissions: HashMap<(u64, u64), u64>,
}

pub(super) struct Inner {
    pub(super) state: Mutex<SimState>,
    pub(super) changed: watch::Sender<u64>,
    pub(super) addr: SocketAddr,
    pub(super) cancel: CancellationToken,
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

impl SimState {
    pub(super) fn log_line(&mut self, line: String) {
        if self.print_log {
            eprintln!("[discord-sim] {line}");
        }
        tracing::debug!(target: "discord_sim", "{line}");
        self.log.push(line);
    }

    pub(super) fn payload_error(&mut self, what: &str, err: &str, payload: &Value) {
        let mut text = payload.to_string();
        if text.len() > 2000 {
            text.truncate(2000);
            text.push_str("...");
        }
        let line = format!("{what}: serenity cannot parse it: {err}; payload: {text}");
        eprintln!("[discord-sim] PAYLOAD ERROR {line}");
        self.log.push(format!("PAYLOAD ERROR {line}"));
        self.payload_errors.push(line);
    }

    pub(super) fn dump(&self) -> String {
        let mut out = String::from("--- discord sim log (last 60) ---\n");
        for line in self.log.iter().rev().take(60).rev() {
            let _ = writeln!(out, "  {line}");
        }
        if !self.payload_errors.is_empty() {
            let _ = writeln!(out, "--- payload errors ---");
            for e in &self.payload_errors {
                let _ = writeln!(out, "  {e}");
            }
        }
        out
    }

    /// A fresh snowflake: current time since the Discord epoch, plus a counter.
    pub(super) fn next_id(&mut self) -> u64 {
        self.id_counter += 1;
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        (ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (self.id_counter & 0x3f_ffff)
    }

    pub(super) fn guild_index(&self, guild: u64) -> Option<usize> {
        self.guilds.iter().position(|g| g.def.id == guild)
    }

    pub(super) fn guild_of_channel(&self, channel: u64) -> Option<usize> {
        self.guilds.iter().position(|g| {
            g.def.text_channels.contains(&channel)
                || g.def.voice_channels.contains(&channel)
                || g.def.afk_channel_id == Some(channel)
                || g.def.categories.iter().any(|(c, _)| *c == channel)
        })
    }

    /// The category channel `channel` is under, if any.
    pub(super) fn parent_of(&self, gi: usize, channel: u64) -> Option<u64> {
        self.guilds[gi]
            .def
            .categories
            .iter()
            .find(|(_, children)| children.contains(&channel))
            .map(|(c, _)| *c)
    }

    /// The permissions an interaction's `member.permissions` carries for `user`
    /// (everyone's unless a test set them with [`super::DiscordSim::set_member_permissions`]).
    pub(super) fn member_permissions(&self, gi: usize, user: u64) -> u64 {
        self.member_permissions
            .get(&(self.guilds[gi].def.id, user))
            .copied()
            .unwrap_or(EVERYONE_PERMISSIONS)
    }

    /// The member (or the bot, or a default human) with this id.
    pub(super) fn find_user(&self, gi: Option<usize>, id: u64) -> SimUser {
        if id == BOT_USER_ID {
            return bot_user();
        }
        let in_guild = gi.and_then(|gi| self.guilds[gi].def.members.iter().find(|m| m.id == id));
        let anywhere = || {
            self.guilds
                .iter()
                .flat_map(|g| g.def.members.iter())
                .find(|m| m.id == id)
        };
        in_guild
            .or_else(anywhere)
            .cloned()
            .unwrap_or_else(|| SimUser::new(id, format!("user{id}")))
    }

    pub(super) fn member_roles(&self, gi: usize, user: u64) -> Vec<u64> {
        if user == BOT_USER_ID {
            vec![bot_role_id(self.guilds[gi].def.id)]
        } else {
            Vec::new()
        }
    }

    pub(super) fn member_json(&self, gi: usize, user: u64) -> Value {
        let u = self.find_user(Some(gi), user);
        member_json(&u, &self.started_at, &self.member_roles(gi, user))
    }

    #[allow(clippy::too_many_lines)] // one JSON literal
    pub(super) fn guild_create_json(&self, gi: usize, intents_bits: u64) -> Value {
        let g = &self.guilds[gi];
        let def = &g.def;
        let mut channels = Vec::new();
        let mut pos = 0u64;
        for (i, &c) in def.text_channels.iter().enumerate() {
            channels.push(channel_json(def.id, c, 0, &format!("text-{}", i + 1), pos));
            pos += 1;
        }
        for (i, &c) in def.voice_channels.iter().enumerate() {
            channels.push(channel_json(def.id, c, 2, &format!("voice-{}", i + 1), pos));
            pos += 1;
        }
        if let Some(afk) = def.afk_channel_id {
            if !def.voice_channels.contains(&afk) {
                channels.push(channel_json(def.id, afk, 2, "afk", pos));
            }
        }
        for (i, (c, _)) in def.categories.iter().enumerate() {
            channels.push(channel_json(
                def.id,
                *c,
                4,
                &format!("category-{}", i + 1),
                pos,
            ));
            pos += 1;
        }
        for c in &mut channels {
            let id: u64 = c["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            if let Some(parent) = self.parent_of(gi, id) {
                c["parent_id"] = json!(parent.to_string());
            }
        }
        let with_voice = intents_bits & intents::GUILD_VOICE_STATES != 0;
        let voice_states: Vec<Value> = if with_voice {
            let mut users: Vec<_> = g.voice.keys().copied().collect();
            users.sort_unstable();
            users
                .iter()
                .map(|u| {
                    let v = &g.voice[u];
                    voice_state_json(*u, Some(v.channel), &v.session_id, v.flags)
                })
                .collect()
        } else {
            Vec::new()
        };
        let all_members = intents_bits & intents::GUILD_MEMBERS != 0;
        let mut member_users: Vec<SimUser> = def
            .members
            .iter()
            .filter(|m| m.id != BOT_USER_ID && (all_members || g.voice.contains_key(&m.id)))
            .cloned()
            .collect();
        member_users.insert(0, bot_user());
        let members: Vec<Value> = member_users
            .iter()
            .map(|u| member_json(u, &self.started_at, &self.member_roles(gi, u.id)))
            .collect();
        let member_count = def.members.iter().filter(|m| m.id != BOT_USER_ID).count() + 1;
        let owner = def
            .members
            .iter()
            .find(|m| !m.bot)
            .map_or(APP_OWNER_ID, |m| m.id);
        let mut guild = json!({
            "id": def.id.to_string(),
            "name": def.name,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": owner.to_string(),
            "region": null,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [
                role_json(def.id, "@everyone", EVERYONE_PERMISSIONS, 0, false),
                role_json(bot_role_id(def.id), BOT_NAME, EVERYONE_PERMISSIONS | P_ADMINISTRATOR, 1, true),
            ],
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": def.text_channels.first().map(ToString::to_string),
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "max_presences": null,
            "max_members": 500_000,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "nsfw": false,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": null,
            "incidents_data": null,
            "hub_type": null,
            "lazy": true,
            "joined_at": self.started_at,
            "large": false,
            "unavailable": false,
            "member_count": member_count,
            "voice_states": voice_states,
            "members": members,
            "channels": channels,
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
        });
        if let Some(afk) = def.afk_channel_id {
            guild["afk_channel_id"] = json!(afk.to_string());
            guild["afk_timeout"] = json!(300);
        }
        guild
    }

    pub(super) fn channel_kind_name(&self, gi: usize, channel: u64) -> (u64, String) {
        let def = &self.guilds[gi].def;
        if let Some(i) = def.text_channels.iter().position(|&c| c == channel) {
            (0, format!("text-{}", i + 1))
        } else if let Some(i) = def.voice_channels.iter().position(|&c| c == channel) {
            (2, format!("voice-{}", i + 1))
        } else if def.afk_channel_id == Some(channel) {
            (2, "afk".to_owned())
        } else if let Some(i) = def.categories.iter().position(|(c, _)| *c == channel) {
            (4, format!("category-{}", i + 1))
        } else {
            (0, format!("channel-{channel}"))
        }
    }
}
