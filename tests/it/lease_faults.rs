//! The lease when things go wrong: a holder frozen past its lease (SIGSTOP)
//! that wakes after a takeover writes nothing more; a holder restarted on
//! its own spool directory after a crash takes its lease back at once and
//! writes what its spool kept.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};

use crate::e2e::{assert_close, secs, stored, Env, ALICE, BOB, CAROL, CONNECT, GUILD, TEXT, VC1};
use crate::lease::{holds, leased, pair, ready};
use crate::support::bot::{spawn_bot, Bot};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::http::{get, parse_prometheus, value};
use crate::support::poll::eventually;

const OPS_APPLIED: &str = "study_tracker_ops_applied_total";
const BACKLOG: &str = "study_tracker_spool_backlog_ops";

/// Ops this process got MongoDB to acknowledge (a whole number).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
async fn applied(addr: SocketAddr) -> u64 {
    let reply = get(addr, "/metrics").await;
    value(&parse_prometheus(&reply.body), OPS_APPLIED, &[]).unwrap_or(0.0) as u64
}

async fn send(env: &Env, author: u64, n: i64) -> i64 {
    for _ in 0..n {
        env.sim.send_message(Some(GUILD), TEXT, author, false).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n
}

/// A bot behind `proxy` whose lease (60 s) outlasts the test: waiting for
/// it to expire would fail it.
fn long_lease(env: &Env, proxy: &FaultProxy) -> crate::support::bot::BotConfig {
    let mut config = leased(env, env.spool.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    config.extra_env.retain(|(k, _)| k != "LEASE_TTL_SECS");
    config
        .extra_env
        .push(("LEASE_TTL_SECS".into(), "60".into()));
    config
}

/// The holder takes the lease and stores 5 messages; then MongoDB is out of
/// reach, 5 more wait in its spool, and the process is killed (the outage
/// goes on). Returns the messages sent.
async fn killed_in_an_outage(
    env: &Env,
    proxy: &FaultProxy,
    config: &crate::support::bot::BotConfig,
) -> i64 {
    let mut a = env.start_bot(config).await;
    a.wait_log("took the lease", CONNECT).await;
    let store = env.store();
    let mut sent = send(env, ALICE, 5).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.2 == sent
        })
        .await
    );
    proxy.set_down(true);
    sent += send(env, ALICE, 5).await;
    // In the spool (fsynced) before the kill: what is still in memory at a
    // SIGKILL is lost by design, and a loaded machine spools late.
    let backlog = || async {
        let reply = get(a.http_addr(), "/metrics").await;
        value(
            &parse_prometheus(&reply.body),
            "study_tracker_spool_backlog_ops",
            &[],
        )
        .unwrap_or(0.0)
    };
    assert!(eventually(Duration::from_secs(10), || async { backlog().await >= 1.0 }).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.kill().await;
    sent
}

#[tokio::test]
async fn a_holder_frozen_past_its_lease_writes_nothing_after_the_takeover() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let (a, b) = pair(&env, spool_b.path()).await;
    let store = env.store();
    let joined = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    let mut sent = send(&env, ALICE, 10).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.2 == sent
        })
        .await
    );
    // A flush has written Carol's first seconds.
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, CAROL).await.1 >= 1
        })
        .await
    );
    // Its batch is acknowledged too: a batch is several commands (totals,
    // rollups, segments), and the totals show before the batch is counted
    // as applied.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let reply = get(a.http_addr(), "/metrics").await;
            value(&parse_prometheus(&reply.body), BACKLOG, &[]) == Some(0.0)
        })
        .await
    );
    let before = applied(a.http_addr()).await;
    a.freeze();
    b.wait_log("took the lease", Duration::from_secs(15)).await;
    // While A is frozen (its socket may hold these for it).
    sent += send(&env, ALICE, 10).await;
    a.thaw();
    // Right after it wakes, before its renewal is refused: it may count
    // these, and must not write them.
    sent += send(&env, BOB, 10).await;
    a.wait_log("lease lost; stepping down", Duration::from_secs(10))
        .await;
    sent += send(&env, ALICE, 10).await;
    assert_eq!(
        ready(&a).await.1["lease"]["state"],
        "standby",
        "the old holder stands by"
    );
    assert!(eventually(Duration::from_secs(10), || async { holds(&b).await }).await);
    env.sim.set_voice(GUILD, CAROL, None, false).await;
    let left = Instant::now();
    let total = || async { stored(&store, ALICE).await.2 + stored(&store, BOB).await.2 };
    assert!(
        eventually(Duration::from_secs(20), || async { total().await >= sent }).await,
        "messages: {} of {sent}",
        total().await
    );
    let want = secs(joined, left);
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, CAROL).await.1 >= want - 1
        })
        .await,
        "voice: {} of {want}",
        stored(&store, CAROL).await.1
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(total().await, sent, "every message exactly once");
    assert_close(
        stored(&store, CAROL).await.1,
        want,
        "voice across the freeze",
    );
    assert_eq!(
        applied(a.http_addr()).await,
        before,
        "the frozen holder wrote nothing after it woke; log:\n{}",
        a.log_text()
    );
    env.assert_clean(&b);
}

/// The data collections a batch writes, one `update` command each (or more).
const WRITTEN: [&str; 6] = [
    "member_stats",
    "member_days",
    "member_weeks",
    "member_months",
    "voice_segments",
    "voice_sessions",
];

