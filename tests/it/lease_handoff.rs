//! The message handoff at a graceful handover, by message identity (issue
//! 14, F7): real processes whose wall clocks disagree with Discord's and
//! with each other (libfaketime), and a standby whose deliveries lag and
//! whose shard resumes only after it took over. Every message is counted
//! exactly once.

use std::time::Duration;

use crate::e2e::{stored, Env, ALICE, BOB, CONNECT};
use crate::lease::{holds, leased, pair, steady_messages};
use crate::support::bot::{spawn_bot, Bot, BotConfig};
use crate::support::poll::eventually;

/// Waits until the messages stored for Alice and Bob reach `sent`, then a
/// little longer (a double count would show), and returns the total.
async fn settled_total(env: &Env, sent: i64) -> i64 {
    let store = env.store();
    let total = || async { stored(&store, ALICE).await.2 + stored(&store, BOB).await.2 };
    assert!(
        eventually(Duration::from_secs(20), || async { total().await >= sent }).await,
        "messages: {} of {sent}",
        total().await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    total().await
}

/// The lease as deployed (15 s) on a bot whose wall clock is `offset` off.
fn skewed(env: &Env, spool: &std::path::Path, offset: &str) -> BotConfig {
    let mut c = leased(env, spool).with_clock_offset(offset);
    c.extra_env.retain(|(k, _)| k != "LEASE_TTL_SECS");
    c
}

/// A holder whose clock is `a` off and a standby whose clock is `b` off,
/// both on the lease as deployed (15 s), the standby connected.
async fn skewed_pair(env: &Env, spool_b: &std::path::Path, a: &str, b: &str) -> (Bot, Bot) {
    let holder = env.start_bot(&skewed(env, env.spool.path(), a)).await;
    holder.wait_log("took the lease", CONNECT).await;
    let n = env.sim.connections() + 1;
    let standby = spawn_bot(&skewed(env, spool_b, b));
    env.sim.wait_connections(n, CONNECT).await;
    standby.wait_log("guild snapshot", CONNECT).await;
    (holder, standby)
}

#[tokio::test]
async fn a_handover_between_skewed_clocks_counts_each_message_once() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    // The holder's clock 2 s behind Discord's, the standby's 2 s ahead
    // (within a third of the TTL of each other: the lease itself holds).
    let (mut a, mut b) = skewed_pair(&env, spool_b.path(), "-2s", "+2s").await;
    let sender = steady_messages(&env, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    let sent = sender.await.unwrap();
    // Before: the handoff snowflake was the holder's clock at the signal,
    // 2 s behind the messages' ids, so the last 2 s before it were counted
    // by both.
    assert_eq!(settled_total(&env, sent).await, sent, "every message once");
    env.assert_clean(&b);
    b.stop().await;
}

#[tokio::test]
async fn a_standby_whose_shard_resumes_after_the_takeover_counts_nothing_twice() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let (mut a, mut b) = pair(&env, spool_b.path()).await;
    let b_session = env
        .sim
        .sessions()
        .last()
        .expect("the standby's session")
        .id
        .clone();
    let sender = steady_messages(&env, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The standby's deliveries stop reaching it (its connection and
    // heartbeats go on): the holder counts what it misses.
    assert!(env.sim.stall_session(&b_session));
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    assert!(eventually(Duration::from_secs(10), || async { holds(&b).await }).await);
    // Only now its shard notices and resumes: the replay brings the
    // messages the old holder counted, and those sent since.
    assert!(env.sim.resume_stalled_session(&b_session));
    env.sim.wait_resumes(1, Duration::from_secs(10)).await;
    let sent = sender.await.unwrap();
    // Before: the replayed messages below the handoff snowflake, counted
    // by the old holder, were counted again by the new one.
    assert_eq!(settled_total(&env, sent).await, sent, "every message once");
    env.assert_clean(&b);
    b.stop().await;
}

/// F3: a holder told to stop while the new instance is still starting (not
/// warm: its gateway not connected yet) keeps counting until the standby is
/// warm, within half its shutdown budget, then hands over; before, it
/// released the lease to nobody and the messages until the new instance
/// connected were lost.
#[tokio::test]
async fn a_holder_handing_over_waits_for_a_starting_standby_to_be_warm() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let config = |spool: &std::path::Path| {
        let mut c = leased(&env, spool);
        c.extra_env.retain(|(k, _)| k != "SHUTDOWN_TIMEOUT_SECS");
        c.extra_env
            .push(("SHUTDOWN_TIMEOUT_SECS".into(), "20".into()));
        c
    };
    let mut a = env.start_bot(&config(env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    // The new instance starts, but cannot connect to the gateway yet.
    env.sim.refuse_new_connections(Duration::from_secs(1));
    let mut b = spawn_bot(&config(spool_b.path()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sender = steady_messages(&env, 300);
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(30)).await.success());
    b.wait_log("took the lease", Duration::from_secs(20)).await;
    let sent = sender.await.unwrap();
    assert_eq!(settled_total(&env, sent).await, sent, "every message once");
    assert!(
        a.log_text()
            .contains("a standby is starting; counting until it is warm"),
        "the holder waited"
    );
    env.assert_clean(&b);
    b.stop().await;
}

/// F18: the lease's expiry is set and compared in the server's clock. A
/// standby whose wall clock is 20 s ahead (more than the whole 15 s TTL)
/// standing by next to a live holder never takes its lease. Before, it
/// compared the holder's expiry (the holder's clock + TTL) with its own
/// clock, took the lease at once, and the live holder stepped down at its
/// next renewal: a takeover with no handoff, while both were healthy.
#[tokio::test]
async fn a_standby_whose_clock_is_far_ahead_never_takes_a_live_holders_lease() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let (mut a, mut b) = skewed_pair(&env, spool_b.path(), "+0s", "+20s").await;
    // Past the holder's next renewal (every 5 s) and many standby tries.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(holds(&a).await, "the live holder keeps its lease");
    assert!(
        !b.log_text().contains("took the lease"),
        "the standby took a live holder's lease"
    );
    assert!(
        !a.log_text().contains("lease lost"),
        "the holder stepped down"
    );
    b.stop().await;
    a.stop().await;
}

/// F4: a holder killed (SIGKILL, OOM) while messages flow. The standby takes
/// over when the lease expires and counts, from its buffer, the messages
/// below the expiry that the dead holder never wrote (its members' totals
/// say the highest message id they hold), and none it did write. Before,
/// everything between the holder's last write and the expiry was lost
/// (about 3 s of messages here).
#[tokio::test]
async fn a_killed_holders_unwritten_messages_are_counted_by_the_standby_once() {
    let env = Env::new().await;
    let spool_b = tempfile::tempdir().unwrap();
    let (mut a, mut b) = pair(&env, spool_b.path()).await;
    let sender = steady_messages(&env, 250);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.kill().await;
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    let sent = sender.await.unwrap();
    assert_eq!(settled_total(&env, sent).await, sent, "every message once");
    env.assert_clean(&b);
    b.stop().await;
}
