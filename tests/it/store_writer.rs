//! The write path against a real MongoDB-wire server: idempotent apply,
//! spool replay after a crash, the writer end to end, session restore and
//! the legacy import.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use study_tracker::core::{whole_secs, MemberKey, Presence};
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::durable::spool::Spool;
use study_tracker::durable::writer::{self, WriterOptions};
use study_tracker::store::Store;

use crate::support::app::{spawn_app, test_settings, TestApp};
use crate::support::db::{fresh_db, TestDb};

const G: u64 = 1_100_000_000_000_000_001;
const U: u64 = 1_200_000_000_000_000_002;
const MEMBER: MemberKey = MemberKey { guild: G, user: U };
/// 2026-11-26T10:00:00Z
const T0: i64 = 1_795_687_200_000;

fn voice(camera: bool, segment_start: i64, from: i64, to: i64) -> Op {
    Op::Voice {
        guild: G,
        user: U,
        channel: 7,
        camera,
        segment_start,
        from,
        to,
        days: None,
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

/// The bot in process on `db`, spooling in `dir`, wired as `main` wires it.
async fn start_app(db: &TestDb, dir: &std::path::Path) -> TestApp {
    spawn_app(test_settings(&db.uri, &db.name, dir)).await
}

/// A deadline that never cuts a read short.
fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(600)
}

async fn totals(store: &Store) -> (i64, i64, i64) {
    let m = store.member(MEMBER, 0, "0000-00-00").await.unwrap();
    (m.cam_on_secs, m.cam_off_secs, m.messages)
}

#[tokio::test]
async fn replayed_batches_change_nothing() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let batch = sequenced(
        vec![
            voice(true, T0, T0, T0 + 90_000),
            msg("2026-11-26"),
            msg("2026-11-26"),
            voice(false, T0 + 90_000, T0 + 90_000, T0 + 100_500),
        ],
        1_000,
    );
    let first = store.apply(&batch).await.unwrap();
    assert_eq!(first.replays, 0);
    assert_eq!(totals(&store).await, (90, 10, 2));

    // The reply was lost and the whole batch is sent again: no change.
    let again = store.apply(&batch).await.unwrap();
    assert_eq!(again.applied, 0, "{again:?}");
    assert!(again.replays > 0);
    assert_eq!(totals(&store).await, (90, 10, 2));

    // A batch that was half applied before a crash: only the rest counts.
    let next = sequenced(
        vec![msg("2026-11-26"), voice(true, T0, T0 + 90_000, T0 + 95_000)],
        2_000,
    );
    store.apply(&next[..1]).await.unwrap();
    store.apply(&next).await.unwrap();
    assert_eq!(totals(&store).await, (95, 10, 3));

    let m = store.member(MEMBER, T0, "2026-11-26").await.unwrap();
    assert_eq!(m.days, vec![("2026-11-26".to_owned(), 3)]);
    let seg = m.segments.iter().find(|s| s.start == T0).unwrap();
    assert_eq!(
        seg.end,
        T0 + 95_000,
        "an open segment's end advances with each credit"
    );
}

#[tokio::test]
async fn spool_left_by_a_crash_is_applied_exactly_once() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let dir = tempfile::tempdir().unwrap();
    {
        // The previous process spooled 50 messages and applied the first 20
        // before it was killed (the spool was never truncated).
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool
            .append(&vec![msg("2026-11-26"); 50], 1_000_000)
            .unwrap();
        let batch = spool.read_batch(20).unwrap();
        store.apply(&batch.records).await.unwrap();
    }
    assert_eq!(totals(&store).await.2, 20);
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let (w, tasks) = writer::start(store.clone(), spool, WriterOptions::default());
    w.submit([msg("2026-11-26")]);
    assert!(w.wait_idle(Duration::from_secs(20)).await);
    assert_eq!(totals(&store).await.2, 51);
    assert_eq!(
        tasks.shutdown(Duration::from_secs(5)).await.left_in_spool,
        0
    );
    // Drained: only the file header (8 bytes) is left.
    assert_eq!(
        std::fs::metadata(dir.path().join("spool-v2.log"))
            .unwrap()
            .len(),
        8
    );
}