/// A holder frozen between two commands of one batch (a SIGSTOP, CPU
/// throttling, a stalled VM): the reply to its first command is held back
/// by the proxy while the process is stopped, the lease expires and the
/// standby takes over. When the holder wakes, nothing new may go out: its
/// validity lapsed, and the gate is checked before every command, not once
/// per attempt. The batch it was in the middle of had written its resume
/// points (`member_stats`, its first command), so only the rest of that
/// batch goes out (finished, not fenced: see
/// `a_batch_cut_half_way_by_a_lost_lease_is_finished_not_fenced`).
#[tokio::test]
async fn a_holder_frozen_mid_batch_sends_nothing_more_after_the_takeover() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = leased(&env, env.spool.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let a = env.start_bot(&config).await;
    a.wait_log("took the lease", CONNECT).await;
    let spool_b = tempfile::tempdir().unwrap();
    let n = env.sim.connections() + 1;
    let b = spawn_bot(&leased(&env, spool_b.path()));
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    let store = env.store();
    let sent = send(&env, ALICE, 3).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.2 == sent
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            let reply = get(a.http_addr(), "/metrics").await;
            value(&parse_prometheus(&reply.body), BACKLOG, &[]) == Some(0.0)
        })
        .await
    );
    // A flush's batch: six commands (the totals, the rollups, the segment
    // and the checkpoint), in two waves on a server taking four at once.
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, CAROL).await.1 >= 1
        })
        .await
    );
    proxy.hold_reply("update", "member_stats");
    assert!(
        eventually(Duration::from_secs(10), || async { proxy.holding() }).await,
        "the batch's first command never went out"
    );
    a.freeze();
    // What the process wrote to its sockets before it stopped (the rest of
    // the first wave) reaches the proxy meanwhile; nothing new can.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data_commands = || {
        WRITTEN
            .iter()
            .map(|c| proxy.requests_to("update", c))
            .sum::<u64>()
    };
    let before = data_commands();
    let totals_before = proxy.requests_to("update", "member_stats");
    // The reply waits in the frozen process's socket.
    proxy.release_held();
    b.wait_log("took the lease", Duration::from_secs(15)).await;
    a.thaw();
    a.wait_log("lease lost; stepping down", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.requests_to("update", "member_stats"),
        totals_before,
        "the woken holder started a batch after its lease lapsed; log:\n{}",
        a.log_text()
    );
    // The rest of the started batch: its rollups (3) and its segment.
    assert!(
        data_commands() <= before + 4,
        "the woken holder sent more than the rest of its batch: {} commands; log:\n{}",
        data_commands() - before,
        a.log_text()
    );
    env.assert_clean(&b);
}

#[tokio::test]
async fn a_holder_restarted_on_its_spool_takes_its_lease_back_and_writes_the_spool() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let config = long_lease(&env, &proxy);
    let store = env.store();
    let mut sent = killed_in_an_outage(&env, &proxy, &config).await;
    proxy.set_down(false);
    let restarted = Instant::now();
    let a = env.start_bot(&config).await;
    a.wait_log("took the lease", Duration::from_secs(15)).await;
    assert!(
        restarted.elapsed() < Duration::from_secs(30),
        "took {:?}",
        restarted.elapsed()
    );
    assert!(a.log_text().contains("reclaimed=true"), "{}", a.log_text());
    sent += send(&env, ALICE, 5).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, ALICE).await.2 >= sent
        })
        .await,
        "stored {} of {sent}",
        stored(&store, ALICE).await.2
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(&store, ALICE).await.2, sent, "exactly once");
    env.assert_clean(&a);
}

/// Docker recreates a container, Kubernetes reschedules a pod onto its
/// volume: the same `SPOOL_DIR`, a new `HOSTNAME`. The holder dies during a
/// MongoDB outage with counts in its spool and is restarted at once, still
/// in the outage, under another hostname: it counts provisionally, and once
/// MongoDB answers, the spool proves the lease was its own (its instance id
/// and the last epoch it held), so what it spooled is written, not fenced.
#[tokio::test]
async fn a_holder_restarted_on_its_spool_under_a_new_hostname_in_an_outage_writes_the_spool() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    // Unexpired when MongoDB comes back: only the spool can say it is ours.
    let config = long_lease(&env, &proxy);
    let mut first = config.clone();
    first
        .extra_env
        .push(("HOSTNAME".into(), "study-tracker-7c9f-abcde".into()));
    let store = env.store();
    let mut sent = killed_in_an_outage(&env, &proxy, &first).await;
    let mut second = config.clone();
    second
        .extra_env
        .push(("HOSTNAME".into(), "study-tracker-7c9f-fghij".into()));
    let a = env.start_bot(&second).await;
    a.wait_log("counting provisionally", CONNECT).await;
    sent += send(&env, ALICE, 5).await;
    proxy.set_down(false);
    a.wait_log("took the lease", Duration::from_secs(15)).await;
    sent += send(&env, ALICE, 5).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, ALICE).await.2 >= sent
        })
        .await,
        "stored {} of {sent}; log:\n{}",
        stored(&store, ALICE).await.2,
        a.log_text()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(&store, ALICE).await.2, sent, "exactly once");
    let metrics = parse_prometheus(&get(a.http_addr(), "/metrics").await.body);
    let fenced = value(&metrics, "study_tracker_ops_fenced_total", &[]).unwrap_or(0.0);
    assert!(fenced < 0.5, "nothing fenced: {fenced}");
    env.assert_clean(&a);
}

