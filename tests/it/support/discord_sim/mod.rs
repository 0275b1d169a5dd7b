//! A Discord simulator: HTTP API v10 and gateway v10 (plain JSON text frames) on
//! `127.0.0.1:0`, enough for a serenity 0.12 / poise 0.6 bot to connect, receive
//! guilds, voice states, messages and slash commands, and answer them.
//!
//! Point the bot at it with
//! `HttpBuilder::new(BOT_TOKEN).proxy(sim.base_url()).ratelimiter_disabled(true)`
//! (or [`DiscordSim::http_client`]); serenity then asks `GET /api/v10/gateway` for the
//! websocket URL, which is this simulator too.
//!
//! Why it is strict: serenity turns any dispatch it cannot deserialize into
//! `Event::Unknown` and logs that only at debug level, so a payload missing one field
//! silently drops the event. The simulator therefore deserializes every dispatch and
//! every HTTP response it produces with serenity's own model types before sending it,
//! and records failures in [`DiscordSim::payload_errors`] (and prints them).
//!
//! Realism kept on purpose: events need the intents Discord requires (voice states need
//! `GUILD_VOICE_STATES`, guild messages `GUILD_MESSAGES`, DMs `DIRECT_MESSAGES`; guild
//! message content is blanked without `MESSAGE_CONTENT` unless the bot is mentioned;
//! without `GUILD_MEMBERS` the `GUILD_CREATE` member list holds only the bot and users in
//! voice), dispatches missed while disconnected are replayed on `RESUME`, and messages the
//! bot posts come back to it as `MESSAGE_CREATE` with `author.bot = true`.
//!
//! Everything the client did (HTTP method/path/status, gateway ops, dispatches sent or
//! skipped) is in [`DiscordSim::http_log`]; set `TEST_LOG` (or `SIM_LOG`) to also print it
//! live to stderr.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A token serenity accepts: three dot-separated parts, the first the base64 of
/// [`BOT_USER_ID`]. The simulator rejects any other token (HTTP 401, gateway close 4004).
pub const BOT_TOKEN: &str =
    "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GsImUl.c2ltdWxhdG9yLW9ubHktbm90LWEtcmVhbC10b2tlbg";
/// The bot's user id.
pub const BOT_USER_ID: u64 = 1_100_000_000_000_000_001;
/// The application id; equal to the bot user id, as for every application Discord creates today.
pub const APP_ID: u64 = BOT_USER_ID;
/// The application's owner (what `GET /oauth2/applications/@me` reports; poise reads it).
pub const APP_OWNER_ID: u64 = 1_100_000_000_000_000_002;
/// The bot's username.
pub const BOT_NAME: &str = "StudyTrackerSim";

/// Gateway intent bits the simulator enforces.
pub mod intents {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    pub const GUILD_VOICE_STATES: u64 = 1 << 7;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
}

const HEARTBEAT_INTERVAL_MS: u64 = 41_250;
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
const HISTORY_LIMIT: usize = 10_000;
const EPHEMERAL: u64 = 1 << 6;
/// Marker "kind" for `SimState::bot_message_json`: a follow-up (type 0, sent via webhook).
const FOLLOWUP: u64 = u64::MAX;

// Permission bits (Discord's numbering).
const P_CREATE_INSTANT_INVITE: u64 = 1 << 0;
const P_ADMINISTRATOR: u64 = 1 << 3;
const P_ADD_REACTIONS: u64 = 1 << 6;
const P_STREAM: u64 = 1 << 9;
const P_VIEW_CHANNEL: u64 = 1 << 10;
const P_SEND_MESSAGES: u64 = 1 << 11;
const P_EMBED_LINKS: u64 = 1 << 14;
const P_ATTACH_FILES: u64 = 1 << 15;
const P_READ_MESSAGE_HISTORY: u64 = 1 << 16;
const P_USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
const P_CONNECT: u64 = 1 << 20;
const P_SPEAK: u64 = 1 << 21;
const P_USE_VAD: u64 = 1 << 25;
const P_CHANGE_NICKNAME: u64 = 1 << 26;
const P_USE_APPLICATION_COMMANDS: u64 = 1 << 31;
const P_SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
/// What `@everyone` may do in simulated guilds.
const EVERYONE_PERMISSIONS: u64 = P_CREATE_INSTANT_INVITE
    | P_ADD_REACTIONS
    | P_STREAM
    | P_VIEW_CHANNEL
    | P_SEND_MESSAGES
    | P_EMBED_LINKS
    | P_ATTACH_FILES
    | P_READ_MESSAGE_HISTORY
    | P_USE_EXTERNAL_EMOJIS
    | P_CONNECT
    | P_SPEAK
    | P_USE_VAD
    | P_CHANGE_NICKNAME
    | P_USE_APPLICATION_COMMANDS
    | P_SEND_MESSAGES_IN_THREADS;
/// Every permission bit Discord defines today; what an administrator's computed permissions are.
const ALL_PERMISSIONS: u64 = (1 << 51) - 1;

// ---------------------------------------------------------------------------------------------
// Public description of the simulated world
// ---------------------------------------------------------------------------------------------

/// A user of the simulated world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub id: u64,
    pub name: String,
    pub bot: bool,
}

impl SimUser {
    /// A human user.
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            bot: false,
        }
    }

    /// Another bot (not the bot under test).
    pub fn bot(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            bot: true,
        }
    }
}

/// A guild of the simulated world. The bot under test is added to `members` automatically
/// (with an administrator role). Channels are named `voice-N` / `text-N` / `afk`; an
/// `afk_channel_id` that is not among `voice_channels` becomes an extra voice channel.
#[derive(Clone, Debug)]
pub struct SimGuild {
    pub id: u64,
    pub name: String,
    pub afk_channel_id: Option<u64>,
    pub voice_channels: Vec<u64>,
    pub text_channels: Vec<u64>,
    pub members: Vec<SimUser>,
}

impl SimGuild {
    /// A guild with no channels and no members yet; fill the public fields.
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            afk_channel_id: None,
            voice_channels: Vec::new(),
            text_channels: Vec::new(),
            members: Vec::new(),
        }
    }
}

/// The self-set and server-set flags of a voice state. `Default` is "unmuted, no camera".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // mirrors Discord's voice state flags
pub struct VoiceFlags {
    pub self_video: bool,
    pub self_stream: bool,
    pub self_mute: bool,
    pub self_deaf: bool,
    pub mute: bool,
    pub deaf: bool,
    pub suppress: bool,
}

/// One slash-command option value for [`DiscordSim::invoke`].
#[derive(Clone, Debug)]
pub enum SimOption {
    /// Type 6 USER; `data.resolved` gets the user (and the member if they are one).
    User(String, u64),
    String(String, String),
    Integer(String, i64),
    Number(String, f64),
    Boolean(String, bool),
    /// Type 7 CHANNEL; `data.resolved.channels` gets the channel.
    Channel(String, u64),
}

impl SimOption {
    fn name(&self) -> &str {
        match self {
            Self::User(n, _)
            | Self::String(n, _)
            | Self::Integer(n, _)
            | Self::Number(n, _)
            | Self::Boolean(n, _)
            | Self::Channel(n, _) => n,
        }
    }
}

/// The bot's answer to a simulated slash command.
#[derive(Clone, Debug)]
pub struct CommandReply {
    /// Message content, then each embed's title, description, `name: value` fields and
    /// footer, one per line.
    pub text: String,
    /// The response carried the EPHEMERAL flag.
    pub ephemeral: bool,
    /// The first callback was type 5 (deferred); `text` then comes from the edit of
    /// `@original` or the first follow-up.
    pub deferred: bool,
    /// Type of the first interaction callback (4 message, 5 deferred, 6/7 component, 9 modal).
    pub callback_type: u64,
    /// The message body the text was taken from (callback `data`, PATCH or follow-up body).
    pub raw: Value,
}

/// A message the bot posted with `POST /channels/{id}/messages`.
#[derive(Clone, Debug)]
pub struct SentMessage {
    pub channel_id: u64,
    /// `None` for DM channels.
    pub guild_id: Option<u64>,
    pub content: String,
    /// Content plus embed text, as in [`CommandReply::text`].
    pub text: String,
    pub raw: Value,
}

// ---------------------------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------------------------

struct VoiceEntry {
    channel: u64,
    flags: VoiceFlags,
    session_id: String,
}

struct GuildState {
    def: SimGuild,
    voice: HashMap<u64, VoiceEntry>,
}

enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
}

struct Session {
    id: String,
    seq: u64,
    intents: u64,
    /// Every dispatch frame of this session, for `RESUME` replay.
    history: Vec<(u64, String)>,
}

