//! ◀ ▶ buttons under a paged answer (`/history`; meant for `/leaderboard`
//! too): the custom ids, the button row, and the loop that answers presses
//! until the buttons time out. The page math is [`crate::core::paging`];
//! what a page shows is the command's.
//!
//! - Custom ids are `{command}:{nonce}:prev` and `…:next`, the nonce being
//!   the command's interaction id, so a press reaches only the answer it was
//!   pressed on.
//! - Only the member who ran the command may page; anyone else gets a
//!   private "these buttons belong to …" (on a public answer everyone sees
//!   the buttons).
//! - A press is answered once: a duplicate delivery of the same interaction
//!   is ignored (Discord would refuse a second answer anyway).
//! - Only the lease holder answers (it alone runs commands); an instance
//!   that loses the lease stops answering presses at once.
//! - After `BUTTONS_TIMEOUT_SECS` the buttons are removed from the answer.
//! - A press on buttons no pager of this process answers (left by a restart,
//!   a crash or a lease handover) gets a private "these buttons have
//!   expired" from the lease holder ([`answer_stale`]), not Discord's "This
//!   interaction failed".

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::{Context, Data, Error};
use crate::core::paging::{Page, Step};
use crate::telemetry::cause_chain;

/// The serenity type-map key under which the client keeps
/// `BUTTONS_TIMEOUT_SECS`.
pub(super) struct ButtonsTimeout;

impl serenity::prelude::TypeMapKey for ButtonsTimeout {
    type Value = Duration;
}

/// The serenity type-map key of the pagers running in this process: their
/// custom-id prefixes.
pub(super) struct LivePagers;

impl serenity::prelude::TypeMapKey for LivePagers {
    type Value = Arc<Mutex<HashSet<String>>>;
}

/// A pager's prefix in [`LivePagers`] while it runs (removed on drop).
struct Live {
    set: Option<Arc<Mutex<HashSet<String>>>>,
    prefix: String,
}

impl Live {
    async fn register(ctx: Context<'_>, prefix: &str) -> Live {
        let set = ctx
            .serenity_context()
            .data
            .read()
            .await
            .get::<LivePagers>()
            .cloned();
        if let Some(set) = &set {
            set.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(prefix.to_owned());
        }
        Live {
            set,
            prefix: prefix.to_owned(),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(set) = &self.set {
            set.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.prefix);
        }
    }
}

/// If the client was built without [`ButtonsTimeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What one page shows.
pub(super) struct PageView {
    pub content: String,
    pub embeds: Vec<serenity::CreateEmbed>,
    pub page: Page,
}

/// `{command}:{nonce}:prev` or `…:next`.
fn custom_id(prefix: &str, step: Step) -> String {
    let step = match step {
        Step::Prev => "prev",
        Step::Next => "next",
    };
    format!("{prefix}:{step}")
}