/// The standby's `findAndModify` takes the released lease but its reply is
/// lost (a reset connection, a timeout while the primary waits for the
/// majority; no retryable writes on FerretDB or a standalone server). Its
/// retry finds its own name on the lease: that must not read as "my own
/// lease back, nobody counted meanwhile" (every buffered message from
/// snowflake 0, the whole voice log replayed), but as the previous
/// holder's handoff, kept through the unseen acquire.
#[tokio::test]
async fn a_lost_reply_to_the_standbys_acquire_keeps_the_handoff() {
    let env = Env::new().await;
    let a = env.start_bot(&leased(&env, env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let mut a = a;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let spool_b = tempfile::tempdir().unwrap();
    let mut config = leased(&env, spool_b.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let n = env.sim.connections() + 1;
    let b = spawn_bot(&config);
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    let store = env.store();
    let joined = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    // Counted by A, buffered by B.
    let mut sent = send(&env, ALICE, 10).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.2 == sent
        })
        .await
    );
    let b_instance = std::fs::read_to_string(spool_b.path().join("instance-id")).unwrap();
    let meta = env.db.db().collection::<Document>("meta");
    let b_holds = || async {
        meta.find_one(doc! { "_id": "lease" })
            .await
            .unwrap()
            .is_some_and(|d| {
                d.get_str("holder")
                    .unwrap_or_default()
                    .ends_with(b_instance.trim())
                    && !d.get_bool("released").unwrap_or(true)
            })
    };
    // Every reply to B's findAndModify is lost until the lease is B's.
    proxy.drop_replies("findAndModify", 1);
    a.sigterm();
    assert!(
        eventually(Duration::from_secs(15), b_holds).await,
        "B never took the lease"
    );
    proxy.drop_replies("findAndModify", 0);
    assert!(proxy.dropped_replies() >= 1);
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    sent += send(&env, ALICE, 10).await;
    env.sim.set_voice(GUILD, CAROL, None, false).await;
    let left = Instant::now();
    let want = secs(joined, left);
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, ALICE).await.2 >= sent && stored(&store, CAROL).await.1 >= want - 1
        })
        .await,
        "stored {:?} of {sent} messages, {:?} of {want} s",
        stored(&store, ALICE).await,
        stored(&store, CAROL).await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored(&store, ALICE).await.2,
        sent,
        "each message once; log:\n{}",
        b.log_text()
    );
    assert_close(stored(&store, CAROL).await.1, want, "voice once");
    env.assert_clean(&b);
}

/// The lease document deleted (to "unstick" a standby) or restored from an
/// older backup must not send the epoch back: every document written at a
/// higher epoch would then refuse the holder's writes, silently.
#[tokio::test]
async fn a_deleted_lease_document_never_sends_the_epoch_backwards() {
    let env = Env::new().await;
    let meta = env.db.db().collection::<Document>("meta");
    // A lease with a history: epoch 5 was the last, released.
    meta.insert_one(doc! {
        "_id": "lease",
        "epoch": 5_i64,
        "released": true,
        "holder": "old-host:00000000000000aa",
        "instance": "00000000000000aa",
    })
    .await
    .unwrap();
    let a = env.start_bot(&leased(&env, env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let store = env.store();
    let mut sent = send(&env, ALICE, 5).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.2 == sent
        })
        .await
    );
    meta.delete_one(doc! { "_id": "lease" }).await.unwrap();
    a.wait_log("lease lost; stepping down", Duration::from_secs(10))
        .await;
    let taken = || {
        a.logs()
            .iter()
            .filter(|l| l.contains("took the lease"))
            .count()
    };
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(taken() >= 2)).await,
        "never took the lease again"
    );
    sent += send(&env, ALICE, 5).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, ALICE).await.2 >= sent
        })
        .await,
        "stored {} of {sent}; log:\n{}",
        stored(&store, ALICE).await.2,
        a.log_text()
    );
    env.assert_clean(&a);
}

