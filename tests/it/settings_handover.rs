//! A settings change made by the lease holder just before it hands over:
//! the standby has not reloaded the settings yet (here it never would: its
//! reload interval is held at a minute), and takes over with the voice
//! changes it saw meanwhile. It must replay them under the holder's new
//! settings, or it counts a member the holder stopped counting.

use std::time::Duration;

use crate::e2e::{stored, Env, ALICE, BOB, CONNECT, GUILD, TEXT, VC1};
use crate::lease::{holds, leased, ready};
use crate::support::bot::spawn_bot;
use crate::support::discord_sim::{SimOption, EVERYONE_PERMISSIONS, P_MANAGE_GUILD};
use crate::support::poll::eventually;

#[tokio::test]
async fn a_takeover_replays_under_the_settings_the_holder_left() {
    let env = Env::new().await;
    env.sim
        .set_member_permissions(GUILD, ALICE, EVERYONE_PERMISSIONS | P_MANAGE_GUILD);
    let slow_reload = |spool: &std::path::Path| {
        let mut c = leased(&env, spool);
        c.extra_env.push((
            "STUDY_TRACKER_DEBUG_SETTINGS_REFRESH_MS".into(),
            "60000".into(),
        ));
        c
    };
    let mut a = env.start_bot(&slow_reload(env.spool.path())).await;
    a.wait_log("took the lease", CONNECT).await;
    let spool_b = tempfile::tempdir().unwrap();
    let n = env.sim.connections() + 1;
    let mut b = spawn_bot(&slow_reload(spool_b.path()));
    env.sim.wait_connections(n, CONNECT).await;
    b.wait_log("guild snapshot", CONNECT).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            ready(&b).await.0 == 200
        })
        .await
    );
    // Bob studies in VC1; the holder's manager then excludes it.
    env.sim.set_voice(GUILD, BOB, Some(VC1), false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reply = env
        .sim
        .invoke(
            GUILD,
            TEXT,
            ALICE,
            "settings exclude",
            vec![SimOption::Channel("channel".into(), VC1)],
            CONNECT,
        )
        .await
        .unwrap();
    assert!(reply.text.contains("Saved"), "{reply:?}");
    // The holder hands over at once; the standby never reloaded.
    a.sigterm();
    assert!(a.wait_exit(Duration::from_secs(20)).await.success());
    b.wait_log("took the lease", Duration::from_secs(10)).await;
    assert!(eventually(Duration::from_secs(10), || async { holds(&b).await }).await);
    let store = env.store();
    let credited = stored(&store, BOB).await.1;
    assert!(credited >= 1, "the holder credited Bob up to the exclusion");
    // Bob stays in the excluded channel: nothing more counts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.sim.set_voice(GUILD, BOB, None, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored(&store, BOB).await.1,
        credited,
        "the new holder counted Bob in the excluded channel\n{}",
        b.log_text()
    );
    b.stop().await;
    env.assert_clean(&b);
}