#[tokio::test]
async fn app_tracks_voice_and_messages_into_stats() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let dir = tempfile::tempdir().unwrap();
    let running = start_app(&db, dir.path()).await;
    let app = running.app.clone();
    let w = app.writer().clone();
    let cam = |camera| Some(Presence { channel: 7, camera });
    app.voice_update(MEMBER, cam(true), T0).await;
    app.flush_once(T0 + 60_000).await;
    app.voice_update(MEMBER, cam(false), T0 + 75_000).await;
    app.message(MEMBER, T0 + 80_000);
    app.voice_update(MEMBER, None, T0 + 165_000).await;
    // Bots, AFK and leaves are filtered by the adapter; a second leave is harmless.
    app.voice_update(MEMBER, None, T0 + 170_000).await;
    assert!(w.wait_idle(Duration::from_secs(20)).await);
    assert_eq!(totals(&store).await, (75, 90, 1));

    let (stats, _) = app.member_stats(MEMBER, T0 + 200_000).await;
    assert_eq!(stats.all_time.cam_on_secs, 75);
    assert_eq!(stats.today.cam_off_secs, 90);
    assert_eq!(stats.this_week.messages, 1);

    // The caller's session in progress counts up to now.
    app.voice_update(MEMBER, cam(true), T0 + 300_000).await;
    let (stats, _) = app.member_stats(MEMBER, T0 + 342_000).await;
    assert_eq!(stats.all_time.cam_on_secs, 75 + 42);
    assert_eq!(stats.today.cam_on_secs, 75 + 42);
    app.stop_and_credit(T0 + 342_000).await;
    running.stop().await;
}

#[tokio::test]
async fn restart_resumes_sessions_within_grace() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let dir = tempfile::tempdir().unwrap();
    let cam = Presence {
        channel: 7,
        camera: true,
    };
    {
        let running = start_app(&db, dir.path()).await;
        running.app.guild_snapshot(G, &[(U, cam)], T0).await;
        // SIGTERM at T0 + 100 s: credited up to the signal.
        running.app.stop_and_credit(T0 + 100_000).await;
        running.stop().await;
    }
    assert_eq!(totals(&store).await.0, 100);
    // Start-up restores the checkpoints once the old spool is applied.
    let running = start_app(&db, dir.path()).await;
    let app = running.app.clone();
    let w = app.writer().clone();
    // Back 40 s later, the member still in voice: the gap counts.
    app.guild_snapshot(G, &[(U, cam)], T0 + 140_000).await;
    app.voice_update(MEMBER, None, T0 + 150_000).await;
    assert!(w.wait_idle(Duration::from_secs(20)).await);
    assert_eq!(totals(&store).await.0, 150);
    let open = store.open_sessions(far()).await.unwrap();
    assert!(open.complete && open.sessions.is_empty(), "{open:?}");
    running.stop().await;
}

#[tokio::test]
async fn legacy_import_adds_once() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let users = db.db().collection::<Document>("users");
    users
        .insert_many([
            doc! { "_id": "mongodb_test", "ok": true },
            doc! { "_id": U.to_string(), "data": { "voice_cam_on_minutes": 10, "voice_cam_off_minutes": 2.0, "message_count": 7 } },
            doc! { "_id": "not-a-number", "data": {} },
        ])
        .await
        .unwrap();
    // The member already has time tracked by this bot.
    store
        .apply(&sequenced(vec![voice(true, T0, T0, T0 + 30_000)], 5))
        .await
        .unwrap();
    let first = store.import_legacy(G).await.unwrap();
    assert_eq!(
        (first.imported, first.already_imported, first.skipped),
        (1, 0, 2)
    );
    let second = store.import_legacy(G).await.unwrap();
    assert_eq!((second.imported, second.already_imported), (0, 1));
    assert_eq!(totals(&store).await, (630, 120, 7));
    // Later increments still apply after the import.
    store
        .apply(&sequenced(vec![msg("2026-11-26")], 6))
        .await
        .unwrap();
    assert_eq!(totals(&store).await.2, 8);
}

#[tokio::test]
async fn check_write_goes_to_meta_not_stats() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    store.test_write().await.unwrap();
    let names = db.db().list_collection_names().await.unwrap();
    assert!(names.contains(&"meta".to_owned()), "{names:?}");
    let members = db
        .db()
        .collection::<Document>("member_stats")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(members, 0);
}

