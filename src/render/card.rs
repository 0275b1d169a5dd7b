//! The `/ud` card as plain data: title, fields, footer and the chart's file
//! name, testable without Discord. The Discord command turns it into an
//! embed; [`super::text::render_ud`] stays the plain-text form (CLI, and the
//! reply when the card cannot be sent).

use super::text::{format_duration, freshness_note};
use crate::core::leaderboard::PeriodRanks;
use crate::core::stats::{Freshness, Stats, Totals};
use crate::core::streak::Streaks;

/// The chart's file name in the reply; the embed shows it as
/// `attachment://ud.png`.
pub const CHART_FILE: &str = "ud.png";

/// One embed field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardField {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

/// The content of the `/ud` embed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// Shown as the embed's author (with the member's avatar).
    pub author: String,
    pub title: String,
    /// Set only when there is nothing to show yet.
    pub description: Option<String>,
    pub fields: Vec<CardField>,
    /// The freshness note, when the numbers may lag.
    pub footer: Option<String>,
    /// The attached chart's file name, if the card shows one.
    pub image: Option<&'static str>,
}

impl Card {
    /// `attachment://ud.png`, what the embed's image points at.
    #[must_use]
    pub fn image_url(&self) -> Option<String> {
        self.image.map(|f| format!("attachment://{f}"))
    }
}

/// The `/ud` card of the member called `name`; `ranks` are the member's
/// places in the server by total voice (shown on the period lines);
/// `streak_min_minutes` is the voice a day needs to count towards a streak
/// (said on the card). `streaks` is `None` when the stored history could not
/// be read (then there is no chart either).
///
/// With [`Freshness::Unavailable`] only the session in progress is known
/// (`stats` holds nothing else): the card shows it as such and leaves out
/// the totals, the periods, the streaks and the chart, saying so, rather
/// than showing zeros that read as facts.
#[must_use]
pub fn render_card(
    name: &str,
    stats: &Stats,
    ranks: PeriodRanks,
    streaks: Option<Streaks>,
    streak_min_minutes: u32,
    freshness: Freshness,
) -> Card {
    let title = format!("📊 Study stats for {name}");
    if freshness == Freshness::Unavailable {
        return unavailable_card(name, title, stats);
    }
    let footer = freshness_note(freshness).map(str::to_owned);
    if stats.is_empty() {
        return Card {
            author: name.to_owned(),
            title,
            description: Some(format!(
                "**{name}** has no study time yet. Join a voice channel or send a message and it starts counting."
            )),
            fields: Vec::new(),
            footer,
            image: None,
        };
    }
    let a = &stats.all_time;
    let field = |name: &str, value: String, inline: bool| CardField {
        name: name.to_owned(),
        value,
        inline,
    };
    let period = |t: &Totals, rank: Option<u64>| {
        let rank = rank.map_or_else(String::new, |r| format!(" · **#{r}** in the server"));
        format!(
            "{} voice ({} cam on, {} cam off) · {} messages{rank}",
            format_duration(t.voice_secs()),
            format_duration(t.cam_on_secs),
            format_duration(t.cam_off_secs),
            t.messages
        )
    };
    let days = |n: u32| {
        if n == 1 {
            "1 day".to_owned()
        } else {
            format!("{n} days")
        }
    };
    Card {
        author: name.to_owned(),
        title,
        description: None,
        fields: [
            field("📷 Camera on", format!("**{}**", format_duration(a.cam_on_secs)), true),
            field("🎧 Camera off", format!("**{}**", format_duration(a.cam_off_secs)), true),
            field("⏱️ Total voice", format!("**{}**", format_duration(a.voice_secs())), true),
            field("💬 Messages", format!("**{}**", a.messages), true),
            field("Today", period(&stats.today, ranks.today), false),
            field("This week", period(&stats.this_week, ranks.this_week), false),
            field("This month", period(&stats.this_month, ranks.this_month), false),
        ]
        .into_iter()
        .chain(streaks.map(|streaks| {
            field(
                "🔥 Streak",
                format!(
                    "current **{}** · longest **{}** (days with at least {streak_min_minutes} min of voice)",
                    days(streaks.current_days),
                    days(streaks.longest_days)
                ),
                false,
            )
        }))
        .collect(),
        footer,
        image: streaks.map(|_| CHART_FILE),
    }
}

/// The card when MongoDB did not answer: the session in progress (what this
/// process counted since its last save), nothing that would need the store.
fn unavailable_card(name: &str, title: String, stats: &Stats) -> Card {
    let now = &stats.all_time;
    let (description, fields) = if now.voice_secs() > 0 {
        let value = format!(
            "{} in voice since the last save ({} cam on, {} cam off)",
            format_duration(now.voice_secs()),
            format_duration(now.cam_on_secs),
            format_duration(now.cam_off_secs)
        );
        (
            None,
            vec![CardField {
                name: "⏳ Session in progress".to_owned(),
                value,
                inline: false,
            }],
        )
    } else {
        (
            Some(format!(
                "**{name}**'s numbers cannot be shown right now: the database did not answer in time."
            )),
            Vec::new(),
        )
    };
    Card {
        author: name.to_owned(),
        title,
        description,
        fields,
        footer: Some(UNAVAILABLE_NOTE.to_owned()),
        image: None,
    }
}

