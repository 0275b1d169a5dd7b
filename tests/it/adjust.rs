//! `/adjust` and `study-tracker adjust` end to end (issue 16, section 2):
//! only managers, every bad input answered with one line and nothing
//! changed, a correction shown in `stats --json`, the leaderboards,
//! `/history` and `/audit`, never below zero, and applied once however
//! often it is replayed (from the bot's spool after SIGKILL; the
//! operator's request finished twice).

use std::time::Duration;

use mongodb::bson::{doc, DateTime, Document};
use study_tracker::core::MemberKey;
use study_tracker::durable::op::{Op, Sequenced};

use crate::e2e::{stored, Env, ALICE, BOB, CONNECT, GUILD, MUSIC_BOT, TEXT, VC1};
use crate::support::bot::run_cli;
use crate::support::discord_sim::{CommandReply, SimOption, EVERYONE_PERMISSIONS, P_MANAGE_GUILD};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::poll::eventually;

/// A user who is not in the server.
const STRANGER: u64 = 900_000_000_000_009_999;

fn options(member: u64, what: &str, amount: &str, reason: &str) -> Vec<SimOption> {
    vec![
        SimOption::User("member".into(), member),
        SimOption::String("what".into(), what.into()),
        SimOption::String("amount".into(), amount.into()),
        SimOption::String("reason".into(), reason.into()),
    ]
}

async fn adjust(env: &Env, by: u64, opts: Vec<SimOption>) -> CommandReply {
    let r = env
        .sim
        .invoke(GUILD, TEXT, by, "adjust", opts, CONNECT)
        .await
        .unwrap();
    assert!(r.ephemeral, "/adjust answers privately: {r:?}");
    r
}

fn cli(env: &Env, args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = run_cli(
        args,
        &[("MONGODB_URI", &env.db.uri), ("MONGODB_DB", &env.db.name)],
    );
    (status.success(), out, err)
}

