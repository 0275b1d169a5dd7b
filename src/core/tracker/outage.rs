//! Gateway outages: an outage is not study time. While the gateway is down
//! nobody's presence is known, exactly as while the bot is down, so the same
//! rule applies:
//!
//! - Credits never pass the last moment the gateway was known healthy: a
//!   flush stops there ([`GatewayState::horizon`]).
//! - When the gateway is lost, every open session is credited up to that
//!   moment and suspended ([`Tracker::gateway_lost`]); flushes skip it.
//! - A `RESUME` replays what happened meanwhile, with no time of its own: a
//!   replayed leave closes the session where it was last credited (the
//!   disconnect); a replayed move or camera toggle is remembered. Then every
//!   session suspended by the outage whose member nobody said left is
//!   resolved as "still in voice" ([`Tracker::gateway_resumed`]).
//! - A new session (`READY`) is followed by guild snapshots, which resolve
//!   suspended sessions as after a restart ([`Tracker::guild_snapshot`]).
//! - The gateway is back only with `READY` or `RESUMED`: the shard reporting
//!   itself connected comes just before them.
//!
//! Resolving is the restart rule: in voice and within the grace period, the
//! gap is credited; in voice after longer, a new segment starts at the
//! reconnect; gone, nothing more is credited.

use super::{credit_until, Effect, MemberKey, Millis, Presence, Suspended, Tracker};
use crate::core::link::Link;

/// The gateway as far as crediting is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GatewayState {
    /// Nothing reports on a gateway (the bot runs headless): flushes credit
    /// up to the moment they are asked for.
    #[default]
    Unwatched,
    /// Known healthy until `healthy_until`.
    Up { healthy_until: Millis },
    /// Lost; last known healthy at `since`. Sessions open then are suspended.
    Down { since: Millis },
}

impl GatewayState {
    /// How far a flush at `now` may credit.
    #[must_use]
    pub fn horizon(self, now: Millis) -> Millis {
        match self {
            GatewayState::Unwatched => now,
            GatewayState::Up { healthy_until: h } | GatewayState::Down { since: h } => now.min(h),
        }
    }
}

impl Tracker {
    /// The gateway as the tracker sees it.
    #[must_use]
    pub fn gateway(&self) -> GatewayState {
        self.gateway
    }

    /// Whether the gateway is lost (and not back with `READY` or `RESUMED`).
    #[must_use]
    pub fn gateway_down(&self) -> bool {
        matches!(self.gateway, GatewayState::Down { .. })
    }

    /// The gateway link was observed at `at` (see [`crate::core::link`]).
    /// Healthy: credits may go up to `at`. Stalled: nothing is known, so they
    /// go no further. Down: the gateway is lost where it was last known
    /// healthy (once; later observations change nothing until `READY` or
    /// `RESUMED`).
    pub fn gateway_link(&mut self, link: Link, at: Millis) -> Vec<Effect> {
        match (link, self.gateway) {
            (Link::Healthy, GatewayState::Up { healthy_until }) => {
                self.gateway = GatewayState::Up {
                    healthy_until: healthy_until.max(at),
                };
            }
            (Link::Healthy, GatewayState::Unwatched) => {
                self.gateway = GatewayState::Up { healthy_until: at };
            }
            (Link::Healthy | Link::Stalled | Link::Down, GatewayState::Down { .. })
            | (Link::Stalled, _) => {}
            (Link::Down, GatewayState::Up { healthy_until }) => {
                return self.gateway_lost(healthy_until);
            }
            (Link::Down, GatewayState::Unwatched) => return self.gateway_lost(at),
        }
        Vec::new()
    }

    /// The gateway was lost; it was last known healthy at `at`. Every open
    /// session is credited up to `at` and suspended until the member's
    /// presence is known again. Their checkpoints stay open, so a restart
    /// meanwhile resolves them by the same rule.
    pub fn gateway_lost(&mut self, at: Millis) -> Vec<Effect> {
        let mut out = Vec::with_capacity(self.sessions.len());
        for (member, mut session) in self.sessions.drain() {
            out.extend(credit_until(member, &mut session, at).map(Effect::Credit));
            let presence = Some(session.presence());
            self.suspended
                .insert(member, Suspended { session, presence });
        }
        if !matches!(self.gateway, GatewayState::Down { .. }) {
            self.gateway = GatewayState::Down { since: at };
        }
        out
    }

    /// A new gateway session is ready at `now` (`READY`). Suspended sessions
    /// wait for the guild snapshots that follow.
    pub fn gateway_connected(&mut self, now: Millis) {
        self.gateway = GatewayState::Up { healthy_until: now };
    }

    /// The gateway session resumed at `now` (`RESUMED`), after the replay of
    /// what was missed. Suspended sessions whose member is known to be in
    /// voice (suspended by the outage, or seen in the replay) and nobody said
    /// left are resolved: within the grace period the gap is credited,
    /// otherwise a new segment starts at `now`. Sessions restored after a
    /// restart and not seen wait for a snapshot.
    pub fn gateway_resumed(&mut self, now: Millis) -> Vec<Effect> {
        self.gateway_connected(now);
        let mut back: Vec<(MemberKey, Presence)> = self
            .suspended
            .iter()
            .filter_map(|(member, s)| Some((*member, s.presence?)))
            .collect();
        back.sort_unstable_by_key(|(member, _)| *member);
        let mut out = Vec::new();
        for (member, presence) in back {
            self.apply_presence(member, Some(presence), now, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
