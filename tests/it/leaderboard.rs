//! Leaderboards over the writer's rollups: `study-tracker leaderboard` and
//! `stats --json`'s ranks (the real binary, seeded through the store's own
//! apply path), replays that never count twice, a stay across local midnight
//! in a non-UTC zone, totals from before the rollups; `/leaderboard` with
//! the simulator in [`slash`].

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{json, Value};
use study_tracker::core::leaderboard::{By, Period};
use study_tracker::core::{MemberKey, Presence};
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::store::Store;

use crate::support::app::{spawn_app, test_settings};
use crate::support::bot::{run_cli, stats_json};
use crate::support::db::fresh_db;

mod slash;

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
        days: None,
        tz: Some(chrono_tz::UTC),
    }
}

fn message(user: u64, day: NaiveDate, count: u32) -> Op {
    Op::Message {
        guild: G,
        user,
        day: day.format("%Y-%m-%d").to_string(),
        count,
        max_id: None,
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
/// writer: half of it is on each local day; the running day and week the
/// leaderboard reads hold Monday's half, the month both.
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
    // Sunday's half: on Sunday in `/ud` (the segment's carried days). The
    // day leaderboard ranks the running day, Monday, once it has begun.
    let (sunday, _) = app.member_stats(member, join + 60_000).await;
    assert_eq!(sunday.today.cam_on_secs, 1_800);
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

/// Pre-rollup totals (`{G}:{user}` with no `voice_secs`) for `users`, each
/// with `hours` of camera-off voice.
async fn insert_pre_rollup_totals(db: &mongodb::Database, users: &[u64], hours: i64) {
    use mongodb::bson::{doc, Document};
    let docs: Vec<Document> = users
        .iter()
        .map(|u| {
            doc! { "_id": format!("{G}:{u}"), "guild_id": G.cast_signed(), "user_id": u.cast_signed(),
                   "voice_cam_on_secs": 0_i64, "voice_cam_off_secs": hours * 3_600, "messages": 0_i64, "seq": 5_i64 }
        })
        .collect();
    db.collection::<Document>("member_stats")
        .insert_many(docs)
        .await
        .unwrap();
}

/// The start-up backfill of `voice_secs` runs while the writer applies
/// increments (it runs in the background, after the writer started): every
/// member still ends ranked all time on all their voice, none on the few
/// seconds (or the 0) a concurrent increment created the field with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_secs_backfill_is_atomic_with_concurrent_writes() {
    use mongodb::bson::{doc, Document};
    let db = fresh_db().await;
    let users: Vec<u64> = (0..200).map(|i| 1_700_000_000_000_200_000 + i).collect();
    insert_pre_rollup_totals(&db.db(), &users, 100).await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let backfill = async {
        let fixed = store.backfill_voice_secs().await.unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        fixed
    };
    // While it runs, the members walked last keep chatting and crediting
    // voice (a message creates `voice_secs` with `$inc: 0`).
    let writes = async {
        let today = Utc::now().date_naive();
        let mut seq = 10_000;
        let mut rounds = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || rounds < 2 {
            let ops: Vec<Sequenced> = users[users.len() - 20..]
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    seq += 1;
                    let op = if i % 2 == 0 {
                        message(*u, today, 1)
                    } else {
                        voice(*u, false, ms(today, 60), 2)
                    };
                    Sequenced { seq, op, epoch: 0 }
                })
                .collect();
            store.apply(&ops).await.unwrap();
            rounds += 1;
        }
        rounds
    };
    let (_, rounds) = tokio::join!(backfill, writes);
    assert!(rounds >= 2, "the writes ran alongside the backfill");
    let stats = db.db().collection::<Document>("member_stats");
    let mut wrong = Vec::new();
    let mut cursor = stats.find(doc! {}).await.unwrap();
    while cursor.advance().await.unwrap() {
        let d = cursor.deserialize_current().unwrap();
        let int = |k: &str| d.get(k).and_then(mongodb::bson::Bson::as_i64);
        let on_off = int("voice_cam_on_secs").unwrap_or(0) + int("voice_cam_off_secs").unwrap_or(0);
        if int("voice_secs") != Some(on_off) {
            wrong.push(format!("{d}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} members ranked on the wrong all-time voice, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
}

/// Once the backfill has completed, a marker in `meta` says so: a later
/// start (and `study-tracker check`) does not scan `member_stats` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voice_secs_backfill_runs_once_per_database() {
    use mongodb::bson::{doc, Document};
    let db = fresh_db().await;
    insert_pre_rollup_totals(&db.db(), &[A], 1).await;
    let stats = db.db().collection::<Document>("member_stats");
    // A legacy document with a string where a number belongs does not stop
    // the start-up (its increments are dead letters).
    stats
        .insert_one(doc! { "_id": format!("{G}:{C}"), "guild_id": G.cast_signed(), "user_id": C.cast_signed(),
                           "voice_cam_on_secs": "lots", "voice_cam_off_secs": 60_i64, "messages": 0_i64 })
        .await
        .unwrap();
    let store = Store::from_database(db.db());
    store.prepare().await.unwrap();
    let voice_secs = |d: Option<Document>| d.and_then(|d| d.get("voice_secs").cloned());
    assert_eq!(
        voice_secs(
            stats
                .find_one(doc! { "_id": format!("{G}:{A}") })
                .await
                .unwrap()
        ),
        Some(mongodb::bson::Bson::Int64(3_600))
    );
    // A document no writer of this version could leave without the field:
    // proof that the next start does not look.
    insert_pre_rollup_totals(&db.db(), &[B], 1).await;
    store.prepare().await.unwrap();
    assert_eq!(
        voice_secs(
            stats
                .find_one(doc! { "_id": format!("{G}:{B}") })
                .await
                .unwrap()
        ),
        None,
        "the second start scanned member_stats again"
    );
}
