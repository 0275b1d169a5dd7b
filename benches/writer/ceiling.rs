//! The server's own ceiling: statements per second in the writer's command
//! shape (one `update` of k seq-guarded upserts, `ordered: false`, each on its
//! own document), one command at a time and with c commands in flight, on a
//! collection of a given size. The writer's throughput is reported as a
//! fraction of it: where the server cannot do 100× the baseline, this says
//! so, and how close the writer comes.

use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use mongodb::bson::{doc, DateTime, Document};
use mongodb::{Client, Database};

use crate::helpers::{progress, GUILD0, USER0};
use crate::wiring::db_name;

pub struct CeilingRow {
    pub docs: usize,
    /// The collection carries `member_stats`' indexes (`rank_*`), as the
    /// writer's collections do; otherwise only `_id`.
    pub indexed: bool,
    pub statements: usize,
    pub in_flight: usize,
    pub existing: bool,
    pub commands: usize,
    pub per_sec: f64,
    pub command_p50: Duration,
}

/// One statement in the writer's shape (`store/statements.rs`): the seq
/// guard, the increments, the `$max` and the identity fields.
fn statement(id: String, user: i64, seq: i64) -> Document {
    doc! {
        "q": { "_id": id, "seq": { "$not": { "$gte": seq } } },
        "u": {
            "$inc": { "voice_cam_on_secs": 1_i64, "voice_cam_off_secs": 0_i64, "voice_secs": 1_i64, "messages": 1_i64 },
            "$set": { "guild_id": GUILD0 as i64, "user_id": user, "seq": seq },
            "$max": { "credited_until": DateTime::from_millis(seq) },
        },
        "upsert": true,
    }
}

/// `member_stats`' secondary indexes on this server (`store/schema.rs`):
/// what every write to that collection also updates. On FerretDB (which
/// cannot walk an index in order) the store keeps `rank_voice` alone.
async fn index_like_member_stats(db: &Database, coll: &str) {
    let info = db
        .run_command(doc! { "buildInfo": 1 })
        .await
        .expect("buildInfo");
    let ferretdb = info.contains_key("ferretdb") || info.contains_key("ferretdbVersion");
    let all = [
        ("voice_secs", "rank_voice"),
        ("voice_cam_on_secs", "rank_camera"),
        ("messages", "rank_messages"),
    ];
    for (metric, name) in &all[..if ferretdb { 1 } else { 3 }] {
        db.run_command(doc! { "createIndexes": coll, "indexes": [{
            "key": { "guild_id": 1, *metric: -1, "user_id": 1 }, "name": *name,
        }] })
        .await
        .expect("ceiling index");
    }
}

async fn load(db: &Database, coll: &str, n: usize) {
    let c = db.collection::<Document>(coll);
    let mut loaded = 0;
    while loaded < n {
        let k = (n - loaded).min(1_000);
        let docs: Vec<Document> = (loaded..loaded + k)
            .map(|i| {
                let user = (USER0 + i as u64) as i64;
                doc! {
                    "_id": format!("{GUILD0}:{user}"), "guild_id": GUILD0 as i64, "user_id": user,
                    "voice_cam_on_secs": 0_i64, "voice_cam_off_secs": 0_i64, "voice_secs": 0_i64,
                    "messages": 0_i64, "seq": 1_i64,
                }
            })
            .collect();
        c.insert_many(docs).await.expect("ceiling load");
        loaded += k;
    }
}

/// Sends commands of `k` statements, `c` at a time, for `budget` (at least
/// `c` commands), each statement on a different document of `docs` (or on new
/// documents); returns statements per second and the command p50.
#[allow(clippy::too_many_arguments)]
async fn run(
    db: &Database,
    coll: &str,
    docs: usize,
    k: usize,
    c: usize,
    existing: bool,
    budget: Duration,
    seq: &mut i64,
) -> CeilingRow {
    let mut next_doc = 0usize;
    let mut fresh = 0usize;
    let mut make = |seq: &mut i64| {
        let updates: Vec<Document> = (0..k)
            .map(|_| {
                *seq += 1;
                let user = if existing {
                    next_doc = (next_doc + 7_919) % docs;
                    (USER0 + next_doc as u64) as i64
                } else {
                    fresh += 1;
                    (USER0 + 10_000_000 + fresh as u64) as i64
                };
                statement(format!("{GUILD0}:{user}"), user, *seq)
            })
            .collect();
        doc! { "update": coll, "updates": updates, "ordered": false }
    };
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut sent = 0usize;
    let mut pending = FuturesUnordered::new();
    loop {
        while pending.len() < c && (t0.elapsed() < budget || sent < c) {
            let cmd = make(seq);
            let db = db.clone();
            sent += 1;
            pending.push(async move {
                let t = Instant::now();
                let r = db.run_command(cmd).await.expect("ceiling update");
                assert!(
                    r.get_array("writeErrors").map_or(true, Vec::is_empty),
                    "ceiling: write errors {r}"
                );
                t.elapsed()
            });
        }
        match pending.next().await {
            Some(d) => lat.push(d),
            None => break,
        }
    }
    let wall = t0.elapsed();
    lat.sort_unstable();
    CeilingRow {
        docs,
        indexed: false,
        statements: k,
        in_flight: c,
        existing,
        commands: lat.len(),
        per_sec: (lat.len() * k) as f64 / wall.as_secs_f64(),
        command_p50: lat[lat.len() / 2],
    }
}

/// The ceiling on collections of each size in `sizes`, for commands of each
/// size in `statements`, at 1 and at each of `in_flight` commands at once.
pub async fn ceiling(
    uri: &str,
    sizes: &[usize],
    statements: &[usize],
    in_flight: &[usize],
    budget: Duration,
) -> Vec<CeilingRow> {
    let client = Client::with_uri_str(uri).await.expect("ceiling client");
    let db = client.database(&db_name("ceiling"));
    let mut rows = Vec::new();
    let mut seq = 1_i64;
    for &n in sizes {
        for indexed in [false, true] {
            let coll = format!("stats_{n}_{indexed}");
            load(&db, &coll, n).await;
            if indexed {
                index_like_member_stats(&db, &coll).await;
            }
            for &k in statements {
                for &c in in_flight {
                    for existing in [true, false] {
                        let mut r = run(&db, &coll, n, k, c, existing, budget, &mut seq).await;
                        r.indexed = indexed;
                        progress(&format!(
                            "ceiling: {n} docs{}, {k} statements × {c} in flight ({}): {:.0} statements/s, command p50 {:.1} ms",
                            if indexed { " with member_stats' indexes" } else { "" },
                            if existing { "updates" } else { "inserts" },
                            r.per_sec,
                            r.command_p50.as_secs_f64() * 1000.0
                        ));
                        rows.push(r);
                    }
                }
            }
        }
    }
    let _ = db.drop().await;
    rows
}
