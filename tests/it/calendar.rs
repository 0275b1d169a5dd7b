//! One cut (issue 15, F4 + F5 + F12): what an op adds to which local day is
//! decided when the op is made and carried in it, so a replay under another
//! `TIMEZONE` lands on the same days, every reader (`/ud` periods, the chart,
//! streaks, `/history`, `/leaderboard`) sums the same days after a zone
//! change, and a message counts on the day it was sent.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use study_tracker::app::App;
use study_tracker::core::leaderboard::{By, Period};
use study_tracker::core::tracker::{Credit, Effect};
use study_tracker::core::{MemberKey, Millis, Presence};
use study_tracker::durable::op::Op;
use study_tracker::durable::spool::Spool;
use study_tracker::store::Store;

use crate::support::app::{spawn_app, test_settings};
use crate::support::db::fresh_db;

const G: u64 = 1_700_000_000_000_000_101;
const A: u64 = 1_700_000_000_000_000_111;
const MEMBER: MemberKey = MemberKey { guild: G, user: A };
const CAM: Option<Presence> = Some(Presence {
    channel: 7,
    camera: true,
});

fn at(rfc3339: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// `(_id, voice_secs, messages)` of the member's documents in `coll`, sorted.
async fn rollups(db: &mongodb::Database, coll: &str) -> Vec<(String, i64, i64)> {
    let docs: Vec<Document> = db
        .collection::<Document>(coll)
        .find(doc! { "user_id": i64::try_from(A).unwrap() })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let int = |d: &Document, k: &str| match d.get(k) {
        Some(mongodb::bson::Bson::Int64(i)) => *i,
        Some(mongodb::bson::Bson::Int32(i)) => i64::from(*i),
        _ => 0,
    };
    let mut out: Vec<(String, i64, i64)> = docs
        .iter()
        .map(|d| {
            let id = d.get_str("_id").unwrap();
            let key = id.rsplit(':').next().unwrap().to_owned();
            (key, int(d, "voice_secs"), int(d, "messages"))
        })
        .collect();
    out.sort();
    out
}

/// The member's current periods in `member_stats` (what the day, week and
/// month leaderboards rank): `(key, voice_secs, messages)` of its `day`,
/// `week` and `month`.
async fn periods(db: &mongodb::Database) -> Vec<(String, i64, i64)> {
    let d = db
        .collection::<Document>("member_stats")
        .find_one(doc! { "_id": format!("{G}:{A}") })
        .await
        .unwrap()
        .unwrap_or_default();
    ["day", "week", "month"]
        .iter()
        .filter_map(|p| {
            let p = d.get_document(p).ok()?;
            let int = |k: &str| p.get_i64(k).unwrap_or(0);
            Some((
                p.get_str("key").unwrap().to_owned(),
                int("voice_cam_on_secs") + int("voice_cam_off_secs"),
                int("messages"),
            ))
        })
        .collect()
}

/// Marks the running periods as carried (`store/carry.rs`), so that what a
/// test seeds in an earlier version's rollups stays there whatever today's
/// date is.
async fn carried_already(db: &mongodb::Database) {
    db.collection::<Document>("meta")
        .insert_one(doc! { "_id": "periods_carried" })
        .await
        .unwrap();
}

/// The member's one segment document.
async fn the_segment(db: &mongodb::Database) -> Document {
    db.collection::<Document>("voice_segments")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap()
}

fn sum_voice(rows: &[(String, i64, i64)]) -> i64 {
    rows.iter().map(|r| r.1).sum()
}

/// The review's F5 timeline. The version before the rollups left a voice
/// credit (no zone, no days) in the spool: Sunday 2026-11-29 18:00Z–19:00Z.
/// The previous version applied it under `TIMEZONE=UTC` as far as the
/// totals and the day `2026-11-29` (+3,600 s), then died before the week and
/// month commands. The operator sets `TIMEZONE=Asia/Kolkata` and restarts:
/// the replay must apply it on every target or on none; it must never add
/// 1,800 s to `2026-11-30` as well (5,400 s in the days for a 3,600 s
/// credit). A credit this version made (its days carried) in the same spool
/// lands on its UTC day whatever the zone of the replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one timeline, seeded and checked in place
async fn a_timezone_change_replays_a_half_applied_batch_on_the_same_days() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    carried_already(&db.db()).await;
    let dir = tempfile::tempdir().unwrap();
    let old = Op::Voice {
        guild: G,
        user: A,
        channel: 7,
        camera: true,
        segment_start: at("2026-11-29T18:00:00Z"),
        from: at("2026-11-29T18:00:00Z"),
        to: at("2026-11-29T19:00:00Z"),
        days: None,
        tz: None,
    };
    let made_here = Op::effect(
        Effect::Credit(Credit {
            member: MEMBER,
            channel: 7,
            camera: true,
            segment_start: at("2026-11-29T18:00:00Z"),
            from: at("2026-11-29T19:00:00Z"),
            to: at("2026-11-29T20:00:00Z"),
        }),
        chrono_tz::UTC,
    );
    {
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[old, made_here], 1_000_000).unwrap();
        // What the previous version got to before it died, at the credit's
        // seq: the totals, the segment, and the day it cut the zone-less
        // credit into under UTC.
        let batch = spool.read_batch(1).unwrap();
        let seq = i64::try_from(batch.records[0].seq).unwrap();
        let (g, u) = (i64::try_from(G).unwrap(), i64::try_from(A).unwrap());
        let hour = |d: Document| {
            let mut d = d;
            d.extend(doc! { "guild_id": g, "user_id": u, "seq": seq });
            d
        };
        let start = mongodb::bson::DateTime::from_millis(at("2026-11-29T18:00:00Z"));
        let end = mongodb::bson::DateTime::from_millis(at("2026-11-29T19:00:00Z"));
        for (coll, d) in [
            (
                "member_stats",
                hour(
                    doc! { "_id": format!("{G}:{A}"), "voice_cam_on_secs": 3_600_i64, "voice_cam_off_secs": 0_i64, "voice_secs": 3_600_i64, "messages": 0_i64, "credited_until": end },
                ),
            ),
            (
                "voice_segments",
                hour(
                    doc! { "_id": format!("{G}:{A}:{}", start.timestamp_millis()), "channel_id": 7_i64, "camera": true, "start": start, "end": end, "secs": 3_600_i64 },
                ),
            ),
            (
                "member_days",
                hour(
                    doc! { "_id": format!("{G}:{A}:2026-11-29"), "day": "2026-11-29", "voice_cam_on_secs": 3_600_i64, "voice_cam_off_secs": 0_i64, "voice_secs": 3_600_i64, "messages": 0_i64 },
                ),
            ),
        ] {
            db.db()
                .collection::<Document>(coll)
                .insert_one(d)
                .await
                .unwrap();
        }
    }
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Asia::Kolkata;
    let running = spawn_app(settings).await;
    assert!(
        running
            .app
            .writer()
            .wait_idle(Duration::from_secs(20))
            .await
    );
    // The day the previous version cut the zone-less credit into keeps
    // what it wrote; this version writes no voice there.
    let days = rollups(&db.db(), "member_days").await;
    assert_eq!(days, [("2026-11-29".to_owned(), 3_600, 0)]);
    let stats = rollups(&db.db(), "member_stats").await;
    assert_eq!(sum_voice(&stats), 7_200);
    // The periods hold the credit made here, on the UTC day it was cut
    // into: nothing on the Kolkata days, and nothing from the zone-less
    // record, which adds to no period on a replay (its day, week and month
    // were the previous version's).
    assert_eq!(
        periods(&db.db()).await,
        [
            ("2026-11-29".to_owned(), 3_600, 0),
            ("w2026-11-23".to_owned(), 3_600, 0),
            ("m2026-11".to_owned(), 3_600, 0)
        ]
    );
    // The segment: both credits, 3,600 s of them on the 29th (the one that
    // carries its days).
    let segment = the_segment(&db.db()).await;
    assert_eq!(segment.get_i64("secs").unwrap(), 7_200);
    assert_eq!(
        segment.get_document("days").unwrap(),
        &doc! { "2026-11-29": 3_600_i64 }
    );
    running.stop().await;
}

