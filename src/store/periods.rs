//! A member's current periods, kept in their `member_stats` document beside
//! the totals: `day`, `week` and `month`, each `{key, voice_cam_on_secs,
//! voice_cam_off_secs, voice_secs, messages}` for the period its `key` names
//! (`2026-11-30`, `w2026-11-30`, `m2026-11`; `core::calendar`). What the day,
//! week and month leaderboards rank and the card's ranks read (issue 15, F7).
//!
//! So an op writes one document for its totals and its periods: a voice
//! credit 2 in all (`member_stats`, its segment), a message 2
//! (`member_stats`, its day in `member_days`, for the chart's message bars).
//! Exactly-once is the totals' own seq guard (ARCHITECTURE.md, "Exactly
//! once").
//!
//! Two shapes of the same statement:
//! - **Steady** ([`fast_keys`]): when every op of the statement falls in one
//!   day (hence one week and one month), a plain `$inc` whose filter also
//!   asks that the stored keys be those. A new document is inserted with
//!   them. A document at other keys (the member's first op of a new day)
//!   does not match, the upsert collides with its `_id`, and `apply` sends
//!   the op again in the rolling shape.
//! - **Rolling** ([`stats_pipeline`]): one update-pipeline stage that adds to
//!   a period whose stored key is the op's, replaces an older one, and keeps
//!   a newer one (a late message for a day already over: its day is still in
//!   `member_days`, its voice in its segment's `days`, which is what the
//!   chart and the streaks read).
//!
//! The keys come from the op's record only (the days it carries, a
//! message's or a correction's day), never from `TIMEZONE`, so a replay
//! rolls over the same way.

use mongodb::bson::{doc, Bson, DateTime, Document, RawDocumentBuf};

use super::schema::to_i64;
use crate::core::calendar::{day_key, month_key, parse_day, week_key};
use crate::core::stats::Totals;
use crate::core::whole_secs;
use crate::durable::op::{Op, Sequenced};

/// The period fields of `member_stats`, in the order of
/// `[day_key, week_key, month_key]`.
pub(super) const PERIODS: [&str; 3] = ["day", "week", "month"];

/// The keys of a period field's metrics.
const METRICS: [&str; 3] = ["voice_cam_on_secs", "voice_cam_off_secs", "messages"];

type Keys = [String; 3];

/// What one op adds to the periods: per local day it touches, the day's
/// keys and the op's share of it.
fn shares(op: &Op) -> Vec<(Keys, Totals)> {
    let keys = |date| [day_key(date), week_key(date), month_key(date)];
    match op {
        Op::Voice { camera, .. } => op
            .voice_days()
            .into_iter()
            .map(|(date, secs)| {
                let t = if *camera {
                    Totals {
                        cam_on_secs: secs,
                        ..Totals::default()
                    }
                } else {
                    Totals {
                        cam_off_secs: secs,
                        ..Totals::default()
                    }
                };
                (keys(date), t)
            })
            .collect(),
        Op::Message { day, count, .. } => parse_day(day)
            .map(|date| {
                let t = Totals {
                    messages: i64::from(*count),
                    ..Totals::default()
                };
                (keys(date), t)
            })
            .into_iter()
            .collect(),
        Op::Adjust {
            day, what, amount, ..
        } => parse_day(day)
            .map(|date| (keys(date), adjusted(what, *amount)))
            .into_iter()
            .collect(),
        Op::Checkpoint { .. } => Vec::new(),
    }
}

fn adjusted(what: &str, amount: i64) -> Totals {
    let mut t = Totals::default();
    match what {
        "camera_on" => t.cam_on_secs = amount,
        "camera_off" => t.cam_off_secs = amount,
        _ => t.messages = amount,
    }
    t
}

fn add(sum: &mut Totals, t: &Totals) {
    sum.cam_on_secs += t.cam_on_secs;
    sum.cam_off_secs += t.cam_off_secs;
    sum.messages += t.messages;
}

/// The totals `ops` add (all time), the resume point and the highest
/// message id they hold.
pub(super) fn totals(ops: &[&Sequenced]) -> (Totals, Option<i64>, Option<u64>) {
    let mut sum = Totals::default();
    let (mut credited_until, mut msg_max) = (None, None);
    for o in ops {
        match &o.op {
            Op::Voice {
                camera, from, to, ..
            } => {
                if *camera {
                    sum.cam_on_secs += whole_secs(*from, *to);
                } else {
                    sum.cam_off_secs += whole_secs(*from, *to);
                }
                credited_until = credited_until.max(Some(*to));
            }
            Op::Message { count, max_id, .. } => {
                sum.messages += i64::from(*count);
                msg_max = msg_max.max(*max_id);
            }
            Op::Adjust { what, amount, .. } => add(&mut sum, &adjusted(what, *amount)),
            Op::Checkpoint { .. } => {}
        }
    }
    (sum, credited_until, msg_max)
}

