//! `/leaderboard [period] [by]`: a page of the server's ranking, rendered by
//! [`crate::render::render_leaderboard`], with the caller's own place below.

use poise::serenity_prelude as serenity;
use poise::CreateReply;
use tracing::instrument;

use crate::app::now_millis;
use crate::core::leaderboard::{By, Page, Period};
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

/// Show the server's leaderboard: top 10 and your own rank.
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
    // The reads may take longer than the 3 s Discord gives an answer.
    ctx.defer().await?;
    let period = period.map_or(Period::Week, Period::from);
    let by = by.map_or(By::Voice, By::from);
    let page = ctx
        .data()
        .leaderboard(guild.get(), period, by, 1, Some(caller), now_millis())
        .await?;
    ctx.send(reply(&page)).await?;
    Ok(())
}

/// The page as an embed; mentions do not ping anyone.
fn reply(page: &Page) -> CreateReply {
    let Board {
        title,
        description,
        caller,
        footer,
    } = render_leaderboard(page);
    let embed = serenity::CreateEmbed::new()
        .title(title)
        .description(description)
        .field("Your place", caller, false)
        .footer(serenity::CreateEmbedFooter::new(footer))
        .colour(EMBED_COLOUR);
    CreateReply::default()
        .embed(embed)
        .allowed_mentions(serenity::CreateAllowedMentions::new())
}

/// Gold.
const EMBED_COLOUR: u32 = 0xF1_C4_0F;
