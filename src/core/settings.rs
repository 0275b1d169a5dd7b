//! A server's settings, as its managers chose them with `/settings`: its
//! timezone, the channels that do not count, the voice minutes a streak day
//! needs. What they left unset falls back to the deployment's defaults
//! (`TIMEZONE`, `STREAK_MIN_MINUTES`). Validation lives here too, so the
//! command and the CLI refuse the same inputs with the same words.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use chrono::TimeZone;
use chrono_tz::Tz;

use super::Millis;

/// The streak threshold a server may choose, in minutes.
pub const STREAK_MINUTES: RangeInclusive<u32> = 1..=1440;

/// Discord shows at most this many autocomplete choices.
pub const MAX_CHOICES: usize = 25;

/// One server's settings. `Default` is "nothing set": every default applies
/// and every channel counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuildSettings {
    /// The server's IANA timezone, if its managers set one.
    pub timezone: Option<Tz>,
    /// Channels (voice, stage, text or categories) that do not count;
    /// everything under an excluded category follows it.
    pub excluded: BTreeSet<u64>,
    /// Voice minutes a local day needs to count towards a streak, if set.
    pub streak_min_minutes: Option<u32>,
}

/// The deployment's defaults, for what a server did not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub timezone: Tz,
    pub streak_min_minutes: u32,
}

/// A channel and what it is under: a thread's parent channel, a channel's
/// category. A setting on any of them applies to the channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelPath {
    pub channel: u64,
    pub parent: Option<u64>,
    pub category: Option<u64>,
}

impl ChannelPath {
    /// A channel at the top of the server (no category).
    #[must_use]
    pub fn top(channel: u64) -> ChannelPath {
        ChannelPath {
            channel,
            parent: None,
            category: None,
        }
    }

    fn ids(self) -> impl Iterator<Item = u64> {
        [Some(self.channel), self.parent, self.category]
            .into_iter()
            .flatten()
    }
}

impl GuildSettings {
    /// The timezone days, periods and streaks are cut in.
    #[must_use]
    pub fn timezone_or(&self, defaults: Defaults) -> Tz {
        self.timezone.unwrap_or(defaults.timezone)
    }

    /// The streak threshold, in minutes.
    #[must_use]
    pub fn streak_min_minutes_or(&self, defaults: Defaults) -> u32 {
        self.streak_min_minutes
            .unwrap_or(defaults.streak_min_minutes)
    }

    /// Whether activity in `path` is not counted: the channel, its parent or
    /// its category is excluded.
    #[must_use]
    pub fn excludes(&self, path: ChannelPath) -> bool {
        path.ids().any(|id| self.excluded.contains(&id))
    }
}

/// An IANA timezone name as typed (Discord lets a member send any text,
/// whatever the autocomplete offered). Exact names, case-insensitively.
///
/// # Errors
/// Not a name in the tz database: one line saying so.
pub fn parse_timezone(typed: &str) -> Result<Tz, String> {
    let name = typed.trim();
    name.parse::<Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|tz| tz.name().eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| {
            format!("`{}` is not a timezone name from the tz database (for example `Europe/Berlin` or `Asia/Kolkata`); pick one of the suggestions.", shorten(name))
        })
}

/// A streak threshold as given.
///
/// # Errors
/// Outside [`STREAK_MINUTES`].
pub fn check_streak_minutes(minutes: i64) -> Result<u32, String> {
    u32::try_from(minutes)
        .ok()
        .filter(|m| STREAK_MINUTES.contains(m))
        .ok_or_else(|| {
            format!(
                "A streak day needs between {} and {} minutes of voice time; {minutes} is out of range.",
                STREAK_MINUTES.start(),
                STREAK_MINUTES.end()
            )
        })
}

