//! Fault scenarios: the real binary, the Discord simulator, and a TCP fault
//! proxy between the bot and the database. Each checks the stored totals
//! against the ground truth of the timeline the test played.

use std::time::{Duration, Instant};

use crate::e2e::{assert_close, secs, stored, Env, ALICE, BOB, CAROL, CONNECT, GUILD, TEXT, VC1};
use crate::support::app::with_fast_timeouts;
use crate::support::bot::{Bot, BotConfig};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::poll::eventually;

const SETTLE: Duration = Duration::from_secs(20);

async fn proxied(env: &Env) -> (FaultProxy, BotConfig) {
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = env.config();
    config.mongodb_uri = with_fast_timeouts(&proxy.uri());
    config
        .extra_env
        .push(("SHUTDOWN_TIMEOUT_SECS".into(), "2".into()));
    (proxy, config)
}

/// Bytes of records in the spool (its 8-byte header left out).
fn spool_len(env: &Env) -> u64 {
    std::fs::metadata(env.spool.path().join("spool-v2.log"))
        .map_or(0, |m| m.len().saturating_sub(8))
}

async fn send_messages(env: &Env, author: u64, n: usize) {
    for _ in 0..n {
        env.sim.send_message(Some(GUILD), TEXT, author, false).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the messages stored for `user` reach `n`, then checks they
/// stay there (a late duplicate would push them past it).
async fn assert_messages_exactly(env: &Env, user: u64, n: i64) {
    let store = env.store();
    assert!(
        eventually(SETTLE, || async { stored(&store, user).await.2 >= n }).await,
        "messages for {user}: {:?}, want {n}",
        stored(&store, user).await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(&store, user).await.2, n, "exactly once");
}

/// Waits for a member's stored voice time (camera on or off) to reach the
/// timeline's `want`, then checks it is within one second of it.
async fn assert_voice_settles(env: &Env, user: u64, camera: bool, want: i64, what: &str) {
    let store = env.store();
    let pick = |t: (i64, i64, i64)| if camera { t.0 } else { t.1 };
    assert!(
        eventually(SETTLE, || async {
            pick(stored(&store, user).await) >= want - 1
        })
        .await,
        "{what}: {:?}, want {want}",
        stored(&store, user).await
    );
    assert_close(pick(stored(&store, user).await), want, what);
}

/// The end of a scenario: the member leaves, their whole session (from
/// `join`) must be stored within a second, the spool must drain to nothing,
/// and the bot must stop cleanly.
async fn leave_and_settle(
    env: &Env,
    mut bot: Bot,
    user: u64,
    camera: bool,
    join: Instant,
    what: &str,
) {
    let leave = Instant::now();
    env.sim.set_voice(GUILD, user, None, camera).await;
    assert_voice_settles(env, user, camera, secs(join, leave), what).await;
    assert!(
        eventually(SETTLE, || async { spool_len(env) == 0 }).await,
        "spool drained"
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_lost_after_apply_never_double_count() {
    let env = Env::new().await;
    let (proxy, config) = proxied(&env).await;
    let mut bot = env.start_bot(&config).await;
    // From now on every third update is applied by the server but its reply
    // never reaches the bot: the bot cannot know, and retries.
    proxy.drop_replies("update", 3);
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    send_messages(&env, BOB, 30).await;
    let toggle = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    send_messages(&env, CAROL, 20).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, ALICE, None, false).await;

    assert_messages_exactly(&env, BOB, 30).await;
    assert_messages_exactly(&env, CAROL, 20).await;
    let store = env.store();
    assert!(
        eventually(SETTLE, || async { spool_len(&env) == 0 }).await,
        "spool drained"
    );
    let (on, off, _) = stored(&store, ALICE).await;
    assert_close(on, secs(join, toggle), "camera on");
    assert_close(off, secs(toggle, leave), "camera off");
    assert!(
        proxy.dropped_replies() >= 5,
        "the fault was injected: {} replies dropped",
        proxy.dropped_replies()
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_under_traffic_loses_nothing() {
    let env = Env::new().await;
    let (proxy, config) = proxied(&env).await;
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    send_messages(&env, BOB, 10).await;

    proxy.set_down(true);
    send_messages(&env, BOB, 15).await;
    let toggle = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    // /ud still answers, and says why the numbers may be behind.
    let reply = env
        .sim
        .invoke_command(GUILD, TEXT, ALICE, "ud", None, CONNECT)
        .await
        .unwrap();
    assert!(reply.contains("may lag"), "{reply}");
    // It cannot know that its disk survives a redeploy, so it promises nothing.
    assert!(!reply.contains("Nothing is lost"), "{reply}");
    assert!(
        eventually(Duration::from_secs(5), || async { spool_len(&env) > 0 }).await,
        "increments wait in the spool during the outage"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    proxy.set_down(false);
    send_messages(&env, BOB, 5).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, ALICE, None, false).await;

    assert_messages_exactly(&env, BOB, 30).await;
    assert!(
        eventually(SETTLE, || async { spool_len(&env) == 0 }).await,
        "spool drained to nothing"
    );
    let (on, off, _) = stored(&env.store(), ALICE).await;
    assert_close(on, secs(join, toggle), "camera on");
    assert_close(off, secs(toggle, leave), "camera off");
    // The outage was seen: a write failed, or (the lease's renewal failing
    // first) writes were paused.
    let log = bot.log_text();
    assert!(
        log.contains("MongoDB write failed") || log.contains("writes paused"),
        "{log}"
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_a_full_spool_loses_nothing_and_resumes_sessions() {
    let env = Env::new().await;
    let (proxy, config) = proxied(&env).await;
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), true).await;
    send_messages(&env, BOB, 10).await;
    proxy.set_down(true);
    send_messages(&env, BOB, 20).await;
    // Let the increments and at least one flush reach the spool.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(spool_len(&env) > 0);
    bot.kill().await;

    // MongoDB comes back; the bot is redeployed while Carol is still in voice.
    proxy.set_down(false);
    let bot = env.start_bot(&config).await;
    bot.wait_log("loaded session checkpoints", CONNECT).await;
    assert_messages_exactly(&env, BOB, 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    leave_and_settle(&env, bot, CAROL, true, join, "session across the crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_outage_keeps_everything_for_the_next_start() {
    let env = Env::new().await;
    let (proxy, config) = proxied(&env).await;
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    send_messages(&env, BOB, 10).await;
    proxy.set_down(true);
    send_messages(&env, BOB, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(bot.stop().await.success(), "exit 0 even with MongoDB down");
    assert!(
        bot.log_text().contains("the spool keeps it"),
        "{}",
        bot.log_text()
    );
    assert!(
        spool_len(&env) > 0,
        "the spool holds what MongoDB did not get"
    );
    env.assert_clean(&bot);

    proxy.set_down(false);
    let bot = env.start_bot(&config).await;
    assert_messages_exactly(&env, BOB, 20).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    leave_and_settle(&env, bot, ALICE, false, join, "session across the restart").await;
}

/// From SIGTERM to exit, the whole shutdown fits `SHUTDOWN_TIMEOUT_SECS`
/// (the platform's kill comes after its own grace period), for a lease
/// holder with MongoDB unreachable (the renewal, the drain and the release
/// cannot succeed) and with MongoDB there.
#[tokio::test]
async fn shutdown_fits_its_timeout_in_and_out_of_an_outage() {
    const TIMEOUT: Duration = Duration::from_secs(6);
    let env = Env::new().await;
    let (proxy, mut config) = proxied(&env).await;
    config
        .extra_env
        .retain(|(k, _)| k != "SHUTDOWN_TIMEOUT_SECS" && k != "LEASE_TTL_SECS");
    config.extra_env.push((
        "SHUTDOWN_TIMEOUT_SECS".into(),
        TIMEOUT.as_secs().to_string(),
    ));
    for outage in [true, false] {
        let mut bot = env.start_bot(&config).await;
        bot.wait_log("took the lease", CONNECT).await;
        env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
        send_messages(&env, BOB, 5).await;
        proxy.set_down(outage);
        send_messages(&env, BOB, 5).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let signalled = Instant::now();
        bot.sigterm();
        bot.wait_exit(Duration::from_secs(30)).await;
        let took = signalled.elapsed();
        assert!(
            took <= TIMEOUT + Duration::from_millis(300),
            "outage: {outage}: shutdown took {took:?} against SHUTDOWN_TIMEOUT_SECS={}; log:\n{}",
            TIMEOUT.as_secs(),
            bot.log_text()
        );
        env.sim.set_voice(GUILD, ALICE, None, false).await;
        proxy.set_down(false);
    }
    assert_messages_exactly(&env, BOB, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_starts_and_tracks_while_mongodb_is_down_at_startup() {
    let env = Env::new().await;
    let (proxy, config) = proxied(&env).await;
    proxy.set_down(true);
    let mut bot = env.start_bot(&config).await;
    bot.wait_log("MongoDB not ready", CONNECT).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    send_messages(&env, BOB, 5).await;
    let reply = env
        .sim
        .invoke_command(GUILD, TEXT, ALICE, "ud", None, CONNECT)
        .await
        .unwrap();
    assert!(reply.contains("may lag"), "{reply}");
    // It cannot know that its disk survives a redeploy, so it promises nothing.
    assert!(!reply.contains("Nothing is lost"), "{reply}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    proxy.set_down(false);
    bot.wait_log("MongoDB test write succeeded", SETTLE).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, ALICE, None, true).await;
    assert_messages_exactly(&env, BOB, 5).await;
    assert_voice_settles(&env, ALICE, true, secs(join, leave), "camera on").await;
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// A redeploy on an ephemeral disk: SIGTERM's drain is cut between the
/// totals' command and the rest (the segment's end, the checkpoint), and the
/// spool goes with the container. The next start must resume exactly where
/// the stored total ends: from an older resume point it would credit the
/// same stretch again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_between_commands_and_a_lost_spool_never_double_count() {
    let env = Env::new().await;
    let (proxy, mut config) = proxied(&env).await;
    // No flush before the signal: the shutdown credit is the only one.
    config.flush_interval_secs = 30;
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    assert!(
        eventually(SETTLE, || async {
            spool_len(&env) == 0 && bot.log_text().contains("member in voice")
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.down_after_reply("update", "member_stats");
    let stop = Instant::now();
    assert!(bot.stop().await.success());
    assert!(spool_len(&env) > 0, "the cut left writes in the spool");
    let (on, _, _) = stored(&env.store(), ALICE).await;
    assert_close(on, secs(join, stop), "the totals took the shutdown credit");

    // The container's disk is gone with it.
    std::fs::remove_dir_all(env.spool.path()).unwrap();
    std::fs::create_dir_all(env.spool.path()).unwrap();
    proxy.set_down(false);
    let bot = env.start_bot(&config).await;
    bot.wait_log("loaded session checkpoints", CONNECT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    leave_and_settle(&env, bot, ALICE, true, join, "session across the redeploy").await;
}