/// Whether `custom_id` is one of the buttons under `prefix` (not merely
/// starting with the same digits: `history:12` is not under `history:1`).
fn is_under(prefix: &str, custom_id: &str) -> bool {
    custom_id
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// A pager's custom id split into its prefix (`{command}:{nonce}`) and
/// command; `None` for any other custom id.
fn split(custom_id: &str) -> Option<(&str, &str)> {
    let (prefix, step) = custom_id.rsplit_once(':')?;
    let (command, nonce) = prefix.split_once(':')?;
    let ours = matches!(step, "prev" | "next")
        && !nonce.is_empty()
        && nonce.bytes().all(|b| b.is_ascii_digit());
    ours.then_some((prefix, command))
}

/// The step a custom id under `prefix` asks for.
fn parse(prefix: &str, custom_id: &str) -> Option<Step> {
    match custom_id.strip_prefix(prefix)? {
        ":prev" => Some(Step::Prev),
        ":next" => Some(Step::Next),
        _ => None,
    }
}

/// ◀ ▶ for `page`, each disabled at its end; none for a single page.
fn buttons(prefix: &str, page: &Page) -> Vec<serenity::CreateActionRow> {
    if !page.is_paged() {
        return Vec::new();
    }
    let button = |step, emoji, enabled: bool| {
        serenity::CreateButton::new(custom_id(prefix, step))
            .emoji(emoji)
            .style(serenity::ButtonStyle::Secondary)
            .disabled(!enabled)
    };
    vec![serenity::CreateActionRow::Buttons(vec![
        button(Step::Prev, '◀', page.has_prev()),
        button(Step::Next, '▶', page.has_next()),
    ])]
}

/// Sends `first` with ◀ ▶ under it when it has pages, then answers presses
/// until the buttons time out, then removes them. See the module doc for
/// who may press.
///
/// Every press must be answered within 3 s of its own creation, whatever
/// else is going on, so:
/// - an owner's press is acknowledged at once with `DEFERRED_UPDATE_MESSAGE`
///   (type 6), then its page is read (`show`, in press order) and the
///   message edited through the press's token;
/// - anyone else's press is refused from a task of its own, never behind a
///   read.
///
/// `show(index)` is the page to draw, or the warning to show when it could
/// not be read: then the message keeps the page it showed (with the
/// warning), so the same press again retries the page that failed.
///
/// # Errors
/// The first page cannot be sent. Failed answers to presses are logged.
pub(super) async fn send_paged<F, Fut>(
    ctx: Context<'_>,
    command: &'static str,
    first: PageView,
    mut show: F,
) -> Result<(), Error>
where
    F: FnMut(usize) -> Fut + Send,
    Fut: Future<Output = Result<PageView, String>> + Send,
{
    let prefix = format!("{command}:{}", ctx.id());
    let reply = |view: &PageView| {
        let mut reply = CreateReply::default().content(view.content.clone());
        reply.embeds.clone_from(&view.embeds);
        reply
    };
    if !first.page.is_paged() {
        ctx.send(reply(&first)).await?;
        return Ok(());
    }
    let timeout = ctx
        .serenity_context()
        .data
        .read()
        .await
        .get::<ButtonsTimeout>()
        .copied()
        .unwrap_or(DEFAULT_TIMEOUT);
    // Collect before sending: a press can arrive as soon as the answer does.
    let live = Live::register(ctx, &prefix).await;
    let wanted = prefix.clone();
    let mut presses = serenity::ComponentInteractionCollector::new(ctx)
        .filter(move |p| is_under(&wanted, &p.data.custom_id))
        .timeout(timeout)
        .stream();
    ctx.send(reply(&first).components(buttons(&prefix, &first.page)))
        .await?;
    let owner = ctx.author().clone();
    let http = ctx.serenity_context().http.clone();
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel();
    // Takes every press as it comes: defers the owner's (then queues it for
    // a read), refuses anyone else's from a task of its own.
    let receive = async {
        let queue = queue;
        let mut answered = HashSet::new();
        while let Some(press) = presses.next().await {
            if !answered.insert(press.id) {
                tracing::debug!(command, "a press delivered twice; answered already");
                continue;
            }
            if !ctx.data().lease().counts() {
                tracing::info!(command, "lost the lease; no longer answering its buttons");
                return false;
            }
            if press.user.id == owner.id {
                let Some(step) = parse(&prefix, &press.data.custom_id) else {
                    continue;
                };
                let defer = serenity::CreateInteractionResponse::Acknowledge;
                match press.create_response(&*http, defer).await {
                    Ok(()) => {
                        let _ = queue.send((press, step));
                    }
                    Err(e) => {
                        tracing::warn!(command, error = %cause_chain(&e), "cannot answer a button press");
                    }
                }
            } else {
                refuse(&http, press, command, owner.display_name());
            }
        }
        true
    };
    // Reads and shows the owner's pages, one press after another.
    let answer = async {
        let mut page = first.page;
        let mut content = first.content.clone();
        while let Some((press, step)) = queued.recv().await {
            if !ctx.data().lease().counts() {
                continue;
            }
            let (edit, shown, text) = match show(page.step(step)).await {
                Ok(view) => (
                    serenity::EditInteractionResponse::new()
                        .content(view.content.clone())
                        .embeds(view.embeds)
                        .components(buttons(&prefix, &view.page)),
                    view.page,
                    view.content,
                ),
                // The page shown stays (its embeds are not touched), with the
                // warning above its text, and so do its buttons: the same
                // press retries the page that failed.
                Err(warning) => (
                    serenity::EditInteractionResponse::new()
                        .content(with_warning(&warning, &content))
                        .components(buttons(&prefix, &page)),
                    page,
                    content.clone(),
                ),
            };
            match press.edit_response(&*http, edit).await {
                // The message shows the new page only once Discord took it.
                Ok(_) => (page, content) = (shown, text),
                Err(e) => {
                    tracing::warn!(command, error = %cause_chain(&e), "cannot show the page a button asked for");
                }
            }
        }
    };
    let (still_holder, ()) = tokio::join!(receive, answer);
    // From here on a press is answered "expired" (`answer_stale`), not left
    // to fail.
    drop(live);
    // An instance that lost the lease leaves the message to the holder.
    if still_holder {
        remove_buttons(ctx, command).await;
    }
    Ok(())
}

/// Tells someone who is not the owner, privately, that the buttons are not
/// theirs, from a task of its own (never behind the owner's reads).
fn refuse(
    http: &Arc<serenity::Http>,
    press: serenity::ComponentInteraction,
    command: &'static str,
    owner: &str,
) {
    let text =
        format!("These buttons belong to **{owner}**; run `/{command}` to page through your own.");
    let http = Arc::clone(http);
    tokio::spawn(async move {
        let refusal = serenity::CreateInteractionResponse::Message(
            serenity::CreateInteractionResponseMessage::new()
                .content(text)
                .ephemeral(true),
        );
        if let Err(e) = press.create_response(&*http, refusal).await {
            tracing::warn!(command, error = %cause_chain(&e), "cannot answer a button press");
        }
    });
}

/// `warning` above the text of the page shown, within Discord's 2,000
/// characters of content (else the warning alone).
fn with_warning(warning: &str, text: &str) -> String {
    let both = if text.is_empty() {
        warning.to_owned()
    } else {
        format!("{warning}\n{text}")
    };
    if both.chars().count() <= 2_000 {
        both
    } else {
        warning.to_owned()
    }
}

/// Answers a press on pager buttons that no pager of this process answers
/// (the one that sent them ended with a restart, a crash or a lease
/// handover): privately, "these buttons have expired". Only the lease
/// holder answers; other components are not ours.
pub(super) async fn answer_stale(
    ctx: &serenity::Context,
    press: &serenity::ComponentInteraction,
    app: &Data,
) {
    let Some((prefix, command)) = split(&press.data.custom_id) else {
        return;
    };
    if !app.lease().counts() {
        return;
    }
    let live = ctx.data.read().await.get::<LivePagers>().cloned();
    if live.is_some_and(|set| {
        set.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(prefix)
    }) {
        return;
    }
    let text = format!("These buttons have expired; run `/{command}` again.");
    let answer = serenity::CreateInteractionResponse::Message(
        serenity::CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true),
    );
    if let Err(e) = press.create_response(ctx, answer).await {
        tracing::warn!(command, error = %cause_chain(&e), "cannot answer a press on expired buttons");
    }
}

