//! The `/ud` card's query against a real MongoDB-wire server: the last days
//! and the streaks over the whole history, the session in progress included.

use std::time::Duration;

use study_tracker::core::{MemberKey, Presence};

use crate::support::app::{spawn_app, test_settings};
use crate::support::db::fresh_db;

const MEMBER: MemberKey = MemberKey {
    guild: 1_100_000_000_000_000_001,
    user: 1_200_000_000_000_000_003,
};
/// 2026-11-26T10:00:00Z (a Thursday; the tests run in UTC).
const T0: i64 = 1_795_687_200_000;
const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

#[tokio::test]
async fn the_card_has_the_last_days_and_streaks_over_all_history() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.streak_min_minutes = 15;
    let running = spawn_app(settings).await;
    let app = running.app.clone();
    let cam = Some(Presence {
        channel: 7,
        camera: true,
    });
    // 40 days ago: 3 days of 20 min (the longest run, outside the chart);
    // then a 14-minute day (below the minimum); then the last two days.
    let mut sessions: Vec<(i64, i64)> = (0..3).map(|d| (T0 - (40 - d) * DAY, 20)).collect();
    sessions.push((T0 - 3 * DAY, 14));
    sessions.push((T0 - 2 * DAY, 16));
    sessions.push((T0 - DAY, 30));
    for (at, minutes) in &sessions {
        app.voice_update(MEMBER, cam, *at).await;
        app.voice_update(MEMBER, None, at + minutes * MIN).await;
    }
    assert!(app.writer().wait_idle(Duration::from_secs(20)).await);

    // Today has nothing yet: yesterday's run still counts.
    let card = app.member_card(MEMBER, T0).await;
    assert_eq!(card.days.as_ref().unwrap().len(), 14);
    assert_eq!(card.days.as_ref().unwrap()[13].voice_secs(), 0);
    assert_eq!(card.days.as_ref().unwrap()[12].cam_on_secs, 30 * 60);
    assert_eq!(card.days.as_ref().unwrap()[11].cam_on_secs, 16 * 60);
    assert_eq!(card.days.as_ref().unwrap()[10].cam_on_secs, 14 * 60);
    assert_eq!(
        (
            card.streaks.unwrap().current_days,
            card.streaks.unwrap().longest_days
        ),
        (2, 3)
    );
    assert_eq!(
        card.stats.all_time.cam_on_secs,
        (3 * 20 + 14 + 16 + 30) * 60
    );

    // A session in progress that reaches the minimum today extends it.
    app.voice_update(MEMBER, cam, T0 + MIN).await;
    let card = app.member_card(MEMBER, T0 + 16 * MIN).await;
    assert_eq!(card.days.as_ref().unwrap()[13].cam_on_secs, 15 * 60);
    assert_eq!(
        (
            card.streaks.unwrap().current_days,
            card.streaks.unwrap().longest_days
        ),
        (3, 3)
    );
    app.stop_and_credit(T0 + 16 * MIN).await;
    running.stop().await;
}

/// `/ud` while MongoDB does not answer: the card knows the session in
/// progress only, so it has no days (no chart) and no streaks, rather than
/// a streak of 0 and thirteen blank days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_database_the_card_has_no_streaks_and_no_days() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let settings = test_settings("mongodb://127.0.0.1:1/", "unreachable", dir.path());
    let running = spawn_app(settings).await;
    let app = running.app.clone();
    let cam = Some(Presence {
        channel: 7,
        camera: false,
    });
    app.voice_update(MEMBER, cam, T0).await;
    let card = app.member_card(MEMBER, T0 + 2 * MIN).await;
    assert_eq!(
        card.freshness,
        study_tracker::core::stats::Freshness::Unavailable
    );
    assert_eq!((card.days, card.streaks), (None, None));
    assert_eq!(
        card.stats.all_time.cam_off_secs, 120,
        "the session in progress"
    );
    let shown = study_tracker::render::render_card(
        "Ada",
        &card.stats,
        card.ranks,
        card.streaks,
        15,
        card.freshness,
    );
    assert_eq!(shown.image, None);
    assert!(
        shown.fields.iter().all(|f| !f.name.contains("Streak")),
        "{shown:?}"
    );
    drop(running.begin_shutdown());
}
