//! The health and metrics listener: `/healthz` says the process is alive
//! (whatever MongoDB and Discord do), `/readyz` says whether it counts and
//! keeps up (with a JSON body naming each condition), `/metrics` is
//! Prometheus text whose counters move with traffic. In process (headless,
//! MongoDB behind the fault proxy) and with the real binary (the Discord
//! simulator, a gateway outage).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use study_tracker::app::now_millis;
use study_tracker::config::HttpAddr;
use study_tracker::core::MemberKey;
use study_tracker::telemetry::prometheus as metric;

use crate::e2e::{Env, ALICE, CONNECT, GUILD, TEXT};
use crate::support::app::{spawn_app, test_settings};
use crate::support::db::fresh_db;
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::http::{get, parse_prometheus, try_get, value, Reply, Sample};
use crate::support::poll::eventually;

const MEMBER: MemberKey = MemberKey {
    guild: 1_400_000_000_000_000_001,
    user: 1_400_000_000_000_000_002,
};

/// Long enough for the writer's backoff or the store's preparation to try again.
const SETTLE: Duration = Duration::from_secs(30);

/// Polls `/readyz` until its status is `status`; returns that reply.
async fn readyz_becomes(addr: SocketAddr, status: u16, what: &str) -> Reply {
    let last = Mutex::new(None);
    let reached = eventually(SETTLE, || async {
        let reply = get(addr, "/readyz").await;
        let done = reply.status == status;
        *last.lock().unwrap() = Some(reply);
        done
    })
    .await;
    let last = last.into_inner().unwrap().expect("asked at least once");
    assert!(
        reached,
        "{what}: /readyz stayed {} {}",
        last.status, last.body
    );
    last
}

async fn metrics(addr: SocketAddr) -> Vec<Sample> {
    let reply = get(addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.content_type.starts_with("text/plain"),
        "{}",
        reply.content_type
    );
    parse_prometheus(&reply.body)
}