/// A takeover whose restore outlasts the lease's TTL (a slow read of the
/// checkpoints, a backlog to drain first: up to 30 s against a 15 s TTL)
/// keeps its lease: it renews while it restores, so its gate stays open and
/// a second standby cannot take the lease mid-takeover.
#[tokio::test]
async fn a_takeover_whose_restore_outlasts_the_ttl_keeps_the_lease() {
    let env = Env::new().await;
    let mut a = env.start_bot(&leased(&env, env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let (spool_b, spool_c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut standbys = Vec::new();
    for spool in [&spool_b, &spool_c] {
        let mut config = leased(&env, spool.path());
        config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
        let n = env.sim.connections() + 1;
        let bot = spawn_bot(&config);
        env.sim.wait_connections(n, CONNECT).await;
        bot.wait_log("guild snapshot", CONNECT).await;
        standbys.push(bot);
    }
    // The checkpoints take 5 s to read, past the 3 s TTL.
    proxy.delay_command("find", "voice_sessions", Duration::from_secs(5));
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    let takers = || {
        standbys
            .iter()
            .filter(|b| b.log_text().contains("took the lease"))
            .count()
    };
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(
            takers() >= 1
        ))
        .await,
        "nobody took the lease"
    );
    // Past the restore and two TTLs.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let logs: Vec<String> = standbys.iter().map(Bot::log_text).collect();
    assert_eq!(
        takers(),
        1,
        "one takeover; logs:\n{}",
        logs.join("\n-----\n")
    );
    for log in &logs {
        assert!(
            !log.contains("lease lost; stepping down"),
            "the new holder lost its lease during its own restore:\n{log}"
        );
    }
    proxy.delay_command("find", "voice_sessions", Duration::ZERO);
    for b in &standbys {
        env.assert_clean(b);
    }
}

/// A holder cut off from Discord (its shard stuck reconnecting) while a
/// standby's gateway is fine: after two TTLs without a healthy gateway it
/// stops renewing, and the standby takes over; a standby whose own gateway
/// is down never takes the lease (a Discord-wide outage must not make it
/// flap). In process, with the gateway's health fed to each app.
#[tokio::test]
async fn a_holder_cut_off_from_discord_lets_a_healthy_standby_take_over() {
    use study_tracker::app::now_millis;
    use study_tracker::core::link::Link;

    use crate::support::app::{spawn_app, test_settings};
    use crate::support::db::fresh_db;

    let db = fresh_db().await;
    let (spool_a, spool_b, spool_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let settings = |dir: &std::path::Path| {
        let mut s = test_settings(&db.uri, &db.name, dir);
        s.tracking.lease_ttl_secs = 3;
        s
    };
    let a = spawn_app(settings(spool_a.path())).await;
    assert!(a.app.lease().held());
    let b = spawn_app(settings(spool_b.path())).await;
    let c = spawn_app(settings(spool_c.path())).await;
    assert!(!b.app.lease().held() && !c.app.lease().held());
    // A's gateway goes down; B's is healthy, C's down.
    a.app.gateway_link(0, Link::Down, now_millis()).await;
    c.app.gateway_link(0, Link::Down, now_millis()).await;
    let healthy = async {
        loop {
            b.app.gateway_link(0, Link::Healthy, now_millis()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let took = tokio::select! {
        () = healthy => unreachable!(),
        took = eventually(Duration::from_secs(15), || std::future::ready(b.app.lease().held())) => took,
    };
    assert!(took, "the healthy standby never took the lease");
    assert!(!a.app.lease().held(), "the cut-off holder stood down");
    assert!(
        !c.app.lease().held(),
        "a standby without a gateway stays a standby"
    );
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

/// Both instances stopped at once (`docker compose down`, a rollback in
/// the middle of a rollout): the standby's acquire is on its way when its
/// SIGTERM comes, so it becomes the holder while shutting down. It must
/// still hand over (release the lease), not leave it held for a TTL.
#[tokio::test]
async fn a_standby_stopped_while_taking_over_releases_the_lease() {
    let env = Env::new().await;
    let mut a = env.start_bot(&leased(&env, env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let spool_b = tempfile::tempdir().unwrap();
    let mut config = leased(&env, spool_b.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let n = env.sim.connections() + 1;
    let mut b = spawn_bot(&config);
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    // B's acquire (once the lease is free) takes 2 s to reach MongoDB.
    proxy.delay_command("findAndModify", "meta", Duration::from_secs(2));
    a.sigterm();
    assert!(
        eventually(Duration::from_secs(15), || async {
            proxy.requests_to("findAndModify", "meta") >= 1
        })
        .await,
        "B never asked for the released lease"
    );
    b.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    assert!(b.wait_exit(Duration::from_secs(20)).await.success());
    assert!(b.log_text().contains("took the lease"), "{}", b.log_text());
    let lease = env
        .db
        .db()
        .collection::<Document>("meta")
        .find_one(doc! { "_id": "lease" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        lease.get_bool("released").ok(),
        Some(true),
        "{lease}; B's log:\n{}",
        b.log_text()
    );
}

/// The holder's release fails once (a primary stepping down, a reset
/// connection): it tries again until its shutdown budget ends, so the
/// standby takes over at once from the handoff instead of waiting for the
/// lease to expire (and losing the messages in between).
#[tokio::test]
async fn a_release_that_fails_once_is_tried_again() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    // A TTL the test would notice: a takeover at the expiry comes late.
    let slow_ttl = |mut c: crate::support::bot::BotConfig| {
        c.extra_env.retain(|(k, _)| k != "LEASE_TTL_SECS");
        c.extra_env.push(("LEASE_TTL_SECS".into(), "15".into()));
        c
    };
    let mut config = slow_ttl(leased(&env, env.spool.path()));
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let mut a = env.start_bot(&config).await;
    a.wait_log("took the lease", CONNECT).await;
    let spool_b = tempfile::tempdir().unwrap();
    let n = env.sim.connections() + 1;
    let b = spawn_bot(&slow_ttl(leased(&env, spool_b.path())));
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    let signalled = Instant::now();
    a.sigterm();
    // Every lease command of A fails for 1.5 s: the release among them.
    proxy.refuse_requests(Some(("update", "meta")));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    proxy.refuse_requests(None);
    b.wait_log("took the lease", Duration::from_secs(20)).await;
    let took = signalled.elapsed();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    assert!(
        took < Duration::from_secs(5),
        "the standby took over after {took:?} (the expiry); A's log:\n{}",
        a.log_text()
    );
    env.assert_clean(&b);
}

/// An instance that cannot reach MongoDB at start counts provisionally (a
/// lone bot starting during an outage loses nothing: see
/// `faults::bot_starts_and_tracks_while_mongodb_is_down_at_startup`). When
/// MongoDB answers and another instance turns out to hold the lease, what it
/// counted is set aside, never written: both saw the same events.
#[tokio::test]
async fn a_provisional_instance_that_finds_a_holder_writes_nothing() {
    let env = Env::new().await;
    let a = env.start_bot(&leased(&env, env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    proxy.set_down(true);
    let spool_b = tempfile::tempdir().unwrap();
    let mut config = leased(&env, spool_b.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let b = env.start_bot(&config).await;
    b.wait_log("counting provisionally", CONNECT).await;
    let store = env.store();
    let joined = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), true).await;
    let mut sent = send(&env, ALICE, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set_down(false);
    b.wait_log("provisional counting discarded", Duration::from_secs(15))
        .await;
    b.wait_log(
        "increments counted under a lost lease fenced off",
        Duration::from_secs(10),
    )
    .await;
    sent += send(&env, ALICE, 5).await;
    env.sim.set_voice(GUILD, CAROL, None, true).await;
    let left = Instant::now();
    let want = secs(joined, left);
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, ALICE).await.2 >= sent && stored(&store, CAROL).await.0 >= want - 1
        })
        .await,
        "stored {:?} and {:?}",
        stored(&store, ALICE).await,
        stored(&store, CAROL).await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(&store, ALICE).await.2, sent, "each message once");
    assert_close(stored(&store, CAROL).await.0, want, "voice once");
    assert_eq!(
        ready(&b).await.1["lease"]["state"],
        "standby",
        "B stands by"
    );
    env.assert_clean(&b);
}

/// F13: records an earlier run counted provisionally (epoch 0, the lease
/// unknown) and never confirmed are fenced by a takeover from another
/// holder, as records of an older epoch are: that holder counted the same
/// events.
#[tokio::test]
async fn provisional_records_of_an_earlier_run_are_fenced_by_a_takeover() {
    use study_tracker::durable::dead_letters::DeadLetters;
    use study_tracker::durable::op::Op;
    use study_tracker::durable::spool::Spool;
    use study_tracker::store::{Claimant, Handoff, HandoffIds, Store};

    use crate::support::app::{spawn_app, test_settings};
    use crate::support::db::fresh_db;

    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let spool = tempfile::tempdir().unwrap();
    let member = study_tracker::core::MemberKey { guild: 1, user: 2 };
    let now = study_tracker::app::now_millis();
    // The earlier run: one message counted provisionally, left unwritten.
    {
        let s = Spool::open(spool.path(), 1 << 20).unwrap();
        let micros = u64::try_from(now).unwrap() * 1_000;
        s.append(&[Op::message(member, now, chrono_tz::UTC)], micros)
            .unwrap();
    }
    // Meanwhile another instance held the lease (and counted that message
    // itself), then handed over.
    let x = Claimant {
        name: "x",
        instance: "x",
        held_epoch: None,
    };
    let taken = store.acquire_lease(&x, now, 15_000).await.unwrap().unwrap();
    let handoff = Handoff {
        snowflake: study_tracker::app::snowflake_at(now),
        at: now,
        seq: 1,
    };
    assert!(store
        .release_lease("x", taken.epoch, handoff, &HandoffIds::default())
        .await
        .unwrap());
    let mut settings = test_settings(&db.uri, &db.name, spool.path());
    settings.tracking.lease_ttl_secs = 15;
    let app = spawn_app(settings).await;
    assert!(app.app.lease().held());
    let fenced = DeadLetters::fenced_in_dir(spool.path());
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(
            fenced.read().is_ok_and(|f| f.len() == 1)
        ))
        .await,
        "the earlier run's provisional record is set aside: {:?}",
        fenced.read()
    );
    let m = store.member(member, 0, "0000-00-00").await.unwrap();
    assert_eq!(m.messages, 0, "never written");
    app.stop().await;
}

/// An in-process instance with a 3 s lease on `uri` (a proxy, to take its
/// MongoDB away), for the outage tests (F4).
async fn outage_app(uri: &str, db: &str, spool: &std::path::Path) -> crate::support::app::TestApp {
    let mut s = crate::support::app::test_settings(uri, db, spool);
    s.tracking.lease_ttl_secs = 3;
    s.spool.shutdown_timeout_secs = 3;
    crate::support::app::spawn_app(s).await
}

fn carol(camera: bool) -> study_tracker::core::Presence {
    study_tracker::core::Presence {
        channel: VC1,
        camera,
    }
}

const CAROL_KEY: study_tracker::core::MemberKey = study_tracker::core::MemberKey {
    guild: GUILD,
    user: CAROL,
};

/// F4, the needless discard: the holder handed over before an instance
/// began counting provisionally (MongoDB unreachable at its start), so
/// nobody else counted what it counted: it stands.
#[tokio::test]
async fn provisional_counts_stand_when_the_previous_holder_stopped_before_they_began() {
    use study_tracker::app::now_millis;
    let env = Env::new().await;
    let a = outage_app(&env.db.uri, &env.db.name, env.spool.path()).await;
    assert!(a.app.lease().held());
    a.stop().await; // hands over to nobody
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    proxy.set_down(true);
    let spool_b = tempfile::tempdir().unwrap();
    let b = outage_app(&proxy.uri(), &env.db.name, spool_b.path()).await;
    assert_eq!(b.app.lease().state.name(), "provisional");
    let joined = Instant::now();
    b.app
        .voice_update(CAROL_KEY, Some(carol(false)), now_millis())
        .await;
    for _ in 0..5 {
        b.app.message(
            study_tracker::core::MemberKey {
                guild: GUILD,
                user: ALICE,
            },
            now_millis(),
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set_down(false);
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(
            b.app.lease().held()
        ))
        .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.app.voice_update(CAROL_KEY, None, now_millis()).await;
    let want = secs(joined, Instant::now());
    let store = env.store();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, CAROL).await.1 >= want - 1 && stored(&store, ALICE).await.2 >= 5
        })
        .await,
        "{:?} {:?}",
        stored(&store, CAROL).await,
        stored(&store, ALICE).await
    );
    // Before: set aside (fenced) and counted again from the takeover.
    assert_eq!(b.app.writer().status().fenced, 0, "nothing set aside");
    assert_eq!(stored(&store, ALICE).await.2, 5, "each message once");
    assert_close(stored(&store, CAROL).await.1, want, "voice from the join");
    b.stop().await;
}

/// F4: a holder and a new instance both count through a MongoDB outage;
/// the new one gets the lease at the holder's expiry and its provisional
/// counts are set aside, but the voice changes it saw after that expiry
/// are replayed at their own times (its voice log is kept while
/// provisional and through the discard).
#[tokio::test]
async fn voice_changes_seen_while_provisional_are_replayed_after_a_discard() {
    use study_tracker::app::now_millis;
    let env = Env::new().await;
    let proxy_a = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let proxy_b = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let a = outage_app(&proxy_a.uri(), &env.db.name, env.spool.path()).await;
    assert!(a.app.lease().held());
    // The outage begins for both; B starts in it (provisional) before A's
    // lease expires.
    proxy_a.set_down(true);
    proxy_b.set_down(true);
    let spool_b = tempfile::tempdir().unwrap();
    let b = outage_app(&proxy_b.uri(), &env.db.name, spool_b.path()).await;
    assert_eq!(b.app.lease().state.name(), "provisional");
    // After A's lease expired, Carol joins (B sees it).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let joined = Instant::now();
    b.app
        .voice_update(CAROL_KEY, Some(carol(true)), now_millis())
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // MongoDB comes back for B first: A's lease ran past B's start, so
    // B's provisional counts are set aside, and B takes over.
    proxy_b.set_down(false);
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(
            b.app.lease().held()
        ))
        .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.app.voice_update(CAROL_KEY, None, now_millis()).await;
    let want = secs(joined, Instant::now());
    let store = env.store();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, CAROL).await.0 >= want - 1
        })
        .await,
        "before: credited from the takeover only: {:?}, want {want}",
        stored(&store, CAROL).await
    );
    assert_close(
        stored(&store, CAROL).await.0,
        want,
        "camera time from the join",
    );
    b.stop().await;
    a.begin_shutdown();
}

