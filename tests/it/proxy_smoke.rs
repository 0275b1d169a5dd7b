//! The fault proxy against the real test server: pass-through, request
//! counting, dropped replies (applied but unacknowledged), outage and
//! recovery, added latency, blackhole, connection resets.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::{Client, Collection};

use crate::support::db::{fresh_db, TestDb};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::poll::eventually;

/// Fail fast: a proxied outage must not stall a test for the driver's 30 s.
const FAST: &str = "serverSelectionTimeoutMS=1000&connectTimeoutMS=1000";

struct Setup {
    db: TestDb,
    proxy: FaultProxy,
    /// A client that talks to the server through the proxy.
    client: Client,
}

impl Setup {
    async fn new() -> Setup {
        let db = fresh_db().await;
        let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
        let client = Client::with_uri_str(proxy.uri_with(FAST))
            .await
            .expect("proxied client");
        Setup { db, proxy, client }
    }

    /// The collection through the proxy.
    fn proxied(&self) -> Collection<Document> {
        self.client.database(&self.db.name).collection("items")
    }

    /// The same collection, straight to the server.
    fn direct(&self) -> Collection<Document> {
        self.db.db().collection("items")
    }
}

#[test]
fn socket_addr_of_parses_uris() {
    assert_eq!(
        socket_addr_of("mongodb://localhost:1234/"),
        "127.0.0.1:1234".parse().unwrap()
    );
    assert_eq!(
        socket_addr_of("mongodb://u:p@127.0.0.1:5/db?x=1"),
        "127.0.0.1:5".parse().unwrap()
    );
    assert_eq!(socket_addr_of("mongodb://127.0.0.1").port(), 27017);
    assert_eq!(
        socket_addr_of("mongodb://[::1]:9,h:1/?replicaSet=r"),
        "[::1]:9".parse().unwrap()
    );
}

#[tokio::test]
async fn passes_traffic_through() {
    let s = Setup::new().await;
    assert!(s.proxy.uri().starts_with("mongodb://127.0.0.1:"));
    assert!(s.proxy.uri().ends_with("/?directConnection=true"));

    s.proxied()
        .insert_one(doc! { "_id": 1, "v": "through the proxy" })
        .await
        .unwrap();
    let got = s
        .proxied()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .expect("doc via proxy");
    assert_eq!(got.get_str("v").unwrap(), "through the proxy");
    let direct = s
        .direct()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .expect("doc direct");
    assert_eq!(direct.get_str("v").unwrap(), "through the proxy");

    assert_eq!(s.proxy.requests("insert"), 1);
    assert_eq!(s.proxy.requests("find"), 1);
    assert!(s.proxy.requests("") >= 2);
    assert_eq!(s.proxy.dropped_replies(), 0);
    assert!(s.proxy.connections() >= 1);
}

#[tokio::test]
async fn counts_requests_by_command() {
    let s = Setup::new().await;
    s.direct()
        .insert_one(doc! { "_id": 1, "n": 0 })
        .await
        .unwrap();
    for _ in 0..3 {
        s.proxied()
            .update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } })
            .await
            .unwrap();
    }
    assert_eq!(s.proxy.requests("update"), 3);
    assert_eq!(s.proxy.requests("insert"), 0, "the insert went direct");
    assert!(s.proxy.requests("") >= 3);
    let n = s
        .direct()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn dropped_reply_is_applied_but_unacknowledged() {
    let s = Setup::new().await;
    s.direct()
        .insert_one(doc! { "_id": 1, "n": 0 })
        .await
        .unwrap();
    // Warm up, so that the fault hits the operation and not the handshake.
    s.proxied().find_one(doc! {}).await.unwrap();

    s.proxy.drop_replies("update", 1);
    let res = s
        .proxied()
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 1 } })
        .await;
    assert!(res.is_err(), "the client must not see the reply: {res:?}");
    assert!(s.proxy.dropped_replies() >= 1);
    assert!(s.proxy.requests("update") >= 1);

    let n = s
        .direct()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(n, 1, "the update reached the server");

    // Other commands are untouched; disabling the rule restores updates.
    s.proxied()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .expect("find still works");
    s.proxy.drop_replies("update", 0);
    s.proxied()
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 2 } })
        .await
        .unwrap();
    let n = s
        .direct()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn drop_replies_every_nth() {
    let s = Setup::new().await;
    s.direct()
        .insert_one(doc! { "_id": 1, "n": 0 })
        .await
        .unwrap();
    s.proxy.drop_replies("update", 2);
    let mut failed = 0;
    for _ in 0..4 {
        if s.proxied()
            .update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } })
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    assert_eq!(failed, 2);
    assert_eq!(s.proxy.dropped_replies(), 2);
    let n = s
        .direct()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(n, 4, "all four updates were applied");
}

