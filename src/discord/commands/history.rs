//! `/history [member]`: a member's sessions, newest first, a page of
//! [`PER_PAGE`] at a time with ◀ ▶ ([`crate::discord::pager`]), rendered by
//! [`crate::render::render_history`]. Ephemeral: it is the member's own
//! check of "my hours are wrong", not something to post in the channel.
//! Each page is read afresh, so the session in progress is counted up to
//! the press.

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::paging::{Page, PER_PAGE};
use crate::core::stats::Freshness;
use crate::core::MemberKey;
use crate::discord::pager::{send_paged, PageView};
use crate::discord::{Context, Error};
use crate::render::render_history;

/// Sessions read at least, so the first page can say how many older ones
/// there are ("…and N older").
const SESSIONS_READ: usize = 100;

/// Show the latest voice sessions: start and end, channel, camera on / off, total.
#[poise::command(slash_command, guild_only, ephemeral)]
#[instrument(skip_all, fields(command = "history", guild_id, user_id))]
pub(super) async fn history(
    ctx: Context<'_>,
    #[description = "Member to show (default: you)"] member: Option<serenity::User>,
) -> Result<(), Error> {
    let Some((key, user)) = super::target(ctx, member.as_ref(), "history").await? else {
        return Ok(());
    };
    let name = user.display_name().to_owned();
    let (first, _) = page(ctx, key, &name, 0).await;
    // A press whose read fails keeps the page shown (the same press
    // retries) rather than showing the session in progress alone, which
    // would have no pages, and so no buttons.
    send_paged(ctx, "history", first, |index| {
        let name = &name;
        async move {
            match page(ctx, key, name, index).await {
                (_, Freshness::Unavailable) => {
                    tracing::warn!(consequence = "keeping the page shown", "cannot read a /history page");
                    Err("⚠️ That page of the history cannot be read right now; press again in a moment.".to_owned())
                }
                (view, _) => Ok(view),
            }
        }
    })
    .await
}

/// Page `index` of the member's sessions, read now, and how current it is.
async fn page(ctx: Context<'_>, key: MemberKey, name: &str, index: usize) -> (PageView, Freshness) {
    let app = ctx.data();
    let wanted = Page::wanted(index, PER_PAGE).max(SESSIONS_READ);
    let (sessions, complete, freshness) = app.member_history(key, now_millis(), wanted).await;
    // Without MongoDB only the session in progress is known: nothing to page to.
    let more = !complete && freshness != Freshness::Unavailable;
    let page = Page::of(index, sessions.len(), PER_PAGE, more);
    let view = PageView {
        content: render_history(
            name,
            &sessions,
            &page,
            app.timezone_of(key.guild),
            freshness,
        ),
        embeds: Vec::new(),
        page,
    };
    (view, freshness)
}
