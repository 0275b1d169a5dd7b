//! `/history` pages with ◀ ▶ end to end: 23 stored sessions, the real binary,
//! the simulator pressing the buttons.

use std::time::Duration;

use study_tracker::core::tracker::OpenSegment;
use study_tracker::durable::op::{Op, Sequenced};
use study_tracker::render::format_duration;

use crate::e2e::{Env, ALICE, BOB, CONNECT, GUILD, TEXT, VC1};

/// 2026-11-26T10:00:00Z
const T0: i64 = 1_795_687_200_000;
const HOUR: i64 = 3_600_000;
const SESSIONS: i64 = 23;

/// Session `i` (0 oldest): at `T0 + i` hours, `60 + i` seconds with the
/// camera on, so each has its own figure.
fn session_ops(i: i64) -> Vec<Op> {
    let start = T0 + i * HOUR;
    let checkpoint = |open: Option<i64>| Op::Checkpoint {
        guild: GUILD,
        user: ALICE,
        open: open.map(|segment_start| OpenSegment {
            channel: VC1,
            camera: true,
            segment_start,
        }),
    };
    vec![
        checkpoint(Some(start)),
        Op::Voice {
            guild: GUILD,
            user: ALICE,
            channel: VC1,
            camera: true,
            segment_start: start,
            from: start,
            to: start + (60 + i) * 1000,
            days: None,
            tz: None,
        },
        checkpoint(None),
    ]
}

/// Session `i`'s line on a page, as far as it is unique.
fn line(i: i64) -> String {
    format!("📷 {} · 🎧", format_duration(60 + i))
}

/// The sessions shown in `text`, newest first.
fn shown(text: &str) -> Vec<i64> {
    (0..SESSIONS)
        .rev()
        .filter(|i| text.contains(&line(*i)))
        .collect()
}

