//! The tracking core: sans-IO, infallible.
//!
//! [`Tracker`] owns the map of open voice sessions. It takes events (a member's
//! voice presence changed, a guild snapshot arrived, a flush is due) together
//! with the current time, and returns [`Effect`]s: seconds to credit and session
//! checkpoints to persist. It imports no tokio, serenity or mongodb and cannot
//! fail, so it is where the interesting logic and most tests live.
//!
//! Time is Unix epoch milliseconds ([`Millis`]). A credit covering `[from, to)`
//! is worth `floor(to / 1000) - floor(from / 1000)` seconds, so consecutive
//! credits telescope: however a stretch of time is cut by flushes, the sum is
//! the whole seconds elapsed on the wall clock between its ends.
//!
//! A session whose member's presence is unknown for a while is *suspended*:
//! after a restart (read back from its checkpoint) or during a gateway outage
//! ([`outage`]). It is not flushed; the next news of the member resolves it
//! by one rule: still in voice within the grace period, the gap is credited
//! and the session goes on; still in voice after longer, a new segment starts
//! then; gone, it ends where it was last credited.

mod outage;

use std::collections::HashMap;

pub use outage::GatewayState;

use super::{whole_secs, MemberKey, Millis, Presence};

/// A member's open voice session. A segment is a stretch in one channel with
/// one camera state; a toggle or a move closes it and opens the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceSession {
    pub channel: u64,
    pub camera: bool,
    /// Start of the current segment; with the member it identifies the segment.
    pub segment_start: Millis,
    /// Everything before this moment has been credited.
    pub last_credit: Millis,
}

impl VoiceSession {
    fn presence(&self) -> Presence {
        Presence {
            channel: self.channel,
            camera: self.camera,
        }
    }
}

/// Voice time to add to a member's totals and to one of its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credit {
    pub member: MemberKey,
    pub channel: u64,
    pub camera: bool,
    pub segment_start: Millis,
    pub from: Millis,
    pub to: Millis,
}

impl Credit {
    /// Whole seconds this credit is worth.
    #[must_use]
    pub fn secs(&self) -> i64 {
        whole_secs(self.from, self.to)
    }
}

/// The open segment a member's session checkpoint points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSegment {
    pub channel: u64,
    pub camera: bool,
    pub segment_start: Millis,
}

/// What the tracker asks the outside world to persist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Add this time to the member's totals and to its segment.
    Credit(Credit),
    /// The member's session now points to this segment (`None`: no session).
    Checkpoint {
        member: MemberKey,
        open: Option<OpenSegment>,
    },
}

/// A session read back from its checkpoint after a restart, with the
/// moment it was last credited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoredSession {
    pub member: MemberKey,
    pub session: VoiceSession,
}

/// Uncredited time of a session in progress, for answers that include "up to now".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub channel: u64,
    pub camera: bool,
    pub from: Millis,
    pub to: Millis,
}

/// A session waiting for its member's presence to be known again.
#[derive(Clone, Copy, Debug)]
struct Suspended {
    session: VoiceSession,
    /// The member's latest presence as far as known: none for a session
    /// read back after a restart; the session's own for one suspended by an
    /// outage, updated by what a `RESUME` replays.
    presence: Option<Presence>,
}

/// The session map and the rules that turn events into credits.
#[derive(Debug, Default)]
pub struct Tracker {
    sessions: HashMap<MemberKey, VoiceSession>,
    /// Sessions waiting for the member's presence to be known again (guild
    /// snapshot, voice update, or a resumed gateway for outage ones). Never
    /// flushed.
    suspended: HashMap<MemberKey, Suspended>,
    gateway: GatewayState,
    resume_grace_ms: Millis,
}

impl Tracker {
    /// A tracker that resumes suspended sessions whose last credit is at most
    /// `resume_grace_ms` old when the member is seen in voice again.
    #[must_use]
    pub fn new(resume_grace_ms: Millis) -> Self {
        Self {
            resume_grace_ms,
            ..Self::default()
        }
    }

    /// Number of open sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The open session of a member, if any.
    #[must_use]
    pub fn session(&self, member: MemberKey) -> Option<&VoiceSession> {
        self.sessions.get(&member)
    }