/// F15: a handover whose drain outlasts the lease's validity (two thirds
/// of the TTL after the renewal before it) keeps renewing while it drains,
/// then releases the lease (before: the drain stalled at the closed gate,
/// and the lease was left to expire).
#[tokio::test]
async fn a_drain_longer_than_the_lease_validity_still_ends_in_a_release() {
    use study_tracker::app::now_millis;
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut s = crate::support::app::test_settings(&proxy.uri(), &env.db.name, env.spool.path());
    s.tracking.lease_ttl_secs = 3;
    let a = crate::support::app::spawn_app(s).await;
    assert!(a.app.lease().held());
    a.app
        .voice_update(CAROL_KEY, Some(carol(false)), now_millis())
        .await;
    let alice = study_tracker::core::MemberKey {
        guild: GUILD,
        user: ALICE,
    };
    assert!(a.app.writer().wait_idle(Duration::from_secs(10)).await);
    // Every totals command now takes 3.5 s: the batch in flight at the
    // signal outlasts the validity the renewal before the drain gives
    // (2 s, from about 1.2 s after the signal).
    proxy.delay_command("update", "member_stats", Duration::from_millis(3_500));
    a.app.message(alice, now_millis());
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.stop().await;
    let store = env.store();
    let lease = store.read_lease().await.unwrap().expect("a lease");
    assert!(lease.released, "released after the drain: {lease:?}");
    assert_eq!(stored(&store, ALICE).await.2, 1);
    assert!(stored(&store, CAROL).await.1 >= 0);
    assert_eq!(a_backlog(env.spool.path()), 0, "all drained");
}

