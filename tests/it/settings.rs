//! `/settings` end to end (issue 16, section 1): the real binary against the
//! simulator. Who may use it (checked on every use from the interaction's
//! member permissions), bad input refused with one line and nothing
//! changed, the timezone's autocomplete, exclusions taking effect at the
//! moment they are made (a category excluding its children, text channels
//! too), the audit entries, and settings surviving a restart.

use std::time::{Duration, Instant};

use study_tracker::store::Store;

use crate::e2e::{assert_close, secs, stored, ALICE, BOB, CAROL, CONNECT, GUILD, VC1, VC2};
use crate::support::bot::{run_cli, spawn_bot, Bot, BotConfig};
use crate::support::db::{fresh_db, TestDb};
use crate::support::discord_sim::{
    CommandReply, DiscordSim, SimGuild, SimOption, SimUser, EVERYONE_PERMISSIONS, P_MANAGE_GUILD,
};
use crate::support::poll::eventually;

/// A category holding VC2 and TEXT2; VC1 and TEXT at the top.
const CATEGORY: u64 = 900_000_000_000_000_301;
const TEXT: u64 = 900_000_000_000_000_201;
const TEXT2: u64 = 900_000_000_000_000_202;
/// A channel of another server.
const OTHER_GUILD: u64 = 900_000_000_000_000_002;
const OTHER_TEXT: u64 = 900_000_000_000_000_299;
const ADMIN: u64 = ALICE;

fn world() -> Vec<SimGuild> {
    let mut g = SimGuild::new(GUILD, "Study Hall");
    g.voice_channels = vec![VC1, VC2];
    g.text_channels = vec![TEXT, TEXT2];
    g.categories = vec![(CATEGORY, vec![VC2, TEXT2])];
    g.members = vec![
        SimUser::new(ALICE, "alice"),
        SimUser::new(BOB, "bob"),
        SimUser::new(CAROL, "carol"),
    ];
    let mut other = SimGuild::new(OTHER_GUILD, "Elsewhere");
    other.text_channels = vec![OTHER_TEXT];
    other.members = vec![SimUser::new(ALICE, "alice")];
    vec![g, other]
}

