use chrono_tz::Europe::Paris;
use proptest::prelude::*;

use super::*;
use crate::core::calendar::ms;
use crate::core::stats::StoredSegment;
use crate::core::whole_secs;

fn seg(camera: bool, start: &str, end: &str) -> StoredSegment {
    StoredSegment::span(camera, ms(start), ms(end))
}

fn member(segments: Vec<StoredSegment>) -> StoredMember {
    StoredMember {
        segments,
        ..StoredMember::default()
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn the_window_is_the_last_days_oldest_first_with_messages_by_day() {
    let now = ms("2026-11-26T12:00:00Z");
    let stored = StoredMember {
        days: vec![
            ("2026-11-12".into(), 100), // before the window
            ("2026-11-13".into(), 3),
            ("2026-11-26".into(), 5),
        ],
        ..StoredMember::default()
    };
    let d = daily(&stored, None, now, chrono_tz::UTC, 14);
    assert_eq!(d.len(), 14);
    assert_eq!(d[0].date, date("2026-11-13"));
    assert_eq!(d[13].date, date("2026-11-26"));
    assert_eq!(d[0].messages, 3);
    assert_eq!(d[13].messages, 5);
    assert_eq!(d.iter().map(|d| d.messages).sum::<i64>(), 8);
    let w = window_start(now, chrono_tz::UTC, 14);
    assert_eq!(
        (w.at, w.day.as_str()),
        (ms("2026-11-13T00:00:00Z"), "2026-11-13")
    );
    assert!(daily(&stored, None, now, chrono_tz::UTC, 0).is_empty());
}

#[test]
fn a_stay_across_local_midnight_is_split_at_the_zones_midnight() {
    // Kolkata is UTC+5:30: local midnight of the 26th is 18:30 UTC on the 25th.
    let tz = chrono_tz::Asia::Kolkata;
    let now = ms("2026-11-26T06:00:00Z");
    let stored = member(vec![seg(
        true,
        "2026-11-25T18:00:00Z",
        "2026-11-25T19:00:00Z",
    )]);
    let pending = Pending {
        channel: 1,
        camera: false,
        from: ms("2026-11-26T05:00:00Z"),
        to: now,
    };
    let d = daily(&stored, Some(pending), now, tz, 3);
    assert_eq!(d[1].date, date("2026-11-25"));
    assert_eq!((d[1].cam_on_secs, d[2].cam_on_secs), (1800, 1800));
    assert_eq!(d[2].cam_off_secs, 3600);
    assert_eq!(d[0].voice_secs(), 0);
}

#[test]
fn a_spring_forward_day_has_23_hours() {
    // Paris, 2026-03-29: 02:00 CET becomes 03:00 CEST.
    let stored = member(vec![seg(
        true,
        "2026-03-28T22:00:00Z",
        "2026-03-30T00:00:00Z",
    )]);
    let d = daily(&stored, None, ms("2026-03-30T12:00:00Z"), Paris, 3);
    assert_eq!(d[1].date, date("2026-03-29"));
    assert_eq!(d[0].cam_on_secs, 3600); // 23:00-24:00 CET on the 28th
    assert_eq!(d[1].cam_on_secs, 23 * 3600);
    assert_eq!(d[2].cam_on_secs, 2 * 3600); // 00:00-02:00 CEST on the 30th
}

#[test]
fn a_fall_back_day_has_25_hours() {
    // Paris, 2026-10-25: 03:00 CEST becomes 02:00 CET.
    let stored = member(vec![seg(
        false,
        "2026-10-24T21:00:00Z",
        "2026-10-26T00:00:00Z",
    )]);
    let d = daily(&stored, None, ms("2026-10-26T12:00:00Z"), Paris, 3);
    assert_eq!(d[1].date, date("2026-10-25"));
    assert_eq!(d[0].cam_off_secs, 3600);
    assert_eq!(d[1].cam_off_secs, 25 * 3600);
    assert_eq!(d[2].cam_off_secs, 3600);
}

#[test]
fn time_before_the_window_is_left_out() {
    let now = ms("2026-11-26T12:00:00Z");
    let stored = member(vec![seg(
        true,
        "2026-11-23T23:00:00Z",
        "2026-11-24T01:00:00Z",
    )]);
    let d = daily(&stored, None, now, chrono_tz::UTC, 3);
    assert_eq!(d[0].date, date("2026-11-24"));
    assert_eq!(d[0].cam_on_secs, 3600);
}

proptest! {
    /// However midnights cut a stretch inside the window, its pieces add up
    /// to its whole seconds, in any zone and across DST changes.
    #[test]
    fn pieces_add_up_to_the_whole(
        zone in 0_usize..4,
        // Windows holding Paris's 2026 DST changes (and New York's fall-back).
        base in prop::sample::select(vec![
            ms("2026-03-25T00:00:00Z"), ms("2026-10-21T00:00:00Z"), ms("2026-11-26T00:00:00Z"),
        ]),
        stays in prop::collection::vec((any::<bool>(), 0_i64..13 * 86_400_000, 0_i64..3 * 86_400_000), 1..6),
    ) {
        let tz = [chrono_tz::UTC, Paris, chrono_tz::America::New_York, chrono_tz::Asia::Kolkata][zone];
        let now = base + 14 * 86_400_000;
        let from = window_start(now, tz, 14).at;
        let segments: Vec<StoredSegment> = stays
            .iter()
            .map(|&(camera, off, len)| {
                let start = from + off;
                StoredSegment::span(camera, start, (start + len).min(now))
            })
            .filter(|s| s.end > s.start)
            .collect();
        let d = daily(&member(segments.clone()), None, now, tz, 14);
        let on: i64 = segments.iter().filter(|s| s.camera).map(|s| whole_secs(s.start, s.end)).sum();
        let off: i64 = segments.iter().filter(|s| !s.camera).map(|s| whole_secs(s.start, s.end)).sum();
        prop_assert_eq!(d.iter().map(|d| d.cam_on_secs).sum::<i64>(), on);
        prop_assert_eq!(d.iter().map(|d| d.cam_off_secs).sum::<i64>(), off);
    }
}

#[test]
fn voice_by_day_covers_the_whole_history_cut_at_local_midnights() {
    let stored = member(vec![
        // Paris is UTC+1 in November: 23:30–01:30 local spans two days.
        seg(true, "2026-11-01T22:30:00Z", "2026-11-02T00:30:00Z"),
        seg(false, "2025-03-01T10:00:00Z", "2025-03-01T10:20:00Z"),
    ]);
    let pending = Pending {
        channel: 7,
        camera: false,
        from: ms("2026-11-26T10:00:00Z"),
        to: ms("2026-11-26T10:15:00Z"),
    };
    let by_day = voice_by_day(&stored, Some(pending), Paris);
    assert_eq!(
        by_day,
        vec![
            (date("2025-03-01"), 1200),
            (date("2026-11-01"), 1800),
            (date("2026-11-02"), 5400),
            (date("2026-11-26"), 900),
        ]
    );
}

#[test]
fn a_stay_across_midnight_on_a_dst_night_splits_at_the_local_midnight() {
    use chrono_tz::America::New_York;
    // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST. 23:00 EDT on the
    // 31st (03:00Z) to 03:00 EST (08:00Z): 1 h before midnight, 4 h after
    // (the night's repeated hour included).
    let stored = member(vec![seg(
        true,
        "2026-11-01T03:00:00Z",
        "2026-11-01T08:00:00Z",
    )]);
    assert_eq!(
        voice_by_day(&stored, None, New_York),
        vec![(date("2026-10-31"), 3600), (date("2026-11-01"), 4 * 3600)]
    );
    let d = daily(&stored, None, ms("2026-11-01T20:00:00Z"), New_York, 2);
    assert_eq!((d[0].date, d[0].cam_on_secs), (date("2026-10-31"), 3600));
    assert_eq!(
        (d[1].date, d[1].cam_on_secs),
        (date("2026-11-01"), 4 * 3600)
    );
}

proptest! {
    #[test]
    fn voice_by_day_adds_up_to_the_stretches_and_agrees_with_daily(
        starts in prop::collection::vec((0i64..20 * 86_400, 0i64..3 * 86_400), 0..8),
    ) {
        let base = ms("2026-03-20T00:00:00Z"); // spans the spring DST change
        let segments: Vec<StoredSegment> = starts
            .iter()
            .map(|(s, len)| StoredSegment::span(true, base + s * 1000, base + (s + len) * 1000))
            .collect();
        let stored = member(segments.clone());
        let by_day = voice_by_day(&stored, None, Paris);
        let total: i64 = segments.iter().map(|s| whole_secs(s.start, s.end)).sum();
        prop_assert_eq!(by_day.iter().map(|(_, s)| s).sum::<i64>(), total);
        let now = base + 25 * 86_400_000;
        for d in daily(&stored, None, now, Paris, 30) {
            let got = by_day.iter().find(|(date, _)| *date == d.date).map_or(0, |(_, s)| *s);
            prop_assert_eq!(got, d.voice_secs());
        }
    }
}
