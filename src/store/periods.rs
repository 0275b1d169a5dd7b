//! A member's current periods, kept in their `member_stats` document beside
//! the totals: `day`, `week` and `month`, each `{key, voice_cam_on_secs,
//! voice_cam_off_secs, voice_secs, messages}` for the period `key` names
//! (`2026-11-30`, `w2026-11-30`, `m2026-11`; `core::calendar`). What the day,
//! week and month leaderboards rank, and what the card's ranks read.
//!
//! One document per op instead of one per period (issue 15, F7): the
//! statement that adds an op to the totals also rolls each period over by
//! key, in the same seq-guarded statement (an update pipeline): a period
//! whose stored key is the op's adds to it; an older stored key is replaced
//! by the op's period; a newer one (a late message for a day already over)
//! stays, the op's share of the closed period going nowhere here (its day
//! is in `member_days` for messages and in its segment's `days` for voice,
//! which is what the chart and the streaks read). So a voice credit writes 2
//! documents (`member_stats`, its segment) and a message 2 (`member_stats`,
//! its day in `member_days`), and exactly-once is the totals' own guard
//! (ARCHITECTURE.md, "Exactly once").
//!
//! The keys come from the op's record only (the days it carries, a
//! message's day), never from `TIMEZONE`, so a replay rolls over the same
//! way.

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::core::calendar::{day_key, month_key, parse_day, week_key};
use crate::core::stats::Totals;
use crate::core::whole_secs;
use crate::durable::op::{Op, Sequenced};

/// The period fields of `member_stats`, in the order of
/// `[day_key, week_key, month_key]`.
pub(super) const PERIODS: [&str; 3] = ["day", "week", "month"];

/// Per period, the newest key the ops reach and what they add to it (ops
/// for older keys of that period add nothing to the current period).
pub(super) fn newest(ops: &[&Sequenced]) -> [Option<(String, Totals)>; 3] {
    let mut best: [Option<(String, Totals)>; 3] = [None, None, None];
    let mut add = |date, t: Totals| {
        for (slot, key) in best
            .iter_mut()
            .zip([day_key(date), week_key(date), month_key(date)])
        {
            match slot {
                Some((k, sum)) if *k == key => {
                    sum.cam_on_secs += t.cam_on_secs;
                    sum.cam_off_secs += t.cam_off_secs;
                    sum.messages += t.messages;
                }
                Some((k, _)) if *k > key => {}
                _ => *slot = Some((key, t)),
            }
        }
    };
    for o in ops {
        match &o.op {
            Op::Voice { camera, .. } => {
                for (date, secs) in o.op.voice_days() {
                    let mut t = Totals::default();
                    if *camera {
                        t.cam_on_secs = secs;
                    } else {
                        t.cam_off_secs = secs;
                    }
                    add(date, t);
                }
            }
            Op::Message { day, count, .. } => {
                if let Some(date) = parse_day(day) {
                    let t = Totals {
                        messages: i64::from(*count),
                        ..Totals::default()
                    };
                    add(date, t);
                }
            }
            Op::Checkpoint { .. } => {}
        }
    }
    best
}

/// `$field + n` (a missing field counts as 0).
fn plus(field: &str, n: i64) -> Bson {
    Bson::Document(doc! { "$add": [{ "$ifNull": [format!("${field}"), 0_i64] }, n] })
}

/// The period `name` after adding `t` at `key`: added to it when it is at
/// `key`, kept when it is newer, replaced when older (or absent).
fn rolled(name: &str, key: &str, t: &Totals) -> Bson {
    let at = |f: &str| format!("{name}.{f}");
    let added = doc! {
        "key": { "$literal": key },
        "voice_cam_on_secs": plus(&at("voice_cam_on_secs"), t.cam_on_secs),
        "voice_cam_off_secs": plus(&at("voice_cam_off_secs"), t.cam_off_secs),
        "voice_secs": plus(&at("voice_secs"), t.voice_secs()),
        "messages": plus(&at("messages"), t.messages),
    };
    let fresh = doc! {
        "key": { "$literal": key },
        "voice_cam_on_secs": { "$literal": t.cam_on_secs },
        "voice_cam_off_secs": { "$literal": t.cam_off_secs },
        "voice_secs": { "$literal": t.voice_secs() },
        "messages": { "$literal": t.messages },
    };
    let stored = format!("${name}.key");
    Bson::Document(doc! { "$cond": {
        "if": { "$eq": [&stored, key] },
        "then": added,
        "else": { "$cond": { "if": { "$gt": [&stored, key] }, "then": format!("${name}"), "else": fresh } },
    } })
}