/// The one day (and its week and month) every period share of `ops` falls
/// in, and what they add there: `Some(None)` when they add to no period
/// (a record from before days were carried), `None` when they span days
/// (the rolling shape decides).
#[allow(clippy::option_option)] // three cases: no period, one day, several
pub(super) fn fast_keys(ops: &[&Sequenced]) -> Option<Option<(Keys, Totals)>> {
    let mut one: Option<(Keys, Totals)> = None;
    for o in ops {
        for (keys, t) in shares(&o.op) {
            match &mut one {
                Some((k, sum)) if *k == keys => add(sum, &t),
                Some(_) => return None,
                None => one = Some((keys, t)),
            }
        }
    }
    Some(one)
}

/// The dotted fields of the steady shape: per period, its `key` and its
/// metrics (static, so that a flush of 100,000 credits formats none).
const FIELDS: [(&str, [&str; 3]); 3] = [
    (
        "day.key",
        [
            "day.voice_cam_on_secs",
            "day.voice_cam_off_secs",
            "day.messages",
        ],
    ),
    (
        "week.key",
        [
            "week.voice_cam_on_secs",
            "week.voice_cam_off_secs",
            "week.messages",
        ],
    ),
    (
        "month.key",
        [
            "month.voice_cam_on_secs",
            "month.voice_cam_off_secs",
            "month.messages",
        ],
    ),
];

/// The steady shape's parts for one day's `keys` and what `t` adds there:
/// the filter's period keys (an insert takes them from there), and the
/// increments.
pub(super) fn steady(
    keys: &Keys,
    t: &Totals,
    q: &mut RawDocumentBuf,
    inc: &mut Vec<(&'static str, i64)>,
) {
    for ((key_field, metrics), key) in FIELDS.into_iter().zip(keys) {
        // An upsert's new document takes the filter's equalities: the
        // keys need no `$set` of their own.
        q.append(key_field, key.as_str());
        inc.extend(metrics.into_iter().zip(values(t)));
    }
}

fn values(t: &Totals) -> [i64; 3] {
    [t.cam_on_secs, t.cam_off_secs, t.messages]
}

/// An `$inc` of the non-zero `(field, n)` (a voice credit adds nothing to
/// `messages`, a message nothing to voice): fewer bytes to build, encode and
/// apply. Never empty: the first field stays when all are 0.
pub(super) fn nonzero<'a>(pairs: impl IntoIterator<Item = (&'a str, i64)>) -> RawDocumentBuf {
    let mut inc = RawDocumentBuf::new();
    let mut first = None;
    for (field, n) in pairs {
        first.get_or_insert(field);
        if n != 0 {
            inc.append(field, n);
        }
    }
    if let (true, Some(field)) = (inc.is_empty(), first) {
        inc.append(field, 0_i64);
    }
    inc
}

/// Per period, the newest key the ops reach and what they add to it (ops
/// for older keys of that period add nothing to the current period).
pub(super) fn newest(ops: &[&Sequenced]) -> [Option<(String, Totals)>; 3] {
    let mut best: [Option<(String, Totals)>; 3] = [None, None, None];
    for o in ops {
        for (keys, t) in shares(&o.op) {
            for (slot, key) in best.iter_mut().zip(keys) {
                match slot {
                    Some((k, sum)) if *k == key => add(sum, &t),
                    Some((k, _)) if *k > key => {}
                    _ => *slot = Some((key, t)),
                }
            }
        }
    }
    best
}

/// `$field + n` (a missing field counts as 0).
fn plus(field: &str, n: i64) -> Bson {
    Bson::Document(doc! { "$add": [{ "$ifNull": [format!("${field}"), 0_i64] }, n] })
}

/// The period `name` after adding `t` at `key`: added to when it is at
/// `key`, kept when it is newer, replaced when older (or absent).
pub(super) fn rolled(name: &str, key: &str, t: &Totals) -> Bson {
    let mut added = doc! { "key": { "$literal": key } };
    let mut fresh = doc! { "key": { "$literal": key } };
    for (metric, n) in METRICS.into_iter().zip(values(t)) {
        added.insert(metric, plus(&format!("{name}.{metric}"), n));
        fresh.insert(metric, doc! { "$literal": n });
    }
    let stored = format!("${name}.key");
    Bson::Document(doc! { "$cond": {
        "if": { "$eq": [&stored, key] },
        "then": added,
        "else": { "$cond": { "if": { "$gt": [&stored, key] }, "then": format!("${name}"), "else": fresh } },
    } })
}