    /// Open sessions, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = (MemberKey, &VoiceSession)> {
        self.sessions.iter().map(|(k, v)| (*k, v))
    }

    /// Hands the tracker the session checkpoints found in storage at start-up.
    /// They are resolved when the member's presence is next known.
    pub fn restore(&mut self, checkpoints: impl IntoIterator<Item = RestoredSession>) {
        for c in checkpoints {
            if !self.sessions.contains_key(&c.member) {
                self.suspended.insert(
                    c.member,
                    Suspended {
                        session: c.session,
                        presence: None,
                    },
                );
            }
        }
    }

    /// Number of suspended sessions (restored or held by an outage) not yet resolved.
    #[must_use]
    pub fn suspended_len(&self) -> usize {
        self.suspended.len()
    }

    /// A member's voice presence changed (`None`: left voice, or went AFK).
    pub fn voice_update(
        &mut self,
        member: MemberKey,
        presence: Option<Presence>,
        now: Millis,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.apply_presence(member, presence, now, &mut out);
        out
    }

    /// The full list of members in voice in a guild, as sent on (re)connect.
    /// Members tracked in that guild but absent from the list have left.
    pub fn guild_snapshot(
        &mut self,
        guild: u64,
        present: &[(u64, Presence)],
        now: Millis,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        let here: HashMap<u64, Presence> = present.iter().copied().collect();
        let mut gone: Vec<MemberKey> = self
            .sessions
            .keys()
            .chain(self.suspended.keys())
            .filter(|k| k.guild == guild && !here.contains_key(&k.user))
            .copied()
            .collect();
        gone.sort_unstable();
        gone.dedup();
        for member in gone {
            self.apply_presence(member, None, now, &mut out);
        }
        let mut present = present.to_vec();
        present.sort_unstable_by_key(|(user, _)| *user);
        for (user, presence) in present {
            self.apply_presence(MemberKey { guild, user }, Some(presence), now, &mut out);
        }
        out
    }

    /// Credits every open session with the time since its last credit, up to
    /// `now` or to the last moment the gateway was known healthy, whichever
    /// is earlier. Sessions stay open; a later credit covers only what comes
    /// after.
    pub fn flush(&mut self, now: Millis) -> Vec<Effect> {
        let until = self.gateway.horizon(now);
        let mut out = Vec::with_capacity(self.sessions.len());
        for (member, session) in &mut self.sessions {
            if let Some(credit) = credit_until(*member, session, until) {
                out.push(Effect::Credit(credit));
            }
        }
        out
    }

    /// Uncredited time of a member's session up to `now`.
    #[must_use]
    pub fn pending(&self, member: MemberKey, now: Millis) -> Option<Pending> {
        self.sessions.get(&member).map(|s| Pending {
            channel: s.channel,
            camera: s.camera,
            from: s.last_credit,
            to: now.max(s.last_credit),
        })
    }

    fn apply_presence(
        &mut self,
        member: MemberKey,
        presence: Option<Presence>,
        now: Millis,
        out: &mut Vec<Effect>,
    ) {
        if let Some(suspended) = self.suspended.remove(&member) {
            if presence.is_some() && self.gateway_down() {
                // Replayed after a RESUME: when it happened is unknown, so
                // it is remembered until the gateway is back.
                self.suspended.insert(
                    member,
                    Suspended {
                        presence,
                        ..suspended
                    },
                );
                return;
            }
            self.resume(member, suspended.session, presence, now, out);
        }
        match (self.sessions.get_mut(&member), presence) {
            (None, None) => {}
            (None, Some(p)) => {
                let session = open_segment(p, now);
                self.sessions.insert(member, session);
                out.push(checkpoint(member, Some(&session)));
            }
            (Some(session), Some(p)) if session.presence() == p => {}
            (Some(session), Some(p)) => {
                out.extend(credit_until(member, session, now).map(Effect::Credit));
                // If the clock stepped back, the next segment starts where
                // credits stopped, so no stretch is credited twice.
                *session = open_segment(p, now.max(session.last_credit));
                out.push(checkpoint(member, Some(session)));
            }
            (Some(session), None) => {
                out.extend(credit_until(member, session, now).map(Effect::Credit));
                self.sessions.remove(&member);
                out.push(checkpoint(member, None));
            }
        }
    }

    /// A suspended session (from before a restart or an outage) meets the
    /// member's presence again: within the grace period and still in voice,
    /// the gap is credited and the session goes on; otherwise it ends where it
    /// was last credited.
    fn resume(
        &mut self,
        member: MemberKey,
        mut suspended: VoiceSession,
        presence: Option<Presence>,
        now: Millis,
        out: &mut Vec<Effect>,
    ) {
        let within_grace = now - suspended.last_credit <= self.resume_grace_ms;
        // Credited past `now` (a previous holder whose clock is ahead, or
        // that took events after its handoff): resumed without a credit, so
        // nothing before `last_credit` is credited twice.
        if presence.is_some() && within_grace {
            out.extend(credit_until(member, &mut suspended, now).map(Effect::Credit));
            self.sessions.insert(member, suspended);
        } else if presence.is_none() {
            out.push(checkpoint(member, None));
        }
        // Otherwise the member is in voice but the gap is too long to trust:
        // `apply_presence` opens a fresh session, whose checkpoint replaces this one.
    }
}

fn open_segment(p: Presence, now: Millis) -> VoiceSession {
    VoiceSession {
        channel: p.channel,
        camera: p.camera,
        segment_start: now,
        last_credit: now,
    }
}

fn checkpoint(member: MemberKey, session: Option<&VoiceSession>) -> Effect {
    Effect::Checkpoint {
        member,
        open: session.map(|s| OpenSegment {
            channel: s.channel,
            camera: s.camera,
            segment_start: s.segment_start,
        }),
    }
}

/// Credits `[last_credit, now)` and advances `last_credit`. Clocks that step
/// backwards never produce negative time: such a stretch is skipped.
fn credit_until(member: MemberKey, session: &mut VoiceSession, now: Millis) -> Option<Credit> {
    if now <= session.last_credit {
        return None;
    }
    let credit = Credit {
        member,
        channel: session.channel,
        camera: session.camera,
        segment_start: session.segment_start,
        from: session.last_credit,
        to: now,
    };
    session.last_credit = now;
    Some(credit)
}

#[cfg(test)]
mod tests;
