//! The lease: taking, renewing and releasing it against the real server, the
//! fence, and two real bots on one database and one simulator (a graceful
//! handover, and a holder killed).

use std::time::{Duration, Instant};

use mongodb::bson::doc;
use study_tracker::core::MemberKey;
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::durable::spool::Spool;
use study_tracker::durable::writer::{self, WriterOptions};
use study_tracker::store::{Claimant, Handoff, HandoffIds, Store};

use crate::e2e::{
    assert_close, secs, stored, Env, ALICE, BOB, CAROL, CONNECT, DAVE, GUILD, TEXT, VC1,
};
use crate::support::bot::{spawn_bot, Bot, BotConfig};
use crate::support::db::fresh_db;
use crate::support::http::{get, parse_prometheus, value};
use crate::support::poll::eventually;

const NOW: i64 = 1_795_687_200_000;

/// An instance named `name` (its spool directory's id too), whose spool
/// last held epoch `held`.
fn claim(name: &str, held: Option<u64>) -> Claimant<'_> {
    Claimant {
        name,
        instance: name,
        held_epoch: held,
    }
}

#[tokio::test]
async fn the_lease_is_taken_renewed_released_and_taken_over() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let a = store
        .acquire_lease(&claim("a", None), NOW, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.handoff, a.expired_at), (None, None));
    // Epochs never below the clock (ms): a deleted lease document cannot
    // send them back.
    assert!(a.epoch >= u64::try_from(NOW).unwrap(), "{a:?}");
    // Held: nobody else gets it, and only its holder renews it.
    assert!(store
        .acquire_lease(&claim("b", None), NOW + 1_000, 3_000)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .renew_lease("a", a.epoch, NOW + 2_000, 3_000)
        .await
        .unwrap());
    assert!(!store
        .renew_lease("b", a.epoch, NOW + 2_000, 3_000)
        .await
        .unwrap());
    assert!(store
        .acquire_lease(&claim("b", None), NOW + 4_000, 3_000)
        .await
        .unwrap()
        .is_none());
    // Released with a handoff: taken at once, the epoch raised.
    let h = Handoff {
        snowflake: 42 << 22,
        at: NOW + 4_500,
        seq: 77,
    };
    assert!(store
        .release_lease("a", a.epoch, h, &HandoffIds::default())
        .await
        .unwrap());
    let b = store
        .acquire_lease(&claim("b", None), NOW + 4_600, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.handoff, b.expired_at), (Some(h), None));
    assert!(b.epoch > a.epoch);
    // The old holder can neither renew nor release any more.
    assert!(!store
        .renew_lease("a", a.epoch, NOW + 4_700, 3_000)
        .await
        .unwrap());
    assert!(!store
        .release_lease("a", a.epoch, h, &HandoffIds::default())
        .await
        .unwrap());
    // Expired without a release: taken, with the expiry and no handoff.
    let c = store
        .acquire_lease(&claim("c", None), NOW + 8_000, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.handoff, c.expired_at), (None, Some(NOW + 7_600)));
    assert!(c.epoch > b.epoch);
    assert!(!c.reclaimed);
    // Its holder restarted on the same spool directory takes it back at
    // once, unexpired, under a new epoch; nobody else can.
    assert!(store
        .acquire_lease(&claim("b", None), NOW + 8_100, 3_000)
        .await
        .unwrap()
        .is_none());
    let again = store
        .acquire_lease(&claim("c", Some(c.epoch)), NOW + 8_200, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert!(again.reclaimed && again.epoch > c.epoch, "{again:?}");
    assert!(!store
        .renew_lease("c", c.epoch, NOW + 8_300, 3_000)
        .await
        .unwrap());
    // The same spool directory under another hostname is the same holder.
    let renamed = Claimant {
        name: "other-host:c",
        instance: "c",
        held_epoch: Some(again.epoch),
    };
    let moved = store
        .acquire_lease(&renamed, NOW + 8_400, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert!(moved.reclaimed && moved.epoch > again.epoch, "{moved:?}");
    // `check` says who holds it (here: expired long ago, by the wall clock).
    let (status, stdout, stderr) = crate::support::bot::run_cli(
        &["check"],
        &[("MONGODB_URI", &db.uri), ("MONGODB_DB", &db.name)],
    );
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("lease: expired")
            && stdout.contains(&format!(
                "last held by other-host:c at epoch {}",
                moved.epoch
            )),
        "{stdout}"
    );
}