/// Run 1 (`TIMEZONE=UTC`, MongoDB unreachable) counts a stay across the UTC
/// midnight, flushed after it, and a message sent at 23:59:30 but processed
/// at 00:00:30 (a `RESUME` replay): everything stays in the spool. Run 2
/// (`TIMEZONE=Asia/Kolkata`, after the midnight) replays it: the credit adds
/// to the UTC days it was cut into when it was made, and the message to the
/// day it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_across_midnight_keeps_the_days_its_ops_were_made_with() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let mut settings = test_settings("mongodb://127.0.0.1:9/", &db.name, dir.path());
        settings.tracking.lease_ttl_secs = 0;
        settings.spool.shutdown_timeout_secs = 1;
        let run1 = spawn_app(settings).await;
        let app = run1.app.clone();
        app.voice_update(MEMBER, CAM, at("2026-11-29T23:30:00Z"))
            .await;
        app.flush_once(at("2026-11-30T00:30:00Z")).await;
        app.voice_update(MEMBER, None, at("2026-11-30T00:40:00Z"))
            .await;
        let sent = study_tracker::app::snowflake_at(at("2026-11-29T23:59:30Z"));
        app.message_with_id(MEMBER, sent, at("2026-11-30T00:00:30Z"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        run1.stop().await;
    }
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Asia::Kolkata;
    let run2 = spawn_app(settings).await;
    assert!(run2.app.writer().wait_idle(Duration::from_secs(20)).await);
    // The message on the day it was sent; the credit's days in its segment.
    assert_eq!(
        rollups(&db.db(), "member_days").await,
        [("2026-11-29".to_owned(), 0, 1)]
    );
    let segment = the_segment(&db.db()).await;
    assert_eq!(
        segment.get_document("days").unwrap(),
        &doc! { "2026-11-29": 1_800_i64, "2026-11-30": 2_400_i64 }
    );
    // The running periods: Monday the 30th and its week (the 29th's share
    // went to the periods before them), and November, which holds both
    // (30 November is still November).
    assert_eq!(
        periods(&db.db()).await,
        [
            ("2026-11-30".to_owned(), 2_400, 0),
            ("w2026-11-30".to_owned(), 2_400, 0),
            ("m2026-11".to_owned(), 4_200, 1)
        ]
    );
    run2.stop().await;
}

