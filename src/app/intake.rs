//! Gateway events in: voice presence changes, guild snapshots, messages.

use tracing::instrument;

use super::health::record_open_sessions;
use super::lease::{snowflake_at, Handover};
use super::App;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
use crate::core::tracker::Effect;
use crate::core::{MemberKey, Millis, Presence};
use crate::durable::op::Op;

impl App {
    /// A member's voice presence changed (`None`: left voice or went AFK).
    #[instrument(skip_all, fields(guild_id = member.guild, user_id = member.user))]
    pub async fn voice_update(&self, member: MemberKey, presence: Option<Presence>, now: Millis) {
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        {
            let mut seen = lock(&self.seat.presence);
            match presence {
                Some(p) => seen.1.insert(member, p),
                None => seen.1.remove(&member),
            };
        }
        if !self.seat.voice_counts() {
            // Standing by: the view of who is in voice changes, and the
            // change is kept for a takeover to replay at its own time.
            self.seat.log_voice(member, presence, now);
            return;
        }
        if matches!(self.seat.role(), super::lease::Role::Provisional { .. }) {
            // Kept too: if what it counts is discarded, a takeover replays
            // the changes at their own times.
            self.seat.log_voice(member, presence, now);
        }
        let effects = tracker.voice_update(member, presence, now);
        record_open_sessions(tracker.len());
        log_effects(&effects);
        // Submitted under the lock: ops of one member reach the spool in order.
        self.writer
            .submit(effects.into_iter().map(|e| self.op_of(e)));
    }

    /// Members currently in voice in a guild, as seen on (re)connect.
    #[instrument(skip_all, fields(guild_id = guild, in_voice = present.len()))]
    pub async fn guild_snapshot(&self, guild: u64, present: &[(u64, Presence)], now: Millis) {
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        {
            let mut seen = lock(&self.seat.presence);
            seen.0.insert(guild);
            seen.1.retain(|m, _| m.guild != guild);
            for (user, p) in present {
                seen.1.insert(MemberKey { guild, user: *user }, *p);
            }
        }
        if !self.seat.voice_counts() {
            tracing::info!(
                guild_id = guild,
                in_voice = present.len(),
                "guild snapshot: standing by (kept as this instance's view of who is in voice)"
            );
            return;
        }
        let effects = tracker.guild_snapshot(guild, present, now);
        record_open_sessions(tracker.len());
        tracing::info!(
            guild_id = guild,
            in_voice = present.len(),
            tracked = tracker.len(),
            "guild snapshot: tracking members already in voice"
        );
        log_effects(&effects);
        self.writer
            .submit(effects.into_iter().map(|e| self.op_of(e)));
    }

    /// A message by a member at `now` (its id made from the time and a
    /// counter, as Discord's are: two messages in one millisecond are two).
    pub fn message(&self, member: MemberKey, now: Millis) {
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0x3f_ffff;
        self.message_with_id(member, snowflake_at(now) | n, now);
    }

    /// A message by a member, with its snowflake `id`: counted by the lease
    /// holder unless it was counted already (by this instance or, as its
    /// handoff said, by the holder before: a replayed or late delivery),
    /// buffered by a standby. Handing over, the holder counts until its
    /// intake closes; the next holder counts what it did not.
    #[instrument(skip_all, fields(guild_id = member.guild, user_id = member.user))]
    pub fn message_with_id(&self, member: MemberKey, id: u64, now: Millis) {
        let mut messages = lock(&self.seat.messages);
        if messages.handover == Handover::Closed {
            return; // handed over: the next holder counts it
        }
        if messages.standby {
            messages.buffer(id, member, now);
            return;
        }
        if messages.handover != Handover::Counting && !self.accepting() {
            return;
        }
        if messages.ids.accounted(id) {
            tracing::debug!(
                message_id = id,
                "message already counted; not counted again"
            );
            return;
        }
        messages.ids.record(id, std::time::Instant::now());
        if messages.keep {
            messages.buffer(id, member, now);
        }
        tracing::debug!("message counted");
        // Under the lock: a takeover's buffered messages go first.
        // Bucketed by when it was sent (its snowflake), not processed.
        let sent = super::message_sent_at(id, now);
        let tz = self.timezone_of(member.guild);
        self.writer.submit([Op::message_id(member, id, sent, tz)]);
    }
}

pub(super) fn log_effects(effects: &[Effect]) {
    for e in effects {
        match e {
            Effect::Credit(c) => tracing::info!(
                guild_id = c.member.guild,
                user_id = c.member.user,
                channel_id = c.channel,
                camera = c.camera,
                secs = c.secs(),
                "voice time credited"
            ),
            Effect::Checkpoint {
                member,
                open: Some(o),
            } => tracing::info!(
                guild_id = member.guild,
                user_id = member.user,
                channel_id = o.channel,
                camera = o.camera,
                "member in voice (joined, moved or toggled camera)"
            ),
            Effect::Checkpoint { member, open: None } => tracing::info!(
                guild_id = member.guild,
                user_id = member.user,
                "member left voice"
            ),
        }
    }
}
