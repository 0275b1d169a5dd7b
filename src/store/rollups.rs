//! The message days (`member_days`, `_id: "g:u:YYYY-MM-DD"`, `messages`):
//! what the chart's message bars and `/ud`'s messages per day read. A
//! message adds its count to the day it was sent on (carried in the op), in
//! a document with its own `seq` guard (ARCHITECTURE.md, "Exactly once"), so
//! a replay never counts twice, whatever `TIMEZONE` or tzdata it runs with.
//!
//! The day, week and month leaderboards are the member's current periods in
//! `member_stats` (`store/periods.rs`), and a voice credit's days are in its
//! segment, so a voice credit adds to no document here (issue 15, F7).
//! Earlier versions also kept voice in `member_days` and each week and month
//! in `member_weeks` and `member_months`: those documents stay as they were
//! (nothing reads them but the export; [`Store::carry_periods_once`] carried
//! the current ones into `member_stats`), and [`share`] still applies a dead
//! letter of theirs.
//!
//! [`Store::carry_periods_once`]: super::Store::carry_periods_once

use super::schema::{member_id, MEMBER_DAYS};
use crate::core::calendar::{day_key, month_key, parse_day, week_key};
use crate::core::stats::Totals;
use crate::durable::op::Op;

/// The rollup documents `(collection, _id)` an op adds to: a message's
/// day (and a correction of messages'). A voice credit's days are in its
/// segment, and the current day, week and month of every op are in
/// `member_stats` (`store/periods.rs`).
pub(super) fn targets(op: &Op) -> Vec<(&'static str, String)> {
    match op {
        Op::Message { day, .. } => vec![(MEMBER_DAYS, format!("{}:{day}", member_id(op.member())))],
        Op::Adjust { day, what, .. } if what == "messages" => {
            vec![(MEMBER_DAYS, format!("{}:{day}", member_id(op.member())))]
        }
        _ => Vec::new(),
    }
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
    fn a_voice_credit_adds_to_no_rollup_document_and_its_shares_are_its_own_days() {
        // Sunday 23:30 to Monday 00:30 in Kolkata (UTC+5:30), month end: the
        // days were cut when the op was made.
        let days = vec![(date("2026-11-29"), 1800), (date("2026-11-30"), 1800)];
        let op = voice(
            "2026-11-29T18:00:00Z",
            "2026-11-29T19:00:00Z",
            Some(days),
            None,
        );
        assert!(targets(&op).is_empty());
        // A dead letter of an earlier version's day, week or month document
        // still gets its share, from the record's own days.
        assert_eq!(share(&op, "2026-11-29").cam_on_secs, 1800);
        assert_eq!(share(&op, "w2026-11-23").cam_on_secs, 1800);
        assert_eq!(share(&op, "w2026-11-30").cam_on_secs, 1800);
        assert_eq!(share(&op, "m2026-11").cam_on_secs, 3600);
        // The previous version's record (a zone, no days): cut in its zone.
        let prev = voice(
            "2026-11-29T18:00:00Z",
            "2026-11-29T19:00:00Z",
            None,
            Some(chrono_tz::Asia::Kolkata),
        );
        assert_eq!(share(&prev, "2026-11-30").cam_on_secs, 1800);
        // A record from before the rollups (neither): no share anywhere, so
        // no `TIMEZONE` can give it other days on a replay.
        let old = voice("2026-11-29T18:00:00Z", "2026-11-29T19:00:00Z", None, None);
        assert_eq!(share(&old, "2026-11-29"), Totals::default());
    }

    #[test]
    fn a_message_adds_to_its_day() {
        let op = Op::Message {
            guild: 1,
            user: 2,
            day: "2026-12-01".into(),
            count: 3,
            max_id: None,
        };
        let t = targets(&op);
        assert_eq!(t, [(MEMBER_DAYS, "1:2:2026-12-01".to_owned())]);
        assert_eq!(share(&op, key_of(&t[0].1)).messages, 3);
        assert_eq!(share(&op, "m2026-12").messages, 3);
        assert_eq!(share(&op, "m2026-11").messages, 0);
    }
}
