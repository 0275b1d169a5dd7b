//! `/leaderboard [period] [by]`: a page of the server's ranking, rendered by
//! [`crate::render::render_leaderboard`], with the caller's own place below
//! on every page; ◀ ▶ ([`crate::discord::pager`]) page through it, 10 a
//! page. The answer is public; only the caller may press its buttons.

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::leaderboard::{By, Period, PAGE_SIZE};
use crate::core::paging::{self, PER_PAGE};
use crate::discord::pager::{send_paged, PageView};
use crate::discord::{Context, Error};
use crate::render::{render_leaderboard, Board};

/// `period` choices.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub(super) enum PeriodChoice {
    #[name = "today"]
    Today,
    #[name = "week"]
    Week,
    #[name = "month"]
    Month,
    #[name = "all"]
    All,
}

/// `by` choices.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub(super) enum ByChoice {
    #[name = "voice"]
    Voice,
    #[name = "camera"]
    Camera,
    #[name = "messages"]
    Messages,
}

impl From<PeriodChoice> for Period {
    fn from(p: PeriodChoice) -> Period {
        match p {
            PeriodChoice::Today => Period::Today,
            PeriodChoice::Week => Period::Week,
            PeriodChoice::Month => Period::Month,
            PeriodChoice::All => Period::All,
        }
    }
}

impl From<ByChoice> for By {
    fn from(b: ByChoice) -> By {
        match b {
            ByChoice::Voice => By::Voice,
            ByChoice::Camera => By::Camera,
            ByChoice::Messages => By::Messages,
        }
    }
}

/// Show the server's leaderboard: top 10 and your own rank, ◀ ▶ to page.
#[poise::command(slash_command, guild_only)]
#[instrument(skip_all, fields(command = "leaderboard", guild_id, user_id))]
pub(super) async fn leaderboard(
    ctx: Context<'_>,
    #[description = "Period (default: week)"] period: Option<PeriodChoice>,
    #[description = "Rank by (default: voice)"] by: Option<ByChoice>,
) -> Result<(), Error> {
    let Some(guild) = ctx.guild_id() else {
        return Ok(());
    };
    let caller = ctx.author().id.get();
    let span = tracing::Span::current();
    span.record("guild_id", guild.get());
    span.record("user_id", caller);
    let period = period.map_or(Period::Week, Period::from);
    // The period is decided once, now: every press pages the same day,
    // week or month, even after the midnight that starts the next one.
    let ask = Arc::new(Ask {
        guild: guild.get(),
        caller,
        period,
        key: ctx.data().period_key(guild.get(), period, now_millis()),
        by: by.map_or(By::Voice, By::from),
    });
    let first = view(ctx, &ask, 0).await?;
    // Each press reads its page afresh; a failed read shows the error
    // above the page shown, and the same press retries.
    send_paged(ctx, "leaderboard", first, move |index| {
        let ask = Arc::clone(&ask);
        async move { view(ctx, &ask, index).await.map_err(|e| unavailable(&e)) }
    })
    .await
}

/// What was asked, and the period's key decided when it was asked.
struct Ask {
    guild: u64,
    caller: u64,
    period: Period,
    key: Option<String>,
    by: By,
}

/// Page `index` (0-based) of the ranking, with the caller's place, read now;
/// an index past the last page (the ranking got shorter) shows the last.
async fn view(ctx: Context<'_>, ask: &Ask, index: usize) -> Result<PageView, Error> {
    let read = |index: usize| {
        ctx.data().leaderboard_of(
            ask.guild,
            ask.period,
            ask.key.as_deref(),
            ask.by,
            u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1),
            Some(ask.caller),
        )
    };
    let mut page = read(index).await?;
    let ranked = usize::try_from(page.ranked).unwrap_or(usize::MAX);
    let shown = paging::Page::of(index, ranked, PER_PAGE, false);
    if shown.index != index {
        page = read(shown.index).await?;
    }
    let ranked = usize::try_from(page.ranked).unwrap_or(usize::MAX);
    let mut content = String::new();
    if ask.key != ctx.data().period_key(ask.guild, ask.period, now_millis()) {
        content = format!(
            "-# This {} ended after `/leaderboard` was run; run it again for the new one.",
            period_noun(ask.period)
        );
    }
    Ok(PageView {
        content,
        embeds: vec![embed(&render_leaderboard(&page))],
        page: paging::Page::of(shown.index, ranked, PER_PAGE, false),
    })
}

fn period_noun(p: Period) -> &'static str {
    match p {
        Period::Today => "day",
        Period::Week => "week",
        Period::Month => "month",
        Period::All => "period",
    }
}

/// The page as an embed.
fn embed(board: &Board) -> serenity::CreateEmbed {
    serenity::CreateEmbed::new()
        .title(&board.title)
        .description(&board.description)
        .field("Your place", &board.caller, false)
        .footer(serenity::CreateEmbedFooter::new(&board.footer))
        .colour(EMBED_COLOUR)
}

/// What a press shows when the page cannot be read (above the page shown,
/// which stays: the same press retries).
fn unavailable(e: &Error) -> String {
    tracing::warn!(error = %e, "cannot read a leaderboard page");
    "⚠️ That page of the leaderboard cannot be read right now; press again in a moment.".to_owned()
}

// The store's pages and the buttons' pages hold the same number of members.
const _: () = assert!(PER_PAGE as u64 == PAGE_SIZE);

/// Gold.
const EMBED_COLOUR: u32 = 0xF1_C4_0F;
