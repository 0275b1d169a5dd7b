//! The Discord simulator against a bare serenity 0.12 client (no poise): every event the
//! bot depends on must reach an `EventHandler`, and none may be dropped as
//! `Event::Unknown`. Two clients with one token (two gateway sessions for the same shard)
//! are in `sim_smoke/sessions.rs`.

mod components;
mod sessions;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use serenity::all::{
    ChannelId, Client, ClientBuilder, Command, CommandOptionType, Context, CreateCommand,
    CreateCommandOption, CreateEmbed, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, EditInteractionResponse, EventHandler,
    GatewayIntents, Guild, GuildId, Interaction, Message, Ready, ShardManager, VoiceState,
};

use crate::support::discord_sim::{
    self as sim, serenity_log_capture, DiscordSim, SimGuild, SimUser, APP_ID, BOT_USER_ID,
};
use crate::support::poll::eventually;

const GUILD: u64 = 810_000_000_000_000_001;
const VOICE_A: u64 = 810_000_000_000_000_101;
const VOICE_B: u64 = 810_000_000_000_000_102;
const AFK: u64 = 810_000_000_000_000_103;
const TEXT: u64 = 810_000_000_000_000_201;
const DM_CHANNEL: u64 = 810_000_000_000_000_301;
const ALICE: u64 = 810_000_000_000_001_001;
const BOB: u64 = 810_000_000_000_001_002;
const OTHER_BOT: u64 = 810_000_000_000_001_003;
const WEBHOOK: u64 = 810_000_000_000_001_004;

const WAIT: Duration = Duration::from_secs(10);

fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_VOICE_STATES
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

fn world() -> Vec<SimGuild> {
    vec![SimGuild {
        id: GUILD,
        name: "Study Hall".into(),
        afk_channel_id: Some(AFK),
        voice_channels: vec![VOICE_A, VOICE_B],
        text_channels: vec![TEXT],
        members: vec![
            SimUser::new(ALICE, "alice"),
            SimUser::new(BOB, "bob"),
            SimUser::bot(OTHER_BOT, "otherbot"),
        ],
        categories: Vec::new(),
    }]
}

/// What the handler saw.
#[derive(Clone, Debug)]
enum Seen {
    Ready {
        guilds: usize,
    },
    GuildCreate {
        id: u64,
        voice: Vec<(u64, Option<u64>, bool)>,
        channels: usize,
        members: usize,
    },
    Voice {
        guild: Option<u64>,
        user: u64,
        channel: Option<u64>,
        self_video: bool,
        member: bool,
    },
    Message {
        guild: Option<u64>,
        author: u64,
        bot: bool,
        webhook: bool,
        content: String,
    },
    Command {
        name: String,
        user: u64,
    },
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// Waits for an event matching `pred`, panicking with what was seen on timeout.
    async fn wait_for(&self, what: &str, sim: &DiscordSim, pred: impl Fn(&Seen) -> bool) -> Seen {
        let find = || self.all().into_iter().find(|s| pred(s));
        let seen = eventually(WAIT, || std::future::ready(find().is_some())).await;
        assert!(
            seen,
            "handler never saw {what}; saw {:#?}\nsim log:\n{}",
            self.all(),
            sim.http_log().join("\n")
        );
        find().expect("seen")
    }

    fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.all().iter().filter(|s| pred(s)).count()
    }
}