/// The `member_stats` update for `ops` (in seq order), as one pipeline
/// stage: the totals added, `credited_until` raised, the periods rolled
/// over, and `set` (identity and `seq`) set.
pub(super) fn stats_update(ops: &[&Sequenced], set: &Document) -> Vec<Document> {
    let (mut on, mut off, mut messages) = (0_i64, 0_i64, 0_i64);
    let mut credited_until = None;
    for o in ops {
        match &o.op {
            Op::Voice {
                camera, from, to, ..
            } => {
                if *camera {
                    on += whole_secs(*from, *to);
                } else {
                    off += whole_secs(*from, *to);
                }
                credited_until = credited_until.max(Some(*to));
            }
            Op::Message { count, .. } => messages += i64::from(*count),
            Op::Checkpoint { .. } => {}
        }
    }
    let mut stage: Document = set
        .iter()
        .map(|(k, v)| (k.clone(), Bson::Document(doc! { "$literal": v.clone() })))
        .collect();
    stage.insert("voice_cam_on_secs", plus("voice_cam_on_secs", on));
    stage.insert("voice_cam_off_secs", plus("voice_cam_off_secs", off));
    stage.insert("voice_secs", plus("voice_secs", on + off));
    stage.insert("messages", plus("messages", messages));
    // The resume point changes in the same statement as the totals it
    // guards: a restart that lost its spool resumes exactly where the
    // stored total ends, never before it.
    if let Some(until) = credited_until {
        stage.insert(
            "credited_until",
            doc! { "$max": ["$credited_until", { "$literal": DateTime::from_millis(until) }] },
        );
    }
    for (name, newest) in PERIODS.into_iter().zip(newest(ops)) {
        if let Some((key, t)) = newest {
            stage.insert(name, rolled(name, &key, &t));
        }
    }
    vec![doc! { "$set": stage }]
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn voice(days: &[(&str, i64)]) -> Op {
        Op::Voice {
            guild: 1,
            user: 2,
            channel: 3,
            camera: true,
            segment_start: 0,
            from: 0,
            to: days.iter().map(|(_, s)| s).sum::<i64>() * 1000,
            days: Some(days.iter().map(|(d, s)| (date(d), *s)).collect()),
            tz: None,
        }
    }

    fn message(day: &str) -> Op {
        Op::Message {
            guild: 1,
            user: 2,
            day: day.into(),
            count: 2,
        }
    }

    #[test]
    fn each_period_keeps_the_newest_key_the_ops_reach() {
        // Sunday 29th to Monday 30th (a new day and week, the same month),
        // then a late message for Sunday.
        let ops = [
            voice(&[("2026-11-29", 600), ("2026-11-30", 300)]),
            message("2026-11-30"),
            message("2026-11-29"),
        ];
        let seq: Vec<Sequenced> = ops
            .into_iter()
            .zip(1..)
            .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
            .collect();
        let refs: Vec<&Sequenced> = seq.iter().collect();
        let [day, week, month] = newest(&refs);
        let (k, t) = day.unwrap();
        assert_eq!(
            (k.as_str(), t.cam_on_secs, t.messages),
            ("2026-11-30", 300, 2)
        );
        let (k, t) = week.unwrap();
        assert_eq!(
            (k.as_str(), t.cam_on_secs, t.messages),
            ("w2026-11-30", 300, 2)
        );
        let (k, t) = month.unwrap();
        assert_eq!(
            (k.as_str(), t.cam_on_secs, t.messages),
            ("m2026-11", 900, 4)
        );
    }
}
