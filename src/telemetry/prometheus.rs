//! Metrics: the names this crate records with the `metrics` facade, and the
//! Prometheus recorder `/metrics` renders.
//!
//! The recorder is global to the process (the facade has one slot), so it
//! is installed once, by the first [`Application`](crate::startup::Application)
//! that serves HTTP; later ones (tests run many in one process) share it.
//! Without it every record is a no-op. Counters are recorded where things
//! happen (the Discord adapter, the app, the writer); gauges of current
//! state (spool, lease) are sampled when `/metrics` is rendered.

use std::sync::OnceLock;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Gateway events received, by `kind` (serenity's event name).
pub const EVENTS_RECEIVED: &str = "study_tracker_events_received_total";
/// Increments made durable in the spool (a folded message op counts each message).
pub const OPS_SPOOLED: &str = "study_tracker_ops_spooled_total";
/// Increments MongoDB acknowledged (spool replays included).
pub const OPS_APPLIED: &str = "study_tracker_ops_applied_total";
/// Bytes of the spool file.
pub const SPOOL_BYTES: &str = "study_tracker_spool_bytes";
/// Ops waiting to reach MongoDB (spooled or about to be).
pub const SPOOL_BACKLOG: &str = "study_tracker_spool_backlog_ops";
/// Age of the oldest spool record MongoDB has not acknowledged.
pub const SPOOL_OLDEST_UNAPPLIED: &str = "study_tracker_spool_oldest_unapplied_seconds";
/// `update` commands sent by the writer.
pub const WRITE_ROUND_TRIPS: &str = "study_tracker_write_round_trips_total";
/// Time to apply one batch (all its round trips), per successful attempt.
pub const WRITE_DURATION: &str = "study_tracker_write_duration_seconds";
/// Failed write attempts (each is retried, after a backoff).
pub const WRITE_RETRIES: &str = "study_tracker_write_retries_total";
/// Ops set aside in the dead-letter file since start.
pub const DEAD_LETTERS: &str = "study_tracker_dead_letters_total";
/// Ops in the dead-letter file, waiting for an operator.
pub const DEAD_LETTERS_WAITING: &str = "study_tracker_dead_letters_waiting";
/// Ops counted under a lease this instance lost, set aside unwritten.
pub const OPS_FENCED: &str = "study_tracker_ops_fenced_total";
/// 1 while writes are allowed (0: a lease holder's validity lapsed, or standby).
pub const WRITES_ALLOWED: &str = "study_tracker_writes_allowed";
/// Voice sessions the tracker holds open.
pub const OPEN_SESSIONS: &str = "study_tracker_open_sessions";
/// 1 for this instance's lease `state` (`holder` or `standby`), 0 for the other.
pub const LEASE_STATE: &str = "study_tracker_lease_state";
/// The lease's epoch (fencing number).
pub const LEASE_EPOCH: &str = "study_tracker_lease_epoch";
/// Latency of the shard's last acknowledged heartbeat, by `shard`.
pub const SHARD_LATENCY: &str = "study_tracker_shard_latency_seconds";

/// Buckets of [`WRITE_DURATION`]: a local write takes milliseconds, a
/// distant majority write tens, a struggling server seconds.
const WRITE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder: installed on first call, shared after.
/// If another recorder was installed first (not by this crate), the handle
/// renders nothing, and the log says so.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Only an empty bucket list is refused, and this one is not; were
            // it refused, the latency would render as a summary.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(WRITE_DURATION.to_owned()), WRITE_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    consequence = "/metrics stays empty",
                    "another metrics recorder is installed"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(EVENTS_RECEIVED, "Gateway events received, by kind.");
    describe_counter!(OPS_SPOOLED, "Increments made durable in the spool.");
    describe_counter!(
        OPS_APPLIED,
        "Increments MongoDB acknowledged (replays included)."
    );
    describe_gauge!(SPOOL_BYTES, Unit::Bytes, "Size of the spool file.");
    describe_gauge!(SPOOL_BACKLOG, "Increments not yet applied to MongoDB.");
    describe_gauge!(
        SPOOL_OLDEST_UNAPPLIED,
        Unit::Seconds,
        "Age of the oldest spool record not yet applied (0: none)."
    );
    describe_counter!(WRITE_ROUND_TRIPS, "Update commands sent to MongoDB.");
    describe_histogram!(
        WRITE_DURATION,
        Unit::Seconds,
        "Time to apply one batch, all its round trips."
    );
    describe_counter!(WRITE_RETRIES, "Failed write attempts (all retried).");
    describe_counter!(
        DEAD_LETTERS,
        "Increments set aside as dead letters since start."
    );
    describe_gauge!(DEAD_LETTERS_WAITING, "Increments in the dead-letter file.");
    describe_counter!(
        OPS_FENCED,
        "Increments counted under a lost lease, set aside unwritten (fenced.log)."
    );
    describe_gauge!(
        WRITES_ALLOWED,
        "1 while this instance may write (0: lease validity lapsed, or standby)."
    );
    describe_gauge!(OPEN_SESSIONS, "Voice sessions open in the tracker.");
    describe_gauge!(LEASE_STATE, "1 for this instance's lease state.");
    describe_gauge!(LEASE_EPOCH, "Epoch of the lease this instance holds.");
    describe_gauge!(
        SHARD_LATENCY,
        Unit::Seconds,
        "Latency of the shard's last acknowledged heartbeat."
    );
}
