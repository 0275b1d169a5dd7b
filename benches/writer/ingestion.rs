//! 1-3: ingestion.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use study_tracker::app::now_millis;
use study_tracker::core::MemberKey;
use study_tracker::durable::writer::Writer;

use crate::ack::AckPoller;
use crate::helpers::{member, progress, Lat, TZ};
use crate::results::IngestRow;
use crate::servers::FaultProxy;
use crate::wiring::{db_name, start_bot, wait_idle_fine};
use crate::Config;

/// The pattern the writer replaces: one awaited upsert per message.
async fn baseline_update(coll: &mongodb::Collection<Document>, m: MemberKey) {
    coll.update_one(
        doc! { "_id": format!("{}:{}", m.guild, m.user) },
        doc! {
            "$inc": { "messages": 1_i64 },
            "$set": { "guild_id": m.guild as i64, "user_id": m.user as i64 },
        },
    )
    .upsert(true)
    .await
    .expect("baseline update_one");
}

/// A member drawn uniformly from `members`, spread over `guilds` guilds.
fn pick(rng: &mut StdRng, members: u64, guilds: u64) -> MemberKey {
    let i = rng.gen_range(0..members);
    member(i % guilds, i / guilds)
}

/// Steady state before a run: every member already has its documents (what a
/// bot that has been running for a while sees), so both paths update existing
/// documents in collections of `members` documents. `writer_shape`: the
/// store's `member_stats` (with today's running day, week and month) and
/// today's `member_days` documents (ids as in the store); otherwise the
/// baseline's `member_stats`.
async fn preload(db: &mongodb::Database, members: u64, guilds: u64, writer_shape: bool) {
    let day = study_tracker::core::calendar::local_day(now_millis(), TZ);
    let all: Vec<MemberKey> = (0..members)
        .map(|i| member(i % guilds, i / guilds))
        .collect();
    let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").expect("local day");
    let keys = [
        ("day", day.clone()),
        ("week", study_tracker::core::calendar::week_key(date)),
        ("month", study_tracker::core::calendar::month_key(date)),
    ];
    for chunk in all.chunks(1_000) {
        let stats: Vec<Document> = chunk
            .iter()
            .map(|m| {
                let mut d = doc! {
                    "_id": format!("{}:{}", m.guild, m.user),
                    "guild_id": m.guild as i64, "user_id": m.user as i64, "messages": 0_i64,
                };
                if writer_shape {
                    d.insert("voice_cam_on_secs", 0_i64);
                    d.insert("voice_cam_off_secs", 0_i64);
                    d.insert("seq", 0_i64);
                    // The running periods (store/periods.rs) at today's keys.
                    for (field, key) in &keys {
                        d.insert(
                            *field,
                            doc! { "key": key, "messages": 0_i64, "voice_secs": 0_i64 },
                        );
                    }
                }
                d
            })
            .collect();
        db.collection::<Document>("member_stats")
            .insert_many(stats)
            .await
            .expect("preload member_stats");
        if writer_shape {
            let docs: Vec<Document> = chunk
                .iter()
                .map(|m| {
                    doc! {
                        "_id": format!("{}:{}:{day}", m.guild, m.user),
                        "guild_id": m.guild as i64, "user_id": m.user as i64,
                        "day": &day, "messages": 0_i64, "voice_secs": 0_i64, "seq": 0_i64,
                    }
                })
                .collect();
            db.collection::<Document>("member_days")
                .insert_many(docs)
                .await
                .expect("preload member_days");
        }
    }
}

