//! The writer's intake: ops wait here, in order, until the spooler appends
//! them. Pushing never waits, and an op that changes the same thing as one
//! already waiting is folded into it, so while the spool is full (MongoDB
//! away) memory grows with the number of documents touched, not with the
//! number of events:
//! - a voice credit that continues a waiting credit of the same segment
//!   extends it (`[from, to)` + `[to, to')` = `[from, to')`, their days
//!   added up: each was cut when its op was made);
//! - messages of the same member and day add up (`count`);
//! - a member's checkpoint replaces the waiting one (the last one wins).
//!
//! Folding is safe because every document's ops commute or keep their
//! order: increments add, `$max` takes the largest, the last checkpoint wins.
//!
//! Each op keeps the lease epoch it was submitted under (it is counted
//! under that lease, whenever the spool takes it): ops of two epochs never
//! fold, and one take never mixes them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::op::Op;
use crate::core::calendar::merge_days;
use crate::core::{MemberKey, Millis};

/// What makes two waiting ops foldable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Voice(MemberKey, Millis),
    Message(MemberKey, String),
    Checkpoint(MemberKey),
    /// A correction folds with nothing: its own id.
    Adjust(u64),
}

fn key(op: &Op) -> Key {
    let member = op.member();
    match op {
        Op::Voice { segment_start, .. } => Key::Voice(member, *segment_start),
        Op::Message { day, .. } => Key::Message(member, day.clone()),
        Op::Checkpoint { .. } => Key::Checkpoint(member),
        Op::Adjust { id, .. } => Key::Adjust(*id),
    }
}

/// Ops waiting for the spool.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    inner: Mutex<Waiting>,
    /// The epoch ops pushed from now on are stamped with.
    epoch: AtomicU64,
}

#[derive(Debug, Default)]
struct Waiting {
    ops: VecDeque<(u64, Op)>,
    /// Position of `ops[0]` counted from the first op ever pushed.
    base: u64,
    /// Where each key's latest waiting op is (absolute position).
    index: HashMap<(u64, Key), u64>,
}