#[serenity::async_trait]
impl EventHandler for Recorder {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let ping = CreateCommand::new("ping")
            .description("Ping someone")
            .add_option(
                CreateCommandOption::new(CommandOptionType::User, "who", "Who to ping")
                    .required(false),
            );
        let slow = CreateCommand::new("slow").description("Deferred, then edited");
        let follow = CreateCommand::new("follow").description("Deferred, then a follow-up embed");
        if let Err(e) = GuildId::new(GUILD)
            .set_commands(&ctx.http, vec![ping, slow, follow])
            .await
        {
            panic!("registering guild commands failed: {e:?}");
        }
        let about = CreateCommand::new("about").description("About");
        if let Err(e) = Command::create_global_command(&ctx.http, about).await {
            panic!("registering a global command failed: {e:?}");
        }
        self.push(Seen::Ready {
            guilds: ready.guilds.len(),
        });
    }

    async fn guild_create(&self, _ctx: Context, guild: Guild, _is_new: Option<bool>) {
        let mut voice: Vec<_> = guild
            .voice_states
            .values()
            .map(|v| {
                (
                    v.user_id.get(),
                    v.channel_id.map(ChannelId::get),
                    v.self_video,
                )
            })
            .collect();
        voice.sort_unstable();
        self.push(Seen::GuildCreate {
            id: guild.id.get(),
            voice,
            channels: guild.channels.len(),
            members: guild.members.len(),
        });
    }

    async fn voice_state_update(&self, _ctx: Context, _old: Option<VoiceState>, new: VoiceState) {
        self.push(Seen::Voice {
            guild: new.guild_id.map(GuildId::get),
            user: new.user_id.get(),
            channel: new.channel_id.map(ChannelId::get),
            self_video: new.self_video,
            member: new.member.is_some(),
        });
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        self.push(Seen::Message {
            guild: msg.guild_id.map(GuildId::get),
            author: msg.author.id.get(),
            bot: msg.author.bot,
            webhook: msg.webhook_id.is_some(),
            content: msg.content.clone(),
        });
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Interaction::Command(cmd) = interaction else {
            return;
        };
        self.push(Seen::Command {
            name: cmd.data.name.clone(),
            user: cmd.user.id.get(),
        });
        let result = match cmd.data.name.as_str() {
            "ping" => {
                let target = cmd
                    .data
                    .options
                    .first()
                    .and_then(|o| o.value.as_user_id())
                    .and_then(|id| cmd.data.resolved.users.get(&id))
                    .map_or_else(|| "nobody".to_owned(), |u| u.name.clone());
                let reply =
                    CreateInteractionResponseMessage::new().content(format!("pong {target}"));
                cmd.create_response(&ctx.http, CreateInteractionResponse::Message(reply))
                    .await
            }
            "slow" => match cmd.defer(&ctx.http).await {
                Ok(()) => cmd
                    .edit_response(
                        &ctx.http,
                        EditInteractionResponse::new().content("slow done"),
                    )
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
            "follow" => match cmd.defer_ephemeral(&ctx.http).await {
                Ok(()) => {
                    let embed = CreateEmbed::new()
                        .title("Stats")
                        .field("Voice", "1h 5m", false);
                    let followup = CreateInteractionResponseFollowup::new()
                        .embed(embed)
                        .ephemeral(true);
                    cmd.create_followup(&ctx.http, followup).await.map(|_| ())
                }
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if let Err(e) = result {
            panic!("answering /{} failed: {e:?}", cmd.data.name);
        }
    }
}

struct Running {
    shards: Arc<ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.shards.shutdown_all().await;
        self.task.abort();
    }
}

async fn start_client(sim: &DiscordSim, handler: impl EventHandler + 'static) -> Running {
    let mut client: Client = ClientBuilder::new_with_http(sim.http_client(), intents())
        .event_handler(handler)
        .await
        .expect("build serenity client");
    let shards = Arc::clone(&client.shard_manager);
    let task = tokio::spawn(async move {
        if let Err(e) = client.start().await {
            eprintln!("serenity client stopped: {e:?}");
        }
    });
    Running { shards, task }
}

fn assert_nothing_dropped(sim: &DiscordSim) {
    let logs = serenity_log_capture();
    assert!(
        sim.payload_errors().is_empty(),
        "simulator payload errors: {:#?}",
        sim.payload_errors()
    );
    assert!(
        logs.unknown_events().is_empty(),
        "serenity dropped events: {:#?}",
        logs.unknown_events()
    );
    assert!(
        logs.deserialization_warnings().is_empty(),
        "serenity could not read parts of payloads: {:#?}",
        logs.deserialization_warnings()
    );
}

#[test]
fn payload_builders_match_serenity_models() {
    use serenity::model::prelude::*;
    #[allow(clippy::needless_pass_by_value)] // call sites read better with owned temporaries
    fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) {
        if let Err(e) = serde_json::from_value::<T>(v.clone()) {
            panic!("{what}: {e}\n{v:#}");
        }
    }
    let alice = SimUser::new(ALICE, "alice");
    parse::<User>("user", sim::user_json(&alice));
    parse::<CurrentUser>("current user", sim::current_user_json());
    let member = sim::member_json(&alice, "2024-01-01T00:00:00+00:00", &[GUILD + 1]);
    parse::<Member>("member", member);
    parse::<PartialMember>(
        "partial member",
        sim::partial_member_json("2024-01-01T00:00:00+00:00", &[], Some(8)),
    );
    parse::<Role>("role", sim::role_json(GUILD, "@everyone", 1024, 0, false));
    parse::<GuildChannel>(
        "text channel",
        sim::channel_json(GUILD, TEXT, 0, "text-1", 0),
    );
    parse::<GuildChannel>(
        "voice channel",
        sim::channel_json(GUILD, VOICE_A, 2, "voice-1", 1),
    );
    let flags = sim::VoiceFlags {
        self_video: true,
        ..Default::default()
    };
    parse::<VoiceState>(
        "voice state",
        sim::voice_state_json(ALICE, Some(VOICE_A), "abc", flags),
    );
    parse::<VoiceState>(
        "voice leave",
        sim::voice_state_json(ALICE, None, "abc", flags),
    );
    parse::<CurrentApplicationInfo>("application", sim::application_json(1));
    let body = serde_json::json!({
        "name": "stats", "description": "Stats", "type": 1, "contexts": null, "integration_types": null,
        "options": [{ "type": 6, "name": "who", "description": "Who", "required": false, "choices": null }],
    });
    parse::<Command>("command", sim::command_json(APP_ID + 7, Some(GUILD), &body));
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // one end-to-end walk through every event kind
async fn serenity_client_receives_every_event_the_bot_needs() {
    let logs = serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    // Alice is already on camera before the bot connects: GUILD_CREATE must carry it.
    sim.set_voice(GUILD, ALICE, Some(VOICE_A), true).await;

    let recorder = Recorder::default();
    let client = start_client(&sim, recorder.clone()).await;
    let identified = sim.wait_connected(WAIT).await;
    assert_eq!(identified, intents().bits(), "IDENTIFY intents");

    recorder
        .wait_for("ready", &sim, |s| matches!(s, Seen::Ready { guilds: 1 }))
        .await;
    let guild = recorder
        .wait_for("guild_create", &sim, |s| {
            matches!(s, Seen::GuildCreate { .. })
        })
        .await;
    let Seen::GuildCreate {
        id,
        voice,
        channels,
        members,
    } = guild
    else {
        unreachable!()
    };
    assert_eq!(id, GUILD);
    assert_eq!(
        voice,
        vec![(ALICE, Some(VOICE_A), true)],
        "voice_states in GUILD_CREATE"
    );
    assert_eq!(channels, 4, "text + 2 voice + afk");
    // No GUILD_MEMBERS intent: only the bot and the users in voice.
    assert_eq!(members, 2);

    // Voice: join with camera, toggle it off, leave.
    sim.set_voice(GUILD, BOB, Some(VOICE_B), true).await;
    recorder
        .wait_for("bob joins with camera", &sim, |s| {
            matches!(
                s,
                Seen::Voice {
                    guild: Some(GUILD),
                    user: BOB,
                    channel: Some(VOICE_B),
                    self_video: true,
                    member: true
                }
            )
        })
        .await;
    sim.set_voice(GUILD, BOB, Some(VOICE_B), false).await;
    recorder
        .wait_for("bob turns the camera off", &sim, |s| {
            matches!(
                s,
                Seen::Voice {
                    user: BOB,
                    channel: Some(VOICE_B),
                    self_video: false,
                    ..
                }
            )
        })
        .await;
    sim.set_voice(GUILD, BOB, None, false).await;
    recorder
        .wait_for("bob leaves", &sim, |s| {
            matches!(
                s,
                Seen::Voice {
                    user: BOB,
                    channel: None,
                    member: true,
                    ..
                }
            )
        })
        .await;
    assert_eq!(sim.voice_channel_of(GUILD, BOB), None);
    assert_eq!(sim.voice_channel_of(GUILD, ALICE), Some(VOICE_A));

    // Messages: human, another bot, a webhook, a DM.
    sim.send_text(Some(GUILD), TEXT, ALICE, false, "studying now")
        .await;
    sim.send_message(Some(GUILD), TEXT, OTHER_BOT, false).await;
    sim.send_message(Some(GUILD), TEXT, WEBHOOK, true).await;
    sim.send_text(None, DM_CHANNEL, BOB, false, "hi bot").await;
    recorder
        .wait_for("alice's message", &sim, |s| {
            matches!(s, Seen::Message { guild: Some(GUILD), author: ALICE, bot: false, webhook: false, content } if content == "studying now")
        })
        .await;
    recorder
        .wait_for("the other bot's message", &sim, |s| {
            matches!(
                s,
                Seen::Message {
                    author: OTHER_BOT,
                    bot: true,
                    webhook: false,
                    ..
                }
            )
        })
        .await;
    recorder
        .wait_for("the webhook message", &sim, |s| {
            matches!(
                s,
                Seen::Message {
                    author: WEBHOOK,
                    bot: true,
                    webhook: true,
                    ..
                }
            )
        })
        .await;
    recorder
        .wait_for("the DM", &sim, |s| {
            matches!(
                s,
                Seen::Message {
                    guild: None,
                    author: BOB,
                    ..
                }
            )
        })
        .await;

    // Commands: the bot registered them on READY.
    assert!(
        sim.wait_command_registered("about", WAIT).await,
        "commands: {:?}",
        sim.registered_commands()
    );
    let mut commands = sim.registered_commands();
    commands.sort();
    assert_eq!(
        commands,
        vec![
            (None, "about".to_owned()),
            (Some(GUILD), "follow".to_owned()),
            (Some(GUILD), "ping".to_owned()),
            (Some(GUILD), "slow".to_owned()),
        ]
    );
    let reply = sim
        .invoke_command(GUILD, TEXT, ALICE, "ping", Some(("who", BOB)), WAIT)
        .await;
    assert_eq!(reply.as_deref(), Ok("pong bob"));
    recorder
        .wait_for(
            "/ping",
            &sim,
            |s| matches!(s, Seen::Command { name, user: ALICE } if name == "ping"),
        )
        .await;
    // The reply comes back to the bot as its own message.
    recorder
        .wait_for("echo of the reply", &sim, |s| {
            matches!(s, Seen::Message { author: BOT_USER_ID, bot: true, content, .. } if content == "pong bob")
        })
        .await;

    let slow = sim
        .invoke(GUILD, VOICE_A, BOB, "slow", vec![], WAIT)
        .await
        .expect("/slow reply");
    assert!(slow.deferred && !slow.ephemeral);
    assert_eq!(slow.text, "slow done");
    let follow = sim
        .invoke(GUILD, TEXT, BOB, "follow", vec![], WAIT)
        .await
        .expect("/follow reply");
    assert!(follow.deferred && follow.ephemeral);
    assert_eq!(follow.text, "Stats\nVoice: 1h 5m");

    // A command nobody answers times out with an error instead of hanging.
    let unanswered = sim
        .invoke_command(
            GUILD,
            TEXT,
            ALICE,
            "about",
            None,
            Duration::from_millis(300),
        )
        .await;
    assert!(unanswered.is_err());

    // A message the bot posts is recorded and echoed back.
    ChannelId::new(TEXT)
        .send_message(
            &sim.http_client(),
            CreateMessage::new().content("daily report"),
        )
        .await
        .expect("post a channel message");
    let posted = sim.wait_bot_messages(1, WAIT).await;
    assert_eq!(posted[0].channel_id, TEXT);
    assert_eq!(posted[0].text, "daily report");
    recorder
        .wait_for("echo of the post", &sim, |s| {
            matches!(s, Seen::Message { author: BOT_USER_ID, content, .. } if content == "daily report")
        })
        .await;

    client.stop().await;
    assert_nothing_dropped(&sim);
    assert!(logs.is_installed());
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_resume_and_restarts_reidentify() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let recorder = Recorder::default();
    let client = start_client(&sim, recorder.clone()).await;
    sim.wait_connected(WAIT).await;
    recorder
        .wait_for("guild_create", &sim, |s| {
            matches!(s, Seen::GuildCreate { .. })
        })
        .await;

    // Dropped connection: serenity resumes, and an event sent meanwhile arrives once.
    sim.disconnect_client();
    sim.set_voice(GUILD, ALICE, Some(VOICE_A), true).await;
    sim.wait_resumes(1, WAIT).await;
    recorder
        .wait_for("voice update across the resume", &sim, |s| {
            matches!(s, Seen::Voice { user: ALICE, .. })
        })
        .await;
    sim.set_voice(GUILD, ALICE, Some(VOICE_B), true).await;
    recorder
        .wait_for("voice update after the resume", &sim, |s| {
            matches!(
                s,
                Seen::Voice {
                    user: ALICE,
                    channel: Some(VOICE_B),
                    ..
                }
            )
        })
        .await;
    assert_eq!(
        recorder.count(|s| matches!(s, Seen::Voice { user: ALICE, .. })),
        2
    );
    assert_eq!(sim.connections(), 1, "a resume is not a new IDENTIFY");

    // Bot restart: a new client identifies, and GUILD_CREATE carries current voice states.
    client.stop().await;
    let recorder2 = Recorder::default();
    let client2 = start_client(&sim, recorder2.clone()).await;
    sim.wait_connections(2, WAIT).await;
    let guild = recorder2
        .wait_for("guild_create after restart", &sim, |s| {
            matches!(s, Seen::GuildCreate { .. })
        })
        .await;
    let Seen::GuildCreate { voice, .. } = guild else {
        unreachable!()
    };
    assert_eq!(voice, vec![(ALICE, Some(VOICE_B), true)]);
    assert_eq!(
        sim.invoke_command(GUILD, TEXT, BOB, "ping", None, WAIT)
            .await
            .as_deref(),
        Ok("pong nobody")
    );

    // A session the gateway forgets: serenity must IDENTIFY again (its shard queuer waits
    // up to 5 s between IDENTIFYs).
    sim.invalidate_session();
    sim.wait_connections(3, Duration::from_secs(15)).await;
    recorder2
        .wait_for("a second guild_create", &sim, |_| {
            recorder2.count(|s| matches!(s, Seen::GuildCreate { .. })) >= 2
        })
        .await;
    assert_eq!(sim.resumes(), 1);

    client2.stop().await;
    assert_nothing_dropped(&sim);
}

/// The guard itself: a dispatch serenity cannot read must show up both in the
/// simulator's payload errors and as "An unknown event was received" in the captured logs,
/// and must not reach the handler.
#[tokio::test(flavor = "multi_thread")]
async fn guard_catches_a_dispatch_serenity_cannot_read() {
    let logs = serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let recorder = Recorder::default();
    let client = start_client(&sim, recorder.clone()).await;
    sim.wait_connected(WAIT).await;
    recorder
        .wait_for("guild_create", &sim, |s| {
            matches!(s, Seen::GuildCreate { .. })
        })
        .await;

    // A voice state without session_id / deaf / mute / self_* flags.
    let broken = serde_json::json!({
        "guild_id": GUILD.to_string(),
        "user_id": ALICE.to_string(),
        "channel_id": VOICE_A.to_string(),
        "probe": sim::GUARD_PROBE_MARKER,
    });
    sim.dispatch_raw("VOICE_STATE_UPDATE", broken).await;
    let dropped = || {
        logs.all().iter().any(|l| {
            l.message.contains("An unknown event was received")
                && l.message.contains(sim::GUARD_PROBE_MARKER)
        })
    };
    assert!(
        eventually(WAIT, || std::future::ready(dropped())).await,
        "the guard did not see the dropped event"
    );
    let errors = sim.payload_errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("VOICE_STATE_UPDATE"), "{errors:#?}");
    assert_eq!(recorder.count(|s| matches!(s, Seen::Voice { .. })), 0);
    client.stop().await;
}

