//! The lease's life: taking it (at start, then every second as a standby),
//! renewing it as the holder, stepping down when it is lost, taking over
//! from the previous holder, and handing over at shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::lease::{snowflake_at, Role};
use super::{now_millis, App};
use crate::core::tracker::Tracker;
use crate::core::Presence;
use crate::durable::op::Op;
use crate::store::{Handoff, Taken};
use crate::telemetry::cause_chain;

/// How often a standby tries to take the lease.
const STANDBY_TRY: Duration = Duration::from_secs(1);

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.seat.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// The holder's writes are trusted until a third of the TTL before the
    /// lease could expire (a margin for clocks and the round trip).
    fn valid_until(&self, renewed_at: Instant) -> Instant {
        renewed_at + self.seat.ttl * 2 / 3
    }

    /// Tries once to take the lease; on success takes over (restore,
    /// presence, buffered messages). Returns whether this instance holds it.
    pub async fn try_take_lease(&self, restore: (Duration, Duration)) -> bool {
        match self.seat.role() {
            Role::Single | Role::Holder { .. } => return true,
            Role::Standby => {}
        }
        let asked = Instant::now();
        let taken = match self
            .store
            .acquire_lease(&self.seat.holder, now_millis(), self.ttl_ms())
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) => return false,
            Err(e) => {
                tracing::debug!(error = %cause_chain(&e), "cannot ask for the lease");
                return false;
            }
        };
        self.take_over(taken, asked, restore).await;
        true
    }

    async fn take_over(&self, taken: Taken, asked: Instant, restore: (Duration, Duration)) {
        // Numbers above the previous holder's, and above the saved mark.
        let floor = taken.handoff.map_or(0, |h| h.seq);
        let saved = self.store.seq_high_water().await.unwrap_or(0);
        self.writer.raise_seq_floor(floor.max(saved));
        self.writer.set_epoch(taken.epoch);
        self.seat.set_role(Role::Holder {
            epoch: taken.epoch,
            valid_until: self.valid_until(asked),
        });
        // The previous holder counted messages below `from`.
        let from = match (taken.handoff, taken.expired_at) {
            (Some(h), _) => h.snowflake,
            (None, Some(expired)) => snowflake_at(expired),
            (None, None) => 0,
        };
        tracing::info!(
            epoch = taken.epoch,
            holder = %self.seat.holder,
            handoff = taken.handoff.is_some(),
            expired_at_ms = taken.expired_at,
            "took the lease; this instance counts now"
        );
        // Sessions continue from the previous holder's last credit.
        self.restore_sessions(restore.0, restore.1).await;
        let now = now_millis();
        {
            let mut tracker = self.tracker.lock().await;
            self.seat.voice_counts.store(true, Ordering::SeqCst);
            let (guilds, members) = lock(&self.seat.presence).clone();
            for guild in guilds {
                let present: Vec<(u64, Presence)> = members
                    .iter()
                    .filter(|(m, _)| m.guild == guild)
                    .map(|(m, p)| (m.user, *p))
                    .collect();
                let effects = tracker.guild_snapshot(guild, &present, now);
                super::intake::log_effects(&effects);
                self.writer
                    .submit(effects.into_iter().map(|e| Op::effect(e, self.tz)));
            }
        }
        let mut messages = lock(&self.seat.messages);
        let buffered = std::mem::take(&mut messages.buffer);
        let mut counted = 0;
        for (id, member, at) in buffered {
            if id >= from {
                counted += 1;
                self.writer.submit([Op::message(member, at, self.tz)]);
            }
        }
        messages.standby = false;
        tracing::info!(
            counted,
            from_snowflake = from,
            "buffered messages from the handoff point on counted"
        );
    }

    /// Renews the lease; on loss, steps down to standby.
    async fn renew_lease(&self) {
        let Role::Holder { epoch, valid_until } = self.seat.role() else {
            return;
        };
        let asked = Instant::now();
        match self
            .store
            .renew_lease(&self.seat.holder, epoch, now_millis(), self.ttl_ms())
            .await
        {
            Ok(true) => self.seat.set_role(Role::Holder {
                epoch,
                valid_until: self.valid_until(asked),
            }),
            Ok(false) => {
                self.step_down(epoch, "the lease was taken by another instance")
                    .await;
            }
            // MongoDB unreachable: keep counting into the spool. Nobody can
            // take the lease without reaching MongoDB either, and if
            // someone does, the next renewal is refused and this instance
            // steps down (stepping down on errors would stop a lone
            // instance counting through every database outage).
            Err(e) => {
                let lapsed = Instant::now() >= valid_until;
                tracing::warn!(error = %cause_chain(&e), lapsed, "cannot renew the lease; still counting, retrying");
            }
        }
    }

    async fn step_down(&self, epoch: u64, why: &str) {
        let mut tracker = self.tracker.lock().await;
        self.seat.voice_counts.store(false, Ordering::SeqCst);
        *tracker = Tracker::new(self.resume_grace_ms);
        drop(tracker);
        lock(&self.seat.messages).standby = true;
        self.seat.set_role(Role::Standby);
        tracing::error!(
            epoch,
            reason = why,
            consequence = "this instance stands by; what it spooled under this epoch is refused where the new holder wrote (fencing)",
            "lease lost; stepping down"
        );
    }

    /// Starts handing over: messages from snowflake `h` on are left to the
    /// next holder (it buffered them).
    pub fn begin_handover(&self, h: u64) {
        lock(&self.seat.messages).below = Some(h);
    }

    /// Stops counting messages (the settle window is over).
    pub fn end_message_intake(&self) {
        lock(&self.seat.messages).below = Some(0);
    }

    /// Releases the lease, recording where this holder stopped.
    pub async fn release_lease(&self, snowflake: u64, at: i64) {
        let Role::Holder { epoch, .. } = self.seat.role() else {
            return;
        };
        let handoff = Handoff {
            snowflake,
            at,
            seq: self.writer.last_seq(),
        };
        match self
            .store
            .release_lease(&self.seat.holder, epoch, handoff)
            .await
        {
            Ok(true) => tracing::info!(
                epoch,
                seq = handoff.seq,
                "lease released; the standby takes over"
            ),
            Ok(false) => tracing::warn!(epoch, "the lease was no longer ours at release"),
            Err(e) => {
                tracing::error!(error = %cause_chain(&e), consequence = "a standby takes over when the lease expires", "cannot release the lease");
            }
        }
        self.seat.set_role(Role::Standby);
    }
}

/// Renews the lease every third of its TTL as holder; tries to take it
/// every second as standby. Stops between iterations.
pub async fn lease_loop(app: Arc<App>, restore: (Duration, Duration), stop: CancellationToken) {
    loop {
        let every = match app.seat.role() {
            Role::Single => return,
            Role::Holder { .. } => app.seat.ttl / 3,
            Role::Standby => STANDBY_TRY,
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match app.seat.role() {
            Role::Holder { .. } => app.renew_lease().await,
            Role::Standby => {
                app.try_take_lease(restore).await;
            }
            Role::Single => return,
        }
    }
}
