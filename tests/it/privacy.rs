//! `/privacy` end to end (issue 16, section 3 in part): opting out stops
//! counting at that moment (voice and messages) and `/ud` then says so for
//! anyone who asks; opting in counts again from that moment; the export
//! holds the member's own data and nothing of another member's, attached
//! privately and the same as `study-tracker export`.

use std::time::{Duration, Instant};

use study_tracker::core::MemberKey;

use crate::e2e::{assert_close, secs, stored, Env, ALICE, BOB, CONNECT, GUILD, TEXT, VC1};
use crate::support::bot::{run_cli, Bot};
use crate::support::discord_sim::{CommandReply, SimOption};
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
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

/// The user ids on the all-time ranking, as `study-tracker leaderboard` reads it.
fn ranked(env: &Env) -> Vec<String> {
    let (status, out, err) = run_cli(
        &[
            "leaderboard",
            "--guild",
            &GUILD.to_string(),
            "--period",
            "all",
            "--json",
        ],
        &[("MONGODB_URI", &env.db.uri), ("MONGODB_DB", &env.db.name)],
    );
    assert!(status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `/privacy export` (attached privately) and `study-tracker export` agree and
/// hold Alice's documents, none of Bob's.
async fn export_holds_only_her_data(env: &Env) {
    // The export: Alice's own documents, none of Bob's; attached privately.
    let r = privacy(env, ALICE, "export").await;
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

    // Off the rankings while opted out.
    assert_eq!(ranked(&env), vec![BOB.to_string()], "Alice is left off");
    let board = env
        .sim
        .invoke(
            GUILD,
            TEXT,
            BOB,
            "leaderboard",
            vec![SimOption::Integer("period".into(), 3)],
            CONNECT,
        )
        .await
        .unwrap();
    assert!(!board.text.contains(&ALICE.to_string()), "{}", board.text);
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

    assert_eq!(ranked(&env).len(), 2, "back on the ranking after opting in");
    export_holds_only_her_data(&env).await;
    bot.stop().await;
    env.assert_clean(&bot);
}

/// Starts `/privacy erase` as `user` and presses `which` (`confirm` or
/// `cancel`) on its buttons; returns the edited answer's text.
async fn erase_pressing(env: &Env, bot: &Bot, user: u64, which: &str) -> String {
    let id = env
        .sim
        .send_command(GUILD, TEXT, user, "privacy erase", &[])
        .unwrap();
    let r = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert!(r.ephemeral && r.text.contains("for good"), "{r:?}");
    let button = env
        .sim
        .buttons_of(id)
        .into_iter()
        .filter_map(|b| b.custom_id)
        .find(|c| c.ends_with(which))
        .expect("the erase buttons");
    // Only the member can press.
    let _ = env.sim.press_button(id, BOB, &button);
    let press = env.sim.press(id, user, &button, CONNECT).await;
    press
        .unwrap_or_else(|e| panic!("{e}\n{}", bot.log_text()))
        .text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_deletes_the_members_data_only_and_counting_goes_on_afresh() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    let store = env.store();
    let alice = MemberKey {
        guild: GUILD,
        user: ALICE,
    };
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    env.sim.set_voice(GUILD, BOB, Some(VC1), false).await;
    for author in [ALICE, ALICE, BOB] {
        env.sim.send_message(Some(GUILD), TEXT, author, false).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (a, b) = (stored(&store, ALICE).await, stored(&store, BOB).await);
            a.2 == 2 && a.1 >= 2 && b.2 == 1
        })
        .await
    );
    let cancelled = erase_pressing(&env, &bot, ALICE, "cancel").await;
    assert!(cancelled.contains("nothing was erased"), "{cancelled}");
    assert!(store.has_member_documents(alice).await.unwrap());

    let done = erase_pressing(&env, &bot, ALICE, "confirm").await;
    let erased_at = Instant::now();
    assert!(done.contains("erased"), "{done}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, ALICE, None, false).await;
    let left = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_, off, messages) = stored(&store, ALICE).await;
    assert_eq!(messages, 0, "the messages before the erasure are gone");
    assert!(
        off <= secs(erased_at, left) + 1,
        "only the seconds after it: {off}"
    );
    let bob = stored(&store, BOB).await;
    assert!(bob.2 == 1 && bob.1 >= 2, "Bob's data stays: {bob:?}");
    let audit = store
        .audit_entries(GUILD, Some(ALICE), 0, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "erase");
    assert_eq!(audit[0].actor_id, ALICE.to_string());
    assert!(audit[0].amount.is_none(), "no erased figures");
    bot.stop().await;
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_stays_erased_when_a_killed_bot_replays_its_spool() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = env.config();
    config.mongodb_uri = crate::support::app::with_fast_timeouts(&proxy.uri());
    let mut bot = env.start_bot(&config).await;
    let store = env.store();
    let alice = MemberKey {
        guild: GUILD,
        user: ALICE,
    };
    env.sim.set_voice(GUILD, ALICE, Some(VC1), false).await;
    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            let a = stored(&store, ALICE).await;
            a.2 == 1 && a.1 >= 1
        })
        .await
    );
    // MongoDB out of the bot's reach: what follows waits in its spool.
    proxy.set_down(true);
    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, ALICE, None, false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    bot.kill().await;

    // The operator erases Alice meanwhile.
    let (status, out, err) = run_cli(
        &[
            "erase",
            "--guild",
            &GUILD.to_string(),
            "--user",
            &ALICE.to_string(),
        ],
        &[("MONGODB_URI", &env.db.uri), ("MONGODB_DB", &env.db.name)],
    );
    assert!(status.success(), "{err}");
    assert!(out.contains("erased user"), "{out}");
    assert!(!store.has_member_documents(alice).await.unwrap());

    // The bot comes back on its spool and replays it: nothing of Alice's returns.
    proxy.set_down(false);
    let mut bot = env.start_bot(&config).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            bot.log_text().contains("completed a requested erasure")
        })
        .await,
        "{}",
        bot.log_text()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !store.has_member_documents(alice).await.unwrap(),
        "the spool brought back {:?}\n{}",
        stored(&store, ALICE).await,
        bot.log_text()
    );
    assert!(
        bot.log_text().contains("dropped ops of erased members"),
        "{}",
        bot.log_text()
    );
    let audit = store
        .audit_entries(GUILD, Some(ALICE), 0, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "one erasure, one entry: {audit:?}");
    assert_eq!(audit[0].actor_id, "operator");
    bot.stop().await;
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_drops_replayed_ops_up_to_it_and_applies_later_ones() {
    use study_tracker::durable::op::{Op, Sequenced};
    let db = crate::support::db::fresh_db().await;
    let store = study_tracker::store::Store::from_database(db.db());
    store.prepare().await.unwrap();
    let alice = MemberKey {
        guild: GUILD,
        user: ALICE,
    };
    let message = |seq| Sequenced {
        seq,
        epoch: 0,
        op: Op::Message {
            guild: GUILD,
            user: ALICE,
            day: "2026-12-01".into(),
            count: 1,
            max_id: None,
        },
    };
    let bob = Sequenced {
        seq: 3,
        epoch: 0,
        op: Op::Message {
            guild: GUILD,
            user: BOB,
            day: "2026-12-01".into(),
            count: 1,
            max_id: None,
        },
    };
    store.apply(&[message(1), message(2)]).await.unwrap();
    assert_eq!(store.member(alice, 0, "0000").await.unwrap().messages, 2);

    // Requested (pending): nothing of hers applies, whatever its seq.
    store.request_erasure(alice, 1_000).await.unwrap();
    store.delete_member_documents(alice).await.unwrap();
    store
        .apply(&[message(1), message(2), message(9), bob])
        .await
        .unwrap();
    assert!(
        !store.has_member_documents(alice).await.unwrap(),
        "a replay brought her back"
    );
    let bob_key = MemberKey {
        guild: GUILD,
        user: BOB,
    };
    assert_eq!(
        store.member(bob_key, 0, "0000").await.unwrap().messages,
        1,
        "others apply"
    );

    // Completed at seq 5: what was counted up to it stays erased, what comes after counts.
    store.complete_erasure(alice, 5, 2_000).await.unwrap();
    store
        .apply(&[message(4), message(5), message(6)])
        .await
        .unwrap();
    assert_eq!(
        store.member(alice, 0, "0000").await.unwrap().messages,
        1,
        "only seq 6"
    );
    // Another process reads the tombstones before its first apply.
    let other = study_tracker::store::Store::from_database(db.db());
    other.apply(&[message(2)]).await.unwrap();
    assert_eq!(other.member(alice, 0, "0000").await.unwrap().messages, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_servers_data_is_erased_after_the_retention_and_kept_if_the_bot_returns() {
    let env = Env::new().await;
    let mut config = env.config();
    // About 4 s.
    config
        .extra_env
        .push(("GUILD_RETENTION_DAYS".into(), "0.00005".into()));
    let mut bot = env.start_bot(&config).await;
    let store = env.store();
    let server = study_tracker::store::whole_guild(GUILD);
    env.sim.send_message(Some(GUILD), TEXT, ALICE, false).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.2 == 1
        })
        .await
    );
    // Removed, then back within the retention: kept.
    env.sim.remove_bot_from_guild(GUILD).await;
    bot.wait_log("removed from a server", CONNECT).await;
    env.sim.add_bot_to_guild(GUILD).await;
    bot.wait_log("back in a server", CONNECT).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        store.has_member_documents(server).await.unwrap(),
        "kept: the bot came back"
    );
    assert_eq!(stored(&store, ALICE).await.2, 1);

    // Removed for good: erased once the retention has passed, not before.
    env.sim.remove_bot_from_guild(GUILD).await;
    bot.wait_log("removed from a server", CONNECT).await;
    assert!(
        store.has_member_documents(server).await.unwrap(),
        "not before the retention"
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            !store.has_member_documents(server).await.unwrap()
        })
        .await,
        "{}",
        bot.log_text()
    );
    bot.wait_log("erased a server's data after the retention", CONNECT)
        .await;
    let audit = store.audit_entries(GUILD, None, 0, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor_id.as_str()),
        ("purge", "retention")
    );
    bot.stop().await;
    env.assert_clean(&bot);
}

