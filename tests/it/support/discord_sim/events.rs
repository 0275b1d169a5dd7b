//! Public API, continued: what happens in the simulated world (voice, messages, slash
//! commands, raw dispatches).

use std::time::Duration;

use serde_json::{json, Value};

use super::interactions::reply_of;
use super::payloads::{
    bot_user, message_json, partial_member_json, user_json, voice_state_json, MessageSpec,
};
use super::state::{InteractionRecord, VoiceEntry};
use super::{intents, CommandReply, DiscordSim, SimOption, VoiceFlags, BOT_USER_ID};

impl DiscordSim {
    /// Moves `user` into voice channel `channel` (or out of voice with `None`), camera as
    /// given, everything else off. See [`DiscordSim::set_voice_state`].
    pub async fn set_voice(&self, guild: u64, user: u64, channel: Option<u64>, self_video: bool) {
        self.set_voice_state(
            guild,
            user,
            channel,
            VoiceFlags {
                self_video,
                ..VoiceFlags::default()
            },
        )
        .await;
    }

    /// Updates the simulated voice state (a later `GUILD_CREATE` carries it) and dispatches
    /// `VOICE_STATE_UPDATE` (with `member` and `guild_id`; `channel_id: null` on leave) on
    /// every live session; one without a connected client buffers it for a `RESUME`.
    ///
    /// # Panics
    /// If the guild is unknown or the channel is not one of its voice channels.
    #[allow(clippy::unused_async)] // async so callers need not change if this ever waits
    pub async fn set_voice_state(
        &self,
        guild: u64,
        user: u64,
        channel: Option<u64>,
        flags: VoiceFlags,
    ) {
        {
            let mut st = self.inner.lock();
            let gi = st
                .guild_index(guild)
                .unwrap_or_else(|| panic!("discord sim: unknown guild {guild}"));
            if let Some(c) = channel {
                let g = &st.guilds[gi].def;
                assert!(
                    g.voice_channels.contains(&c) || g.afk_channel_id == Some(c),
                    "discord sim: channel {c} is not a voice channel of guild {guild}"
                );
            }
            let session_id = match st.guilds[gi].voice.get(&user) {
                Some(v) => v.session_id.clone(),
                None => format!(
                    "{:032x}",
                    u128::from(user) << 32 | u128::from(st.next_id() & 0xffff_ffff)
                ),
            };
            match channel {
                Some(c) => {
                    st.guilds[gi].voice.insert(
                        user,
                        VoiceEntry {
                            channel: c,
                            flags,
                            session_id: session_id.clone(),
                        },
                    );
                }
                None => {
                    if st.guilds[gi].voice.remove(&user).is_none() {
                        st.log_line(format!(
                            "note: set_voice leave for user {user} who was not in voice"
                        ));
                    }
                }
            }
            let member = st.member_json(gi, user);
            let mut d = voice_state_json(user, channel, &session_id, flags);
            d["guild_id"] = json!(guild.to_string());
            d["member"] = member;
            st.dispatch(
                "VOICE_STATE_UPDATE",
                &d,
                Some((intents::GUILD_VOICE_STATES, "GUILD_VOICE_STATES")),
            );
        }
        self.inner.bump();
    }

    /// The voice channel the simulator believes `user` is in.
    pub fn voice_channel_of(&self, guild: u64, user: u64) -> Option<u64> {
        let st = self.inner.lock();
        let gi = st.guild_index(guild)?;
        st.guilds[gi].voice.get(&user).map(|v| v.channel)
    }

    /// Dispatches `MESSAGE_CREATE` with content `"hello from <author>"`; see
    /// [`DiscordSim::send_text`]. Returns the message id.
    pub async fn send_message(
        &self,
        guild: Option<u64>,
        channel: u64,
        author: u64,
        webhook: bool,
    ) -> u64 {
        self.send_text(
            guild,
            channel,
            author,
            webhook,
            &format!("hello from {author}"),
        )
        .await
    }