type PoiseError = Box<dyn std::error::Error + Send + Sync>;
type PoiseContext<'a> = poise::Context<'a, (), PoiseError>;

/// Greets someone.
#[poise::command(slash_command)]
async fn hello(
    ctx: PoiseContext<'_>,
    #[description = "Who to greet"] who: Option<serenity::all::User>,
) -> Result<(), PoiseError> {
    let name = who.map_or_else(|| "you".to_owned(), |u| u.name);
    ctx.say(format!("hello {name}")).await?;
    Ok(())
}

/// Defers, then answers.
#[poise::command(slash_command, ephemeral)]
async fn later(ctx: PoiseContext<'_>) -> Result<(), PoiseError> {
    ctx.defer_ephemeral().await?;
    ctx.say("later done").await?;
    Ok(())
}

/// The same path the real bot takes: poise reads the application info, registers its
/// commands on READY, parses the USER option, answers directly or after deferring.
#[tokio::test(flavor = "multi_thread")]
async fn poise_framework_registers_and_answers_commands() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![hello(), later()],
            ..Default::default()
        })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                let commands = &framework.options().commands;
                poise::builtins::register_in_guild(ctx, commands, GuildId::new(GUILD)).await?;
                Ok(())
            })
        })
        .build();
    let mut client = ClientBuilder::new_with_http(sim.http_client(), intents())
        .framework(framework)
        .await
        .expect("build poise client");
    let running = Running {
        shards: Arc::clone(&client.shard_manager),
        task: tokio::spawn(async move {
            let _ = client.start().await;
        }),
    };

    assert!(
        sim.wait_command_registered("later", WAIT).await,
        "{:?}",
        sim.http_log()
    );
    assert!(sim
        .http_log()
        .iter()
        .any(|l| l.contains("GET /api/v10/oauth2/applications/@me -> 200")));
    let hi = sim
        .invoke_command(GUILD, TEXT, ALICE, "hello", Some(("who", BOB)), WAIT)
        .await;
    assert_eq!(hi.as_deref(), Ok("hello bob"));
    let hi_me = sim
        .invoke_command(GUILD, TEXT, ALICE, "hello", None, WAIT)
        .await;
    assert_eq!(hi_me.as_deref(), Ok("hello you"));
    let later = sim
        .invoke(GUILD, TEXT, ALICE, "later", vec![], WAIT)
        .await
        .expect("/later");
    assert!(later.deferred && later.ephemeral, "{later:?}");
    assert_eq!(later.text, "later done");

    running.stop().await;
    assert_nothing_dropped(&sim);
}
