//! Text replies: `/ud`'s answer and durations, as plain strings (testable
//! without Discord; the CLI prints the same text).

use crate::core::stats::{Freshness, Stats, Totals};

/// `2h 5m 13s`; leading zero units are left out, `0s` for nothing.
#[must_use]
pub fn format_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// What to say about how current the numbers are (`None`: nothing to say).
#[must_use]
pub fn freshness_note(freshness: Freshness) -> Option<&'static str> {
    match freshness {
        Freshness::Current => None,
        Freshness::MayLag => {
            Some("⚠️ The database is catching up; these numbers may lag a little behind.")
        }
        Freshness::Unavailable => Some(
            "⚠️ The database is unreachable right now, so this shows only your session in progress; the numbers may lag until it is back. Try again later.",
        ),
    }
}

/// The `/ud` answer for the member called `name`.
#[must_use]
pub fn render_ud(name: &str, stats: &Stats, freshness: Freshness) -> String {
    let lag = freshness_note(freshness).map_or_else(String::new, |n| format!("\n-# {n}"));
    if stats.is_empty() {
        return format!(
            "**{name}** has no study time yet. Join a voice channel or send a message and it starts counting.{lag}"
        );
    }
    let a = &stats.all_time;
    let period = |label: &str, t: &Totals| {
        format!(
            "**{label}:** {} voice ({} cam on, {} cam off) · {} messages",
            format_duration(t.voice_secs()),
            format_duration(t.cam_on_secs),
            format_duration(t.cam_off_secs),
            t.messages
        )
    };
    format!(
        "📊 **Study stats for {name}**\n\
         📷 Camera on: **{}**\n\
         🎧 Camera off: **{}**\n\
         ⏱️ Total voice: **{}**\n\
         💬 Messages: **{}**\n\n\
         {}\n{}\n{}{lag}",
        format_duration(a.cam_on_secs),
        format_duration(a.cam_off_secs),
        format_duration(a.voice_secs()),
        a.messages,
        period("Today", &stats.today),
        period("This week", &stats.this_week),
        period("This month", &stats.this_month),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_without_truncation() {
        assert_eq!(format_duration(7513), "2h 5m 13s");
        assert_eq!(format_duration(90), "1m 30s");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(3600), "1h 0m 0s");
    }

    #[test]
    fn renders_numbers_and_a_friendly_empty_answer() {
        let empty = render_ud("Ada", &Stats::default(), Freshness::Current);
        assert!(empty.contains("no study time yet"), "{empty}");
        let s = Stats {
            all_time: Totals {
                cam_on_secs: 7513,
                cam_off_secs: 90,
                messages: 3,
            },
            ..Stats::default()
        };
        let text = render_ud("Ada", &s, Freshness::MayLag);
        assert!(text.contains("Camera on: **2h 5m 13s**"), "{text}");
        assert!(text.contains("Camera off: **1m 30s**"), "{text}");
        assert!(text.contains("Total voice: **2h 6m 43s**"), "{text}");
        assert!(text.contains("Messages: **3**"), "{text}");
        assert!(text.contains("may lag"), "{text}");
        let down = render_ud("Ada", &s, Freshness::Unavailable);
        assert!(
            down.contains("unreachable") && down.contains("may lag"),
            "{down}"
        );
        // The bot cannot know that its spool survives a redeploy: it
        // promises nothing it cannot keep.
        for f in [Freshness::MayLag, Freshness::Unavailable] {
            assert!(!render_ud("Ada", &s, f).contains("Nothing is lost"));
        }
    }
}
