//! `/ud [member]`: a member's card: an embed ([`crate::render::render_card`])
//! with the 14-day chart ([`crate::render::render_chart`]) attached and shown
//! in it. The chart is drawn off the async runtime; if it cannot be drawn,
//! the embed goes without it and the failure is logged.

use poise::serenity_prelude as serenity;
use poise::CreateReply;
use tracing::instrument;

use crate::app::{now_millis, CARD_DAYS};
use crate::core::daily::DayTotals;
use crate::discord::{Context, Error};
use crate::render::chart::chart_title;
use crate::render::chart::CHART_DAYS;
use crate::render::{render_card, render_chart, Card};
use crate::telemetry::cause_chain;

// The app reads as many days as the chart draws.
const _: () = assert!(CARD_DAYS == CHART_DAYS);

/// Show study time (camera on / off), messages and streaks, with a 14-day chart.
#[poise::command(slash_command, guild_only)]
#[instrument(skip_all, fields(command = "ud", guild_id, user_id))]
pub(super) async fn ud(
    ctx: Context<'_>,
    #[description = "Member to show (default: you)"] member: Option<serenity::User>,
) -> Result<(), Error> {
    let Some((key, user)) = super::target(ctx, member.as_ref(), "ud").await? else {
        return Ok(());
    };
    let app = ctx.data();
    let name = user.display_name().to_owned();
    let card_data = app.member_card(key, now_millis()).await;
    let card = render_card(
        &name,
        &card_data.stats,
        card_data.ranks,
        card_data.streaks,
        app.settings_of(key.guild)
            .streak_min_minutes_or(app.defaults()),
        card_data.freshness,
    );
    let png = match (card.image, card_data.days) {
        (Some(_), Some(days)) => chart_png(days, &name).await,
        _ => None,
    };
    ctx.send(reply(&card, &user.face(), png)).await?;
    Ok(())
}

/// The chart as a PNG, drawn on a blocking thread; `None` (logged) if it
/// could not be drawn.
async fn chart_png(days: Vec<DayTotals>, name: &str) -> Option<Vec<u8>> {
    // The title too: laying it out may parse the fonts (the first time).
    let name = name.to_owned();
    match tokio::task::spawn_blocking(move || render_chart(&days, &chart_title(&name))).await {
        Ok(Ok(png)) => Some(png),
        Ok(Err(e)) => {
            tracing::warn!(error = %cause_chain(&e), consequence = "sending the card without its chart", "cannot draw the /ud chart");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, consequence = "sending the card without its chart", "the /ud chart task failed");
            None
        }
    }
}

/// The card as an embed, with the chart attached and shown when there is one.
fn reply(card: &Card, avatar_url: &str, png: Option<Vec<u8>>) -> CreateReply {
    let mut embed = serenity::CreateEmbed::new()
        .author(serenity::CreateEmbedAuthor::new(&card.author).icon_url(avatar_url))
        .title(&card.title)
        .colour(EMBED_COLOUR)
        .fields(
            card.fields
                .iter()
                .map(|f| (f.name.clone(), f.value.clone(), f.inline)),
        );
    if let Some(d) = &card.description {
        embed = embed.description(d);
    }
    if let Some(f) = &card.footer {
        embed = embed.footer(serenity::CreateEmbedFooter::new(f));
    }
    let mut reply = CreateReply::default();
    if let (Some(png), Some(file), Some(url)) = (png, card.image, card.image_url()) {
        embed = embed.image(url);
        reply = reply.attachment(serenity::CreateAttachment::bytes(png, file));
    }
    reply.embed(embed)
}

/// The embed's side colour (the chart's camera-on green).
const EMBED_COLOUR: u32 = 0x57_F2_87;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::leaderboard::PeriodRanks;
    use crate::core::stats::{Freshness, Stats, Totals};
    use crate::core::streak::Streaks;

    fn card() -> Card {
        let stats = Stats {
            all_time: Totals {
                cam_on_secs: 60,
                cam_off_secs: 0,
                messages: 1,
            },
            ..Stats::default()
        };
        render_card(
            "Ada",
            &stats,
            PeriodRanks::default(),
            Some(Streaks::default()),
            15,
            Freshness::MayLag,
        )
    }

    fn embed_json(r: &CreateReply) -> serde_json::Value {
        serde_json::to_value(&r.embeds[0]).unwrap()
    }

    #[test]
    fn the_chart_is_attached_and_shown_in_the_embed() {
        let r = reply(&card(), "https://cdn.example/a.png", Some(vec![1, 2, 3]));
        assert_eq!(r.attachments.len(), 1);
        let e = embed_json(&r);
        assert_eq!(e["image"]["url"], "attachment://ud.png");
        assert_eq!(e["author"]["name"], "Ada");
        assert_eq!(e["author"]["icon_url"], "https://cdn.example/a.png");
        assert!(e["footer"]["text"].as_str().unwrap().contains("may lag"));
    }

    #[test]
    fn without_a_chart_the_embed_goes_alone() {
        let r = reply(&card(), "https://cdn.example/a.png", None);
        assert!(r.attachments.is_empty());
        let e = embed_json(&r);
        assert!(e.get("image").is_none(), "{e}");
        assert_eq!(e["fields"].as_array().map(Vec::len), Some(8));
    }
}
