//! The gateway's health and reconnects, as facts from the Discord adapter:
//! what the gateway watch sees of the shard a few times a second, `READY`
//! and `RESUMED`. The rules (an outage is not study time) are the tracker's.

use tracing::instrument;

use super::intake::log_effects;
use super::{credited_secs, App};
use crate::core::link::Link;
use crate::core::tracker::GatewayState;
use crate::core::Millis;

impl App {
    /// What the gateway watch saw of shard `shard` at `at`. A lost gateway
    /// credits open sessions up to the last moment it was known healthy and
    /// suspends them.
    #[instrument(skip_all, fields(shard))]
    pub async fn gateway_link(&self, shard: u32, link: Link, at: Millis) {
        self.saw_gateway(link);
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        let before = tracker.gateway();
        let open = tracker.len();
        let effects = tracker.gateway_link(link, at);
        if let (GatewayState::Up { .. }, GatewayState::Down { since }) = (before, tracker.gateway())
        {
            tracing::warn!(
                shard,
                sessions_suspended = open,
                secs_credited = credited_secs(&effects),
                healthy_until_ms_ago = at - since,
                consequence = "the outage is not credited; members still in voice on reconnect get it within RESUME_GRACE_SECS",
                "gateway lost; open voice sessions credited up to its last healthy moment and suspended"
            );
        }
        self.writer
            .submit(effects.into_iter().map(|e| self.op_of(e)));
    }

    /// A new gateway session is ready (`READY`: first connect or re-identify).
    /// Suspended sessions wait for the guild snapshots that follow.
    #[instrument(skip_all, fields(shard))]
    pub async fn gateway_connected(&self, shard: u32, now: Millis) {
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        tracker.gateway_connected(now);
        if tracker.suspended_len() > 0 {
            tracing::info!(
                shard,
                sessions_suspended = tracker.suspended_len(),
                "gateway connected (new session); guild snapshots resolve suspended sessions"
            );
        }
    }

    /// The gateway session resumed (`RESUMED`) after the replay of what it
    /// missed: members nobody said left are resumed by the restart rule.
    #[instrument(skip_all, fields(shard))]
    pub async fn gateway_resumed(&self, shard: u32, now: Millis) {
        if !self.accepting() {
            return;
        }
        let mut tracker = self.tracker.lock().await;
        let was_down = tracker.gateway_down();
        let suspended = tracker.suspended_len();
        let effects = tracker.gateway_resumed(now);
        if was_down {
            tracing::info!(
                shard,
                sessions_resumed = suspended - tracker.suspended_len(),
                secs_credited = credited_secs(&effects),
                still_suspended = tracker.suspended_len(),
                "gateway resumed; members still in voice resumed (the gap credited within RESUME_GRACE_SECS)"
            );
        }
        log_effects(&effects);
        self.writer
            .submit(effects.into_iter().map(|e| self.op_of(e)));
    }
}
