//! The gateway link's health, judged from what the adapter can read of its
//! shard a few times a second: whether the shard is connected, and the
//! latency of its last acknowledged heartbeat (a new value means a new ack).
//!
//! - [`Link::Down`]: the shard is not connected (reconnecting, restarting).
//! - [`Link::Stalled`]: connected, but a heartbeat ack is overdue: the link
//!   may be dead without the shard knowing yet. Nothing is known, so nothing
//!   more is credited until an ack comes (or the shard gives up: `Down`).
//! - [`Link::Healthy`]: connected and acknowledged on time.
//!
//! An ack is overdue once more than one and a half heartbeat periods (at
//! least [`MIN_ACK_SLACK_MS`] more than one) have passed since the last one.
//! The period is the time between the last two acks; a connection counts as
//! an ack, since a client starts its heartbeat clock when it connects. Until
//! the first ack of a connection the period is unknown and only "connected"
//! counts.

use super::Millis;

/// The least extra time an ack may take beyond one heartbeat period.
pub const MIN_ACK_SLACK_MS: Millis = 2_000;

/// The gateway link's health at one observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Healthy,
    Stalled,
    Down,
}

/// Judges observations of one shard into [`Link`]s; remembers acks between them.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatWatch {
    connected: bool,
    /// The last ack, or the moment the shard was seen connected.
    last_ack: Millis,
    /// Time between the last two acks, once known.
    period: Option<Millis>,
    /// The latency reported at the previous observation.
    latency: Option<u64>,
}

impl HeartbeatWatch {
    /// One observation at `at`: whether the shard is connected, and the
    /// latency of its last acknowledged heartbeat, in any unit.
    pub fn observe(&mut self, at: Millis, connected: bool, latency: Option<u64>) -> Link {
        let acked = latency.is_some() && latency != self.latency;
        self.latency = latency;
        if !connected {
            self.connected = false;
            self.period = None;
            return Link::Down;
        }
        if !self.connected {
            // (Re)connected: the heartbeat clock starts now, and a latency
            // seen at this moment belongs to the previous connection.
            self.connected = true;
            self.last_ack = at;
        } else if acked {
            self.period = Some(at - self.last_ack);
            self.last_ack = at;
        }
        match self.period {
            Some(period) if at - self.last_ack > period + (period / 2).max(MIN_ACK_SLACK_MS) => {
                Link::Stalled
            }
            _ => Link::Healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Millis = 41_250;

    #[test]
    fn not_connected_is_down() {
        let mut w = HeartbeatWatch::default();
        assert_eq!(w.observe(0, false, None), Link::Down);
        assert_eq!(w.observe(1_000, false, Some(80)), Link::Down);
    }

    #[test]
    fn connected_without_any_ack_yet_is_healthy() {
        let mut w = HeartbeatWatch::default();
        assert_eq!(w.observe(0, true, None), Link::Healthy);
        // The period is not known before the first ack: only "connected" counts.
        assert_eq!(w.observe(10 * PERIOD, true, None), Link::Healthy);
    }

    #[test]
    fn an_overdue_ack_stalls_the_link_until_the_next_ack() {
        let mut w = HeartbeatWatch::default();
        w.observe(0, true, None);
        // First ack one period after connecting: the period is learnt.
        assert_eq!(w.observe(PERIOD, true, Some(90)), Link::Healthy);
        let deadline = PERIOD + PERIOD + PERIOD / 2;
        assert_eq!(w.observe(deadline, true, Some(90)), Link::Healthy);
        assert_eq!(w.observe(deadline + 1, true, Some(90)), Link::Stalled);
        // A late ack: healthy again.
        assert_eq!(w.observe(deadline + 500, true, Some(95)), Link::Healthy);
    }

    #[test]
    fn short_periods_get_the_minimum_slack() {
        let mut w = HeartbeatWatch::default();
        w.observe(0, true, None);
        w.observe(1_000, true, Some(1));
        assert_eq!(
            w.observe(1_000 + 1_000 + MIN_ACK_SLACK_MS, true, Some(1)),
            Link::Healthy
        );
        assert_eq!(
            w.observe(1_000 + 1_001 + MIN_ACK_SLACK_MS, true, Some(1)),
            Link::Stalled
        );
    }

    #[test]
    fn a_reconnect_restarts_the_heartbeat_clock() {
        let mut w = HeartbeatWatch::default();
        w.observe(0, true, None);
        w.observe(PERIOD, true, Some(90));
        assert_eq!(w.observe(2 * PERIOD, false, Some(90)), Link::Down);
        // Back with the old latency still reported: not an ack, and no
        // period is known for the new connection.
        assert_eq!(w.observe(5 * PERIOD, true, Some(90)), Link::Healthy);
        assert_eq!(
            w.observe(5 * PERIOD + PERIOD / 2, true, Some(90)),
            Link::Healthy
        );
        // Its first ack, one period after the reconnect.
        assert_eq!(w.observe(6 * PERIOD, true, Some(70)), Link::Healthy);
        assert_eq!(w.observe(8 * PERIOD, true, Some(70)), Link::Stalled);
    }
}
