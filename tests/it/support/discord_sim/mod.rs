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
//! voice), dispatches missed while disconnected are replayed on `RESUME`, a gateway outage
//! drops the connection and refuses reconnects while the HTTP API keeps answering
//! ([`DiscordSim::gateway_outage`]), and messages the bot posts come back to it as
//! `MESSAGE_CREATE` with `author.bot = true`.
//!
//! Several gateway sessions, as on Discord: two bot processes with the same token (and
//! the same shard) may both be connected, e.g. during an overlapping redeploy. Each
//! `IDENTIFY` creates a session with its own `session_id`, `s` sequence, resume buffer and
//! websocket; every dispatch (`GUILD_CREATE` at `IDENTIFY` for that session only;
//! `VOICE_STATE_UPDATE`, `MESSAGE_CREATE`, `INTERACTION_CREATE`, ... for all) goes to every
//! live session, and a `RESUME` replays the missed dispatches of the session it names. A
//! session whose websocket dropped stays resumable until it is invalidated, its client
//! closed with 1000/1001 (Discord invalidates the session then), or the resume window
//! passes ([`DiscordSim::set_resume_window`], default 120 s). Every interaction callback is
//! recorded; only the first acknowledges the interaction, later ones get HTTP 400 with
//! JSON error code 40060 "Interaction has already been acknowledged." (serenity:
//! `Error::Http(HttpError::UnsuccessfulRequest(ErrorResponse { error: DiscordJsonError {
//! code: 40060, .. }, .. }))`).
//!
//! Sessions, for tests:
//! - [`DiscordSim::sessions`] / [`DiscordSim::session`]: live sessions ([`SessionInfo`]: id,
//!   identify number, connected, intents, last `s`, dispatches received per event name,
//!   resumes and replayed dispatches); [`DiscordSim::wait_sessions`]`(n, timeout)` waits
//!   for `n` connected ones.
//! - [`DiscordSim::disconnect_session`]`(id)` (close 4000, resumable) and
//!   [`DiscordSim::invalidate_session_by_id`]`(id)` (close 4009, forgotten) act on one
//!   session; [`DiscordSim::disconnect_client`], [`DiscordSim::invalidate_session`] and
//!   [`DiscordSim::gateway_outage`] on all of them.
//! - [`DiscordSim::connections`] counts `IDENTIFY`s and [`DiscordSim::resumes`] `RESUME`s,
//!   over all sessions.
//!
//! Interactions, for tests: [`DiscordSim::invoke`] dispatches and waits for the reply;
//! [`DiscordSim::send_command`] only dispatches and returns the interaction id, for
//! [`DiscordSim::wait_reply`], [`DiscordSim::interaction_callbacks`] (every callback in
//! arrival order, [`CallbackRecord`]: body, accepted, status, error code) and
//! [`DiscordSim::wait_interaction_callbacks`].
//!
//! Buttons, for tests: the action rows the bot sends with a reply, a follow-up, an edit of
//! `@original` or an `UPDATE_MESSAGE` callback are kept on the message
//! ([`DiscordSim::original_message`], [`DiscordSim::buttons_of`], [`buttons`]);
//! [`DiscordSim::press_button`] / [`DiscordSim::press`] dispatch a `MESSAGE_COMPONENT`
//! interaction for a button on it (refused for a disabled or missing one) and
//! [`DiscordSim::wait_press_reply`] reads the answer ([`PressReply`]: type 7 updates the
//! message at once, type 6 leaves it to an edit of `@original`, 4/5 answer with a new
//! message); [`DiscordSim::redeliver_interaction`] delivers an interaction a second time.
//!
//! Everything the client did (HTTP method/path/status, gateway ops, dispatches sent or
//! skipped, per connection `GW#n` and session `Sn`) is in [`DiscordSim::http_log`]; set
//! `TEST_LOG` (or `SIM_LOG`) to also print it live to stderr.
//!
//! Layout: `model` (the public description of the simulated world), `state` (internal
//! state), `sessions` (gateway sessions and dispatch delivery), `payloads` (JSON builders),
//! `gateway`, `rest` (HTTP API), `interactions` (slash-command callbacks and follow-ups),
//! `components` (buttons on the bot's messages, pressing them),
//! `events` (the [`DiscordSim`] methods that make things happen), `log_capture` (serenity
//! log guard).

mod components;
mod events;
mod gateway;
mod interactions;
mod log_capture;
mod model;
mod payloads;
mod rest;
mod sessions;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[allow(
    unused_imports,
    reason = "`SimButton`, `PressReply` and `buttons` stay nameable for tests; today's reach them through methods"
)]
pub use components::{buttons, PressReply, SimButton};
// A glob, so `LogCapture` and `CapturedLog` stay nameable here although no test names them
// yet (an explicit re-export of an unused name would be an unused-import warning).
pub use log_capture::*;
pub use model::{
    CallbackRecord, CommandReply, SentMessage, SessionInfo, SimGuild, SimOption, SimUser,
    VoiceFlags,
};
pub use payloads::{
    application_json, channel_json, command_json, current_user_json, member_json,
    partial_member_json, role_json, user_json, voice_state_json,
};

use gateway::gateway_upgrade;
use payloads::now_iso;
use rest::{http_api, http_fallback};
use state::{GuildState, Inner, SimState};

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
/// Manage Server: what `/settings`, `/adjust` and `/audit` need.
pub const P_MANAGE_GUILD: u64 = 1 << 5;
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
pub const EVERYONE_PERMISSIONS: u64 = P_CREATE_INSTANT_INVITE
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
            sessions: Vec::new(),
            resume_window: sessions::DEFAULT_RESUME_WINDOW,
            press_window: None,
            next_conn_id: 0,
            identifies: 0,
            resumes: 0,
            refuse_gateway_until: None,
            refused_upgrades: 0,
            last_intents: None,
            id_counter: 0,
            echo: true,
            print_log,
            member_permissions: HashMap::new(),
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
    #[allow(
        dead_code,
        reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
    )]
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
    #[allow(
        dead_code,
        reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
    )]
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

    /// Commands the bot registered: (guild for guild commands, name).
    pub fn registered_commands(&self) -> Vec<(Option<u64>, String)> {
        self.inner
            .lock()
            .commands
            .iter()
            .map(|c| (c.guild, c.name.clone()))
            .collect()
    }

    /// The body the bot registered command `name` with (the last registration, any scope).
    pub fn registered_command_body(&self, name: &str) -> Option<serde_json::Value> {
        self.inner
            .lock()
            .commands
            .iter()
            .rev()
            .find(|c| c.name == name)
            .map(|c| c.json.clone())
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

    #[allow(
        dead_code,
        reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
    )]
    /// Whether messages the bot posts (channel messages, non-ephemeral interaction replies
    /// and follow-ups) come back to it as `MESSAGE_CREATE`, as on Discord. Default true.
    pub fn set_echo_bot_messages(&self, echo: bool) {
        self.inner.lock().echo = echo;
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
