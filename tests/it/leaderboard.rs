//! Leaderboards over the writer's rollups: `study-tracker leaderboard` and
//! `stats --json`'s ranks (the real binary, seeded through the store's own
//! apply path), replays that never count twice, a stay across local midnight
//! in a non-UTC zone, and `/leaderboard` end to end with the simulator.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{json, Value};
use study_tracker::core::leaderboard::{By, Period};
use study_tracker::core::{MemberKey, Presence};
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::store::Store;

use crate::e2e::{stored, Env, ALICE, BOB, CAROL, CONNECT, DAVE, GUILD, TEXT, VC1};
use crate::support::app::{spawn_app, test_settings};
use crate::support::bot::{run_cli, stats_json};
use crate::support::db::fresh_db;
use crate::support::discord_sim::SimOption;
use crate::support::poll::eventually;

const G: u64 = 1_700_000_000_000_000_001;
const A: u64 = 1_700_000_000_000_000_011;
const B: u64 = 1_700_000_000_000_000_012;
const C: u64 = 1_700_000_000_000_000_013;
const D: u64 = 1_700_000_000_000_000_014;

fn ms(date: NaiveDate, secs: i64) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        + secs * 1000
}

fn voice(user: u64, camera: bool, from: i64, secs: i64) -> Op {
    Op::Voice {
        guild: G,
        user,
        channel: 7,
        camera,
        segment_start: from,
        from,
        to: from + secs * 1000,
        tz: Some(chrono_tz::UTC),
    }
}

fn message(user: u64, day: NaiveDate, count: u32) -> Op {
    Op::Message {
        guild: G,
        user,
        day: day.format("%Y-%m-%d").to_string(),
        count,
    }
}

fn sequenced(ops: Vec<Op>) -> Vec<Sequenced> {
    ops.into_iter()
        .zip(1_000..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
        .collect()
}

/// Three members this week (UTC, as the CLI runs by default): today A has
/// 300 s (100 on, 200 off) and 2 messages, B 100 s on, C 300 s off; on
/// another day of this week B has 500 s off. D has nothing.
fn this_weeks_ops() -> Vec<Op> {
    let today = Utc::now().date_naive();
    let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
    // Another day of the same week: Monday, or Tuesday when today is Monday.
    let other = if today == monday {
        monday + chrono::Duration::days(1)
    } else {
        monday
    };
    vec![
        voice(A, true, ms(today, 60), 100),
        voice(A, false, ms(today, 200), 200),
        message(A, today, 2),
        voice(B, true, ms(today, 600), 100),
        voice(B, false, ms(other, 3_600), 500),
        voice(C, false, ms(today, 1_000), 300),
    ]
}

async fn cli_json(uri: &str, db: &str, args: &[&str]) -> Value {
    let (uri, db) = (uri.to_owned(), db.to_owned());
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let g = G.to_string();
        let mut all = vec!["leaderboard", "--guild", &g, "--json"];
        all.extend(args.iter().map(String::as_str));
        let (status, stdout, stderr) = run_cli(&all, &[("MONGODB_URI", &uri), ("MONGODB_DB", &db)]);
        assert!(status.success(), "leaderboard failed: {stderr}");
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("leaderboard --json printed {stdout:?}: {e}"))
    })
    .await
    .unwrap()
}

fn entry(rank: u64, user: u64, on: i64, off: i64, messages: i64) -> Value {
    json!({
        "rank": rank, "user_id": user.to_string(),
        "voice_cam_on_secs": on, "voice_cam_off_secs": off, "messages": messages,
    })
}

