use chrono_tz::Europe::Paris;
use proptest::prelude::*;

use super::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn periods_are_calendar_periods_in_the_timezone() {
    // Wednesday 2026-11-25 23:30 UTC is Thursday 05:00 in Kolkata.
    let now = ms("2026-11-25T23:30:00Z");
    let utc = Periods::at(now, chrono_tz::UTC);
    assert_eq!(utc.today.day, "2026-11-25");
    assert_eq!(utc.week.day, "2026-11-23");
    assert_eq!(utc.month.day, "2026-11-01");
    let ist = Periods::at(now, chrono_tz::Asia::Kolkata);
    assert_eq!(ist.today.day, "2026-11-26");
    assert_eq!(ist.today.at, ms("2026-11-25T18:30:00Z"));
    // A month that starts mid-week: the week reaches back into October.
    let p = Periods::at(ms("2026-11-02T12:00:00Z"), chrono_tz::UTC);
    assert_eq!(p.week.day, "2026-11-02");
    assert_eq!(p.earliest().day, "2026-11-01");
    let p = Periods::at(ms("2026-12-01T12:00:00Z"), chrono_tz::UTC);
    assert_eq!(p.earliest().day, "2026-11-30");
}

#[test]
fn local_day_follows_the_timezone() {
    let at = ms("2026-11-25T23:30:00Z");
    assert_eq!(local_day(at, chrono_tz::UTC), "2026-11-25");
    assert_eq!(local_day(at, chrono_tz::Asia::Kolkata), "2026-11-26");
}

#[test]
fn keys_are_functions_of_the_date() {
    assert_eq!(day_key(date("2026-11-29")), "2026-11-29");
    assert_eq!(week_key(date("2026-11-29")), "w2026-11-23");
    assert_eq!(month_key(date("2026-11-30")), "m2026-11");
    assert_eq!(
        period_keys_of_day("2026-12-02"),
        Some(("w2026-11-30".into(), "m2026-12".into()))
    );
    assert_eq!(period_keys_of_day("not a day"), None);
}

#[test]
fn periods_contain_days_by_key() {
    // Thursday 2026-11-26: the Monday of its week is the 23rd.
    let p = Periods::at(ms("2026-11-26T12:00:00Z"), chrono_tz::UTC);
    assert_eq!(p.contain(date("2026-11-26")), [true, true, true]);
    assert_eq!(p.contain(date("2026-11-23")), [false, true, true]);
    assert_eq!(p.contain(date("2026-11-22")), [false, false, true]);
    assert_eq!(p.contain(date("2026-10-31")), [false, false, false]);
    // A day keyed in a zone ahead ("tomorrow" here) is not today.
    assert_eq!(p.contain(date("2026-11-27")), [false, true, true]);
}

#[test]
fn merged_pieces_stay_sorted_and_add_up() {
    let mut a = vec![(date("2026-11-29"), 10)];
    merge_days(&mut a, &[(date("2026-11-29"), 5), (date("2026-11-30"), 7)]);
    merge_days(&mut a, &[(date("2026-11-28"), 1)]);
    assert_eq!(
        a,
        [
            (date("2026-11-28"), 1),
            (date("2026-11-29"), 15),
            (date("2026-11-30"), 7)
        ]
    );
}

#[test]
fn a_stay_across_local_midnight_is_split_there() {
    // Kolkata is UTC+5:30: local midnight of the 26th is 18:30 UTC on the 25th.
    let split = split_by_day(
        ms("2026-11-25T18:00:00Z"),
        ms("2026-11-25T19:00:00Z"),
        chrono_tz::Asia::Kolkata,
    );
    assert_eq!(
        split,
        vec![(date("2026-11-25"), 1800), (date("2026-11-26"), 1800)]
    );
    // The same hour in UTC is one day.
    let utc = split_by_day(
        ms("2026-11-25T18:00:00Z"),
        ms("2026-11-25T19:00:00Z"),
        chrono_tz::UTC,
    );
    assert_eq!(utc, vec![(date("2026-11-25"), 3600)]);
}

#[test]
fn dst_days_have_23_and_25_hours() {
    // Paris springs forward on 2026-03-29 (23 h) and falls back on 2026-10-25 (25 h).
    let spring = split_by_day(
        ms("2026-03-28T23:00:00Z"), // local midnight of the 29th (UTC+1)
        ms("2026-03-29T22:00:00Z"), // local midnight of the 30th (UTC+2)
        Paris,
    );
    assert_eq!(spring, vec![(date("2026-03-29"), 23 * 3600)]);
    let fall = split_by_day(
        ms("2026-10-24T22:00:00Z"), // local midnight of the 25th (UTC+2)
        ms("2026-10-25T23:30:00Z"), // 00:30 on the 26th (UTC+1)
        Paris,
    );
    assert_eq!(
        fall,
        vec![(date("2026-10-25"), 25 * 3600), (date("2026-10-26"), 1800)]
    );
}

proptest! {
    /// However a stretch falls, its pieces add up to its whole seconds, each
    /// piece lies within one local day (at most 25 h) and days increase.
    #[test]
    fn pieces_add_up_to_the_stretch(
        from in 1_700_000_000_000i64..1_900_000_000_000,
        len in 0i64..(5 * 86_400_000),
        zone in 0usize..4,
    ) {
        let tz = [chrono_tz::UTC, Paris, chrono_tz::Asia::Kolkata, chrono_tz::America::St_Johns][zone];
        let split = split_by_day(from, from + len, tz);
        prop_assert_eq!(split.iter().map(|(_, s)| s).sum::<i64>(), whole_secs(from, from + len));
        prop_assert!(split.iter().all(|(_, s)| *s > 0 && *s <= 25 * 3600));
        prop_assert!(split.windows(2).all(|w| w[0].0 < w[1].0));
        if let Some((first, _)) = split.first() {
            prop_assert!(*first >= today(from, tz));
        }
    }
}

#[test]
fn keys_are_what_chronos_format_writes_and_parse_back() {
    let mut date = NaiveDate::from_ymd_opt(1999, 12, 25).unwrap();
    for _ in 0..800 {
        assert_eq!(day_key(date), date.format("%Y-%m-%d").to_string());
        assert_eq!(month_key(date), format!("m{}", date.format("%Y-%m")));
        assert_eq!(parse_day(&day_key(date)), Some(date));
        date = date.succ_opt().unwrap();
    }
    for y in [0, 7, 99, 10_000, -1] {
        let d = NaiveDate::from_ymd_opt(y, 2, 3).unwrap();
        assert_eq!(day_key(d), d.format("%Y-%m-%d").to_string());
        assert_eq!(parse_day(&day_key(d)), Some(d));
    }
    for bad in ["2026-13-01", "2026-02-30", "2026-0a-01", "", "yesterday"] {
        assert_eq!(parse_day(bad), None, "{bad}");
    }
    // What chrono also reads, as it reads it.
    assert_eq!(parse_day("2026-1-5"), NaiveDate::from_ymd_opt(2026, 1, 5));
}
