//! The `/leaderboard` answer and the CLI's `leaderboard` table: a page of a
//! ranking with the figures, and the caller's own place below it.

use std::fmt::Write as _;

use super::text::format_duration;
use crate::core::leaderboard::{By, Entry, Page, Period};

/// The `/leaderboard` embed's content as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    pub title: String,
    /// One line per entry (mentions), or a note when nobody is ranked.
    pub description: String,
    /// The caller's rank, or that they have nothing in the period.
    pub caller: String,
    /// `Page 1 of 3 · 27 members`.
    pub footer: String,
}

fn period_label(p: Period) -> &'static str {
    match p {
        Period::Today => "today",
        Period::Week => "this week",
        Period::Month => "this month",
        Period::All => "all time",
    }
}

fn by_label(b: By) -> &'static str {
    match b {
        By::Voice => "voice time",
        By::Camera => "camera-on time",
        By::Messages => "messages",
    }
}

/// An entry's figures, the ranked one first.
fn figures(e: &Entry, by: By) -> String {
    let t = &e.totals;
    let voice = format!(
        "{} voice ({} cam on, {} cam off)",
        format_duration(t.voice_secs()),
        format_duration(t.cam_on_secs),
        format_duration(t.cam_off_secs)
    );
    let messages = format!("{} messages", t.messages);
    match by {
        By::Messages => format!("**{messages}** · {voice}"),
        By::Voice | By::Camera => format!("**{voice}** · {messages}"),
    }
}

/// The `/leaderboard` page; members are shown as mentions.
#[must_use]
pub fn render_leaderboard(page: &Page) -> Board {
    let title = format!(
        "🏆 Leaderboard: {} by {}",
        period_label(page.period),
        by_label(page.by)
    );
    let description = if page.entries.is_empty() {
        if page.ranked == 0 {
            format!(
                "Nobody has any {} {} yet.",
                by_label(page.by),
                period_label(page.period)
            )
        } else {
            "No one on this page.".to_owned()
        }
    } else {
        page.entries
            .iter()
            .map(|e| format!("**#{}** <@{}> · {}", e.rank, e.user, figures(e, page.by)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let caller = match &page.caller {
        Some(e) => format!(
            "You: **#{}** of {} · {}",
            e.rank,
            page.ranked,
            figures(e, page.by)
        ),
        None => format!(
            "You: not ranked: no {} {}.",
            by_label(page.by),
            period_label(page.period)
        ),
    };
    Board {
        title,
        description,
        caller,
        footer: format!(
            "Page {} of {} · {} ranked",
            page.page,
            page.pages(),
            page.ranked
        ),
    }
}

/// The CLI's table: rank, user id, camera on, camera off, total, messages.
#[must_use]
pub fn render_leaderboard_table(page: &Page) -> String {
    let mut out = format!(
        "Leaderboard {} by {} (page {} of {}, {} ranked)\n{:>5}  {:<20}  {:>12}  {:>12}  {:>12}  {:>8}\n",
        period_label(page.period),
        by_label(page.by),
        page.page,
        page.pages(),
        page.ranked,
        "rank",
        "user",
        "cam on",
        "cam off",
        "voice",
        "messages"
    );
    for e in &page.entries {
        let t = &e.totals;
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:>12}  {:>12}  {:>12}  {:>8}",
            format!("#{}", e.rank),
            e.user,
            format_duration(t.cam_on_secs),
            format_duration(t.cam_off_secs),
            format_duration(t.voice_secs()),
            t.messages
        );
    }
    if page.entries.is_empty() {
        out.push_str("(nobody on this page)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stats::Totals;

    fn entry(rank: u64, user: u64, on: i64, off: i64, messages: i64) -> Entry {
        Entry {
            rank,
            user,
            totals: Totals {
                cam_on_secs: on,
                cam_off_secs: off,
                messages,
            },
        }
    }

    fn page(caller: Option<Entry>) -> Page {
        Page {
            period: Period::Week,
            by: By::Voice,
            page: 1,
            ranked: 12,
            entries: vec![
                entry(1, 11, 3600, 0, 2),
                entry(1, 12, 0, 3600, 0),
                entry(3, 13, 60, 0, 9),
            ],
            caller,
        }
    }

    #[test]
    fn entries_show_rank_mention_and_figures_and_the_caller_below() {
        let b = render_leaderboard(&page(Some(entry(12, 99, 1, 0, 0))));
        assert_eq!(b.title, "🏆 Leaderboard: this week by voice time");
        let lines: Vec<&str> = b.description.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "**#1** <@11> · **1h 0m 0s voice (1h 0m 0s cam on, 0s cam off)** · 2 messages"
        );
        assert!(lines[1].starts_with("**#1** <@12> · "));
        assert!(lines[2].starts_with("**#3** <@13> · "));
        assert!(
            b.caller.starts_with("You: **#12** of 12 · **1s voice"),
            "{}",
            b.caller
        );
        assert_eq!(b.footer, "Page 1 of 2 · 12 ranked");
        // Discord's limit for a description is 4096 characters.
        assert!(b.description.chars().count() < 4096);
    }

    #[test]
    fn an_unranked_caller_and_an_empty_board_say_so() {
        let b = render_leaderboard(&page(None));
        assert!(b.caller.contains("not ranked"), "{}", b.caller);
        let empty = Page {
            ranked: 0,
            entries: Vec::new(),
            by: By::Messages,
            period: Period::Today,
            ..page(None)
        };
        let b = render_leaderboard(&empty);
        assert_eq!(b.description, "Nobody has any messages today yet.");
        assert_eq!(b.footer, "Page 1 of 1 · 0 ranked");
    }

    #[test]
    fn the_table_lists_user_ids() {
        let t = render_leaderboard_table(&page(None));
        assert!(t.lines().nth(2).unwrap().contains("#1  11"), "{t}");
        assert_eq!(t.lines().count(), 5);
    }
}
