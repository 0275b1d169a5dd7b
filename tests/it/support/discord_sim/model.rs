//! Public description of the simulated world: the types tests build and read.

use serde_json::Value;

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
    /// Categories (type 4 channels), each with the ids of the channels under it (which
    /// get it as their `parent_id`).
    pub categories: Vec<(u64, Vec<u64>)>,
}

impl SimGuild {
    /// A guild with no channels and no members yet; fill the public fields.
    #[allow(
        dead_code,
        reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
    )]
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            afk_channel_id: None,
            voice_channels: Vec::new(),
            text_channels: Vec::new(),
            members: Vec::new(),
            categories: Vec::new(),
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
#[allow(
    dead_code,
    reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
)]
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
    pub(super) fn name(&self) -> &str {
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
#[allow(
    dead_code,
    reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
)]
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
    /// Files uploaded with the reply (multipart `files[N]`): file name and bytes.
    pub attachments: Vec<(String, Vec<u8>)>,
}

/// A message the bot posted with `POST /channels/{id}/messages`.
#[allow(
    dead_code,
    reason = "simulator API for the features under way (options, embeds, components); kept whole rather than trimmed to today's tests"
)]
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

/// A gateway session as the simulator sees it ([`DiscordSim::sessions`]). Every `IDENTIFY`
/// creates one; it lives until invalidated, closed by the client with 1000/1001, or left
/// without a connection for longer than the resume window ([`DiscordSim::set_resume_window`]).
#[allow(
    dead_code,
    reason = "simulator API for overlapping redeploys (which process holds which session); kept whole rather than trimmed to today's tests"
)]
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The `session_id` sent in `READY` (what a `RESUME` names).
    pub id: String,
    /// 1 for the simulator's first `IDENTIFY`, 2 for the next, ...
    pub number: usize,
    /// A websocket is attached right now (else the session waits for a `RESUME`).
    pub connected: bool,
    /// The intents of its `IDENTIFY`.
    pub intents: u64,
    /// The `s` of its last dispatch (each session has its own sequence).
    pub seq: u64,
    /// Dispatches written to its websockets, by event name (`READY`, `GUILD_CREATE`, ...),
    /// replays on `RESUME` included; dispatches still waiting for a `RESUME` are not.
    pub received: std::collections::BTreeMap<String, usize>,
    /// Successful `RESUME`s of this session.
    pub resumes: usize,
    /// Dispatches replayed by those `RESUME`s.
    pub replayed: usize,
}

impl SessionInfo {
    /// How many `t` dispatches this session's client was sent.
    pub fn received_count(&self, t: &str) -> usize {
        self.received.get(t).copied().unwrap_or(0)
    }
}

/// One `POST /interactions/{id}/{token}/callback`, accepted or not
/// ([`DiscordSim::interaction_callbacks`]).
#[derive(Clone, Debug)]
pub struct CallbackRecord {
    /// The request body (`type`, `data`).
    pub body: Value,
    /// Whether it acknowledged the interaction (HTTP 204). Only the first one can.
    pub accepted: bool,
    /// The HTTP status answered: 204, 400 for a second callback, 404 for a press answered
    /// past [`DiscordSim::set_press_window`].
    pub status: u16,
    /// Discord's JSON error code for a refused callback: 40060, "Interaction has already
    /// been acknowledged.", or 10062, "Unknown interaction" (too late).
    pub error_code: Option<u64>,
}
