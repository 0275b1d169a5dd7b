//! The write-path benchmark: `cargo bench --bench writer [-- --quick]`.
//!
//! Everything runs against a real MongoDB-wire server (the test suite's: see
//! `tests/it/support/db.rs`; FerretDB v2 on `DocumentDB` unless `MONGODB_TEST_URI`
//! is set or `mongod` is on PATH) through the test suite's fault proxy
//! (`tests/it/support/fault_proxy.rs`) on loopback, with 0, 5 and 20 ms of
//! added round trip. It measures, in one run:
//!
//! 1. message ingestion, burst (as fast as accepted): messages/s persisted and
//!    event → acknowledged-write p50/p99, for the writer (`App::message`) and
//!    for the baseline it replaces (one awaited `update_one` upsert per event,
//!    sequential), side by side, with their ratio;
//! 2. message ingestion, paced (open loop, a fixed number of messages per
//!    second): event → acknowledged-write p50/p99 for both;
//! 3. `/ud` (`App::stats`) p50/p99 while the writer's burst runs, and idle;
//! 4. flush of 1,000 / 10,000 / 100,000 open sessions: time and round trips;
//! 5. tracker heap bytes per session (counting allocator) and peak RSS at
//!    100,000 sessions.
//!
//! It prints a markdown report and writes it to `target/bench-results.md`.
//! Every loop is bounded in count and time; see `Config` for the budgets.
//!
//! Options (after `--`): `--quick` (smaller counts, for a smoke run),
//! `--delays 0,5,20`, `--sessions 1000,10000,100000`, `--out PATH`.
//!
//! Layout: this file holds the options and the sequence of the run;
//! `ingestion` (1-3), `flush` (4) and `probes` (0 and 5) measure; `wiring`
//! assembles the bot under test; `servers` starts the database server, the
//! stub and the fault proxy; `results` and `report` hold and print what was
//! measured; `ack`, `allocator`, `helpers` and `machine` serve them.

// A measurement program: counts and durations are converted between integer
// and float types for rates and tables, and each phase is one long script.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::too_many_lines
)]

use std::time::Duration;

mod ack;
mod allocator;
mod ceiling;
mod flush;
mod helpers;
mod ingestion;
mod machine;
mod probes;
mod report;
mod results;
mod servers;
mod wiring;

use flush::flush_scenario;
use helpers::{progress, started};
use ingestion::ingestion;
use machine::server_description;
use probes::{probe, tracker_memory};
use report::{probe_report, report, Run};
use results::MemRow;
use servers::StubMongo;

// ---------------------------------------------------------------------------
// Configuration.

#[derive(Clone, Debug)]
pub struct Config {
    pub quick: bool,
    pub delays_ms: Vec<u64>,
    /// Member counts messages are spread over (uniformly, across `guilds`
    /// guilds), each at every delay; the paced phase runs with the first.
    pub members: Vec<u64>,
    /// A second, larger member count run at the largest delay (0: skip),
    /// with this many messages.
    pub cliff_members: u64,
    pub cliff_messages: usize,
    pub cliff_drain: Duration,
    /// `WriterOptions::apply_batch` override (`--apply-batch N`); none: the
    /// library's default, as in production.
    pub apply_batch: Option<usize>,
    pub guilds: u64,
    pub out: std::path::PathBuf,
    /// Baseline burst: at most this many messages or this long.
    pub baseline_max: usize,
    pub baseline_budget: Duration,
    /// Writer burst: at most this many messages or this long of submitting.
    pub writer_max: usize,
    pub writer_budget: Duration,
    /// Longest wait for the writer to acknowledge what was submitted.
    pub drain_budget: Duration,
    /// Paced phase: messages per second and duration of the arrivals.
    pub paced_rate: u32,
    pub paced_secs: u32,
    /// Longest the paced baseline may run after its last arrival.
    pub paced_drain: Duration,
    /// `/ud` calls when idle, and the pause between calls under load.
    pub ud_idle_calls: usize,
    pub ud_pause: Duration,
    /// Flush: session counts against the real server (stops at the first
    /// size whose setup does not complete) and against the stub.
    pub db_sessions: Vec<usize>,
    pub db_flush_budget: Duration,
    pub sessions: Vec<usize>,
    pub flush_guilds: u64,
    pub db_setup_budget: Duration,
    pub stub_setup_budget: Duration,
    pub flush_budget: Duration,
    /// Server probe: collection sizes and statements per shape.
    pub probe_sizes: Vec<usize>,
    pub probe_statements: usize,
    pub probe_only: bool,
    /// Server ceiling: collection sizes, and how long each combination runs.
    pub ceiling_sizes: Vec<usize>,
    pub ceiling_budget: Duration,
}

