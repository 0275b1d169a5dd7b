//! `study-tracker history` (the real binary, seeded through the store's own
//! apply path) and `/history` end to end with the Discord simulator: the
//! sessions' seconds add up to the member's totals.

mod local_day;
mod pages;

use std::time::{Duration, Instant};

use serde_json::Value;
use study_tracker::core::tracker::OpenSegment;
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::render::format_duration;
use study_tracker::store::Store;

use crate::e2e::{assert_close, secs, stored, Env, ALICE, CONNECT, GUILD, TEXT, VC1, VC2};
use crate::support::bot::{run_cli, stats_json};
use crate::support::db::fresh_db;
use crate::support::poll::eventually;

const G: u64 = 1_600_000_000_000_000_001;
const U: u64 = 1_600_000_000_000_000_002;
const CH1: u64 = 1_600_000_000_000_000_101;
const CH2: u64 = 1_600_000_000_000_000_102;
/// 2026-11-26T10:00:00Z
const T0: i64 = 1_795_687_200_000;

fn voice(channel: u64, camera: bool, segment_start: i64, from: i64, to: i64) -> Op {
    Op::Voice {
        guild: G,
        user: U,
        channel,
        camera,
        segment_start,
        from,
        to,
        days: None,
        tz: None,
    }
}

fn checkpoint(open: Option<(u64, bool, i64)>) -> Op {
    Op::Checkpoint {
        guild: G,
        user: U,
        open: open.map(|(channel, camera, segment_start)| OpenSegment {
            channel,
            camera,
            segment_start,
        }),
    }
}

/// `history --json` (and any extra args) for the seeded member.
async fn history_json(uri: &str, db: &str, guild: u64, user: u64, extra: &[&str]) -> Value {
    let (uri, db) = (uri.to_owned(), db.to_owned());
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let (g, u) = (guild.to_string(), user.to_string());
        let mut args = vec!["history", "--guild", &g, "--user", &u, "--json"];
        args.extend(extra.iter().map(String::as_str));
        let (status, stdout, stderr) =
            run_cli(&args, &[("MONGODB_URI", &uri), ("MONGODB_DB", &db)]);
        assert!(status.success(), "history failed: {stderr}");
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("history --json printed {stdout:?}: {e}"))
    })
    .await
    .unwrap()
}

async fn stats_of(uri: &str, db: &str, guild: u64, user: u64) -> Value {
    let (uri, db) = (uri.to_owned(), db.to_owned());
    tokio::task::spawn_blocking(move || stats_json(&uri, &db, guild, user))
        .await
        .unwrap()
}

