//! Session checkpoints from before a restart, handed to the tracker once
//! the previous run's spool has reached MongoDB.

use std::time::{Duration, Instant};

use super::App;
use crate::telemetry::cause_chain;

impl App {
    /// Loads session checkpoints left by the previous run, once the spool from
    /// that run has reached MongoDB (so they are current). Waits at most
    /// `timeout`; if MongoDB is down, members in voice are tracked from the
    /// moment they are seen, and the log says so.
    pub async fn restore_sessions(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            let status = self.writer.status();
            if status.backlog == 0 {
                break;
            }
            // Give an unreachable MongoDB a moment, not the whole timeout.
            let waited = started.elapsed();
            if waited >= timeout || (!status.db_ok && waited >= Duration::from_secs(2)) {
                tracing::warn!(backlog = status.backlog, consequence = "sessions from before the restart are not resumed; members in voice are tracked from now", "the previous run's spool is not applied yet (MongoDB unreachable?)");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, self.store.open_sessions()).await {
            Ok(Ok(checkpoints)) => {
                tracing::info!(
                    sessions = checkpoints.len(),
                    "loaded session checkpoints from before the restart"
                );
                self.tracker.lock().await.restore(checkpoints);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %cause_chain(&e), consequence = "members in voice are tracked from now", "cannot load session checkpoints");
            }
            Err(_) => tracing::warn!(
                consequence = "members in voice are tracked from now",
                "loading session checkpoints timed out"
            ),
        }
    }
}
