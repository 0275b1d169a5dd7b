//! `/leaderboard` end to end with the Discord simulator: three members
//! ranked with the caller's place, and paging with ◀ ▶.

use std::time::Duration;

use chrono::Utc;
use study_tracker::durable::op::Op;

use super::{ms, sequenced};
use crate::e2e::{stored, Env, ALICE, BOB, CAROL, CONNECT, DAVE, GUILD, TEXT, VC1};
use crate::support::app::with_fast_timeouts;
use crate::support::discord_sim::SimOption;
use crate::support::fault_proxy::{socket_addr_of, FaultProxy};
use crate::support::poll::eventually;

/// `/leaderboard` through the simulator: three members in voice for about
/// 1.5, 3.5 and 5.5 s, ranked for today and this week, the caller's own
/// rank below, and a member with nothing told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_ranks_three_members_and_shows_the_callers_rank() {
    let env = Env::new().await;
    let mut bot = env.start_bot(&env.config()).await;
    assert!(
        env.sim
            .wait_command_registered("leaderboard", CONNECT)
            .await,
        "/leaderboard registered: {:?}",
        env.sim.registered_commands()
    );
    for user in [ALICE, BOB, CAROL] {
        env.sim
            .set_voice(GUILD, user, Some(VC1), user == ALICE)
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    env.sim.set_voice(GUILD, CAROL, None, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, BOB, None, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.set_voice(GUILD, ALICE, None, false).await;
    let store = env.store();
    assert!(
        eventually(Duration::from_secs(10), || async {
            stored(&store, ALICE).await.0 >= 5
        })
        .await,
        "never stored\n{}",
        bot.log_text()
    );
    // Let the last rollups land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Choices are sent as their index: period today = 0, week = 1.
    for (index, label) in [(0, "today"), (1, "this week")] {
        let reply = env
            .sim
            .invoke(
                GUILD,
                TEXT,
                CAROL,
                "leaderboard",
                vec![SimOption::Integer("period".into(), index)],
                CONNECT,
            )
            .await
            .unwrap();
        let text = &reply.text;
        assert!(
            text.contains(&format!("Leaderboard: {label} by voice time")),
            "{text}"
        );
        let at = |user: u64| {
            text.find(&format!("<@{user}>"))
                .unwrap_or_else(|| panic!("<@{user}> not in {text}"))
        };
        assert!(at(ALICE) < at(BOB) && at(BOB) < at(CAROL), "{text}");
        assert!(text.contains(&format!("**#1** <@{ALICE}>")), "{text}");
        assert!(text.contains(&format!("**#2** <@{BOB}>")), "{text}");
        assert!(text.contains(&format!("**#3** <@{CAROL}>")), "{text}");
        assert!(text.contains("You: **#3** of 3"), "{text}");
        assert!(!text.contains(&format!("<@{DAVE}>")), "{text}");
    }
    let dave = env
        .sim
        .invoke(GUILD, TEXT, DAVE, "leaderboard", Vec::new(), CONNECT)
        .await
        .unwrap();
    assert!(dave.text.contains("You: not ranked"), "{}", dave.text);

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// `/leaderboard` pages with ◀ ▶: 23 members this week, 10 a page; the
/// caller's own place under every page; only the caller may press.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_pages_with_the_buttons() {
    let env = Env::new().await;
    // Member i has (23 - i) minutes today; ALICE has the least (rank 23).
    let today = Utc::now().date_naive();
    let users: Vec<u64> = (0..22)
        .map(|i| 1_700_000_000_000_100_000 + i)
        .chain([ALICE])
        .collect();
    let ops: Vec<Op> = users
        .iter()
        .zip(0_i64..)
        .map(|(user, i)| {
            let secs = if *user == ALICE { 30 } else { 60 * (23 - i) };
            Op::Voice {
                guild: GUILD,
                user: *user,
                channel: VC1,
                camera: false,
                segment_start: ms(today, 10),
                from: ms(today, 10),
                to: ms(today, 10 + secs),
                days: None,
                tz: Some(chrono_tz::UTC),
            }
        })
        .collect();
    let store = env.store();
    store.ensure_indexes().await.unwrap();
    store.apply(&sequenced(ops)).await.unwrap();
    let mut bot = env.start_bot(&env.config()).await;
    assert!(
        env.sim
            .wait_command_registered("leaderboard", CONNECT)
            .await
    );

    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "leaderboard", &[])
        .unwrap();
    let first = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert!(!first.ephemeral, "the leaderboard is public");
    let text = &first.text;
    assert!(text.contains(&format!("**#1** <@{}>", users[0])), "{text}");
    assert!(text.contains(&format!("**#10** <@{}>", users[9])), "{text}");
    assert!(!text.contains(&format!("<@{}>", users[10])), "{text}");
    assert!(text.contains("You: **#23** of 23"), "{text}");
    assert!(text.contains("Page 1 of 3 · 23 ranked"), "{text}");
    let buttons = env.sim.buttons_of(id);
    assert_eq!(
        (buttons.len(), buttons[0].disabled, buttons[1].disabled),
        (2, true, false),
        "{buttons:?}"
    );
    let next = buttons[1].custom_id.clone().unwrap();
    let prev = buttons[0].custom_id.clone().unwrap();

    let second = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert_eq!(
        second.callback_type, 6,
        "DEFERRED_UPDATE_MESSAGE, then an edit"
    );
    assert!(
        second.text.contains(&format!("**#11** <@{}>", users[10])),
        "{}",
        second.text
    );
    assert!(
        !second.text.contains(&format!("<@{}>", users[0])),
        "{}",
        second.text
    );
    assert!(
        second.text.contains("You: **#23** of 23"),
        "{}",
        second.text
    );
    let third = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(
        third.text.contains(&format!("**#23** <@{ALICE}>")),
        "{}",
        third.text
    );
    assert!(third.text.contains("Page 3 of 3"), "{}", third.text);
    assert!(third.buttons()[1].disabled && !third.buttons()[0].disabled);
    let back = env.sim.press(id, ALICE, &prev, CONNECT).await.unwrap();
    assert!(back.text.contains("Page 2 of 3"), "{}", back.text);

    // Someone else's press is answered privately and changes nothing.
    let bob = env.sim.press(id, BOB, &next, CONNECT).await.unwrap();
    assert_eq!((bob.callback_type, bob.ephemeral), (4, true));
    assert!(bob.text.contains("These buttons belong to"), "{}", bob.text);

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// `/leaderboard` run just before a midnight that starts a new day, week
/// and month (Monday 2027-02-01, UTC), paged across it: every press pages
/// the week the command was run in (23 members), not the new, empty one;
/// the footer and the buttons agree with what is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_pages_keep_their_period_across_midnight() {
    use chrono::{NaiveDate, TimeZone};
    let env = Env::new().await;
    let midnight = Utc
        .with_ymd_and_hms(2027, 2, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let sunday = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
    let users = seed_ranking(&env, sunday).await;
    // The bot's clock: 40 s before that midnight when it starts.
    let real_now = || Utc::now().timestamp_millis();
    let offset = midnight - 40_000 - real_now();
    let mut config = env.config();
    config.extra_env.push((
        "STUDY_TRACKER_DEBUG_CLOCK_OFFSET_MS".into(),
        offset.to_string(),
    ));
    let mut bot = env.start_bot(&config).await;
    assert!(
        env.sim
            .wait_command_registered("leaderboard", CONNECT)
            .await
    );
    let bot_now = || real_now() + offset;
    let until = |at: i64| async move {
        let wait = at - (real_now() + offset);
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
    };
    assert!(
        bot_now() < midnight - 10_000,
        "the bot took too long to start: {} s to midnight",
        (midnight - bot_now()) / 1000
    );
    until(midnight - 8_000).await;
    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "leaderboard", &[])
        .unwrap();
    let first = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert!(
        first.text.contains("Page 1 of 3 · 23 ranked"),
        "{}",
        first.text
    );
    let next = env.sim.buttons_of(id)[1].custom_id.clone().unwrap();
    let second = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(second.text.contains("Page 2 of 3"), "{}", second.text);
    assert!(bot_now() < midnight, "page 2 was read before midnight");

    until(midnight + 1_500).await;
    let third = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(
        third.text.contains("Page 3 of 3 · 23 ranked"),
        "{}",
        third.text
    );
    assert!(
        third.text.contains(&format!("**#23** <@{ALICE}>")),
        "{}",
        third.text
    );
    assert!(
        third
            .text
            .contains("This week ended after `/leaderboard` was run")
            && !second.text.contains("ended"),
        "{}",
        third.text
    );
    let buttons = third.buttons();
    assert_eq!(
        (buttons.len(), buttons[0].disabled, buttons[1].disabled),
        (2, false, true),
        "◀ still pages back: {buttons:?}"
    );
    let back = env
        .sim
        .press(id, ALICE, &buttons[0].custom_id.clone().unwrap(), CONNECT)
        .await
        .unwrap();
    assert!(back.text.contains("Page 2 of 3"), "{}", back.text);
    assert!(
        back.text.contains(&format!("**#11** <@{}>", users[10])),
        "{}",
        back.text
    );

    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// 23 members with voice on `day` (member i has 23 - i minutes, ALICE the
/// least: rank 23); returns them in rank order.
async fn seed_ranking(env: &Env, day: chrono::NaiveDate) -> Vec<u64> {
    let users: Vec<u64> = (0..22)
        .map(|i| 1_700_000_000_000_100_000 + i)
        .chain([ALICE])
        .collect();
    let ops: Vec<Op> = users
        .iter()
        .zip(0_i64..)
        .map(|(user, i)| {
            let secs = if *user == ALICE { 30 } else { 60 * (23 - i) };
            Op::Voice {
                guild: GUILD,
                user: *user,
                channel: VC1,
                camera: false,
                segment_start: ms(day, 10),
                from: ms(day, 10),
                to: ms(day, 10 + secs),
                days: None,
                tz: Some(chrono_tz::UTC),
            }
        })
        .collect();
    let store = env.store();
    store.ensure_indexes().await.unwrap();
    store.apply(&sequenced(ops)).await.unwrap();
    users
}

/// A bot reading MongoDB through a fault proxy, `/leaderboard` answered by
/// ALICE; returns the proxy, the bot and the answer's interaction id.
async fn paged_leaderboard_behind_a_proxy(
    env: &Env,
) -> (FaultProxy, crate::support::bot::Bot, u64) {
    let proxy = FaultProxy::start(socket_addr_of(&env.db.uri)).await;
    let mut config = env.config();
    config.mongodb_uri = with_fast_timeouts(&proxy.uri());
    let bot = env.start_bot(&config).await;
    assert!(
        env.sim
            .wait_command_registered("leaderboard", CONNECT)
            .await
    );
    let id = env
        .sim
        .send_command(GUILD, TEXT, ALICE, "leaderboard", &[])
        .unwrap();
    let first = env.sim.wait_reply(id, CONNECT).await.unwrap();
    assert!(first.text.contains("Page 1 of 3"), "{}", first.text);
    (proxy, bot, id)
}

/// The text of the message interaction `id` answered with, as it is now.
fn shown(env: &Env, id: u64) -> String {
    let message = env.sim.original_message(id).unwrap_or_default();
    let mut text = message["content"].as_str().unwrap_or("").to_owned();
    for e in message["embeds"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(&e.to_string());
    }
    text
}

/// On a slow store (each MongoDB round trip 0.9 s, so a page read takes
/// about 2 s), a double click on ▶ and a bystander's press all get their
/// answer within Discord's 3 s: the owner's presses are deferred at once
/// (type 6) and the page edited when read, the bystander is answered
/// outside the owner's reads. Both presses turn a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_answers_every_press_in_time_on_a_slow_store() {
    let env = Env::new().await;
    seed_ranking(&env, Utc::now().date_naive()).await;
    let (proxy, mut bot, id) = paged_leaderboard_behind_a_proxy(&env).await;
    let next = env.sim.buttons_of(id)[1].custom_id.clone().unwrap();
    env.sim.set_press_window(Some(Duration::from_secs(3)));
    proxy.set_delay(Duration::from_millis(900));
    let presses = [
        env.sim.press_button(id, ALICE, &next).unwrap(),
        env.sim.press_button(id, ALICE, &next).unwrap(),
        env.sim.press_button(id, BOB, &next).unwrap(),
    ];
    let mut answers = Vec::new();
    for press in presses {
        let calls = env
            .sim
            .wait_interaction_callbacks(press, 1, Duration::from_secs(20))
            .await;
        let first = calls
            .first()
            .unwrap_or_else(|| panic!("press {press} never answered"))
            .clone();
        answers.push((first.accepted, first.status, first.body["type"].clone()));
    }
    assert_eq!(
        answers,
        [
            (true, 204, 6.into()),
            (true, 204, 6.into()),
            (true, 204, 4.into())
        ],
        "(accepted, HTTP status, callback type) of each press"
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            shown(&env, id).contains("Page 3 of 3")
        })
        .await,
        "both presses turn a page: {}",
        shown(&env, id)
    );
    proxy.set_delay(Duration::ZERO);
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}

/// A press whose read fails (MongoDB down) says so and keeps the page it
/// could not show: the next ▶ shows that page, not the one after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_leaderboard_retries_the_page_a_failed_read_could_not_show() {
    let env = Env::new().await;
    let users = seed_ranking(&env, Utc::now().date_naive()).await;
    let (proxy, mut bot, id) = paged_leaderboard_behind_a_proxy(&env).await;
    let next = env.sim.buttons_of(id)[1].custom_id.clone().unwrap();
    proxy.set_down(true);
    let failed = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(
        failed.text.contains("cannot be read right now"),
        "{}",
        failed.text
    );
    proxy.set_down(false);
    let retried = env.sim.press(id, ALICE, &next, CONNECT).await.unwrap();
    assert!(
        retried.text.contains("Page 2 of 3")
            && retried.text.contains(&format!("**#11** <@{}>", users[10])),
        "▶ after the failure shows page 2, the one that failed: {}",
        retried.text
    );
    assert!(bot.stop().await.success());
    env.assert_clean(&bot);
}
