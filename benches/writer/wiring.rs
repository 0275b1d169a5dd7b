//! The system under test: the bot assembled as it runs (store, spool, writer,
//! `App`), and what the benchmarks need to drive it.
//!
//! This file holds only that assembly, so that it can be replaced as a whole.
//! Its surface, all the rest of the benchmark uses: [`start_bot`], [`Bot`]'s
//! `app` and `writer` and [`Bot::stop`], [`wait_idle_fine`], [`db_name`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use study_tracker::app::App;
use study_tracker::spool::Spool;
use study_tracker::store::Store;
use study_tracker::writer::{self, Writer, WriterOptions, WriterTasks};

use crate::helpers::TZ;

const SPOOL_MAX: u64 = 4 << 30;

/// A running bot: `app` takes the events, `writer` reports what was persisted.
pub struct Bot {
    pub app: Arc<App>,
    pub writer: Writer,
    tasks: WriterTasks,
    _spool_dir: tempfile::TempDir,
}

/// Starts a bot on database `db_name` at `uri` (its spool in a fresh temp
/// dir); `apply_batch` overrides `WriterOptions::apply_batch`.
pub async fn start_bot(uri: &str, db_name: &str, apply_batch: Option<usize>) -> Bot {
    let store = Store::connect(uri, db_name).await.expect("store");
    // As the bot does at start-up: learn the server (it sizes update
    // commands), create indexes, do the test write.
    if let Err(e) = store.prepare().await {
        eprintln!("warning: store preparation failed: {e}");
    }
    let dir = tempfile::Builder::new()
        .prefix("study-tracker-bench-spool-")
        .tempdir()
        .expect("spool dir");
    let spool = Spool::open(dir.path(), SPOOL_MAX).expect("spool");
    let mut opts = WriterOptions::default();
    if let Some(n) = apply_batch {
        opts.apply_batch = n;
    }
    let (writer, tasks) = writer::start(store.clone(), spool, opts);
    let app = Arc::new(App::new(
        store,
        writer.clone(),
        TZ,
        Duration::from_secs(300),
    ));
    Bot {
        app,
        writer,
        tasks,
        _spool_dir: dir,
    }
}

impl Bot {
    /// Shuts the writer down (5 s budget), warning if ops are left in the spool.
    pub async fn stop(self) {
        let r = self.tasks.shutdown(Duration::from_secs(5)).await;
        if r.left_in_spool > 0 {
            eprintln!(
                "warning: {} ops left in the spool at shutdown",
                r.left_in_spool
            );
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
