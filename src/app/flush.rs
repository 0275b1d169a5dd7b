//! Credits for open sessions: the periodic flush, the loop that runs it,
//! and the credit that starts a graceful shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::instrument;

use super::health::record_open_sessions;
use super::{credited_secs, now_millis, App};
use crate::core::Millis;

/// What one flush did, for the log line and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sessions: usize,
    pub credits: usize,
    pub secs: i64,
}

impl App {
    /// Credits every open session up to `now` (or to the last moment the
    /// gateway was known healthy, if earlier): the periodic flush.
    #[instrument(skip_all)]
    pub async fn flush_once(&self, now: Millis) -> FlushReport {
        let started = Instant::now();
        let mut tracker = self.tracker.lock().await;
        let effects = tracker.flush(now);
        record_open_sessions(tracker.len());
        let report = FlushReport {
            sessions: tracker.len(),
            credits: effects.len(),
            secs: credited_secs(&effects),
        };
        // Queued under the lock (submitting never waits: the outbox folds),
        // so sequence numbers follow time: a later leave or toggle credit
        // never gets a lower number than this flush's credits, and a drain
        // cut between them cannot leave `credited_until` past a stretch the
        // total lacks.
        self.writer
            .submit(effects.into_iter().map(|e| self.op_of(e)));
        drop(tracker);
        if report.sessions > 0 {
            tracing::info!(
                sessions = report.sessions,
                writes = report.credits,
                secs = report.secs,
                ms = started.elapsed().as_millis(),
                "flush: credited active voice sessions"
            );
        }
        report
    }

    /// Stops taking events and credits every open session up to `now`: the
    /// first step of a graceful shutdown. Sessions stay open in their
    /// checkpoints so that the next start can resume them. Only the first
    /// call credits; later calls do nothing.
    pub async fn stop_and_credit(&self, now: Millis) -> FlushReport {
        if !self.accepting.swap(false, Ordering::SeqCst) {
            return FlushReport::default();
        }
        self.flush_once(now).await
    }
}

/// Credits active sessions every `interval` until `stop` is cancelled.
///
/// It stops only between flushes, never inside one: a flush advances every
/// session's last credit before it queues the credits, so abandoning it
/// half way would lose that time for good (the tracker counts it as
/// written). Shutdown waits for this task to return.
pub async fn flush_loop(app: Arc<App>, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        app.flush_once(now_millis()).await;
    }
}