    /// Dispatches `MESSAGE_CREATE`. `guild: None` is a DM (no `guild_id`, no `member`). The
    /// author is looked up among the guild's members (name, bot flag), else a default human
    /// `user<ID>`. `webhook: true` makes a webhook message: `webhook_id` = author id,
    /// `author.bot = true`, no `member`. Returns the message id.
    #[allow(clippy::unused_async)]
    pub async fn send_text(
        &self,
        guild: Option<u64>,
        channel: u64,
        author: u64,
        webhook: bool,
        content: &str,
    ) -> u64 {
        let id = {
            let mut st = self.inner.lock();
            let id = st.next_id();
            let gi = guild.map(|g| {
                st.guild_index(g)
                    .unwrap_or_else(|| panic!("discord sim: unknown guild {g}"))
            });
            let mut user = st.find_user(gi, author);
            if webhook {
                user.bot = true;
                let known =
                    gi.is_some_and(|gi| st.guilds[gi].def.members.iter().any(|m| m.id == author));
                if !known {
                    "Captain Hook".clone_into(&mut user.name);
                }
            }
            let mentions_bot = content.contains(&format!("<@{BOT_USER_ID}>"));
            let member = match gi {
                Some(gi) if !webhook => Some(partial_member_json(
                    &st.started_at,
                    &st.member_roles(gi, author),
                    None,
                )),
                _ => None,
            };
            let msg = message_json(&MessageSpec {
                id,
                channel_id: channel,
                guild_id: guild,
                author: user_json(&user),
                member,
                content,
                embeds: Vec::new(),
                webhook_id: webhook.then_some(author),
                kind: 0,
                flags: 0,
                application_id: None,
                mentions: if mentions_bot {
                    vec![user_json(&bot_user())]
                } else {
                    Vec::new()
                },
            });
            let intent = if guild.is_some() {
                (intents::GUILD_MESSAGES, "GUILD_MESSAGES")
            } else {
                (intents::DIRECT_MESSAGES, "DIRECT_MESSAGES")
            };
            // Guild message content is blanked for a session without MESSAGE_CONTENT.
            let blank = guild.is_some() && !mentions_bot;
            st.dispatch_each("MESSAGE_CREATE", Some(intent), |intents_bits| {
                let mut msg = msg.clone();
                if blank && intents_bits & intents::MESSAGE_CONTENT == 0 {
                    msg["content"] = json!("");
                }
                msg
            });
            id
        };
        self.inner.bump();
        id
    }

    /// Invokes chat-input command `name` with an optional USER option (name, user id) and
    /// returns the reply text; see [`DiscordSim::invoke`].
    ///
    /// # Errors
    /// No reply within `timeout`, or no gateway session to deliver the interaction to.
    pub async fn invoke_command(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        name: &str,
        user_option: Option<(&str, u64)>,
        timeout: Duration,
    ) -> Result<String, String> {
        let options = user_option
            .map(|(n, id)| SimOption::User(n.to_owned(), id))
            .into_iter()
            .collect();
        self.invoke(guild, channel, user, name, options, timeout)
            .await
            .map(|r| r.text)
    }

    /// Dispatches `INTERACTION_CREATE` (type 2, chat input) for command `name` in a guild
    /// channel, from `user`, and waits for the bot's answer: a type 4 callback, or after a
    /// type 5 (deferred) callback the edit of `@original` or the first follow-up. `name` may
    /// be `"group sub"` or `"group subgroup sub"` for subcommands. Uses the registered
    /// command's id when the bot registered `name` (guild or global), else a made-up id.
    /// See [`DiscordSim::send_command`] and [`DiscordSim::wait_reply`].
    ///
    /// # Errors
    /// No reply within `timeout` (the message includes the simulator log), or no gateway
    /// session to deliver the interaction to.
    pub async fn invoke(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        name: &str,
        options: Vec<SimOption>,
        timeout: Duration,
    ) -> Result<CommandReply, String> {
        let id = self.send_command(guild, channel, user, name, &options)?;
        self.wait_reply(id, timeout).await
    }

    /// Dispatches `INTERACTION_CREATE` as [`DiscordSim::invoke`] does, to every live
    /// session, without waiting; returns the interaction id.
    ///
    /// # Errors
    /// Unknown guild, or no gateway session to deliver the interaction to.
    pub fn send_command(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        name: &str,
        options: &[SimOption],
    ) -> Result<u64, String> {
        let interaction_id = {
            let mut st = self.inner.lock();
            let gi = st
                .guild_index(guild)
                .ok_or_else(|| format!("unknown guild {guild}"))?;
            let (payload, id, token) = st.interaction_json(gi, channel, user, name, options);
            st.interactions.push(InteractionRecord::new(
                id,
                token,
                name.to_owned(),
                channel,
                Some(guild),
                payload.clone(),
            ));
            if st.dispatch("INTERACTION_CREATE", &payload, None) == 0 {
                return Err(format!(
                    "no gateway session to deliver /{name} to\n{}",
                    st.dump()
                ));
            }
            id
        };
        self.inner.bump();
        Ok(interaction_id)
    }

    /// The bot is removed from `guild` (kicked, or the server deleted):
    /// `GUILD_DELETE` without `unavailable`, as Discord sends it then.
    #[allow(clippy::unused_async, reason = "awaited like every other world change")]
    pub async fn remove_bot_from_guild(&self, guild: u64) {
        let d = json!({ "id": guild.to_string() });
        self.inner.lock().dispatch("GUILD_DELETE", &d, None);
        self.inner.bump();
    }

