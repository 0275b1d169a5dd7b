//! The spooler task: takes what waits in the outbox and appends it to the
//! spool with one fsync per group.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::op::Op;
use super::outbox::Outbox;
use super::spool::{Spool, SpoolError};
use super::writer::{now_micros, Shared};
use crate::telemetry::{cause_chain, prometheus as metric};

pub(super) async fn run_spooler(
    outbox: Arc<Outbox>,
    spool: Arc<Spool>,
    shared: Arc<Shared>,
    batch: usize,
    stop: CancellationToken,
) {
    loop {
        let (epoch, mut ops) = outbox.take(batch);
        if ops.is_empty() {
            if stop.is_cancelled() {
                // Everything submitted before shutdown is on disk.
                return;
            }
            tokio::select! {
                biased;
                () = shared.wake_spooler.notified() => {}
                () = stop.cancelled() => {}
            }
            continue;
        }
        shared.appending.store(ops.len() as u64, Ordering::Release);
        append_until_durable(&spool, &shared, epoch, &mut ops, &stop).await;
        shared.appending.store(0, Ordering::Release);
    }
}

/// Appends `buf` to the spool, waiting (loudly) while the spool is full or the
/// disk fails: the ops stay in memory, and new ones fold in the outbox. A
/// group too large for the room left is appended in parts, so one larger
/// than the whole spool (a takeover's recount on a small `SPOOL_MAX_BYTES`)
/// goes in as the applier frees room instead of waiting for good. Once
/// `stop` fires (shutdown), a full spool no longer holds them back: they go
/// past `SPOOL_MAX_BYTES` rather than die with the process.
async fn append_until_durable(
    spool: &Arc<Spool>,
    shared: &Arc<Shared>,
    epoch: u64,
    buf: &mut Vec<Op>,
    stop: &CancellationToken,
) {
    let mut ops = std::mem::take(buf);
    let mut take = ops.len();
    let mut last_log: Option<Instant> = None;
    while !ops.is_empty() {
        let s = spool.clone();
        let part: Vec<Op> = ops[..take].to_vec();
        let now = now_micros();
        let stopping = stop.is_cancelled();
        let result = tokio::task::spawn_blocking(move || {
            // The epoch they were submitted under, not the current one.
            s.append_stamped(epoch, &part, now, stopping)
        })
        .await
        .unwrap_or_else(|e| Err(SpoolError::Io(std::io::Error::other(e))));
        match result {
            Ok(()) => {
                let events = ops.drain(..take).map(|o| o.events()).sum();
                shared.spooled.fetch_add(events, Ordering::Relaxed);
                metrics::counter!(metric::OPS_SPOOLED).increment(events);
                shared.wake_applier.notify_one();
                take = ops.len();
            }
            Err(SpoolError::Full { .. }) if take > 1 => take /= 2,
            Err(e) => {
                if last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(error = %cause_chain(&e), waiting_ops = ops.len(), consequence = "increments wait in memory, folded per document", "cannot write to the spool");
                    last_log = Some(Instant::now());
                }
                shared.wake_applier.notify_one();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    () = stop.cancelled(), if !stopping => {}
                }
                take = ops.len();
            }
        }
    }
}
