//! End to end: the real `study-tracker` binary against the Discord simulator
//! and a real MongoDB-wire server. Stored seconds are checked against the
//! timeline the test itself played, to within one second per session.

use std::time::{Duration, Instant};

use study_tracker::core::MemberKey;
use study_tracker::store::Store;

use crate::support::bot::{self, spawn_bot, Bot, BotConfig};
use crate::support::db::{fresh_db, TestDb};
use crate::support::discord_sim::{intents, DiscordSim, SimGuild, SimOption, SimUser};
use crate::support::poll::eventually;

pub const GUILD: u64 = 900_000_000_000_000_001;
pub const VC1: u64 = 900_000_000_000_000_101;
pub const VC2: u64 = 900_000_000_000_000_102;
pub const AFK: u64 = 900_000_000_000_000_103;
pub const TEXT: u64 = 900_000_000_000_000_201;
pub const ALICE: u64 = 900_000_000_000_001_001;
pub const BOB: u64 = 900_000_000_000_001_002;
pub const CAROL: u64 = 900_000_000_000_001_003;
pub const DAVE: u64 = 900_000_000_000_001_004;
pub const MUSIC_BOT: u64 = 900_000_000_000_001_099;

pub const CONNECT: Duration = Duration::from_secs(30);

pub fn guild() -> SimGuild {
    SimGuild {
        id: GUILD,
        name: "Study Hall".into(),
        afk_channel_id: Some(AFK),
        voice_channels: vec![VC1, VC2, AFK],
        text_channels: vec![TEXT],
        members: vec![
            SimUser::new(ALICE, "alice"),
            SimUser::new(BOB, "bob"),
            SimUser::new(CAROL, "carol"),
            SimUser::new(DAVE, "dave"),
            SimUser::bot(MUSIC_BOT, "music"),
        ],
        categories: Vec::new(),
    }
}

/// A simulator, a fresh database and a spool directory for one test.
pub struct Env {
    pub sim: DiscordSim,
    pub db: TestDb,
    pub spool: tempfile::TempDir,
}

