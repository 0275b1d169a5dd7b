//! Graceful shutdown in process: background loops stop between iterations,
//! never inside one, so a flush that is still queuing its credits when
//! shutdown starts loses no second.

use std::time::Duration;

use study_tracker::app::now_millis;
use study_tracker::core::{whole_secs, MemberKey, Presence};
use study_tracker::durable::retry::RetryPolicy;
use study_tracker::durable::writer::WriterOptions;

use crate::e2e::assert_close;
use crate::support::app::{spawn_app, spawn_app_with, test_settings};
use crate::support::db::fresh_db;
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};

const MEMBER: MemberKey = MemberKey {
    guild: 1_300_000_000_000_000_001,
    user: 1_300_000_000_000_000_002,
};

/// The sequence: a member is in voice; MongoDB goes away and the spool fills
/// up; the periodic flush takes its credits (advancing the session's last
/// credit) while nothing can reach the spool; shutdown starts; MongoDB comes
/// back. Two mechanisms keep every second: background loops stop between
/// iterations, never inside one (the wiring before aborted the flusher, and
/// a flush waiting to queue lost its credits: this test failed then with
/// "stored 1s, timeline says 3s"); and submitting never waits (the outbox
/// folds ops per document), so neither the flush nor the shutdown credit
/// queues behind a full spool, and memory stays bounded while it is full.
#[tokio::test]
async fn a_flush_during_a_full_spool_at_shutdown_loses_no_second() {
    let db = fresh_db().await;
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let spool = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&proxy.uri(), &db.name, spool.path());
    settings.tracking.flush_interval_secs = 2;
    settings.spool.shutdown_timeout_secs = 20;
    // A few records fill it (below the CLI's minimum, which only the command
    // line enforces).
    settings.spool.max_bytes = 700;
    let writer = WriterOptions {
        spool_batch: 1,
        apply_batch: 64,
        retry: RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
            after_final_failure: Duration::from_millis(200),
        },
        ..WriterOptions::default()
    };
    let running = spawn_app_with(settings, writer).await;
    let app = running.app.clone();
    let mut ready = running.store_ready.clone();
    tokio::time::timeout(Duration::from_secs(20), ready.wait_for(|r| *r))
        .await
        .expect("store prepared")
        .unwrap();

    let joined = now_millis();
    let present = Presence {
        channel: 7,
        camera: true,
    };
    app.voice_update(MEMBER, Some(present), joined).await;
    assert!(app.writer().wait_idle(Duration::from_secs(20)).await);

    proxy.set_down(true);
    let messages: i64 = 3_000;
    for _ in 0..messages {
        app.message(MEMBER, now_millis());
    }
    // The spool fills; what cannot reach it waits in memory, folded: a
    // handful of ops, not 3,000.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let backlog = app.writer().status().backlog;
    assert!(backlog < 20, "backlog {backlog} grows with events");
    // Past the first flush (2 s after start): it is waiting to queue.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let stopping_at = now_millis();
    let stopped = running.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set_down(false);
    tokio::time::timeout(Duration::from_secs(60), stopped)
        .await
        .expect("shutdown finishes")
        .unwrap()
        .unwrap();

    let stored = app.store().member(MEMBER, 0, "0000-00-00").await.unwrap();
    assert_close(
        stored.cam_on_secs,
        whole_secs(joined, stopping_at),
        "camera-on time credited up to shutdown",
    );
    assert_eq!(stored.messages, messages);
    proxy.shutdown();
}

/// SIGTERM during an outage with a full spool, MongoDB still away when the
/// process exits: what waited in memory (the folded messages, the shutdown
/// credit) goes to disk past `SPOOL_MAX_BYTES` instead of dying with the
/// process, and the next start applies it.
#[tokio::test]
async fn a_shutdown_with_a_full_spool_and_no_database_keeps_everything_on_disk() {
    let db = fresh_db().await;
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let spool = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&proxy.uri(), &db.name, spool.path());
    settings.spool.shutdown_timeout_secs = 2;
    settings.spool.max_bytes = 700;
    let writer = WriterOptions {
        spool_batch: 1,
        ..WriterOptions::default()
    };
    let running = spawn_app_with(settings.clone(), writer).await;
    let app = running.app.clone();
    let joined = now_millis();
    let present = Presence {
        channel: 7,
        camera: false,
    };
    app.voice_update(MEMBER, Some(present), joined).await;
    assert!(app.writer().wait_idle(Duration::from_secs(20)).await);
    proxy.set_down(true);
    // 20 members' messages: 20 folded ops, more than the spool holds.
    let others: Vec<MemberKey> = (1..=20)
        .map(|k| MemberKey {
            guild: MEMBER.guild,
            user: MEMBER.user + k,
        })
        .collect();
    for _ in 0..25 {
        for m in &others {
            app.message(*m, now_millis());
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping_at = now_millis();
    running.stop().await;
    // The spool (and its directory lock) goes with the last handle.
    drop(app);

    // MongoDB is back for the next start, on the same disk.
    proxy.set_down(false);
    let next = spawn_app(settings).await;
    assert!(next.app.writer().wait_idle(Duration::from_secs(30)).await);
    let store = next.app.store().clone();
    let stored = store.member(MEMBER, 0, "0000-00-00").await.unwrap();
    let mut messages = 0;
    for m in &others {
        messages += store.member(*m, 0, "0000-00-00").await.unwrap().messages;
    }
    next.stop().await;
    assert_eq!(messages, 500, "messages waiting in memory at shutdown");
    assert_close(
        stored.cam_off_secs,
        whole_secs(joined, stopping_at),
        "the shutdown credit, made while the spool was full",
    );
    proxy.shutdown();
}
