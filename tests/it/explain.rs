//! The reads members wait for use the indexes made for them: the leaderboard
//! page, its count and the caller's rank, the card's ranks, `/ud`'s reads and
//! `/history`'s. The store's own calls go through the fault proxy, which keeps
//! the `find` and `count` commands exactly as the bot sent them; each is then
//! asked of the server with `explain`, and the test fails when a plan scans the
//! collection while an index covers the filter.
//!
//! `DocumentDB` (FerretDB v2) answers `explain` with `PostgreSQL`'s plan: every
//! index scan names its index (`Index Name`), and a collection scan is a scan
//! of the primary key on the collection's shard key alone (`_id_` with no
//! `object_id` condition) or a sequential scan. A server whose `explain` says
//! neither (FerretDB v1) skips the check with a note.

use chrono::Utc;
use mongodb::bson::{doc, Bson, Document};
use study_tracker::core::leaderboard::{voice_rank_keys, By, Period};
use study_tracker::core::MemberKey;
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::store::Store;

use crate::support::db::fresh_db;
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};

const G: u64 = 1_700_000_000_000_000_101;
const OTHER: u64 = 1_700_000_000_000_000_102;
const MEMBERS: u64 = 1_000;

/// What a plan says about how it reads the collection.
#[derive(Debug, Default)]
struct Plan {
    /// Indexes named anywhere in the plan, with their conditions.
    indexes: Vec<(String, String)>,
    /// A sequential scan of a collection's table.
    seq_scan: bool,
}

fn walk(b: &Bson, plan: &mut Plan) {
    match b {
        Bson::Document(d) => {
            if let Ok(name) = d.get_str("Index Name") {
                let cond = d.get_str("Index Cond").unwrap_or("").to_owned();
                plan.indexes.push((name.to_owned(), cond));
            }
            if d.get_str("Node Type") == Ok("Seq Scan")
                && d.get_str("Relation Name")
                    .is_ok_and(|r| r.starts_with("documents_"))
            {
                plan.seq_scan = true;
            }
            for (_, v) in d {
                walk(v, plan);
            }
        }
        Bson::Array(a) => a.iter().for_each(|v| walk(v, plan)),
        _ => {}
    }
}

impl Plan {
    /// Reads the whole collection: a sequential scan, or the primary key on
    /// the shard key alone (how `DocumentDB` walks a collection).
    fn scans(&self) -> bool {
        self.seq_scan
            || self
                .indexes
                .iter()
                .all(|(name, cond)| name == "_id_" && !cond.contains("object_id"))
    }
}

fn voice(user: u64, guild: u64, from: i64, secs: i64) -> Op {
    Op::Voice {
        guild,
        user,
        channel: 7,
        camera: user.is_multiple_of(3),
        segment_start: from,
        from,
        to: from + secs * 1000,
        days: None,
        tz: Some(chrono_tz::UTC),
    }
}

#[tokio::test]
async fn member_reads_use_their_indexes() {
    let db = fresh_db().await;
    let direct = Store::connect(&db.uri, &db.name).await.unwrap();
    direct.prepare().await.unwrap();

    // Two guilds of members, each with a voice credit and messages today,
    // written by the writer's own apply (the rollups' real shape).
    let now = Utc::now().timestamp_millis();
    let from = now - 3_600_000;
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let mut ops = Vec::new();
    for guild in [G, OTHER] {
        for i in 0..MEMBERS {
            let user = 1_000 + i;
            ops.push(voice(
                user,
                guild,
                from,
                60 + i64::try_from(i % 500).unwrap(),
            ));
            ops.push(Op::Message {
                guild,
                user,
                day: today.clone(),
                count: u32::try_from(i % 7).unwrap() + 1,
                max_id: None,
            });
        }
    }
    let batch: Vec<Sequenced> = ops
        .into_iter()
        .zip(1_000..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 1 })
        .collect();
    for chunk in batch.chunks(4_000) {
        direct.apply(chunk).await.unwrap();
    }
    // What a long-running server has: statistics for the planner.
    let _ = db.db().run_command(doc! { "analyze": "member_days" }).await;

    // The store's reads, through the proxy that keeps what they send.
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let store = Store::connect(&proxy.uri(), &db.name).await.unwrap();
    store.detect_server().await.unwrap();
    proxy.capture(&["find", "count"]);
    let caller = 1_000 + MEMBERS / 2;
    let member = MemberKey {
        guild: G,
        user: caller,
    };
    let keys = voice_rank_keys(now, chrono_tz::UTC);
    for period in [Period::Today, Period::Week, Period::Month, Period::All] {
        let key = period.key_at(now, chrono_tz::UTC);
        for by in [By::Voice, By::Camera, By::Messages] {
            store
                .leaderboard(G, period, key.as_deref(), by, 3, Some(caller))
                .await
                .unwrap();
        }
    }
    store
        .voice_ranks(member, [&keys[0], &keys[1], &keys[2]])
        .await
        .unwrap();
    store.member(member, from - 1, &today).await.unwrap();
    store.history(member, 10).await.unwrap();
    let sent = proxy.captured();
    assert!(sent.len() >= 20, "only {} reads were seen", sent.len());

    let mut failures = Vec::new();
    let mut unsure = 0;
    for mut cmd in sent {
        for k in [
            "$db",
            "lsid",
            "$clusterTime",
            "$readPreference",
            "readConcern",
        ] {
            cmd.remove(k);
        }
        let reply = db
            .db()
            .run_command(doc! { "explain": cmd.clone(), "verbosity": "queryPlanner" })
            .await
            .unwrap_or_else(|e| panic!("explain {cmd}: {e}"));
        let mut plan = Plan::default();
        walk(&Bson::Document(reply.clone()), &mut plan);
        if plan.indexes.is_empty() && !plan.seq_scan {
            unsure += 1;
            continue;
        }
        if plan.scans() {
            failures.push(format!("{cmd}\n  plan: {}", compact(&reply)));
        }
    }
    if unsure > 0 && failures.is_empty() && db.is_ferretdb_v1().await {
        eprintln!(
            "explain: this server's explain names no index or scan (FerretDB v1); check skipped"
        );
        return;
    }
    assert_eq!(unsure, 0, "plans that say neither an index nor a scan");
    assert!(
        failures.is_empty(),
        "reads that scan the collection:\n{}",
        failures.join("\n")
    );
}

fn compact(d: &Document) -> String {
    let s = d.to_string();
    s.chars().take(600).collect()
}