#[tokio::test]
async fn outage_fails_fast_and_recovers() {
    let s = Setup::new().await;
    s.proxied().insert_one(doc! { "_id": 1 }).await.unwrap();

    s.proxy.set_down(true);
    for _ in 0..2 {
        let t = Instant::now();
        let res = s.proxied().find_one(doc! { "_id": 1 }).await;
        assert!(res.is_err(), "operation during outage: {res:?}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
    }
    // A brand-new client cannot connect either.
    let fresh = Client::with_uri_str(s.proxy.uri_with(FAST)).await.unwrap();
    let res = fresh
        .database(&s.db.name)
        .run_command(doc! { "ping": 1 })
        .await;
    assert!(res.is_err(), "ping during outage: {res:?}");

    s.proxy.set_down(false);
    let recovered = eventually(Duration::from_secs(10), || async {
        matches!(s.proxied().find_one(doc! { "_id": 1 }).await, Ok(Some(_)))
    })
    .await;
    assert!(recovered, "no recovery after the outage");
}

#[tokio::test]
async fn delay_adds_round_trip_latency() {
    let s = Setup::new().await;
    s.proxied().insert_one(doc! { "_id": 1 }).await.unwrap(); // warm up

    let rtt = Duration::from_millis(200);
    s.proxy.set_delay(rtt);
    for _ in 0..2 {
        let t = Instant::now();
        s.proxied()
            .find_one(doc! { "_id": 1 })
            .await
            .unwrap()
            .unwrap();
        let took = t.elapsed();
        assert!(took >= rtt * 9 / 10, "one round trip took only {took:?}");
    }

    s.proxy.set_delay(Duration::ZERO);
    let t = Instant::now();
    s.proxied()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn blackhole_hangs_until_client_timeout() {
    let s = Setup::new().await;
    s.proxied().insert_one(doc! { "_id": 1 }).await.unwrap();
    let before = s.proxy.requests("find");

    s.proxy.set_blackhole(true);
    let res = tokio::time::timeout(Duration::from_millis(500), s.proxied().find_one(doc! {})).await;
    assert!(res.is_err(), "blackholed operation must hang: {res:?}");
    assert_eq!(s.proxy.requests("find"), before, "nothing was forwarded");

    s.proxy.set_blackhole(false);
    let client = Client::with_uri_str(s.proxy.uri_with(FAST)).await.unwrap();
    let coll: Collection<Document> = client.database(&s.db.name).collection("items");
    coll.find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .expect("served again");
}

#[tokio::test]
async fn reset_all_breaks_current_connections_once() {
    let s = Setup::new().await;
    s.proxied().insert_one(doc! { "_id": 1 }).await.unwrap();
    let accepted = s.proxy.accepted();

    s.proxy.reset_all();
    // Reads are retried once by the driver; allow a failure anyway, then it
    // must work again over new connections.
    let _ = s.proxied().find_one(doc! { "_id": 1 }).await;
    s.proxied()
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .expect("served after reset");
    assert!(s.proxy.accepted() > accepted, "the client had to reconnect");
}
