//! A release that never succeeds (review F14): the holder recorded where it
//! stopped before its drain (`handoff_pending`), so the standby that takes
//! over at the expiry starts from there, not from the expiry: the messages
//! in between (which the old holder no longer counted) are counted once,
//! and a camera toggle in between is credited from its own moment.

use std::time::{Duration, Instant};

use crate::e2e::{assert_close, secs, stored, Env, ALICE, BOB, CAROL, CONNECT, GUILD, VC1};
use crate::lease::{holds, leased, steady_messages};
use crate::support::bot::{spawn_bot, BotConfig};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::poll::eventually;

fn ttl(mut c: BotConfig, secs: &str) -> BotConfig {
    c.extra_env.retain(|(k, _)| k != "LEASE_TTL_SECS");
    c.extra_env.push(("LEASE_TTL_SECS".into(), secs.into()));
    c
}

#[tokio::test]
async fn a_takeover_after_a_failed_release_starts_from_the_pending_handoff() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = ttl(leased(&env, env.spool.path()), "6");
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let mut a = env.start_bot(&config).await;
    a.wait_log("took the lease", CONNECT).await;
    let spool_b = tempfile::tempdir().unwrap();
    let n = env.sim.connections() + 1;
    let mut b = spawn_bot(&ttl(leased(&env, spool_b.path()), "6"));
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    let joined = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    let sender = steady_messages(&env, 400);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // From the signal on, every statement of A's naming `released` fails:
    // its renewals and its release (the pending handoff and the ids pass).
    proxy.refuse_containing(Some(b"released"));
    a.sigterm();
    a.wait_log("pending handoff recorded", Duration::from_secs(10))
        .await;
    // During the handover, after A stopped counting: a camera toggle.
    env.sim.set_voice(GUILD, CAROL, Some(VC1), true).await;
    let toggled = Instant::now();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    assert!(
        a.log_text().contains("cannot release the lease")
            || a.log_text().contains("lease release did not finish"),
        "the release was meant to fail:\n{}",
        a.log_text()
    );
    proxy.refuse_containing(None);
    b.wait_log("took the lease", Duration::from_secs(20)).await;
    assert!(eventually(Duration::from_secs(10), || async { holds(&b).await }).await);
    assert!(
        b.log_text().contains("handoff=true"),
        "the takeover used the pending handoff:\n{}",
        b.log_text()
    );
    let sent = sender.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.sim.set_voice(GUILD, CAROL, None, true).await;
    let left = Instant::now();
    let store = env.store();
    let total = || async { stored(&store, ALICE).await.2 + stored(&store, BOB).await.2 };
    assert!(
        eventually(Duration::from_secs(20), || async { total().await >= sent }).await,
        "messages: {} of {sent}\nA:\n{}\nB:\n{}",
        total().await,
        a.log_text(),
        b.log_text()
    );
    let want_on = secs(toggled, left);
    assert!(
        eventually(Duration::from_secs(20), || async {
            stored(&store, CAROL).await.0 >= want_on - 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(total().await, sent, "every message exactly once");
    let (on, off, _) = stored(&store, CAROL).await;
    assert_close(on, want_on, "camera on from the toggle during the handover");
    assert_close(off, secs(joined, toggled), "camera off until the toggle");
    b.stop().await;
    env.assert_clean(&b);
}
