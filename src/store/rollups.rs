//! The rollups the writer keeps beside the totals, in the same idempotent
//! apply: per member and local day (`member_days`, `_id: "g:u:YYYY-MM-DD"`),
//! per member and week (`member_weeks`, `_id: "g:u:wYYYY-MM-DD"` for the
//! week starting that Monday) and per member and month (`member_months`,
//! `_id: "g:u:mYYYY-MM"`), each with `voice_cam_on_secs`, `voice_cam_off_secs`, `voice_secs` (their
//! sum, what the voice ranking sorts on) and `messages`. All time is
//! `member_stats` itself (it gains `voice_secs`).
//!
//! A rollup document is one more target of an op, guarded by its own `seq`
//! like every other document (ARCHITECTURE.md, "Exactly once"), so a replay
//! never counts twice. Which documents an op touches, and what it adds to
//! each, depend only on the op's record: the days it carries (cut when it
//! was made, [`Op::voice_days`]), or a message's day; never on the
//! configured `TIMEZONE` or on tzdata, so a replay after either changed
//! touches the same documents with the same amounts.
//!
//! Weeks and months have a collection each rather than one shared one:
//! FerretDB v1.24 scans the whole collection for every seq-guarded statement,
//! so a statement costs in proportion to its collection (BENCHMARKS.md,
//! "Leaderboards").

use super::schema::{member_id, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_WEEKS};
use crate::core::calendar::{day_key, month_key, parse_day, period_keys_of_day, week_key};
use crate::core::stats::Totals;
use crate::durable::op::Op;

/// The rollup documents `(collection, _id)` an op adds to (none for a
/// checkpoint), each once.
pub(super) fn targets(op: &Op) -> Vec<(&'static str, String)> {
    let member = member_id(op.member());
    let mut keys: Vec<(&'static str, String)> = Vec::new();
    match op {
        Op::Voice { .. } => {
            for (date, _) in op.voice_days() {
                keys.push((MEMBER_DAYS, day_key(date)));
                keys.push((MEMBER_WEEKS, week_key(date)));
                keys.push((MEMBER_MONTHS, month_key(date)));
            }
        }
        Op::Message { day, .. } | Op::Adjust { day, .. } => {
            keys.push((MEMBER_DAYS, day.clone()));
            if let Some((week, month)) = period_keys_of_day(day) {
                keys.push((MEMBER_WEEKS, week));
                keys.push((MEMBER_MONTHS, month));
            }
        }
        Op::Checkpoint { .. } => {}
    }
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(coll, key)| (coll, format!("{member}:{key}")))
        .collect()
}

/// The period key of a rollup document's `_id` (what follows `g:u:`).
pub(super) fn key_of(id: &str) -> &str {
    id.rsplit(':').next().unwrap_or_default()
}

/// What `op` adds to the rollup keyed `key` (a day, `w…` or `m…`).
pub(super) fn share(op: &Op, key: &str) -> Totals {
    let matches = |date| match key.as_bytes().first() {
        Some(b'w') => week_key(date) == key,
        Some(b'm') => month_key(date) == key,
        _ => day_key(date) == key,
    };
    let mut t = Totals::default();
    match op {
        Op::Voice { camera, .. } => {
            let secs: i64 = op
                .voice_days()
                .into_iter()
                .filter(|(date, _)| matches(*date))
                .map(|(_, s)| s)
                .sum();
            if *camera {
                t.cam_on_secs = secs;
            } else {
                t.cam_off_secs = secs;
            }
        }
        Op::Message { day, count, .. } => {
            let here = match parse_day(day) {
                Some(date) => matches(date),
                None => day == key,
            };
            if here {
                t.messages = i64::from(*count);
            }
        }
        Op::Adjust {
            day, what, amount, ..
        } => {
            if parse_day(day).map_or(day == key, matches) {
                match what.as_str() {
                    "camera_on" => t.cam_on_secs = *amount,
                    "camera_off" => t.cam_off_secs = *amount,
                    _ => t.messages = *amount,
                }
            }
        }
        Op::Checkpoint { .. } => {}
    }
    t
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn voice(from: &str, to: &str, days: Option<Vec<(NaiveDate, i64)>>, tz: Option<Tz>) -> Op {
        Op::Voice {
            guild: 1,
            user: 2,
            channel: 3,
            camera: true,
            segment_start: ms(from),
            from: ms(from),
            to: ms(to),
            days,
            tz,
        }
    }

    use chrono_tz::Tz;

    #[test]
    fn a_credit_across_local_midnight_adds_to_both_days_and_their_periods() {
        // Sunday 23:30 to Monday 00:30 in Kolkata (UTC+5:30), month end: the
        // days were cut when the op was made.
        let days = vec![(date("2026-11-29"), 1800), (date("2026-11-30"), 1800)];
        let op = voice(
            "2026-11-29T18:00:00Z",
            "2026-11-29T19:00:00Z",
            Some(days),
            None,
        );
        let t = targets(&op);
        let ids: Vec<&str> = t.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "1:2:2026-11-29",
                "1:2:2026-11-30",
                "1:2:m2026-11",
                "1:2:w2026-11-23",
                "1:2:w2026-11-30"
            ]
        );
        for (_, id) in &t {
            assert_eq!(
                share(&op, key_of(id)).cam_on_secs,
                if id.ends_with("m2026-11") { 3600 } else { 1800 },
                "{id}"
            );
        }
    }

    #[test]
    fn the_targets_are_the_records_own_whatever_the_zone_now() {
        // The days an op carries decide, even where this build's tzdata
        // would cut the same stretch elsewhere (a tzdata change between the
        // run that made it and the one replaying it).
        let op = voice(
            "2026-11-29T18:00:00Z",
            "2026-11-29T19:00:00Z",
            Some(vec![(date("2026-11-29"), 3600)]),
            None,
        );
        let ids: Vec<String> = targets(&op).into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, ["1:2:2026-11-29", "1:2:m2026-11", "1:2:w2026-11-23"]);
        // The previous version's record (a zone, no days): cut in its zone.
        let prev = voice(
            "2026-11-29T18:00:00Z",
            "2026-11-29T19:00:00Z",
            None,
            Some(chrono_tz::Asia::Kolkata),
        );
        assert_eq!(targets(&prev).len(), 5);
        // A record from before the rollups (neither): no rollup at all, so
        // no `TIMEZONE` can give it other days on a replay.
        let old = voice("2026-11-29T18:00:00Z", "2026-11-29T19:00:00Z", None, None);
        assert!(targets(&old).is_empty());
        assert_eq!(share(&old, "2026-11-29"), Totals::default());
    }

    #[test]
    fn a_message_adds_to_its_day_week_and_month() {
        let op = Op::Message {
            guild: 1,
            user: 2,
            day: "2026-12-01".into(),
            count: 3,
            max_id: None,
        };
        let t = targets(&op);
        assert_eq!(t.len(), 3);
        for (_, id) in &t {
            assert_eq!(share(&op, key_of(id)).messages, 3, "{id}");
        }
        assert_eq!(share(&op, "m2026-11").messages, 0);
    }
}