/// The rankings the seed gives, whatever day of the week the test runs.
async fn assert_rankings(uri: &str, db: &str) {
    let week = cli_json(uri, db, &[]).await;
    assert_eq!(
        week,
        json!({"period": "week", "by": "voice", "entries": [
            entry(1, B, 100, 500, 0),
            entry(2, A, 100, 200, 2),
            entry(2, C, 0, 300, 0),
        ]})
    );
    let today = cli_json(uri, db, &["--period", "today"]).await;
    assert_eq!(
        today,
        json!({"period": "today", "by": "voice", "entries": [
            entry(1, A, 100, 200, 2),
            entry(1, C, 0, 300, 0),
            entry(3, B, 100, 0, 0),
        ]})
    );
    // By camera: C has none and is not listed; A and B tie.
    let camera = cli_json(uri, db, &["--period", "today", "--by", "camera"]).await;
    let users: Vec<(&Value, &Value)> = camera["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["rank"], &e["user_id"]))
        .collect();
    assert_eq!(
        users,
        [
            (&json!(1), &json!(A.to_string())),
            (&json!(1), &json!(B.to_string()))
        ],
        "{camera}"
    );
    let messages = cli_json(uri, db, &["--period", "all", "--by", "messages"]).await;
    assert_eq!(messages["entries"], json!([entry(1, A, 100, 200, 2)]));
    let page2 = cli_json(uri, db, &["--page", "2"]).await;
    assert_eq!(page2["entries"], json!([]));
}

async fn ranks_of(uri: &str, db: &str, user: u64) -> Value {
    let (uri, db) = (uri.to_owned(), db.to_owned());
    tokio::task::spawn_blocking(move || stats_json(&uri, &db, G, user)["rank"].clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderboard_cli_ranks_members_for_week_and_today_with_ties() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    store.apply(&sequenced(this_weeks_ops())).await.unwrap();
    assert_rankings(&db.uri, &db.name).await;

    let a = ranks_of(&db.uri, &db.name, A).await;
    assert_eq!(
        (&a["today"], &a["this_week"], &a["all_time"]),
        (&json!(1), &json!(2), &json!(2)),
        "{a}"
    );
    let b = ranks_of(&db.uri, &db.name, B).await;
    assert_eq!(
        (&b["today"], &b["this_week"], &b["all_time"]),
        (&json!(3), &json!(1), &json!(1)),
        "{b}"
    );
    let d = ranks_of(&db.uri, &db.name, D).await;
    assert_eq!(
        d,
        json!({"today": null, "this_week": null, "this_month": null, "all_time": null})
    );

    // The text table lists the same members.
    let (uri, name) = (db.uri.clone(), db.name.clone());
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run_cli(
            &["leaderboard", "--guild", &G.to_string()],
            &[("MONGODB_URI", &uri), ("MONGODB_DB", &name)],
        )
    })
    .await
    .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains(&format!("#1  {B}")), "{stdout}");
    assert!(stdout.contains(&format!("#2  {A}")), "{stdout}");
}

/// Replays (the whole batch again, and a crash between batches re-read
/// with other boundaries) leave every rollup as one delivery made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_never_double_counts_in_the_rollups() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    let batch = sequenced(this_weeks_ops());
    store.apply(&batch[..2]).await.unwrap();
    store.apply(&batch[..4]).await.unwrap();
    let first = store.apply(&batch).await.unwrap();
    assert!(first.replays > 0, "{first:?}");
    let again = store.apply(&batch).await.unwrap();
    assert_eq!(
        again.applied, 0,
        "a whole replay applies nothing: {again:?}"
    );
    assert!(again.replays > 0, "{again:?}");
    assert_rankings(&db.uri, &db.name).await;
}

