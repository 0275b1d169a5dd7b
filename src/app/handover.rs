//! Handing the lease over (at shutdown, or cut off from Discord): the
//! messages by identity, not by a clock. The holder keeps counting until it
//! closes its intake, then releases the lease with the ids it accounted for
//! ([`HandoffIds`]); the next holder counts every message it sees that is
//! not among them, from its buffer and from then on.

use std::time::{Duration, Instant};

use super::lease::{Handover, Role};
use super::App;
use crate::store::{Handoff, HandoffIds};
use crate::telemetry::cause_chain;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    /// Starts handing over: messages are still counted (whatever their id)
    /// though intake is otherwise closing; the next holder counts only
    /// those this instance did not.
    pub fn begin_handover(&self) {
        lock(&self.seat.messages).handover = Handover::Counting;
    }

    /// Stops counting messages (the settle window is over): from now on the
    /// set of ids this instance counted is final, and it is what the
    /// release hands over.
    pub fn end_message_intake(&self) {
        lock(&self.seat.messages).handover = Handover::Closed;
    }

    /// Releases the lease, recording where this holder stopped: `at` for
    /// voice, and for messages the ids it accounted for; `snowflake` (the
    /// handoff moment's) is raised above every id it counted, for a taker
    /// that cannot read the ids. A release that fails (a reset connection,
    /// a primary stepping down) is tried again until `until`: a standby
    /// then takes over at once from the handoff, rather than at the expiry.
    pub async fn release_lease(&self, snowflake: u64, at: i64, until: tokio::time::Instant) {
        let Role::Holder { epoch, .. } = self.seat.role() else {
            return;
        };
        let (handoff, ids) = self.handoff_now(snowflake, at);
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = tokio::time::timeout_at(
                until,
                self.store
                    .release_lease(&self.seat.holder, epoch, handoff, &ids),
            )
            .await;
            match attempt {
                Ok(Ok(true)) => tracing::info!(
                    epoch,
                    seq = handoff.seq,
                    message_floor = ids.floor,
                    message_ids = ids.ids.len(),
                    "lease released; the standby takes over"
                ),
                Ok(Ok(false)) => tracing::warn!(epoch, "the lease was no longer ours at release"),
                Ok(Err(e)) if tokio::time::Instant::now() + delay < until => {
                    tracing::warn!(error = %cause_chain(&e), retry_in_ms = delay.as_millis(), "cannot release the lease; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %cause_chain(&e), consequence = "a standby takes over when the lease expires", "cannot release the lease");
                }
                Err(_) => tracing::error!(
                    consequence = "a standby takes over when the lease expires",
                    "the lease release did not finish in time"
                ),
            }
            break;
        }
        self.writer.allow_writes_until(Some(Instant::now()));
        self.seat.set_role(Role::Standby);
    }

    /// Where this holder stops: `at` for voice, its message ids, the
    /// handoff snowflake raised above every id it counted, and its last
    /// sequence number.
    fn handoff_now(&self, snowflake: u64, at: i64) -> (Handoff, HandoffIds) {
        let (ids, max_counted) = {
            let messages = lock(&self.seat.messages);
            let (floor, ids) = messages.ids.handoff();
            (HandoffIds { floor, ids }, messages.ids.max_counted())
        };
        let handoff = Handoff {
            snowflake: max_counted.map_or(snowflake, |m| snowflake.max(m + 1)),
            at,
            seq: self.writer.last_seq(),
        };
        (handoff, ids)
    }

    /// Records the handoff before the drain (the intake closed, everything
    /// counted in the spool), so that a takeover at the expiry starts from
    /// it should the release never succeed (`store/lease/pending.rs`).
    /// Skipped, with a warning, if what was counted is not all spooled by
    /// `until` (its sequence numbers would not be known).
    pub async fn note_pending_handoff(&self, snowflake: u64, at: i64, until: tokio::time::Instant) {
        let Role::Holder { epoch, .. } = self.seat.role() else {
            return;
        };
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if !self.writer.wait_spooled(left).await {
            tracing::warn!(
                consequence = "a takeover at the expiry starts from the expiry",
                "what was counted is not all in the spool; no pending handoff recorded"
            );
            return;
        }
        let (handoff, ids) = self.handoff_now(snowflake, at);
        let noted = tokio::time::timeout_at(
            until,
            self.store
                .note_pending_handoff(&self.seat.holder, epoch, handoff, &ids),
        )
        .await;
        match noted {
            Ok(Ok(true)) => tracing::info!(
                epoch,
                seq = handoff.seq,
                "pending handoff recorded before the drain"
            ),
            Ok(Ok(false)) => tracing::warn!(epoch, "the lease was no longer ours before the drain"),
            Ok(Err(e)) => {
                tracing::warn!(error = %cause_chain(&e), consequence = "a takeover at the expiry starts from the expiry", "cannot record the pending handoff");
            }
            Err(_) => tracing::warn!(
                consequence = "a takeover at the expiry starts from the expiry",
                "recording the pending handoff did not finish in time"
            ),
        }
    }

    /// What the previous holder accounted for, as a takeover counts
    /// messages: after a handoff, its ids (or, if they cannot be read, every
    /// id below its handoff snowflake: lose rather than double); after an
    /// expiry, every id below the expiry's snowflake; after our own lease
    /// (reclaimed), nothing.
    pub(super) async fn previous_holders_ids(&self, taken: &crate::store::Taken) -> HandoffIds {
        use super::lease::snowflake_at;
        if taken.reclaimed {
            return HandoffIds::default();
        }
        let Some(handoff) = taken.handoff else {
            return HandoffIds {
                floor: taken.expired_at.map_or(0, snowflake_at),
                ids: Vec::new(),
            };
        };
        match self.store.handoff_ids(taken.prev_epoch).await {
            Ok(Some(ids)) => ids,
            Ok(None) => HandoffIds {
                floor: handoff.snowflake,
                ids: Vec::new(),
            },
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), consequence = "messages the previous holder did not count below its handoff snowflake are not counted", "cannot read the previous holder's message ids");
                HandoffIds {
                    floor: handoff.snowflake,
                    ids: Vec::new(),
                }
            }
        }
    }

    /// After an expiry (no handoff), which of the buffered messages below
    /// it (`floor`) the previous holder never wrote: a crashed holder's
    /// last moments, or what an outage kept it from writing, which it never
    /// will (its epoch is fenced). Their members' totals say the highest
    /// message id they hold ([`crate::store::Store::messages_written`]);
    /// `None`: not an expiry, nothing below it, or MongoDB could not say
    /// (then none of them is counted: lose rather than double).
    pub(super) async fn written_below(
        &self,
        taken: &crate::store::Taken,
        floor: u64,
    ) -> Option<Written> {
        if taken.reclaimed || taken.handoff.is_some() || taken.expired_at.is_none() {
            return None;
        }
        let members: Vec<crate::core::MemberKey> = {
            let messages = lock(&self.seat.messages);
            let below: std::collections::HashSet<_> = messages
                .buffer
                .iter()
                .filter(|(id, _, _)| *id < floor)
                .map(|(_, m, _)| *m)
                .collect();
            below.into_iter().collect()
        };
        if members.is_empty() {
            return None;
        }
        match self.store.messages_written(&members).await {
            Ok(written) => Some(Written(written)),
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), consequence = "buffered messages from before the expiry are not counted", "cannot read which messages the previous holder wrote");
                None
            }
        }
    }
}

/// Per member, the highest message id its totals hold (see
/// [`App::written_below`]).
pub(super) struct Written(std::collections::HashMap<crate::core::MemberKey, Option<u64>>);

impl Written {
    /// Whether message `id` by `member` may have been written: at or below
    /// the highest id its totals hold, or totals that count messages but do
    /// not say which (written by an earlier version). A member without
    /// totals, or whose totals count no message, has none written.
    pub(super) fn may_hold(&self, member: crate::core::MemberKey, id: u64) -> bool {
        match self.0.get(&member) {
            None => false,
            Some(None) => true,
            Some(Some(max)) => id <= *max,
        }
    }
}
