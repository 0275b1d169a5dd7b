//! A handover credits voice changes at their own moments: a camera toggle
//! and a join seen by the standby between the old holder's handoff and the
//! takeover are replayed at their times, not at the takeover's. Two bots in
//! process on one database, with the times handed to them.

use std::time::Duration;

use study_tracker::app::{now_millis, App};
use study_tracker::core::{whole_secs, MemberKey, Presence};

use crate::support::app::{spawn_app, test_settings, TestApp};
use crate::support::db::fresh_db;
use crate::support::poll::eventually;

const CAROL: MemberKey = MemberKey { guild: 7, user: 71 };
const DAVE: MemberKey = MemberKey { guild: 7, user: 72 };

fn presence(camera: bool) -> Presence {
    Presence {
        channel: 700,
        camera,
    }
}

/// Both instances see the same events (as the gateway sends them to both).
async fn both(a: &App, b: &App, member: MemberKey, p: Option<Presence>, at: i64) {
    a.voice_update(member, p, at).await;
    b.voice_update(member, p, at).await;
}

async fn leased(uri: &str, db: &str, spool: &std::path::Path) -> TestApp {
    let mut settings = test_settings(uri, db, spool);
    settings.tracking.lease_ttl_secs = 15;
    spawn_app(settings).await
}

#[tokio::test]
async fn voice_changes_during_a_handover_are_credited_at_their_own_moments() {
    let db = fresh_db().await;
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = leased(&db.uri, &db.name, spool_a.path()).await;
    assert!(a.app.lease().held());
    let b = leased(&db.uri, &db.name, spool_b.path()).await;
    assert!(!b.app.lease().counts(), "B stands by");
    let (app_a, app_b) = (a.app.clone(), b.app.clone());
    let joined = now_millis() - 20_000;
    both(&app_a, &app_b, CAROL, Some(presence(false)), joined).await;
    // A hands over (credits up to the signal, settles 1 s, drains, releases).
    let stopping = a.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Late in a second, so that a takeover at least 0.8 s later is in
    // another second: crediting the toggle at the takeover would show.
    while now_millis() % 1000 < 900 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let toggled = now_millis();
    both(&app_a, &app_b, CAROL, Some(presence(true)), toggled).await;
    both(&app_a, &app_b, DAVE, Some(presence(false)), toggled).await;
    stopping.await.unwrap().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { app_b.lease().held() }).await,
        "B takes over"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left = now_millis();
    app_b.voice_update(CAROL, None, left).await;
    app_b.voice_update(DAVE, None, left).await;
    assert!(app_b.writer().wait_idle(Duration::from_secs(20)).await);
    let store = app_b.store();
    let carol = store.member(CAROL, 0, "0000-00-00").await.unwrap();
    let dave = store.member(DAVE, 0, "0000-00-00").await.unwrap();
    assert_eq!(
        (carol.cam_off_secs, carol.cam_on_secs),
        (whole_secs(joined, toggled), whole_secs(toggled, left)),
        "Carol: camera off until the toggle, on from it"
    );
    assert_eq!(
        dave.cam_off_secs,
        whole_secs(toggled, left),
        "Dave: from his join"
    );
    b.stop().await;
}