/// An acquire whose reply never came is not "my own lease back": the
/// retry still gets the previous holder's handoff (or expiry), and a crash
/// before the epoch was recorded in `SPOOL_DIR` is the same case.
#[tokio::test]
async fn an_acquire_whose_reply_was_lost_keeps_the_previous_stop_point() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let a = store
        .acquire_lease(&claim("a", None), NOW, 3_000)
        .await
        .unwrap()
        .unwrap();
    let h = Handoff {
        snowflake: 42 << 22,
        at: NOW + 500,
        seq: 77,
    };
    assert!(store
        .release_lease("a", a.epoch, h, &HandoffIds::default())
        .await
        .unwrap());
    // Taken twice, the first reply (and the second) unseen by B.
    for _ in 0..2 {
        store
            .acquire_lease(&claim("b", None), NOW + 600, 3_000)
            .await
            .unwrap();
    }
    let b = store
        .acquire_lease(&claim("b", None), NOW + 700, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.handoff, b.reclaimed), (Some(h), false));
    // B took it (recorded its epoch), then died: its restart reclaims.
    let again = store
        .acquire_lease(&claim("b", Some(b.epoch)), NOW + 800, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert!(again.reclaimed && again.handoff.is_none(), "{again:?}");
    // The reply to that one lost too: still B's own, from the epoch it held.
    let retried = store
        .acquire_lease(&claim("b", Some(b.epoch)), NOW + 900, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert!(retried.reclaimed, "{retried:?}");
}

/// A renewal delayed in the network and applied after a newer one never
/// moves the expiry back (a standby could take a lease renewed since).
#[tokio::test]
async fn a_late_renewal_never_lowers_the_expiry() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let a = store
        .acquire_lease(&claim("a", None), NOW, 3_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .renew_lease("a", a.epoch, NOW + 2_000, 3_000)
        .await
        .unwrap());
    // The renewal sent at NOW + 1 000 arrives last.
    assert!(store
        .renew_lease("a", a.epoch, NOW + 1_000, 3_000)
        .await
        .unwrap());
    let lease = store.read_lease().await.unwrap().unwrap();
    assert_eq!(lease.expires_at, NOW + 5_000);
    assert!(store
        .acquire_lease(&claim("b", None), NOW + 4_500, 3_000)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn ops_of_an_older_epoch_are_fenced_where_a_newer_one_wrote() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let member = MemberKey { guild: 1, user: 2 };
    let msg = |seq, epoch| Sequenced {
        seq,
        op: Op::Message {
            guild: 1,
            user: 2,
            day: "2026-11-26".into(),
            count: 1,
            max_id: None,
        },
        epoch,
    };
    store.apply(&[msg(10, 1)]).await.unwrap();
    store.apply(&[msg(20, 2)]).await.unwrap();
    // Epoch 1 again, with a higher seq: refused (fenced), not a replay.
    let r = store.apply(&[msg(30, 1)]).await.unwrap();
    assert!(r.fenced > 0, "{r:?}");
    assert_eq!(r.applied, 0, "{r:?}");
    let m = store.member(member, 0, "0000-00-00").await.unwrap();
    assert_eq!(m.messages, 2);
    let stats = db
        .db()
        .collection::<mongodb::bson::Document>("member_stats");
    let d = stats.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(d.get_i64("epoch").unwrap(), 2);
    // The newer epoch goes on; epoch 0 (no lease) is not fenced.
    store.apply(&[msg(40, 2)]).await.unwrap();
    let m = store.member(member, 0, "0000-00-00").await.unwrap();
    assert_eq!(m.messages, 3);
}

/// A statement the store refuses because a newer epoch wrote the document
/// is set aside like any fenced op (`fenced.log`, the fenced count), and is
/// not counted as applied.
#[tokio::test]
async fn ops_the_store_refuses_as_fenced_are_counted_fenced_not_applied() {
    let db = fresh_db().await;
    let store = Store::from_database(db.db());
    let member = MemberKey { guild: 1, user: 2 };
    let tz = chrono_tz::UTC;
    // A newer holder (epoch 9) wrote the member's totals.
    store
        .apply(&[Sequenced {
            seq: 10,
            op: Op::message(member, NOW, tz),
            epoch: 9,
        }])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    let (w, tasks) = writer::start(store.clone(), spool, WriterOptions::default());
    w.set_epoch(5);
    w.submit([Op::message(member, NOW, tz)]);
    assert!(w.wait_idle(Duration::from_secs(20)).await);
    let status = w.status();
    assert_eq!((status.fenced, status.applied), (1, 0), "{status:?}");
    let fenced = study_tracker::durable::dead_letters::DeadLetters::fenced_in_dir(dir.path())
        .read()
        .unwrap();
    assert_eq!(fenced.len(), 1, "{fenced:?}");
    let m = store.member(member, 0, "0000-00-00").await.unwrap();
    assert_eq!(m.messages, 1, "refused, not applied");
    tasks.shutdown(Duration::from_secs(5)).await;
}

pub fn leased(env: &Env, spool: &std::path::Path) -> BotConfig {
    let mut c = BotConfig::new(&env.sim, &env.db.uri, &env.db.name, spool);
    c.extra_env.push(("LEASE_TTL_SECS".into(), "3".into()));
    c.extra_env
        .push(("SHUTDOWN_TIMEOUT_SECS".into(), "5".into()));
    c
}

/// Waits until `/readyz` says `bot` is ready (warm) as a standby.
async fn wait_warm_standby(bot: &Bot) {
    let warm = eventually(Duration::from_secs(10), || async {
        ready(bot).await.0 == 200
    })
    .await;
    let body = ready(bot).await.1;
    assert!(warm, "{body}");
    assert_eq!(body["lease"]["held"], false);
    assert_eq!(body["lease"]["state"], "standby");
}

/// Whether `/readyz` says the bot is ready and holds the lease.
pub async fn holds(bot: &Bot) -> bool {
    let (status, body) = ready(bot).await;
    status == 200 && body["lease"]["held"] == true
}

pub async fn ready(bot: &Bot) -> (u16, serde_json::Value) {
    let r = get(bot.http_addr(), "/readyz").await;
    (r.status, r.json())
}

/// Two bots: A holds the lease, B stands by (connected to the simulator).
pub async fn pair(env: &Env, spool_b: &std::path::Path) -> (Bot, Bot) {
    let a = env.start_bot(&leased(env, env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let n = env.sim.connections() + 1;
    let b = spawn_bot(&leased(env, spool_b));
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    (a, b)
}

#[tokio::test]
async fn a_graceful_handover_counts_everything_exactly_once() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let (mut a, mut b) = pair(&env, spool_b.path()).await;
    let joined = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            ready(&a).await.0 == 200
        })
        .await
    );
    // A warm standby is ready (a rollout may stop the old one now); the
    // body says it stands by.
    wait_warm_standby(&b).await;
    // Both are alive (a platform may start the new one before stopping the
    // old), and `/metrics` says which holds the lease.
    for (bot, state) in [(&a, "holder"), (&b, "standby")] {
        assert_eq!(get(bot.http_addr(), "/healthz").await.status, 200);
        let samples = parse_prometheus(&get(bot.http_addr(), "/metrics").await.body);
        let on = value(&samples, "study_tracker_lease_state", &[("state", state)]);
        assert_eq!(on, Some(1.0), "{state}");
    }
    // Messages at a steady rate from two members across the handover.
    let sender = steady_messages(&env, 150);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = env
        .sim
        .send_command(GUILD, TEXT, BOB, "ud", &[])
        .expect("a session to deliver to");
    env.sim
        .wait_reply(before, Duration::from_secs(10))
        .await
        .unwrap();
    a.sigterm();
    let during = env.sim.send_command(GUILD, TEXT, BOB, "ud", &[]);
    // During the handover (the old holder settles and drains, the standby
    // has not taken over): a camera toggle and a join, each to be credited
    // from its own moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.sim.set_voice(GUILD, CAROL, Some(VC1), true).await;
    let toggled = Instant::now();
    env.sim.set_voice(GUILD, DAVE, Some(VC1), false).await;
    let dave_joined = Instant::now();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    let sent: i64 = sender.await.unwrap();
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    assert!(eventually(Duration::from_secs(10), || async { holds(&b).await }).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, CAROL, None, true).await;
    env.sim.set_voice(GUILD, DAVE, None, false).await;
    let left = Instant::now();
    let store = env.store();
    let total = || async { stored(&store, ALICE).await.2 + stored(&store, BOB).await.2 };
    assert!(
        eventually(Duration::from_secs(20), || async { total().await >= sent }).await,
        "messages: {} of {sent}",
        total().await
    );
    let (off, on) = (secs(joined, toggled), secs(toggled, left));
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (c_on, c_off, _) = stored(&store, CAROL).await;
            c_on + c_off >= off + on - 1 && stored(&store, DAVE).await.1 >= 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(total().await, sent, "every message exactly once");
    assert_eq!(stored(&store, ALICE).await.2, sent / 2);
    let (c_on, c_off, _) = stored(&store, CAROL).await;
    assert_close(
        c_off,
        off,
        "camera off until the toggle during the handover",
    );
    assert_close(c_on, on, "camera on from the toggle during the handover");
    assert_close(
        stored(&store, DAVE).await.1,
        secs(dave_joined, left),
        "a join during the handover, from its own moment",
    );
    // Before the signal only the old holder answered, during the handover
    // at most one of them, after it only the new holder: each once.
    let during = during.expect("a session to deliver to");
    assert!(
        env.sim.interaction_callbacks(during).len() <= 1,
        "{:?}",
        env.sim.interaction_callbacks(during)
    );
    let after = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "ud", &[])
        .expect("a session to deliver to");
    env.sim
        .wait_reply(after, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in [before, after] {
        assert_answered_once(&env, id);
    }
    b.stop().await;
}