impl Env {
    pub async fn new() -> Env {
        Env {
            sim: DiscordSim::start(vec![guild()]).await,
            db: fresh_db().await,
            spool: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config(&self) -> BotConfig {
        BotConfig::new(&self.sim, &self.db.uri, &self.db.name, self.spool.path())
    }

    pub fn store(&self) -> Store {
        Store::from_database(self.db.db())
    }

    /// Fails the test if serenity dropped an event or the simulator built a
    /// payload serenity cannot read.
    pub fn assert_clean(&self, bot: &Bot) {
        bot.assert_no_unknown_events();
        let errors = self.sim.payload_errors();
        assert!(errors.is_empty(), "simulator payload errors: {errors:#?}");
    }

    /// Starts a bot and waits until it has identified (the `n`-th connection
    /// of this simulator) and received its guilds.
    pub async fn start_bot(&self, config: &BotConfig) -> Bot {
        let n = self.sim.connections() + 1;
        let bot = spawn_bot(config);
        self.sim.wait_connections(n, CONNECT).await;
        bot.wait_log("guild snapshot", CONNECT).await;
        bot
    }
}

/// (camera-on secs, camera-off secs, messages) stored for a member.
pub async fn stored(store: &Store, user: u64) -> (i64, i64, i64) {
    let m = store
        .member(MemberKey { guild: GUILD, user }, 0, "0000-00-00")
        .await
        .unwrap();
    (m.cam_on_secs, m.cam_off_secs, m.messages)
}

/// Seconds between two instants, as the expected credit.
pub fn secs(from: Instant, to: Instant) -> i64 {
    i64::try_from(to.duration_since(from).as_millis()).unwrap() / 1000
}

/// Asserts the `/ud` card's text (embed fields flattened) shows these
/// all-time and today's figures, and no streak (seconds of voice).
#[track_caller]
fn assert_ud_figures(reply: &str, on: i64, off: i64, messages: i64) {
    let fmt = study_tracker::render::format_duration;
    for want in [
        format!("Camera on: **{}**", fmt(on)),
        format!("Camera off: **{}**", fmt(off)),
        format!("Total voice: **{}**", fmt(on + off)),
        format!("Messages: **{messages}**"),
        format!(
            "Today: {} voice ({} cam on, {} cam off) · {messages} messages",
            fmt(on + off),
            fmt(on),
            fmt(off)
        ),
        "Streak: current **0 days** · longest **0 days**".to_owned(),
    ] {
        assert!(reply.contains(&want), "{want:?} not in:\n{reply}");
    }
}

/// Asserts `got` is within one second of `want`.
#[track_caller]
pub fn assert_close(got: i64, want: i64, what: &str) {
    assert!(
        (got - want).abs() <= 1,
        "{what}: stored {got}s, timeline says {want}s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_camera_toggle_leave_and_messages_are_stored_and_shown_by_ud() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    let wanted = intents::GUILDS | intents::GUILD_VOICE_STATES | intents::GUILD_MESSAGES;
    assert_eq!(
        env.sim.intents(),
        Some(wanted),
        "only non-privileged intents"
    );
    assert!(
        env.sim
            .registered_commands()
            .iter()
            .any(|(_, name)| name == "ud"),
        "/ud registered: {:?}",
        env.sim.registered_commands()
    );

    // A member with nothing yet gets a friendly answer.
    let empty = env
        .sim
        .invoke_command(GUILD, TEXT, DAVE, "ud", None, CONNECT)
        .await
        .unwrap();
    assert!(empty.contains("no study time yet"), "{empty}");

    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    // Bots and the AFK channel are never tracked.
    env.sim.set_voice(GUILD, MUSIC_BOT, Some(VC1), false).await;
    env.sim.set_voice(GUILD, BOB, Some(AFK), false).await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let toggle = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Moving continues the session.
    env.sim.set_voice(GUILD, ALICE, Some(VC2), false).await;
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, ALICE, None, false).await;

    for _ in 0..3 {
        env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    }
    env.sim
        .send_message(Some(GUILD), TEXT, MUSIC_BOT, false)
        .await;
    env.sim.send_message(Some(GUILD), TEXT, BOB, true).await; // webhook
    env.sim.send_message(None, TEXT, ALICE, false).await; // DM

    let store = env.store();
    let want_on = secs(join, toggle);
    let want_off = secs(toggle, leave);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (on, off, m) = stored(&store, ALICE).await;
            m == 3 && on + off >= want_on + want_off - 1
        })
        .await,
        "never stored: {:?}\n{}",
        stored(&store, ALICE).await,
        bot.log_text()
    );
    let (on, off, messages) = stored(&store, ALICE).await;
    assert_close(on, want_on, "camera on");
    assert_close(off, want_off, "camera off");
    assert_close(on + off, secs(join, leave), "session");
    assert_eq!(messages, 3, "bots, webhooks and DMs are not counted");
    assert_eq!(stored(&store, MUSIC_BOT).await, (0, 0, 0));
    assert_eq!(stored(&store, BOB).await, (0, 0, 0));

    // The same numbers through the CLI...
    let json = bot::stats_json(&env.db.uri, &env.db.name, GUILD, ALICE);
    assert_eq!(json["voice_cam_on_secs"], on);
    assert_eq!(json["voice_cam_off_secs"], off);
    assert_eq!(json["messages"], 3);
    assert_eq!(json["today"]["messages"], 3);
    assert_eq!(json["this_week"]["voice_cam_on_secs"], on);
    assert_eq!(json["this_month"]["voice_cam_off_secs"], off);
    // Seconds of voice: no day reaches STREAK_MIN_MINUTES (15).
    assert_eq!(
        json["streak"],
        serde_json::json!({ "current_days": 0, "longest_days": 0 })
    );

    // ...and through /ud, for oneself and for another member.
    let card = env
        .sim
        .invoke(GUILD, TEXT, ALICE, "ud", Vec::new(), CONNECT)
        .await
        .unwrap();
    // A card: one embed, no plain-text content.
    assert_eq!(
        card.raw["embeds"].as_array().map(Vec::len),
        Some(1),
        "{card:?}"
    );
    assert_eq!(card.raw["content"].as_str().unwrap_or(""), "", "{card:?}");
    assert_eq!(card.raw["embeds"][0]["author"]["name"], "alice", "{card:?}");
    assert_ud_figures(&card.text, on, off, 3);
    let about_alice = env
        .sim
        .invoke_command(GUILD, TEXT, BOB, "ud", Some(("member", ALICE)), CONNECT)
        .await
        .unwrap();
    assert!(about_alice.contains("alice"), "{about_alice}");
    assert_ud_figures(&about_alice, on, off, 3);

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ud_is_an_embed_with_its_chart_attached() {
    use study_tracker::render::chart::{HEIGHT, WIDTH};
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    env.sim.set_voice(GUILD, CAROL, Some(VC1), true).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    env.sim.send_message(Some(GUILD), TEXT, CAROL, false).await;
    let store = env.store();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, CAROL).await.2 == 1
        })
        .await,
        "the message never reached MongoDB\n{}",
        bot.log_text()
    );
    let card = env
        .sim
        .invoke(GUILD, TEXT, CAROL, "ud", Vec::new(), CONNECT)
        .await
        .unwrap();
    let embed = &card.raw["embeds"][0];
    assert_eq!(embed["image"]["url"], "attachment://ud.png", "{card:?}");
    assert!(
        embed["author"]["icon_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "the member's avatar: {card:?}"
    );
    assert_eq!(card.attachments.len(), 1, "{card:?}");
    let (name, bytes) = &card.attachments[0];
    assert_eq!(name, "ud.png");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes.as_slice()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).expect("decodes");
    assert_eq!((frame.width, frame.height), (WIDTH, HEIGHT));
    assert_eq!(card.raw["attachments"][0]["filename"], "ud.png", "{card:?}");
    // The figures are the same as in the text.
    assert!(card.text.contains("Messages: **1**"), "{}", card.text);
    assert!(
        card.text.contains("Streak: current **0 days**"),
        "{}",
        card.text
    );

    // Bots are not tracked: a short answer only the asker sees.
    let about_bot = env
        .sim
        .invoke(
            GUILD,
            TEXT,
            CAROL,
            "ud",
            vec![SimOption::User("member".into(), MUSIC_BOT)],
            CONNECT,
        )
        .await
        .unwrap();
    assert!(about_bot.text.contains("is a bot"), "{about_bot:?}");
    assert!(about_bot.ephemeral, "{about_bot:?}");

    env.sim.set_voice(GUILD, CAROL, None, true).await;
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_in_voice_at_connect_is_tracked_and_sigterm_then_restart_continue() {
    let env = Env::new().await;
    // Carol is in voice with her camera on before the bot connects.
    env.sim.set_voice(GUILD, CAROL, Some(VC1), true).await;
    let config = env.config();
    let mut bot = env.start_bot(&config).await;
    let connected = Instant::now();
    // /ud includes her session in progress.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let live = env
        .sim
        .invoke_command(GUILD, TEXT, CAROL, "ud", None, CONNECT)
        .await
        .unwrap();
    assert!(!live.contains("no study time yet"), "{live}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let signal = Instant::now();
    assert!(bot.stop().await.success(), "exit 0 on SIGTERM");
    env.assert_clean(&bot);
    let store = env.store();
    let (on, off, _) = stored(&store, CAROL).await;
    assert_close(on, secs(connected, signal), "credited up to the signal");
    assert_eq!(off, 0);

    // The redeploy: she stays in voice; the new process resumes her session
    // and credits the downtime (within RESUME_GRACE_SECS).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut bot = env.start_bot(&config).await;
    bot.wait_log("loaded session checkpoints", CONNECT).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, CAROL, None, true).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, CAROL).await.0 >= secs(connected, leave) - 1
        })
        .await,
        "{:?}\n{}",
        stored(&store, CAROL).await,
        bot.log_text()
    );
    let (on, _, _) = stored(&store, CAROL).await;
    assert_close(
        on,
        secs(connected, leave),
        "whole session across the restart",
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_the_guild_goes_away() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let gone = Instant::now();
    env.sim
        .dispatch_raw(
            "GUILD_DELETE",
            serde_json::json!({ "id": GUILD.to_string(), "unavailable": true }),
        )
        .await;
    bot.wait_log("member left voice", CONNECT).await;
    // Flushes go on every second; nothing more may be credited to her.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, off, _) = stored(&env.store(), ALICE).await;
    assert_close(off, secs(join, gone), "credited until the guild went away");
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_command_does_the_test_write() {
    let db = fresh_db().await;
    let (status, stdout, stderr) = bot::run_cli(
        &["check"],
        &[("MONGODB_URI", &db.uri), ("MONGODB_DB", &db.name)],
    );
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("OK: test write"), "{stdout}");
}

