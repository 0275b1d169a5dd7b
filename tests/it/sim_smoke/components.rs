//! Buttons against a poise bot: the simulator keeps the action rows of a reply, a press
//! reaches serenity's `ComponentInteractionCollector` as a `ComponentInteraction`, and the
//! answers (7 update, 6 deferred update then an edit of `@original`, 4 a new ephemeral
//! message) change what the tests read; a second answer to one press is refused.

use futures::StreamExt as _;
use serenity::all::{
    ButtonStyle, ClientBuilder, ComponentInteractionCollector, CreateActionRow, CreateButton,
    CreateInteractionResponse, CreateInteractionResponseMessage, EditInteractionResponse, GuildId,
};

use super::{assert_nothing_dropped, intents, world, Running, ALICE, BOB, GUILD, TEXT, WAIT};
use crate::support::discord_sim::{serenity_log_capture, DiscordSim};

type PoiseError = Box<dyn std::error::Error + Send + Sync>;
type PoiseContext<'a> = poise::Context<'a, (), PoiseError>;

fn row(page: u32) -> Vec<CreateActionRow> {
    vec![CreateActionRow::Buttons(vec![
        CreateButton::new("pages:prev")
            .emoji('◀')
            .style(ButtonStyle::Secondary)
            .disabled(page == 1),
        CreateButton::new("pages:next")
            .label("next")
            .disabled(page == 2),
        CreateButton::new("pages:defer").label("defer"),
    ])]
}

// `next` updates to page 2 (type 7), `defer` acknowledges (type 6) then edits the
// message, anyone but the caller gets an ephemeral refusal (type 4). Every press is
// answered as it arrives (no de-duplication), so a duplicate delivery makes a second
// callback.
/// Page 1 with buttons.
#[poise::command(slash_command, ephemeral)]
async fn pages(ctx: PoiseContext<'_>) -> Result<(), PoiseError> {
    // Collect before sending: a press may arrive as soon as the reply does.
    let mut presses = ComponentInteractionCollector::new(ctx)
        .filter(|p| p.data.custom_id.starts_with("pages:"))
        .timeout(WAIT)
        .stream();
    let reply = poise::CreateReply::default()
        .content("page 1")
        .components(row(1));
    ctx.send(reply).await?;
    while let Some(press) = presses.next().await {
        let answer = if press.user.id != ctx.author().id {
            CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content("not yours")
                    .ephemeral(true),
            )
        } else if press.data.custom_id == "pages:defer" {
            CreateInteractionResponse::Acknowledge
        } else {
            CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content(format!("page 2 (from {})", press.message.content))
                    .components(row(2)),
            )
        };
        let deferred = matches!(answer, CreateInteractionResponse::Acknowledge);
        if press.create_response(ctx, answer).await.is_ok() && deferred {
            press
                .edit_response(ctx, EditInteractionResponse::new().content("deferred edit"))
                .await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn buttons_are_kept_pressed_and_answered() {
    serenity_log_capture();
    let sim = DiscordSim::start(world()).await;
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![pages()],
            ..Default::default()
        })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                let commands = &framework.options().commands;
                poise::builtins::register_in_guild(ctx, commands, GuildId::new(GUILD)).await?;
                Ok(())
            })
        })
        .build();
    let mut client = ClientBuilder::new_with_http(sim.http_client(), intents())
        .framework(framework)
        .await
        .expect("build poise client");
    let running = Running {
        shards: std::sync::Arc::clone(&client.shard_manager),
        task: tokio::spawn(async move {
            let _ = client.start().await;
        }),
    };
    assert!(sim.wait_command_registered("pages", WAIT).await);

    let id = sim
        .send_command(GUILD, TEXT, ALICE, "pages", &[])
        .expect("dispatch /pages");
    let first = sim.wait_reply(id, WAIT).await.expect("/pages");
    assert!(first.ephemeral, "{first:?}");
    assert_eq!(first.text, "page 1");
    let buttons = sim.buttons_of(id);
    let ids: Vec<_> = buttons.iter().map(|b| b.custom_id.as_deref()).collect();
    assert_eq!(
        ids,
        [Some("pages:prev"), Some("pages:next"), Some("pages:defer")]
    );
    assert!(buttons[0].disabled && !buttons[1].disabled, "{buttons:?}");
    assert_eq!(buttons[0].emoji.as_deref(), Some("◀"));
    assert_eq!(buttons[1].label.as_deref(), Some("next"));
    assert!(
        sim.press_button(id, ALICE, "pages:prev").is_err(),
        "a disabled button cannot be pressed"
    );
    assert!(sim.press_button(id, ALICE, "pages:nope").is_err());

    // Type 7: the same message changes, with the message the press carried.
    let next = sim.press(id, ALICE, "pages:next", WAIT).await.unwrap();
    assert_eq!(next.callback_type, 7);
    assert_eq!(next.text, "page 2 (from page 1)");
    assert!(next.buttons()[1].disabled && !next.buttons()[0].disabled);
    assert_eq!(
        sim.original_message(id).unwrap()["content"],
        "page 2 (from page 1)"
    );

    // Someone else: a new ephemeral message; the pressed one is unchanged.
    let other_press = sim.press_button(id, BOB, "pages:prev").unwrap();
    let other = sim.wait_press_reply(other_press, WAIT).await.unwrap();
    assert_eq!((other.callback_type, other.ephemeral), (4, true));
    assert_eq!(other.text, "not yours");
    assert_eq!(
        sim.original_message(id).unwrap()["content"],
        "page 2 (from page 1)"
    );

    // Type 6, then an edit of `@original` with the press's token edits the pressed message.
    let deferred = sim.press(id, ALICE, "pages:defer", WAIT).await.unwrap();
    assert_eq!(deferred.callback_type, 6);
    assert_eq!(deferred.text, "deferred edit");
    assert_eq!(
        sim.original_message(id).unwrap()["content"],
        "deferred edit"
    );
    assert_eq!(sim.buttons_of(id).len(), 3, "the edit kept the buttons");

    // A duplicate delivery: the bot answers again, and Discord refuses the second answer.
    sim.redeliver_interaction(other_press).unwrap();
    let twice = sim.wait_interaction_callbacks(other_press, 2, WAIT).await;
    assert_eq!(twice.len(), 2, "{twice:?}");
    assert!(twice[0].accepted && !twice[1].accepted);
    assert_eq!(twice[1].error_code, Some(40060));

    running.stop().await;
    assert_nothing_dropped(&sim);
}
