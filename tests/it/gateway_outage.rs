//! Discord gateway outages: the real binary against the simulator, whose
//! gateway drops the connection and refuses reconnects for a while. An outage
//! is treated like the bot being down: time is credited up to the disconnect,
//! and on reconnect members still in voice get the gap credited only within
//! `RESUME_GRACE_SECS`.
//!
//! Serenity 0.12 answers a dropped connection with two immediate `RESUME`
//! attempts; when they fail it restarts the shard (about 5 s later) and
//! retries every 5 s, each time with a new `IDENTIFY`. So after an outage the
//! bot gets a `GUILD_CREATE` snapshot, and the shortest outage it can see is
//! about 5 s.

use std::time::{Duration, Instant};

use crate::e2e::{assert_close, secs, stored, Env, ALICE, CAROL, CONNECT, DAVE, GUILD, VC1};
use crate::support::bot::Bot;
use crate::support::poll::eventually;

/// Long enough for a refused reconnect, the shard restart and the next try.
const RECONNECT: Duration = Duration::from_secs(30);

/// Drops the gateway for `refuse_for` and waits for the bot's next
/// `IDENTIFY` (its snapshot is then on the way); returns (drop, reconnect).
async fn outage(env: &Env, bot: &Bot, refuse_for: Duration) -> (Instant, Instant) {
    let identified = env.sim.connections();
    let dropped = Instant::now();
    env.sim.gateway_outage(refuse_for);
    env.sim.wait_connections(identified + 1, RECONNECT).await;
    let reconnected = Instant::now();
    assert!(
        env.sim.refused_upgrades() > 0,
        "the bot tried to reconnect during the outage\n{}",
        bot.log_text()
    );
    (dropped, reconnected)
}

/// Waits until the member's stored voice time (camera on + off) reaches at
/// least `want - 1`, lets a few flushes run (a wrongly open session would keep
/// growing), and returns it.
async fn settled_voice(env: &Env, bot: &Bot, user: u64, want: i64) -> i64 {
    let store = env.store();
    let total = |t: (i64, i64, i64)| t.0 + t.1;
    assert!(
        eventually(Duration::from_secs(10), || async {
            total(stored(&store, user).await) >= want - 1
        })
        .await,
        "stored {:?}, want {want}s\n{}",
        stored(&store, user).await,
        bot.log_text()
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    total(stored(&store, user).await)
}

/// The scenario: a member leaves while the gateway is down, and the
/// outage lasts longer than the grace period. What is stored is the time
/// until the disconnect, not until the reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_leaves_during_an_outage_is_credited_until_the_disconnect() {
    let env = Env::new().await;
    let mut config = env.config();
    config.resume_grace_secs = 3;
    // One instance: a grace this short cannot resume after a takeover
    // (refused with the lease).
    config.extra_env.push(("LEASE_TTL_SECS".into(), "0".into()));
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let identified = env.sim.connections();
    let dropped = Instant::now();
    env.sim.gateway_outage(Duration::from_secs(4));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // She leaves while the bot cannot hear it.
    env.sim.set_voice(GUILD, ALICE, None, true).await;
    env.sim.wait_connections(identified + 1, RECONNECT).await;
    let reconnected = Instant::now();
    assert!(
        reconnected.duration_since(dropped) > Duration::from_secs(3),
        "the outage outlasted the grace period"
    );

    let want = secs(join, dropped);
    let got = settled_voice(&env, &bot, ALICE, want).await;
    assert!(
        got <= want + 1 && got >= want - 1,
        "stored {got}s; she was in voice {want}s until the disconnect and left during the \
         {}s outage\n{}",
        secs(dropped, reconnected),
        bot.log_text()
    );
    assert!(
        bot.log_text().contains("gateway lost"),
        "{}",
        bot.log_text()
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// A member who stays in voice through an outage shorter than the grace
/// period keeps every second, as after a redeploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_in_voice_through_a_short_outage_keeps_every_second() {
    let env = Env::new().await;
    let mut config = env.config();
    config.resume_grace_secs = 9;
    // One instance: a grace this short cannot resume after a takeover
    // (refused with the lease).
    config.extra_env.push(("LEASE_TTL_SECS".into(), "0".into()));
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, CAROL, Some(VC1), false).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // A dropped connection that resumes at once, then an outage.
    let resumed = env.sim.resumes();
    env.sim.disconnect_client();
    env.sim.wait_resumes(resumed + 1, CONNECT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (dropped, reconnected) = outage(&env, &bot, Duration::from_secs(1)).await;
    assert!(
        reconnected.duration_since(dropped) < Duration::from_secs(8),
        "the outage stayed within the grace period"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, CAROL, None, false).await;

    let got = settled_voice(&env, &bot, CAROL, secs(join, leave)).await;
    assert_close(got, secs(join, leave), "whole stay, outage included");
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// A member who stays in voice through an outage longer than the grace
/// period gets the time before it and the time after the reconnect, not the
/// outage (as after a long downtime of the bot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_in_voice_through_a_long_outage_gets_the_time_around_it() {
    let env = Env::new().await;
    let mut config = env.config();
    config.resume_grace_secs = 3;
    // One instance: a grace this short cannot resume after a takeover
    // (refused with the lease).
    config.extra_env.push(("LEASE_TTL_SECS".into(), "0".into()));
    let mut bot = env.start_bot(&config).await;
    let join = Instant::now();
    env.sim.set_voice(GUILD, DAVE, Some(VC1), true).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (dropped, reconnected) = outage(&env, &bot, Duration::from_secs(4)).await;
    assert!(
        reconnected.duration_since(dropped) > Duration::from_secs(3),
        "the outage outlasted the grace period"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leave = Instant::now();
    env.sim.set_voice(GUILD, DAVE, None, true).await;

    // Two segments, each rounded to whole seconds.
    let want = secs(join, dropped) + secs(reconnected, leave);
    let got = settled_voice(&env, &bot, DAVE, want).await;
    assert!(
        (got - want).abs() <= 2,
        "stored {got}s; {}s before the outage + {}s after it = {want}s (the {}s outage is not \
         study time)\n{}",
        secs(join, dropped),
        secs(reconnected, leave),
        secs(dropped, reconnected),
        bot.log_text()
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}
