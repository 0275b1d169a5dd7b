//! One snapshot of a period's rollups, ranked in memory: every page, the
//! count and every member's rank come from the same read, so they agree
//! with one another whatever the writer applies meanwhile (issue 15, F6),
//! and a page or a rank costs a binary search, not a scan of the server
//! (F8). The store decides how old a snapshot may be (`store/boards.rs`).

use std::collections::HashMap;

use super::{offset, By, Entry, Page, Period, PAGE_SIZE};
use crate::core::stats::Totals;
use crate::core::Millis;

/// A period's members and their totals at one moment, sorted by each metric.
#[derive(Clone, Debug)]
pub struct Board {
    period: Period,
    members: Vec<(u64, Totals)>,
    /// Per metric ([`By::ALL`]'s order): indices into `members` with more
    /// than 0, largest first, ties by user id.
    order: [Vec<u32>; 3],
    index: HashMap<u64, u32>,
    read_at: Millis,
}

fn slot(by: By) -> usize {
    match by {
        By::Voice => 0,
        By::Camera => 1,
        By::Messages => 2,
    }
}

impl Board {
    /// The board of `period` from its documents as read at `read_at` (a
    /// member listed twice keeps the first).
    #[must_use]
    pub fn new(period: Period, rows: Vec<(u64, Totals)>, read_at: Millis) -> Board {
        let mut index = HashMap::with_capacity(rows.len());
        let mut members = Vec::with_capacity(rows.len());
        for (user, totals) in rows {
            if let std::collections::hash_map::Entry::Vacant(v) = index.entry(user) {
                v.insert(u32::try_from(members.len()).unwrap_or(u32::MAX));
                members.push((user, totals));
            }
        }
        let order = By::ALL.map(|by| {
            let mut o: Vec<u32> = (0..members.len())
                .filter(|&i| by.value(&members[i].1) > 0)
                .filter_map(|i| u32::try_from(i).ok())
                .collect();
            o.sort_unstable_by_key(|&i| {
                let (user, totals) = &members[i as usize];
                (std::cmp::Reverse(by.value(totals)), *user)
            });
            o
        });
        Board {
            period,
            members,
            order,
            index,
            read_at,
        }
    }

    /// Members with a document in the period (ranked or not).
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the documents were read (the wall clock, milliseconds).
    #[must_use]
    pub fn read_at(&self) -> Millis {
        self.read_at
    }

    fn value(&self, by: By, i: u32) -> i64 {
        by.value(&self.members[i as usize].1)
    }

