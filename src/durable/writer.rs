//! The durable, idempotent, batching writer.
//!
//! ```text
//! submit(op) ──outbox (folds)──▶ spooler ──append+fsync──▶ spool ──read batch──▶ applier ──▶ MongoDB
//! ```
//! - **Submitting never waits.** Ops go to an outbox that folds an op into a
//!   waiting one when they change the same thing (see `outbox`), so while
//!   the spool is full memory grows with the documents touched, not with the
//!   events, and no caller (the tracker lock, a shutdown credit) waits for
//!   MongoDB.
//! - The **spooler** takes what waits in the outbox (up to
//!   [`WriterOptions::spool_batch`]), appends it to the spool with one fsync
//!   and wakes the applier. An op is acknowledged only once it is on disk.
//! - The **applier** reads up to [`WriterOptions::apply_batch`] records from the
//!   spool, merges them per document and sends them in one `update` command
//!   per collection ([`Store::apply`]); while that write is in flight, new ops
//!   pile up in the spool and go together in the next round trip (group
//!   commit). A batch is retried, unchanged, until it is applied: ops are
//!   idempotent, so a retry after an ambiguous failure cannot count twice.
//! - Memory is bounded by the documents touched (the outbox folds), the
//!   spool by `SPOOL_MAX_BYTES`, and batches have a fixed size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::applier::run_applier;
use super::dead_letters::DeadLetters;
use super::gate::Gate;
use super::op::Op;
use super::outbox::Outbox;
use super::retry::RetryPolicy;
use super::spool::Spool;
use super::spooler::run_spooler;
use crate::core::{MemberKey, Millis};
use crate::store::Store;
use crate::telemetry::cause_chain;

mod wait;

/// Tuning knobs; the defaults suit production.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Most ops appended with one fsync.
    pub spool_batch: usize,
    /// Most ops sent in one apply (one round trip per collection).
    pub apply_batch: usize,
    /// Retry policy for one apply.
    pub retry: RetryPolicy,
    /// Writes wait for [`Writer::allow_writes_until`] (a lease is in use:
    /// nothing is written, not even the previous run's spool, before this
    /// instance holds it).
    pub writes_start_paused: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            spool_batch: 8_192,
            apply_batch: 4_000,
            retry: RetryPolicy::default(),
            writes_start_paused: false,
        }
    }
}

/// Counters shared between the writer's tasks and its handles.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Ops handed to `submit` since start.
    pub(super) submitted: AtomicU64,
    /// Ops durable in the spool since start.
    pub(super) spooled: AtomicU64,
    /// Events applied to MongoDB since start (including spool replays; a
    /// folded message op counts each message).
    pub(super) applied: AtomicU64,
    /// Round trips (`update` commands).
    pub(super) commands: AtomicU64,
    /// Ops MongoDB already had newer writes for on their first send.
    pub(super) seq_anomalies: AtomicU64,
    /// Letters in the dead-letter file (at start, plus those set aside since).
    pub(super) dead_letters: AtomicU64,
    /// Ops of a lost lease epoch set aside in `fenced.log` since start.
    pub(super) fenced: AtomicU64,
    /// When writes are allowed, and the fence (see `gate`).
    pub(super) gate: Gate,
    /// False from the first failed attempt until the next success.
    pub(super) db_ok: AtomicBool,
    pub(super) wake_applier: Notify,
    pub(super) wake_spooler: Notify,
    /// Ops the spooler took from the outbox and is appending.
    pub(super) appending: AtomicU64,
    /// Set at shutdown: later submits are refused, loudly.
    pub(super) closed: AtomicBool,
    /// Sequence number (≈ append time in µs) of the first record of the
    /// batch being applied; 0 while the spool is applied to its end.
    pub(super) oldest_unapplied_seq: AtomicU64,
}

/// Handle used to submit ops. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    outbox: Arc<Outbox>,
    dead: DeadLetters,
    shared: Arc<Shared>,
    spool: Arc<Spool>,
}

/// Health of the write path, for logs and `/ud`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterStatus {
    pub db_ok: bool,
    /// Ops in the spool not yet applied.
    pub backlog: u64,
    pub spooled: u64,
    pub applied: u64,
    pub commands: u64,
    /// Ops this process appended that MongoDB had newer writes for (see
    /// `ApplyReport::seq_anomalies`); they were not applied.
    pub seq_anomalies: u64,
    /// Ops in the dead-letter file, waiting for an operator.
    pub dead_letters: u64,
    /// Ops of a lease epoch this instance lost, set aside unwritten.
    pub fenced: u64,
    /// Whether writes are allowed now (false while a lease holder's
    /// validity has lapsed, and on a standby).
    pub writes_allowed: bool,
    /// Size of the spool file.
    pub spool_bytes: u64,
    /// Sequence number of the oldest record not yet applied, if any: its
    /// append time in µs (unless the sequence floor was raised above the
    /// clock, when it is later than that).
    pub oldest_unapplied_seq: Option<u64>,
}