/// A stay from 23:30 to 00:30 in Kolkata (UTC+5:30), through the running
/// writer: half of it is on each local day, in the day, week and month
/// rollups the leaderboard reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stay_across_local_midnight_splits_in_the_leaderboard() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Asia::Kolkata;
    let running = spawn_app(settings).await;
    let app = running.app.clone();
    // Sunday 2026-11-29 18:00Z is 23:30 in Kolkata; 19:00Z is Monday 00:30.
    let join = chrono::DateTime::parse_from_rfc3339("2026-11-29T18:00:00Z")
        .unwrap()
        .timestamp_millis();
    let member = MemberKey { guild: G, user: A };
    let cam = Some(Presence {
        channel: 7,
        camera: true,
    });
    app.voice_update(member, cam, join).await;
    app.voice_update(member, None, join + 3_600_000).await;
    assert!(app.writer().wait_idle(Duration::from_secs(20)).await);

    let secs = |page: &study_tracker::core::leaderboard::Page| {
        page.entries
            .iter()
            .map(|e| (e.rank, e.user, e.totals.cam_on_secs))
            .collect::<Vec<_>>()
    };
    let sunday = app
        .leaderboard(G, Period::Today, By::Voice, 1, Some(A), join + 60_000)
        .await
        .unwrap();
    assert_eq!(secs(&sunday), [(1, A, 1_800)]);
    let monday = app
        .leaderboard(G, Period::Today, By::Camera, 1, Some(A), join + 3_000_000)
        .await
        .unwrap();
    assert_eq!(secs(&monday), [(1, A, 1_800)]);
    assert_eq!(monday.caller.map(|e| e.rank), Some(1));
    // Two weeks (Sunday ends one, Monday starts the next), one month.
    let week = app
        .leaderboard(G, Period::Week, By::Voice, 1, None, join + 3_000_000)
        .await
        .unwrap();
    assert_eq!(secs(&week), [(1, A, 1_800)]);
    let month = app
        .leaderboard(G, Period::Month, By::Voice, 1, None, join + 3_000_000)
        .await
        .unwrap();
    assert_eq!(secs(&month), [(1, A, 3_600)]);
    running.stop().await;
}

