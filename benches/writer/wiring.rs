//! The system under test: the bot as `main` builds it
//! ([`study_tracker::startup::Application`], through the test suite's
//! `spawn_app`), headless, and what the benchmarks need to drive it.
//!
//! Its surface, all the rest of the benchmark uses: [`start_bot`], [`Bot`]'s
//! `app` and `writer` and [`Bot::stop`], [`wait_idle_fine`], [`db_name`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use study_tracker::app::App;
use study_tracker::durable::writer::{Writer, WriterOptions};

use crate::helpers::TZ;

#[allow(dead_code)]
#[path = "../../tests/it/support/app.rs"]
mod test_app;

const SPOOL_MAX: u64 = 4 << 30;

/// A running bot: `app` takes the events, `writer` reports what was persisted.
pub struct Bot {
    pub app: Arc<App>,
    pub writer: Writer,
    running: test_app::TestApp,
    _spool_dir: tempfile::TempDir,
}

/// Starts a bot on database `db_name` at `uri` (its spool in a fresh temp
/// dir); `apply_batch` overrides `WriterOptions::apply_batch`. Waits (5 s at
/// most) for the store preparation (it sizes update commands for the
/// server) so that the measurements start on a prepared store.
pub async fn start_bot(uri: &str, db_name: &str, apply_batch: Option<usize>) -> Bot {
    let dir = tempfile::Builder::new()
        .prefix("study-tracker-bench-spool-")
        .tempdir()
        .expect("spool dir");
    let mut settings = test_app::test_settings(uri, db_name, dir.path());
    settings.tracking.timezone = TZ;
    settings.spool.max_bytes = SPOOL_MAX;
    settings.spool.shutdown_timeout_secs = 5;
    // The benchmarks flush by hand; the bot's own flusher stays out of the way.
    settings.tracking.flush_interval_secs = 86_400;
    settings.tracking.resume_grace_secs = 86_400;
    // One instance, no lease: the instant-ack stub answers no lease
    // (`findAndModify`), and the figures are the write path's. The lease's
    // write gate is one lock-free check per attempt.
    settings.tracking.lease_ttl_secs = 0;
    let mut opts = WriterOptions::default();
    if let Some(n) = apply_batch {
        opts.apply_batch = n;
    }
    let running = test_app::spawn_app_with(settings, opts).await;
    let mut store_ready = running.store_ready.clone();
    // The instant-ack stub answers no reads, so its test write never
    // succeeds: its server detection (which sizes update commands) comes
    // first and is done by then.
    let ready = tokio::time::timeout(Duration::from_secs(5), store_ready.wait_for(|r| *r)).await;
    if !matches!(ready, Ok(Ok(_))) {
        eprintln!("note: store preparation did not finish within 5 s (expected with the stub)");
    }
    Bot {
        app: running.app.clone(),
        writer: running.app.writer().clone(),
        running,
        _spool_dir: dir,
    }
}

impl Bot {
    /// Shuts the bot down gracefully (5 s drain budget), warning if ops are
    /// left in the spool.
    pub async fn stop(self) {
        self.running.stop().await;
        let left = self.writer.status().backlog;
        if left > 0 {
            eprintln!("warning: {left} ops left in the spool at shutdown");
        }
    }
}

/// Waits (polling every millisecond) until the writer's backlog is empty.
pub async fn wait_idle_fine(writer: &Writer, budget: Duration) -> bool {
    let deadline = Instant::now() + budget;
    loop {
        if writer.status().backlog == 0 {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A fresh database name: `bench_<tag>_<random hex>`.
pub fn db_name(tag: &str) -> String {
    format!("bench_{tag}_{:08x}", rand::random::<u32>())
}