/// The rolling shape: the `member_stats` update for `ops` (in seq order) as
/// one pipeline stage: the totals added, `credited_until` and `msg_max`
/// raised, the periods rolled over, and `set` (identity and `seq`) set.
pub(super) fn stats_pipeline(ops: &[&Sequenced], set: &Document) -> Vec<Document> {
    let (sum, credited_until, msg_max) = totals(ops);
    let mut stage: Document = set
        .iter()
        .map(|(k, v)| (k.clone(), Bson::Document(doc! { "$literal": v.clone() })))
        .collect();
    for (metric, n) in METRICS.into_iter().zip(values(&sum)) {
        stage.insert(metric, plus(metric, n));
    }
    stage.insert("voice_secs", plus("voice_secs", sum.voice_secs()));
    // The resume point changes in the same statement as the totals it
    // guards: a restart that lost its spool resumes exactly where the
    // stored total ends, never before it. Likewise `msg_max`.
    if let Some(until) = credited_until {
        stage.insert(
            "credited_until",
            doc! { "$max": ["$credited_until", { "$literal": DateTime::from_millis(until) }] },
        );
    }
    if let Some(id) = msg_max {
        stage.insert(
            "msg_max",
            doc! { "$max": ["$msg_max", { "$literal": to_i64(id) }] },
        );
    }
    for (name, newest) in PERIODS.into_iter().zip(newest(ops)) {
        if let Some((key, t)) = newest {
            stage.insert(name, rolled(name, &key, &t));
        }
    }
    vec![doc! { "$set": stage }]
}

/// A period's totals as stored in `member_stats` (`d[name]`), if it is the
/// period `key`; zeros otherwise.
pub(super) fn stored(d: &Document, name: &str, key: &str) -> Totals {
    match d.get_document(name) {
        Ok(p) if p.get_str("key") == Ok(key) => Totals {
            cam_on_secs: super::schema::int(p, "voice_cam_on_secs"),
            cam_off_secs: super::schema::int(p, "voice_cam_off_secs"),
            messages: super::schema::int(p, "messages"),
        },
        _ => Totals::default(),
    }
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
            max_id: None,
        }
    }

    fn sequenced(ops: Vec<Op>) -> Vec<Sequenced> {
        ops.into_iter()
            .zip(1..)
            .map(|(op, seq)| Sequenced { seq, op, epoch: 0 })
            .collect()
    }

    #[test]
    fn each_period_keeps_the_newest_key_the_ops_reach() {
        // Sunday 29th to Monday 30th (a new day and week, the same month),
        // then a late message for Sunday.
        let seq = sequenced(vec![
            voice(&[("2026-11-29", 600), ("2026-11-30", 300)]),
            message("2026-11-30"),
            message("2026-11-29"),
        ]);
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
        // Across days: no steady shape.
        assert!(fast_keys(&refs).is_none());
    }

    #[test]
    fn the_steady_fields_are_the_periods_metrics() {
        for ((key, metrics), name) in FIELDS.into_iter().zip(PERIODS) {
            assert_eq!(key, format!("{name}.key"));
            for (field, metric) in metrics.into_iter().zip(METRICS) {
                assert_eq!(field, format!("{name}.{metric}"));
            }
        }
    }

    #[test]
    fn ops_of_one_day_take_the_steady_shape() {
        let seq = sequenced(vec![voice(&[("2026-12-01", 60)]), message("2026-12-01")]);
        let refs: Vec<&Sequenced> = seq.iter().collect();
        let (keys, t) = fast_keys(&refs).unwrap().unwrap();
        assert_eq!(
            keys,
            ["2026-12-01", "w2026-11-30", "m2026-12"].map(String::from)
        );
        assert_eq!((t.cam_on_secs, t.messages), (60, 2));
        // A record that carries no day adds to no period, and does not
        // stand in the way of the steady shape.
        let old = sequenced(vec![Op::Voice {
            guild: 1,
            user: 2,
            channel: 3,
            camera: false,
            segment_start: 0,
            from: 0,
            to: 1000,
            days: None,
            tz: None,
        }]);
        let refs: Vec<&Sequenced> = old.iter().collect();
        assert_eq!(fast_keys(&refs), Some(None));
        assert_eq!(totals(&refs).0.cam_off_secs, 1);
    }
}