/// `/leaderboard` through the simulator: three members in voice for about
/// 1.5, 3.5 and 5.5 s, ranked for today and this week, the caller's own
/// rank below, and a member with nothing told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_ranks_three_members_and_shows_the_callers_rank() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    assert!(
        env.sim
            .wait_command_registered("leaderboard", CONNECT)
            .await,
        "/leaderboard registered: {:?}",
        env.sim.registered_commands()
    );
    for user in [ALICE, BOB, CAROL] {
        env.sim
            .set_voice(GUILD, user, Some(VC1), user == ALICE)
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    env.sim.set_voice(GUILD, CAROL, None, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, BOB, None, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, ALICE, None, false).await;
    let store = env.store();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.0 >= 5
        })
        .await,
        "never stored\n{}",
        bot.log_text()
    );
    // Let the last rollups land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Choices are sent as their index: period today = 0, week = 1.
    for (index, label) in [(0, "today"), (1, "this week")] {
        let reply = env
            .sim
            .invoke(
                GUILD,
                TEXT,
                CAROL,
                "leaderboard",
                vec![SimOption::Integer("period".into(), index)],
                CONNECT,
            )
            .await
            .unwrap();
        let text = &reply.text;
        assert!(
            text.contains(&format!("Leaderboard: {label} by voice time")),
            "{text}"
        );
        let at = |user: u64| {
            text.find(&format!("<@{user}>"))
                .unwrap_or_else(|| panic!("<@{user}> not in {text}"))
        };
        assert!(at(ALICE) < at(BOB) && at(BOB) < at(CAROL), "{text}");
        assert!(text.contains(&format!("**#1** <@{ALICE}>")), "{text}");
        assert!(text.contains(&format!("**#2** <@{BOB}>")), "{text}");
        assert!(text.contains(&format!("**#3** <@{CAROL}>")), "{text}");
        assert!(text.contains("You: **#3** of 3"), "{text}");
        assert!(!text.contains(&format!("<@{DAVE}>")), "{text}");
    }
    let dave = env
        .sim
        .invoke(GUILD, TEXT, DAVE, "leaderboard", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(dave.text.contains("You: not ranked"), "{}", dave.text);

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// `/leaderboard` pages with ◀ ▶: 23 members this week, 10 a page; the
/// caller's own place under every page; only the caller may press.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_pages_with_the_buttons() {
    let env = Env::new().await;
    // Member i has (23 - i) minutes today; ALICE has the least (rank 23).
    let today = Utc::now().date_naive();
    let users: Vec<u64> = (0..22)
        .map(|i| 1_700_000_000_000_100_000 + i)
        .chain([ALICE])
        .collect();
    let ops: Vec<Op> = users
        .iter()
        .zip(0_i64..)
        .map(|(user, i)| {
            let secs = if *user == ALICE { 30 } else { 60 * (23 - i) };
            Op::Voice {
                guild: GUILD,
                user: *user,
                channel: VC1,
                camera: false,
                segment_start: ms(today, 10),
                from: ms(today, 10),
                to: ms(today, 10 + secs),
                tz: Some(chrono_tz::UTC),
            }
        })
        .collect();
    let store = env.store();
    store.ensure_indexes().await.unwrap();
    store.apply(&sequenced(ops)).await.unwrap();
    let mut bot = env.start_bot(&env.config()).await;
    assert!(
        env.sim
            .wait_command_registered("leaderboard", CONNECT)
            .await
    );

    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "leaderboard", &[])
        .unwrap();
    let first = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert!(!first.ephemeral, "the leaderboard is public");
    let text = &first.text;
    assert!(text.contains(&format!("**#1** <@{}>", users[0])), "{text}");
    assert!(text.contains(&format!("**#10** <@{}>", users[9])), "{text}");
    assert!(!text.contains(&format!("<@{}>", users[10])), "{text}");
    assert!(text.contains("You: **#23** of 23"), "{text}");
    assert!(text.contains("Page 1 of 3 · 23 ranked"), "{text}");
    let buttons = env.sim.buttons_of(id);
    assert_eq!(
        (buttons.len(), buttons[0].disabled, buttons[1].disabled),
        (2, true, false),
        "{buttons:?}"
    );
    let next = buttons[1].custom_id.clone().unwrap();
    let prev = buttons[0].custom_id.clone().unwrap();

    let second = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert_eq!(second.callback_type, 7, "UPDATE_MESSAGE");
    assert!(
        second.text.contains(&format!("**#11** <@{}>", users[10])),
        "{}",
        second.text
    );
    assert!(
        !second.text.contains(&format!("<@{}>", users[0])),
        "{}",
        second.text
    );
    assert!(
        second.text.contains("You: **#23** of 23"),
        "{}",
        second.text
    );
    let third = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(
        third.text.contains(&format!("**#23** <@{ALICE}>")),
        "{}",
        third.text
    );
    assert!(third.text.contains("Page 3 of 3"), "{}", third.text);
    assert!(third.buttons()[1].disabled && !third.buttons()[0].disabled);
    let back = env.sim.press(id, ALICE, &prev, CONNECT).await.unwrap();
    assert!(back.text.contains("Page 2 of 3"), "{}", back.text);

    // Someone else's press is answered privately and changes nothing.
    let bob = env.sim.press(id, BOB, &next, CONNECT).await.unwrap();
    assert_eq!((bob.callback_type, bob.ephemeral), (4, true));
    assert!(bob.text.contains("These buttons belong to"), "{}", bob.text);

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// Totals written before the rollups (no `voice_secs`; the previous bot's
/// import wrote int32) are ranked all time once the store is prepared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_from_before_the_rollups_are_ranked_all_time_after_start_up() {
    use mongodb::bson::{doc, Document};
    let db = fresh_db().await;
    let stats = db.db().collection::<Document>("member_stats");
    stats
        .insert_many([
            doc! { "_id": format!("{G}:{A}"), "guild_id": G.cast_signed(), "user_id": A.cast_signed(),
                   "voice_cam_on_secs": 100_i64, "voice_cam_off_secs": 50_i64, "messages": 1_i64, "seq": 5_i64 },
            doc! { "_id": format!("{G}:{B}"), "guild_id": G.cast_signed(), "user_id": B.cast_signed(),
                   "voice_cam_on_secs": 300_i32, "voice_cam_off_secs": 0_i32, "messages": 0_i32, "seq": 0_i64 },
        ])
        .await
        .unwrap();
    let store = Store::from_database(db.db());
    store.prepare().await.unwrap();
    assert_eq!(
        store.backfill_voice_secs().await.unwrap(),
        0,
        "once is enough"
    );
    // A later increment keeps the sum.
    store
        .apply(&sequenced(vec![voice(A, true, 1_795_687_200_000, 200)]))
        .await
        .unwrap();
    let all = cli_json(&db.uri, &db.name, &["--period", "all"]).await;
    assert_eq!(
        all["entries"],
        json!([entry(1, A, 300, 50, 1), entry(2, B, 300, 0, 0)]),
        "{all}"
    );
}