/// Removes the buttons from the command's answer (its content stays).
async fn remove_buttons(ctx: Context<'_>, command: &str) {
    let poise::Context::Application(actx) = ctx else {
        return;
    };
    let edit = serenity::EditInteractionResponse::new().components(Vec::new());
    if let Err(e) = actx.interaction.edit_response(ctx, edit).await {
        tracing::warn!(command, error = %cause_chain(&e), consequence = "the buttons stay but no longer answer", "cannot remove the buttons");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip_under_their_prefix_only() {
        let id = custom_id("history:42", Step::Next);
        assert_eq!(id, "history:42:next");
        assert_eq!(parse("history:42", &id), Some(Step::Next));
        assert_eq!(parse("history:42", "history:42:prev"), Some(Step::Prev));
        assert_eq!(parse("history:4", &id), None);
        assert_eq!(parse("history:42", "history:42:next:x"), None);
        assert!(is_under("history:42", &id));
        assert!(!is_under("history:4", &id), "another answer's buttons");
        assert!(!is_under("history:42", "leaderboard:42:next"));
        assert_eq!(split(&id), Some(("history:42", "history")));
        assert_eq!(
            split("leaderboard:7:prev"),
            Some(("leaderboard:7", "leaderboard"))
        );
        for other in [
            "history:42:up",
            "history:x2:next",
            "history::next",
            "next",
            "a:b",
        ] {
            assert_eq!(split(other), None, "{other}");
        }
    }

    #[test]
    fn buttons_are_disabled_at_the_ends_and_absent_for_one_page() {
        let json = |page: Page| serde_json::to_value(buttons("h:1", &page)).unwrap();
        let first = json(Page::of(0, 25, 10, false));
        let row = &first[0]["components"];
        assert_eq!(row[0]["custom_id"], "h:1:prev");
        assert_eq!(row[0]["disabled"], true);
        assert_eq!(row[0]["emoji"]["name"], "◀");
        assert_eq!(row[1]["custom_id"], "h:1:next");
        assert_eq!(row[1]["disabled"], false);
        let last = json(Page::of(2, 25, 10, false));
        assert_eq!(last[0]["components"][0]["disabled"], false);
        assert_eq!(last[0]["components"][1]["disabled"], true);
        assert_eq!(json(Page::of(0, 10, 10, false)), serde_json::json!([]));
    }
}
