//! `/settings show` and `study-tracker settings`: a server's settings, with
//! what a default stands for.

use std::fmt::Write as _;

use chrono::TimeZone;

use crate::core::settings::{Defaults, GuildSettings};
use crate::core::Millis;

/// The settings as `/settings show` answers them (Discord markdown; channels
/// as mentions, which Discord shows by name).
#[must_use]
pub fn render_settings(s: &GuildSettings, d: Defaults, now: Millis) -> String {
    let tz = s.timezone_or(d);
    let local = chrono::DateTime::from_timestamp_millis(now)
        .map(|t| {
            tz.from_utc_datetime(&t.naive_utc())
                .format("%H:%M")
                .to_string()
        })
        .unwrap_or_default();
    let default = |set: bool| if set { "" } else { " (the bot's default)" };
    let mut out = String::from("**Settings of this server**\n");
    let _ = writeln!(
        out,
        "Timezone: `{}` (now {local}){}",
        tz.name(),
        default(s.timezone.is_some())
    );
    if s.excluded.is_empty() {
        out.push_str("Not counted: nothing; every channel counts (except the AFK channel)\n");
    } else {
        let list: Vec<String> = s.excluded.iter().map(|c| format!("<#{c}>")).collect();
        let _ = writeln!(
            out,
            "Not counted: {} (with everything under a category)",
            list.join(", ")
        );
    }
    let _ = write!(
        out,
        "Streak day: {} minutes of voice{}",
        s.streak_min_minutes_or(d),
        default(s.streak_min_minutes.is_some())
    );
    out
}

/// `study-tracker settings --json`: the settings in force (defaults filled
/// in), channel ids as strings.
#[must_use]
pub fn settings_json(s: &GuildSettings, d: Defaults) -> serde_json::Value {
    serde_json::json!({
        "timezone": s.timezone_or(d).name(),
        "excluded_channels": s.excluded.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "streak_min_minutes": s.streak_min_minutes_or(d),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_named_and_set_values_shown() {
        let d = Defaults {
            timezone: chrono_tz::UTC,
            streak_min_minutes: 30,
        };
        let noon = 1_767_268_800_000;
        let none = render_settings(&GuildSettings::default(), d, noon);
        assert!(
            none.contains("Timezone: `UTC` (now 12:00) (the bot's default)"),
            "{none}"
        );
        assert!(none.contains("every channel counts"), "{none}");
        assert!(
            none.contains("Streak day: 30 minutes of voice (the bot's default)"),
            "{none}"
        );
        let set = GuildSettings {
            timezone: Some(chrono_tz::Asia::Kolkata),
            excluded: [7, 8].into(),
            streak_min_minutes: Some(45),
        };
        let shown = render_settings(&set, d, noon);
        assert!(
            shown.contains("Timezone: `Asia/Kolkata` (now 17:30)\n"),
            "{shown}"
        );
        assert!(shown.contains("Not counted: <#7>, <#8>"), "{shown}");
        assert!(
            shown.ends_with("Streak day: 45 minutes of voice"),
            "{shown}"
        );
        assert_eq!(
            settings_json(&set, d),
            serde_json::json!({"timezone": "Asia/Kolkata", "excluded_channels": ["7", "8"], "streak_min_minutes": 45})
        );
    }
}