    /// The bot is added to `guild` again: its `GUILD_CREATE`, built per session
    /// for its intents.
    #[allow(clippy::unused_async, reason = "awaited like every other world change")]
    pub async fn add_bot_to_guild(&self, guild: u64) {
        {
            let mut st = self.inner.lock();
            let gi = st.guild_index(guild).expect("a simulated guild");
            let intents = st.last_intents.unwrap_or(u64::MAX);
            let d = st.guild_create_json(gi, intents);
            st.dispatch("GUILD_CREATE", &d, None);
        }
        self.inner.bump();
    }

    /// Sets the `member.permissions` that `user`'s interactions in `guild` carry (Discord
    /// computes them from roles and channel overwrites; the bot must check them on every
    /// use). Default: what `@everyone` may do, without Manage Server.
    pub fn set_member_permissions(&self, guild: u64, user: u64, permissions: u64) {
        self.inner
            .lock()
            .member_permissions
            .insert((guild, user), permissions);
    }

    /// Dispatches an autocomplete interaction (type 4) for command `name` (subcommands as
    /// in [`DiscordSim::invoke`]) with `options` and the option `focused` being typed with
    /// the partial value `typed`, and waits for the bot's type 8 answer: its choices as
    /// (label, value).
    ///
    /// # Errors
    /// No type 8 answer within `timeout`, or no gateway session.
    pub async fn autocomplete(
        &self,
        (guild, channel, user): (u64, u64, u64),
        name: &str,
        options: &[SimOption],
        (focused, typed): (&str, &str),
        timeout: Duration,
    ) -> Result<Vec<(String, Value)>, String> {
        let id = {
            let mut st = self.inner.lock();
            let gi = st
                .guild_index(guild)
                .ok_or_else(|| format!("unknown guild {guild}"))?;
            let mut all = options.to_vec();
            all.push(SimOption::String(focused.to_owned(), typed.to_owned()));
            let (mut payload, id, token) = st.interaction_json(gi, channel, user, name, &all);
            payload["type"] = json!(4);
            mark_focused(&mut payload["data"]["options"], focused);
            st.interactions.push(InteractionRecord::new(
                id,
                token,
                name.to_owned(),
                channel,
                Some(guild),
                payload.clone(),
            ));
            if st.dispatch("INTERACTION_CREATE", &payload, None) == 0 {
                return Err(format!(
                    "no gateway session to deliver /{name} autocomplete to"
                ));
            }
            id
        };
        self.inner.bump();
        let reply = self.wait_reply(id, timeout).await?;
        if reply.callback_type != 8 {
            return Err(format!(
                "autocomplete answered with callback type {}, not 8: {}",
                reply.callback_type, reply.raw
            ));
        }
        Ok(reply.raw["data"]["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    c["value"].clone(),
                )
            })
            .collect())
    }

    /// Waits for the bot's answer to interaction `id` (see [`DiscordSim::invoke`]).
    ///
    /// # Errors
    /// No reply within `timeout` (the message includes the simulator log).
    pub async fn wait_reply(&self, id: u64, timeout: Duration) -> Result<CommandReply, String> {
        let mut reply = None;
        let mut name = String::new();
        let ok = self
            .wait_until(timeout, |st| {
                let rec = st.interactions.iter().find(|r| r.id == id);
                if let Some(rec) = rec {
                    rec.name.clone_into(&mut name);
                }
                reply = rec.and_then(reply_of);
                reply.is_some()
            })
            .await;
        match reply {
            Some(r) if ok => Ok(r),
            _ => Err(format!(
                "no reply to /{name} within {timeout:?}\n{}",
                self.dump()
            )),
        }
    }

    /// Sends an arbitrary dispatch on every live session (no intent check). It is still
    /// validated, so a payload serenity cannot read lands in [`DiscordSim::payload_errors`].
    /// For events the simulator has no helper for, and for negative tests.
    #[allow(clippy::unused_async)]
    pub async fn dispatch_raw(&self, t: &str, d: Value) {
        self.inner.lock().dispatch(t, &d, None);
        self.inner.bump();
    }
}

/// Sets `"focused": true` on the option called `name`, inside subcommand layers too.
fn mark_focused(options: &mut Value, name: &str) {
    for o in options.as_array_mut().into_iter().flatten() {
        if o["type"] == json!(1) || o["type"] == json!(2) {
            mark_focused(&mut o["options"], name);
        } else if o["name"] == json!(name) {
            o["focused"] = json!(true);
        }
    }
}
