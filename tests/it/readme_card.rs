//! The README's picture: seeds a fresh database on the test server with a
//! plausible two weeks of one member (evening sessions with the camera on
//! and off, two days off, messages every day) through the store's own apply
//! path, then runs the real `study-tracker render-ud` on it. Ignored in the
//! suite; `bash scripts/render-card.sh` runs it with `CARD_OUT` set and
//! writes `docs/card.png`.

use study_tracker::app::now_millis;
use study_tracker::core::tracker::OpenSegment;
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::store::Store;

use crate::support::bot::run_cli;
use crate::support::db::fresh_db;

const GUILD: u64 = 1_700_000_000_000_000_001;
const USER: u64 = 1_700_000_000_000_000_002;
const CHANNEL: u64 = 1_700_000_000_000_000_101;
const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

/// Day `d` days ago (0: today, UTC): (camera-on minutes, camera-off
/// minutes, messages). A fixed pattern, so every run draws the same bars;
/// days 5 and 6 ago are two days off.
fn plan(d: usize) -> (i64, i64, u32) {
    const ON: [i64; 14] = [95, 140, 60, 180, 120, 0, 0, 75, 150, 210, 90, 130, 165, 45];
    const OFF: [i64; 14] = [40, 25, 70, 30, 55, 0, 0, 20, 35, 15, 60, 45, 25, 30];
    const MESSAGES: [u32; 14] = [12, 7, 19, 4, 15, 2, 1, 9, 22, 6, 14, 11, 17, 5];
    (ON[d], OFF[d], MESSAGES[d])
}

/// One session: camera on first, then off, starting at `start`.
fn session(start: i64, on_min: i64, off_min: i64) -> Vec<Op> {
    let toggle = start + on_min * MIN;
    let end = toggle + off_min * MIN;
    let checkpoint = |open: Option<(bool, i64)>| Op::Checkpoint {
        guild: GUILD,
        user: USER,
        open: open.map(|(camera, segment_start)| OpenSegment {
            channel: CHANNEL,
            camera,
            segment_start,
        }),
    };
    let voice = |camera, from, to| Op::Voice {
        guild: GUILD,
        user: USER,
        channel: CHANNEL,
        camera,
        segment_start: from,
        from,
        to,
        days: None,
        tz: None,
    };
    let mut ops = vec![checkpoint(Some((true, start)))];
    if on_min > 0 {
        ops.push(voice(true, start, toggle));
    }
    ops.push(checkpoint(Some((false, toggle))));
    if off_min > 0 {
        ops.push(voice(false, toggle, end));
    }
    ops.push(checkpoint(None));
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the README's picture: bash scripts/render-card.sh"]
async fn render_the_readme_card() {
    let out = std::env::var("CARD_OUT").expect("CARD_OUT: where to write the PNG");
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    let now = now_millis();
    let today = now - now.rem_euclid(DAY);
    let mut ops = Vec::new();
    // Today's session ended before now; older days' at 17:00 UTC.
    for (d, days_ago) in (0..14_usize).zip(0_i64..) {
        let (on, off, messages) = plan(d);
        let start = if d == 0 {
            now - (on + off + 5) * MIN
        } else {
            today - days_ago * DAY + 17 * 60 * MIN
        };
        if on + off > 0 {
            ops.extend(session(start, on, off));
        }
        let day = chrono::DateTime::from_timestamp_millis(today - days_ago * DAY)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        ops.push(Op::Message {
            guild: GUILD,
            user: USER,
            day,
            count: messages,
            max_id: None,
        });
    }
    let batch: Vec<Sequenced> = ops
        .into_iter()
        .zip(1_000..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
        .collect();
    store.apply(&batch).await.unwrap();

    let (uri, name) = (db.uri.clone(), db.name.clone());
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let (g, u) = (GUILD.to_string(), USER.to_string());
        run_cli(
            &["render-ud", "--guild", &g, "--user", &u, "--out", &out],
            &[
                ("MONGODB_URI", &uri),
                ("MONGODB_DB", &name),
                ("TIMEZONE", "UTC"),
            ],
        )
    })
    .await
    .unwrap();
    assert!(status.success(), "render-ud failed: {stderr}");
    println!("{}", stdout.trim());
}
