//! The `/history` answer and the `history` table: sessions with local times
//! (`TIMEZONE`), channel, camera on and off, total; "now" for an open one.

use std::fmt::Write as _;

use chrono::TimeZone;
use chrono_tz::Tz;

use super::text::format_duration;
use crate::core::correction::What;
use crate::core::history::Session;
use crate::core::paging::Page;
use crate::core::stats::Freshness;
use crate::core::Millis;

fn local(at: Millis, tz: Tz, format: &str) -> String {
    tz.timestamp_millis_opt(at)
        .single()
        .map_or_else(|| at.to_string(), |t| t.format(format).to_string())
}

/// `start – end` in `tz`: the end without its date when on the same local
/// day, `now` while open.
fn span(s: &Session, tz: Tz) -> String {
    let start = local(s.start, tz, "%Y-%m-%d %H:%M");
    let end = if s.open {
        "now".to_owned()
    } else if local(s.start, tz, "%F") == local(s.end, tz, "%F") {
        local(s.end, tz, "%H:%M")
    } else {
        local(s.end, tz, "%Y-%m-%d %H:%M")
    };
    format!("{start} – {end}")
}

/// One `/history` page for the member called `name`: the sessions of
/// `page` among `sessions` (newest first, every one read whole), their sums,
/// which page it is, and how many older ones exist (exactly, unless
/// `page.more`: more exist than were read).
#[must_use]
pub fn render_history(
    name: &str,
    sessions: &[Session],
    page: &Page,
    tz: Tz,
    freshness: Freshness,
) -> String {
    let lag = match freshness {
        Freshness::Current => "",
        Freshness::MayLag => "\n-# ⚠️ The database is catching up; the latest seconds may lag a little behind.",
        Freshness::Unavailable => "\n-# ⚠️ The database is unreachable right now, so this shows only the session in progress. Try again later.",
    };
    if sessions.is_empty() {
        return format!("**{name}** has no voice sessions yet.{lag}");
    }
    let shown = &sessions[page.items()];
    let which = if page.is_paged() {
        format!(" · {}", page.label())
    } else {
        String::new()
    };
    let mut out = format!(
        "🕘 **Latest sessions of {name}** (times in {}){which}\n",
        tz.name()
    );
    for s in shown {
        if let Some((what, amount)) = s.correction {
            let _ = writeln!(
                out,
                "`{}` · ✏️ correction: {} {}",
                local(s.start, tz, "%Y-%m-%d %H:%M"),
                what.show(amount),
                correction_label(what),
            );
            continue;
        }
        let _ = writeln!(
            out,
            "`{}` · <#{}> · 📷 {} · 🎧 {} · ⏱️ **{}**",
            span(s, tz),
            s.channel,
            format_duration(s.cam_on_secs),
            format_duration(s.cam_off_secs),
            format_duration(s.total_secs()),
        );
    }
    let (on, off): (i64, i64) = shown.iter().fold((0, 0), |(on, off), s| {
        (on + s.cam_on_secs, off + s.cam_off_secs)
    });
    let fixes = shown.iter().filter(|s| s.correction.is_some()).count();
    let stays = shown.len() - fixes;
    let fixes = match fixes {
        0 => String::new(),
        1 => " and 1 correction".to_owned(),
        n => format!(" and {n} corrections"),
    };
    let _ = write!(
        out,
        "**{stays} session{}{fixes} shown:** 📷 {} · 🎧 {} · ⏱️ **{}**",
        if stays == 1 { "" } else { "s" },
        format_duration(on),
        format_duration(off),
        format_duration(on + off),
    );
    let older = page.after();
    if older > 0 || page.more {
        let more = if page.more { "more than " } else { "" };
        let _ = write!(
            out,
            "\n-# …and {more}{older} older session{} not shown.",
            if older == 1 && !page.more { "" } else { "s" }
        );
    }
    out.push_str(lag);
    out
}

/// What a correction changed, for people.
fn correction_label(what: What) -> &'static str {
    match what {
        What::CameraOn => "camera on",
        What::CameraOff => "camera off",
        What::Messages => "",
    }
}