impl Outbox {
    /// Stamps ops pushed from now on with the lease epoch `epoch`.
    pub(super) fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// Queues `op` under the current epoch, folding it into a waiting op of
    /// that epoch when it can.
    pub(super) fn push(&self, op: Op) {
        let mut w = self.lock();
        let epoch = self.epoch.load(Ordering::SeqCst);
        let k = (epoch, key(&op));
        if let Some(&at) = w.index.get(&k) {
            if let Some(waiting) = at
                .checked_sub(w.base)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| w.ops.get_mut(i))
            {
                if fold(&mut waiting.1, &op) {
                    return;
                }
            }
        }
        let at = w.base + w.ops.len() as u64;
        w.ops.push_back((epoch, op));
        w.index.insert(k, at);
    }

    /// Takes up to `max` ops from the front, in order, all of one epoch
    /// (returned with them).
    pub(super) fn take(&self, max: usize) -> (u64, Vec<Op>) {
        let mut w = self.lock();
        let Some(epoch) = w.ops.front().map(|(e, _)| *e) else {
            return (self.epoch.load(Ordering::SeqCst), Vec::new());
        };
        let same = w
            .ops
            .iter()
            .take(max)
            .take_while(|(e, _)| *e == epoch)
            .count();
        let taken: Vec<Op> = w.ops.drain(..same).map(|(_, op)| op).collect();
        let first = w.base;
        w.base += same as u64;
        for (i, op) in taken.iter().enumerate() {
            let k = (epoch, key(op));
            if w.index.get(&k) == Some(&(first + i as u64)) {
                w.index.remove(&k);
            }
        }
        (epoch, taken)
    }

    /// Ops waiting (after folding).
    pub(super) fn len(&self) -> usize {
        self.lock().ops.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Pushes and takes leave the state whole at every step.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Folds `new` into `waiting` if they change the same thing in a way one op
/// can say; returns whether it did.
fn fold(waiting: &mut Op, new: &Op) -> bool {
    match (waiting, new) {
        (
            Op::Voice {
                channel,
                camera,
                to,
                days,
                tz,
                ..
            },
            Op::Voice {
                channel: c,
                camera: cam,
                from: f,
                to: t,
                days: more,
                tz: z,
                ..
            },
        ) if *channel == *c
            && *camera == *cam
            && *to == *f
            && *tz == *z
            && days.is_some() == more.is_some() =>
        {
            // The days of both, each cut when its op was made.
            if let (Some(days), Some(more)) = (days.as_mut(), more.as_ref()) {
                merge_days(days, more);
            }
            *to = *t;
            true
        }
        (
            Op::Message { count, max_id, .. },
            Op::Message {
                count: n,
                max_id: more_id,
                ..
            },
        ) => match count.checked_add(*n) {
            Some(sum) => {
                *count = sum;
                *max_id = (*max_id).max(*more_id);
                true
            }
            None => false,
        },
        (w @ Op::Checkpoint { .. }, Op::Checkpoint { .. }) => {
            *w = new.clone();
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tracker::OpenSegment;

    const M: MemberKey = MemberKey { guild: 1, user: 2 };

    fn message(user: u64, day: &str) -> Op {
        Op::Message {
            guild: 1,
            user,
            day: day.into(),
            count: 1,
            max_id: None,
        }
    }

    fn voice(from: Millis, to: Millis) -> Op {
        Op::Voice {
            guild: M.guild,
            user: M.user,
            channel: 7,
            camera: true,
            segment_start: 0,
            from,
            to,
            days: Some(crate::core::calendar::split_by_day(
                from,
                to,
                chrono_tz::UTC,
            )),
            tz: None,
        }
    }

    #[test]
    fn folded_credits_keep_the_days_each_was_cut_into() {
        // Two credits of one segment either side of a UTC midnight fold
        // into one op whose days are both credits' days.
        let day = 86_400_000;
        let outbox = Outbox::default();
        outbox.push(voice(day - 60_000, day));
        outbox.push(voice(day, day + 30_000));
        let (_, ops) = outbox.take(usize::MAX);
        assert_eq!(ops, vec![voice(day - 60_000, day + 30_000)]);
        assert_eq!(ops[0].voice_days().iter().map(|(_, s)| s).sum::<i64>(), 90);
        assert_eq!(ops[0].voice_days().len(), 2);
    }

    #[test]
    fn memory_grows_with_documents_not_with_events() {
        let outbox = Outbox::default();
        for i in 0..100_000_u64 {
            outbox.push(message(i % 20, "2026-11-26"));
        }
        assert_eq!(outbox.len(), 20);
        let ops = outbox.take(usize::MAX).1;
        let total: u32 = ops
            .iter()
            .map(|o| match o {
                Op::Message { count, .. } => *count,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 100_000);
    }

    #[test]
    fn contiguous_credits_fold_and_others_keep_their_order() {
        let outbox = Outbox::default();
        outbox.push(voice(0, 1_000));
        outbox.push(message(2, "d"));
        outbox.push(voice(1_000, 2_500));
        // Not contiguous (a clock step): kept apart.
        outbox.push(voice(3_000, 4_000));
        let checkpoint = |camera| Op::Checkpoint {
            guild: M.guild,
            user: M.user,
            open: Some(OpenSegment {
                channel: 7,
                camera,
                segment_start: 0,
            }),
        };
        outbox.push(checkpoint(true));
        outbox.push(checkpoint(false));
        assert_eq!(
            outbox.take(usize::MAX).1,
            vec![
                voice(0, 2_500),
                message(2, "d"),
                voice(3_000, 4_000),
                checkpoint(false)
            ]
        );
    }

    #[test]
    fn taking_a_prefix_keeps_folding_the_rest() {
        let outbox = Outbox::default();
        outbox.push(message(1, "d"));
        outbox.push(message(2, "d"));
        assert_eq!(outbox.take(1).1, vec![message(1, "d")]);
        // The taken op is gone: a new one for it starts afresh.
        outbox.push(message(1, "d"));
        outbox.push(message(2, "d"));
        let mut two = message(2, "d");
        if let Op::Message { count, .. } = &mut two {
            *count = 2;
        }
        assert_eq!(outbox.take(usize::MAX).1, vec![two, message(1, "d")]);
    }

    #[test]
    fn ops_keep_the_epoch_they_were_pushed_under() {
        let outbox = Outbox::default();
        outbox.push(message(1, "d"));
        outbox.set_epoch(7);
        outbox.push(message(1, "d"));
        outbox.push(message(2, "d"));
        // The first is still epoch 0 (provisional), never folded into 7's.
        assert_eq!(outbox.take(usize::MAX), (0, vec![message(1, "d")]));
        assert_eq!(
            outbox.take(usize::MAX),
            (7, vec![message(1, "d"), message(2, "d")])
        );
    }
}
