//! When the applier may write, and which ops it must never write: the
//! writer's side of the lease (ARCHITECTURE.md, "The lease").
//!
//! - **Validity.** A lease holder writes only while its lease is valid by
//!   its own clock (renewed less than two thirds of the TTL ago). A holder
//!   that was frozen (SIGSTOP, a stalled VM) or cut off from MongoDB wakes
//!   up with its validity lapsed, and writes nothing until a renewal says
//!   the lease is still its own. The check runs before every attempt, so a
//!   retry loop that outlives the lease stops too.
//! - **Fence.** Ops stamped with an epoch below the fence were counted
//!   under a lease this instance lost: another holder has since resumed
//!   from what MongoDB held, so writing them could count twice. They are
//!   set aside in `SPOOL_DIR/fenced.log` (never deleted, never applied),
//!   unless their batch had written its resume points: then it is finished
//!   (`durable/retry.rs`; ARCHITECTURE.md, "Finishing a started batch").
//!
//! Without a lease the gate is always open and nothing is fenced.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How often a closed gate looks again (besides being woken).
const RECHECK: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub(super) struct Gate {
    /// `None`: writes always allowed (no lease). `Some(t)`: allowed before `t`.
    until: Mutex<Option<Instant>>,
    changed: Notify,
    /// Ops with an epoch below this (and above 0) are never written.
    fence: AtomicU64,
    /// Ops stamped without a lease (epoch 0) are never written: they were
    /// counted provisionally and the lease turned out not to be free.
    fence_unleased: AtomicBool,
    /// Whether the pause was logged (once per pause).
    paused: AtomicBool,
}

impl Gate {
    pub(super) fn new(start_closed: bool) -> Gate {
        Gate {
            until: Mutex::new(start_closed.then(Instant::now)),
            ..Gate::default()
        }
    }

    fn until(&self) -> Option<Instant> {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Allows writes until `until` (`None`: for good).
    pub(super) fn allow_until(&self, until: Option<Instant>) {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
        self.changed.notify_waiters();
    }

    pub(super) fn is_open(&self) -> bool {
        self.until().is_none_or(|t| Instant::now() < t)
    }

    /// Waits until writes are allowed.
    pub(super) async fn wait_open(&self) {
        loop {
            let changed = self.changed.notified();
            if self.is_open() {
                if self.paused.swap(false, Ordering::Relaxed) {
                    tracing::info!("the lease is valid again; writes resume");
                }
                return;
            }
            if !self.paused.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    consequence = "increments wait in the spool until the lease is renewed (or are set aside if it was lost)",
                    "this instance's lease is not known valid; writes paused"
                );
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Returns once ops stamped with `epoch` are fenced (never, if they
    /// stay allowed): a batch waiting for the gate is abandoned then.
    pub(super) async fn until_fenced(&self, epoch: u64) {
        loop {
            let changed = self.changed.notified();
            if self.fenced(epoch) {
                return;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Never writes ops with an epoch below `epoch` (only ever raised).
    pub(super) fn fence_below(&self, epoch: u64) {
        self.fence.fetch_max(epoch, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Never writes ops stamped with epoch 0 (see `fence_unleased`).
    pub(super) fn fence_unleased(&self) {
        self.fence_unleased.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether an op stamped with `epoch` must never be written.
    pub(super) fn fenced(&self, epoch: u64) -> bool {
        if epoch == 0 {
            self.fence_unleased.load(Ordering::SeqCst)
        } else {
            epoch < self.fence.load(Ordering::SeqCst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lapsed_gate_waits_for_a_renewal() {
        let gate = std::sync::Arc::new(Gate::new(true));
        assert!(!gate.is_open());
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a closed gate lets nothing through");
        gate.allow_until(Some(Instant::now() + Duration::from_secs(60)));
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("a renewal opens the gate")
            .unwrap();
        gate.allow_until(Some(Instant::now()));
        assert!(!gate.is_open(), "validity lapses with time");
        gate.allow_until(None);
        assert!(gate.is_open());
    }

    #[test]
    fn the_fence_only_rises_and_spares_unleased_ops_unless_told() {
        let gate = Gate::new(false);
        assert!(!gate.fenced(0) && !gate.fenced(1));
        gate.fence_below(5);
        gate.fence_below(3);
        assert!(gate.fenced(4) && !gate.fenced(5) && !gate.fenced(6));
        assert!(!gate.fenced(0), "no lease: never fenced by an epoch");
        gate.fence_unleased();
        assert!(gate.fenced(0));
    }
}
