//! Which messages are already counted, by their ids (snowflakes), for the
//! handover between two instances (ARCHITECTURE.md, "The lease"): the
//! holder hands over the ids it counted recently and a floor below which
//! every id is accounted for; the next holder counts exactly the messages
//! that are not, whatever the two hosts' clocks say and however late a
//! message reaches either of them.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How many counted ids are remembered (the oldest go first)...
const KEPT: usize = 5_000;
/// ...and for how long: a message that reaches the next holder later than
/// this after newer ones were counted is taken as counted.
const KEPT_FOR: Duration = Duration::from_secs(60);

/// The messages this instance accounts for: every id below `floor`, and
/// the ids in `recent` (counted here, or by the holder before, as its
/// handoff said).
#[derive(Debug, Default)]
pub(super) struct MessageIds {
    floor: u64,
    recent: VecDeque<(u64, Instant)>,
    set: HashSet<u64>,
    max: Option<u64>,
}

impl MessageIds {
    /// What the previous holder handed over: ids below `floor` and `ids`.
    pub(super) fn inherit(floor: u64, ids: &[u64]) -> MessageIds {
        let mut inherited = MessageIds {
            floor,
            ..MessageIds::default()
        };
        let now = Instant::now();
        for &id in ids {
            inherited.record(id, now);
        }
        inherited.max = None; // counted by the previous holder, not here
        inherited
    }

    /// Whether the message `id` was counted already (here or by the
    /// holder before).
    pub(super) fn accounted(&self, id: u64) -> bool {
        id < self.floor || self.set.contains(&id)
    }

    /// Whether `id` itself was counted (not merely below the floor).
    pub(super) fn is_recorded(&self, id: u64) -> bool {
        self.set.contains(&id)
    }

    /// Remembers that `id` was counted at `now`. An id forgotten (past
    /// `KEPT` or `KEPT_FOR`) raises the floor above it.
    pub(super) fn record(&mut self, id: u64, now: Instant) {
        if self.set.insert(id) {
            self.recent.push_back((id, now));
        }
        self.max = Some(self.max.map_or(id, |m| m.max(id)));
        while let Some(&(oldest, at)) = self.recent.front() {
            if self.recent.len() <= KEPT && now.duration_since(at) <= KEPT_FOR {
                break;
            }
            self.recent.pop_front();
            self.set.remove(&oldest);
            self.floor = self.floor.max(oldest + 1);
        }
    }

    /// The highest id counted here, if any.
    pub(super) fn max_counted(&self) -> Option<u64> {
        self.max
    }

    /// What the next holder needs: the floor, and the ids at or above it
    /// that are accounted for (ascending).
    pub(super) fn handoff(&self) -> (u64, Vec<u64>) {
        let mut ids: Vec<u64> = self
            .set
            .iter()
            .copied()
            .filter(|&id| id >= self.floor)
            .collect();
        ids.sort_unstable();
        (self.floor, ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_counted_or_inherited_is_accounted_for() {
        let mut ids = MessageIds::inherit(100, &[150, 170]);
        assert!(ids.accounted(99) && ids.accounted(150) && ids.accounted(170));
        assert!(!ids.accounted(100) && !ids.accounted(160) && !ids.accounted(200));
        assert_eq!(ids.max_counted(), None);
        ids.record(160, Instant::now());
        assert!(ids.accounted(160));
        assert_eq!(ids.max_counted(), Some(160));
        assert_eq!(ids.handoff(), (100, vec![150, 160, 170]));
    }

    #[test]
    fn forgetting_an_id_raises_the_floor_above_it() {
        let mut ids = MessageIds::default();
        let start = Instant::now();
        for id in 0..u64::try_from(KEPT).unwrap() + 10 {
            ids.record(1_000 + id, start);
        }
        let (floor, kept) = ids.handoff();
        assert_eq!(floor, 1_010);
        assert_eq!(kept.len(), KEPT);
        assert!(ids.accounted(1_005), "forgotten, but below the floor");
        // Past the window, everything older goes.
        ids.record(9_000_000, start + KEPT_FOR + Duration::from_secs(1));
        assert_eq!(ids.handoff(), (1_000 + 5_010, vec![9_000_000]));
    }
}