struct RegisteredCommand {
    id: u64,
    guild: Option<u64>,
    name: String,
    json: Value,
}

struct InteractionRecord {
    id: u64,
    token: String,
    channel_id: u64,
    guild_id: Option<u64>,
    /// Callback bodies, in order (a second one is refused like Discord does).
    callbacks: Vec<Value>,
    /// The `@original` message, once a type 4 or 5 callback created it.
    original: Option<Value>,
    /// Whether `@original` was edited after a deferred callback.
    original_edited: bool,
    followups: Vec<Value>,
}

struct SimState {
    started_at: String,
    gateway_url: String,
    guilds: Vec<GuildState>,
    log: Vec<String>,
    payload_errors: Vec<String>,
    commands: Vec<RegisteredCommand>,
    interactions: Vec<InteractionRecord>,
    bot_messages: Vec<SentMessage>,
    dm_channels: HashMap<u64, u64>,
    conn: Option<Conn>,
    session: Option<Session>,
    next_conn_id: u64,
    identifies: usize,
    resumes: usize,
    last_intents: Option<u64>,
    id_counter: u64,
    echo: bool,
    print_log: bool,
}

struct Inner {
    state: Mutex<SimState>,
    changed: watch::Sender<u64>,
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// Stops the server when the last [`DiscordSim`] clone is dropped.
struct ShutdownGuard(CancellationToken);

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The simulator handle. Cheap to clone; the server stops when the last clone is dropped
/// or on [`DiscordSim::shutdown`].
#[derive(Clone)]
pub struct DiscordSim {
    inner: Arc<Inner>,
    _guard: Arc<ShutdownGuard>,
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

impl DiscordSim {
    /// Binds `127.0.0.1:0` and serves the HTTP API and the gateway.
    ///
    /// # Panics
    /// If the port cannot be bound.
    pub async fn start(guilds: Vec<SimGuild>) -> DiscordSim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind simulator");
        let addr = listener.local_addr().expect("simulator address");
        let print_log =
            std::env::var_os("TEST_LOG").is_some() || std::env::var_os("SIM_LOG").is_some();
        let state = SimState {
            started_at: now_iso(),
            gateway_url: format!("ws://{addr}/gateway"),
            guilds: guilds
                .into_iter()
                .map(|def| GuildState {
                    def,
                    voice: HashMap::new(),
                })
                .collect(),
            log: Vec::new(),
            payload_errors: Vec::new(),
            commands: Vec::new(),
            interactions: Vec::new(),
            bot_messages: Vec::new(),
            dm_channels: HashMap::new(),
            conn: None,
            session: None,
            next_conn_id: 0,
            identifies: 0,
            resumes: 0,
            last_intents: None,
            id_counter: 0,
            echo: true,
            print_log,
        };
        let cancel = CancellationToken::new();
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            changed: watch::channel(0).0,
            addr,
            cancel: cancel.clone(),
        });
        let app = Router::new()
            .route("/gateway", get(gateway_upgrade))
            .route("/api/v10/*rest", any(http_api))
            .fallback(http_fallback)
            .with_state(Arc::clone(&inner));
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        DiscordSim {
            inner,
            _guard: Arc::new(ShutdownGuard(cancel)),
        }
    }

    /// `http://127.0.0.1:PORT`: what `HttpBuilder::proxy` takes.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// `ws://127.0.0.1:PORT/gateway`: what `GET /gateway` answers.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.inner.addr)
    }

    /// A serenity HTTP client already pointed at the simulator with the bot token.
    pub fn http_client(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(BOT_TOKEN)
            .proxy(self.base_url())
            .ratelimiter_disabled(true)
            .build()
    }

    /// Stops the server and closes gateway connections (also done by dropping the last clone).
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// Number of completed `IDENTIFY` handshakes (`READY` and every `GUILD_CREATE` sent). A bot
    /// restart adds one; a `RESUME` does not (see [`DiscordSim::resumes`]).
    pub fn connections(&self) -> usize {
        self.inner.lock().identifies
    }

    /// Number of successful `RESUME`s.
    pub fn resumes(&self) -> usize {
        self.inner.lock().resumes
    }

    /// Whether a gateway client is attached to the current session right now.
    pub fn is_client_connected(&self) -> bool {
        self.inner.lock().conn.is_some()
    }

    /// Intents of the last `IDENTIFY`, if any.
    pub fn intents(&self) -> Option<u64> {
        self.inner.lock().last_intents
    }

    /// Waits for the first `IDENTIFY` handshake; returns its intents bits.
    ///
    /// # Panics
    /// On timeout, with the simulator log.
    pub async fn wait_connected(&self, timeout: Duration) -> u64 {
        self.wait_connections(1, timeout).await
    }

    /// Waits until [`DiscordSim::connections`] reaches `n` (e.g. `connections() + 1` to see
    /// a restarted bot identify again); returns the intents of the last `IDENTIFY`.
    ///
    /// # Panics
    /// On timeout, with the simulator log.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> u64 {
        let ok = self.wait_until(timeout, |st| st.identifies >= n).await;
        assert!(
            ok,
            "discord sim: no {n} completed IDENTIFY within {timeout:?} (have {}).\n{}",
            self.connections(),
            self.dump()
        );
        self.intents().unwrap_or(0)
    }

    /// Waits until [`DiscordSim::resumes`] reaches `n`.
    ///
    /// # Panics
    /// On timeout, with the simulator log.
    pub async fn wait_resumes(&self, n: usize, timeout: Duration) {
        let ok = self.wait_until(timeout, |st| st.resumes >= n).await;
        assert!(
            ok,
            "discord sim: no {n} RESUME within {timeout:?}.\n{}",
            self.dump()
        );
    }

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
    /// `VOICE_STATE_UPDATE` (with `member` and `guild_id`; `channel_id: null` on leave).
    /// Without a connected client the dispatch is buffered for a `RESUME`.
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
                d,
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
            let intents_now = st.session.as_ref().map_or(0, |s| s.intents);
            let content = if guild.is_some()
                && intents_now & intents::MESSAGE_CONTENT == 0
                && !mentions_bot
            {
                ""
            } else {
                content
            };
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
            st.dispatch("MESSAGE_CREATE", msg, Some(intent));
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
        let interaction_id = {
            let mut st = self.inner.lock();
            let gi = st
                .guild_index(guild)
                .ok_or_else(|| format!("unknown guild {guild}"))?;
            let (payload, id, token) = st.interaction_json(gi, channel, user, name, &options);
            st.interactions.push(InteractionRecord {
                id,
                token,
                channel_id: channel,
                guild_id: Some(guild),
                callbacks: Vec::new(),
                original: None,
                original_edited: false,
                followups: Vec::new(),
            });
            if st.dispatch("INTERACTION_CREATE", payload, None) == Delivery::NoSession {
                return Err(format!(
                    "no gateway session to deliver /{name} to\n{}",
                    st.dump()
                ));
            }
            id
        };
        self.inner.bump();
        let mut reply = None;
        let ok = self
            .wait_until(timeout, |st| {
                reply = st
                    .interactions
                    .iter()
                    .find(|r| r.id == interaction_id)
                    .and_then(reply_of);
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

    /// Sends an arbitrary dispatch on the current session (no intent check). It is still
    /// validated, so a payload serenity cannot read lands in [`DiscordSim::payload_errors`].
    /// For events the simulator has no helper for, and for negative tests.
    #[allow(clippy::unused_async)]
    pub async fn dispatch_raw(&self, t: &str, d: Value) {
        self.inner.lock().dispatch(t, d, None);
        self.inner.bump();
    }

    /// Commands the bot registered: (guild for guild commands, name).
    pub fn registered_commands(&self) -> Vec<(Option<u64>, String)> {
        self.inner
            .lock()
            .commands
            .iter()
            .map(|c| (c.guild, c.name.clone()))
            .collect()
    }

    /// Waits until a command named `name` is registered (any scope).
    pub async fn wait_command_registered(&self, name: &str, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.commands.iter().any(|c| c.name == name))
            .await
    }

    /// Messages the bot posted with `POST /channels/{id}/messages`, oldest first.
    pub fn bot_messages(&self) -> Vec<SentMessage> {
        self.inner.lock().bot_messages.clone()
    }

    /// Waits until the bot has posted at least `n` channel messages; returns them all.
    pub async fn wait_bot_messages(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        self.wait_until(timeout, |st| st.bot_messages.len() >= n)
            .await;
        self.bot_messages()
    }

    /// Whether messages the bot posts (channel messages, non-ephemeral interaction replies
    /// and follow-ups) come back to it as `MESSAGE_CREATE`, as on Discord. Default true.
    pub fn set_echo_bot_messages(&self, echo: bool) {
        self.inner.lock().echo = echo;
    }

    /// Closes the current gateway websocket with code 4000; serenity resumes the session
    /// (dispatches sent meanwhile are replayed). No-op without a connection.
    pub fn disconnect_client(&self) {
        let mut st = self.inner.lock();
        if let Some(conn) = st.conn.take() {
            let _ = conn.tx.send(Outgoing::Close(4000, "simulator: disconnect"));
            st.log_line(format!(
                "GW#{} closed by simulator (4000, resumable)",
                conn.id
            ));
        }
        drop(st);
        self.inner.bump();
    }

    /// Forgets the session and closes the websocket with 4009 (session timed out), so
    /// serenity must `IDENTIFY` again (it waits a few seconds before doing so).
    pub fn invalidate_session(&self) {
        let mut st = self.inner.lock();
        st.session = None;
        if let Some(conn) = st.conn.take() {
            let _ = conn
                .tx
                .send(Outgoing::Close(4009, "simulator: session timed out"));
            st.log_line(format!(
                "GW#{} closed by simulator (4009, not resumable)",
                conn.id
            ));
        }
        drop(st);
        self.inner.bump();
    }

    /// Everything that happened: HTTP `METHOD /path -> status`, gateway ops received,
    /// dispatches sent, buffered or skipped (with the missing intent).
    pub fn http_log(&self) -> Vec<String> {
        self.inner.lock().log.clone()
    }

    /// Payloads the simulator produced that serenity 0.12 cannot deserialize. Should stay
    /// empty; a non-empty list is a simulator bug (the event would be silently dropped).
    pub fn payload_errors(&self) -> Vec<String> {
        self.inner.lock().payload_errors.clone()
    }

    fn dump(&self) -> String {
        self.inner.lock().dump()
    }

    async fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&SimState) -> bool) -> bool {
        let mut rx = self.inner.changed.subscribe();
        let fut = async {
            loop {
                if cond(&self.inner.lock()) {
                    return;
                }
                if rx.changed().await.is_err() {
                    // Sender lives in `inner`, which we hold; cannot happen. Poll as a fallback.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// State helpers
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Sent,
    Buffered,
    Filtered,
    NoSession,
}

impl SimState {
    fn log_line(&mut self, line: String) {
        if self.print_log {
            eprintln!("[discord-sim] {line}");
        }
        tracing::debug!(target: "discord_sim", "{line}");
        self.log.push(line);
    }

    fn payload_error(&mut self, what: &str, err: &str, payload: &Value) {
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

    fn dump(&self) -> String {
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
    fn next_id(&mut self) -> u64 {
        self.id_counter += 1;
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        (ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (self.id_counter & 0x3f_ffff)
    }

    fn guild_index(&self, guild: u64) -> Option<usize> {
        self.guilds.iter().position(|g| g.def.id == guild)
    }

    fn guild_of_channel(&self, channel: u64) -> Option<usize> {
        self.guilds.iter().position(|g| {
            g.def.text_channels.contains(&channel)
                || g.def.voice_channels.contains(&channel)
                || g.def.afk_channel_id == Some(channel)
        })
    }

    /// The member (or the bot, or a default human) with this id.
    fn find_user(&self, gi: Option<usize>, id: u64) -> SimUser {
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

    fn member_roles(&self, gi: usize, user: u64) -> Vec<u64> {
        if user == BOT_USER_ID {
            vec![bot_role_id(self.guilds[gi].def.id)]
        } else {
            Vec::new()
        }
    }

    fn member_json(&self, gi: usize, user: u64) -> Value {
        let u = self.find_user(Some(gi), user);
        member_json(&u, &self.started_at, &self.member_roles(gi, user))
    }

    /// Sends (or buffers for `RESUME`) one dispatch on the current session.
    fn dispatch(&mut self, t: &str, d: Value, intent: Option<(u64, &str)>) -> Delivery {
        let Some(session) = self.session.as_mut() else {
            self.log_line(format!(
                "dropped {t}: no gateway session (bot not connected yet)"
            ));
            return Delivery::NoSession;
        };
        if let Some((bit, name)) = intent {
            if session.intents & bit == 0 {
                let line = format!("skipped {t}: bot did not request intent {name}");
                self.log_line(line);
                return Delivery::Filtered;
            }
        }
        session.seq += 1;
        let seq = session.seq;
        let mut frame = Map::new();
        frame.insert("op".into(), json!(0));
        frame.insert("s".into(), json!(seq));
        frame.insert("t".into(), json!(t));
        frame.insert("d".into(), d);
        let frame = Value::Object(frame);
        let text = frame.to_string();
        session.history.push((seq, text.clone()));
        if session.history.len() > HISTORY_LIMIT {
            session.history.drain(..HISTORY_LIMIT / 10);
        }
        if let Err(e) = validate_dispatch(t, &frame) {
            self.payload_error(&format!("dispatch {t}"), &e, &frame);
        }
        let delivery = match &self.conn {
            Some(c) if c.tx.send(Outgoing::Text(text)).is_ok() => Delivery::Sent,
            _ => Delivery::Buffered,
        };
        let conn = self.conn.as_ref().map_or(0, |c| c.id);
        let summary = dispatch_summary(t, &frame["d"]);
        match delivery {
            Delivery::Sent => self.log_line(format!("GW#{conn} -> {t} s={seq} {summary}")),
            _ => self.log_line(format!(
                "buffered {t} s={seq} {summary} (no client attached; replayed on RESUME)"
            )),
        }
        delivery
    }

    #[allow(clippy::too_many_lines)] // one JSON literal
    fn guild_create_json(&self, gi: usize, intents_bits: u64) -> Value {
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

    #[allow(clippy::too_many_lines)]
    fn interaction_json(
        &mut self,
        gi: usize,
        channel: u64,
        user: u64,
        name: &str,
        options: &[SimOption],
    ) -> (Value, u64, String) {
        let guild = self.guilds[gi].def.id;
        let id = self.next_id();
        let token = format!("sim-interaction-token-{id}");
        let mut path: Vec<&str> = name.split_whitespace().collect();
        let top = if path.is_empty() {
            name.to_owned()
        } else {
            path.remove(0).to_owned()
        };
        let cmd = self
            .commands
            .iter()
            .find(|c| c.name == top && c.guild == Some(guild))
            .or_else(|| {
                self.commands
                    .iter()
                    .find(|c| c.name == top && c.guild.is_none())
            });
        let (command_id, command_guild) = match cmd {
            Some(c) => (c.id, c.guild),
            None => (0, None),
        };
        if cmd.is_none() {
            self.log_line(format!(
                "note: /{top} invoked but the bot never registered it; using a made-up id"
            ));
        }
        let command_id = if command_id == 0 {
            self.next_id()
        } else {
            command_id
        };

        let mut resolved_users = Map::new();
        let mut resolved_members = Map::new();
        let mut resolved_channels = Map::new();
        let mut opts = Vec::new();
        for o in options {
            let (kind, value) = match o {
                SimOption::User(_, uid) => {
                    let u = self.find_user(Some(gi), *uid);
                    resolved_users.insert(uid.to_string(), user_json(&u));
                    if self.guilds[gi].def.members.iter().any(|m| m.id == *uid)
                        || *uid == BOT_USER_ID
                    {
                        let perms = if *uid == BOT_USER_ID {
                            ALL_PERMISSIONS
                        } else {
                            EVERYONE_PERMISSIONS
                        };
                        resolved_members.insert(
                            uid.to_string(),
                            partial_member_json(
                                &self.started_at,
                                &self.member_roles(gi, *uid),
                                Some(perms),
                            ),
                        );
                    }
                    (6, json!(uid.to_string()))
                }
                SimOption::String(_, s) => (3, json!(s)),
                SimOption::Integer(_, i) => (4, json!(i)),
                SimOption::Boolean(_, b) => (5, json!(b)),
                SimOption::Number(_, n) => (10, json!(n)),
                SimOption::Channel(_, c) => {
                    let (ctype, cname) = self.channel_kind_name(gi, *c);
                    resolved_channels.insert(
                        c.to_string(),
                        json!({"id": c.to_string(), "name": cname, "type": ctype, "permissions": ALL_PERMISSIONS.to_string(), "parent_id": null}),
                    );
                    (7, json!(c.to_string()))
                }
            };
            opts.push(json!({ "name": o.name(), "type": kind, "value": value }));
        }
        // Wrap the leaf options in subcommand (type 1) / group (type 2) layers.
        let mut leaf = opts;
        for (depth, sub) in path.iter().enumerate().rev() {
            let kind = if depth + 1 == path.len() { 1 } else { 2 };
            leaf = vec![json!({ "name": sub, "type": kind, "options": leaf })];
        }
        let mut resolved = Map::new();
        if !resolved_users.is_empty() {
            resolved.insert("users".into(), Value::Object(resolved_users));
        }
        if !resolved_members.is_empty() {
            resolved.insert("members".into(), Value::Object(resolved_members));
        }
        if !resolved_channels.is_empty() {
            resolved.insert("channels".into(), Value::Object(resolved_channels));
        }
        let mut data = json!({
            "id": command_id.to_string(),
            "name": top,
            "type": 1,
            "options": leaf,
        });
        if !resolved.is_empty() {
            data["resolved"] = Value::Object(resolved);
        }
        if let Some(g) = command_guild {
            data["guild_id"] = json!(g.to_string());
        }
        let invoker = self.find_user(Some(gi), user);
        let mut member = member_json(&invoker, &self.started_at, &self.member_roles(gi, user));
        member["permissions"] = json!(EVERYONE_PERMISSIONS.to_string());
        let (ctype, cname) = self.channel_kind_name(gi, channel);
        let payload = json!({
            "id": id.to_string(),
            "application_id": APP_ID.to_string(),
            "type": 2,
            "data": data,
            "guild": { "id": guild.to_string(), "locale": "en-US", "features": [] },
            "guild_id": guild.to_string(),
            "channel": {
                "id": channel.to_string(),
                "type": ctype,
                "name": cname,
                "guild_id": guild.to_string(),
                "permissions": EVERYONE_PERMISSIONS.to_string(),
                "parent_id": null,
                "flags": 0,
                "nsfw": false,
                "position": 0,
                "last_message_id": null,
                "rate_limit_per_user": 0,
                "topic": null,
            },
            "channel_id": channel.to_string(),
            "member": member,
            "token": token,
            "version": 1,
            "app_permissions": ALL_PERMISSIONS.to_string(),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": { "0": guild.to_string() },
            "context": 0,
            "attachment_size_limit": 26_214_400,
        });
        (payload, id, token)
    }

    fn channel_kind_name(&self, gi: usize, channel: u64) -> (u64, String) {
        let def = &self.guilds[gi].def;
        if let Some(i) = def.text_channels.iter().position(|&c| c == channel) {
            (0, format!("text-{}", i + 1))
        } else if let Some(i) = def.voice_channels.iter().position(|&c| c == channel) {
            (2, format!("voice-{}", i + 1))
        } else if def.afk_channel_id == Some(channel) {
            (2, "afk".to_owned())
        } else {
            (0, format!("channel-{channel}"))
        }
    }
}

/// The answer to an interaction, once there is one.
fn reply_of(rec: &InteractionRecord) -> Option<CommandReply> {
    let first = rec.callbacks.first()?;
    let callback_type = first["type"].as_u64().unwrap_or(0);
    let flags_of = |v: &Value| v["flags"].as_u64().unwrap_or(0);
    match callback_type {
        4 => {
            let data = first["data"].clone();
            Some(CommandReply {
                text: message_text(&data),
                ephemeral: flags_of(&data) & EPHEMERAL != 0,
                deferred: false,
                callback_type,
                raw: data,
            })
        }
        5 => {
            let defer_ephemeral = flags_of(&first["data"]) & EPHEMERAL != 0;
            let body = if rec.original_edited {
                rec.original.clone()?
            } else {
                rec.followups.first()?.clone()
            };
            Some(CommandReply {
                text: message_text(&body),
                ephemeral: defer_ephemeral || flags_of(&body) & EPHEMERAL != 0,
                deferred: true,
                callback_type,
                raw: body,
            })
        }
        _ => Some(CommandReply {
            text: message_text(&first["data"]),
            ephemeral: false,
            deferred: false,
            callback_type,
            raw: first.clone(),
        }),
    }
}

/// Content, then each embed's title, description, fields and footer, one per line.
fn message_text(body: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(c) = body["content"].as_str() {
        if !c.is_empty() {
            lines.push(c.to_owned());
        }
    }
    for e in body["embeds"].as_array().into_iter().flatten() {
        for key in ["title", "description"] {
            if let Some(s) = e[key].as_str() {
                lines.push(s.to_owned());
            }
        }
        for f in e["fields"].as_array().into_iter().flatten() {
            lines.push(format!(
                "{}: {}",
                f["name"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or("")
            ));
        }
        if let Some(s) = e["footer"]["text"].as_str() {
            lines.push(s.to_owned());
        }
    }
    lines.join("\n")
}

fn dispatch_summary(t: &str, d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("null").to_owned();
    match t {
        "GUILD_CREATE" => format!(
            "guild={} voice_states={} members={}",
            s("id"),
            d["voice_states"].as_array().map_or(0, Vec::len),
            d["members"].as_array().map_or(0, Vec::len)
        ),
        "VOICE_STATE_UPDATE" => format!(
            "guild={} user={} channel={} self_video={}",
            s("guild_id"),
            s("user_id"),
            s("channel_id"),
            d["self_video"]
        ),
        "MESSAGE_CREATE" => format!(
            "channel={} author={} bot={} webhook={}",
            s("channel_id"),
            d["author"]["id"].as_str().unwrap_or(""),
            d["author"]["bot"],
            d.get("webhook_id").is_some()
        ),
        "INTERACTION_CREATE" => format!(
            "/{} user={}",
            d["data"]["name"].as_str().unwrap_or(""),
            d["member"]["user"]["id"].as_str().unwrap_or("")
        ),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON builders (each checked against serenity's model types in sim_smoke)
// ---------------------------------------------------------------------------------------------

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn bot_user() -> SimUser {
    SimUser::bot(BOT_USER_ID, BOT_NAME)
}

fn bot_role_id(guild: u64) -> u64 {
    guild + 1
}

/// A user object. Hashes are null.
pub fn user_json(u: &SimUser) -> Value {
    json!({
        "id": u.id.to_string(),
        "username": u.name,
        "discriminator": "0",
        "global_name": if u.bot { Value::Null } else { json!(u.name) },
        "avatar": null,
        "banner": null,
        "accent_color": null,
        "bot": u.bot,
        "system": false,
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": null,
        "collectibles": null,
        "primary_guild": null,
    })
}

/// The bot's own user object (`GET /users/@me`, `READY`).
pub fn current_user_json() -> Value {
    let mut u = user_json(&bot_user());
    u["verified"] = json!(true);
    u["mfa_enabled"] = json!(true);
    u["email"] = Value::Null;
    u["locale"] = json!("en-US");
    u["premium_type"] = json!(0);
    u
}

/// A guild member with its user object.
pub fn member_json(u: &SimUser, joined_at: &str, roles: &[u64]) -> Value {
    let mut m = partial_member_json(joined_at, roles, None);
    m["user"] = user_json(u);
    m
}

/// A member without `user` (as in `MESSAGE_CREATE` `member` and `resolved.members`).
pub fn partial_member_json(joined_at: &str, roles: &[u64], permissions: Option<u64>) -> Value {
    let roles: Vec<String> = roles.iter().map(ToString::to_string).collect();
    let mut m = json!({
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": roles,
        "joined_at": joined_at,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
        "unusual_dm_activity_until": null,
        "avatar_decoration_data": null,
    });
    if let Some(p) = permissions {
        m["permissions"] = json!(p.to_string());
    }
    m
}

/// A role (with the `colors` object serenity 0.12.5 requires).
pub fn role_json(id: u64, name: &str, permissions: u64, position: u64, managed: bool) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": permissions.to_string(),
        "managed": managed,
        "mentionable": false,
        "flags": 0,
    })
}

/// A guild channel: `kind` 0 text, 2 voice.
pub fn channel_json(guild: u64, id: u64, kind: u64, name: &str, position: u64) -> Value {
    let mut c = json!({
        "id": id.to_string(),
        "type": kind,
        "guild_id": guild.to_string(),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": false,
        "parent_id": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    });
    if kind == 2 {
        c["bitrate"] = json!(64_000);
        c["user_limit"] = json!(0);
        c["rtc_region"] = Value::Null;
    } else {
        c["topic"] = Value::Null;
        c["last_pin_timestamp"] = Value::Null;
    }
    c
}

/// A voice state as in `GUILD_CREATE` `voice_states` (no `member`, no `guild_id`); the
/// `VOICE_STATE_UPDATE` dispatch adds both.
pub fn voice_state_json(user: u64, channel: Option<u64>, session_id: &str, f: VoiceFlags) -> Value {
    json!({
        "user_id": user.to_string(),
        "channel_id": channel.map(|c| c.to_string()),
        "session_id": session_id,
        "deaf": f.deaf,
        "mute": f.mute,
        "self_deaf": f.self_deaf,
        "self_mute": f.self_mute,
        "self_stream": f.self_stream,
        "self_video": f.self_video,
        "suppress": f.suppress,
        "request_to_speak_timestamp": null,
    })
}

struct MessageSpec<'a> {
    id: u64,
    channel_id: u64,
    guild_id: Option<u64>,
    author: Value,
    member: Option<Value>,
    content: &'a str,
    embeds: Vec<Value>,
    webhook_id: Option<u64>,
    kind: u64,
    flags: u64,
    application_id: Option<u64>,
    mentions: Vec<Value>,
}

fn message_json(m: &MessageSpec<'_>) -> Value {
    let mut v = json!({
        "id": m.id.to_string(),
        "channel_id": m.channel_id.to_string(),
        "author": m.author,
        "content": m.content,
        "timestamp": now_iso(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": m.mentions,
        "mention_roles": [],
        "attachments": [],
        "embeds": m.embeds,
        "components": [],
        "pinned": false,
        "type": m.kind,
        "flags": m.flags,
    });
    if let Some(g) = m.guild_id {
        v["guild_id"] = json!(g.to_string());
    }
    if let Some(member) = &m.member {
        v["member"] = member.clone();
    }
    if let Some(w) = m.webhook_id {
        v["webhook_id"] = json!(w.to_string());
    }
    if let Some(a) = m.application_id {
        v["application_id"] = json!(a.to_string());
    }
    v
}

/// Keeps the embed fields Discord would echo back, in the shape serenity's `Embed` reads.
fn sanitize_embeds(body: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for e in body["embeds"].as_array().into_iter().flatten() {
        let mut x = Map::new();
        x.insert("type".into(), json!("rich"));
        for key in ["title", "description", "url", "timestamp", "color"] {
            if !e[key].is_null() {
                x.insert(key.into(), e[key].clone());
            }
        }
        if let Some(fields) = e["fields"].as_array() {
            let fields: Vec<Value> = fields
                .iter()
                .map(|f| json!({"name": f["name"], "value": f["value"], "inline": f["inline"].as_bool().unwrap_or(false)}))
                .collect();
            x.insert("fields".into(), json!(fields));
        }
        if let Some(t) = e["footer"]["text"].as_str() {
            x.insert("footer".into(), json!({ "text": t }));
        }
        if let Some(n) = e["author"]["name"].as_str() {
            x.insert("author".into(), json!({ "name": n }));
        }
        out.push(Value::Object(x));
    }
    out
}

/// An application command as Discord returns it after registration.
pub fn command_json(id: u64, guild: Option<u64>, body: &Value) -> Value {
    let pick = |k: &str, default: Value| {
        if body[k].is_null() {
            default
        } else {
            body[k].clone()
        }
    };
    let mut c = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "version": id.to_string(),
        "type": pick("type", json!(1)),
        "name": pick("name", json!("")),
        "description": pick("description", json!("")),
        "options": sanitize_options(&body["options"]),
        "default_member_permissions": if body["default_member_permissions"].is_string() { body["default_member_permissions"].clone() } else { Value::Null },
        "nsfw": body["nsfw"].as_bool().unwrap_or(false),
        "integration_types": if body["integration_types"].is_array() { body["integration_types"].clone() } else { json!([0]) },
        "contexts": if body["contexts"].is_array() { body["contexts"].clone() } else { Value::Null },
        "name_localizations": if body["name_localizations"].is_object() { body["name_localizations"].clone() } else { Value::Null },
        "description_localizations": if body["description_localizations"].is_object() { body["description_localizations"].clone() } else { Value::Null },
    });
    if let Some(dm) = body["dm_permission"].as_bool() {
        c["dm_permission"] = json!(dm);
    }
    if let Some(g) = guild {
        c["guild_id"] = json!(g.to_string());
    }
    c
}

/// Drops nulls from registered options (serde `default` does not cover an explicit null).
fn sanitize_options(options: &Value) -> Value {
    let Some(list) = options.as_array() else {
        return json!([]);
    };
    let out: Vec<Value> = list
        .iter()
        .map(|o| {
            let mut x = Map::new();
            if let Some(obj) = o.as_object() {
                for (k, v) in obj {
                    if v.is_null() {
                        continue;
                    }
                    if k == "options" {
                        x.insert(k.clone(), sanitize_options(v));
                    } else {
                        x.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(x)
        })
        .collect();
    Value::Array(out)
}

/// `GET /oauth2/applications/@me`.
pub fn application_json(guild_count: usize) -> Value {
    json!({
        "id": APP_ID.to_string(),
        "name": BOT_NAME,
        "icon": null,
        "description": "Discord simulator application",
        "summary": "",
        "type": null,
        "rpc_origins": [],
        "bot_public": true,
        "bot_require_code_grant": false,
        "terms_of_service_url": null,
        "privacy_policy_url": null,
        "owner": user_json(&SimUser::new(APP_OWNER_ID, "sim-owner")),
        "verify_key": "5e1c0a7b9d3f4e2a8c6b0d1f3e5a7c9b5e1c0a7b9d3f4e2a8c6b0d1f3e5a7c9b",
        "team": null,
        "flags": 0,
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "approximate_guild_count": guild_count,
        "approximate_user_install_count": 0,
        "bot": user_json(&bot_user()),
    })
}

fn ready_json(st: &SimState, session_id: &str, shard: &Value) -> Value {
    let guilds: Vec<Value> = st
        .guilds
        .iter()
        .map(|g| json!({ "id": g.def.id.to_string(), "unavailable": true }))
        .collect();
    json!({
        "v": 10,
        "user": current_user_json(),
        "guilds": guilds,
        "session_id": session_id,
        "resume_gateway_url": st.gateway_url,
        "shard": shard,
        "application": { "id": APP_ID.to_string(), "flags": 0 },
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "user_settings": {},
        "session_type": "normal",
        "auth": {},
        "_trace": ["discord-sim"],
    })
}

fn check<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(v.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deserializes a dispatch frame exactly as serenity's shard does, and the `d` into the
/// specific event type (for a precise error message).
fn validate_dispatch(t: &str, frame: &Value) -> Result<(), String> {
    use serenity::model::event as ev;
    let d = &frame["d"];
    match t {
        "READY" => check::<ev::ReadyEvent>(d)?,
        "GUILD_CREATE" => check::<ev::GuildCreateEvent>(d)?,
        "VOICE_STATE_UPDATE" => check::<ev::VoiceStateUpdateEvent>(d)?,
        "MESSAGE_CREATE" => check::<ev::MessageCreateEvent>(d)?,
        "INTERACTION_CREATE" => check::<ev::InteractionCreateEvent>(d)?,
        "RESUMED" => check::<ev::ResumedEvent>(d)?,
        _ => {}
    }
    match serde_json::from_value::<ev::GatewayEvent>(frame.clone()) {
        Ok(ev::GatewayEvent::Dispatch(_, ev::Event::Unknown(_))) => {
            Err(format!("{t} parses as Event::Unknown"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

async fn gateway_upgrade(State(inner): State<Arc<Inner>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| gateway_socket(inner, socket))
}

async fn gateway_socket(inner: Arc<Inner>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let conn_id = {
        let mut st = inner.lock();
        st.next_conn_id += 1;
        let id = st.next_conn_id;
        st.log_line(format!("GW#{id} connected; -> HELLO"));
        id
    };
    let hello = json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS } });
    let _ = tx.send(Outgoing::Text(hello.to_string()));
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Outgoing::Text(text) => {
                    if sink.send(WsMessage::Text(text)).await.is_err() {
                        break;
                    }
                }
                Outgoing::Close(code, reason) => {
                    let _ = sink
                        .send(WsMessage::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            }
        }
    });
    loop {
        let msg = tokio::select! {
            () = inner.cancel.cancelled() => {
                let _ = tx.send(Outgoing::Close(1001, "simulator shutting down"));
                break;
            }
            m = stream.next() => m,
        };
        match msg {
            Some(Ok(WsMessage::Text(text))) => {
                gateway_frame(&inner, conn_id, &tx, &text);
                inner.bump();
            }
            Some(Ok(WsMessage::Binary(b))) => inner.lock().log_line(format!(
                "GW#{conn_id} <- unexpected binary frame ({} bytes)",
                b.len()
            )),
            Some(Ok(WsMessage::Close(frame))) => {
                inner
                    .lock()
                    .log_line(format!("GW#{conn_id} <- close {:?}", frame.map(|f| f.code)));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                inner.lock().log_line(format!("GW#{conn_id} error: {e}"));
                break;
            }
            None => break,
        }
    }
    {
        let mut st = inner.lock();
        if st.conn.as_ref().is_some_and(|c| c.id == conn_id) {
            st.conn = None;
        }
        st.log_line(format!("GW#{conn_id} disconnected"));
    }
    inner.bump();
    drop(tx);
    // Let a queued close frame go out, then stop.
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

fn gateway_frame(inner: &Inner, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, text: &str) {
    let mut st = inner.lock();
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        st.log_line(format!("GW#{conn_id} <- unparsable frame: {text}"));
        return;
    };
    let d = &v["d"];
    match v["op"].as_u64() {
        Some(1) => {
            let _ = tx.send(Outgoing::Text(
                json!({ "op": 11, "s": null, "t": null, "d": null }).to_string(),
            ));
            st.log_line(format!("GW#{conn_id} <- HEARTBEAT {d}; -> ACK"));
        }
        Some(2) => identify(&mut st, conn_id, tx, d),
        Some(6) => resume(&mut st, conn_id, tx, d),
        Some(3) => st.log_line(format!("GW#{conn_id} <- PRESENCE_UPDATE {d}")),
        Some(4) => st.log_line(format!(
            "GW#{conn_id} <- VOICE_STATE_UPDATE (bot joining voice; ignored) {d}"
        )),
        Some(8) => st.log_line(format!(
            "GW#{conn_id} <- REQUEST_GUILD_MEMBERS (ignored) {d}"
        )),
        other => st.log_line(format!("GW#{conn_id} <- unknown op {other:?}: {text}")),
    }
}

fn token_ok(token: &str) -> bool {
    token.trim_start_matches("Bot ") == BOT_TOKEN
}

fn identify(st: &mut SimState, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, d: &Value) {
    let intents_bits = d["intents"].as_u64().unwrap_or(0);
    st.log_line(format!(
        "GW#{conn_id} <- IDENTIFY intents={intents_bits:#x} ({})",
        intent_names(intents_bits)
    ));
    if !token_ok(d["token"].as_str().unwrap_or("")) {
        let _ = tx.send(Outgoing::Close(4004, "Authentication failed."));
        st.log_line(format!("GW#{conn_id} bad token; closed 4004"));
        return;
    }
    let session_id = format!(
        "{:032x}",
        u128::from(st.next_id()) << 16 | u128::from(conn_id)
    );
    st.session = Some(Session {
        id: session_id.clone(),
        seq: 0,
        intents: intents_bits,
        history: Vec::new(),
    });
    if let Some(old) = st.conn.replace(Conn {
        id: conn_id,
        tx: tx.clone(),
    }) {
        if old.id != conn_id {
            st.log_line(format!(
                "GW#{} detached: GW#{conn_id} identified as a new session",
                old.id
            ));
        }
    }
    let shard = if d["shard"].is_array() {
        d["shard"].clone()
    } else {
        json!([0, 1])
    };
    let ready = ready_json(st, &session_id, &shard);
    st.dispatch("READY", ready, None);
    for gi in 0..st.guilds.len() {
        let g = st.guild_create_json(gi, intents_bits);
        st.dispatch("GUILD_CREATE", g, None);
    }
    st.identifies += 1;
    st.last_intents = Some(intents_bits);
}

fn resume(st: &mut SimState, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, d: &Value) {
    let sid = d["session_id"].as_str().unwrap_or("");
    let seq = d["seq"].as_u64().unwrap_or(0);
    st.log_line(format!("GW#{conn_id} <- RESUME session={sid} seq={seq}"));
    let replay = match &st.session {
        Some(s) if s.id == sid && token_ok(d["token"].as_str().unwrap_or("")) && seq <= s.seq => {
            let covered = s
                .history
                .first()
                .map_or(seq == s.seq, |(first, _)| *first <= seq + 1);
            covered.then(|| {
                s.history
                    .iter()
                    .filter(|(n, _)| *n > seq)
                    .map(|(_, f)| f.clone())
                    .collect::<Vec<_>>()
            })
        }
        _ => None,
    };
    let Some(replay) = replay else {
        let _ = tx.send(Outgoing::Text(
            json!({ "op": 9, "s": null, "t": null, "d": false }).to_string(),
        ));
        st.log_line(format!(
            "GW#{conn_id} cannot resume; -> INVALID_SESSION(false)"
        ));
        return;
    };
    st.conn = Some(Conn {
        id: conn_id,
        tx: tx.clone(),
    });
    let n = replay.len();
    for frame in replay {
        let _ = tx.send(Outgoing::Text(frame));
    }
    st.log_line(format!("GW#{conn_id} replayed {n} missed dispatches"));
    st.dispatch("RESUMED", json!({ "_trace": ["discord-sim"] }), None);
    st.resumes += 1;
}

fn intent_names(bits: u64) -> String {
    let names = [
        (intents::GUILDS, "GUILDS"),
        (intents::GUILD_MEMBERS, "GUILD_MEMBERS"),
        (intents::GUILD_VOICE_STATES, "GUILD_VOICE_STATES"),
        (intents::GUILD_MESSAGES, "GUILD_MESSAGES"),
        (intents::DIRECT_MESSAGES, "DIRECT_MESSAGES"),
        (intents::MESSAGE_CONTENT, "MESSAGE_CONTENT"),
    ];
    let known: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    known.join("|")
}

// ---------------------------------------------------------------------------------------------
// HTTP API
// ---------------------------------------------------------------------------------------------

async fn http_fallback(State(inner): State<Arc<Inner>>, method: Method, uri: Uri) -> Response {
    inner
        .lock()
        .log_line(format!("HTTP {method} {uri} -> 404 (outside /api/v10)"));
    not_found()
}

fn not_found() -> Response {
    discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}

fn discord_error(status: StatusCode, code: u64, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn ok_json(v: Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

/// The JSON body, also from a multipart request's `payload_json` part.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Value {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        let Some(boundary) = ct
            .split("boundary=")
            .nth(1)
            .map(|b| b.trim_matches('"').to_owned())
        else {
            return Value::Null;
        };
        let text = String::from_utf8_lossy(body);
        for part in text.split(&format!("--{boundary}")) {
            if part.contains("name=\"payload_json\"") {
                if let Some(i) = part.find("\r\n\r\n") {
                    return serde_json::from_str(part[i + 4..].trim_end()).unwrap_or(Value::Null);
                }
            }
        }
        return Value::Null;
    }
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    }
}

async fn http_api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/api/v10/").to_owned();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let body = json_body(&headers, &body);
    let needs_auth = !matches!(segs.first(), Some(&"interactions" | &"webhooks"));
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let response = if needs_auth && !token_ok(auth) {
        discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    } else {
        let mut st = inner.lock();
        route(&mut st, &method, &segs, &body)
    };
    let status = response.status().as_u16();
    inner.lock().log_line(format!(
        "HTTP {method} /api/v10/{path} -> {status}{}",
        body_summary(&segs, &body)
    ));
    inner.bump();
    response
}

fn body_summary(segs: &[&str], body: &Value) -> String {
    match segs {
        ["interactions", _, _, "callback"] => format!(" (callback type {})", body["type"]),
        ["applications", .., "commands"] if body.is_array() => {
            let names: Vec<&str> = body
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            format!(" ({})", names.join(", "))
        }
        ["applications", .., "commands"] if body["name"].is_string() => {
            format!(" ({})", body["name"].as_str().unwrap_or(""))
        }
        _ => String::new(),
    }
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}

#[allow(clippy::too_many_lines)]
fn route(st: &mut SimState, method: &Method, segs: &[&str], body: &Value) -> Response {
    let m = method.as_str();
    match (m, segs) {
        ("GET", ["gateway"]) => ok_json(json!({ "url": st.gateway_url })),
        ("GET", ["gateway", "bot"]) => ok_json(json!({
            "url": st.gateway_url,
            "shards": 1,
            "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 },
        })),
        ("GET", ["users", "@me"]) => {
            checked::<serenity::model::user::CurrentUser>(st, "GET /users/@me", current_user_json())
        }
        ("GET", ["users", id]) => {
            let Some(id) = parse_id(id) else {
                return not_found();
            };
            let u = st.find_user(None, id);
            ok_json(user_json(&u))
        }
        ("POST", ["users", "@me", "channels"]) => {
            let Some(recipient) = body["recipient_id"]
                .as_str()
                .and_then(parse_id)
                .or_else(|| body["recipient_id"].as_u64())
            else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            let channel = if let Some(c) = st.dm_channels.get(&recipient) {
                *c
            } else {
                let c = st.next_id();
                st.dm_channels.insert(recipient, c);
                c
            };
            let u = st.find_user(None, recipient);
            let dm = json!({ "id": channel.to_string(), "type": 1, "last_message_id": null, "flags": 0, "recipients": [user_json(&u)] });
            checked::<serenity::model::channel::PrivateChannel>(st, "POST /users/@me/channels", dm)
        }
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            let app = application_json(st.guilds.len());
            checked::<serenity::model::application::CurrentApplicationInfo>(
                st,
                "GET /oauth2/applications/@me",
                app,
            )
        }
        (_, ["applications", _app, "commands"]) => commands_route(st, m, None, body),
        (_, ["applications", _app, "guilds", g, "commands"]) => match parse_id(g) {
            Some(g) => commands_route(st, m, Some(g), body),
            None => not_found(),
        },
        (_, ["applications", _app, "commands", id]) => command_route(st, m, None, id, body),
        (_, ["applications", _app, "guilds", g, "commands", id]) => match parse_id(g) {
            Some(g) => command_route(st, m, Some(g), id, body),
            None => not_found(),
        },
        ("POST", ["interactions", id, token, "callback"]) => {
            interaction_callback(st, id, token, body)
        }
        (_, ["webhooks", _app, token, "messages", mid]) => {
            webhook_message_route(st, m, token, mid, body)
        }
        ("POST", ["webhooks", _app, token]) => followup(st, token, body),
        ("POST", ["channels", c, "messages"]) => match parse_id(c) {
            Some(c) => bot_channel_message(st, c, body),
            None => not_found(),
        },
        ("POST", ["channels", _c, "typing"]) => StatusCode::NO_CONTENT.into_response(),
        ("GET", ["channels", _c, "messages"]) => ok_json(json!([])),
        ("GET", ["channels", c]) => {
            let Some(c) = parse_id(c) else {
                return not_found();
            };
            let Some(gi) = st.guild_of_channel(c) else {
                return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            };
            let (kind, name) = st.channel_kind_name(gi, c);
            let ch = channel_json(st.guilds[gi].def.id, c, kind, &name, 0);
            checked::<serenity::model::channel::Channel>(st, "GET /channels/{id}", ch)
        }
        ("GET", ["guilds", g, "members", u]) => {
            let (Some(g), Some(u)) = (parse_id(g), parse_id(u)) else {
                return not_found();
            };
            let Some(gi) = st.guild_index(g) else {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            };
            if u != BOT_USER_ID && !st.guilds[gi].def.members.iter().any(|m| m.id == u) {
                return discord_error(StatusCode::NOT_FOUND, 10007, "Unknown Member");
            }
            let member = st.member_json(gi, u);
            checked::<serenity::model::guild::Member>(st, "GET /guilds/{g}/members/{u}", member)
        }
        ("GET", ["guilds", g, "channels"]) => {
            let Some(gi) = parse_id(g).and_then(|g| st.guild_index(g)) else {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            };
            let guild = st.guild_create_json(gi, 0);
            ok_json(guild["channels"].clone())
        }
        ("GET", ["guilds", g, "roles"]) => {
            let Some(gi) = parse_id(g).and_then(|g| st.guild_index(g)) else {
                return discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
            };
            let guild = st.guild_create_json(gi, 0);
            ok_json(guild["roles"].clone())
        }
        _ => {
            st.log_line(format!("UNHANDLED route {m} /{}", segs.join("/")));
            not_found()
        }
    }
}

/// Answers with `v` after checking serenity can read it as `T`.
fn checked<T: serde::de::DeserializeOwned>(st: &mut SimState, what: &str, v: Value) -> Response {
    if let Err(e) = check::<T>(&v) {
        st.payload_error(what, &e, &v);
    }
    ok_json(v)
}

fn commands_route(st: &mut SimState, m: &str, guild: Option<u64>, body: &Value) -> Response {
    use serenity::model::application::Command;
    match m {
        "GET" => {
            let list: Vec<Value> = st
                .commands
                .iter()
                .filter(|c| c.guild == guild)
                .map(|c| c.json.clone())
                .collect();
            ok_json(Value::Array(list))
        }
        "PUT" => {
            let Some(list) = body.as_array() else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            let mut old: Vec<RegisteredCommand> = Vec::new();
            let mut kept = Vec::new();
            for c in std::mem::take(&mut st.commands) {
                if c.guild == guild {
                    old.push(c);
                } else {
                    kept.push(c);
                }
            }
            st.commands = kept;
            let mut out = Vec::new();
            for b in list {
                let name = b["name"].as_str().unwrap_or("").to_owned();
                let id = match old.iter().find(|c| c.name == name) {
                    Some(c) => c.id,
                    None => st.next_id(),
                };
                let json = command_json(id, guild, b);
                out.push(json.clone());
                st.commands.push(RegisteredCommand {
                    id,
                    guild,
                    name,
                    json,
                });
            }
            let out = Value::Array(out);
            checked::<Vec<Command>>(st, "PUT commands", out)
        }
        "POST" => {
            let name = body["name"].as_str().unwrap_or("").to_owned();
            let existing = st
                .commands
                .iter()
                .position(|c| c.guild == guild && c.name == name);
            let id = match existing {
                Some(i) => st.commands.remove(i).id,
                None => st.next_id(),
            };
            let json = command_json(id, guild, body);
            st.commands.push(RegisteredCommand {
                id,
                guild,
                name,
                json: json.clone(),
            });
            checked::<Command>(st, "POST command", json)
        }
        _ => not_found(),
    }
}

fn command_route(
    st: &mut SimState,
    m: &str,
    guild: Option<u64>,
    id: &str,
    body: &Value,
) -> Response {
    let Some(id) = parse_id(id) else {
        return not_found();
    };
    let Some(i) = st
        .commands
        .iter()
        .position(|c| c.id == id && c.guild == guild)
    else {
        return discord_error(StatusCode::NOT_FOUND, 10063, "Unknown application command");
    };
    match m {
        "GET" => ok_json(st.commands[i].json.clone()),
        "DELETE" => {
            st.commands.remove(i);
            StatusCode::NO_CONTENT.into_response()
        }
        "PATCH" => {
            let mut merged = st.commands[i].json.clone();
            if let (Some(dst), Some(src)) = (merged.as_object_mut(), body.as_object()) {
                for (k, v) in src {
                    dst.insert(k.clone(), v.clone());
                }
            }
            let json = command_json(id, guild, &merged);
            json["name"]
                .as_str()
                .unwrap_or("")
                .clone_into(&mut st.commands[i].name);
            st.commands[i].json = json.clone();
            ok_json(json)
        }
        _ => not_found(),
    }
}

fn interaction_callback(st: &mut SimState, id: &str, token: &str, body: &Value) -> Response {
    let Some(id) = parse_id(id) else {
        return not_found();
    };
    let Some(ri) = st
        .interactions
        .iter()
        .position(|r| r.id == id && r.token == token)
    else {
        return discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    if !st.interactions[ri].callbacks.is_empty() {
        return discord_error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    let kind = body["type"].as_u64().unwrap_or(0);
    let data = &body["data"];
    let (channel_id, guild_id) = (st.interactions[ri].channel_id, st.interactions[ri].guild_id);
    st.interactions[ri].callbacks.push(body.clone());
    if kind == 4 || kind == 5 {
        let mid = st.next_id();
        let content = if kind == 4 {
            data["content"].as_str().unwrap_or("")
        } else {
            ""
        };
        let flags = data["flags"].as_u64().unwrap_or(0) | if kind == 5 { 1 << 7 } else { 0 };
        let msg = st.bot_message_json(
            mid,
            channel_id,
            guild_id,
            content,
            sanitize_embeds(data),
            20,
            flags,
        );
        st.interactions[ri].original = Some(msg.clone());
        if kind == 4 && flags & EPHEMERAL == 0 && st.echo {
            st.echo_message(msg);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

fn webhook_message_route(
    st: &mut SimState,
    m: &str,
    token: &str,
    mid: &str,
    body: &Value,
) -> Response {
    let Some(ri) = st.interactions.iter().position(|r| r.token == token) else {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    let target = if mid == "@original" {
        st.interactions[ri].original.clone()
    } else {
        parse_id(mid).and_then(|id| {
            st.interactions[ri]
                .followups
                .iter()
                .find(|f| f["id"] == json!(id.to_string()))
                .cloned()
        })
    };
    let Some(mut msg) = target else {
        return discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    match m {
        "GET" => checked::<serenity::model::channel::Message>(st, "GET webhook message", msg),
        "DELETE" => StatusCode::NO_CONTENT.into_response(),
        "PATCH" => {
            if let Some(c) = body["content"].as_str() {
                msg["content"] = json!(c);
            }
            if body["embeds"].is_array() {
                msg["embeds"] = Value::Array(sanitize_embeds(body));
            }
            if let Some(flags) = msg["flags"].as_u64() {
                msg["flags"] = json!(flags & !(1 << 7));
            }
            msg["edited_timestamp"] = json!(now_iso());
            if mid == "@original" {
                st.interactions[ri].original = Some(msg.clone());
                st.interactions[ri].original_edited = true;
            } else if let Some(f) = st.interactions[ri]
                .followups
                .iter_mut()
                .find(|f| f["id"] == msg["id"])
            {
                *f = msg.clone();
            }
            checked::<serenity::model::channel::Message>(st, "PATCH webhook message", msg)
        }
        _ => not_found(),
    }
}

fn followup(st: &mut SimState, token: &str, body: &Value) -> Response {
    let Some(ri) = st.interactions.iter().position(|r| r.token == token) else {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    if st.interactions[ri].callbacks.is_empty() {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    let (channel_id, guild_id) = (st.interactions[ri].channel_id, st.interactions[ri].guild_id);
    let mid = st.next_id();
    let flags = body["flags"].as_u64().unwrap_or(0);
    let content = body["content"].as_str().unwrap_or("");
    let msg = st.bot_message_json(
        mid,
        channel_id,
        guild_id,
        content,
        sanitize_embeds(body),
        FOLLOWUP,
        flags,
    );
    st.interactions[ri].followups.push(msg.clone());
    if flags & EPHEMERAL == 0 && st.echo {
        st.echo_message(msg.clone());
    }
    checked::<serenity::model::channel::Message>(st, "POST follow-up", msg)
}

fn bot_channel_message(st: &mut SimState, channel: u64, body: &Value) -> Response {
    let gi = st.guild_of_channel(channel);
    let is_dm = st.dm_channels.values().any(|&c| c == channel);
    if gi.is_none() && !is_dm {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let guild_id = gi.map(|gi| st.guilds[gi].def.id);
    let mid = st.next_id();
    let content = body["content"].as_str().unwrap_or("");
    let msg = st.bot_message_json(mid, channel, guild_id, content, sanitize_embeds(body), 0, 0);
    st.bot_messages.push(SentMessage {
        channel_id: channel,
        guild_id,
        content: content.to_owned(),
        text: message_text(&msg),
        raw: msg.clone(),
    });
    if st.echo {
        st.echo_message(msg.clone());
    }
    checked::<serenity::model::channel::Message>(st, "POST /channels/{id}/messages", msg)
}

impl SimState {
    /// A message authored by the bot (type 0 channel message, type 20 command reply).
    #[allow(clippy::too_many_arguments)]
    fn bot_message_json(
        &self,
        id: u64,
        channel: u64,
        guild: Option<u64>,
        content: &str,
        embeds: Vec<Value>,
        kind: u64,
        flags: u64,
    ) -> Value {
        let member = guild.and_then(|g| self.guild_index(g)).map(|gi| {
            partial_member_json(&self.started_at, &self.member_roles(gi, BOT_USER_ID), None)
        });
        // Interaction replies (type 20) and follow-ups are sent through the app's webhook.
        let from_interaction = kind == 20 || kind == FOLLOWUP;
        let kind = if kind == FOLLOWUP { 0 } else { kind };
        message_json(&MessageSpec {
            id,
            channel_id: channel,
            guild_id: guild,
            author: user_json(&bot_user()),
            member,
            content,
            embeds,
            webhook_id: from_interaction.then_some(APP_ID),
            kind,
            flags,
            application_id: from_interaction.then_some(APP_ID),
            mentions: Vec::new(),
        })
    }

    /// The bot's own message comes back to it over the gateway.
    fn echo_message(&mut self, msg: Value) {
        let intent = if msg.get("guild_id").is_some() {
            (intents::GUILD_MESSAGES, "GUILD_MESSAGES")
        } else {
            (intents::DIRECT_MESSAGES, "DIRECT_MESSAGES")
        };
        self.dispatch("MESSAGE_CREATE", msg, Some(intent));
    }
}

// ---------------------------------------------------------------------------------------------
// Guard against silently dropped events: capture serenity's logs
// ---------------------------------------------------------------------------------------------

/// Put this string in a deliberately broken payload (see `sim_smoke`) to check that the
/// guard fires; [`LogCapture::unknown_events`] ignores lines containing it, so the probe
/// does not fail tests running in parallel.
pub const GUARD_PROBE_MARKER: &str = "discord-sim-guard-probe";

/// One captured log event.
#[derive(Clone, Debug)]
pub struct CapturedLog {
    pub level: tracing::Level,
    pub target: String,
    pub message: String,
}

/// Logs captured by the process-wide subscriber [`serenity_log_capture`] installs:
/// `serenity::client::dispatch` at debug (where "An unknown event was received" is
/// logged) and every WARN/ERROR from serenity, poise and the simulator.
pub struct LogCapture {
    lines: Mutex<Vec<CapturedLog>>,
}

impl LogCapture {
    /// Every "An unknown event was received" line: each is a dispatch serenity dropped.
    pub fn unknown_events(&self) -> Vec<String> {
        self.matching(|l| {
            l.message.contains("An unknown event was received")
                && !l.message.contains(GUARD_PROBE_MARKER)
        })
    }

    /// WARN and ERROR lines.
    pub fn warnings(&self) -> Vec<String> {
        self.matching(|l| l.level <= tracing::Level::WARN)
    }

    /// Lines serenity logs when it skips part of a payload it cannot read (e.g. a guild
    /// channel inside `GUILD_CREATE`) or cannot parse a frame at all.
    pub fn deserialization_warnings(&self) -> Vec<String> {
        self.matching(|l| {
            l.level <= tracing::Level::WARN && l.message.to_lowercase().contains("deserializ")
        })
    }

    /// Everything captured so far.
    pub fn all(&self) -> Vec<CapturedLog> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether this process's global subscriber is ours (false if someone installed
    /// another global subscriber first; then nothing is captured).
    #[allow(clippy::unused_self)] // one subscriber per process; a method reads better
    pub fn is_installed(&self) -> bool {
        CAPTURE_INSTALLED.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn matching(&self, f: impl Fn(&CapturedLog) -> bool) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|l| f(l))
            .map(|l| format!("{} {}: {}", l.level, l.target, l.message))
            .collect()
    }
}

struct CaptureLayer(&'static LogCapture);

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let mut lines = self
            .0
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lines.len() < 100_000 {
            lines.push(CapturedLog {
                level: *event.metadata().level(),
                target: event.metadata().target().to_owned(),
                message: visitor.0,
            });
        }
    }
}

/// Installs (once per process) a global tracing subscriber that captures serenity's
/// dispatch debug logs and all warnings, and prints logs to the test output when
/// `TEST_LOG` is set (filter from `RUST_LOG`, default `info`). Call it at the start of
/// every test that runs a serenity client, then assert
/// `serenity_log_capture().unknown_events().is_empty()`.
///
/// # Panics
/// If another global subscriber was installed first (nothing could be captured).
pub fn serenity_log_capture() -> &'static LogCapture {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;

    static CAPTURE: std::sync::OnceLock<&'static LogCapture> = std::sync::OnceLock::new();
    let capture = *CAPTURE.get_or_init(|| {
        let capture: &'static LogCapture = Box::leak(Box::new(LogCapture {
            lines: Mutex::new(Vec::new()),
        }));
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("serenity::client::dispatch", tracing::Level::DEBUG)
            .with_default(tracing::Level::WARN);
        let capture_layer = CaptureLayer(capture).with_filter(targets);
        let print_layer = std::env::var_os("TEST_LOG").map(|_| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter)
        });
        let subscriber = tracing_subscriber::registry()
            .with(capture_layer)
            .with(print_layer);
        let installed = tracing::subscriber::set_global_default(subscriber).is_ok();
        CAPTURE_INSTALLED.store(installed, std::sync::atomic::Ordering::SeqCst);
        capture
    });
    assert!(
        capture.is_installed(),
        "serenity_log_capture: another global tracing subscriber was installed first; \
         install this one instead (it also prints logs when TEST_LOG is set)"
    );
    capture
}

static CAPTURE_INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
