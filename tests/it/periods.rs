//! A member's running day, week and month live in their `member_stats`
//! document (issue 15, F7: two documents per op): they roll over by key in
//! the totals' own seq-guarded statement, a replay changes nothing, and an
//! earlier version's running periods are carried into them once.

use chrono::NaiveDate;
use mongodb::bson::{doc, Document};
use study_tracker::core::calendar::{day_key, month_key, week_key};
use study_tracker::core::leaderboard::{By, Period};
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::store::Store;

use crate::support::db::fresh_db;

const G: u64 = 1_100_000_000_000_000_401;
const U: u64 = 1_200_000_000_000_000_402;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn voice(day: &str, start: i64, secs: i64) -> Op {
    Op::Voice {
        guild: G,
        user: U,
        channel: 7,
        camera: true,
        segment_start: start,
        from: start,
        to: start + secs * 1000,
        days: Some(vec![(date(day), secs)]),
        tz: None,
    }
}

fn msg(day: &str) -> Op {
    Op::Message {
        guild: G,
        user: U,
        day: day.into(),
        count: 1,
        max_id: None,
    }
}

fn sequenced(ops: Vec<Op>, first_seq: u64) -> Vec<Sequenced> {
    ops.into_iter()
        .zip(first_seq..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
        .collect()
}

/// `(key, voice_secs, messages)` of the member's running day, week, month.
async fn periods(db: &mongodb::Database) -> Vec<(String, i64, i64)> {
    let d = db
        .collection::<Document>("member_stats")
        .find_one(doc! { "_id": format!("{G}:{U}") })
        .await
        .unwrap()
        .unwrap();
    ["day", "week", "month"]
        .iter()
        .map(|p| {
            let p = d.get_document(p).unwrap();
            (
                p.get_str("key").unwrap().to_owned(),
                p.get_i64("voice_cam_on_secs").unwrap_or(0)
                    + p.get_i64("voice_cam_off_secs").unwrap_or(0),
                p.get_i64("messages").unwrap(),
            )
        })
        .collect()
}

fn rows(r: [(&str, i64, i64); 3]) -> Vec<(String, i64, i64)> {
    r.iter()
        .map(|(k, v, m)| ((*k).to_owned(), *v, *m))
        .collect()
}

#[tokio::test]
async fn the_running_periods_roll_over_by_key_and_a_replay_changes_nothing() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    let t0 = 1_795_687_200_000;
    // Sunday 29 November: 600 s and a message.
    let sunday = sequenced(vec![voice("2026-11-29", t0, 600), msg("2026-11-29")], 10);
    let r = store.apply(&sunday).await.unwrap();
    // Two documents per op: the totals (with their periods), and the
    // segment or the message's day.
    assert_eq!((r.applied, r.commands), (3, 3), "{r:?}");
    assert_eq!(
        periods(&db.db()).await,
        rows([
            ("2026-11-29", 600, 1),
            ("w2026-11-23", 600, 1),
            ("m2026-11", 600, 1)
        ])
    );
    // The same day again: the steady shape, one command per collection.
    let more = sequenced(vec![voice("2026-11-29", t0, 60)], 20);
    let r = store.apply(&more).await.unwrap();
    assert_eq!((r.applied, r.commands), (2, 2), "{r:?}");
    // Monday 30th: a new day and week, the same month. The steady shape
    // misses, and the rolling one replaces the day and the week.
    let monday = sequenced(vec![msg("2026-11-30")], 30);
    let r = store.apply(&monday).await.unwrap();
    assert_eq!((r.applied, r.replays), (2, 0), "{r:?}");
    assert_eq!(
        periods(&db.db()).await,
        rows([
            ("2026-11-30", 0, 1),
            ("w2026-11-30", 0, 1),
            ("m2026-11", 660, 2)
        ])
    );
    // A late message for Sunday: its day and week are over (kept as they
    // are), its month is running.
    let late = sequenced(vec![msg("2026-11-29")], 40);
    store.apply(&late).await.unwrap();
    // Tuesday 1 December, across the month, in one batch with Monday's.
    let tuesday = sequenced(
        vec![msg("2026-11-30"), voice("2026-12-01", t0 + 86_400_000, 60)],
        50,
    );
    store.apply(&tuesday).await.unwrap();
    let want = rows([
        ("2026-12-01", 60, 0),
        ("w2026-11-30", 60, 2),
        ("m2026-12", 60, 0),
    ]);
    assert_eq!(periods(&db.db()).await, want);
    // Every batch again: nothing changes.
    for batch in [&sunday, &more, &monday, &late, &tuesday] {
        let r = store.apply(batch).await.unwrap();
        assert_eq!(r.applied, 0, "{r:?}");
    }
    assert_eq!(periods(&db.db()).await, want);
    let m = store
        .member(
            study_tracker::core::MemberKey { guild: G, user: U },
            0,
            "0000-00-00",
        )
        .await
        .unwrap();
    assert_eq!((m.cam_on_secs, m.messages), (720, 4));
}