/// What a takeover at an expiry asks before counting buffered messages
/// below it (issue 14, F4): the highest message id each member's totals
/// hold. An erased member (or one of an erased server) holds everything,
/// so nothing they sent before the erasure is counted again; a member
/// without totals holds nothing.
#[tokio::test]
async fn an_erased_member_holds_every_message_for_a_takeover() {
    use study_tracker::durable::op::{Op, Sequenced};
    use study_tracker::store::{whole_guild, Store};
    let db = crate::support::db::fresh_db().await;
    let store = Store::from_database(db.db());
    let now = study_tracker::app::now_millis();
    let (alice, bob, carol) = (
        MemberKey { guild: 9, user: 1 },
        MemberKey { guild: 9, user: 2 },
        MemberKey { guild: 9, user: 3 },
    );
    let other = MemberKey { guild: 8, user: 1 };
    let op = |m, id| Sequenced {
        seq: 1,
        op: Op::message_id(m, id, now, chrono_tz::UTC),
        epoch: 0,
    };
    store
        .apply(&[op(alice, 100), op(alice, 90), op(other, 5)])
        .await
        .unwrap();
    store.request_erasure(bob, now).await.unwrap();
    let written = store
        .messages_written(&[alice, bob, carol, other])
        .await
        .unwrap();
    assert_eq!(written.get(&alice), Some(&Some(100)));
    assert_eq!(
        written.get(&bob),
        Some(&Some(u64::MAX)),
        "erased: holds everything"
    );
    assert_eq!(written.get(&carol), None, "no totals: holds nothing");
    store.request_erasure(whole_guild(8), now).await.unwrap();
    let written = store.messages_written(&[other]).await.unwrap();
    assert_eq!(
        written.get(&other),
        Some(&Some(u64::MAX)),
        "its server erased"
    );
}
