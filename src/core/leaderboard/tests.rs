use proptest::prelude::*;

use super::*;
use crate::core::calendar::ms;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn period_keys_follow_calendar_periods() {
    // Sunday 2026-11-29 is in the week of Monday the 23rd; Monday the 30th
    // starts a new week in the same month.
    assert_eq!(Period::Today.key(date("2026-11-29")).unwrap(), "2026-11-29");
    assert_eq!(Period::Week.key(date("2026-11-29")).unwrap(), "w2026-11-23");
    assert_eq!(Period::Week.key(date("2026-11-30")).unwrap(), "w2026-11-30");
    assert_eq!(Period::Month.key(date("2026-11-30")).unwrap(), "m2026-11");
    // A week that straddles two months keeps its Monday's key.
    assert_eq!(Period::Week.key(date("2026-12-02")).unwrap(), "w2026-11-30");
    assert_eq!(Period::Month.key(date("2026-12-02")).unwrap(), "m2026-12");
    assert_eq!(Period::All.key(date("2026-12-02")), None);
    // The key "now" is the local day's: 23:30 UTC is already tomorrow in Kolkata.
    let now = ms("2026-11-29T23:30:00Z");
    assert_eq!(
        Period::Week.key_at(now, chrono_tz::UTC).unwrap(),
        "w2026-11-23"
    );
    assert_eq!(
        Period::Week.key_at(now, chrono_tz::Asia::Kolkata).unwrap(),
        "w2026-11-30"
    );
}

#[test]
fn names_round_trip() {
    for p in Period::ALL {
        assert_eq!(Period::parse(p.name()), Some(p));
    }
    for b in By::ALL {
        assert_eq!(By::parse(b.name()), Some(b));
    }
    assert_eq!(Period::parse("year"), None);
    assert_eq!(By::parse("Voice"), None);
}

#[test]
fn ties_share_a_rank_and_the_next_rank_skips() {
    assert_eq!(
        page_ranks(&[30, 30, 20, 10, 10, 5], 1, 0),
        [1, 1, 3, 4, 4, 6]
    );
    // A later page: its first value ties with members on the page before.
    assert_eq!(page_ranks(&[10, 10, 9], 8, 10), [8, 8, 13]);
    assert!(page_ranks(&[], 1, 0).is_empty());
    assert_eq!(
        ranks(&[5, 9, 5, 0, 1]),
        [Some(2), Some(1), Some(2), None, Some(4)]
    );
}

#[test]
fn paging_is_ten_a_page() {
    assert_eq!((offset(1), offset(2), offset(0)), (0, 10, 0));
    assert_eq!((pages(0), pages(10), pages(11), pages(25)), (1, 1, 2, 3));
}

proptest! {
    /// A page's ranks are what ranking the whole list gives, whatever the
    /// page boundaries.
    #[test]
    fn page_ranks_agree_with_whole_ranks(
        mut values in proptest::collection::vec(1i64..6, 0..40),
        page in 1u64..5,
    ) {
        values.sort_unstable_by(|a, b| b.cmp(a));
        let whole: Vec<u64> = ranks(&values).into_iter().map(Option::unwrap).collect();
        let from = usize::try_from(offset(page)).unwrap().min(values.len());
        let to = (from + usize::try_from(PAGE_SIZE).unwrap()).min(values.len());
        let slice = &values[from..to];
        let first_rank = slice.first().map_or(1, |v| 1 + values.iter().filter(|w| *w > v).count() as u64);
        prop_assert_eq!(page_ranks(slice, first_rank, offset(page)), whole[from..to].to_vec());
    }
}

/// A page read, then a count of who is above its first value after a
/// flush lifted three members past it: the ranks never go backwards.
#[test]
fn ranks_from_reads_that_are_not_one_snapshot_never_go_backwards() {
    // Page 2 (offset 10) read at T1; at T2 the count says 13 above 500.
    assert_eq!(page_ranks(&[500, 490, 490, 480], 14, 10), [11, 12, 12, 14]);
    // A tie across the page boundary still shares the rank before.
    assert_eq!(page_ranks(&[10, 10, 9], 8, 10), [8, 8, 13]);
}

fn entry(rank: u64, user: u64, secs: i64) -> Entry {
    Entry {
        rank,
        user,
        totals: Totals {
            cam_on_secs: 0,
            cam_off_secs: secs,
            messages: 0,
        },
    }
}

fn board(entries: Vec<Entry>, caller: Option<Entry>, ranked: u64) -> Page {
    Page {
        period: Period::Week,
        by: By::Voice,
        page: 2,
        ranked,
        entries,
        caller,
    }
}

/// The caller's entry and the count of ranked members, read apart from the
/// page, are made to agree with what the page shows.
#[test]
fn the_callers_place_agrees_with_the_page() {
    let page = || {
        vec![
            entry(11, 1, 500),
            entry(12, 2, 490),
            entry(12, 3, 490),
            entry(14, 4, 480),
        ]
    };
    // On the page: the page's own entry, whatever the second read said.
    let mut on = board(page(), Some(entry(13, 2, 495)), 40);
    agree(&mut on);
    assert_eq!(on.caller, Some(entry(12, 2, 490)));
    // Level with an entry: its rank.
    let mut level = board(page(), Some(entry(16, 9, 490)), 40);
    agree(&mut level);
    assert_eq!(level.caller.map(|e| e.rank), Some(12));
    // Below the page: below everyone on it.
    let mut below = board(page(), Some(entry(12, 9, 470)), 40);
    agree(&mut below);
    assert_eq!(below.caller.map(|e| e.rank), Some(15));
    // Between two entries: between their ranks.
    let mut between = board(page(), Some(entry(30, 9, 485)), 40);
    agree(&mut between);
    assert_eq!(between.caller.map(|e| e.rank), Some(13));
    // Above the page: above its first entry.
    let mut above = board(page(), Some(entry(20, 9, 900)), 40);
    agree(&mut above);
    assert_eq!(above.caller.map(|e| e.rank), Some(10));
    // Never "#15 of 12".
    let mut short = board(page(), Some(entry(15, 9, 470)), 12);
    agree(&mut short);
    assert_eq!(short.ranked, 15);
}

proptest! {
    /// The page is read from one moment, the count of members above its
    /// first value from a later one (values only grow in between): the
    /// page's ranks still agree with one another: non-decreasing, equal
    /// exactly for equal values, never past the position.
    #[test]
    fn page_ranks_agree_with_one_another_across_reads(
        mut values in proptest::collection::vec(1i64..8, 1..40),
        lifts in proptest::collection::vec(0i64..4, 40),
        page in 1u64..5,
    ) {
        values.sort_unstable_by(|a, b| b.cmp(a));
        let from = usize::try_from(offset(page)).unwrap();
        prop_assume!(from < values.len());
        let to = (from + usize::try_from(PAGE_SIZE).unwrap()).min(values.len());
        let slice = &values[from..to];
        let later: Vec<i64> = values.iter().zip(&lifts).map(|(v, l)| v + l).collect();
        let first_rank = 1 + later.iter().filter(|w| **w > slice[0]).count() as u64;
        let r = page_ranks(slice, first_rank, offset(page));
        for i in 1..r.len() {
            prop_assert!(r[i - 1] <= r[i], "{:?} for {:?}", r, slice);
            prop_assert_eq!(r[i - 1] == r[i], slice[i - 1] == slice[i], "{:?} for {:?}", r, slice);
        }
        for (i, rank) in r.iter().enumerate() {
            prop_assert!(*rank <= offset(page) + i as u64 + 1);
        }
    }
}
