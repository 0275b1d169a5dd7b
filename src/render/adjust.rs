//! The `/adjust` and `adjust` answers: what a correction did.

use crate::core::correction::What;
use crate::core::stats::Totals;
use crate::render::format_duration;

/// A correction made: `amount` of `what` for `name` on `day`, and the
/// member's all-time figures after it (`None`: not applied yet).
#[must_use]
pub fn render_adjusted(
    name: &str,
    what: What,
    amount: i64,
    day: &str,
    reason: &str,
    total: Option<&Totals>,
) -> String {
    let figure = match what {
        What::CameraOn => " camera-on time",
        What::CameraOff => " camera-off time",
        What::Messages => "",
    };
    let head = format!(
        "✅ Corrected **{name}**: {}{figure} on {day} (reason: {reason}). It is in the audit log.",
        what.show(amount)
    );
    match total {
        Some(t) => format!(
            "{head}\nAll time now: 📷 {} · 🎧 {} · 💬 {} messages.",
            format_duration(t.cam_on_secs),
            format_duration(t.cam_off_secs),
            t.messages
        ),
        None => format!(
            "{head}\n-# The database is slow right now: the correction is saved and will show in a moment."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_changed_and_the_totals_after() {
        let t = Totals {
            cam_on_secs: 5400,
            cam_off_secs: 0,
            messages: 2,
        };
        let s = render_adjusted(
            "Alice",
            What::CameraOn,
            5400,
            "2026-12-02",
            "missed",
            Some(&t),
        );
        assert!(s.contains("+1h 30m camera-on time on 2026-12-02"), "{s}");
        assert!(s.contains("📷 1h 30m 0s"), "{s}");
        let s = render_adjusted("Alice", What::Messages, -1, "2026-12-02", "spam", None);
        assert!(s.contains("-1 message on 2026-12-02"), "{s}");
        assert!(s.contains("saved"), "{s}");
    }
}