/// Records left unapplied in a spool directory (opened after its process
/// stopped).
fn a_backlog(dir: &std::path::Path) -> usize {
    study_tracker::durable::spool::Spool::open(dir, 1 << 30)
        .unwrap()
        .read_batch(10_000)
        .unwrap()
        .records
        .len()
}

/// F12: ops keep the epoch they were submitted under. A provisional
/// instance whose spool is full holds its ops in memory; when its counts
/// are discarded and it takes over, those ops are provisional (fenced), not
/// stamped with the new epoch and written beside the recount from its
/// buffer (before: counted twice).
#[tokio::test]
async fn provisional_ops_waiting_for_a_full_spool_are_not_written_under_the_new_epoch() {
    use study_tracker::app::now_millis;
    use study_tracker::core::MemberKey;
    use study_tracker::durable::spool::Spool;
    let member = |user| MemberKey { guild: GUILD, user };
    // One message record's size, to size a spool that holds ten.
    let record = {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        let empty = s.usage().bytes;
        let now = now_millis();
        let id = study_tracker::app::snowflake_at(now) | 0x3f_ffff;
        let op =
            study_tracker::durable::op::Op::message_id(member(20_000), id, now, chrono_tz::UTC);
        s.append(&[op], u64::try_from(now_millis()).unwrap() * 1_000)
            .unwrap();
        (empty, s.usage().bytes - empty)
    };
    let env = Env::new().await;
    let proxy_a = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let proxy_b = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let a = outage_app(&proxy_a.uri(), &env.db.name, env.spool.path()).await;
    assert!(a.app.lease().held());
    proxy_a.set_down(true);
    proxy_b.set_down(true);
    let spool_b = tempfile::tempdir().unwrap();
    let mut s = crate::support::app::test_settings(&proxy_b.uri(), &env.db.name, spool_b.path());
    s.tracking.lease_ttl_secs = 3;
    s.spool.shutdown_timeout_secs = 3;
    s.spool.max_bytes = record.0 + 10 * record.1 + record.1 / 2;
    let b = crate::support::app::spawn_app(s).await;
    assert_eq!(b.app.lease().state.name(), "provisional");
    // Before A's lease expires: fifteen members' messages, one by one:
    // ten fill B's spool, five wait in memory.
    for user in 0..15 {
        b.app.message(member(20_000 + user), now_millis());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // After it expired: three more, waiting in memory too.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after: Vec<u64> = (0..3).map(|i| 30_000 + i).collect();
    for &user in &after {
        b.app.message(member(user), now_millis());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // B's counts are discarded (A's lease ran past B's start) and B takes
    // over, recounting from its buffer what came after A's expiry.
    proxy_b.set_down(false);
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(
            b.app.lease().held()
        ))
        .await
    );
    let store = env.store();
    let count = |users: Vec<u64>| {
        let store = store.clone();
        async move {
            let mut n = 0;
            for user in users {
                n += stored(&store, user).await.2;
            }
            n
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(after.clone()).await >= 3
        })
        .await,
        "{} {:?}",
        count(after.clone()).await,
        b.app.writer().status()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(after.clone()).await,
        3,
        "after the expiry: once, from B's buffer"
    );
    // Before it: B's provisional counts are set aside, and A (the holder
    // then) never wrote them (nothing in their members' totals): B counts
    // them once from its buffer (F4). Before, they were lost.
    assert_eq!(
        count((20_000..20_015).collect()).await,
        15,
        "before it: once, from B's buffer (nobody wrote them)"
    );
    b.stop().await;
    a.begin_shutdown();
}

