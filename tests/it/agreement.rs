//! One agreement test (issue 15, section 2): a random timeline (joins,
//! leaves, moves, camera toggles, messages, flushes, corrections, gateway
//! outages, midnights,
//! the end of daylight saving time in Berlin, and a timezone change between
//! two runs of the bot on the same spool and database) after which, for
//! every member and every period, `/ud`'s figures, the leaderboard entry,
//! the chart's bars and the `/history` sums tell one story; and a third run
//! on the same spool (its replay) changes nothing.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use study_tracker::app::{App, Correction};
use study_tracker::core::correction::What;
use study_tracker::core::leaderboard::{By, Period};
use study_tracker::core::link::Link;
use study_tracker::core::stats::Totals;
use study_tracker::core::{MemberKey, Millis, Presence};
use study_tracker::store::Actor;

use crate::support::app::{spawn_app, test_settings};
use crate::support::db::fresh_db;

const G: u64 = 1_700_000_000_000_000_201;
const USERS: [u64; 4] = [
    1_700_000_000_000_000_211,
    1_700_000_000_000_000_212,
    1_700_000_000_000_000_213,
    1_700_000_000_000_000_214,
];
const CHANNELS: [u64; 2] = [1_700_000_000_000_000_221, 1_700_000_000_000_000_222];

