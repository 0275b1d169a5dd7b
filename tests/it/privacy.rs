//! `/privacy` end to end (issue 16, section 3 in part): opting out stops
//! counting at that moment (voice and messages) and `/ud` then says so for
//! anyone who asks; opting in counts again from that moment; the export
//! holds the member's own data and nothing of another member's, attached
//! privately and the same as `study-tracker export`.

use std::time::{Duration, Instant};

use crate::e2e::{assert_close, secs, stored, Env, ALICE, BOB, CONNECT, GUILD, TEXT, VC1};
use crate::support::bot::run_cli;
use crate::support::discord_sim::CommandReply;
use crate::support::poll::eventually;

async fn privacy(env: &Env, user: u64, sub: &str) -> CommandReply {
    let r = env
        .sim
        .invoke(
            GUILD,
            TEXT,
            user,
            &format!("privacy {sub}"),
            Vec::new(),
            CONNECT,
        )
        .await
        .unwrap();
    assert!(r.ephemeral, "/privacy {sub} answers privately: {r:?}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opting_out_stops_counting_at_that_moment_and_opting_in_resumes() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    let store = env.store();

    let t0 = Instant::now();
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    env.sim.set_voice(GUILD, BOB, Some(VC1), true).await;
    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = privacy(&env, ALICE, "optout").await;
    assert!(r.text.contains("no longer tracked"), "{}", r.text);
    let out_at = Instant::now();
    let again = privacy(&env, ALICE, "optout").await;
    assert!(again.text.contains("already opted out"), "{}", again.text);
    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    // A move while opted out starts nothing.
    env.sim.set_voice(GUILD, ALICE, Some(VC1), true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    for asker in [ALICE, BOB] {
        let ud = env
            .sim
            .invoke_command(GUILD, TEXT, asker, "ud", Some(("member", ALICE)), CONNECT)
            .await
            .unwrap();
        assert!(ud.contains("opted out of tracking"), "{ud}");
        assert!(!ud.contains("Camera"), "shows nothing: {ud}");
    }

    let r = privacy(&env, ALICE, "optin").await;
    assert!(
        r.text.contains("tracked in this server again"),
        "{}",
        r.text
    );
    let in_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, ALICE, None, false).await;
    let left = Instant::now();
    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;

    let (off_before, on_after) = (secs(t0, out_at), secs(in_at, left));
    assert!(
        eventually(Duration::from_secs(10), || async {
            let a = stored(&store, ALICE).await;
            a.2 == 2 && a.0 >= on_after - 1
        })
        .await,
        "alice {:?}\n{}",
        stored(&store, ALICE).await,
        bot.log_text()
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (on, off, messages) = stored(&store, ALICE).await;
    assert_close(off, off_before, "camera off, until the opt-out");
    assert_close(on, on_after, "camera on, from the opt-in");
    assert_eq!(
        messages, 2,
        "the message sent while opted out did not count"
    );

    // The export: Alice's own documents, none of Bob's; attached privately.
    let r = privacy(&env, ALICE, "export").await;
    assert_eq!(r.attachments.len(), 1, "{r:?}");
    let (name, bytes) = &r.attachments[0];
    assert!(
        std::path::Path::new(name)
            .extension()
            .is_some_and(|e| e == "json"),
        "{name}"
    );
    let attached: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(attached["user_id"], ALICE.to_string());
    assert_eq!(attached["opted_out"], false);
    assert!(!attached["sessions"].as_array().unwrap().is_empty());
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains(&BOB.to_string()), "nothing of Bob's: {text}");
    let (status, out, err) = run_cli(
        &[
            "export",
            "--guild",
            &GUILD.to_string(),
            "--user",
            &ALICE.to_string(),
        ],
        &[("MONGODB_URI", &env.db.uri), ("MONGODB_DB", &env.db.name)],
    );
    assert!(status.success(), "{err}");
    let cli: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "guild_id",
        "user_id",
        "totals",
        "days",
        "sessions",
        "corrections",
        "audit",
        "opted_out",
    ] {
        assert!(cli.get(key).is_some(), "{key} in {cli}");
    }
    assert_eq!(cli, attached, "the CLI and /privacy export agree");
    bot.stop().await;
    env.assert_clean(&bot);
}