/// Randomised replays against the real server: ops are applied in random
/// batches, with random earlier stretches re-sent (lost replies, crashes
/// before the spool was truncated, different batch boundaries on re-read).
/// Every op must count exactly once.
#[tokio::test]
async fn any_replay_pattern_counts_each_op_exactly_once() {
    use rand::{Rng, SeedableRng};
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    for seed in 0..3_u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let guild = G + seed;
        let users = [U, U + 1, U + 2];
        let mut expected = std::collections::BTreeMap::new();
        let mut ops = Vec::new();
        let mut clock = T0;
        for _ in 0..150 {
            let u = users[rng.gen_range(0..users.len())];
            let e = expected.entry(u).or_insert((0_i64, 0_i64, 0_i64));
            if rng.gen_bool(0.5) {
                ops.push(Op::Message {
                    guild,
                    user: u,
                    day: "2026-11-26".into(),
                    count: 1,
                    max_id: None,
                });
                e.2 += 1;
            } else {
                let cam = rng.gen_bool(0.5);
                let len = rng.gen_range(0..5_000);
                ops.push(Op::Voice {
                    guild,
                    user: u,
                    channel: 7,
                    camera: cam,
                    segment_start: T0,
                    from: clock,
                    to: clock + len,
                    days: None,
                    tz: None,
                });
                let s = whole_secs(clock, clock + len);
                if cam {
                    e.0 += s;
                } else {
                    e.1 += s;
                }
                clock += len;
            }
        }
        let records = sequenced(ops, 10_000 * (seed + 1));
        let mut applied = 0;
        while applied < records.len() {
            let end = (applied + rng.gen_range(1..25)).min(records.len());
            // Sometimes a stretch that was already (partly) applied is sent
            // again, starting anywhere before the new batch.
            let start = if rng.gen_bool(0.4) {
                rng.gen_range(0..=applied)
            } else {
                applied
            };
            if rng.gen_bool(0.3) && end - start > 1 {
                // A crash in the middle: only a prefix made it, then all again.
                let mid = rng.gen_range(start..end);
                store.apply(&records[start..mid]).await.unwrap();
            }
            store.apply(&records[start..end]).await.unwrap();
            applied = end;
        }
        for (u, want) in expected {
            let m = store
                .member(MemberKey { guild, user: u }, 0, "0000-00-00")
                .await
                .unwrap();
            assert_eq!(
                (m.cam_on_secs, m.cam_off_secs, m.messages),
                want,
                "seed {seed}, user {u}"
            );
        }
    }
}

#[tokio::test]
async fn documents_without_seq_still_take_increments() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    // Written by hand or by an older tool: no `seq` field.
    db.db()
        .collection::<Document>("member_stats")
        .insert_one(doc! { "_id": format!("{G}:{U}"), "guild_id": i64::try_from(G).unwrap(), "user_id": i64::try_from(U).unwrap(), "voice_cam_on_secs": 5_i64 })
        .await
        .unwrap();
    store
        .apply(&sequenced(vec![msg("2026-11-26")], 42))
        .await
        .unwrap();
    assert_eq!(totals(&store).await, (5, 0, 1));
}

/// A steady flush of more sessions than one `update` command carries (the
/// test server stops answering commands of 100+ statements on existing
/// documents; the writer must chunk below that).
#[tokio::test]
async fn steady_flushes_of_many_sessions_are_applied() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let dir = tempfile::tempdir().unwrap();
    let running = start_app(&db, dir.path()).await;
    let app = running.app.clone();
    let present: Vec<(u64, Presence)> = (0..150_u64)
        .map(|u| {
            (
                U + u,
                Presence {
                    channel: 7,
                    camera: u % 2 == 0,
                },
            )
        })
        .collect();
    app.guild_snapshot(G, &present, T0).await;
    for k in 1..=2 {
        let report = app.flush_once(T0 + k * 60_000).await;
        assert_eq!(report.credits, 150);
        assert!(
            app.writer().wait_idle(Duration::from_secs(60)).await,
            "flush {k} not applied: {:?}",
            app.writer().status()
        );
    }
    assert_eq!(totals(&store).await, (120, 0, 0));
    let last = store
        .member(
            MemberKey {
                guild: G,
                user: U + 149,
            },
            0,
            "0000-00-00",
        )
        .await
        .unwrap();
    assert_eq!(last.cam_off_secs, 120);
    app.stop_and_credit(T0 + 120_000).await;
    running.stop().await;
}