#[tokio::test]
async fn an_earlier_versions_running_periods_are_carried_once() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let (day, week, month) = (day_key(today), week_key(today), month_key(today));
    let (g, u) = (G.cast_signed(), U.cast_signed());
    let id = format!("{G}:{U}");
    // What the previous version left: totals without periods, and its
    // rollups of the running day, week and month (and an old month).
    let rollup = |key: &str, field: &str, secs: i64, messages: i64| {
        doc! {
            "_id": format!("{id}:{key}"), "guild_id": g, "user_id": u, field: key,
            "voice_cam_on_secs": secs, "voice_cam_off_secs": 0_i64, "voice_secs": secs,
            "messages": messages, "seq": 5_i64,
        }
    };
    let db2 = db.db();
    db2.collection::<Document>("member_stats")
        .insert_one(doc! {
            "_id": &id, "guild_id": g, "user_id": u, "voice_cam_on_secs": 9_000_i64,
            "voice_cam_off_secs": 0_i64, "voice_secs": 9_000_i64, "messages": 90_i64, "seq": 5_i64,
        })
        .await
        .unwrap();
    let insert = |coll: &'static str, d: Document| {
        let db2 = db2.clone();
        async move {
            db2.collection::<Document>(coll)
                .insert_one(d)
                .await
                .unwrap()
        }
    };
    insert("member_days", rollup(&day, "day", 100, 3)).await;
    insert("member_weeks", rollup(&week, "week", 1_000, 10)).await;
    insert("member_months", rollup(&month, "month", 5_000, 50)).await;
    insert("member_months", rollup("m2020-01", "month", 7, 7)).await;
    // This version counts before the carry runs: a message today and 60 s.
    let t0 = chrono::Utc::now().timestamp_millis() - 120_000;
    let ops = sequenced(vec![msg(&day), voice(&day, t0, 60)], 10);
    store.apply(&ops).await.unwrap();
    assert_eq!(store.carry_periods_once().await.unwrap(), 3);
    let want = vec![
        (day.clone(), 160, 4),
        (week.clone(), 1_060, 11),
        (month.clone(), 5_060, 51),
    ];
    assert_eq!(periods(&db.db()).await, want);
    // Cut before its marker was written (a crash): done again, it adds
    // nothing twice.
    db.db()
        .collection::<Document>("meta")
        .delete_one(doc! { "_id": "periods_carried" })
        .await
        .unwrap();
    assert_eq!(store.carry_periods_once().await.unwrap(), 0);
    // With the marker, it reads nothing.
    assert_eq!(store.carry_periods_once().await.unwrap(), 0);
    assert_eq!(periods(&db.db()).await, want);
    let page = store
        .leaderboard(G, Period::Week, Some(&week), By::Voice, 1, Some(U))
        .await
        .unwrap();
    assert_eq!(page.caller.unwrap().totals.voice_secs(), 1_060);
}
