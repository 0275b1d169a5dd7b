//! The sequence high-water mark the writer keeps in MongoDB.

use std::time::{Duration, Instant};

use crate::store::Store;
use crate::telemetry::cause_chain;

/// The highest sequence number sent to MongoDB, saved there before the
/// batch that carries it (at most once a second, and when the writer
/// stops), so a new host whose spool is empty starts above it. Rate-limited,
/// it can lag the records sent by up to a second of sequence numbers (they
/// are microseconds of wall time).
#[derive(Debug, Default)]
pub(super) struct HighWater {
    applied: u64,
    saved: u64,
    last_try: Option<Instant>,
}

impl HighWater {
    pub(super) fn applied(&mut self, seq: u64) {
        self.applied = self.applied.max(seq);
    }

    pub(super) async fn maybe_flush(&mut self, store: &Store) {
        if self
            .last_try
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.flush(store, Duration::from_secs(2)).await;
        }
    }

    pub(super) async fn flush(&mut self, store: &Store, budget: Duration) {
        if self.applied <= self.saved {
            return;
        }
        self.last_try = Some(Instant::now());
        match tokio::time::timeout(budget, store.raise_seq_high_water(self.applied)).await {
            Ok(Ok(())) => self.saved = self.applied,
            Ok(Err(e)) => {
                tracing::debug!(error = %cause_chain(&e), "cannot save the sequence high-water mark; will retry");
            }
            Err(_) => tracing::debug!("saving the sequence high-water mark timed out; will retry"),
        }
    }
}