impl Config {
    fn from_args() -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let list = |name: &str, default: &[u64]| -> Vec<u64> {
            value(name).map_or_else(
                || default.to_vec(),
                |v| {
                    v.split(',')
                        .filter(|x| !x.trim().is_empty())
                        .map(|x| x.trim().parse().expect("a number list like 0,5,20"))
                        .collect()
                },
            )
        };
        let sizes = |name: &str, default: &[u64]| -> Vec<usize> {
            list(name, default)
                .into_iter()
                .map(|n| usize::try_from(n).expect("a count"))
                .collect()
        };
        let one = |name: &str, default: u64| -> u64 {
            value(name).map_or(default, |v| v.parse().expect("a number"))
        };
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| manifest.join("target"), |d| manifest.join(d));
        let out = value("--out").map_or_else(|| target.join("bench-results.md"), Into::into);
        Config {
            quick,
            delays_ms: list("--delays", &[0, 5, 20]),
            members: list(
                "--members",
                if quick {
                    &[50, 1_000]
                } else {
                    &[50, 1_000, 10_000]
                },
            ),
            cliff_members: one("--cliff-members", 0),
            cliff_messages: 1_000,
            cliff_drain: Duration::from_secs(60),
            apply_batch: value("--apply-batch").map(|v| v.parse().expect("a number")),
            guilds: 5,
            out,
            baseline_max: if quick { 500 } else { 2_000 },
            baseline_budget: Duration::from_secs(if quick { 1 } else { 3 }),
            writer_max: if quick { 4_000 } else { 20_000 },
            writer_budget: Duration::from_secs(10),
            drain_budget: Duration::from_secs(if quick { 20 } else { 40 }),
            paced_rate: 100,
            paced_secs: if quick { 1 } else { 3 },
            paced_drain: Duration::from_secs(20),
            ud_idle_calls: if quick { 20 } else { 50 },
            ud_pause: Duration::from_millis(10),
            db_sessions: sizes(
                "--db-sessions",
                if quick {
                    &[1_000]
                } else {
                    &[1_000, 10_000, 100_000]
                },
            ),
            db_flush_budget: Duration::from_secs(90),
            sessions: sizes(
                "--sessions",
                if quick {
                    &[1_000, 10_000]
                } else {
                    &[1_000, 10_000, 100_000]
                },
            ),
            flush_guilds: 10,
            db_setup_budget: Duration::from_secs(120),
            stub_setup_budget: Duration::from_secs(120),
            flush_budget: Duration::from_secs(120),
            probe_sizes: sizes(
                "--probe-sizes",
                if quick {
                    &[100, 1_000]
                } else {
                    &[100, 1_000, 10_000]
                },
            ),
            probe_statements: if quick { 10 } else { 30 },
            probe_only: args.iter().any(|a| a == "--probe-only"),
            ceiling_sizes: sizes(
                "--ceiling-sizes",
                if quick { &[10_000] } else { &[10_000, 100_000] },
            ),
            ceiling_budget: Duration::from_secs(if quick { 1 } else { 2 }),
        }
    }
}

// ---------------------------------------------------------------------------

fn main() {
    let _ = started();
    let cfg = Config::from_args();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    progress(&format!("config: {cfg:?}"));

    // Memory first: pure, and before the heap holds anything else of size.
    let mem: Vec<MemRow> = cfg
        .sessions
        .iter()
        .map(|&n| tracker_memory(n, cfg.flush_guilds))
        .collect();
    progress("tracker memory measured");

    let upstream = servers::database_uri();
    progress(&format!("database server at {upstream}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let text = rt.block_on(async {
        let server = server_description(&upstream).await;
        progress(&server);
        let probes = probe(&cfg, &upstream).await;
        if cfg.probe_only {
            return probe_report(&probes);
        }
        let proxy = servers::proxy_to(&upstream).await;
        // 1-3 on the real database.
        let mut ingest = Vec::new();
        for (i, &members) in cfg.members.iter().enumerate() {
            for &d in &cfg.delays_ms {
                ingest.push(
                    ingestion(
                        &cfg,
                        &proxy,
                        d,
                        members,
                        i == 0,
                        None,
                        cfg.writer_max,
                        cfg.drain_budget,
                    )
                    .await,
                );
            }
        }
        // 4 on the real database, smallest size first, until a size does not
        // finish within its budget.
        let mut flushes = Vec::new();
        for &n in &cfg.db_sessions {
            let f = flush_scenario(
                &cfg,
                "database",
                &proxy,
                None,
                n,
                cfg.apply_batch,
                cfg.db_setup_budget,
                cfg.db_flush_budget,
                false,
            )
            .await;
            let ok = f.setup_ok && f.rows.iter().all(|x| x.done);
            flushes.push(f);
            if !ok {
                progress("database flush: not trying larger sizes");
                break;
            }
        }
        // 4 against the instant-ack stub: the bot's side of the flush, and peak RSS.
        let stub = StubMongo::start().await;
        let stub_proxy = servers::proxy_to(&stub.uri()).await;
        let biggest = cfg.sessions.iter().copied().max().unwrap_or(0);
        for &n in &cfg.sessions {
            flushes.push(
                flush_scenario(
                    &cfg,
                    "stub",
                    &stub_proxy,
                    Some(&stub),
                    n,
                    cfg.apply_batch,
                    cfg.stub_setup_budget,
                    cfg.flush_budget,
                    n == biggest,
                )
                .await,
            );
        }
        stub_proxy.shutdown();
        // Last (it can leave the database busy): many members, at the
        // largest delay.
        let top = cfg.delays_ms.iter().copied().max().unwrap_or(0);
        if cfg.cliff_members > 0 {
            ingest.push(
                ingestion(
                    &cfg,
                    &proxy,
                    top,
                    cfg.cliff_members,
                    false,
                    cfg.apply_batch,
                    cfg.cliff_messages,
                    cfg.cliff_drain,
                )
                .await,
            );
        }
        proxy.shutdown();
        report(&Run {
            cfg: &cfg,
            server: &server,
            ingest: &ingest,
            flushes: &flushes,
            mem: &mem,
            probes: &probes,
            wall: started().elapsed(),
        })
    });
    println!("{text}");
    if let Some(dir) = cfg.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&cfg.out, &text) {
        Ok(()) => progress(&format!("report written to {}", cfg.out.display())),
        Err(e) => eprintln!("cannot write {}: {e}", cfg.out.display()),
    }
    rt.shutdown_timeout(Duration::from_secs(5));
}