/// The review's F4 timeline. Under `TIMEZONE=UTC` member A was in voice
/// 18:30Z–20:00Z on Sunday 2026-11-29; the bot restarts with
/// `TIMEZONE=Asia/Kolkata` (20:00Z is 01:30 on Monday the 30th there) and A
/// is in voice again 20:10Z–21:10Z. At 21:11Z, `/ud` (its periods, the
/// chart's days and the streak), `/leaderboard` for every period and
/// `/history` tell one story: the first stay is on Sunday 29th (the day it
/// was cut into when it was credited), the second on Monday 30th.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ud_leaderboard_and_history_agree_after_a_timezone_change() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let run1 = spawn_app(test_settings(&db.uri, &db.name, dir.path())).await;
        let app = run1.app.clone();
        app.voice_update(MEMBER, CAM, at("2026-11-29T18:30:00Z"))
            .await;
        app.voice_update(MEMBER, None, at("2026-11-29T20:00:00Z"))
            .await;
        assert!(app.writer().wait_idle(Duration::from_secs(20)).await);
        run1.stop().await;
    }
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Asia::Kolkata;
    settings.tracking.streak_min_minutes = 30;
    let run2 = spawn_app(settings).await;
    let app = run2.app.clone();
    app.voice_update(MEMBER, CAM, at("2026-11-29T20:10:00Z"))
        .await;
    app.voice_update(MEMBER, None, at("2026-11-29T21:10:00Z"))
        .await;
    assert!(app.writer().wait_idle(Duration::from_secs(20)).await);
    let now = at("2026-11-29T21:11:00Z");

    let (ud, _) = app.member_stats(MEMBER, now).await;
    let board = |period| leaderboard_voice(&app, period, now);
    // Today and this week (Monday 30th in Kolkata): the second stay only.
    assert_eq!(ud.today.voice_secs(), 3_600);
    assert_eq!(board(Period::Today).await, Some(3_600));
    assert_eq!(ud.this_week.voice_secs(), 3_600);
    assert_eq!(board(Period::Week).await, Some(3_600));
    // This month (November) and all time: both stays.
    assert_eq!(ud.this_month.voice_secs(), 9_000);
    assert_eq!(board(Period::Month).await, Some(9_000));
    assert_eq!(ud.all_time.voice_secs(), 9_000);
    assert_eq!(board(Period::All).await, Some(9_000));
    // /history: two sessions that add up to the totals.
    let (sessions, complete, _) = app.member_history(MEMBER, now, 10).await;
    assert!(complete);
    let secs: Vec<i64> = sessions
        .iter()
        .map(study_tracker::core::history::Session::total_secs)
        .collect();
    assert_eq!(secs, [3_600, 5_400]);
    // The chart's last two days, and a streak of two days (30 min each).
    let card = app.member_card(MEMBER, now).await;
    assert_eq!(card.stats, ud);
    let days = card.days.unwrap();
    let last: Vec<(String, i64)> = days[days.len() - 2..]
        .iter()
        .map(|d| (d.date.to_string(), d.voice_secs()))
        .collect();
    assert_eq!(
        last,
        [
            ("2026-11-29".to_owned(), 5_400),
            ("2026-11-30".to_owned(), 3_600)
        ]
    );
    assert_eq!(card.streaks.unwrap().current_days, 2);
    run2.stop().await;
}