/// `n` messages, 20 ms apart, from Alice and Bob in turn; the task returns
/// how many it sent.
pub fn steady_messages(env: &Env, n: usize) -> tokio::task::JoinHandle<i64> {
    let sim = env.sim.clone();
    tokio::spawn(async move {
        let mut sent = 0;
        for i in 0..n {
            let author = if i % 2 == 0 { ALICE } else { BOB };
            sim.send_message(Some(GUILD), TEXT, author, false).await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    })
}

#[track_caller]
fn assert_answered_once(env: &Env, id: u64) {
    let callbacks = env.sim.interaction_callbacks(id);
    assert_eq!(
        callbacks.iter().filter(|c| c.accepted).count(),
        1,
        "{callbacks:?}"
    );
    assert_eq!(callbacks.len(), 1, "answered once: {callbacks:?}");
}

#[tokio::test]
async fn a_killed_holder_is_replaced_when_the_lease_expires() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let (mut a, b) = pair(&env, spool_b.path()).await;
    let mut sent = 0;
    for _ in 0..20 {
        env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = Instant::now();
    a.kill().await;
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "took {:?}",
        killed.elapsed()
    );
    for _ in 0..20 {
        env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = env.store();
    // Some of A's last messages may be lost with it; none is counted twice.
    assert!(
        eventually(Duration::from_secs(15), || async {
            stored(&store, ALICE).await.2 >= 20
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = stored(&store, ALICE).await.2;
    assert!(got <= sent && got >= 20, "stored {got} of {sent}");
    drop(b);
}

/// F22: settings under which no takeover could resume a session are
/// refused at start, with one line naming them (before: a warning, and the
/// bot ran).
#[test]
fn settings_that_make_resuming_impossible_are_refused_at_start() {
    use std::process::{Command, Stdio};
    for (grace, named) in [
        ("10", "RESUME_GRACE_SECS (10)"),
        ("0", "RESUME_GRACE_SECS=0"),
    ] {
        let spool = tempfile::tempdir().unwrap();
        let mut child = Command::new(crate::support::bot::BIN)
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DISCORD_TOKEN", "x")
            .env("MONGODB_URI", "mongodb://127.0.0.1:1/")
            .env("SPOOL_DIR", spool.path())
            .env("FLUSH_INTERVAL_SECS", "1")
            .env("RESUME_GRACE_SECS", grace)
            .current_dir(spool.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(15) {
                child.kill().unwrap();
                panic!("RESUME_GRACE_SECS={grace}: ran instead of refusing");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
}