struct World {
    sim: DiscordSim,
    db: TestDb,
    spool: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let sim = DiscordSim::start(world()).await;
        sim.set_member_permissions(GUILD, ADMIN, EVERYONE_PERMISSIONS | P_MANAGE_GUILD);
        World {
            sim,
            db: fresh_db().await,
            spool: tempfile::tempdir().unwrap(),
        }
    }

    async fn start(&self) -> Bot {
        let config = BotConfig::new(&self.sim, &self.db.uri, &self.db.name, self.spool.path());
        self.start_with(&config).await
    }

    async fn start_with(&self, config: &BotConfig) -> Bot {
        let n = self.sim.connections() + 1;
        let bot = spawn_bot(config);
        self.sim.wait_connections(n, CONNECT).await;
        bot.wait_log("guild snapshot", CONNECT).await;
        assert!(
            self.sim.wait_command_registered("settings", CONNECT).await,
            "/settings registered"
        );
        bot
    }

    async fn settings(&self, user: u64, sub: &str, options: Vec<SimOption>) -> CommandReply {
        let reply = self
            .sim
            .invoke(
                GUILD,
                TEXT,
                user,
                &format!("settings {sub}"),
                options,
                CONNECT,
            )
            .await
            .unwrap();
        assert!(
            reply.ephemeral,
            "/settings {sub} answers privately: {reply:?}"
        );
        reply
    }

    fn store(&self) -> Store {
        Store::from_database(self.db.db())
    }

    fn settings_json(&self) -> serde_json::Value {
        let (status, out, err) = run_cli(
            &["settings", "--guild", &GUILD.to_string(), "--json"],
            &[("MONGODB_URI", &self.db.uri), ("MONGODB_DB", &self.db.name)],
        );
        assert!(status.success(), "settings --json: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// The timezone's autocomplete, then every bad input: one clear line each,
/// nothing saved.
async fn autocomplete_and_bad_input(w: &World) {
    // Autocomplete: substring matches, each with the local time there.
    let choices = w
        .sim
        .autocomplete(
            (GUILD, TEXT, ADMIN),
            "settings timezone",
            &[],
            ("name", "kolk"),
            CONNECT,
        )
        .await
        .unwrap();
    assert_eq!(choices.len(), 1, "{choices:?}");
    assert!(
        choices[0].0.starts_with("Asia/Kolkata (now "),
        "{choices:?}"
    );
    assert_eq!(choices[0].1, serde_json::json!("Asia/Kolkata"));
    let many = w
        .sim
        .autocomplete(
            (GUILD, TEXT, ADMIN),
            "settings timezone",
            &[],
            ("name", "a"),
            CONNECT,
        )
        .await
        .unwrap();
    assert_eq!(many.len(), 25, "at most 25 choices");

    let tz = |name: &str| vec![SimOption::String("name".into(), name.into())];
    let minutes = |m| vec![SimOption::Integer("minutes".into(), m)];
    for (sub, opts, says) in [
        ("timezone", tz("Mars/Olympus"), "is not a timezone name"),
        (
            "timezone",
            tz("Asia/Kolkata (now 17:30)"),
            "is not a timezone name",
        ),
        ("streak", minutes(0), "out of range"),
        ("streak", minutes(1441), "out of range"),
        (
            "exclude",
            channel(OTHER_TEXT),
            "is not a channel of this server",
        ),
        ("include", channel(VC1), "is not excluded"),
    ] {
        let r = w.settings(ADMIN, sub, opts).await;
        assert!(r.text.contains(says), "/settings {sub}: {}", r.text);
        assert!(!r.text.contains("Saved"), "/settings {sub}: {}", r.text);
    }
}

fn channel(c: u64) -> Vec<SimOption> {
    vec![SimOption::Channel("channel".into(), c)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_managers_change_settings_and_bad_input_changes_nothing() {
    let w = World::new().await;
    let mut bot = w.start().await;
    let registered = w
        .sim
        .registered_command_body("settings")
        .expect("registered");
    assert_eq!(
        registered["default_member_permissions"],
        serde_json::json!(P_MANAGE_GUILD.to_string()),
        "registered for Manage Server by default: {registered}"
    );

    // Offered to everyone by an admin's override, refused on use all the same.
    for sub in ["show", "streak"] {
        let opts = if sub == "streak" {
            vec![SimOption::Integer("minutes".into(), 5)]
        } else {
            Vec::new()
        };
        let r = w.settings(BOB, sub, opts).await;
        assert!(
            r.text.contains("needs the **Manage Server** permission"),
            "{}",
            r.text
        );
    }

    autocomplete_and_bad_input(&w).await;
    let json = w.settings_json();
    assert_eq!(
        json,
        serde_json::json!({"timezone": "UTC", "excluded_channels": [], "streak_min_minutes": 15}),
        "nothing changed"
    );
    assert!(w
        .store()
        .audit_entries(GUILD, None, 0, 10)
        .await
        .unwrap()
        .is_empty());

    // Good input is saved, shown and audited.
    let tz = |name: &str| vec![SimOption::String("name".into(), name.into())];
    let minutes = |m| vec![SimOption::Integer("minutes".into(), m)];
    let r = w.settings(ADMIN, "timezone", tz("asia/kolkata")).await;
    assert!(
        r.text.contains("Saved") && r.text.contains("`Asia/Kolkata`"),
        "{}",
        r.text
    );
    let r = w.settings(ADMIN, "streak", minutes(45)).await;
    assert!(r.text.contains("45 minutes"), "{}", r.text);
    let r = w.settings(ADMIN, "show", Vec::new()).await;
    assert!(r.text.contains("Timezone: `Asia/Kolkata`"), "{}", r.text);
    assert!(
        r.text.contains("Streak day: 45 minutes of voice"),
        "{}",
        r.text
    );
    let audit = w.store().audit_entries(GUILD, None, 0, 10).await.unwrap();
    let got: Vec<(&str, &str, &str, &str)> = audit
        .iter()
        .map(|e| {
            (
                e.what.as_deref().unwrap_or(""),
                e.old.as_deref().unwrap_or(""),
                e.new.as_deref().unwrap_or(""),
                e.actor_id.as_str(),
            )
        })
        .collect();
    let admin = ADMIN.to_string();
    assert_eq!(
        got,
        vec![
            ("streak_min_minutes", "15", "45", admin.as_str()),
            ("timezone", "UTC", "Asia/Kolkata", admin.as_str()),
        ],
        "newest first"
    );
    audit_shows_the_changes(&w).await;
    bot.stop().await;
    let log = bot.log_text();
    assert!(!log.contains("An unknown event was received"), "{log}");
    assert!(
        w.sim.payload_errors().is_empty(),
        "{:?}",
        w.sim.payload_errors()
    );
}

/// `/audit` (managers only, ephemeral, newest first) and `audit --json`.
async fn audit_shows_the_changes(w: &World) {
    let refused = w
        .sim
        .invoke(GUILD, TEXT, BOB, "audit", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(refused.ephemeral);
    assert!(
        refused
            .text
            .contains("needs the **Manage Server** permission"),
        "{}",
        refused.text
    );
    let r = w
        .sim
        .invoke(GUILD, TEXT, ADMIN, "audit", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(r.ephemeral, "{r:?}");
    let streak = r
        .text
        .find("changed streak_min_minutes: 15 → 45")
        .unwrap_or(usize::MAX);
    let tz = r
        .text
        .find("changed timezone: UTC → Asia/Kolkata")
        .unwrap_or(usize::MAX);
    assert!(streak < tz && tz < usize::MAX, "newest first:\n{}", r.text);
    assert!(
        r.text.contains(&format!("<@{ADMIN}> changed")),
        "{}",
        r.text
    );
    let env = [
        ("MONGODB_URI", w.db.uri.as_str()),
        ("MONGODB_DB", w.db.name.as_str()),
    ];
    let (status, out, err) = run_cli(&["audit", "--guild", &GUILD.to_string(), "--json"], &env);
    assert!(status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = &json["entries"][0];
    for key in [
        "at", "actor_id", "action", "user_id", "what", "amount", "reason",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(first["actor_id"], ADMIN.to_string());
    assert_eq!(first["action"], "settings");
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(2));
    let (status, _, err) = run_cli(
        &["audit", "--guild", &GUILD.to_string(), "--limit", "0"],
        &env,
    );
    assert!(
        !status.success() && err.contains("--limit must be at least 1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluding_and_including_take_effect_at_that_moment_and_survive_a_restart() {
    let w = World::new().await;
    let mut bot = w.start().await;
    let store = w.store();

    let t0 = Instant::now();
    w.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    w.sim.set_voice(GUILD, BOB, Some(VC2), false).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // VC1 alone: Alice is credited up to now and stops.
    let r = w.settings(ADMIN, "exclude", channel(VC1)).await;
    assert!(r.text.contains("Saved"), "{}", r.text);
    let excluded_at = Instant::now();
    // The category: Bob (in VC2, under it) stops too, and so do messages in TEXT2.
    let r = w.settings(ADMIN, "exclude", channel(CATEGORY)).await;
    assert!(r.text.contains("Saved"), "{}", r.text);
    let category_at = Instant::now();
    w.sim.send_message(Some(GUILD), TEXT2, CAROL, false).await;
    w.sim.send_message(Some(GUILD), TEXT, CAROL, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Included again: Alice, still in VC1, counts from now.
    let r = w.settings(ADMIN, "include", channel(VC1)).await;
    assert!(r.text.contains("Saved"), "{}", r.text);
    let included_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.sim.set_voice(GUILD, ALICE, None, false).await;
    let left = Instant::now();

    let want_alice = secs(t0, excluded_at) + secs(included_at, left);
    let want_bob = secs(t0, category_at);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let a = stored(&store, ALICE).await;
            let c = stored(&store, CAROL).await;
            a.1 >= want_alice - 1 && c.2 == 1
        })
        .await,
        "alice {:?} (want {want_alice}s), carol {:?}\n{}",
        stored(&store, ALICE).await,
        stored(&store, CAROL).await,
        bot.log_text()
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_close(
        stored(&store, ALICE).await.1,
        want_alice,
        "alice: not while excluded",
    );
    assert_close(
        stored(&store, BOB).await.1,
        want_bob,
        "bob: until the category was excluded",
    );
    assert_eq!(
        stored(&store, CAROL).await.2,
        1,
        "the message in TEXT2 did not count"
    );

    // A restart reads the settings: Bob, still in VC2 under the category, is not counted.
    bot.stop().await;
    let bob_before = stored(&store, BOB).await.1;
    let mut bot = w.start().await;
    w.sim.send_message(Some(GUILD), TEXT2, CAROL, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.sim.set_voice(GUILD, BOB, None, false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    bot.stop().await;
    assert_eq!(
        stored(&store, BOB).await.1,
        bob_before,
        "excluded across the restart"
    );
    assert_eq!(
        stored(&store, CAROL).await.2,
        1,
        "excluded across the restart"
    );
    let json = w.settings_json();
    assert_eq!(
        json["excluded_channels"],
        serde_json::json!([CATEGORY.to_string()])
    );
    let log = bot.log_text();
    assert!(!log.contains("An unknown event was received"), "{log}");
    assert!(
        w.sim.payload_errors().is_empty(),
        "{:?}",
        w.sim.payload_errors()
    );
}

/// The day keys a member's day rollups were written under, from the export.
fn exported_days(w: &World, guild: u64, user: u64) -> Vec<String> {
    let (status, out, err) = run_cli(
        &[
            "export",
            "--guild",
            &guild.to_string(),
            "--user",
            &user.to_string(),
        ],
        &[("MONGODB_URI", &w.db.uri), ("MONGODB_DB", &w.db.name)],
    );
    assert!(status.success(), "export: {err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["day"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timezone_change_moves_today_for_that_server_only() {
    use chrono::TimeZone;
    let w = World::new().await;
    w.sim
        .set_member_permissions(OTHER_GUILD, ADMIN, EVERYONE_PERMISSIONS | P_MANAGE_GUILD);
    let mut bot = w.start().await;
    // A zone whose date is not UTC's right now: UTC-12 before noon UTC,
    // UTC+14 after.
    let zone = if chrono::Utc::now().format("%H").to_string().as_str() < "12" {
        chrono_tz::Etc::GMTPlus12
    } else {
        chrono_tz::Pacific::Kiritimati
    };
    let name = vec![SimOption::String("name".into(), zone.name().into())];
    let r = w.settings(ADMIN, "timezone", name).await;
    assert!(r.text.contains("Saved"), "{}", r.text);
    w.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    w.sim
        .send_message(Some(OTHER_GUILD), OTHER_TEXT, ALICE, false)
        .await;
    let store = w.store();
    assert!(
        eventually(Duration::from_secs(10), || async {
            exported_days(&w, GUILD, ALICE).len() == 1
                && exported_days(&w, OTHER_GUILD, ALICE).len() == 1
        })
        .await,
        "{}",
        bot.log_text()
    );
    bot.stop().await;
    let now = chrono::Utc::now();
    let local = zone
        .from_utc_datetime(&now.naive_utc())
        .format("%Y-%m-%d")
        .to_string();
    let utc = now.format("%Y-%m-%d").to_string();
    assert_ne!(local, utc);
    assert_eq!(
        exported_days(&w, GUILD, ALICE),
        vec![local],
        "the server's own today"
    );
    assert_eq!(
        exported_days(&w, OTHER_GUILD, ALICE),
        vec![utc],
        "the other server keeps TIMEZONE"
    );
    // The readers cut in the same zone: today's leaderboard and stats.
    let env = [
        ("MONGODB_URI", w.db.uri.as_str()),
        ("MONGODB_DB", w.db.name.as_str()),
    ];
    for guild in [GUILD, OTHER_GUILD] {
        let (status, out, err) = run_cli(
            &[
                "leaderboard",
                "--guild",
                &guild.to_string(),
                "--period",
                "today",
                "--by",
                "messages",
                "--json",
            ],
            &env,
        );
        assert!(status.success(), "{err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            json["entries"][0]["user_id"],
            ALICE.to_string(),
            "{guild}: {json}"
        );
        assert_eq!(json["entries"][0]["messages"], 1, "{guild}: {json}");
    }
    let stats = crate::support::bot::stats_json(&w.db.uri, &w.db.name, GUILD, ALICE);
    assert_eq!(stats["timezone"], zone.name());
    assert_eq!(stats["today"]["messages"], 1, "{stats}");
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_mongodb_counts_by_the_settings_last_read() {
    use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
    let w = World::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&w.db.uri)).await;
    let mut config = BotConfig::new(&w.sim, &w.db.uri, &w.db.name, w.spool.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let mut bot = w.start_with(&config).await;
    let r = w.settings(ADMIN, "exclude", channel(VC1)).await;
    assert!(r.text.contains("Saved"), "{}", r.text);
    let copy = w.spool.path().join("guild-settings.json");
    assert!(
        eventually(Duration::from_secs(10), || async {
            std::fs::read_to_string(&copy).is_ok_and(|c| c.contains(&VC1.to_string()))
        })
        .await,
        "no local copy of the settings in SPOOL_DIR"
    );
    bot.stop().await;

    // MongoDB out of reach at the next start: the copy decides what counts.
    proxy.set_down(true);
    let mut bot = w.start_with(&config).await;
    bot.wait_log("using the local copy", CONNECT).await;
    w.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    w.sim.set_voice(GUILD, BOB, Some(VC2), false).await;
    let joined = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.sim.set_voice(GUILD, ALICE, None, false).await;
    w.sim.set_voice(GUILD, BOB, None, false).await;
    let left = Instant::now();
    proxy.set_down(false);
    let store = w.store();
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, BOB).await.1 >= secs(joined, left) - 1
        })
        .await,
        "bob {:?}\n{}",
        stored(&store, BOB).await,
        bot.log_text()
    );
    assert_eq!(stored(&store, ALICE).await.1, 0, "VC1 stayed excluded");
    bot.stop().await;
    env_clean(&w, &bot);
}

fn env_clean(w: &World, bot: &Bot) {
    let log = bot.log_text();
    assert!(!log.contains("An unknown event was received"), "{log}");
    assert!(
        w.sim.payload_errors().is_empty(),
        "{:?}",
        w.sim.payload_errors()
    );
}
