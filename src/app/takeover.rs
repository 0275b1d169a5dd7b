//! The lease's life: taking it (at start, then by a standby's tries in
//! `lease_loops`), renewing it as the holder, stepping down when it is
//! lost, taking over from the previous holder, and handing over at
//! shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::lease::Role;
use super::message_ids::MessageIds;
use super::{now_millis, App};
use crate::core::tracker::Tracker;
use crate::core::tracker::VoiceSession;
use crate::core::{MemberKey, Millis, Presence};
use crate::durable::op::Op;
use crate::store::{Claimant, Taken};
use crate::telemetry::cause_chain;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    /// This instance as it asks for the lease: its spool directory's id and
    /// the last epoch that directory held.
    pub(super) fn claimant(&self) -> Claimant<'_> {
        Claimant {
            name: &self.seat.holder,
            instance: &self.seat.instance,
            held_epoch: self.writer.held_epoch(),
        }
    }

    /// Records the epoch just taken in `SPOOL_DIR` before anything is
    /// stamped with it: a restart on this spool (under any hostname) then
    /// knows the lease as its own.
    fn record_held_epoch(&self, epoch: u64) {
        if let Err(e) = self.writer.save_held_epoch(epoch) {
            tracing::error!(error = %e, epoch, consequence = "after a restart on this spool, what it holds from this epoch may be fenced instead of written", "cannot record the lease epoch in SPOOL_DIR");
        }
    }

    pub(super) fn ttl_ms(&self) -> i64 {
        i64::try_from(self.seat.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// The holder's writes are trusted until a third of the TTL before the
    /// lease could expire (a margin for the round trip and the commands
    /// already past the gate). `renewed_at` is taken before the server's
    /// time is asked ([`App::lease_now`]), so the validity ends before the
    /// expiry that time sets, by the server's clock.
    fn valid_until(&self, renewed_at: Instant) -> Instant {
        renewed_at + self.seat.ttl * 2 / 3
    }

    /// At start: takes the lease if it is free, stands by if another
    /// instance holds it, and counts provisionally if MongoDB cannot be
    /// asked (a lone instance starting during a database outage must not
    /// lose what happens meanwhile). Returns whether this instance counts.
    pub async fn start_lease(&self, restore: (Duration, Duration)) -> bool {
        let asked = Instant::now();
        match self.acquire().await {
            Ok(Some(taken)) => {
                self.take_over(taken, asked, restore).await;
                true
            }
            Ok(None) => false,
            Err(e) => {
                let since = now_millis();
                // Counts now; writes stay paused until MongoDB answers.
                lock(&self.seat.messages).standby = false;
                lock(&self.seat.messages).keep = true;
                self.seat.voice_counts.store(true, Ordering::SeqCst);
                self.seat.set_role(Role::Provisional { since });
                tracing::warn!(error = %cause_chain(&e), consequence = "counting into the spool; once MongoDB answers, what was counted stands if the lease was free, and is set aside (fenced) if another instance held it", "cannot ask MongoDB for the lease; counting provisionally");
                true
            }
        }
    }

    /// Tries once to take the lease; on success takes over (restore,
    /// presence, buffered messages). Returns whether this instance holds it.
    pub async fn try_take_lease(&self, restore: (Duration, Duration)) -> bool {
        let provisional = match self.seat.role() {
            Role::Single | Role::Holder { .. } => return true,
            Role::Standby => None,
            Role::Provisional { since } => Some(since),
        };
        let asked = Instant::now();
        let taken = match self.acquire().await {
            Ok(Some(t)) => t,
            Ok(None) => {
                if provisional.is_some() {
                    self.discard_provisional("another instance holds the lease")
                        .await;
                }
                return false;
            }
            Err(e) => {
                tracing::debug!(error = %cause_chain(&e), "cannot ask for the lease");
                return false;
            }
        };
        if let Some(since) = provisional {
            // Nobody else counted while this instance did: it was this
            // instance's own (from before a restart), or the previous
            // holder stopped (handed over, or its lease expired) no later
            // than the moment counting began.
            let alone = taken.reclaimed || taken.previous_stop().is_none_or(|stop| stop <= since);
            if alone {
                self.confirm_provisional(taken, asked).await;
                return true;
            }
            self.discard_provisional("another instance held the lease meanwhile")
                .await;
        }
        self.take_over(taken, asked, restore).await;
        true
    }

    /// The lease was free: what was counted provisionally stands.
    async fn confirm_provisional(&self, taken: Taken, asked: Instant) {
        self.raise_seq_floor().await;
        self.record_held_epoch(taken.epoch);
        self.writer.set_epoch(taken.epoch);
        let valid_until = self.valid_until(asked);
        self.seat.set_role(Role::Holder {
            epoch: taken.epoch,
            valid_until,
        });
        self.writer.allow_writes_until(Some(valid_until));
        let mut messages = lock(&self.seat.messages);
        messages.keep = false;
        messages.buffer.clear();
        tracing::info!(
            epoch = taken.epoch,
            holder = %self.seat.holder,
            reclaimed = taken.reclaimed,
            "took the lease; this instance counts now (what it counted while MongoDB was unreachable stands)"
        );
    }

    /// The lease was not free: what was counted provisionally is set aside
    /// unwritten and the tracker starts over (a takeover restores it).
    async fn discard_provisional(&self, why: &str) {
        self.writer.fence_unleased();
        // The voice changes it saw stay for a takeover to replay.
        let log = std::mem::take(&mut *lock(&self.seat.voice_log));
        self.stand_by().await;
        *lock(&self.seat.voice_log) = log;
        tracing::warn!(
            reason = why,
            consequence = "what this instance counted while MongoDB was unreachable is set aside in SPOOL_DIR/fenced.log, not written",
            "provisional counting discarded"
        );
    }

    async fn take_over(&self, taken: Taken, asked: Instant, restore: (Duration, Duration)) {
        let transition = self.seat.transition.lock().await;
        // Numbers above the previous holder's, and above the saved mark.
        self.writer
            .raise_seq_floor(taken.handoff.map_or(0, |h| h.seq));
        self.raise_seq_floor().await;
        self.record_held_epoch(taken.epoch);
        self.writer.set_epoch(taken.epoch);
        // What this spool holds from an earlier epoch of ours was counted
        // under a lease another instance has held since: that holder resumed
        // from what MongoDB held, so it is fenced off, not written. (A lease
        // taken back from ourselves was held by nobody else meanwhile.)
        // So is what an earlier run counted provisionally (epoch 0) and
        // never confirmed: that holder counted the same events.
        if !taken.reclaimed && (taken.handoff.is_some() || taken.expired_at.is_some()) {
            self.writer.fence_below(taken.epoch);
            self.writer.fence_unleased();
        }
        let valid_until = self.valid_until(asked);
        self.seat.set_role(Role::Holder {
            epoch: taken.epoch,
            valid_until,
        });
        self.writer.allow_writes_until(Some(valid_until));
        // Where the previous holder stopped counting voice (its own lease
        // taken back: nobody counted after it, so from the start).
        let stopped = taken.previous_stop().filter(|_| !taken.reclaimed);
        tracing::info!(
            epoch = taken.epoch,
            holder = %self.seat.holder,
            handoff = taken.handoff.is_some(),
            reclaimed = taken.reclaimed,
            expired_at_ms = taken.expired_at,
            "took the lease; this instance counts now"
        );
        // Renewals go on meanwhile (`renew_loop`): a restore may take
        // longer than the lease's TTL.
        drop(transition);
        // The messages the previous holder accounted for, by id.
        let owned = self.previous_holders_ids(&taken).await;
        // Sessions continue from the previous holder's last credit.
        let restored: HashMap<MemberKey, VoiceSession> = self
            .restore_sessions(restore.0, restore.1)
            .await
            .into_iter()
            .map(|r| (r.member, r.session))
            .collect();
        self.reload_settings_at_takeover(restore.1).await;
        let _transition = self.seat.transition.lock().await;
        if !matches!(self.seat.role(), Role::Holder { epoch, .. } if epoch == taken.epoch) {
            // Lost during the restore (and stepped down): start over clean.
            self.stand_by().await;
            tracing::warn!(
                epoch = taken.epoch,
                "the lease was lost while restoring sessions; standing by"
            );
            return;
        }
        // The previous holder is fenced now: an earlier version's running
        // periods can be carried without missing its last writes.
        self.carry_periods();
        let now = now_millis();
        {
            let mut tracker = self.tracker.lock().await;
            self.seat.voice_counts.store(true, Ordering::SeqCst);
            // Voice changes since the previous holder stopped, at their times.
            let replay_from = stopped.unwrap_or(0);
            let replayed = self.replay_voice_log(&mut tracker, &restored, replay_from, now);
            tracing::info!(
                replayed,
                from_ms = replay_from,
                "voice changes seen while standing by replayed"
            );
            let (guilds, members) = lock(&self.seat.presence).clone();
            for guild in guilds {
                let present: Vec<(u64, Presence)> = members
                    .iter()
                    .filter(|(m, _)| m.guild == guild)
                    .filter_map(|(m, p)| Some((m.user, self.still_tracked(*m, Some(*p))?)))
                    .collect();
                let effects = tracker.guild_snapshot(guild, &present, now);
                super::intake::log_effects(&effects);
                self.writer
                    .submit(effects.into_iter().map(|e| self.op_of(e)));
            }
        }
        let written = self.written_below(&taken, owned.floor).await;
        // Every buffered message the previous holder did not account for,
        // then (intake) every new one it did not: refused for good, so a
        // late or replayed delivery of one it counted is not counted again.
        // After an expiry, also those below it it never wrote.
        let mut messages = lock(&self.seat.messages);
        messages.ids = MessageIds::inherit(owned.floor, &owned.ids);
        let buffered = std::mem::take(&mut messages.buffer);
        let (mut counted, mut skipped) = (0, 0);
        let seen = Instant::now();
        for (id, member, at) in buffered {
            let unwritten = id < owned.floor
                && written.as_ref().is_some_and(|w| !w.may_hold(member, id))
                && !messages.ids.is_recorded(id);
            if messages.ids.accounted(id) && !unwritten {
                skipped += 1;
                continue;
            }
            messages.ids.record(id, seen);
            counted += 1;
            let sent = super::message_sent_at(id, at);
            let tz = self.timezone_of(member.guild);
            self.writer.submit([Op::message_id(member, id, sent, tz)]);
        }
        messages.standby = false;
        tracing::info!(
            counted,
            skipped,
            floor = owned.floor,
            previous_holders_ids = owned.ids.len(),
            "buffered messages the previous holder did not count counted"
        );
    }

    /// Replays the voice changes seen while standing by, from `replay_from`
    /// to `now`, at their own times; returns how many.
    fn replay_voice_log(
        &self,
        tracker: &mut Tracker,
        restored: &HashMap<MemberKey, VoiceSession>,
        replay_from: Millis,
        now: Millis,
    ) -> usize {
        let log = std::mem::take(&mut *lock(&self.seat.voice_log));
        let mut replayed = 0;
        let mut resumed = HashSet::new();
        for (member, presence, at) in log {
            if at < replay_from || at > now {
                continue;
            }
            let mut effects = Vec::new();
            if let Some(s) = restored.get(&member) {
                if at < s.last_credit {
                    continue; // the previous holder credited past it
                }
                // In voice at the handoff as last credited: resumed there
                // first, so a leave, move or toggle counts from the handoff.
                if resumed.insert(member) {
                    let was = Presence {
                        channel: s.channel,
                        camera: s.camera,
                    };
                    effects =
                        tracker.voice_update(member, Some(was), s.last_credit.max(replay_from));
                }
            }
            replayed += 1;
            let presence = self.still_tracked(member, presence);
            effects.extend(tracker.voice_update(member, presence, at));
            super::intake::log_effects(&effects);
            self.writer
                .submit(effects.into_iter().map(|e| self.op_of(e)));
        }
        replayed
    }

    /// The settings as the previous holder left them (a change it made
    /// since this instance's last reload included), before the voice
    /// changes seen meanwhile are replayed under them.
    async fn reload_settings_at_takeover(&self, wait: Duration) {
        if !matches!(
            tokio::time::timeout(wait, self.load_settings()).await,
            Ok(Ok(_))
        ) {
            tracing::warn!(
                consequence = "voice changes seen while standing by are replayed under the settings last read",
                "cannot reload the servers' settings at the takeover"
            );
        }
    }

    /// A presence the standby recorded under the settings it had, under
    /// those just reloaded: not tracked if its channel is excluded now or
    /// the member opted out. (A category excluded since is not seen here:
    /// the standby kept the channel, not its category.)
    fn still_tracked(&self, member: MemberKey, presence: Option<Presence>) -> Option<Presence> {
        let p = presence?;
        let settings = self.settings_of(member.guild);
        let excluded = settings.excludes(crate::core::settings::ChannelPath::top(p.channel));
        (!excluded && !self.opted_out(member)).then_some(p)
    }

    /// Renews the lease; on loss, steps down to standby. Writes are
    /// allowed until two thirds of the TTL after the renewal was sent.
    pub async fn renew_lease(&self) {
        let Role::Holder { epoch, valid_until } = self.seat.role() else {
            return;
        };
        let asked = Instant::now();
        let renewed = match self.lease_now().await {
            Ok(now) => {
                self.store
                    .renew_lease(&self.seat.holder, epoch, now, self.ttl_ms())
                    .await
            }
            Err(e) => Err(e),
        };
        match renewed {
            Ok(true) => {
                let valid_until = self.valid_until(asked);
                self.seat.set_role(Role::Holder { epoch, valid_until });
                self.writer.allow_writes_until(Some(valid_until));
                self.note_standbys().await;
            }
            Ok(false) => {
                self.step_down(epoch, "the lease was taken by another instance")
                    .await;
            }
            // MongoDB unreachable: keep counting into the spool. Nobody can
            // take the lease without reaching MongoDB either, and if
            // someone does, the next renewal is refused and this instance
            // steps down (stepping down on errors would stop a lone
            // instance counting through every database outage).
            // Once its validity lapses, writes pause (they would fail
            // anyway while MongoDB is unreachable) until a renewal.
            Err(e) => {
                let lapsed = Instant::now() >= valid_until;
                tracing::warn!(error = %cause_chain(&e), lapsed, "cannot renew the lease; still counting into the spool, retrying");
            }
        }
    }

    async fn step_down(&self, epoch: u64, why: &str) {
        let _transition = self.seat.transition.lock().await;
        // Nothing counted under this epoch is written any more.
        self.writer.allow_writes_until(Some(Instant::now()));
        self.writer.fence_below(epoch + 1);
        self.stand_by().await;
        tracing::error!(
            epoch,
            reason = why,
            consequence = "this instance stands by; what it counted under this epoch and had not written is set aside in SPOOL_DIR/fenced.log, not written",
            "lease lost; stepping down"
        );
    }

    /// Stops counting and starts standing by: the tracker starts over (a
    /// takeover restores it), voice changes and messages are kept for it.
    pub(super) async fn stand_by(&self) {
        let mut tracker = self.tracker.lock().await;
        self.seat.voice_counts.store(false, Ordering::SeqCst);
        *tracker = Tracker::new(self.resume_grace_ms);
        lock(&self.seat.voice_log).clear();
        drop(tracker);
        {
            let mut messages = lock(&self.seat.messages);
            messages.standby = true;
            messages.keep = false;
            messages.handover = super::lease::Handover::None;
            messages.ids = MessageIds::default();
        }
        self.seat.set_role(Role::Standby);
    }
}
