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
fn ranks_are_competition_ranks() {
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