/// Stores the [`SESSIONS`] sessions through the store's own apply path.
async fn seed(env: &Env) {
    let ops: Vec<Op> = (0..SESSIONS).flat_map(session_ops).collect();
    let batch: Vec<Sequenced> = ops
        .into_iter()
        .zip(1_000..)
        .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
        .collect();
    let store = env.store();
    store.ensure_indexes().await.unwrap();
    store.apply(&batch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_forward_and_back_with_the_buttons() {
    let env = Env::new().await;
    seed(&env).await;
    let mut config = env.config();
    config
        .extra_env
        .push(("BUTTONS_TIMEOUT_SECS".into(), "12".into()));
    let mut bot = env.start_bot(&config).await;
    assert!(env.sim.wait_command_registered("history", CONNECT).await);

    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "history", &[])
        .unwrap();
    let first = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert!(first.ephemeral);
    assert_eq!(shown(&first.text), (13..23).rev().collect::<Vec<_>>());
    assert!(first.text.contains("· page 1 of 3\n"), "{}", first.text);
    assert!(
        first.text.contains("…and 13 older sessions"),
        "{}",
        first.text
    );
    let buttons = env.sim.buttons_of(id);
    let prev = buttons[0].custom_id.clone().unwrap();
    let next = buttons[1].custom_id.clone().unwrap();
    assert_eq!(
        (buttons.len(), buttons[0].disabled, buttons[1].disabled),
        (2, true, false),
        "{buttons:?}"
    );
    assert_eq!(buttons[0].emoji.as_deref(), Some("◀"));
    assert!(
        env.sim.press_button(id, ALICE, &prev).is_err(),
        "◀ is disabled on page 1"
    );

    // ▶, ▶: the same message shows the older pages; ▶ is disabled on the last.
    let second = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert_eq!(
        second.callback_type, 6,
        "DEFERRED_UPDATE_MESSAGE, then an edit"
    );
    assert_eq!(shown(&second.text), (3..13).rev().collect::<Vec<_>>());
    assert!(second.text.contains("· page 2 of 3\n"), "{}", second.text);
    let sum: i64 = (3..13).map(|i| 60 + i).sum();
    assert!(
        second.text.contains(&format!(
            "**10 sessions shown:** 📷 {}",
            format_duration(sum)
        )),
        "{}",
        second.text
    );
    assert!(second.buttons().iter().all(|b| !b.disabled));
    let third = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert_eq!(shown(&third.text), vec![2, 1, 0]);
    assert!(third.text.contains("· page 3 of 3\n"), "{}", third.text);
    assert!(!third.text.contains("older"), "{}", third.text);
    assert!(third.buttons()[1].disabled && !third.buttons()[0].disabled);
    assert_eq!(
        env.sim.original_message(id).unwrap()["content"].as_str(),
        Some(third.text.as_str())
    );

    // ◀ goes back; a second delivery of that press is not answered again.
    let back = env.sim.press_button(id, ALICE, &prev).unwrap();
    let back_reply = env.sim.wait_press_reply(back, CONNECT).await.unwrap();
    assert_eq!(shown(&back_reply.text), (3..13).rev().collect::<Vec<_>>());
    env.sim.redeliver_interaction(back).unwrap();
    // Presses are answered in order: once the next one is, the duplicate was seen.
    let again = env.sim.press(id, ALICE, &prev, CONNECT).await.unwrap();
    assert_eq!(shown(&again.text), (13..23).rev().collect::<Vec<_>>());
    let callbacks = env.sim.interaction_callbacks(back);
    assert_eq!(callbacks.len(), 1, "answered once: {callbacks:?}");

    // Someone else: a private refusal; the message stays on page 1.
    let bob = env.sim.press(id, BOB, &next, CONNECT).await.unwrap();
    assert_eq!((bob.callback_type, bob.ephemeral), (4, true));
    assert!(
        bob.text.contains("These buttons belong to **alice**"),
        "{}",
        bob.text
    );
    let now = env.sim.original_message(id).unwrap();
    assert!(
        now["content"].as_str().unwrap().contains("page 1 of 3"),
        "{now}"
    );

    // After BUTTONS_TIMEOUT_SECS the buttons are gone; the page stays.
    let gone = crate::support::poll::eventually(Duration::from_secs(20), || {
        std::future::ready(env.sim.buttons_of(id).is_empty())
    })
    .await;
    assert!(
        gone,
        "buttons still there: {:?}\n{}",
        env.sim.buttons_of(id),
        bot.log_text()
    );
    assert!(env.sim.press_button(id, ALICE, &next).is_err());
    let end = env.sim.original_message(id).unwrap();
    assert!(
        end["content"].as_str().unwrap().contains("page 1 of 3"),
        "{end}"
    );

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_left_by_a_restart_say_they_expired() {
    let env = Env::new().await;
    seed(&env).await;
    let mut bot = env.start_bot(&env.config()).await;
    assert!(env.sim.wait_command_registered("history", CONNECT).await);
    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "history", &[])
        .unwrap();
    env.sim.wait_reply(id, CONNECT).await.unwrap();
    let next = env.sim.buttons_of(id)[1].custom_id.clone().unwrap();
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);

    // The new process has no pager for that answer: it says so, privately.
    let mut bot = env.start_bot(&env.config()).await;
    let press = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert_eq!((press.callback_type, press.ephemeral), (4, true));
    assert_eq!(
        press.text,
        "These buttons have expired; run `/history` again."
    );
    assert!(env.sim.original_message(id).unwrap()["content"]
        .as_str()
        .unwrap()
        .contains("page 1 of 3"));
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// With a standby connected (it receives every press too), only the lease
/// holder answers, once; after a handover the new holder says the old
/// holder's buttons expired, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_answers_a_press() {
    let env = Env::new().await;
    seed(&env).await;
    let spool_b = tempfile::tempdir().unwrap();
    let (mut a, mut b) = crate::lease::pair(&env, spool_b.path()).await;
    assert!(env.sim.wait_command_registered("history", CONNECT).await);
    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "history", &[])
        .unwrap();
    env.sim.wait_reply(id, CONNECT).await.unwrap();
    let next = env.sim.buttons_of(id)[1].custom_id.clone().unwrap();
    let press = env.sim.press_button(id, ALICE, &next).unwrap();
    let reply = env.sim.wait_press_reply(press, CONNECT).await.unwrap();
    assert_eq!(shown(&reply.text), (3..13).rev().collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let callbacks = env.sim.interaction_callbacks(press);
    assert_eq!(callbacks.len(), 1, "answered once: {callbacks:?}");

    // A hands over; B holds the lease and has no pager for A's answer.
    assert!(a.stop().await.success());
    b.wait_log("took the lease", CONNECT).await;
    let late = env.sim.press_button(id, ALICE, &next).unwrap();
    let expired = env.sim.wait_press_reply(late, CONNECT).await.unwrap();
    assert_eq!((expired.callback_type, expired.ephemeral), (4, true));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.sim.interaction_callbacks(late).len(), 1);
    assert!(b.stop().await.success());
    env.assert_clean(&b);
}

/// A press whose read fails (MongoDB down) keeps the page shown and its
/// buttons, with a warning; the same press again shows the page that
/// failed. (Without MongoDB the reader knows only the session in progress,
/// which has no pages: before, the buttons went away.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_history_read_keeps_the_page_and_its_buttons() {
    use crate::support::app::with_fast_timeouts;
    use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
    let env = Env::new().await;
    seed(&env).await;
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = env.config();
    config.mongodb_uri = with_fast_timeouts(&proxy.uri());
    let mut bot = env.start_bot(&config).await;
    assert!(env.sim.wait_command_registered("history", CONNECT).await);
    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "history", &[])
        .unwrap();
    let first = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert_eq!(shown(&first.text), (13..23).rev().collect::<Vec<_>>());
    let next = env.sim.buttons_of(id)[1].custom_id.clone().unwrap();

    proxy.set_down(true);
    let failed = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(
        failed.text.contains("cannot be read right now"),
        "{}",
        failed.text
    );
    assert_eq!(
        shown(&failed.text),
        (13..23).rev().collect::<Vec<_>>(),
        "page 1 stays: {}",
        failed.text
    );
    assert_eq!(failed.buttons().len(), 2, "the buttons stay");
    proxy.set_down(false);
    let retried = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert_eq!(
        shown(&retried.text),
        (3..13).rev().collect::<Vec<_>>(),
        "page 2, the one that failed: {}",
        retried.text
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}