/// F10: a holder cut off from MongoDB whose lease lapsed stops answering
/// commands once a warm standby was seen (it takes over at the expiry and
/// answers), and a lone one keeps answering from what it knows.
#[tokio::test]
async fn a_lapsed_holder_answers_only_while_no_warm_standby_was_seen() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let a = outage_app(&proxy.uri(), &env.db.name, env.spool.path()).await;
    assert!(a.app.lease().held() && a.app.lease().counts());
    // Alone: cut off past its validity (2 s), it still answers.
    proxy.set_down(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.app.lease().counts(), "a lone lapsed holder answers");
    proxy.set_down(false);
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.app.writer().status().writes_allowed
        })
        .await
    );
    // A warm standby (it has seen its guild) announces itself; the holder
    // reads that at its renewals.
    let spool_b = tempfile::tempdir().unwrap();
    let b = outage_app(&env.db.uri, &env.db.name, spool_b.path()).await;
    b.app
        .guild_snapshot(GUILD, &[], study_tracker::app::now_millis())
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.app.lease().counts() && !b.app.lease().counts());
    proxy.set_down(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Before: the lapsed holder answered beside the one that took over.
    assert!(
        !a.app.lease().counts(),
        "lapsed, with a standby: leaves the answers"
    );
    assert!(
        eventually(Duration::from_secs(10), || std::future::ready(
            b.app.lease().counts()
        ))
        .await,
        "the standby takes over at the expiry and answers"
    );
    b.stop().await;
    a.begin_shutdown();
}

/// Carol's stored voice: the `member_stats` total, and the sum of her
/// `voice_segments` (what `/history` lists).
async fn totals_and_segments(env: &Env) -> (i64, i64) {
    use futures::TryStreamExt;
    let (on, off, _) = stored(&env.store(), CAROL).await;
    let segments: Vec<Document> = env
        .db
        .db()
        .collection::<Document>("voice_segments")
        .find(doc! { "user_id": i64::try_from(CAROL).unwrap() })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let secs = segments
        .iter()
        .map(|s| s.get_i64("secs").unwrap_or(0))
        .sum();
    (on + off, secs)
}

/// F21: a batch cut half way by a lost lease. A flush's credit for Carol
/// reaches her totals (`member_stats`, with her resume point) and the
/// rollups, but the `update` of `voice_segments` fails (a network error)
/// until the holder has lost its lease (frozen; the standby takes over and
/// resumes Carol from that resume point). The batch must be finished, not
/// set aside: the totals and the segments (what `/history` lists) agree,
/// and `fenced.log` does not call an op MongoDB holds unwritten.
#[tokio::test]
async fn a_batch_cut_half_way_by_a_lost_lease_is_finished_not_fenced() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = leased(&env, env.spool.path());
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let a = env.start_bot(&config).await;
    a.wait_log("took the lease", CONNECT).await;
    let spool_b = tempfile::tempdir().unwrap();
    let n = env.sim.connections() + 1;
    // B's own segment writes wait until A has finished (B resumes Carol's
    // segment at its takeover; a write of B's there first would refuse A's
    // finish, which is what the store fence is for, and not this test).
    let proxy_b = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config_b = leased(&env, spool_b.path());
    config_b.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy_b.uri());
    let b = spawn_bot(&config_b);
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    let joined = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            totals_and_segments(&env).await.1 >= 1
        })
        .await
    );
    proxy.refuse_requests(Some(("update", "voice_segments")));
    // The next flush's batch: its totals apply, its segment does not.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (total, segments) = totals_and_segments(&env).await;
            total > segments
        })
        .await,
        "no batch was cut half way; log:\n{}",
        a.log_text()
    );
    proxy_b.refuse_requests(Some(("update", "voice_segments")));
    a.freeze();
    let resume_point = env
        .db
        .db()
        .collection::<Document>("member_stats")
        .find_one(doc! { "user_id": i64::try_from(CAROL).unwrap() })
        .await
        .unwrap()
        .and_then(|d| d.get_datetime("credited_until").ok().copied())
        .expect("Carol's resume point")
        .timestamp_millis();
    b.wait_log("took the lease", Duration::from_secs(15)).await;
    let segment_writes = proxy.requests_to("update", "voice_segments");
    proxy.refuse_requests(None);
    a.thaw();
    a.wait_log("lease lost; stepping down", Duration::from_secs(10))
        .await;
    // Whatever A sends of its batch now has gone out (or nothing will).
    let _ = eventually(Duration::from_secs(5), || async {
        proxy.requests_to("update", "voice_segments") > segment_writes
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy_b.refuse_requests(None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, CAROL, None, false).await;
    let want = secs(joined, Instant::now());
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (total, segments) = totals_and_segments(&env).await;
            total >= want - 1 && total == segments
        })
        .await,
        "totals and segments (history) disagree: {:?}; log:\n{}",
        totals_and_segments(&env).await,
        a.log_text()
    );
    assert_close(totals_and_segments(&env).await.0, want, "Carol's voice");
    let fenced = study_tracker::durable::dead_letters::DeadLetters::fenced_in_dir(env.spool.path())
        .read()
        .unwrap_or_default();
    let applied_called_unwritten: Vec<_> = fenced
        .iter()
        .filter(|l| {
            matches!(l.op, study_tracker::durable::op::Op::Voice { user, to, .. }
                if user == CAROL && to <= resume_point)
        })
        .collect();
    assert!(
        applied_called_unwritten.is_empty(),
        "fenced.log holds credits MongoDB's totals hold: {applied_called_unwritten:?}"
    );
    env.assert_clean(&b);
}