/// A counter's value, 0 before it is first recorded.
fn counter(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(samples, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn readyz_follows_mongodb_and_metrics_move_with_traffic() {
    let db = fresh_db().await;
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    proxy.set_down(true);
    let spool = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&proxy.uri(), &db.name, spool.path());
    settings.http.addr = HttpAddr::At("127.0.0.1:0".parse().unwrap());
    let running = spawn_app(settings).await;
    let app = running.app.clone();
    let addr = running.http_addr.expect("the listener runs");
    assert_ne!(addr.port(), 0, "the bound port, not the asked one");

    // Alive, whatever MongoDB does: a restart would not bring it back.
    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["alive"], true);

    // MongoDB never answered: not ready, and the body says which part.
    let not_ready = get(addr, "/readyz").await;
    assert_eq!(not_ready.status, 503, "{}", not_ready.body);
    let body = not_ready.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["mongodb"]["ok"], false);
    assert!(body["mongodb"]["last_answer_secs_ago"].is_null(), "{body}");
    // It could not ask MongoDB for the lease: it counts provisionally.
    assert_eq!(body["lease"]["held"], false, "{body}");
    assert_eq!(body["lease"]["state"], "provisional", "{body}");
    assert_eq!(body["shards"]["ok"], true, "headless: not applicable");
    assert_eq!(body["shards"]["state"], "headless");
    assert_eq!(body["spool"]["ok"], true);

    proxy.set_down(false);
    let ready = readyz_becomes(addr, 200, "MongoDB answers").await.json();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["mongodb"]["ok"], true);
    // The lease was free: it holds it now.
    assert_eq!(ready["lease"]["held"], true, "{ready}");

    // Counters move with traffic.
    let before = metrics(addr).await;
    for _ in 0..3 {
        app.message(MEMBER, now_millis());
    }
    assert!(app.writer().wait_idle(SETTLE).await, "messages applied");
    let after = metrics(addr).await;
    for name in [metric::OPS_SPOOLED, metric::OPS_APPLIED] {
        assert!(
            counter(&after, name, &[]) >= counter(&before, name, &[]) + 3.0,
            "{name}: {} then {}",
            counter(&before, name, &[]),
            counter(&after, name, &[])
        );
    }
    let round_trips = |s: &[Sample]| counter(s, metric::WRITE_ROUND_TRIPS, &[]);
    assert!(round_trips(&after) > round_trips(&before));
    let writes = |s: &[Sample]| counter(s, &format!("{}_count", metric::WRITE_DURATION), &[]);
    assert!(writes(&after) > writes(&before), "latency histogram");
    assert!(
        value(
            &after,
            &format!("{}_bucket", metric::WRITE_DURATION),
            &[("le", "+Inf")]
        )
        .is_some(),
        "a histogram, not a summary"
    );
    assert_eq!(
        value(&after, metric::LEASE_STATE, &[("state", "holder")]),
        Some(1.0)
    );
    assert_eq!(
        value(&after, metric::LEASE_STATE, &[("state", "standby")]),
        Some(0.0)
    );
    // The first epoch is the taker's clock in ms (epochs never go back).
    assert!(value(&after, metric::LEASE_EPOCH, &[]).is_some_and(|e| e >= 1.0));
    assert!(value(&after, metric::SPOOL_BYTES, &[]).is_some());
    assert!(value(&after, metric::SPOOL_OLDEST_UNAPPLIED, &[]).is_some());

    // MongoDB goes away: the next write fails, and readiness says so.
    proxy.set_down(true);
    app.message(MEMBER, now_millis());
    let down = readyz_becomes(addr, 503, "MongoDB is down").await.json();
    assert_eq!(down["mongodb"]["ok"], false);
    assert_eq!(down["mongodb"]["last_command_failed"], true, "{down}");
    assert!(
        down["mongodb"]["last_answer_secs_ago"].is_number(),
        "{down}"
    );
    assert_eq!(get(addr, "/healthz").await.status, 200, "still alive");
    // Readiness can turn first (the failed command is recorded before the
    // applier counts its retry, and the ping may fail before the write).
    let retries_before = counter(&after, metric::WRITE_RETRIES, &[]);
    assert!(
        eventually(SETTLE, || async {
            counter(&metrics(addr).await, metric::WRITE_RETRIES, &[]) > retries_before
        })
        .await,
        "the failed write is counted as a retry"
    );

    proxy.set_down(false);
    readyz_becomes(addr, 200, "MongoDB is back").await;
    assert!(app.writer().wait_idle(SETTLE).await, "the spool drained");
    let stored = app.store().member(MEMBER, 0, "0000-00-00").await.unwrap();
    assert_eq!(stored.messages, 4);

    running.stop().await;
    assert!(
        try_get(addr, "/healthz").await.is_err(),
        "the listener stops with the bot"
    );
    proxy.shutdown();
}

/// The real binary with the Discord simulator: alive and ready once its
/// shard is connected, not ready while the gateway is down (still alive),
/// and gateway events counted by kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_health_checks_and_counts_gateway_events() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    let addr = bot.http_addr();
    bot.wait_log(
        &format!("serving /healthz, /readyz and /metrics addr={addr}"),
        CONNECT,
    )
    .await;
    assert_eq!(get(addr, "/healthz").await.status, 200);
    let ready = readyz_becomes(addr, 200, "connected").await.json();
    assert_eq!(ready["shards"]["state"], "connected");

    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    let message = [("kind", "message")];
    assert!(
        eventually(CONNECT, || async {
            let m = metrics(addr).await;
            counter(&m, metric::EVENTS_RECEIVED, &message) >= 1.0
                && counter(&m, metric::OPS_APPLIED, &[]) >= 1.0
        })
        .await,
        "a message counted in /metrics"
    );
    let m = metrics(addr).await;
    assert!(counter(&m, metric::EVENTS_RECEIVED, &[("kind", "guild_create")]) >= 1.0);
    // (The shard latency appears after the first heartbeat ack: the
    // simulator's heartbeat interval is Discord's, about 41 s.)

    // The gateway goes down for a while: not ready, still alive.
    env.sim.gateway_outage(Duration::from_secs(6));
    let down = readyz_becomes(addr, 503, "gateway down").await.json();
    assert_eq!(down["shards"]["ok"], false, "{down}");
    assert_eq!(get(addr, "/healthz").await.status, 200);
    readyz_becomes(addr, 200, "gateway back").await;

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}
