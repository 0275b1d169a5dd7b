//! Rankings come from one read (issue 15, F6), and kept snapshots (F8) are
//! never older than their bound.
//!
//! The first test lets writes land between the reads behind one
//! `/leaderboard` answer: the fault proxy holds the `count` (or the `find`)
//! commands on `member_stats` while twenty members climb above everyone.
//! A page, its count and the caller's rank must then all say the world
//! before the writes, or all the world after: before the fix the page was
//! read before and the count and the caller's rank after ("#36 of 50" under
//! a page whose tenth member had more than the caller and rank 10).

use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use study_tracker::core::leaderboard::{By, Period};
use study_tracker::core::MemberKey;
use study_tracker::store::{BoardPolicy, Store};

use crate::support::db::{fresh_db, TestDb};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};

const G: u64 = 1_700_000_000_000_000_301;
const U: u64 = 1_700_000_000_001_000_000;
const WEEK: &str = "w2026-11-30";

/// A member's totals with `secs` this week (their running week,
/// `store/periods.rs`).
fn week_doc(user: u64, secs: i64) -> Document {
    doc! {
        "_id": format!("{G}:{user}"), "guild_id": G.cast_signed(), "user_id": user.cast_signed(),
        "voice_cam_on_secs": 0_i64, "voice_cam_off_secs": secs, "voice_secs": secs,
        "messages": 0_i64, "seq": 1_i64,
        "week": { "key": WEEK, "voice_cam_on_secs": 0_i64, "voice_cam_off_secs": secs, "voice_secs": secs, "messages": 0_i64 },
    }
}

/// Members `U + 1 ..= U + n` with `step`, `2 × step`, … seconds this week.
async fn seed(db: &TestDb, from: u64, n: u64, secs: impl Fn(u64) -> i64) {
    let docs: Vec<Document> = (from..from + n).map(|i| week_doc(U + i, secs(i))).collect();
    db.db()
        .collection::<Document>("member_stats")
        .insert_many(docs)
        .await
        .unwrap();
}

async fn page_with_writes_between(held: &str) {
    let db = fresh_db().await;
    Store::from_database(db.db())
        .ensure_indexes()
        .await
        .unwrap();
    // 30 members, 100 s apart; the caller (member 15) is #16.
    seed(&db, 1, 30, |i| i64::try_from(i).unwrap() * 100).await;
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let store = Store::connect(&proxy.uri(), &db.name).await.unwrap();
    proxy.delay_command(held, "member_stats", Duration::from_millis(900));
    let caller = U + 15;
    let read = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .leaderboard(G, Period::Week, Some(WEEK), By::Voice, 1, Some(caller))
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Twenty members climb above everyone, written around the proxy.
    seed(&db, 100, 20, |_| 10_000).await;
    let page = read.await.unwrap();
    proxy.delay_command(held, "member_stats", Duration::ZERO);

    let me = page.caller.expect("the caller is ranked");
    let first = page.entries.first().expect("a page").user;
    let (ranked, rank) = if first < U + 100 { (30, 16) } else { (50, 36) };
    assert_eq!(
        (page.ranked, me.rank),
        (ranked, rank),
        "the count and the caller's rank say another moment than the page ({held} held): {page:?}"
    );
    let ranks: Vec<u64> = page.entries.iter().map(|e| e.rank).collect();
    let want: Vec<u64> = if ranked == 30 {
        (1..=10).collect()
    } else {
        vec![1; 10]
    };
    assert_eq!(ranks, want, "the page's own ranks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_its_count_and_the_callers_rank_are_one_read_when_counts_lag() {
    page_with_writes_between("count").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_its_count_and_the_callers_rank_are_one_read_when_finds_lag() {
    page_with_writes_between("find").await;
}

async fn ranked(store: &Store) -> u64 {
    store
        .leaderboard(G, Period::Week, Some(WEEK), By::Voice, 1, Some(U + 1))
        .await
        .unwrap()
        .ranked
}

/// A kept snapshot answers while it is young, is re-read once it is older
/// than half its bound, never answers past the bound, and is forgotten at
/// once by an erasure; a server under `min_members` is read fresh each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_ranking_is_never_older_than_its_bound() {
    const MAX_AGE: Duration = Duration::from_secs(3);
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    store.ensure_indexes().await.unwrap();
    store.keep_boards(BoardPolicy {
        max_age: MAX_AGE,
        min_members: 10,
    });
    let fresh = Store::from_database(db.db());
    fresh.keep_boards(BoardPolicy {
        max_age: MAX_AGE,
        min_members: 1_000,
    });
    seed(&db, 1, 30, |i| i64::try_from(i).unwrap() * 60).await;
    let kept_at = Instant::now();
    assert_eq!(ranked(&store).await, 30);
    assert_eq!(ranked(&fresh).await, 30);

    seed(&db, 31, 5, |_| 60).await;
    assert_eq!(
        ranked(&fresh).await,
        35,
        "a small server's ranking is read fresh"
    );
    let seen = ranked(&store).await;
    if kept_at.elapsed() < MAX_AGE / 2 {
        assert_eq!(seen, 30, "a young snapshot answers");
    }
    // The bound: from the moment it is older than MAX_AGE, nothing older
    // than the writes answers.
    let deadline = kept_at + MAX_AGE;
    loop {
        let now = Instant::now();
        let seen = ranked(&store).await;
        if now > deadline {
            assert_eq!(seen, 35, "a ranking answered past its bound");
            break;
        }
        if seen == 35 {
            // Re-read in the background once older than half the bound.
            assert!(now + Duration::from_millis(50) >= kept_at + MAX_AGE / 2);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An erasure forgets the server's snapshots at once.
    seed(&db, 40, 3, |_| 60).await;
    store
        .delete_member_documents(MemberKey {
            guild: G,
            user: U + 1,
        })
        .await
        .unwrap();
    assert_eq!(ranked(&store).await, 37, "35 + 3 new - 1 erased");
}

/// A snapshot read that began before an erasure is not kept after it: the
/// erased member is never ranked again once the erasure is done, even in a
/// server whose rankings are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_began_before_an_erasure_is_not_kept() {
    let db = fresh_db().await;
    Store::from_database(db.db())
        .ensure_indexes()
        .await
        .unwrap();
    seed(&db, 1, 30, |i| i64::try_from(i).unwrap() * 60).await;
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let store = Store::connect(&proxy.uri(), &db.name).await.unwrap();
    store.keep_boards(BoardPolicy {
        max_age: Duration::from_secs(600),
        min_members: 10,
    });
    // The read reaches the server before the erasure; its reply after.
    proxy.hold_reply("find", "member_stats");
    let early = tokio::spawn({
        let store = store.clone();
        async move { ranked(&store).await }
    });
    assert!(
        crate::support::poll::eventually(Duration::from_secs(5), || async { proxy.holding() })
            .await
    );
    store
        .delete_member_documents(MemberKey {
            guild: G,
            user: U + 30,
        })
        .await
        .unwrap();
    proxy.release_held();
    assert_eq!(early.await.unwrap(), 30, "the read from before the erasure");
    assert_eq!(
        ranked(&store).await,
        29,
        "a snapshot from before the erasure was kept"
    );
}
