//! Probes: the database server's cost per statement (0), and the tracker's
//! memory (5).
//!
//! 0: server probe: the cost of one statement of each shape the benchmark uses,
//! against collections of a given size, directly (no proxy). It shows how the
//! server's cost per statement depends on the filter shape and collection size.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::Client;
use study_tracker::core::tracker::{Tracker, VoiceSession};
use study_tracker::core::{MemberKey, Presence};

use crate::allocator::LIVE;
use crate::helpers::{ms, progress, secs, Lat, CHANNEL0, GUILD0, USER0};
use crate::results::MemRow;
use crate::wiring::db_name;
use crate::Config;

pub struct ProbeRow {
    pub docs: usize,
    pub load: Duration,
    pub shapes: Vec<(&'static str, usize, Lat)>,
}

/// One `update` command with `statements` statements, each on its own document.
pub struct MultiRow {
    pub statements: usize,
    pub existing: bool,
    pub result: Option<Duration>,
}

#[derive(Default)]
pub struct Probes {
    pub rows: Vec<ProbeRow>,
    pub multi: Vec<MultiRow>,
    pub multi_timeout: Duration,
    pub ceiling: Vec<crate::ceiling::CeilingRow>,
}

/// Multi-statement `update` commands on a 400-document collection: with
/// statements that insert and with statements that match existing documents
/// (last: a command that gets no reply may leave the database stuck).
async fn probe_multi(db: &mongodb::Database, timeout: Duration) -> Vec<MultiRow> {
    let coll = db.collection::<Document>("multi");
    let docs: Vec<Document> = (0..400)
        .map(|i| doc! { "_id": format!("m{i}"), "n": 0_i64 })
        .collect();
    coll.insert_many(docs).await.expect("probe multi insert");
    let mut out = Vec::new();
    let mut next = 0;
    let mut fresh = 0;
    for (k, existing) in [(150, false), (50, true), (98, true), (100, true)] {
        let updates: Vec<Document> = (0..k)
            .map(|_| {
                let id = if existing {
                    next += 1;
                    format!("m{}", next - 1)
                } else {
                    fresh += 1;
                    format!("new{fresh}")
                };
                doc! { "q": { "_id": id }, "u": { "$inc": { "n": 1_i64 } }, "upsert": true }
            })
            .collect();
        let t = Instant::now();
        let r = tokio::time::timeout(
            timeout,
            db.run_command(doc! { "update": "multi", "updates": updates, "ordered": false }),
        )
        .await;
        let result = match r {
            Ok(Ok(_)) => Some(t.elapsed()),
            Ok(Err(e)) => {
                eprintln!("probe multi: {k} statements: {e}");
                None
            }
            Err(_) => None,
        };
        progress(&format!(
            "probe: one update with {k} statements ({}): {}",
            if existing {
                "existing docs"
            } else {
                "new docs"
            },
            result.map_or(format!("no reply in {}", secs(timeout)), |d| ms(Some(d)))
        ));
        if result.is_none() {
            // Let the server notice the closed connection and let go.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        out.push(MultiRow {
            statements: k,
            existing,
            result,
        });
    }
    out
}

async fn timed_loop<F, Fut>(count: usize, budget: Duration, mut f: F) -> Lat
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t0 = Instant::now();
    let mut lat = Vec::new();
    for i in 0..count {
        if t0.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        f(i).await;
        lat.push(t.elapsed());
    }
    Lat::new(lat)
}

