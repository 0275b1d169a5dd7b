//! A stay across local midnight in a non-UTC `TIMEZONE` (Asia/Kolkata,
//! +05:30) end to end: `/history` shows it in local time with the seconds
//! `/ud` totals, the `/ud` chart splits it into two local days (bar heights
//! counted in pixels), and `history --json` / the table agree.

use chrono::TimeZone;
use chrono_tz::Asia::Kolkata;
use study_tracker::core::tracker::OpenSegment;
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::render::chart::{CAM_OFF, CAM_ON, PLOT_BOTTOM, PLOT_TOP, WIDTH};

use super::{history_json, stats_of, sum};
use crate::e2e::{Env, ALICE, CONNECT, GUILD, TEXT, VC1};
use crate::support::bot::run_cli;

const MIN: i64 = 60_000;

/// The local midnight that began yesterday in Kolkata (so the whole stay,
/// which ends 45 minutes after it, is over), in ms, and the two local dates.
fn kolkata_midnight() -> (i64, String, String) {
    let today = chrono::Utc::now().with_timezone(&Kolkata).date_naive();
    let yesterday = today.pred_opt().unwrap();
    let midnight = Kolkata
        .from_local_datetime(&yesterday.and_hms_opt(0, 0, 0).unwrap())
        .single()
        .unwrap()
        .timestamp_millis();
    let before = yesterday.pred_opt().unwrap();
    (
        midnight,
        before.format("%Y-%m-%d").to_string(),
        yesterday.format("%Y-%m-%d").to_string(),
    )
}

/// 23:30 to 00:45 local: camera on until 00:15, then off. The day before
/// midnight gets 30 min on; the day after 15 min on and 30 min off. In UTC
/// (18:00Z to 19:15Z) it would all be one day.
fn stay(midnight: i64) -> Vec<Op> {
    let (start, toggle, end) = (
        midnight - 30 * MIN,
        midnight + 15 * MIN,
        midnight + 45 * MIN,
    );
    let checkpoint = |open: Option<(bool, i64)>| Op::Checkpoint {
        guild: GUILD,
        user: ALICE,
        open: open.map(|(camera, segment_start)| OpenSegment {
            channel: VC1,
            camera,
            segment_start,
        }),
    };
    // A credit `[from, to)` of the segment that began at `segment_start`.
    let voice = |camera, segment_start, from, to| Op::Voice {
        guild: GUILD,
        user: ALICE,
        channel: VC1,
        camera,
        segment_start,
        from,
        to,
        days: None,
        tz: None,
    };
    vec![
        checkpoint(Some((true, start))),
        // Two flushes, one of them across midnight.
        voice(true, start, start, midnight - 10 * MIN),
        voice(true, start, midnight - 10 * MIN, toggle),
        checkpoint(Some((false, toggle))),
        voice(false, toggle, toggle, end),
        checkpoint(None),
    ]
}

/// Per run of chart columns holding voice bars, left to right: the bar's
/// camera-on and camera-off heights in pixels.
fn bar_heights(img: &[u8]) -> Vec<(usize, usize)> {
    let width = usize::try_from(WIDTH).unwrap();
    let rows = usize::try_from(PLOT_TOP).unwrap()..usize::try_from(PLOT_BOTTOM).unwrap();
    let column = |x: usize| {
        let mut on_off = (0, 0);
        for y in rows.clone() {
            let i = (y * width + x) * 3;
            if img[i..i + 3] == CAM_ON {
                on_off.0 += 1;
            } else if img[i..i + 3] == CAM_OFF {
                on_off.1 += 1;
            }
        }
        on_off
    };
    let mut bars: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut inside = false;
    for x in 0..width {
        let c = column(x);
        if c == (0, 0) {
            inside = false;
            continue;
        }
        if !inside {
            bars.push(Vec::new());
            inside = true;
        }
        bars.last_mut().unwrap().push(c);
    }
    // A bar's height is its most common column (anti-aliased edges aside).
    bars.iter()
        .map(|cols| {
            let mut sorted = cols.clone();
            sorted.sort_unstable();
            sorted[sorted.len() / 2]
        })
        .collect()
}

