use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const MIN: i64 = 15 * 60;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn days(list: &[(&str, i64)]) -> Vec<(NaiveDate, i64)> {
    list.iter().map(|(d, s)| (date(d), *s)).collect()
}

fn of(current: u32, longest: u32) -> Streaks {
    Streaks {
        current_days: current,
        longest_days: longest,
    }
}

#[test]
fn nothing_is_no_streak() {
    assert_eq!(streaks(&[], date("2026-11-26"), MIN), of(0, 0));
}

#[test]
fn a_run_ending_today_is_current() {
    let d = days(&[
        ("2026-11-24", MIN),
        ("2026-11-25", 3600),
        ("2026-11-26", MIN + 1),
    ]);
    assert_eq!(streaks(&d, date("2026-11-26"), MIN), of(3, 3));
}

#[test]
fn today_below_the_minimum_keeps_yesterdays_run() {
    let d = days(&[
        ("2026-11-24", MIN),
        ("2026-11-25", MIN),
        ("2026-11-26", MIN - 1),
    ]);
    assert_eq!(streaks(&d, date("2026-11-26"), MIN), of(2, 2));
    // The same without any entry for today.
    assert_eq!(streaks(&d[..2], date("2026-11-26"), MIN), of(2, 2));
}

#[test]
fn a_whole_day_below_the_minimum_ends_the_current_streak() {
    let d = days(&[
        ("2026-11-23", MIN),
        ("2026-11-24", MIN),
        ("2026-11-25", MIN - 1),
    ]);
    assert_eq!(streaks(&d, date("2026-11-26"), MIN), of(0, 2));
}

#[test]
fn a_gap_splits_runs_and_the_longest_is_kept() {
    let d = days(&[
        ("2026-11-01", MIN),
        ("2026-11-02", MIN),
        ("2026-11-03", MIN),
        ("2026-11-04", MIN),
        // 2026-11-05 missing: the gap.
        ("2026-11-06", MIN),
        ("2026-11-25", MIN),
        ("2026-11-26", MIN),
    ]);
    assert_eq!(streaks(&d, date("2026-11-26"), MIN), of(2, 4));
}

#[test]
fn ties_the_current_run_can_be_the_longest() {
    let d = days(&[
        ("2026-11-01", MIN),
        ("2026-11-02", MIN),
        ("2026-11-25", MIN),
        ("2026-11-26", MIN),
    ]);
    assert_eq!(streaks(&d, date("2026-11-26"), MIN), of(2, 2));
}

#[test]
fn runs_cross_month_and_year_ends() {
    let d = days(&[
        ("2025-12-30", MIN),
        ("2025-12-31", MIN),
        ("2026-01-01", MIN),
    ]);
    assert_eq!(streaks(&d, date("2026-01-02"), MIN), of(3, 3));
}

#[test]
fn days_after_today_are_ignored() {
    let d = days(&[("2026-11-26", MIN), ("2026-11-27", MIN)]);
    assert_eq!(streaks(&d, date("2026-11-26"), MIN), of(1, 1));
}

/// Brute force: for each qualifying day, count back while days qualify.
fn reference(set: &BTreeSet<NaiveDate>, today: NaiveDate) -> Streaks {
    let run_ending = |d: NaiveDate| {
        let mut n = 0u32;
        let mut at = d;
        while set.contains(&at) {
            n += 1;
            at -= Duration::days(1);
        }
        n
    };
    let longest = set.iter().map(|d| run_ending(*d)).max().unwrap_or(0);
    let current = run_ending(today).max(run_ending(today - Duration::days(1)));
    Streaks {
        current_days: current,
        longest_days: longest,
    }
}

proptest! {
    #[test]
    fn matches_a_brute_force_count(
        secs in prop::collection::vec(prop_oneof![Just(0i64), 1..MIN, MIN..=MIN + 1, MIN..20_000], 0..60),
        today_offset in 0i64..70,
    ) {
        let first = date("2026-01-01");
        let d: Vec<(NaiveDate, i64)> = secs
            .iter()
            .enumerate()
            .map(|(i, s)| (first + Duration::days(i64::try_from(i).unwrap()), *s))
            .collect();
        let today = first + Duration::days(today_offset);
        let set: BTreeSet<NaiveDate> = d
            .iter()
            .filter(|(date, s)| *s >= MIN && *date <= today)
            .map(|(date, _)| *date)
            .collect();
        let got = streaks(&d, today, MIN);
        prop_assert_eq!(got, reference(&set, today));
        prop_assert!(got.current_days <= got.longest_days);
    }
}
