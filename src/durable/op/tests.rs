use super::*;

/// Records as the previous version wrote them: a spool left by it must
/// still be read (and written the same way).
#[test]
fn on_disk_format_is_unchanged() {
    let cases = [
        r#"{"seq":7,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12}}"#,
        r#"{"seq":8,"op":{"t":"m","g":1,"u":2,"day":"2026-11-26"}}"#,
        r#"{"seq":9,"op":{"t":"s","g":1,"u":2,"open":{"ch":3,"cam":false,"seg":10}}}"#,
        r#"{"seq":10,"op":{"t":"s","g":1,"u":2,"open":null}}"#,
        r#"{"seq":11,"op":{"t":"m","g":1,"u":2,"day":"2026-11-26","n":3}}"#,
        r#"{"seq":12,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12,"tz":"Asia/Kolkata"}}"#,
        r#"{"seq":14,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12,"d":[["2026-11-29",1800],["2026-11-30",1800]]}}"#,
        r#"{"seq":15,"op":{"t":"a","g":1,"u":2,"id":99,"what":"camera_on","amount":-2700,"at":11,"day":"2026-12-02","actor":"operator","reason":"typo"},"e":3}"#,
    ];
    for json in cases {
        let rec: Sequenced = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&rec).unwrap(), json);
    }
    // A voice record from before the rollups has no zone; a new one has
    // the zone it was credited in.
    let old: Sequenced = serde_json::from_str(cases[0]).unwrap();
    assert!(
        matches!(
            old.op,
            Op::Voice {
                tz: None,
                days: None,
                ..
            }
        ),
        "{old:?}"
    );
    let new: Sequenced = serde_json::from_str(cases[5]).unwrap();
    assert!(
        matches!(
            new.op,
            Op::Voice {
                tz: Some(chrono_tz::Asia::Kolkata),
                ..
            }
        ),
        "{new:?}"
    );
    let carried: Sequenced = serde_json::from_str(cases[6]).unwrap();
    assert_eq!(carried.op.voice_days().len(), 2);
    // A pre-rollup record adds to no day, whatever the zone now (the
    // previous version's one is cut in its own zone: store::rollups).
    assert!(old.op.voice_days().is_empty());
    // An unknown zone name reads as absent, not as an unreadable spool.
    let unknown: Sequenced = serde_json::from_str(
        r#"{"seq":13,"op":{"t":"v","g":1,"u":2,"ch":3,"cam":true,"seg":10,"from":11,"to":12,"tz":"Mars/Olympus"}}"#,
    )
    .unwrap();
    assert!(matches!(unknown.op, Op::Voice { tz: None, .. }));
    let rec: Sequenced = serde_json::from_str(cases[2]).unwrap();
    assert_eq!(
        rec.op,
        Op::Checkpoint {
            guild: 1,
            user: 2,
            open: Some(OpenSegment {
                channel: 3,
                camera: false,
                segment_start: 10
            })
        }
    );
}

#[test]
fn a_credit_carries_its_days_cut_when_the_op_is_made() {
    use crate::core::tracker::Credit;
    let ms = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    };
    // 23:30 to 00:30 in Kolkata (UTC+5:30): two local days.
    let credit = Credit {
        member: MemberKey { guild: 1, user: 2 },
        channel: 3,
        camera: true,
        segment_start: ms("2026-11-29T18:00:00Z"),
        from: ms("2026-11-29T18:00:00Z"),
        to: ms("2026-11-29T19:00:00Z"),
    };
    let op = Op::effect(Effect::Credit(credit), chrono_tz::Asia::Kolkata);
    let day = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(
        op.voice_days(),
        [(day("2026-11-29"), 1800), (day("2026-11-30"), 1800)]
    );
    // On disk and back: the same days.
    let json = serde_json::to_string(&op).unwrap();
    assert!(
        json.contains(r#""d":[["2026-11-29",1800],["2026-11-30",1800]]"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
}
