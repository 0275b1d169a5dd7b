//! Retries of one batch: exponential backoff with full jitter for errors that
//! can succeed on retry; a batch never leaves the spool until it is applied.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::op::Sequenced;
use super::writer::Shared;
use crate::store::{ApplyProgress, ApplyReport, FailedWrite, Store, StoreError, WriteGuard};
use crate::telemetry::{cause_chain, prometheus as metric};

/// Exponential backoff with full jitter.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
    /// Pause after a final failure before the batch is tried again (it stays
    /// in the spool meanwhile).
    pub after_final_failure: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
            after_final_failure: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): random in
    /// `[d/2, d]` with `d = min(max, base * 2^(attempt-1))`.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let d = exp.min(self.max);
        let half = d / 2;
        half + d.saturating_sub(half).mul_f64(rand::random::<f64>())
    }
}

/// Applies one batch until it succeeds. Each failed attempt is logged; after
/// `policy.attempts` the final failure is logged and, since the batch is safe
/// in the spool, the cycle starts again after a pause.
///
/// `None`: the batch's epoch was fenced before its resume points
/// (`member_stats`) were all written; nothing more of it was sent, and the
/// applier sets it aside. Once they are written the batch is *started*: it
/// is finished whatever the gate says (ARCHITECTURE.md, "The lease");
/// `started`: it is known to be (its resume points were read back).
#[tracing::instrument(skip_all, fields(ops = records.len(), first_seq = records.first().map(|r| r.seq)))]
pub(super) async fn apply_with_retry(
    store: &Store,
    records: &[Sequenced],
    shared: &Arc<Shared>,
    policy: RetryPolicy,
    fresh_from: u64,
    excluded: &HashSet<(u64, String)>,
    started: bool,
) -> Option<(ApplyReport, Vec<FailedWrite>)> {
    let ops = records.len();
    if ops == 0 {
        // All of it fenced off (`set_aside_fenced`): nothing to send.
        return Some((ApplyReport::default(), Vec::new()));
    }
    // Steps of this batch already applied: a retry resumes after them.
    let mut progress = ApplyProgress::fresh_from(fresh_from);
    progress.excluded.clone_from(excluded);
    // The gate is asked before every command of the batch, not only before
    // each attempt: a holder frozen between two commands (SIGSTOP, a
    // stalled VM) wakes with its validity lapsed and sends nothing more,
    // unless the batch has started (then the store waives the guard).
    let epoch = records.first().map_or(0, |r| r.epoch);
    let gate = shared.clone();
    progress.may_write = Some(WriteGuard::new(move || {
        gate.gate.is_open() && !gate.gate.fenced(epoch)
    }));
    progress.started.store(started, Ordering::SeqCst);
    let started = progress.started.clone();
    let started = move || started.load(Ordering::SeqCst);
    loop {
        let mut attempt = 0;
        let error = loop {
            attempt += 1;
            // A lease holder whose validity lapsed (frozen, cut off) writes
            // nothing until a renewal; checked before every attempt. Fenced
            // meanwhile: abandoned (not once started).
            if !started() {
                tokio::select! {
                    biased;
                    () = shared.gate.until_fenced(epoch) => return None,
                    () = shared.gate.wait_open() => {}
                }
            }
            let started_at = Instant::now();
            match store.apply_resumable(records, &mut progress).await {
                Ok(report) => {
                    metrics::histogram!(metric::WRITE_DURATION).record(started_at.elapsed());
                    if !shared.db_ok.swap(true, Ordering::Relaxed) {
                        tracing::info!("MongoDB is reachable again; draining the spool");
                    }
                    tracing::debug!(
                        ops,
                        applied = report.applied,
                        replays = report.replays,
                        round_trips = report.commands,
                        ms = started_at.elapsed().as_millis(),
                        "batch written"
                    );
                    return Some((report, std::mem::take(&mut progress.failed)));
                }
                Err(_) if !started() && (!shared.gate.is_open() || shared.gate.fenced(epoch)) => {
                    // Stopped by the gate (or failed as it closed): wait
                    // for it again; not a failure of MongoDB.
                    attempt -= 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    shared.db_ok.store(false, Ordering::Relaxed);
                    metrics::counter!(metric::WRITE_RETRIES).increment(1);
                    if !e.is_transient() || attempt >= policy.attempts {
                        break e;
                    }
                    let delay = policy.backoff(attempt);
                    tracing::warn!(attempt, of = policy.attempts, ops, retry_in_ms = delay.as_millis(), error = %cause_chain(&e), "MongoDB write failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let kind = if matches!(error, StoreError::Transient(_)) {
            "transient"
        } else {
            "permanent"
        };
        tracing::error!(
            attempts = attempt,
            ops,
            kind,
            error = %cause_chain(&error),
            retry_in_secs = policy.after_final_failure.as_secs(),
            "MongoDB write failed for good this round; the increments stay in the spool and will be retried"
        );
        tokio::time::sleep(policy.after_final_failure).await;
    }
}