/// The resume point is the moment the stored total ends (`credited_until`,
/// written in the same statement as the total), not the segment's end,
/// which lives in another document and may lag behind it when a spool is
/// lost between the two commands. Documents from before the field fall back
/// to the segment's end.
#[tokio::test]
async fn resume_points_follow_the_totals() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    // Only the totals' command of this batch made it: the segment's end is
    // still at T0 + 10 s.
    store
        .apply(&sequenced(vec![voice(true, T0, T0, T0 + 10_000)], 100))
        .await
        .unwrap();
    store
        .apply(&sequenced(
            vec![Op::Checkpoint {
                guild: G,
                user: U,
                open: Some(study_tracker::core::tracker::OpenSegment {
                    channel: 7,
                    camera: true,
                    segment_start: T0,
                }),
            }],
            101,
        ))
        .await
        .unwrap();
    db.db()
        .collection::<Document>("member_stats")
        .update_one(
            doc! { "_id": format!("{G}:{U}") },
            doc! { "$inc": { "voice_cam_on_secs": 30 }, "$set": { "credited_until": mongodb::bson::DateTime::from_millis(T0 + 40_000) } },
        )
        .await
        .unwrap();
    let open = store.open_sessions(far()).await.unwrap();
    assert_eq!(open.sessions.len(), 1, "{open:?}");
    assert_eq!(open.sessions[0].session.last_credit, T0 + 40_000);

    // Totals written before `credited_until` existed: the segment's end.
    db.db()
        .collection::<Document>("member_stats")
        .update_one(
            doc! { "_id": format!("{G}:{U}") },
            doc! { "$unset": { "credited_until": "" } },
        )
        .await
        .unwrap();
    let open = store.open_sessions(far()).await.unwrap();
    assert_eq!(open.sessions[0].session.last_credit, T0 + 10_000);
}

/// Restoring costs a constant number of round trips, not one per session
/// (the previous code did one `find_one` per open session).
#[tokio::test]
async fn restore_reads_many_sessions_in_a_few_round_trips() {
    use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
    let db = fresh_db().await;
    let n = 1_500_u64;
    let sessions: Vec<Document> = (0..n)
        .map(|i| {
            doc! {
                "_id": format!("{G}:{}", U + i),
                "guild_id": i64::try_from(G).unwrap(),
                "user_id": i64::try_from(U + i).unwrap(),
                "open": true,
                "channel_id": 7_i64,
                "camera": i % 2 == 0,
                "segment_start": mongodb::bson::DateTime::from_millis(T0),
                "seq": 1_i64,
            }
        })
        .collect();
    let stats: Vec<Document> = (0..n)
        .map(|i| {
            doc! {
                "_id": format!("{G}:{}", U + i),
                "credited_until": mongodb::bson::DateTime::from_millis(T0 + i64::try_from(i).unwrap()),
                "seq": 1_i64,
            }
        })
        .collect();
    db.db()
        .collection::<Document>("voice_sessions")
        .insert_many(sessions)
        .await
        .unwrap();
    db.db()
        .collection::<Document>("member_stats")
        .insert_many(stats)
        .await
        .unwrap();

    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let store = Store::connect(&proxy.uri(), &db.name).await.unwrap();
    let open = store.open_sessions(far()).await.unwrap();
    assert!(open.complete);
    assert_eq!(open.sessions.len(), usize::try_from(n).unwrap());
    let last = open
        .sessions
        .iter()
        .map(|s| s.session.last_credit)
        .max()
        .unwrap();
    assert_eq!(last, T0 + i64::try_from(n - 1).unwrap());
    let trips = proxy.requests("find") + proxy.requests("getMore");
    assert!(
        trips <= 3,
        "{trips} round trips for {n} sessions ({open:?})"
    );
    assert_eq!(open.round_trips, 2);
    proxy.shutdown();
}

/// An op this process appended and sends for the first time can never be a
/// genuine replay: if MongoDB already has a newer write for its document,
/// that is counted as an anomaly (and logged), not dropped silently.
#[tokio::test]
async fn newer_writes_from_elsewhere_are_anomalies_not_replays() {
    use study_tracker::store::ApplyProgress;
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store
        .apply(&sequenced(vec![msg("2026-11-26")], 100))
        .await
        .unwrap();
    // A genuine replay of an op from before this process: not an anomaly.
    let replay = store
        .apply_resumable(
            &sequenced(vec![msg("2026-11-26")], 100),
            &mut ApplyProgress::fresh_from(200),
        )
        .await
        .unwrap();
    // A message touches two documents: the totals (with the running day,
    // week and month) and its day's message count.
    assert_eq!((replay.replays, replay.seq_anomalies), (2, 0), "{replay:?}");
    // This process's own op, numbered below what MongoDB holds.
    let behind = store
        .apply_resumable(
            &sequenced(vec![msg("2026-11-26")], 60),
            &mut ApplyProgress::fresh_from(50),
        )
        .await
        .unwrap();
    assert_eq!(behind.seq_anomalies, 2, "{behind:?}");
    assert_eq!(totals(&store).await.2, 1);
}

