//! Session restore at start-up: `cargo bench --bench restore [-- --quick]`.
//!
//! Seeds N open session checkpoints (with their totals' resume points) in a
//! fresh database on the test suite's server (FerretDB v2 on `DocumentDB` unless
//! `MONGODB_TEST_URI` is set or `mongod` is on PATH), then times
//! `Store::open_sessions` through the test suite's fault proxy at 0 and 20 ms
//! of added round trip, counting the round trips (`find` + `getMore`) the
//! proxy forwards. For comparison it also times the previous approach (one
//! `find_one` per open session for its resume point) where that finishes in
//! reasonable time. Prints a markdown table and writes it to
//! `target/bench-restore.md`.

// A measurement program: counts and durations are converted for printing.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]

#[allow(dead_code)]
#[path = "../tests/it/support/db.rs"]
mod db;
#[allow(dead_code)]
#[path = "../tests/it/support/fault_proxy.rs"]
mod fault_proxy;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};
use study_tracker::store::Store;

use fault_proxy::{socket_addr_of, FaultProxy};

const G: i64 = 1_100_000_000_000_000_001;
const U: i64 = 1_200_000_000_000_000_000;
const T0: i64 = 1_795_687_200_000;

struct Row {
    sessions: u64,
    rtt_ms: u64,
    approach: &'static str,
    round_trips: u64,
    secs: f64,
    restored: usize,
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[u64] = if quick { &[1_000] } else { &[1_000, 10_000] };
    let delays = [0_u64, 20];
    let uri = tokio::task::spawn_blocking(db::server_uri)
        .await
        .expect("server")
        .to_owned();
    let mut rows = Vec::new();
    for &n in sizes {
        let name = format!("bench_restore_{n}_{:08x}", rand::random::<u32>());
        seed(&uri, &name, n).await;
        for &rtt in &delays {
            let proxy = FaultProxy::start(socket_addr_of(&uri)).await;
            proxy.set_delay(Duration::from_millis(rtt));
            let store = Store::connect(&proxy.uri(), &name).await.expect("store");
            // Connect (handshakes are not counted below).
            store
                .database()
                .run_command(doc! { "ping": 1 })
                .await
                .expect("ping");
            let trips = || proxy.requests("find") + proxy.requests("getMore");
            let before = trips();
            let started = Instant::now();
            let found = store
                .open_sessions(tokio::time::Instant::now() + Duration::from_secs(600))
                .await
                .expect("open_sessions");
            rows.push(Row {
                sessions: n,
                rtt_ms: rtt,
                approach: "one query + one `$in` per 10,000 (this version)",
                round_trips: trips() - before,
                secs: started.elapsed().as_secs_f64(),
                restored: found.sessions.len(),
            });
            eprintln!("[restore] {n} sessions, +{rtt} ms: done");
            // The previous approach costs one round trip per session: run it
            // where it ends within about a minute.
            if n * (rtt + 2) <= 60_000 {
                let before = trips();
                let started = Instant::now();
                let restored = one_find_one_per_session(&store).await;
                rows.push(Row {
                    sessions: n,
                    rtt_ms: rtt,
                    approach: "one `find_one` per session (previous version)",
                    round_trips: trips() - before,
                    secs: started.elapsed().as_secs_f64(),
                    restored,
                });
            }
            proxy.shutdown();
        }
    }
    let mut out = String::from(
        "| open sessions | added RTT | approach | round trips | seconds | restored |\n|---:|---:|---|---:|---:|---:|\n",
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {} ms | {} | {} | {:.2} | {} |",
            r.sessions, r.rtt_ms, r.approach, r.round_trips, r.secs, r.restored
        );
    }
    println!("{out}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-restore.md");
    if let Err(e) = std::fs::write(&path, &out) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

/// N open checkpoints and their members' totals with a resume point.
async fn seed(uri: &str, name: &str, n: u64) {
    let client = mongodb::Client::with_uri_str(uri).await.expect("client");
    let db = client.database(name);
    let n = n as i64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let sessions: Vec<Document> = chunk
            .iter()
            .map(|i| {
                doc! {
                    "_id": format!("{G}:{}", U + i), "guild_id": G, "user_id": U + i,
                    "open": true, "channel_id": 7_i64, "camera": i % 2 == 0,
                    "segment_start": DateTime::from_millis(T0), "seq": 1_i64,
                }
            })
            .collect();
        let stats: Vec<Document> = chunk
            .iter()
            .map(|i| {
                doc! {
                    "_id": format!("{G}:{}", U + i), "guild_id": G, "user_id": U + i,
                    "voice_cam_on_secs": 60_i64, "credited_until": DateTime::from_millis(T0 + 60_000),
                    "seq": 1_i64,
                }
            })
            .collect();
        let segments: Vec<Document> = chunk
            .iter()
            .map(|i| {
                doc! {
                    "_id": format!("{G}:{}:{T0}", U + i), "guild_id": G, "user_id": U + i,
                    "end": DateTime::from_millis(T0 + 60_000), "seq": 1_i64,
                }
            })
            .collect();
        db.collection::<Document>("voice_sessions")
            .insert_many(sessions)
            .await
            .expect("seed");
        db.collection::<Document>("member_stats")
            .insert_many(stats)
            .await
            .expect("seed");
        db.collection::<Document>("voice_segments")
            .insert_many(segments)
            .await
            .expect("seed");
    }
    db.collection::<Document>("voice_sessions")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "open": 1 })
                .build(),
        )
        .await
        .expect("index");
}

/// The previous version's restore: the open checkpoints, then one
/// `find_one` per session for its segment's end.
async fn one_find_one_per_session(store: &Store) -> usize {
    let db = store.database();
    let open: Vec<Document> = db
        .collection::<Document>("voice_sessions")
        .find(doc! { "open": true })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    let mut restored = 0;
    for s in &open {
        let (Ok(g), Ok(u), Ok(start)) = (
            s.get_i64("guild_id"),
            s.get_i64("user_id"),
            s.get_datetime("segment_start"),
        ) else {
            continue;
        };
        let id = format!("{g}:{u}:{}", start.timestamp_millis());
        if db
            .collection::<Document>("voice_segments")
            .find_one(doc! { "_id": id })
            .await
            .expect("find_one")
            .is_some()
        {
            restored += 1;
        }
    }
    restored
}