    /// Positions in `by`'s order of the `hidden` members that are ranked
    /// there, ascending.
    fn hidden_positions(&self, by: By, hidden: &[i64]) -> Vec<usize> {
        let order = &self.order[slot(by)];
        let mut out: Vec<usize> = hidden
            .iter()
            .filter_map(|h| u64::try_from(*h).ok())
            .filter_map(|u| self.index.get(&u).copied())
            .filter(|&i| self.value(by, i) > 0)
            .map(|i| {
                let key = |j: u32| {
                    let (user, totals) = &self.members[j as usize];
                    (std::cmp::Reverse(by.value(totals)), *user)
                };
                let k = key(i);
                order.partition_point(|&j| key(j) < k)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// 1 + the members not hidden with strictly more than `v`.
    fn rank_of_value(&self, by: By, v: i64, hidden_pos: &[usize]) -> u64 {
        let order = &self.order[slot(by)];
        let above = order.partition_point(|&j| self.value(by, j) > v);
        let hidden_above = hidden_pos
            .iter()
            .filter(|&&p| self.value(by, order[p]) > v)
            .count();
        1 + (above - hidden_above) as u64
    }

    fn entry(&self, by: By, i: u32, hidden_pos: &[usize]) -> Entry {
        let (user, totals) = self.members[i as usize];
        Entry {
            rank: self.rank_of_value(by, by.value(&totals), hidden_pos),
            user,
            totals,
        }
    }

    /// Page `page` (from 1) of the ranking by `by`, leaving out the `hidden`
    /// members (opted out), with `caller`'s entry when they have something.
    #[must_use]
    pub fn page(&self, by: By, page: u64, caller: Option<u64>, hidden: &[i64]) -> Page {
        let order = &self.order[slot(by)];
        let hidden_pos = self.hidden_positions(by, hidden);
        let ranked = (order.len() - hidden_pos.len()) as u64;
        // The raw position of the first entry: the skipped visible members
        // plus the hidden ones among them.
        let mut start = usize::try_from(offset(page)).unwrap_or(usize::MAX);
        for &h in &hidden_pos {
            if h <= start {
                start += 1;
            } else {
                break;
            }
        }
        let entries = (start..order.len())
            .filter(|p| hidden_pos.binary_search(p).is_err())
            .take(usize::try_from(PAGE_SIZE).unwrap_or(10))
            .map(|p| self.entry(by, order[p], &hidden_pos))
            .collect();
        let caller = caller
            .filter(|u| !hidden.contains(&i64::try_from(*u).unwrap_or(i64::MAX)))
            .and_then(|u| self.index.get(&u).copied())
            .filter(|&i| self.value(by, i) > 0)
            .map(|i| self.entry(by, i, &hidden_pos));
        Page {
            period: self.period,
            by,
            page: page.max(1),
            ranked,
            entries,
            caller,
        }
    }

    /// `user`'s rank by `by` (`None`: hidden, or nothing in the period).
    #[must_use]
    pub fn rank(&self, by: By, user: u64, hidden: &[i64]) -> Option<u64> {
        if hidden.contains(&i64::try_from(user).unwrap_or(i64::MAX)) {
            return None;
        }
        let i = *self.index.get(&user)?;
        let v = self.value(by, i);
        (v > 0).then(|| self.rank_of_value(by, v, &self.hidden_positions(by, hidden)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::leaderboard::ranks;

    fn totals(on: i64, off: i64, messages: i64) -> Totals {
        Totals {
            cam_on_secs: on,
            cam_off_secs: off,
            messages,
        }
    }

    /// The ranking as the definition says, by brute force: every visible
    /// member with more than 0, largest first, ties by id, each ranked 1 +
    /// the visible members with strictly more.
    fn reference(rows: &[(u64, Totals)], by: By, hidden: &[i64]) -> Vec<Entry> {
        let visible: Vec<(u64, Totals)> = rows
            .iter()
            .filter(|(u, _)| !hidden.contains(&i64::try_from(*u).unwrap()))
            .copied()
            .collect();
        let values: Vec<i64> = visible.iter().map(|(_, t)| by.value(t)).collect();
        let mut out: Vec<Entry> = visible
            .iter()
            .zip(ranks(&values))
            .filter_map(|((user, totals), rank)| {
                rank.map(|rank| Entry {
                    rank,
                    user: *user,
                    totals: *totals,
                })
            })
            .collect();
        out.sort_by_key(|e| (std::cmp::Reverse(by.value(&e.totals)), e.user));
        out
    }

    #[test]
    fn ties_share_a_rank_and_the_next_skips() {
        let rows = vec![
            (1, totals(0, 60, 1)),
            (2, totals(30, 30, 5)),
            (3, totals(0, 10, 0)),
            (4, totals(0, 0, 0)),
        ];
        let board = Board::new(Period::Week, rows, 7);
        let page = board.page(By::Voice, 1, Some(3), &[]);
        let ranks: Vec<(u64, u64)> = page.entries.iter().map(|e| (e.user, e.rank)).collect();
        assert_eq!(ranks, [(1, 1), (2, 1), (3, 3)]);
        assert_eq!(page.ranked, 3, "a member with nothing is not ranked");
        assert_eq!(page.caller.map(|e| e.rank), Some(3));
        assert_eq!(board.rank(By::Messages, 1, &[]), Some(2));
        assert_eq!(board.rank(By::Messages, 3, &[]), None);
        assert_eq!(board.rank(By::Voice, 4, &[]), None);
        assert_eq!(board.read_at(), 7);
    }

    #[test]
    fn hidden_members_are_left_out_and_rank_nobody_down() {
        let rows = (1..=25_i64)
            .map(|u| (u.unsigned_abs(), totals(0, 100 - u, 0)))
            .collect();
        let board = Board::new(Period::All, rows, 0);
        // Member 1 (the top) and 12 opted out: 23 ranked, 2 becomes #1.
        let page = board.page(By::Voice, 2, Some(12), &[1, 12]);
        assert_eq!(page.ranked, 23);
        let users: Vec<u64> = page.entries.iter().map(|e| e.user).collect();
        assert_eq!(users, [13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
        assert_eq!(page.entries[0].rank, 11);
        assert_eq!(page.caller, None, "a hidden caller has no entry");
        assert_eq!(board.rank(By::Voice, 2, &[1, 12]), Some(1));
        assert_eq!(board.rank(By::Voice, 1, &[1, 12]), None);
    }

    fn rows() -> impl Strategy<Value = Vec<(u64, Totals)>> {
        prop::collection::vec((0..5_i64, 0..5_i64, 0..4_i64), 0..40).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (on, off, m))| (i as u64 + 1, totals(on * 60, off * 60, m)))
                .collect()
        })
    }

    proptest! {
        /// Every page, the count and the caller's entry are the reference
        /// ranking's, for every metric, page and set of hidden members.
        #[test]
        fn pages_and_ranks_are_the_reference_ranking(
            rows in rows(),
            hidden in prop::collection::vec(1..45_i64, 0..6),
            page in 0..6_u64,
            caller in 1..45_u64,
        ) {
            let board = Board::new(Period::Today, rows.clone(), 0);
            for by in By::ALL {
                let all = reference(&rows, by, &hidden);
                let got = board.page(by, page, Some(caller), &hidden);
                let skip = usize::try_from(offset(page)).unwrap();
                let want: Vec<Entry> = all.iter().skip(skip).take(10).copied().collect();
                prop_assert_eq!(&got.entries, &want);
                prop_assert_eq!(got.ranked, all.len() as u64);
                let mine = all.iter().find(|e| e.user == caller).copied();
                prop_assert_eq!(got.caller, mine);
                prop_assert_eq!(board.rank(by, caller, &hidden), mine.map(|e| e.rank));
            }
        }
    }
}