pub async fn probe(cfg: &Config, uri: &str) -> Probes {
    let client = Client::with_uri_str(uri).await.expect("probe client");
    let db = client.database(&db_name("probe"));
    let multi_timeout = Duration::from_secs(5);
    // Its own database: a command that gets no reply can leave it unusable.
    let multi_db = client.database(&db_name("probe_multi"));
    let multi = probe_multi(&multi_db, multi_timeout).await;
    let mut rows = Vec::new();
    let seq0 = 1_000_000_i64;
    for &m in &cfg.probe_sizes {
        let coll = db.collection::<Document>(&format!("docs_{m}"));
        let t = Instant::now();
        let mut loaded = 0;
        while loaded < m && t.elapsed() < Duration::from_secs(60) {
            let k = (m - loaded).min(1_000);
            let docs: Vec<Document> = (loaded..loaded + k)
                .map(|i| {
                    doc! {
                        "_id": format!("{GUILD0}:{}", USER0 + i as u64),
                        "guild_id": GUILD0 as i64, "user_id": (USER0 + i as u64) as i64,
                        "voice_cam_on_secs": 0_i64, "voice_cam_off_secs": 0_i64,
                        "messages": 0_i64, "seq": seq0,
                    }
                })
                .collect();
            coll.insert_many(docs).await.expect("probe insert");
            loaded += k;
        }
        let load = t.elapsed();
        let n = cfg.probe_statements;
        let budget = Duration::from_secs(if m >= 10_000 { 6 } else { 10 });
        let pick = |i: usize| (i * 7_919) % m.max(1);
        let mut shapes = Vec::new();
        // The baseline's statement: pushed down on FerretDB.
        let c = coll.clone();
        let lat = timed_loop(n, budget, |i| {
            let c = c.clone();
            async move {
                c.update_one(
                    doc! { "_id": format!("{GUILD0}:{}", USER0 + pick(i) as u64) },
                    doc! { "$inc": { "messages": 1_i64 } },
                )
                .upsert(true)
                .await
                .expect("probe update");
            }
        })
        .await;
        shapes.push(("`{_id}` upsert, existing doc (baseline shape)", n, lat));
        // The writer's statement (see store.rs DocOps::statement), one per command.
        let writer_stmt = |id: String, seq: i64| {
            doc! {
                "update": format!("docs_{m}"),
                "updates": [{
                    "q": { "_id": id, "seq": { "$not": { "$gte": seq } } },
                    "u": { "$inc": { "messages": 1_i64 }, "$set": { "seq": seq } },
                    "upsert": true,
                }],
                "ordered": false,
            }
        };
        let dbh = db.clone();
        let lat = timed_loop(n, budget, |i| {
            let (dbh, cmd) = (
                dbh.clone(),
                writer_stmt(
                    format!("{GUILD0}:{}", USER0 + pick(i) as u64),
                    seq0 + 1 + i as i64,
                ),
            );
            async move {
                dbh.run_command(cmd).await.expect("probe writer update");
            }
        })
        .await;
        shapes.push((
            "`{_id, seq: {$not: {$gte}}}` upsert, existing doc (writer shape)",
            n,
            lat,
        ));
        let lat = timed_loop(n, budget, |i| {
            let (dbh, cmd) = (
                dbh.clone(),
                writer_stmt(format!("new:{m}:{i}"), seq0 + 1 + i as i64),
            );
            async move {
                dbh.run_command(cmd).await.expect("probe writer insert");
            }
        })
        .await;
        shapes.push((
            "`{_id, seq: {$not: {$gte}}}` upsert, new doc (writer shape)",
            n,
            lat,
        ));
        let lat = timed_loop(n.min(10), budget, |i| {
            let c = coll.clone();
            async move {
                let _: Vec<Document> = futures::TryStreamExt::try_collect(
                    c.find(doc! { "guild_id": GUILD0 as i64, "user_id": (USER0 + pick(i) as u64) as i64 })
                        .await
                        .expect("probe find"),
                )
                .await
                .expect("probe find");
            }
        })
        .await;
        shapes.push(("`{guild_id, user_id}` find (`/ud` shape)", n.min(10), lat));
        progress(&format!(
            "probe {m} docs: {}",
            shapes
                .iter()
                .map(|(name, _, l)| format!("{name}: p50 {}", l.p50()))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        rows.push(ProbeRow {
            docs: m,
            load,
            shapes,
        });
    }
    let _ = db.drop().await;
    let ceiling = crate::ceiling::ceiling(
        uri,
        &cfg.ceiling_sizes,
        &[100, 1_000],
        &[1, 2, 4],
        cfg.ceiling_budget,
    )
    .await;
    Probes {
        rows,
        multi,
        multi_timeout,
        ceiling,
    }
}

// ---------------------------------------------------------------------------
// 5: tracker memory.

pub fn tracker_memory(n: usize, guilds: u64) -> MemRow {
    let per_guild = n.div_ceil(guilds as usize);
    let mut snapshots = Vec::new();
    let mut left = n;
    for g in 0..guilds {
        let k = per_guild.min(left);
        left -= k;
        let present: Vec<(u64, Presence)> = (0..k as u64)
            .map(|u| {
                (
                    USER0 + u,
                    Presence {
                        channel: CHANNEL0 + u % 20,
                        camera: u % 2 == 0,
                    },
                )
            })
            .collect();
        snapshots.push((GUILD0 + g, present));
    }
    let now = 1_795_687_200_000_i64;
    let before = LIVE.load(Ordering::SeqCst);
    let mut tracker = Tracker::new(300_000);
    for (g, present) in &snapshots {
        drop(tracker.guild_snapshot(*g, present, now));
    }
    drop(tracker.flush(now + 60_000));
    let after = LIVE.load(Ordering::SeqCst);
    assert_eq!(tracker.len(), n);
    let bytes = after.saturating_sub(before);
    // hashbrown: buckets = next_power_of_two(n * 8 / 7), (key, value) + 1 control byte each.
    let buckets = (n * 8).div_ceil(7).next_power_of_two();
    let entry = std::mem::size_of::<(MemberKey, VoiceSession)>();
    let capacity_note = format!(
        "{buckets} buckets × ({entry} B entry + 1 B control) = {} B",
        buckets * (entry + 1)
    );
    drop(tracker);
    MemRow {
        sessions: n,
        bytes,
        capacity_note,
    }
}
