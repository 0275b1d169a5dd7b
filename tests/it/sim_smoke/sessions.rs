//! Two serenity clients with the same token against one simulator: two live gateway
//! sessions for the same shard, as Discord allows (e.g. two bot processes during an
//! overlapping redeploy). Each gets every dispatch on its own session; an interaction
//! reaches both, and only the first callback acknowledges it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serenity::all::{
    Context, CreateInteractionResponse, CreateInteractionResponseMessage, EventHandler, Guild,
    HttpError, Interaction, Message, Ready, VoiceState,
};

use super::{
    assert_nothing_dropped, start_client, world, Recorder, Seen, ALICE, BOB, GUILD, TEXT, VOICE_A,
    VOICE_B, WAIT,
};
use crate::support::discord_sim::{serenity_log_capture, DiscordSim, BOT_USER_ID};
use crate::support::poll::eventually;

/// How one client's answer to an interaction went.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Accepted,
    /// Serenity surfaced an HTTP error with Discord's JSON error body.
    Refused {
        status: u16,
        code: isize,
        message: String,
    },
    Failed(String),
}

/// One bot process: records what it sees (as [`Recorder`] does), the session its `READY`
/// named, and how its answers to interactions went. Answers `/ping` with
/// `pong from <name>`.
#[derive(Clone)]
struct Twin {
    name: &'static str,
    seen: Recorder,
    session: Arc<Mutex<Option<String>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

impl Twin {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            seen: Recorder::default(),
            session: Arc::default(),
            answers: Arc::default(),
        }
    }

    /// The `session_id` of its `READY`, once it arrived and `GUILD_CREATE` followed.
    async fn session_id(&self, sim: &DiscordSim) -> String {
        self.seen
            .wait_for("guild_create", sim, |s| {
                matches!(s, Seen::GuildCreate { .. })
            })
            .await;
        self.session
            .lock()
            .unwrap()
            .clone()
            .expect("READY before GUILD_CREATE")
    }

    fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }

    fn count_voice(&self, user: u64) -> usize {
        self.seen
            .count(|s| matches!(s, Seen::Voice { user: u, .. } if *u == user))
    }
}