/// Waits until the writer's applied counter reaches `target`, or `budget`.
async fn wait_applied(writer: &Writer, target: u64, budget: Duration) -> bool {
    let deadline = Instant::now() + budget;
    loop {
        if writer.status().applied >= target {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn ingestion(
    cfg: &Config,
    proxy: &FaultProxy,
    delay_ms: u64,
    members: u64,
    paced: bool,
    apply_batch: Option<usize>,
    writer_max: usize,
    drain_budget: Duration,
) -> IngestRow {
    let guilds = cfg.guilds;
    let mut row = IngestRow {
        writer_label: match apply_batch {
            None => "writer (`App::message`, defaults)".into(),
            Some(n) => format!("writer (`App::message`, apply_batch {n})"),
        },
        delay_ms,
        members,
        paced,
        ..IngestRow::default()
    };
    proxy.set_delay(Duration::from_millis(delay_ms));
    let mut rng = StdRng::seed_from_u64(42 + delay_ms + members);

    // --- baseline, burst ---
    let client = Client::with_uri_str(proxy.uri_with("appName=bench-baseline"))
        .await
        .expect("baseline client");
    let bdb = client.database(&db_name("baseline"));
    bdb.run_command(doc! { "ping": 1 }).await.expect("ping");
    preload(&bdb, members, guilds, false).await;
    let coll = bdb.collection::<Document>("member_stats");
    baseline_update(&coll, pick(&mut rng, members, guilds)).await; // connection + collection
    let mut lat = Vec::new();
    let t0 = Instant::now();
    while lat.len() < cfg.baseline_max && t0.elapsed() < cfg.baseline_budget {
        let m = pick(&mut rng, members, guilds);
        let t = Instant::now();
        baseline_update(&coll, m).await;
        lat.push(t.elapsed());
    }
    let elapsed = t0.elapsed();
    row.base_n = lat.len();
    row.base_rate = lat.len() as f64 / elapsed.as_secs_f64();
    row.base_lat = Lat::new(lat);
    progress(&format!(
        "rtt +{delay_ms} ms, {members} members: baseline burst {} msgs, {:.0} msgs/s",
        row.base_n, row.base_rate
    ));

    // --- writer, burst, with /ud calls alongside ---
    let name = db_name("ingest");
    preload(&client.database(&name), members, guilds, true).await;
    let bot = start_bot(&proxy.uri(), &name, apply_batch).await;
    bot.app
        .message(pick(&mut rng, members, guilds), now_millis()); // connection + collections
    if !wait_idle_fine(&bot.writer, Duration::from_secs(20)).await {
        eprintln!("warning: the writer's warm-up message was not applied in 20 s");
    }
    let mut ud_idle = Vec::new();
    for _ in 0..cfg.ud_idle_calls {
        let m = pick(&mut rng, members, guilds);
        let t = Instant::now();
        let _ = bot.app.member_stats(m, now_millis()).await;
        ud_idle.push(t.elapsed());
    }
    row.ud_idle = Lat::new(ud_idle);

    let base = bot.writer.status().applied;
    let cmd0 = bot.writer.status().commands;
    // The writer's `update` commands, to count their statements (documents
    // written; `/ud`'s reads are `find`s and not kept).
    proxy.capture(&["update"]);
    let poller = AckPoller::start(bot.writer.clone());
    let stop_ud = Arc::new(AtomicBool::new(false));
    let ud_task = {
        let app = bot.app.clone();
        let stop = stop_ud.clone();
        let pause = cfg.ud_pause;
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(7);
            let mut lat = Vec::new();
            // Bounded by count as well as by the stop flag.
            while !stop.load(Ordering::Relaxed) && lat.len() < 100_000 {
                let m = pick(&mut rng, members, guilds);
                let t = Instant::now();
                let _ = app.member_stats(m, now_millis()).await;
                lat.push(t.elapsed());
                tokio::time::sleep(pause).await;
            }
            lat
        })
    };
    let mut events = Vec::with_capacity(writer_max);
    let mut submit_lat = Vec::with_capacity(writer_max);
    let t0 = Instant::now();
    while events.len() < writer_max && t0.elapsed() < cfg.writer_budget {
        let m = pick(&mut rng, members, guilds);
        let t = Instant::now();
        events.push(t);
        bot.app.message(m, now_millis());
        submit_lat.push(t.elapsed());
    }
    let n = events.len();
    let drained = wait_applied(&bot.writer, base + n as u64, drain_budget).await;
    let window_end = Instant::now();
    stop_ud.store(true, Ordering::Relaxed);
    let log = poller.finish();
    row.ud = Lat::new(ud_task.await.expect("ud task"));
    let acks = log.ack_times(base, n);
    let mut lat = Vec::with_capacity(n);
    let mut last_ack = t0;
    for (ev, ack) in events.iter().zip(&acks) {
        if let Some(a) = ack {
            lat.push(a.saturating_duration_since(*ev));
            last_ack = last_ack.max(*a);
        }
    }
    row.writer_n = n;
    row.writer_acked = lat.len();
    // Drained: messages over first event → last ack. Otherwise: what was
    // acknowledged over the whole (bounded) window.
    row.writer_window = if drained {
        last_ack - t0
    } else {
        window_end - t0
    };
    row.writer_rate = lat.len() as f64 / row.writer_window.as_secs_f64();
    row.writer_lat = Lat::new(lat);
    row.writer_submit_lat = Lat::new(submit_lat);
    row.writer_rt = bot.writer.status().commands - cmd0;
    proxy.capture(&[]);
    row.writer_statements = proxy
        .captured()
        .iter()
        .map(|c| c.get_array("updates").map_or(0, Vec::len) as u64)
        .sum();
    row.sample_err = log.worst_sample;
    progress(&format!(
        "rtt +{delay_ms} ms, {members} members: writer burst {} of {n} msgs acked, {:.0} msgs/s, {} update commands, /ud {} calls",
        row.writer_acked,
        row.writer_rate,
        row.writer_rt,
        row.ud.sorted.len()
    ));
    bot.stop().await;

    if paced {
        // --- paced: open loop, cfg.paced_rate messages per second ---
        let period = Duration::from_secs(1) / cfg.paced_rate;
        let count = (cfg.paced_rate * cfg.paced_secs) as usize;
        // Writer (a fresh one: nothing left over from the burst).
        let name = db_name("paced");
        preload(&client.database(&name), members, guilds, true).await;
        let bot = start_bot(&proxy.uri(), &name, apply_batch).await;
        bot.app
            .message(pick(&mut rng, members, guilds), now_millis());
        wait_idle_fine(&bot.writer, Duration::from_secs(20)).await;
        let base = bot.writer.status().applied;
        let cmd0 = bot.writer.status().commands;
        let poller = AckPoller::start(bot.writer.clone());
        let start = Instant::now() + Duration::from_millis(20);
        let mut arrivals = Vec::with_capacity(count);
        for i in 0..count {
            let at = start + period * i as u32;
            tokio::time::sleep_until(at.into()).await;
            arrivals.push(at);
            bot.app
                .message(pick(&mut rng, members, guilds), now_millis());
        }
        wait_applied(&bot.writer, base + count as u64, cfg.drain_budget).await;
        let log = poller.finish();
        let lat: Vec<Duration> = arrivals
            .iter()
            .zip(log.ack_times(base, count))
            .filter_map(|(ev, ack)| ack.map(|a| a.saturating_duration_since(*ev)))
            .collect();
        row.paced_writer_n = count;
        row.paced_writer_acked = lat.len();
        row.paced_writer = Lat::new(lat);
        row.paced_writer_rt = bot.writer.status().commands - cmd0;
        bot.stop().await;

        // Baseline: the same arrivals, handled one after the other.
        let start = Instant::now() + Duration::from_millis(20);
        let last_arrival = start + period * count as u32;
        let mut lat = Vec::with_capacity(count);
        for i in 0..count {
            let at = start + period * i as u32;
            if Instant::now() < at {
                tokio::time::sleep_until(at.into()).await;
            }
            if Instant::now() > last_arrival + cfg.paced_drain {
                break;
            }
            baseline_update(&coll, pick(&mut rng, members, guilds)).await;
            lat.push(at.elapsed());
        }
        row.paced_base_n = count;
        row.paced_base_acked = lat.len();
        row.paced_base = Lat::new(lat);
        progress(&format!(
            "rtt +{delay_ms} ms: paced {} msgs/s: writer p99 {}, baseline p99 {} ({} of {count} acked)",
            cfg.paced_rate,
            row.paced_writer.p99(),
            row.paced_base.p99(),
            row.paced_base_acked
        ));
    }
    let _ = bdb.drop().await;
    row
}