fn sum(sessions: &[Value], key: &str) -> i64 {
    sessions.iter().map(|s| s[key].as_i64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_cli_lists_sessions_that_add_up_to_the_totals() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    let ops = vec![
        // Session 1: camera on in CH1 (two flushes), off at 100.4 s, moved
        // to CH2 at 150 s, left at 200.7 s.
        checkpoint(Some((CH1, true, T0))),
        voice(CH1, true, T0, T0, T0 + 60_000),
        voice(CH1, true, T0, T0 + 60_000, T0 + 100_400),
        checkpoint(Some((CH1, false, T0 + 100_400))),
        voice(CH1, false, T0 + 100_400, T0 + 100_400, T0 + 150_000),
        checkpoint(Some((CH2, false, T0 + 150_000))),
        voice(CH2, false, T0 + 150_000, T0 + 150_000, T0 + 200_700),
        checkpoint(None),
        // Session 2: back in CH1 at 500 s with the camera on, still there.
        checkpoint(Some((CH1, true, T0 + 500_000))),
        voice(CH1, true, T0 + 500_000, T0 + 500_000, T0 + 530_250),
    ];
    let batch: Vec<Sequenced> = ops
        .into_iter()
        .zip(1_000..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
        .collect();
    store.apply(&batch).await.unwrap();

    let json = history_json(&db.uri, &db.name, G, U, &[]).await;
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{json}");
    assert_eq!(
        sessions[0],
        serde_json::json!({
            "start": "2026-11-26T10:08:20.000Z", "end": null, "channel_id": CH1.to_string(),
            "cam_on_secs": 30, "cam_off_secs": 0,
        })
    );
    assert_eq!(
        sessions[1],
        serde_json::json!({
            "start": "2026-11-26T10:00:00.000Z", "end": "2026-11-26T10:03:20.700Z",
            "channel_id": CH1.to_string(), "cam_on_secs": 100, "cam_off_secs": 100,
        })
    );
    let totals = stats_of(&db.uri, &db.name, G, U).await;
    assert_eq!(sum(sessions, "cam_on_secs"), totals["voice_cam_on_secs"]);
    assert_eq!(sum(sessions, "cam_off_secs"), totals["voice_cam_off_secs"]);

    let one = history_json(&db.uri, &db.name, G, U, &["--limit", "1"]).await;
    assert_eq!(one["sessions"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["sessions"][0]["end"], Value::Null);

    // The table shows local times and "now".
    let (uri, name) = (db.uri.clone(), db.name.clone());
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run_cli(
            &[
                "history",
                "--guild",
                &G.to_string(),
                "--user",
                &U.to_string(),
            ],
            &[
                ("MONGODB_URI", &uri),
                ("MONGODB_DB", &name),
                ("TIMEZONE", "Europe/Paris"),
            ],
        )
    })
    .await
    .unwrap();
    assert!(status.success(), "history failed: {stderr}");
    assert!(
        stdout.contains("2026-11-26 11:00:00  2026-11-26 11:03:20"),
        "{stdout}"
    );
    assert!(stdout.contains("2026-11-26 11:08:20  now"), "{stdout}");
    assert!(stdout.contains("Europe/Paris"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_the_timeline_sessions_with_their_seconds() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    assert!(
        env.sim.wait_command_registered("history", CONNECT).await,
        "/history registered: {:?}",
        env.sim.registered_commands()
    );

    // Join with the camera, turn it off, move, leave; rejoin without it.
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let toggle = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    env.sim.set_voice(GUILD, ALICE, Some(VC2), false).await;
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, ALICE, None, false).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let rejoin = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC2), false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // While she is in voice, her session shows "now".
    let in_voice = env
        .sim
        .invoke(GUILD, TEXT, ALICE, "history", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(in_voice.ephemeral, "/history answers only the caller");
    assert!(in_voice.text.contains(" – now`"), "{}", in_voice.text);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let leave2 = Instant::now();
    env.sim.set_voice(GUILD, ALICE, None, false).await;

    let store = env.store();
    let want = secs(join, leave) + secs(rejoin, leave2);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (on, off, _) = stored(&store, ALICE).await;
            on + off >= want - 2
        })
        .await,
        "never stored: {:?}\n{}",
        stored(&store, ALICE).await,
        bot.log_text()
    );
    // Let the last checkpoint land too.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let json = history_json(&env.db.uri, &env.db.name, GUILD, ALICE, &[]).await;
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{json}");
    let (newest, first) = (&sessions[0], &sessions[1]);
    assert_eq!(newest["channel_id"], VC2.to_string());
    assert_eq!(first["channel_id"], VC1.to_string(), "where it began");
    assert!(
        !newest["end"].is_null() && !first["end"].is_null(),
        "{json}"
    );
    let n = |v: &Value, k: &str| v[k].as_i64().unwrap();
    assert_close(n(first, "cam_on_secs"), secs(join, toggle), "camera on");
    assert_close(n(first, "cam_off_secs"), secs(toggle, leave), "camera off");
    assert_eq!(n(newest, "cam_on_secs"), 0);
    assert_close(n(newest, "cam_off_secs"), secs(rejoin, leave2), "rejoin");
    let totals = stats_of(&env.db.uri, &env.db.name, GUILD, ALICE).await;
    assert_eq!(sum(sessions, "cam_on_secs"), totals["voice_cam_on_secs"]);
    assert_eq!(sum(sessions, "cam_off_secs"), totals["voice_cam_off_secs"]);

    let reply = env
        .sim
        .invoke_command(GUILD, TEXT, ALICE, "history", None, CONNECT)
        .await
        .unwrap();
    for s in sessions {
        let (on, off) = (n(s, "cam_on_secs"), n(s, "cam_off_secs"));
        let line = format!(
            "📷 {} · 🎧 {} · ⏱️ **{}**",
            format_duration(on),
            format_duration(off),
            format_duration(on + off)
        );
        assert!(reply.contains(&line), "{line} in {reply}");
    }
    assert!(reply.contains(&format!("<#{VC1}>")), "{reply}");
    assert!(reply.contains(&format!("<#{VC2}>")), "{reply}");
    assert!(!reply.contains("now`"), "{reply}");
    let total = format_duration(sum(sessions, "cam_on_secs") + sum(sessions, "cam_off_secs"));
    assert!(
        reply.contains(&format!(
            "2 sessions shown:** 📷 {}",
            format_duration(sum(sessions, "cam_on_secs"))
        )) && reply.contains(&format!("⏱️ **{total}**")),
        "{reply}"
    );

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}