/// Autocomplete choices for a timezone being typed: names containing
/// `partial` (case-insensitively; `_` and spaces alike), at most
/// [`MAX_CHOICES`], each labelled with the local time there at `now`, e.g.
/// `Asia/Kolkata (now 21:07)`. Returns (label, value).
#[must_use]
pub fn timezone_choices(partial: &str, now: Millis) -> Vec<(String, String)> {
    let norm = |s: &str| s.to_lowercase().replace(' ', "_");
    let wanted = norm(partial.trim());
    let Some(at) = chrono::DateTime::from_timestamp_millis(now) else {
        return Vec::new();
    };
    chrono_tz::TZ_VARIANTS
        .iter()
        .filter(|tz| norm(tz.name()).contains(&wanted))
        .take(MAX_CHOICES)
        .map(|tz| {
            let local = tz.from_utc_datetime(&at.naive_utc());
            (
                format!("{} (now {})", tz.name(), local.format("%H:%M")),
                tz.name().to_owned(),
            )
        })
        .collect()
}

/// At most 60 characters of what a member typed, for an error line.
fn shorten(typed: &str) -> String {
    let mut s: String = typed.chars().take(60).collect();
    if typed.chars().count() > 60 {
        s.push('…');
    }
    s.replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON_UTC: Millis = 1_767_268_800_000; // 2026-01-01T12:00:00Z

    #[test]
    fn timezones_are_validated_on_submit() {
        assert_eq!(parse_timezone("Asia/Kolkata"), Ok(chrono_tz::Asia::Kolkata));
        assert_eq!(
            parse_timezone(" asia/kolkata "),
            Ok(chrono_tz::Asia::Kolkata)
        );
        for bad in ["", "Mars/Olympus", "Asia/Kolkata (now 17:30)", "UTC+5"] {
            let e = parse_timezone(bad).unwrap_err();
            assert!(e.contains("not a timezone name"), "{bad}: {e}");
        }
    }

    #[test]
    fn choices_match_substrings_are_capped_and_show_the_local_time() {
        let c = timezone_choices("kolk", NOON_UTC);
        assert_eq!(
            c,
            vec![("Asia/Kolkata (now 17:30)".into(), "Asia/Kolkata".into())]
        );
        assert_eq!(timezone_choices("", NOON_UTC).len(), MAX_CHOICES);
        let america = timezone_choices("america", NOON_UTC);
        assert_eq!(america.len(), MAX_CHOICES);
        assert!(america
            .iter()
            .all(|(_, v)| v.to_lowercase().contains("america")));
        assert_eq!(
            timezone_choices("new york", NOON_UTC)[0].1,
            "America/New_York"
        );
        assert!(timezone_choices("zzz", NOON_UTC).is_empty());
        for (label, value) in timezone_choices("europe", NOON_UTC) {
            assert!(label.len() <= 100 && value.len() <= 100);
        }
    }

    #[test]
    fn streak_minutes_are_bounded() {
        assert_eq!(check_streak_minutes(1), Ok(1));
        assert_eq!(check_streak_minutes(1440), Ok(1440));
        for bad in [0, -5, 1441, i64::MAX] {
            assert!(check_streak_minutes(bad)
                .unwrap_err()
                .contains("out of range"));
        }
    }

    #[test]
    fn a_category_excludes_its_children_and_a_channel_only_itself() {
        let s = GuildSettings {
            excluded: [10, 20].into(),
            ..GuildSettings::default()
        };
        assert!(s.excludes(ChannelPath::top(10)));
        assert!(!s.excludes(ChannelPath::top(11)));
        let under = |category| ChannelPath {
            channel: 30,
            parent: None,
            category: Some(category),
        };
        assert!(s.excludes(under(20)));
        assert!(!s.excludes(under(21)));
        let thread = ChannelPath {
            channel: 99,
            parent: Some(10),
            category: None,
        };
        assert!(s.excludes(thread));
        let d = Defaults {
            timezone: chrono_tz::UTC,
            streak_min_minutes: 30,
        };
        assert_eq!(s.timezone_or(d), chrono_tz::UTC);
        assert_eq!(s.streak_min_minutes_or(d), 30);
    }
}