impl WriterStatus {
    /// How long the oldest record not yet applied has waited, at `now_micros`.
    #[must_use]
    pub fn oldest_unapplied_age(&self, now_micros: u64) -> Duration {
        self.oldest_unapplied_seq.map_or(Duration::ZERO, |seq| {
            Duration::from_micros(now_micros.saturating_sub(seq))
        })
    }
}

impl Writer {
    /// Queues ops for the spool. Never waits (see the module docs).
    pub fn submit(&self, ops: impl IntoIterator<Item = Op>) {
        if self.shared.closed.load(Ordering::Acquire) {
            tracing::error!(
                "writer is shut down; an increment submitted after shutdown was dropped"
            );
            return;
        }
        for op in ops {
            self.shared.submitted.fetch_add(1, Ordering::Relaxed);
            self.outbox.push(op);
        }
        self.shared.wake_spooler.notify_one();
    }

    /// Current health and counters.
    #[must_use]
    pub fn status(&self) -> WriterStatus {
        let usage = self.spool.usage();
        WriterStatus {
            db_ok: self.shared.db_ok.load(Ordering::Relaxed),
            backlog: usage.pending_records + self.unspooled(),
            spooled: self.shared.spooled.load(Ordering::Relaxed),
            applied: self.shared.applied.load(Ordering::Relaxed),
            commands: self.shared.commands.load(Ordering::Relaxed),
            seq_anomalies: self.shared.seq_anomalies.load(Ordering::Relaxed),
            dead_letters: self.shared.dead_letters.load(Ordering::Relaxed),
            fenced: self.shared.fenced.load(Ordering::Relaxed),
            writes_allowed: self.shared.gate.is_open(),
            spool_bytes: usage.bytes,
            oldest_unapplied_seq: Some(self.shared.oldest_unapplied_seq.load(Ordering::Relaxed))
                .filter(|seq| *seq > 0),
        }
    }

    /// Per member, the end of the latest voice credit its totals refused
    /// (set aside as a dead letter): the stored total's end does not show
    /// it, but a restart must not credit that stretch again.
    #[must_use]
    pub fn dead_letter_credits(&self) -> HashMap<MemberKey, Millis> {
        let mut out: HashMap<MemberKey, Millis> = HashMap::new();
        for l in self.dead.read().unwrap_or_default() {
            if let (Op::Voice { to, .. }, "member_stats") = (&l.op, l.collection.as_str()) {
                let e = out.entry(l.op.member()).or_insert(*to);
                *e = (*e).max(*to);
            }
        }
        out
    }

    /// Stamps ops submitted from now on with the lease epoch (fencing).
    pub fn set_epoch(&self, epoch: u64) {
        self.outbox.set_epoch(epoch);
        self.spool.set_epoch(epoch);
    }

    /// Allows writes until `until` (the lease's local validity; `None`: for
    /// good). Writes pause once it passes, until the next call.
    pub fn allow_writes_until(&self, until: Option<Instant>) {
        self.shared.gate.allow_until(until);
        self.shared.wake_applier.notify_one();
    }

    /// Never writes ops stamped without a lease (epoch 0): counted while
    /// MongoDB could not say who holds the lease, which was not free.
    pub fn fence_unleased(&self) {
        self.shared.gate.fence_unleased();
        self.shared.wake_applier.notify_one();
    }

    /// Never writes ops stamped with an epoch below `epoch`: they were
    /// counted under a lease this instance lost (they go to `fenced.log`).
    pub fn fence_below(&self, epoch: u64) {
        self.shared.gate.fence_below(epoch);
        self.shared.wake_applier.notify_one();
    }

    /// The spool directory's id (see [`Spool::instance_id`]).
    #[must_use]
    pub fn instance_id(&self) -> &str {
        self.spool.instance_id()
    }

    /// See [`Spool::held_epoch`].
    #[must_use]
    pub fn held_epoch(&self) -> Option<u64> {
        self.spool.held_epoch()
    }