#[serenity::async_trait]
impl EventHandler for Twin {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        *self.session.lock().unwrap() = Some(ready.session_id.clone());
    }

    async fn guild_create(&self, ctx: Context, guild: Guild, is_new: Option<bool>) {
        self.seen.guild_create(ctx, guild, is_new).await;
    }

    async fn voice_state_update(&self, ctx: Context, old: Option<VoiceState>, new: VoiceState) {
        self.seen.voice_state_update(ctx, old, new).await;
    }

    async fn message(&self, ctx: Context, msg: Message) {
        self.seen.message(ctx, msg).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Interaction::Command(cmd) = interaction else {
            return;
        };
        self.seen.push(Seen::Command {
            name: cmd.data.name.clone(),
            user: cmd.user.id.get(),
        });
        let reply =
            CreateInteractionResponseMessage::new().content(format!("pong from {}", self.name));
        let answer = match cmd
            .create_response(&ctx.http, CreateInteractionResponse::Message(reply))
            .await
        {
            Ok(()) => Answer::Accepted,
            Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(resp))) => Answer::Refused {
                status: resp.status_code.as_u16(),
                code: resp.error.code,
                message: resp.error.message,
            },
            Err(e) => Answer::Failed(format!("{e:?}")),
        };
        self.answers.lock().unwrap().push(answer);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sessions_for_one_shard_both_receive_every_dispatch() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let (a, b) = (Twin::new("a"), Twin::new("b"));
    let client_a = start_client(&sim, a.clone()).await;
    let client_b = start_client(&sim, b.clone()).await;
    sim.wait_sessions(2, WAIT).await;
    let (id_a, id_b) = (a.session_id(&sim).await, b.session_id(&sim).await);
    assert_ne!(id_a, id_b, "each IDENTIFY is a session of its own");
    assert_eq!(sim.connections(), 2);

    sim.set_voice(GUILD, BOB, Some(VOICE_B), true).await;
    sim.send_text(Some(GUILD), TEXT, ALICE, false, "both of you")
        .await;
    for twin in [&a, &b] {
        twin.seen
            .wait_for("bob joins", &sim, |s| {
                matches!(
                    s,
                    Seen::Voice {
                        user: BOB,
                        channel: Some(VOICE_B),
                        self_video: true,
                        member: true,
                        ..
                    }
                )
            })
            .await;
        twin.seen
            .wait_for("alice's message", &sim, |s| {
                matches!(s, Seen::Message { author: ALICE, content, .. } if content == "both of you")
            })
            .await;
        assert_eq!(twin.count_voice(BOB), 1, "client {}", twin.name);
        assert_eq!(
            twin.seen.count(|s| matches!(s, Seen::GuildCreate { .. })),
            1,
            "client {}: GUILD_CREATE at its own IDENTIFY only",
            twin.name
        );
    }

    let sessions = sim.sessions();
    // The two clients identify concurrently: either may be first.
    let mut ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    let mut want = [id_a.as_str(), id_b.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "{sessions:#?}");
    for s in &sessions {
        assert!(s.connected, "{s:#?}");
        for t in [
            "READY",
            "GUILD_CREATE",
            "VOICE_STATE_UPDATE",
            "MESSAGE_CREATE",
        ] {
            assert_eq!(s.received_count(t), 1, "{t}: {s:#?}");
        }
        // Its own sequence: READY, GUILD_CREATE, the voice update, the message.
        assert_eq!(s.seq, 4, "{s:#?}");
    }

    // A client that closes normally (1000) ends its session, as on Discord; the other
    // one stays.
    client_a.stop().await;
    let gone = eventually(WAIT, || {
        std::future::ready(
            sim.sessions()
                .iter()
                .map(|s| s.id.clone())
                .eq([id_b.clone()]),
        )
    })
    .await;
    assert!(gone, "{:#?}", sim.sessions());
    client_b.stop().await;
    assert_nothing_dropped(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interaction_reaches_both_sessions_and_only_the_first_callback_counts() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let (a, b) = (Twin::new("a"), Twin::new("b"));
    let client_a = start_client(&sim, a.clone()).await;
    let client_b = start_client(&sim, b.clone()).await;
    sim.wait_sessions(2, WAIT).await;
    a.session_id(&sim).await;
    b.session_id(&sim).await;

    let id = sim
        .send_command(GUILD, TEXT, ALICE, "ping", &[])
        .expect("dispatched");
    let callbacks = sim.wait_interaction_callbacks(id, 2, WAIT).await;
    assert_eq!(callbacks.len(), 2, "both clients answered: {callbacks:#?}");
    assert!(
        callbacks[0].accepted && callbacks[0].status == 204,
        "{callbacks:#?}"
    );
    assert!(!callbacks[1].accepted, "{callbacks:#?}");
    assert_eq!(callbacks[1].status, 400);
    assert_eq!(callbacks[1].error_code, Some(40060));
    for s in sim.sessions() {
        assert_eq!(s.received_count("INTERACTION_CREATE"), 1, "{s:#?}");
    }

    // Each client ran its handler; serenity surfaced the refusal as an HTTP error.
    let answered = eventually(WAIT, || {
        std::future::ready(a.answers().len() == 1 && b.answers().len() == 1)
    })
    .await;
    assert!(answered, "a: {:?}, b: {:?}", a.answers(), b.answers());
    let (winner, loser) = if a.answers()[0] == Answer::Accepted {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert_eq!(winner.answers(), [Answer::Accepted]);
    assert_eq!(
        loser.answers(),
        [Answer::Refused {
            status: 400,
            code: 40060,
            message: "Interaction has already been acknowledged.".to_owned(),
        }]
    );
    let pong = format!("pong from {}", winner.name);
    assert_eq!(callbacks[0].body["data"]["content"], pong.as_str());
    assert_eq!(
        sim.wait_reply(id, WAIT).await.map(|r| r.text),
        Ok(pong.clone())
    );
    for twin in [&a, &b] {
        twin.seen
            .wait_for(
                "/ping",
                &sim,
                |s| matches!(s, Seen::Command { name, user: ALICE } if name == "ping"),
            )
            .await;
        // The accepted reply comes back to both as the bot's own message.
        twin.seen
            .wait_for("echo of the reply", &sim, |s| {
                matches!(s, Seen::Message { author: BOT_USER_ID, content, .. } if *content == pong)
            })
            .await;
    }

    client_a.stop().await;
    client_b.stop().await;
    assert_nothing_dropped(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_replays_only_that_sessions_missed_dispatches() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let (a, b) = (Twin::new("a"), Twin::new("b"));
    let client_a = start_client(&sim, a.clone()).await;
    let client_b = start_client(&sim, b.clone()).await;
    sim.wait_sessions(2, WAIT).await;
    let (id_a, id_b) = (a.session_id(&sim).await, b.session_id(&sim).await);

    // A's connection drops; the voice update meanwhile is live for B, buffered for A.
    assert!(sim.disconnect_session(&id_a));
    sim.set_voice(GUILD, ALICE, Some(VOICE_A), true).await;
    sim.wait_resumes(1, WAIT).await;
    for twin in [&a, &b] {
        twin.seen
            .wait_for("alice joins", &sim, |s| {
                matches!(
                    s,
                    Seen::Voice {
                        user: ALICE,
                        channel: Some(VOICE_A),
                        ..
                    }
                )
            })
            .await;
    }
    let session_a = sim.session(&id_a).expect("A's session");
    let session_b = sim.session(&id_b).expect("B's session");
    assert!(session_a.connected, "{session_a:#?}");
    assert_eq!(
        (session_a.resumes, session_a.replayed),
        (1, 1),
        "{session_a:#?}"
    );
    assert_eq!(
        (session_b.resumes, session_b.replayed),
        (0, 0),
        "{session_b:#?}"
    );
    for s in [&session_a, &session_b] {
        assert_eq!(s.received_count("VOICE_STATE_UPDATE"), 1, "{s:#?}");
    }
    assert_eq!(session_b.received_count("RESUMED"), 0);

    // After the resume both get the next one live, and each saw each update once.
    sim.set_voice(GUILD, ALICE, Some(VOICE_B), true).await;
    for twin in [&a, &b] {
        twin.seen
            .wait_for("alice moves", &sim, |s| {
                matches!(
                    s,
                    Seen::Voice {
                        user: ALICE,
                        channel: Some(VOICE_B),
                        ..
                    }
                )
            })
            .await;
        assert_eq!(twin.count_voice(ALICE), 2, "client {}", twin.name);
    }
    assert_eq!(sim.sessions().len(), 2);
    assert_eq!((sim.connections(), sim.resumes()), (2, 1));

    client_a.stop().await;
    client_b.stop().await;
    assert_nothing_dropped(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_session_is_forgotten_after_the_resume_window() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let a = Twin::new("a");
    let client = start_client(&sim, a.clone()).await;
    let first = a.session_id(&sim).await;
    sim.set_resume_window(Duration::from_millis(300));

    // Upgrades are refused for longer than the window: the session cannot be resumed.
    sim.gateway_outage(Duration::from_secs(2));
    let dropped = sim.sessions();
    assert!(dropped.len() == 1 && !dropped[0].connected, "{dropped:#?}");
    let expired = eventually(WAIT, || std::future::ready(sim.sessions().is_empty())).await;
    assert!(expired, "{:#?}", sim.sessions());

    // After the outage the client identifies a new session.
    sim.wait_connections(2, Duration::from_secs(20)).await;
    let sessions = sim.wait_sessions(1, WAIT).await;
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_ne!(sessions[0].id, first);
    client.stop().await;
    assert_nothing_dropped(&sim);
}