fn at(rfc3339: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn member(i: usize) -> MemberKey {
    MemberKey {
        guild: G,
        user: USERS[i],
    }
}

/// Plays `steps` random events from `t` on (1 to 40 minutes apart), then
/// everyone leaves; returns the time after the last event.
async fn play(app: &App, rng: &mut StdRng, mut t: Millis, steps: usize) -> Millis {
    let mut where_: [Option<Presence>; 4] = [None; 4];
    for _ in 0..steps {
        t += rng.gen_range(60_000..2_400_000);
        let i = rng.gen_range(0..USERS.len());
        match rng.gen_range(0..10) {
            0..=3 => {
                // Join, move or toggle: somewhere, camera on or off.
                let p = Presence {
                    channel: CHANNELS[rng.gen_range(0..CHANNELS.len())],
                    camera: rng.gen_bool(0.5),
                };
                where_[i] = Some(p);
                app.voice_update(member(i), Some(p), t).await;
            }
            4 => {
                where_[i] = None;
                app.voice_update(member(i), None, t).await;
            }
            5..=7 => {
                let id = study_tracker::app::snowflake_at(t) + rng.gen_range(0..4_000_000);
                app.message_with_id(member(i), id, t);
            }
            8 if rng.gen_bool(0.7) => {
                app.flush_once(t).await;
            }
            8 => {
                // A gateway outage: healthy until `t`, down, resumed later
                // (nobody said they left: their sessions resume).
                app.gateway_link(0, Link::Healthy, t).await;
                t += rng.gen_range(60_000..600_000);
                app.gateway_link(0, Link::Down, t).await;
                t += rng.gen_range(60_000..600_000);
                app.gateway_resumed(0, t).await;
            }
            _ => {
                let what = [What::CameraOn, What::CameraOff, What::Messages][rng.gen_range(0..3)];
                let amount = match what {
                    What::Messages => rng.gen_range(1..5),
                    _ => rng.gen_range(60..3_600),
                };
                let c = Correction {
                    member: member(i),
                    what,
                    amount: if rng.gen_bool(0.3) { -amount } else { amount },
                    actor: Actor::Operator,
                    reason: "agreement test".into(),
                    id: u64::try_from(t).unwrap() << 8 | rng.gen_range(0..255),
                };
                // A negative one past zero is refused: fine either way.
                let _ = app.adjust(c, t).await;
            }
        }
    }
    t += 60_000;
    for (i, w) in where_.iter().enumerate() {
        if w.is_some() {
            app.voice_update(member(i), None, t).await;
        }
    }
    assert!(app.writer().wait_idle(Duration::from_secs(30)).await);
    t
}

fn triple(t: &Totals) -> (i64, i64, i64) {
    (t.cam_on_secs, t.cam_off_secs, t.messages)
}

/// Every member's figures as every reader tells them, asserted to agree;
/// returns them (per member: the four periods' totals).
async fn agree(app: &App, now: Millis) -> Vec<[(i64, i64, i64); 4]> {
    let mut all = Vec::new();
    for i in 0..USERS.len() {
        let m = member(i);
        let card = app.member_card(m, now).await;
        let s = &card.stats;
        let periods = [
            (Period::Today, &s.today),
            (Period::Week, &s.this_week),
            (Period::Month, &s.this_month),
            (Period::All, &s.all_time),
        ];
        for (period, totals) in periods {
            // The leaderboard's entry for the caller, by voice and by
            // messages (a member with nothing by one is not ranked by it).
            for by in [By::Voice, By::Messages] {
                let page = app
                    .leaderboard(G, period, by, 1, Some(m.user), now)
                    .await
                    .unwrap();
                let ranked = match by {
                    By::Messages => totals.messages > 0,
                    _ => totals.voice_secs() > 0,
                };
                match page.caller {
                    Some(e) => assert_eq!(
                        triple(&e.totals),
                        triple(totals),
                        "member {i}, {period:?} by {by:?}: leaderboard vs /ud"
                    ),
                    None => assert!(
                        !ranked,
                        "member {i} missing from {period:?} by {by:?}: {totals:?}"
                    ),
                }
            }
        }
        // The chart: today's bar is /ud's today; the week's bars add up to
        // this week where the window holds the whole week.
        let days = card.days.expect("the stored history was read");
        let today = days.last().unwrap();
        assert_eq!(
            (today.cam_on_secs, today.cam_off_secs, today.messages),
            triple(&s.today),
            "member {i}: chart vs /ud today"
        );
        // /history: the lines add up to the all-time voice figures.
        let (sessions, complete, _) = app.member_history(m, now, 10_000).await;
        assert!(complete);
        let on: i64 = sessions.iter().map(|x| x.cam_on_secs).sum();
        let off: i64 = sessions.iter().map(|x| x.cam_off_secs).sum();
        assert_eq!(
            (on, off),
            (s.all_time.cam_on_secs, s.all_time.cam_off_secs),
            "member {i}: /history vs /ud all time"
        );
        all.push(periods.map(|(_, t)| triple(t)));
    }
    all
}

async fn timeline(seed: u64) {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    // Run 1 in Berlin, across the end of daylight saving time (01:00Z on
    // Sunday 25 October 2026), two midnights and, in Kolkata's days, the
    // start of the next week (Monday begins at 18:30Z there, 23:00Z in
    // Berlin): what was cut in Berlin must stay on Berlin's days.
    let start = at("2026-10-24T20:00:00Z");
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Europe::Berlin;
    let run1 = spawn_app(settings).await;
    let t = play(&run1.app, &mut rng, start, 80).await;
    run1.stop().await;
    // Run 2 in Kolkata, on the same spool and database.
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Asia::Kolkata;
    let run2 = spawn_app(settings).await;
    let end = play(&run2.app, &mut rng, t, 40).await;
    let figures = agree(&run2.app, end).await;
    assert!(
        figures.iter().any(|f| f[3] != (0, 0, 0)),
        "the timeline counted something"
    );
    run2.stop().await;
    // Run 3 on the same spool: its replay changes nothing.
    let mut settings = test_settings(&db.uri, &db.name, dir.path());
    settings.tracking.timezone = chrono_tz::Asia::Kolkata;
    let run3 = spawn_app(settings).await;
    assert!(run3.app.writer().wait_idle(Duration::from_secs(30)).await);
    assert_eq!(
        agree(&run3.app, end).await,
        figures,
        "seed {seed}: a replay changed something"
    );
    run3.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_tells_one_story_after_a_random_timeline() {
    for seed in [1, 2, 3] {
        timeline(seed).await;
    }
}