/// The `history` subcommand's text output: one row per session, times in `tz`.
#[must_use]
pub fn render_history_table(sessions: &[Session], tz: Tz) -> String {
    let mut out = format!(
        "{:<19}  {:<19}  {:<20}  {:>11}  {:>11}  {:>11}   (times in {})\n",
        "start",
        "end",
        "channel",
        "cam on",
        "cam off",
        "total",
        tz.name()
    );
    for s in sessions {
        if let Some((what, amount)) = s.correction {
            let _ = writeln!(
                out,
                "{:<19}  {:<19}  {:<20}  {} {}",
                local(s.start, tz, "%Y-%m-%d %H:%M:%S"),
                "",
                "correction",
                what.show(amount),
                correction_label(what),
            );
            continue;
        }
        let end = if s.open {
            "now".to_owned()
        } else {
            local(s.end, tz, "%Y-%m-%d %H:%M:%S")
        };
        let _ = writeln!(
            out,
            "{:<19}  {:<19}  {:<20}  {:>11}  {:>11}  {:>11}",
            local(s.start, tz, "%Y-%m-%d %H:%M:%S"),
            end,
            s.channel,
            format_duration(s.cam_on_secs),
            format_duration(s.cam_off_secs),
            format_duration(s.total_secs()),
        );
    }
    if sessions.is_empty() {
        out.push_str("(no sessions)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::paging::PER_PAGE;

    fn session(start: Millis, end: Millis, on: i64, off: i64, open: bool) -> Session {
        Session {
            start,
            end,
            channel: 42,
            cam_on_secs: on,
            cam_off_secs: off,
            open,
            correction: None,
        }
    }

    /// 2026-11-26T10:00:00Z
    const T0: Millis = 1_795_687_200_000;

    #[test]
    fn shows_local_times_channels_now_and_sums() {
        let s = [
            session(T0 + 7_200_000, T0 + 7_260_000, 60, 0, true),
            session(T0, T0 + 5_400_000, 3600, 1800, false),
        ];
        let text = render_history(
            "Ada",
            &s,
            &Page::of(0, s.len(), PER_PAGE, false),
            chrono_tz::Europe::Paris,
            Freshness::Current,
        );
        assert!(text.contains("`2026-11-26 13:00 – now` · <#42>"), "{text}");
        assert!(
            text.contains(
                "`2026-11-26 11:00 – 12:30` · <#42> · 📷 1h 0m 0s · 🎧 30m 0s · ⏱️ **1h 30m 0s**"
            ),
            "{text}"
        );
        assert!(
            text.contains("2 sessions shown:** 📷 1h 1m 0s · 🎧 30m 0s"),
            "{text}"
        );
        assert!(!text.contains("older"), "{text}");
        let table = render_history_table(&s, chrono_tz::UTC);
        assert!(
            table.contains("2026-11-26 10:00:00  2026-11-26 11:30:00"),
            "{table}"
        );
        assert!(table.contains("now"), "{table}");
    }

    /// `n` closed sessions of 60 s, an hour apart, newest first.
    fn hourly_sessions(n: i64) -> Vec<Session> {
        (0..n)
            .map(|i| {
                let start = T0 - i * 3_600_000;
                session(start, start + 60_000, 60, 0, false)
            })
            .collect()
    }

    #[test]
    fn says_how_many_older_sessions_are_not_shown() {
        let s = hourly_sessions(13);
        let page = |index, more| Page::of(index, s.len(), PER_PAGE, more);
        let text = render_history(
            "Ada",
            &s,
            &page(0, false),
            chrono_tz::UTC,
            Freshness::Current,
        );
        assert_eq!(text.matches("<#42>").count(), PER_PAGE);
        assert!(text.contains("…and 3 older sessions not shown"), "{text}");
        let partial = render_history(
            "Ada",
            &s,
            &page(0, true),
            chrono_tz::UTC,
            Freshness::Current,
        );
        assert!(partial.contains("more than 3 older sessions"), "{partial}");
        let none = render_history(
            "Ada",
            &[],
            &Page::of(0, 0, PER_PAGE, false),
            chrono_tz::UTC,
            Freshness::Current,
        );
        assert!(none.contains("no voice sessions yet"), "{none}");
    }

    #[test]
    fn a_later_page_shows_its_sessions_and_says_which_page() {
        // 13 sessions an hour apart, newest first: page 2 holds the 11th to 13th.
        let s = hourly_sessions(13);
        let page = Page::of(1, s.len(), PER_PAGE, false);
        let text = render_history("Ada", &s, &page, chrono_tz::UTC, Freshness::Current);
        assert!(text.contains("· page 2 of 2\n"), "{text}");
        assert_eq!(text.matches("<#42>").count(), 3);
        assert!(text.contains("`2026-11-26 00:00 – 00:01`"), "{text}");
        assert!(text.contains("`2026-11-25 22:00 – 22:01`"), "{text}");
        assert!(!text.contains("`2026-11-26 01:00"), "{text}");
        assert!(text.contains("3 sessions shown:** 📷 3m 0s"), "{text}");
        assert!(!text.contains("older"), "{text}");
        let first = render_history(
            "Ada",
            &s[..10],
            &Page::of(0, 10, PER_PAGE, false),
            chrono_tz::UTC,
            Freshness::Current,
        );
        assert!(!first.contains("page"), "one page says no page: {first}");
    }
}