/// A's voice seconds on the leaderboard of `period` at `now`.
async fn leaderboard_voice(app: &App, period: Period, now: Millis) -> Option<i64> {
    let page = app
        .leaderboard(G, period, By::Voice, 1, Some(A), now)
        .await
        .unwrap();
    page.caller.map(|e| e.totals.voice_secs())
}

/// A message sent at 23:59:30 and processed at 00:00:30 (a `RESUME` replay
/// across midnight) counts on the day it was sent: its day, week and month,
/// and `/ud`'s "today" of that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_before_midnight_and_processed_after_counts_on_its_day() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let running = spawn_app(test_settings(&db.uri, &db.name, dir.path())).await;
    let app = running.app.clone();
    let sent = study_tracker::app::snowflake_at(at("2026-11-29T23:59:30Z"));
    app.message_with_id(MEMBER, sent, at("2026-11-30T00:00:30Z"));
    assert!(app.writer().wait_idle(Duration::from_secs(20)).await);
    assert_eq!(
        rollups(&db.db(), "member_days").await,
        [("2026-11-29".to_owned(), 0, 1)]
    );
    assert_eq!(
        periods(&db.db()).await,
        [
            ("2026-11-29".to_owned(), 0, 1),
            ("w2026-11-23".to_owned(), 0, 1),
            ("m2026-11".to_owned(), 0, 1)
        ]
    );
    let (sunday, _) = app.member_stats(MEMBER, at("2026-11-29T23:59:50Z")).await;
    assert_eq!((sunday.today.messages, sunday.this_week.messages), (1, 1));
    let (monday, _) = app.member_stats(MEMBER, at("2026-11-30T00:01:00Z")).await;
    assert_eq!((monday.today.messages, monday.this_week.messages), (0, 0));
    running.stop().await;
}
