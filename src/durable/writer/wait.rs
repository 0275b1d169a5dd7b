//! Waiting for the writer: until what was submitted is in the spool, or
//! applied (shutdown, erasures).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Writer;

impl Writer {
    /// Ops submitted but not yet durable: waiting in the outbox (after
    /// folding) or being appended.
    pub(super) fn unspooled(&self) -> u64 {
        self.outbox.len() as u64 + self.shared.appending.load(Ordering::Acquire)
    }

    /// Waits until every op submitted before this call has its sequence
    /// number (is in the spool), or `timeout`. Returns whether it did.
    pub async fn wait_spooled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.unspooled() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Waits until every op submitted before this call is applied, or `timeout`.
    /// Returns whether the backlog reached zero.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.status().backlog == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
