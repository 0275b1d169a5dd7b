//! Results.

use std::time::Duration;

use crate::helpers::Lat;

#[derive(Default)]
pub struct IngestRow {
    pub writer_label: String,
    pub delay_ms: u64,
    pub members: u64,
    pub base_n: usize,
    pub base_rate: f64,
    pub base_lat: Lat,
    pub writer_n: usize,
    pub writer_acked: usize,
    pub writer_window: Duration,
    pub writer_rate: f64,
    pub writer_lat: Lat,
    pub writer_rt: u64,
    /// Statements in the writer's `update` commands during the burst.
    pub writer_statements: u64,
    pub writer_submit_lat: Lat,
    pub sample_err: Duration,
    pub ud: Lat,
    pub ud_idle: Lat,
    pub paced: bool,
    pub paced_base_n: usize,
    pub paced_base_acked: usize,
    pub paced_base: Lat,
    pub paced_writer_n: usize,
    pub paced_writer_acked: usize,
    pub paced_writer: Lat,
    pub paced_writer_rt: u64,
}

pub struct FlushRow {
    pub label: &'static str,
    pub delay_ms: u64,
    pub ops: usize,
    pub lock_held: Duration,
    pub durable: Option<Duration>,
    pub total: Duration,
    pub done: bool,
    pub applied: u64,
    pub updates: u64,
    pub commands: u64,
    pub all_requests: u64,
    pub statements: Option<u64>,
}

pub struct FlushScenario {
    pub server: String,
    pub sessions: usize,
    pub setup: Duration,
    pub setup_ok: bool,
    pub setup_ops: u64,
    pub setup_applied: u64,
    pub rows: Vec<FlushRow>,
    pub hwm_kb: Option<u64>,
    pub rss_kb: Option<u64>,
    pub heap_peak: usize,
    pub heap_now: usize,
    pub hwm_reset: bool,
}

pub struct MemRow {
    pub sessions: usize,
    pub bytes: usize,
    pub capacity_note: String,
}