fn decode(png_bytes: &[u8]) -> Vec<u8> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut img = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut img).unwrap();
    img.truncate(info.buffer_size());
    img
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stay_across_local_midnight_splits_in_the_servers_timezone() {
    let env = Env::new().await;
    let (midnight, day_before, day_after) = kolkata_midnight();
    let batch: Vec<Sequenced> = stay(midnight)
        .into_iter()
        .zip(1_000..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
        .collect();
    let store = env.store();
    store.ensure_indexes().await.unwrap();
    store.apply(&batch).await.unwrap();
    let mut config = env.config();
    config
        .extra_env
        .push(("TIMEZONE".into(), "Asia/Kolkata".into()));
    let mut bot = env.start_bot(&config).await;
    assert!(env.sim.wait_command_registered("history", CONNECT).await);

    // /history: local start and end (the end with its date), the seconds.
    let history = env
        .sim
        .invoke_command(GUILD, TEXT, ALICE, "history", None, CONNECT)
        .await
        .unwrap();
    assert!(history.contains("(times in Asia/Kolkata)"), "{history}");
    let line = format!(
        "`{day_before} 23:30 – {day_after} 00:45` · <#{VC1}> · 📷 45m 0s · 🎧 30m 0s · ⏱️ **1h 15m 0s**"
    );
    assert!(history.contains(&line), "{line} in {history}");

    // /ud: the same seconds, and the chart's bars split at local midnight.
    let card = env
        .sim
        .invoke(GUILD, TEXT, ALICE, "ud", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(card.text.contains("Camera on: **45m 0s**"), "{}", card.text);
    assert!(
        card.text.contains("Camera off: **30m 0s**"),
        "{}",
        card.text
    );
    let (_, png_bytes) = &card.attachments[0];
    let bars = bar_heights(&decode(png_bytes));
    assert_eq!(bars.len(), 2, "one bar per local day: {bars:?}");
    let ((on_before, off_before), (on_after, off_after)) = (bars[0], bars[1]);
    assert_eq!(off_before, 0, "{bars:?}");
    assert!(on_after > 20, "a visible bar: {bars:?}");
    // 30 min : 15 min on; 15 min on : 30 min off (to a pixel of rounding).
    assert!(on_before.abs_diff(2 * on_after) <= 2, "{bars:?}");
    assert!(off_after.abs_diff(2 * on_after) <= 2, "{bars:?}");

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);

    // The CLI: JSON in UTC with the same seconds as the totals; the table local.
    let json = history_json(&env.db.uri, &env.db.name, GUILD, ALICE, &[]).await;
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{json}");
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    assert_eq!(sessions[0]["start"], rfc(midnight - 30 * MIN));
    assert_eq!(sessions[0]["end"], rfc(midnight + 45 * MIN));
    assert_eq!(
        (
            sessions[0]["cam_on_secs"].as_i64(),
            sessions[0]["cam_off_secs"].as_i64()
        ),
        (Some(2700), Some(1800))
    );
    let totals = stats_of(&env.db.uri, &env.db.name, GUILD, ALICE).await;
    assert_eq!(sum(sessions, "cam_on_secs"), totals["voice_cam_on_secs"]);
    assert_eq!(sum(sessions, "cam_off_secs"), totals["voice_cam_off_secs"]);
    let (uri, name) = (env.db.uri.clone(), env.db.name.clone());
    let (status, table, stderr) = tokio::task::spawn_blocking(move || {
        let (g, u) = (GUILD.to_string(), ALICE.to_string());
        run_cli(
            &["history", "--guild", &g, "--user", &u],
            &[
                ("MONGODB_URI", &uri),
                ("MONGODB_DB", &name),
                ("TIMEZONE", "Asia/Kolkata"),
            ],
        )
    })
    .await
    .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        table.contains(&format!("{day_before} 23:30:00  {day_after} 00:45:00")),
        "{table}"
    );
}
