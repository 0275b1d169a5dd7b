//! The statements as the server reads them: what `statement()` writes
//! straight into BSON, decoded and compared with the intended document.

use chrono::NaiveDate;
use mongodb::bson::{doc, Bson, DateTime};

use super::*;

fn voice(days: &[(&str, i64)], from: i64) -> Op {
    Op::Voice {
        guild: 1,
        user: 2,
        channel: 3,
        camera: true,
        segment_start: 0,
        from,
        to: from + days.iter().map(|(_, s)| s).sum::<i64>() * 1000,
        days: Some(
            days.iter()
                .map(|(d, s)| (NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(), *s))
                .collect(),
        ),
        tz: None,
    }
}

fn statements(ops: Vec<Op>, epoch: u64) -> Vec<(&'static str, Document)> {
    let batch: Vec<Sequenced> = ops
        .into_iter()
        .zip(5..)
        .map(|(op, seq)| Sequenced { seq, op, epoch })
        .collect();
    group(&batch, &HashSet::new())
        .into_iter()
        .flat_map(|(coll, docs)| {
            docs.into_iter()
                .map(|d| (coll, d.statement().to_document().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_steady_credit_is_one_inc_on_the_totals_and_one_on_its_segment() {
    let ops = vec![
        voice(&[("2026-12-01", 60)], 1_000),
        voice(&[("2026-12-01", 30)], 61_000),
    ];
    let got = statements(ops, 3);
    let stats = doc! {
        "q": {
            "_id": "1:2", "seq": { "$not": { "$gte": 5_i64 } }, "epoch": { "$not": { "$gt": 3_i64 } },
            "day.key": "2026-12-01", "week.key": "w2026-11-30", "month.key": "m2026-12",
        },
        "u": {
            "$inc": {
                "voice_secs": 90_i64, "voice_cam_on_secs": 90_i64,
                "day.voice_cam_on_secs": 90_i64, "week.voice_cam_on_secs": 90_i64, "month.voice_cam_on_secs": 90_i64,
            },
            "$max": { "credited_until": DateTime::from_millis(91_000), "epoch": 3_i64 },
            "$set": { "guild_id": 1_i64, "user_id": 2_i64, "seq": 6_i64 },
        },
        "upsert": true,
    };
    let segment = doc! {
        "q": { "_id": "1:2:0", "seq": { "$not": { "$gte": 5_i64 } }, "epoch": { "$not": { "$gt": 3_i64 } } },
        "u": {
            "$inc": { "days.2026-12-01": 90_i64, "secs": 90_i64 },
            "$max": { "end": DateTime::from_millis(91_000), "epoch": 3_i64 },
            "$set": {
                "guild_id": 1_i64, "user_id": 2_i64, "seq": 6_i64,
                "channel_id": 3_i64, "camera": true, "start": DateTime::from_millis(0),
            },
        },
        "upsert": true,
    };
    assert_eq!(got, vec![(MEMBER_STATS, stats), (VOICE_SEGMENTS, segment)]);
}

#[test]
fn ops_across_days_take_the_rolling_shape_and_raise_the_epoch_last() {
    let got = statements(vec![voice(&[("2026-11-30", 10), ("2026-12-01", 20)], 0)], 2);
    let (_, stats) = got.iter().find(|(c, _)| *c == MEMBER_STATS).unwrap();
    let Some(Bson::Array(stages)) = stats.get("u") else {
        panic!("a pipeline: {stats}");
    };
    assert_eq!(stages.len(), 2);
    assert_eq!(
        stages[1],
        Bson::Document(doc! { "$set": { "epoch": { "$max": ["$epoch", { "$literal": 2_i64 }] } } })
    );
    assert!(stats.get_document("q").unwrap().get("day.key").is_none());
    // The segment keeps each day's seconds apart.
    let (_, segment) = got.iter().find(|(c, _)| *c == VOICE_SEGMENTS).unwrap();
    let inc = segment
        .get_document("u")
        .unwrap()
        .get_document("$inc")
        .unwrap();
    assert_eq!(
        inc,
        &doc! { "days.2026-11-30": 10_i64, "days.2026-12-01": 20_i64, "secs": 30_i64 }
    );
}

#[test]
fn without_a_lease_nothing_is_fenced() {
    for (_, s) in statements(vec![voice(&[("2026-12-01", 60)], 0)], 0) {
        assert!(s.get_document("q").unwrap().get("epoch").is_none(), "{s}");
        let max = s.get_document("u").unwrap().get_document("$max").unwrap();
        assert!(max.get("epoch").is_none(), "{s}");
    }
}