/// A member who leaves during the handover (after the old holder's
/// shutdown credit, before the takeover) is credited until the leave: the
/// new holder saw her there, so the seconds from the handoff to the leave
/// are not lost.
#[tokio::test]
async fn a_leave_during_a_handover_is_credited_until_the_leave() {
    let db = fresh_db().await;
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = leased(&db.uri, &db.name, spool_a.path()).await;
    let b = leased(&db.uri, &db.name, spool_b.path()).await;
    assert!(a.app.lease().held() && !b.app.lease().counts());
    let (app_a, app_b) = (a.app.clone(), b.app.clone());
    let signal = now_millis();
    // Half a second past a whole one at the signal, so that 0.9 s later is
    // in the next whole second.
    let joined = signal - 20_500;
    both(&app_a, &app_b, CAROL, Some(presence(false)), joined).await;
    let stopping = a.begin_shutdown();
    while now_millis() < signal + 900 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = now_millis();
    both(&app_a, &app_b, CAROL, None, left).await;
    stopping.await.unwrap().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { app_b.lease().held() }).await,
        "B takes over"
    );
    assert!(app_b.writer().wait_idle(Duration::from_secs(20)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let carol = app_b.store().member(CAROL, 0, "0000-00-00").await.unwrap();
    assert_eq!(
        carol.cam_off_secs,
        whole_secs(joined, left),
        "Carol: until she left, during the handover"
    );
    b.stop().await;
}

/// F8: a voice change the standby saw before the previous holder's
/// restored resume point (the old holder got the same change later and
/// credited past it) is not replayed: the stretch between is credited once.
#[tokio::test]
async fn a_change_older_than_the_restored_resume_point_is_not_credited_twice() {
    let db = fresh_db().await;
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = leased(&db.uri, &db.name, spool_a.path()).await;
    let b = leased(&db.uri, &db.name, spool_b.path()).await;
    assert!(a.app.lease().held() && !b.app.lease().counts());
    let (app_a, app_b) = (a.app.clone(), b.app.clone());
    let start = now_millis();
    let joined = start - 20_000;
    // Both see the guild (as on connect) with Carol in voice.
    for app in [&app_a, &app_b] {
        app.guild_snapshot(CAROL.guild, &[(CAROL.user, presence(false))], joined)
            .await;
    }
    // The camera goes on: the standby sees it at once, the holder 2.5 s
    // later (after the signal), and credits the camera-off time up to then.
    let seen_by_b = start + 200;
    let seen_by_a = start + 2_500;
    app_b
        .voice_update(CAROL, Some(presence(true)), seen_by_b)
        .await;
    app_a
        .voice_update(CAROL, Some(presence(true)), seen_by_a)
        .await;
    let stopping = a.begin_shutdown();
    stopping.await.unwrap().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { app_b.lease().held() }).await,
        "B takes over"
    );
    while now_millis() < start + 5_000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = now_millis();
    app_b.voice_update(CAROL, None, left).await;
    assert!(app_b.writer().wait_idle(Duration::from_secs(20)).await);
    let carol = app_b.store().member(CAROL, 0, "0000-00-00").await.unwrap();
    // Before: the standby replayed its earlier sighting, crediting
    // [seen_by_b, seen_by_a) with the camera on as well (2.3 s twice).
    let total = carol.cam_off_secs + carol.cam_on_secs;
    assert!(
        (total - whole_secs(joined, left)).abs() <= 1,
        "each second once: off {} + on {} against {} in voice",
        carol.cam_off_secs,
        carol.cam_on_secs,
        whole_secs(joined, left)
    );
    b.stop().await;
}

/// F8: a camera toggle and then a move during the handover, for a member
/// in voice at the handoff: credited from each change's own moment.
#[tokio::test]
async fn a_toggle_and_a_move_during_a_handover_are_credited_at_their_moments() {
    let db = fresh_db().await;
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = leased(&db.uri, &db.name, spool_a.path()).await;
    let b = leased(&db.uri, &db.name, spool_b.path()).await;
    assert!(a.app.lease().held() && !b.app.lease().counts());
    let (app_a, app_b) = (a.app.clone(), b.app.clone());
    let signal = now_millis();
    let joined = signal - 20_500;
    both(&app_a, &app_b, CAROL, Some(presence(false)), joined).await;
    let stopping = a.begin_shutdown();
    while now_millis() < signal + 900 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let toggled = now_millis();
    both(&app_a, &app_b, CAROL, Some(presence(true)), toggled).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let moved = now_millis();
    let elsewhere = Some(Presence {
        channel: 701,
        camera: true,
    });
    both(&app_a, &app_b, CAROL, elsewhere, moved).await;
    stopping.await.unwrap().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { app_b.lease().held() }).await,
        "B takes over"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left = now_millis();
    app_b.voice_update(CAROL, None, left).await;
    assert!(app_b.writer().wait_idle(Duration::from_secs(20)).await);
    let carol = app_b.store().member(CAROL, 0, "0000-00-00").await.unwrap();
    assert_eq!(
        (carol.cam_off_secs, carol.cam_on_secs),
        (whole_secs(joined, toggled), whole_secs(toggled, left)),
        "off until the toggle, on from it across the move"
    );
    b.stop().await;
}