/// The footer of a card drawn without the database.
const UNAVAILABLE_NOTE: &str = "⚠️ The database did not answer in time, so the totals, ranks, streak and chart are left out (nothing is reset) and the numbers may lag until it is back. Try again in a moment.";

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        let t = |on, off, m| Totals {
            cam_on_secs: on,
            cam_off_secs: off,
            messages: m,
        };
        Stats {
            all_time: t(7513, 90, 3),
            today: t(60, 0, 1),
            this_week: t(3600, 30, 2),
            this_month: t(7200, 90, 3),
        }
    }

    fn value<'a>(card: &'a Card, name: &str) -> &'a str {
        &card
            .fields
            .iter()
            .find(|f| f.name.contains(name))
            .unwrap_or_else(|| panic!("no field {name}: {card:?}"))
            .value
    }

    #[test]
    fn shows_all_time_periods_streaks_and_the_chart() {
        let streaks = Streaks {
            current_days: 1,
            longest_days: 4,
        };
        let card = render_card(
            "Ada",
            &stats(),
            PeriodRanks::default(),
            Some(streaks),
            15,
            Freshness::Current,
        );
        assert_eq!(card.author, "Ada");
        assert!(card.title.contains("Ada"), "{}", card.title);
        assert_eq!(card.description, None);
        assert_eq!(value(&card, "Camera on"), "**2h 5m 13s**");
        assert_eq!(value(&card, "Camera off"), "**1m 30s**");
        assert_eq!(value(&card, "Total voice"), "**2h 6m 43s**");
        assert_eq!(value(&card, "Messages"), "**3**");
        assert_eq!(
            value(&card, "Today"),
            "1m 0s voice (1m 0s cam on, 0s cam off) · 1 messages"
        );
        assert_eq!(
            value(&card, "This week"),
            "1h 0m 30s voice (1h 0m 0s cam on, 30s cam off) · 2 messages"
        );
        assert_eq!(
            value(&card, "This month"),
            "2h 1m 30s voice (2h 0m 0s cam on, 1m 30s cam off) · 3 messages"
        );
        assert_eq!(
            value(&card, "Streak"),
            "current **1 day** · longest **4 days** (days with at least 15 min of voice)"
        );
        assert_eq!(card.footer, None);
        assert_eq!(card.image_url().as_deref(), Some("attachment://ud.png"));
        // Discord's limits: 25 fields, 256 characters a name, 1024 a value.
        assert!(card.fields.len() <= 25);
        assert!(card
            .fields
            .iter()
            .all(|f| f.name.chars().count() <= 256 && f.value.chars().count() <= 1024));
    }

    #[test]
    fn period_lines_show_the_rank_in_the_server_where_there_is_one() {
        let ranks = PeriodRanks {
            today: Some(1),
            this_week: Some(3),
            this_month: None,
            all_time: Some(2),
        };
        let card = render_card(
            "Ada",
            &stats(),
            ranks,
            Some(Streaks::default()),
            15,
            Freshness::Current,
        );
        assert!(value(&card, "Today").ends_with(" · **#1** in the server"));
        assert!(value(&card, "This week").ends_with("2 messages · **#3** in the server"));
        assert!(value(&card, "This month").ends_with("3 messages"));
    }

    #[test]
    fn the_freshness_note_is_the_footer() {
        let card = render_card(
            "Ada",
            &stats(),
            PeriodRanks::default(),
            Some(Streaks::default()),
            15,
            Freshness::MayLag,
        );
        assert!(card.footer.as_deref().unwrap().contains("may lag"));
        let down = render_card(
            "Ada",
            &stats(),
            PeriodRanks::default(),
            Some(Streaks::default()),
            15,
            Freshness::Unavailable,
        );
        assert!(down.footer.as_deref().unwrap().contains("did not answer"));
    }

    #[test]
    fn without_the_database_the_card_shows_no_zeros_as_facts() {
        // Only the session in progress is known (2 min, camera off).
        let pending = Stats {
            all_time: Totals {
                cam_on_secs: 0,
                cam_off_secs: 120,
                messages: 0,
            },
            today: Totals {
                cam_on_secs: 0,
                cam_off_secs: 120,
                messages: 0,
            },
            ..Stats::default()
        };
        let down = render_card(
            "Ada",
            &pending,
            PeriodRanks::default(),
            Some(Streaks::default()),
            15,
            Freshness::Unavailable,
        );
        let names: Vec<&str> = down.fields.iter().map(|f| f.name.as_str()).collect();
        assert!(
            !names.iter().any(|n| n.contains("Streak")
                || n.contains("Camera on")
                || n.contains("Messages")
                || n.contains("Today")),
            "streak, totals and periods are unknown: {names:?}"
        );
        assert_eq!(down.image, None, "no chart of blank days");
        assert_eq!(
            value(&down, "Session in progress"),
            "2m 0s in voice since the last save (0s cam on, 2m 0s cam off)"
        );
        assert!(down.footer.as_deref().unwrap().contains("streak"));
        // Nothing in progress either: not "no study time yet".
        let nothing = render_card(
            "Ada",
            &Stats::default(),
            PeriodRanks::default(),
            Some(Streaks::default()),
            15,
            Freshness::Unavailable,
        );
        let text = nothing.description.unwrap_or_default();
        assert!(!text.contains("no study time yet"), "{text}");
        assert!(text.contains("cannot be shown right now"), "{text}");
        assert_eq!(nothing.image, None);
    }

    #[test]
    fn nothing_yet_is_a_friendly_description_without_a_chart() {
        let card = render_card(
            "Ada",
            &Stats::default(),
            PeriodRanks::default(),
            Some(Streaks::default()),
            15,
            Freshness::Current,
        );
        assert!(card
            .description
            .as_deref()
            .unwrap()
            .contains("no study time yet"));
        assert!(card.fields.is_empty());
        assert_eq!(card.image, None);
    }
}