/// F21, the reply lost: a batch's `member_stats` command applies but its
/// reply never arrives, and the epoch is fenced before a retry. What
/// MongoDB holds is read back before the batch is set aside: its resume
/// point holds it, so it is finished (the day's rollup gets the message
/// too), not called unwritten in `fenced.log`. A later batch that never
/// reached MongoDB is set aside, and its letter says so.
#[tokio::test]
async fn a_fenced_batch_whose_totals_were_applied_unseen_is_finished() {
    use study_tracker::core::MemberKey;
    use study_tracker::durable::dead_letters::DeadLetters;
    use study_tracker::durable::op::Op;
    let WriterThroughProxy {
        db,
        proxy,
        direct,
        dir,
        writer: w,
        tasks,
    } = writer_through_proxy().await;
    let now = study_tracker::app::now_millis();
    let member = MemberKey { guild: 1, user: 2 };
    w.set_epoch(5);
    proxy.drop_replies("update", 1);
    w.submit([Op::message(member, now, chrono_tz::UTC)]);
    assert!(
        eventually(Duration::from_secs(10), || async {
            direct
                .member(member, 0, "0000-00-00")
                .await
                .unwrap()
                .messages
                == 1
        })
        .await,
        "the totals never took the message"
    );
    w.fence_below(6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.drop_replies("update", 0);
    assert!(w.wait_idle(Duration::from_secs(30)).await);
    let day: i64 = db
        .db()
        .collection::<Document>("member_days")
        .find_one(doc! { "user_id": 2_i64 })
        .await
        .unwrap()
        .and_then(|d| d.get_i64("messages").ok())
        .unwrap_or(0);
    let fenced = DeadLetters::fenced_in_dir(dir.path())
        .read()
        .unwrap_or_default();
    assert_eq!(
        (day, fenced.len()),
        (1, 0),
        "the day's rollup lacks the message its totals hold, or fenced.log calls it unwritten: {fenced:?}"
    );
    // Under a newer epoch, lost before anything of it reached MongoDB.
    w.set_epoch(6);
    proxy.refuse_requests(Some(("update", "member_stats")));
    w.submit([Op::message(member, now, chrono_tz::UTC)]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.fence_below(7);
    assert!(w.wait_idle(Duration::from_secs(30)).await);
    let fenced = DeadLetters::fenced_in_dir(dir.path())
        .read()
        .unwrap_or_default();
    assert_eq!(fenced.len(), 1, "{fenced:?}");
    assert!(fenced[0].error.contains("never written"), "{fenced:?}");
    assert_eq!(
        direct
            .member(member, 0, "0000-00-00")
            .await
            .unwrap()
            .messages,
        1
    );
    tasks.shutdown(Duration::from_secs(5)).await;
}

/// F21, the rest: a batch cut by a lost lease between two of its
/// `member_stats` commands (more members than one command takes: 64 on a
/// store that has not asked the server, 1,000 on `DocumentDB`). The members
/// of the first command have the batch in their totals, so their other
/// documents are finished; the others never got it and are set aside as
/// never written. Before, all 100 went to `fenced.log`, and the first 64
/// kept the message in their totals but not in their day's rollup.
#[tokio::test]
async fn a_batch_cut_between_its_member_stats_commands_finishes_the_members_it_reached() {
    use study_tracker::core::MemberKey;
    use study_tracker::durable::dead_letters::DeadLetters;
    use study_tracker::durable::op::Op;
    let WriterThroughProxy {
        db,
        proxy,
        direct,
        dir,
        writer: w,
        tasks,
    } = writer_through_proxy().await;
    let now = study_tracker::app::now_millis();
    let member = |user| MemberKey { guild: 1, user };
    w.set_epoch(5);
    // The second `member_stats` command (members 1064 to 1099, in `_id`
    // order) never reaches the server.
    proxy.refuse_containing(Some(b"1:1099"));
    w.submit((1_000..1_100).map(|u| Op::message(member(u), now, chrono_tz::UTC)));
    let messages = |user| {
        let direct = direct.clone();
        async move {
            direct
                .member(member(user), 0, "0000-00-00")
                .await
                .unwrap()
                .messages
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            messages(1_063).await == 1
        })
        .await,
        "the first member_stats command never applied"
    );
    w.fence_below(6);
    // The read-back of the fenced batch names every member: let it through
    // (the fence keeps the batch's own commands from going out again).
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.refuse_containing(None);
    assert!(w.wait_idle(Duration::from_secs(30)).await);
    let days = db.db().collection::<Document>("member_days");
    let day = |user: i64| {
        let days = days.clone();
        async move {
            days.find_one(doc! { "user_id": user })
                .await
                .unwrap()
                .and_then(|d| d.get_i64("messages").ok())
                .unwrap_or(0)
        }
    };
    let fenced = DeadLetters::fenced_in_dir(dir.path())
        .read()
        .unwrap_or_default();
    assert_eq!(
        (day(1_000).await, day(1_063).await, fenced.len()),
        (1, 1, 36),
        "the members the batch reached lack it in their day's rollup, or were set aside: {:?}",
        fenced.first()
    );
    assert!(
        fenced.iter().all(|l| l.error.contains("never written")),
        "{fenced:?}"
    );
    assert_eq!((messages(1_064).await, day(1_099).await), (0, 0));
    tasks.shutdown(Duration::from_secs(5)).await;
}

/// A writer alone (no bot) on a spool of its own, writing through a fault
/// proxy to a fresh database; `direct` reads that database around the proxy.
struct WriterThroughProxy {
    db: crate::support::db::TestDb,
    proxy: FaultProxy,
    direct: study_tracker::store::Store,
    dir: tempfile::TempDir,
    writer: study_tracker::durable::writer::Writer,
    tasks: study_tracker::durable::writer::WriterTasks,
}

async fn writer_through_proxy() -> WriterThroughProxy {
    use study_tracker::durable::spool::Spool;
    use study_tracker::durable::writer::{self, WriterOptions};
    let db = crate::support::db::fresh_db().await;
    let proxy = FaultProxy::start(socket_addr_of(&db.uri)).await;
    let uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let store = study_tracker::store::Store::connect(&uri, &db.name)
        .await
        .unwrap();
    let direct = study_tracker::store::Store::from_database(db.db());
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let (writer, tasks) = writer::start(store, spool, WriterOptions::default());
    WriterThroughProxy {
        db,
        proxy,
        direct,
        dir,
        writer,
        tasks,
    }
}