    /// See [`Spool::save_held_epoch`]; call before stamping `epoch`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_held_epoch(&self, epoch: u64) -> std::io::Result<()> {
        self.spool.save_held_epoch(epoch)
    }

    /// The highest sequence number issued so far (the handoff point).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.spool.last_seq()
    }

    /// Raises the floor of sequence numbers (see [`Spool::raise_floor`]).
    pub fn raise_seq_floor(&self, seq: u64) {
        self.spool.raise_floor(seq);
    }
}

/// The writer's background tasks; [`WriterTasks::shutdown`] stops them.
#[derive(Debug)]
pub struct WriterTasks {
    spooler: JoinHandle<()>,
    applier: JoinHandle<()>,
    stop_intake: CancellationToken,
    stop_applier: CancellationToken,
    writer: Writer,
}

/// Starts the spooler and the applier. Records already in the spool (from a
/// previous run) are applied first.
pub fn start(store: Store, spool: Spool, opts: WriterOptions) -> (Writer, WriterTasks) {
    let outbox = Arc::new(Outbox::default());
    let shared = Arc::new(Shared {
        db_ok: AtomicBool::new(true),
        gate: Gate::new(opts.writes_start_paused),
        ..Shared::default()
    });
    let spool = Arc::new(spool);
    let dead = DeadLetters::in_dir(spool.path().parent().unwrap_or(std::path::Path::new(".")));
    shared
        .dead_letters
        .store(dead.waiting_at_start(), Ordering::Relaxed);
    let pending = spool.usage();
    if pending.pending_records > 0 {
        tracing::info!(
            records = pending.pending_records,
            bytes = pending.bytes,
            path = %spool.path().display(),
            "spool holds increments from a previous run; applying them first"
        );
    }
    let stop_intake = CancellationToken::new();
    let stop_applier = CancellationToken::new();
    let spooler = tokio::spawn(run_spooler(
        outbox.clone(),
        spool.clone(),
        shared.clone(),
        opts.spool_batch,
        stop_intake.clone(),
    ));
    let applier = tokio::spawn(run_applier(
        outbox.clone(),
        store,
        spool.clone(),
        dead.clone(),
        shared.clone(),
        opts,
        stop_applier.clone(),
    ));
    let writer = Writer {
        outbox,
        dead: dead.clone(),
        shared,
        spool,
    };
    (
        writer.clone(),
        WriterTasks {
            spooler,
            applier,
            stop_intake,
            stop_applier,
            writer,
        },
    )
}

/// What shutdown achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Ops left in the spool for the next start (0: everything reached MongoDB).
    pub left_in_spool: u64,
}

impl WriterTasks {
    /// The spooler and applier tasks, by name, to see whether they still run.
    #[must_use]
    pub fn loops(&self) -> [(&'static str, AbortHandle); 2] {
        [
            ("spooler", self.spooler.abort_handle()),
            ("applier", self.applier.abort_handle()),
        ]
    }

    /// Stops intake, makes every queued op durable in the spool, then gives the
    /// applier up to `timeout` to get the spool to MongoDB. Whatever is left
    /// stays in the spool for the next start.
    pub async fn shutdown(self, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now() + timeout;
        self.writer.shared.closed.store(true, Ordering::Release);
        self.stop_intake.cancel();
        let mut spooler = self.spooler;
        match tokio::time::timeout(timeout, &mut spooler).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %cause_chain(&e), "spooler task failed"),
            Err(_) => {
                spooler.abort();
                tracing::error!(
                    consequence = "the increments still queued are lost",
                    "could not spool every queued increment before shutdown (spool full?)"
                );
            }
        }
        // The applier's stop (up to 0.8 s) comes out of `timeout` too.
        let applier_stop = Duration::from_secs(1).min(timeout / 4);
        let left = || deadline.saturating_duration_since(Instant::now());
        let drained = self
            .writer
            .wait_idle(left().saturating_sub(applier_stop))
            .await;
        self.stop_applier.cancel();
        let mut applier = self.applier;
        let stopped = tokio::time::timeout(applier_stop.min(left()), &mut applier).await;
        if stopped.is_err() {
            applier.abort();
        }
        let left = self.writer.spool.usage().pending_records;
        if !drained || left > 0 {
            tracing::warn!(
                records = left,
                path = %self.writer.spool.path().display(),
                "MongoDB did not take everything before shutdown; the spool keeps it for the next start"
            );
        }
        ShutdownReport {
            left_in_spool: left,
        }
    }
}

pub(super) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