fn json_of(env: &Env, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = cli(env, args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn bob_stats(env: &Env) -> serde_json::Value {
    let (g, u) = (GUILD.to_string(), BOB.to_string());
    json_of(env, &["stats", "--guild", &g, "--user", &u, "--json"])
}

fn bob_on_board(env: &Env, period: &str) -> serde_json::Value {
    let g = GUILD.to_string();
    let board = json_of(
        env,
        &["leaderboard", "--guild", &g, "--period", period, "--json"],
    );
    board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["user_id"].as_str() == Some(BOB.to_string().as_str()))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Every bad input of `/adjust`: one line, nothing written.
async fn bad_inputs_change_nothing(env: &Env, before: (i64, i64, i64)) {
    // Not a manager (the command is offered; the interaction says who may).
    let r = adjust(env, BOB, options(BOB, "camera_on", "1h", "mine")).await;
    assert!(r.text.contains("Manage Server"), "{r:?}");
    let cases = [
        (
            options(BOB, "voice", "1h", "x"),
            "not something a correction can change",
        ),
        (
            options(BOB, "camera_on", "1.5h", "x"),
            "not an amount of time",
        ),
        (
            options(BOB, "camera_on", "30m1h", "x"),
            "not an amount of time",
        ),
        (
            options(BOB, "messages", "3m", "x"),
            "not a number of messages",
        ),
        (options(BOB, "camera_on", "0", "x"), "zero changes nothing"),
        (
            options(BOB, "camera_on", "99999999h", "x"),
            "more than a correction can move",
        ),
        (options(BOB, "camera_on", "1h", "   "), "needs a reason"),
        (
            options(BOB, "camera_on", "1h", &"y".repeat(201)),
            "keep it to 200",
        ),
        (options(MUSIC_BOT, "camera_on", "1h", "x"), "is a bot"),
        (
            options(STRANGER, "camera_on", "1h", "x"),
            "not a member of this server",
        ),
        (options(BOB, "camera_off", "-2h", "x"), "below zero"),
        (options(BOB, "messages", "-100", "x"), "message count at -9"),
    ];
    for (opts, says) in cases {
        let r = adjust(env, ALICE, opts.clone()).await;
        assert!(r.text.contains(says), "{opts:?} -> {r:?}");
        assert!(!r.text.contains("Corrected"), "{opts:?} -> {r:?}");
    }
    assert_eq!(stored(&env.store(), BOB).await, before, "nothing changed");
    let audit = env.store().audit_entries(GUILD, None, 0, 10).await.unwrap();
    assert!(audit.is_empty(), "nothing audited: {audit:?}");
    // The CLI: one line and a non-zero exit for each; nothing changed.
    let (g, u) = (GUILD.to_string(), BOB.to_string());
    for (what, amount, reason, says) in [
        ("voice", "1h", "x", "not something a correction can change"),
        ("camera_on", "abc", "x", "not an amount of time"),
        ("camera_on", "1h", "", "needs a reason"),
        ("messages", "-100", "x", "below zero"),
    ] {
        let (ok, _, err) = cli(
            env,
            &[
                "adjust", "--guild", &g, "--user", &u, "--what", what, "--amount", amount,
                "--reason", reason,
            ],
        );
        assert!(!ok && err.contains(says), "{what} {amount}: {err}");
    }
    assert_eq!(stored(&env.store(), BOB).await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_shows_in_stats_the_leaderboards_history_and_audit() {
    let env = Env::new().await;
    env.sim
        .set_member_permissions(GUILD, ALICE, EVERYONE_PERMISSIONS | P_MANAGE_GUILD);
    let mut bot = env.start_bot(&env.config()).await;
    let store = env.store();
    // Bob: a short stay with the camera off and nine messages.
    env.sim.set_voice(GUILD, BOB, Some(VC1), false).await;
    for _ in 0..9 {
        env.sim.send_message(Some(GUILD), TEXT, BOB, false).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, BOB, None, false).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            let b = stored(&store, BOB).await;
            b.2 == 9 && b.1 >= 1
        })
        .await
    );
    let before = stored(&store, BOB).await;
    bad_inputs_change_nothing(&env, before).await;

    // A correction: +1h30m with the camera on.
    let reply = adjust(
        &env,
        ALICE,
        options(BOB, "camera_on", "1h30m", "the bot missed it"),
    )
    .await;
    assert!(
        reply.text.contains("Corrected") && reply.text.contains("+1h 30m"),
        "{reply:?}"
    );
    assert_eq!(stored(&store, BOB).await, (before.0 + 5400, before.1, 9));
    let stats = bob_stats(&env);
    assert_eq!(stats["voice_cam_on_secs"], 5400, "{stats}");
    assert_eq!(stats["today"]["voice_cam_on_secs"], 5400, "{stats}");
    assert_eq!(stats["this_month"]["voice_cam_on_secs"], 5400, "{stats}");
    for period in ["today", "week", "month", "all"] {
        let e = bob_on_board(&env, period);
        assert_eq!(e["voice_cam_on_secs"], 5400, "{period}: {e}");
        assert_eq!(e["rank"], 1, "{period}: {e}");
    }
    // An operator's correction: one message less.
    let (guild, user) = (GUILD.to_string(), BOB.to_string());
    let (ok, out, err) = cli(
        &env,
        &[
            "adjust",
            "--guild",
            &guild,
            "--user",
            &user,
            "--what",
            "messages",
            "--amount",
            "-1",
            "--reason",
            "a duplicate",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Corrected") && out.contains("-1 message"),
        "{out}"
    );
    assert_eq!(stats_messages(&env), (8, 8));

    history_audit_and_export_show_both(&env).await;
    bot.stop().await;
    env.assert_clean(&bot);
}

/// `/history`, `/audit`, `audit --json` and the export after Alice's
/// +1h30m and the operator's -1 message.
async fn history_audit_and_export_show_both(env: &Env) {
    let (guild, user) = (GUILD.to_string(), BOB.to_string());
    // /history: the corrections as lines of their own.
    let history = env
        .sim
        .invoke_command(GUILD, TEXT, BOB, "history", None, CONNECT)
        .await
        .unwrap();
    assert!(
        history.contains("correction: +1h 30m camera on"),
        "{history}"
    );
    assert!(history.contains("correction: -1 message"), "{history}");
    assert!(
        history.contains("1 session and 2 corrections shown"),
        "{history}"
    );
    // /audit and audit --json: both, newest first, with their actors.
    let audit_reply = env
        .sim
        .invoke(GUILD, TEXT, ALICE, "audit", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(
        audit_reply.ephemeral && audit_reply.text.contains("adjusted"),
        "{audit_reply:?}"
    );
    let audit = json_of(env, &["audit", "--guild", &guild, "--json"]);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[0]["actor_id"], "operator", "{audit}");
    assert_eq!(entries[0]["what"], "messages", "{audit}");
    assert_eq!(entries[0]["amount"], -1, "{audit}");
    assert_eq!(entries[1]["actor_id"], ALICE.to_string(), "{audit}");
    assert_eq!(entries[1]["what"], "camera_on", "{audit}");
    assert_eq!(entries[1]["amount"], 5400, "{audit}");
    assert_eq!(entries[1]["reason"], "the bot missed it", "{audit}");
    // The export lists both as corrections.
    let export = json_of(env, &["export", "--guild", &guild, "--user", &user]);
    assert_eq!(
        export["corrections"].as_array().unwrap().len(),
        2,
        "{export}"
    );
}

/// Bob's messages: all time, and today.
fn stats_messages(env: &Env) -> (i64, i64) {
    let s = bob_stats(env);
    (
        s["messages"].as_i64().unwrap(),
        s["today"]["messages"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_replayed_from_the_spool_after_sigkill_applies_once() {
    let env = Env::new().await;
    env.sim
        .set_member_permissions(GUILD, ALICE, EVERYONE_PERMISSIONS | P_MANAGE_GUILD);
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = env.config();
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let mut bot = env.start_bot(&config).await;
    let store = env.store();
    for _ in 0..3 {
        env.sim.send_message(Some(GUILD), TEXT, BOB, false).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, BOB).await.2 == 3
        })
        .await
    );
    // Every write reaches MongoDB, and no reply comes back: the correction
    // is applied there while the bot still thinks it is in flight.
    proxy.drop_replies("update", 1);
    let r = adjust(&env, ALICE, options(BOB, "messages", "5", "exam week")).await;
    assert!(r.text.contains("Corrected"), "{r:?}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, BOB).await.2 == 8
        })
        .await,
        "applied in MongoDB: {:?}",
        stored(&store, BOB).await
    );
    bot.kill().await;
    proxy.drop_replies("update", 0);

    // The restart replays the spool: the correction is refused as a replay.
    let mut bot = env.start_bot(&config).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            bot.log_text().contains("replay")
        })
        .await,
        "{}",
        bot.log_text()
    );
    assert_eq!(stored(&store, BOB).await.2, 8, "{}", bot.log_text());
    let bob = MemberKey {
        guild: GUILD,
        user: BOB,
    };
    let day = bob_stats(&env)["today"]["messages"].as_i64().unwrap();
    assert_eq!(day, 8);
    assert_eq!(
        store.corrections(bob, 10).await.unwrap().len(),
        1,
        "{}",
        bot.log_text()
    );
    bot.stop().await;
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_applies_once_however_often_it_is_sent() {
    let db = crate::support::db::fresh_db().await;
    let store = study_tracker::store::Store::from_database(db.db());
    store.prepare().await.unwrap();
    let bob = MemberKey {
        guild: GUILD,
        user: BOB,
    };
    let correction = |id: u64, amount: i64| Op::Adjust {
        guild: GUILD,
        user: BOB,
        id,
        what: "camera_off".into(),
        amount,
        at: 1_796_000_000_000,
        day: "2026-12-01".into(),
        actor: ALICE.to_string(),
        reason: "test".into(),
    };
    let rec = |seq, op| Sequenced { seq, op, epoch: 0 };
    // Through the spool's path: a replay, alone or in a later batch, is refused.
    store.apply(&[rec(1, correction(11, 600))]).await.unwrap();
    store.apply(&[rec(1, correction(11, 600))]).await.unwrap();
    store
        .apply(&[rec(1, correction(11, 600)), rec(2, correction(12, -100))])
        .await
        .unwrap();
    let (total, day) = store.member_figures(bob, "2026-12-01").await.unwrap();
    assert_eq!((total.cam_off_secs, day.cam_off_secs), (500, 500));
    assert_eq!(store.corrections(bob, 10).await.unwrap().len(), 2);

    // The operator's path: applied, then its request found again (a crash
    // before it was removed) and finished: nothing more.
    let op = correction(13, 60);
    store.apply_correction_directly(&op).await.unwrap();
    db.db()
        .collection::<Document>("corrections_pending")
        .insert_one(doc! {
            "_id": format!("adjust:{GUILD}:13"),
            "op": serde_json::to_string(&op).unwrap(),
            "at": DateTime::from_millis(1_000),
        })
        .await
        .unwrap();
    assert_eq!(store.finish_pending_corrections(2_000).await.unwrap(), 1);
    store.apply_correction_directly(&op).await.unwrap();
    let (total, day) = store.member_figures(bob, "2026-12-01").await.unwrap();
    assert_eq!((total.cam_off_secs, day.cam_off_secs), (560, 560));
    assert_eq!(store.corrections(bob, 10).await.unwrap().len(), 3);
    // A negative operator correction not applied yet already counts
    // against the floor (and a positive one does not).
    for (id, amount) in [(14, -100), (15, 1_000)] {
        db.db()
            .collection::<Document>("corrections_pending")
            .insert_one(doc! {
                "_id": format!("adjust:{GUILD}:{id}"),
                "op": serde_json::to_string(&correction(id, amount)).unwrap(),
                "at": DateTime::from_millis(1_000),
                "guild_id": i64::try_from(GUILD).unwrap(),
                "user_id": i64::try_from(BOB).unwrap(),
            })
            .await
            .unwrap();
    }
    let (total, day) = store.member_figures(bob, "2026-12-01").await.unwrap();
    assert_eq!((total.cam_off_secs, day.cam_off_secs), (460, 460));
    assert_eq!(store.finish_pending_corrections(2_000).await.unwrap(), 2);
    let (total, day) = store.member_figures(bob, "2026-12-01").await.unwrap();
    assert_eq!((total.cam_off_secs, day.cam_off_secs), (1_460, 1_460));
    store.apply(&[rec(2, correction(12, -100))]).await.unwrap();
    store
        .apply_correction_directly(&correction(14, -100))
        .await
        .unwrap();
    let (total, _) = store.member_figures(bob, "2026-12-01").await.unwrap();
    assert_eq!(total.cam_off_secs, 1_460, "each once");
    assert_eq!(store.corrections(bob, 10).await.unwrap().len(), 5);
    // Later ops of the bot still apply on the documents it touched.
    store
        .apply(&[rec(
            3,
            Op::Message {
                guild: GUILD,
                user: BOB,
                day: "2026-12-01".into(),
                count: 2,
                max_id: None,
            },
        )])
        .await
        .unwrap();
    let (total, day) = store.member_figures(bob, "2026-12-01").await.unwrap();
    assert_eq!(
        (total.messages, day.messages, total.cam_off_secs),
        (2, 2, 1_460)
    );
    // An erasure takes the corrections with the rest.
    store.request_erasure(bob, 3_000).await.unwrap();
    store.complete_erasure(bob, 3, 3_000).await.unwrap();
    assert!(!store.has_member_documents(bob).await.unwrap());
    assert!(store.corrections(bob, 10).await.unwrap().is_empty());
}