/// A new host with an empty spool (an ephemeral disk) and a clock behind
/// the previous host's: its sequence numbers start above the high-water mark
/// saved in MongoDB, so its increments are not taken for replays.
#[tokio::test]
async fn a_new_host_starts_above_the_saved_high_water_mark() {
    use study_tracker::app::now_millis;
    let db = fresh_db().await;
    let first = tempfile::tempdir().unwrap();
    // The previous host's clock ran an hour ahead.
    let ahead = u64::try_from(now_millis() + 3_600_000).unwrap() * 1_000;
    std::fs::write(first.path().join("spool.seq"), ahead.to_le_bytes()).unwrap();
    let a = spawn_app(test_settings(&db.uri, &db.name, first.path())).await;
    a.app.message(MEMBER, now_millis());
    assert!(a.app.writer().wait_idle(Duration::from_secs(20)).await);
    a.stop().await;

    let second = tempfile::tempdir().unwrap();
    let b = spawn_app(test_settings(&db.uri, &db.name, second.path())).await;
    b.app.message(MEMBER, now_millis());
    assert!(b.app.writer().wait_idle(Duration::from_secs(20)).await);
    let status = b.app.writer().status();
    b.stop().await;
    let store = Store::from_database(db.db());
    assert_eq!(totals(&store).await.2, 2, "{status:?}");
    assert_eq!(status.seq_anomalies, 0);
}

/// One document that refuses its statement for good (a legacy document with
/// a string where a number belongs) cannot hold the others' increments: the
/// batch applies around it and reports it.
#[tokio::test]
async fn a_poison_document_is_isolated_and_reported() {
    use study_tracker::store::ApplyProgress;
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    db.db()
        .collection::<Document>("member_stats")
        .insert_one(doc! { "_id": format!("{G}:{U}"), "messages": "many" })
        .await
        .unwrap();
    let other = MemberKey {
        guild: G,
        user: U + 1,
    };
    let ops = vec![
        msg("2026-11-26"),
        Op::message(other, T0, chrono_tz::UTC),
        msg("2026-11-26"),
        Op::message(other, T0, chrono_tz::UTC),
    ];
    let mut progress = ApplyProgress::fresh_from(0);
    store
        .apply_resumable(&sequenced(ops, 500), &mut progress)
        .await
        .unwrap();
    assert_eq!(progress.failed.len(), 1, "{:?}", progress.failed);
    let f = &progress.failed[0];
    assert_eq!(
        (f.collection, f.document.as_str()),
        ("member_stats", format!("{G}:{U}").as_str())
    );
    assert_eq!(f.seqs, vec![500, 502]);
    let healthy = store.member(other, 0, "0000-00-00").await.unwrap();
    assert_eq!(healthy.messages, 2);
    // The poison member's other document (its day) took its messages.
    let days = store.member(MEMBER, 0, "0000-00-00").await.unwrap().days;
    assert_eq!(days, vec![("2026-11-26".to_owned(), 2)]);
}

/// An op set aside as a dead letter is never applied through the normal
/// path (a spool replayed after a crash that came between setting it aside
/// and committing the batch): only `dead-letters --retry` applies it, once.
#[tokio::test]
async fn dead_lettered_ops_are_not_replayed_through_the_normal_path() {
    use study_tracker::store::ApplyProgress;
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let batch = sequenced(vec![msg("2026-11-26"), msg("2026-11-26")], 700);
    let mut progress = ApplyProgress::default();
    progress
        .excluded
        .insert((700, format!("member_stats/{G}:{U}")));
    store.apply_resumable(&batch, &mut progress).await.unwrap();
    // The excluded op's other document (its day) took it; the totals did not.
    assert_eq!(totals(&store).await.2, 1);
    let days = store.member(MEMBER, 0, "0000-00-00").await.unwrap().days;
    assert_eq!(days, vec![("2026-11-26".to_owned(), 2)]);
}
