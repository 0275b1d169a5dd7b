//! What the health endpoints read of the service besides the writer: the
//! gateway as the watch last saw it, the open sessions gauge, and the ping
//! that keeps "MongoDB answered recently" current while nothing is written.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{now_millis, App};
use crate::core::link::Link;
use crate::telemetry::{cause_chain, prometheus as metric};

impl App {
    /// The gateway link at the watch's last observation; `None` until the
    /// watch has looked (and always when headless: there is no watch).
    #[must_use]
    pub fn gateway_seen(&self) -> Option<Link> {
        *self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn saw_gateway(&self, link: Link) {
        self.seat.saw_gateway(link);
        *self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link);
    }
}

/// Sets the open sessions gauge.
#[allow(clippy::cast_precision_loss)] // sessions stay far below 2^52
pub(super) fn record_open_sessions(open: usize) {
    metrics::gauge!(metric::OPEN_SESSIONS).set(open as f64);
}

/// Pings MongoDB every `every` unless a command succeeded within it (the
/// writer's, usually), so that `/readyz` knows whether MongoDB answers
/// while the bot writes nothing. Logs when pings start failing and when
/// they succeed again. Returns when `stop` is cancelled.
pub async fn ping_loop(app: Arc<App>, every: Duration, stop: CancellationToken) {
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let contact = app.store().contact();
        let recent = contact
            .last_answer
            .is_some_and(|t| now_millis() - t < every_ms && contact.last_failure <= Some(t));
        if recent {
            continue;
        }
        let result = tokio::select! {
            r = app.store().ping() => r,
            () = stop.cancelled() => return,
        };
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("MongoDB answers the health ping again");
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %cause_chain(&e), consequence = "/readyz reports not ready", "MongoDB does not answer the health ping");
            }
            _ => {}
        }
    }
}