/// Arguments, environment, and what stderr must name.
type BadInput<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_legacy_command_imports_once() {
    use mongodb::bson::doc;
    let db = fresh_db().await;
    db.db()
        .collection::<mongodb::bson::Document>("users")
        .insert_many([
            doc! { "_id": "mongodb_test" },
            doc! { "_id": ALICE.to_string(), "data": { "voice_cam_on_minutes": 3, "voice_cam_off_minutes": 1, "message_count": 12 } },
            doc! { "_id": BOB.to_string(), "data": { "voice_cam_on_minutes": 0, "voice_cam_off_minutes": 5, "message_count": 0 } },
        ])
        .await
        .unwrap();
    let env = [
        ("MONGODB_URI", db.uri.as_str()),
        ("MONGODB_DB", db.name.as_str()),
    ];
    let args = ["import-legacy", "--guild", &GUILD.to_string()];
    let (status, stdout, stderr) = bot::run_cli(&args, &env);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("imported 2 members"), "{stdout}");
    let (status, stdout, _) = bot::run_cli(&args, &env);
    assert!(status.success());
    assert!(stdout.contains("imported 0 members"), "{stdout}");
    let json = bot::stats_json(&db.uri, &db.name, GUILD, ALICE);
    assert_eq!(json["voice_cam_on_secs"], 180);
    assert_eq!(json["voice_cam_off_secs"], 60);
    assert_eq!(json["messages"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_example_is_a_working_env_file() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    // Point it at the test database; everything else as shipped.
    let env_file: String = example
        .lines()
        .map(|l| match l.split_once('=') {
            Some(("MONGODB_URI", _)) => format!("MONGODB_URI={}", db.uri),
            Some(("MONGODB_DB", _)) => format!("MONGODB_DB={}", db.name),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join(".env"), env_file).unwrap();
    let (status, stdout, stderr) = bot::run_cli_in(dir.path(), &["check"], &[]);
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("OK: test write"), "{stdout}");
}

#[test]
fn bad_configuration_fails_with_one_clear_line() {
    let cases: &[BadInput<'_>] = &[
        (&["run"], &[], "DISCORD_TOKEN"),
        (
            &["run"],
            &[
                ("DISCORD_TOKEN", "x"),
                ("FLUSH_INTERVAL_SECS", "600"),
                ("RESUME_GRACE_SECS", "300"),
            ],
            "RESUME_GRACE_SECS",
        ),
        (
            &["run"],
            &[("DISCORD_TOKEN", "x"), ("SPOOL_DIR", "/dev/null/spool")],
            "SPOOL_DIR /dev/null/spool",
        ),
        (&["check"], &[("TIMEZONE", "Mars/Olympus")], "TIMEZONE"),
        (
            &["check"],
            &[("FLUSH_INTERVAL_SECS", "soon")],
            "flush-interval-secs",
        ),
        (
            &["check"],
            &[("MONGODB_URI", "mongo://user:hunter2@nowhere")],
            "MONGODB_URI",
        ),
        (
            &["check"],
            &[(
                "MONGODB_URI",
                "mongodb://user:hunter2@127.0.0.1:9/?serverSelectionTimeoutMS=300",
            )],
            "127.0.0.1:9",
        ),
    ];
    for (args, env, needle) in cases {
        let (status, stdout, stderr) = bot::run_cli(args, env);
        assert!(!status.success(), "{args:?} {env:?} should fail");
        assert!(
            stderr.contains(needle),
            "{args:?} {env:?}: stderr should name {needle}: {stderr}"
        );
        let all = format!("{stdout}{stderr}");
        assert!(!all.contains("hunter2"), "password leaked: {all}");
        assert!(
            !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
            "{all}"
        );
    }
    let (status, stdout, _) = bot::run_cli(&["--help"], &[]);
    assert!(status.success());
    for setting in [
        "DISCORD_TOKEN",
        "MONGODB_URI",
        "MONGODB_DB",
        "MONGODB_WRITE_CONCERN",
        "DISCORD_API_URL",
        "FLUSH_INTERVAL_SECS",
        "TIMEZONE",
        "LOG_FORMAT",
        "RUST_LOG",
        "RESUME_GRACE_SECS",
        "SPOOL_DIR",
        "SPOOL_MAX_BYTES",
        "STREAK_MIN_MINUTES",
    ] {
        assert!(
            stdout.contains(setting),
            "--help lacks {setting}:\n{stdout}"
        );
    }
}
