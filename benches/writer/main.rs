//! The write-path benchmark: `cargo bench --bench writer [-- --quick]`.
//!
//! Everything runs against a real MongoDB-wire server (the test suite's: see
//! `tests/it/support/db.rs`; FerretDB v1 on SQLite unless `MONGODB_TEST_URI` is
//! set or `mongod` is on PATH) through the test suite's fault proxy
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

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use mongodb::bson::{doc, Document};
use mongodb::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use study_tracker::app::{now_millis, App};
use study_tracker::spool::Spool;
use study_tracker::store::Store;
use study_tracker::tracker::{MemberKey, Presence, Tracker, VoiceSession};
use study_tracker::writer::{self, Writer, WriterOptions, WriterTasks};

#[allow(dead_code)]
#[path = "../../tests/it/support/db.rs"]
mod db;
#[allow(dead_code)]
#[path = "../../tests/it/support/fault_proxy.rs"]
mod fault_proxy;

#[path = "../support/stub_mongo.rs"]
mod stub_mongo;

use fault_proxy::{socket_addr_of, FaultProxy};
use stub_mongo::StubMongo;

// ---------------------------------------------------------------------------
// Counting allocator: live heap bytes and their peak.

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            if new >= l.size() {
                grew(new - l.size());
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ---------------------------------------------------------------------------
// Configuration.

#[derive(Clone, Debug)]
struct Config {
    quick: bool,
    delays_ms: Vec<u64>,
    /// Members messages are spread over (uniformly, across `guilds` guilds).
    members: u64,
    /// A second, larger member count run at the largest delay (0: skip),
    /// with this many messages.
    cliff_members: u64,
    cliff_messages: usize,
    cliff_drain: Duration,
    /// `WriterOptions::apply_batch` override (`--apply-batch N`); none: the
    /// library's default, as in production.
    apply_batch: Option<usize>,
    guilds: u64,
    out: std::path::PathBuf,
    /// Baseline burst: at most this many messages or this long.
    baseline_max: usize,
    baseline_budget: Duration,
    /// Writer burst: at most this many messages or this long of submitting.
    writer_max: usize,
    writer_budget: Duration,
    /// Longest wait for the writer to acknowledge what was submitted.
    drain_budget: Duration,
    /// Paced phase: messages per second and duration of the arrivals.
    paced_rate: u32,
    paced_secs: u32,
    /// Longest the paced baseline may run after its last arrival.
    paced_drain: Duration,
    /// `/ud` calls when idle, and the pause between calls under load.
    ud_idle_calls: usize,
    ud_pause: Duration,
    /// Flush: session counts against the real server (stops at the first
    /// size whose setup does not complete) and against the stub.
    db_sessions: Vec<usize>,
    db_flush_budget: Duration,
    sessions: Vec<usize>,
    flush_guilds: u64,
    db_setup_budget: Duration,
    stub_setup_budget: Duration,
    flush_budget: Duration,
    /// Server probe: collection sizes and statements per shape.
    probe_sizes: Vec<usize>,
    probe_statements: usize,
    probe_only: bool,
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
            members: one("--members", 50),
            cliff_members: one("--cliff-members", if quick { 0 } else { 1_000 }),
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
            db_sessions: sizes("--db-sessions", if quick { &[100] } else { &[100, 1_000] }),
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
            db_setup_budget: Duration::from_secs(60),
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
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers.

const GUILD0: u64 = 1_100_000_000_000_000_000;
const USER0: u64 = 1_200_000_000_000_000_000;
const CHANNEL0: u64 = 1_300_000_000_000_000_000;
const TZ: Tz = chrono_tz::UTC;
const SPOOL_MAX: u64 = 4 << 30;

fn member(g: u64, u: u64) -> MemberKey {
    MemberKey {
        guild: GUILD0 + g,
        user: USER0 + u,
    }
}

fn progress(msg: &str) {
    eprintln!("[bench {:>7.1}s] {msg}", started().elapsed().as_secs_f64());
}

fn started() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// Nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    match d {
        None => "n/a".into(),
        Some(d) => {
            let ms = d.as_secs_f64() * 1000.0;
            if ms >= 100.0 {
                format!("{ms:.0} ms")
            } else if ms >= 10.0 {
                format!("{ms:.1} ms")
            } else {
                format!("{ms:.2} ms")
            }
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Clone, Debug, Default)]
struct Lat {
    sorted: Vec<Duration>,
}

impl Lat {
    fn new(mut v: Vec<Duration>) -> Lat {
        v.sort_unstable();
        Lat { sorted: v }
    }
    fn p50(&self) -> String {
        ms(pct(&self.sorted, 50.0))
    }
    fn p99(&self) -> String {
        ms(pct(&self.sorted, 99.0))
    }
    fn max(&self) -> String {
        ms(self.sorted.last().copied())
    }
}

fn proc_status(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok() // kB
}

/// Resets VmHWM (peak RSS) to the current RSS (Linux `clear_refs` 5).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// ---------------------------------------------------------------------------
// Acknowledgement tracking: `Writer::status().applied` counts ops applied, in
// spool order (= submission order for a single producer). A thread samples it
// and records when each value was first seen.

struct AckPoller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<AckLog>,
}

#[derive(Default)]
struct AckLog {
    /// (applied, first seen at); `applied` is increasing.
    points: Vec<(u64, Instant)>,
    /// Longest single `status()` call (lock waits), i.e. the sampling error bound.
    worst_sample: Duration,
}

impl AckPoller {
    fn start(writer: Writer) -> AckPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ack-poller".into())
            .spawn(move || {
                let mut log = AckLog::default();
                let mut last = u64::MAX;
                loop {
                    let before = Instant::now();
                    let applied = writer.status().applied;
                    let at = Instant::now();
                    log.worst_sample = log.worst_sample.max(at - before);
                    if applied != last {
                        // Conservative: the time after the sample.
                        log.points.push((applied, at));
                        last = applied;
                    }
                    if flag.load(Ordering::Relaxed) {
                        return log;
                    }
                    std::thread::sleep(Duration::from_micros(250));
                }
            })
            .expect("spawn ack poller");
        AckPoller { stop, thread }
    }

    fn finish(self) -> AckLog {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("ack poller")
    }
}

impl AckLog {
    /// Ack time of each of `n` ops submitted after the counter stood at `base`.
    fn ack_times(&self, base: u64, n: usize) -> Vec<Option<Instant>> {
        let mut out = Vec::with_capacity(n);
        let mut j = 0;
        for i in 0..n as u64 {
            while j < self.points.len() && self.points[j].0 < base + i + 1 {
                j += 1;
            }
            out.push(self.points.get(j).map(|p| p.1));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The system under test.

struct Bot {
    app: Arc<App>,
    writer: Writer,
    tasks: WriterTasks,
    _spool_dir: tempfile::TempDir,
}

async fn start_bot(uri: &str, db_name: &str, apply_batch: Option<usize>) -> Bot {
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
    async fn stop(self) {
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
async fn wait_idle_fine(writer: &Writer, budget: Duration) -> bool {
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

fn db_name(tag: &str) -> String {
    format!("bench_{tag}_{:08x}", rand::random::<u32>())
}

// ---------------------------------------------------------------------------
// Results.

#[derive(Default)]
struct IngestRow {
    writer_label: String,
    delay_ms: u64,
    members: u64,
    base_n: usize,
    base_rate: f64,
    base_lat: Lat,
    writer_n: usize,
    writer_acked: usize,
    writer_window: Duration,
    writer_rate: f64,
    writer_lat: Lat,
    writer_rt: u64,
    writer_submit_lat: Lat,
    sample_err: Duration,
    ud: Lat,
    ud_idle: Lat,
    paced: bool,
    paced_base_n: usize,
    paced_base_acked: usize,
    paced_base: Lat,
    paced_writer_n: usize,
    paced_writer_acked: usize,
    paced_writer: Lat,
    paced_writer_rt: u64,
}

struct FlushRow {
    label: &'static str,
    delay_ms: u64,
    ops: usize,
    lock_held: Duration,
    durable: Option<Duration>,
    total: Duration,
    done: bool,
    applied: u64,
    updates: u64,
    commands: u64,
    all_requests: u64,
    statements: Option<u64>,
}

struct FlushScenario {
    server: String,
    sessions: usize,
    setup: Duration,
    setup_ok: bool,
    setup_ops: u64,
    setup_applied: u64,
    rows: Vec<FlushRow>,
    hwm_kb: Option<u64>,
    rss_kb: Option<u64>,
    heap_peak: usize,
    heap_now: usize,
    hwm_reset: bool,
}

struct MemRow {
    sessions: usize,
    bytes: usize,
    capacity_note: String,
}

// ---------------------------------------------------------------------------
// 1-3: ingestion.

/// The pattern the writer replaces: one awaited upsert per message.
async fn baseline_update(coll: &mongodb::Collection<Document>, m: MemberKey) {
    coll.update_one(
        doc! { "_id": format!("{}:{}", m.guild, m.user) },
        doc! {
            "$inc": { "messages": 1_i64 },
            "$set": { "guild_id": m.guild as i64, "user_id": m.user as i64 },
        },
    )
    .upsert(true)
    .await
    .expect("baseline update_one");
}

/// A member drawn uniformly from `members`, spread over `guilds` guilds.
fn pick(rng: &mut StdRng, members: u64, guilds: u64) -> MemberKey {
    let i = rng.gen_range(0..members);
    member(i % guilds, i / guilds)
}

/// Steady state before a run: every member already has its documents (what a
/// bot that has been running for a while sees), so both paths update existing
/// documents in collections of `members` documents. `writer_shape`: the
/// store's `member_stats` and today's `member_days` documents (ids as in
/// store.rs); otherwise the baseline's `member_stats`.
async fn preload(db: &mongodb::Database, members: u64, guilds: u64, writer_shape: bool) {
    let day = study_tracker::op::local_day(now_millis(), TZ);
    let all: Vec<MemberKey> = (0..members)
        .map(|i| member(i % guilds, i / guilds))
        .collect();
    for chunk in all.chunks(1_000) {
        let stats: Vec<Document> = chunk
            .iter()
            .map(|m| {
                let mut d = doc! {
                    "_id": format!("{}:{}", m.guild, m.user),
                    "guild_id": m.guild as i64, "user_id": m.user as i64, "messages": 0_i64,
                };
                if writer_shape {
                    d.insert("voice_cam_on_secs", 0_i64);
                    d.insert("voice_cam_off_secs", 0_i64);
                    d.insert("seq", 0_i64);
                }
                d
            })
            .collect();
        db.collection::<Document>("member_stats")
            .insert_many(stats)
            .await
            .expect("preload member_stats");
        if writer_shape {
            let days: Vec<Document> = chunk
                .iter()
                .map(|m| {
                    doc! {
                        "_id": format!("{}:{}:{day}", m.guild, m.user),
                        "guild_id": m.guild as i64, "user_id": m.user as i64,
                        "day": &day, "messages": 0_i64, "seq": 0_i64,
                    }
                })
                .collect();
            db.collection::<Document>("member_days")
                .insert_many(days)
                .await
                .expect("preload member_days");
        }
    }
}

/// Waits until the writer's applied counter reaches `target`, or `budget`.
async fn wait_applied(writer: &Writer, target: u64, budget: Duration) -> bool {
    let deadline = Instant::now() + budget;
    loop {
        if writer.status().applied >= target {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn ingestion(
    cfg: &Config,
    proxy: &FaultProxy,
    delay_ms: u64,
    members: u64,
    paced: bool,
    apply_batch: Option<usize>,
    writer_max: usize,
    drain_budget: Duration,
) -> IngestRow {
    let guilds = cfg.guilds;
    let mut row = IngestRow {
        writer_label: match apply_batch {
            None => "writer (`App::message`, defaults)".into(),
            Some(n) => format!("writer (`App::message`, apply_batch {n})"),
        },
        delay_ms,
        members,
        paced,
        ..IngestRow::default()
    };
    proxy.set_delay(Duration::from_millis(delay_ms));
    let mut rng = StdRng::seed_from_u64(42 + delay_ms + members);

    // --- baseline, burst ---
    let client = Client::with_uri_str(proxy.uri_with("appName=bench-baseline"))
        .await
        .expect("baseline client");
    let bdb = client.database(&db_name("baseline"));
    bdb.run_command(doc! { "ping": 1 }).await.expect("ping");
    preload(&bdb, members, guilds, false).await;
    let coll = bdb.collection::<Document>("member_stats");
    baseline_update(&coll, pick(&mut rng, members, guilds)).await; // connection + collection
    let mut lat = Vec::new();
    let t0 = Instant::now();
    while lat.len() < cfg.baseline_max && t0.elapsed() < cfg.baseline_budget {
        let m = pick(&mut rng, members, guilds);
        let t = Instant::now();
        baseline_update(&coll, m).await;
        lat.push(t.elapsed());
    }
    let elapsed = t0.elapsed();
    row.base_n = lat.len();
    row.base_rate = lat.len() as f64 / elapsed.as_secs_f64();
    row.base_lat = Lat::new(lat);
    progress(&format!(
        "rtt +{delay_ms} ms, {members} members: baseline burst {} msgs, {:.0} msgs/s",
        row.base_n, row.base_rate
    ));

    // --- writer, burst, with /ud calls alongside ---
    let name = db_name("ingest");
    preload(&client.database(&name), members, guilds, true).await;
    let bot = start_bot(&proxy.uri(), &name, apply_batch).await;
    bot.app
        .message(pick(&mut rng, members, guilds), now_millis())
        .await; // connection + collections
    if !wait_idle_fine(&bot.writer, Duration::from_secs(20)).await {
        eprintln!("warning: the writer's warm-up message was not applied in 20 s");
    }
    let mut ud_idle = Vec::new();
    for _ in 0..cfg.ud_idle_calls {
        let m = pick(&mut rng, members, guilds);
        let t = Instant::now();
        let _ = bot.app.stats(m, now_millis()).await;
        ud_idle.push(t.elapsed());
    }
    row.ud_idle = Lat::new(ud_idle);

    let base = bot.writer.status().applied;
    let cmd0 = bot.writer.status().commands;
    let poller = AckPoller::start(bot.writer.clone());
    let stop_ud = Arc::new(AtomicBool::new(false));
    let ud_task = {
        let app = bot.app.clone();
        let stop = stop_ud.clone();
        let pause = cfg.ud_pause;
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(7);
            let mut lat = Vec::new();
            // Bounded by count as well as by the stop flag.
            while !stop.load(Ordering::Relaxed) && lat.len() < 100_000 {
                let m = pick(&mut rng, members, guilds);
                let t = Instant::now();
                let _ = app.stats(m, now_millis()).await;
                lat.push(t.elapsed());
                tokio::time::sleep(pause).await;
            }
            lat
        })
    };
    let mut events = Vec::with_capacity(writer_max);
    let mut submit_lat = Vec::with_capacity(writer_max);
    let t0 = Instant::now();
    while events.len() < writer_max && t0.elapsed() < cfg.writer_budget {
        let m = pick(&mut rng, members, guilds);
        let t = Instant::now();
        events.push(t);
        bot.app.message(m, now_millis()).await;
        submit_lat.push(t.elapsed());
    }
    let n = events.len();
    let drained = wait_applied(&bot.writer, base + n as u64, drain_budget).await;
    let window_end = Instant::now();
    stop_ud.store(true, Ordering::Relaxed);
    let log = poller.finish();
    row.ud = Lat::new(ud_task.await.expect("ud task"));
    let acks = log.ack_times(base, n);
    let mut lat = Vec::with_capacity(n);
    let mut last_ack = t0;
    for (ev, ack) in events.iter().zip(&acks) {
        if let Some(a) = ack {
            lat.push(a.saturating_duration_since(*ev));
            last_ack = last_ack.max(*a);
        }
    }
    row.writer_n = n;
    row.writer_acked = lat.len();
    // Drained: messages over first event → last ack. Otherwise: what was
    // acknowledged over the whole (bounded) window.
    row.writer_window = if drained {
        last_ack - t0
    } else {
        window_end - t0
    };
    row.writer_rate = lat.len() as f64 / row.writer_window.as_secs_f64();
    row.writer_lat = Lat::new(lat);
    row.writer_submit_lat = Lat::new(submit_lat);
    row.writer_rt = bot.writer.status().commands - cmd0;
    row.sample_err = log.worst_sample;
    progress(&format!(
        "rtt +{delay_ms} ms, {members} members: writer burst {} of {n} msgs acked, {:.0} msgs/s, {} update commands, /ud {} calls",
        row.writer_acked,
        row.writer_rate,
        row.writer_rt,
        row.ud.sorted.len()
    ));
    bot.stop().await;

    if paced {
        // --- paced: open loop, cfg.paced_rate messages per second ---
        let period = Duration::from_secs(1) / cfg.paced_rate;
        let count = (cfg.paced_rate * cfg.paced_secs) as usize;
        // Writer (a fresh one: nothing left over from the burst).
        let name = db_name("paced");
        preload(&client.database(&name), members, guilds, true).await;
        let bot = start_bot(&proxy.uri(), &name, apply_batch).await;
        bot.app
            .message(pick(&mut rng, members, guilds), now_millis())
            .await;
        wait_idle_fine(&bot.writer, Duration::from_secs(20)).await;
        let base = bot.writer.status().applied;
        let cmd0 = bot.writer.status().commands;
        let poller = AckPoller::start(bot.writer.clone());
        let start = Instant::now() + Duration::from_millis(20);
        let mut arrivals = Vec::with_capacity(count);
        for i in 0..count {
            let at = start + period * i as u32;
            tokio::time::sleep_until(at.into()).await;
            arrivals.push(at);
            bot.app
                .message(pick(&mut rng, members, guilds), now_millis())
                .await;
        }
        wait_applied(&bot.writer, base + count as u64, cfg.drain_budget).await;
        let log = poller.finish();
        let lat: Vec<Duration> = arrivals
            .iter()
            .zip(log.ack_times(base, count))
            .filter_map(|(ev, ack)| ack.map(|a| a.saturating_duration_since(*ev)))
            .collect();
        row.paced_writer_n = count;
        row.paced_writer_acked = lat.len();
        row.paced_writer = Lat::new(lat);
        row.paced_writer_rt = bot.writer.status().commands - cmd0;
        bot.stop().await;

        // Baseline: the same arrivals, handled one after the other.
        let start = Instant::now() + Duration::from_millis(20);
        let last_arrival = start + period * count as u32;
        let mut lat = Vec::with_capacity(count);
        for i in 0..count {
            let at = start + period * i as u32;
            if Instant::now() < at {
                tokio::time::sleep_until(at.into()).await;
            }
            if Instant::now() > last_arrival + cfg.paced_drain {
                break;
            }
            baseline_update(&coll, pick(&mut rng, members, guilds)).await;
            lat.push(Instant::now() - at);
        }
        row.paced_base_n = count;
        row.paced_base_acked = lat.len();
        row.paced_base = Lat::new(lat);
        progress(&format!(
            "rtt +{delay_ms} ms: paced {} msgs/s: writer p99 {}, baseline p99 {} ({} of {count} acked)",
            cfg.paced_rate,
            row.paced_writer.p99(),
            row.paced_base.p99(),
            row.paced_base_acked
        ));
    }
    let _ = bdb.drop().await;
    row
}

// ---------------------------------------------------------------------------
// 4: flush.

#[allow(clippy::too_many_arguments)]
async fn flush_scenario(
    cfg: &Config,
    server: &str,
    proxy: &FaultProxy,
    stub: Option<&StubMongo>,
    n: usize,
    apply_batch: Option<usize>,
    setup_budget: Duration,
    flush_budget: Duration,
    measure_peak: bool,
) -> FlushScenario {
    let server = match apply_batch {
        None => format!("{server}, defaults"),
        Some(b) => format!("{server}, apply_batch {b}"),
    };
    proxy.set_delay(Duration::ZERO);
    let bot = start_bot(&proxy.uri(), &db_name(&format!("flush{n}")), apply_batch).await;
    // Sessions spread over guilds; camera on for half.
    let per_guild = n.div_ceil(cfg.flush_guilds as usize);
    let mut snapshots = Vec::new();
    let mut left = n;
    for g in 0..cfg.flush_guilds {
        let k = per_guild.min(left);
        left -= k;
        let present: Vec<(u64, Presence)> = (0..k as u64)
            .map(|u| {
                (
                    USER0 + u,
                    Presence {
                        channel: CHANNEL0 + g * 100 + u % 20,
                        camera: u % 2 == 0,
                    },
                )
            })
            .collect();
        snapshots.push((GUILD0 + g, present));
    }
    let hwm_reset = measure_peak && reset_peak_rss();
    if measure_peak {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    let t_open = now_millis() - 3_600_000;
    let applied0 = bot.writer.status().applied;
    let spooled0 = bot.writer.status().spooled;
    let setup_start = Instant::now();
    for (g, present) in &snapshots {
        bot.app.guild_snapshot(*g, present, t_open).await;
    }
    drop(snapshots);
    let setup_ok = wait_idle_fine(&bot.writer, setup_budget).await;
    let setup = setup_start.elapsed();
    let setup_ops = bot.writer.status().spooled - spooled0;
    let setup_applied = bot.writer.status().applied - applied0;
    progress(&format!(
        "flush {n} ({server}): {setup_applied} of {setup_ops} checkpoints applied in {} (drained: {setup_ok})",
        secs(setup)
    ));
    let mut rows = Vec::new();
    let plan: [(&'static str, u64); 4] = [
        ("first (inserts)", 0),
        ("steady", 0),
        ("steady", 5),
        ("steady", 20),
    ];
    for (k, (label, delay)) in plan.iter().enumerate() {
        if !setup_ok {
            break;
        }
        if k > 0 && !cfg.delays_ms.contains(delay) {
            continue;
        }
        // On the real database, sizes above 100 get the first flush only (it
        // takes tens of seconds there; the 100-session rows show the rest).
        if stub.is_none() && n > 100 && k > 0 {
            continue;
        }
        proxy.set_delay(Duration::from_millis(*delay));
        let r0 = proxy.requests("update");
        let all0 = proxy.requests("");
        let s0 = stub.map(StubMongo::statements);
        let st0 = bot.writer.status();
        let now = t_open + 60_000 * (k as i64 + 1);
        let t = Instant::now();
        let report = bot.app.flush_once(now).await;
        let lock_held = t.elapsed();
        // Durable in the spool, then applied.
        let target = st0.spooled + report.credits as u64;
        let deadline = t + flush_budget;
        let mut durable = None;
        let done = loop {
            let st = bot.writer.status();
            if durable.is_none() && st.spooled >= target {
                durable = Some(t.elapsed());
            }
            if st.backlog == 0 && st.applied >= st0.applied + report.credits as u64 {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let total = t.elapsed();
        let st = bot.writer.status();
        let row = FlushRow {
            label,
            delay_ms: *delay,
            ops: report.credits,
            lock_held,
            durable,
            total,
            done,
            applied: st.applied - st0.applied,
            updates: proxy.requests("update") - r0,
            commands: st.commands - st0.commands,
            all_requests: proxy.requests("") - all0,
            statements: stub.map(|s| s.statements() - s0.unwrap_or(0)),
        };
        progress(&format!(
            "flush {n} ({server}): {label} at +{delay} ms: {} credits in {} ({} update round trips)",
            row.ops,
            secs(row.total),
            row.updates
        ));
        let ok = row.done;
        rows.push(row);
        if !ok {
            break;
        }
    }
    let scenario = FlushScenario {
        server,
        sessions: n,
        setup,
        setup_ok,
        setup_ops,
        setup_applied,
        rows,
        hwm_kb: proc_status("VmHWM:"),
        rss_kb: proc_status("VmRSS:"),
        heap_peak: PEAK.load(Ordering::Relaxed),
        heap_now: LIVE.load(Ordering::Relaxed),
        hwm_reset,
    };
    proxy.set_delay(Duration::ZERO);
    bot.stop().await;
    scenario
}

// ---------------------------------------------------------------------------
// 0: server probe: the cost of one statement of each shape the benchmark uses,
// against collections of a given size, directly (no proxy). It shows how the
// server's cost per statement depends on the filter shape and collection size.

struct ProbeRow {
    docs: usize,
    load: Duration,
    shapes: Vec<(&'static str, usize, Lat)>,
}

/// One `update` command with `statements` statements, each on its own document.
struct MultiRow {
    statements: usize,
    existing: bool,
    result: Option<Duration>,
}

#[derive(Default)]
struct Probes {
    rows: Vec<ProbeRow>,
    multi: Vec<MultiRow>,
    multi_timeout: Duration,
}

/// Multi-statement `update` commands on a 400-document collection: with
/// statements that insert and with statements that match existing documents
/// (last: a command that gets no reply may leave the database stuck).
async fn probe_multi(db: &mongodb::Database, timeout: Duration) -> Vec<MultiRow> {
    let coll = db.collection::<Document>("multi");
    let docs: Vec<Document> = (0..400)
        .map(|i| doc! { "_id": format!("m{i}"), "n": 0_i64 })
        .collect();
    coll.insert_many(docs).await.expect("probe multi insert");
    let mut out = Vec::new();
    let mut next = 0;
    let mut fresh = 0;
    for (k, existing) in [(150, false), (50, true), (98, true), (100, true)] {
        let updates: Vec<Document> = (0..k)
            .map(|_| {
                let id = if existing {
                    next += 1;
                    format!("m{}", next - 1)
                } else {
                    fresh += 1;
                    format!("new{fresh}")
                };
                doc! { "q": { "_id": id }, "u": { "$inc": { "n": 1_i64 } }, "upsert": true }
            })
            .collect();
        let t = Instant::now();
        let r = tokio::time::timeout(
            timeout,
            db.run_command(doc! { "update": "multi", "updates": updates, "ordered": false }),
        )
        .await;
        let result = match r {
            Ok(Ok(_)) => Some(t.elapsed()),
            Ok(Err(e)) => {
                eprintln!("probe multi: {k} statements: {e}");
                None
            }
            Err(_) => None,
        };
        progress(&format!(
            "probe: one update with {k} statements ({}): {}",
            if existing {
                "existing docs"
            } else {
                "new docs"
            },
            result.map_or(format!("no reply in {}", secs(timeout)), |d| ms(Some(d)))
        ));
        if result.is_none() {
            // Let the server notice the closed connection and let go.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        out.push(MultiRow {
            statements: k,
            existing,
            result,
        });
    }
    out
}

async fn timed_loop<F, Fut>(count: usize, budget: Duration, mut f: F) -> Lat
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t0 = Instant::now();
    let mut lat = Vec::new();
    for i in 0..count {
        if t0.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        f(i).await;
        lat.push(t.elapsed());
    }
    Lat::new(lat)
}

async fn probe(cfg: &Config, uri: &str) -> Probes {
    let client = Client::with_uri_str(uri).await.expect("probe client");
    let db = client.database(&db_name("probe"));
    let multi_timeout = Duration::from_secs(5);
    // Its own database: a command that gets no reply can leave it unusable.
    let multi_db = client.database(&db_name("probe_multi"));
    let multi = probe_multi(&multi_db, multi_timeout).await;
    let mut rows = Vec::new();
    let seq0 = 1_000_000_i64;
    for &m in &cfg.probe_sizes {
        let coll = db.collection::<Document>(&format!("docs_{m}"));
        let t = Instant::now();
        let mut loaded = 0;
        while loaded < m && t.elapsed() < Duration::from_secs(60) {
            let k = (m - loaded).min(1_000);
            let docs: Vec<Document> = (loaded..loaded + k)
                .map(|i| {
                    doc! {
                        "_id": format!("{GUILD0}:{}", USER0 + i as u64),
                        "guild_id": GUILD0 as i64, "user_id": (USER0 + i as u64) as i64,
                        "voice_cam_on_secs": 0_i64, "voice_cam_off_secs": 0_i64,
                        "messages": 0_i64, "seq": seq0,
                    }
                })
                .collect();
            coll.insert_many(docs).await.expect("probe insert");
            loaded += k;
        }
        let load = t.elapsed();
        let n = cfg.probe_statements;
        let budget = Duration::from_secs(if m >= 10_000 { 6 } else { 10 });
        let pick = |i: usize| (i * 7_919) % m.max(1);
        let mut shapes = Vec::new();
        // The baseline's statement: pushed down on FerretDB.
        let c = coll.clone();
        let lat = timed_loop(n, budget, |i| {
            let c = c.clone();
            async move {
                c.update_one(
                    doc! { "_id": format!("{GUILD0}:{}", USER0 + pick(i) as u64) },
                    doc! { "$inc": { "messages": 1_i64 } },
                )
                .upsert(true)
                .await
                .expect("probe update");
            }
        })
        .await;
        shapes.push(("`{_id}` upsert, existing doc (baseline shape)", n, lat));
        // The writer's statement (see store.rs DocOps::statement), one per command.
        let writer_stmt = |id: String, seq: i64| {
            doc! {
                "update": format!("docs_{m}"),
                "updates": [{
                    "q": { "_id": id, "seq": { "$not": { "$gte": seq } } },
                    "u": { "$inc": { "messages": 1_i64 }, "$set": { "seq": seq } },
                    "upsert": true,
                }],
                "ordered": false,
            }
        };
        let dbh = db.clone();
        let lat = timed_loop(n, budget, |i| {
            let (dbh, cmd) = (
                dbh.clone(),
                writer_stmt(
                    format!("{GUILD0}:{}", USER0 + pick(i) as u64),
                    seq0 + 1 + i as i64,
                ),
            );
            async move {
                dbh.run_command(cmd).await.expect("probe writer update");
            }
        })
        .await;
        shapes.push((
            "`{_id, seq: {$not: {$gte}}}` upsert, existing doc (writer shape)",
            n,
            lat,
        ));
        let lat = timed_loop(n, budget, |i| {
            let (dbh, cmd) = (
                dbh.clone(),
                writer_stmt(format!("new:{m}:{i}"), seq0 + 1 + i as i64),
            );
            async move {
                dbh.run_command(cmd).await.expect("probe writer insert");
            }
        })
        .await;
        shapes.push((
            "`{_id, seq: {$not: {$gte}}}` upsert, new doc (writer shape)",
            n,
            lat,
        ));
        let lat = timed_loop(n.min(10), budget, |i| {
            let c = coll.clone();
            async move {
                let _: Vec<Document> = futures::TryStreamExt::try_collect(
                    c.find(doc! { "guild_id": GUILD0 as i64, "user_id": (USER0 + pick(i) as u64) as i64 })
                        .await
                        .expect("probe find"),
                )
                .await
                .expect("probe find");
            }
        })
        .await;
        shapes.push(("`{guild_id, user_id}` find (`/ud` shape)", n.min(10), lat));
        progress(&format!(
            "probe {m} docs: {}",
            shapes
                .iter()
                .map(|(name, _, l)| format!("{name}: p50 {}", l.p50()))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        rows.push(ProbeRow {
            docs: m,
            load,
            shapes,
        });
    }
    let _ = db.drop().await;
    Probes {
        rows,
        multi,
        multi_timeout,
    }
}

// ---------------------------------------------------------------------------
// 5: tracker memory.

fn tracker_memory(n: usize, guilds: u64) -> MemRow {
    let per_guild = n.div_ceil(guilds as usize);
    let mut snapshots = Vec::new();
    let mut left = n;
    for g in 0..guilds {
        let k = per_guild.min(left);
        left -= k;
        let present: Vec<(u64, Presence)> = (0..k as u64)
            .map(|u| {
                (
                    USER0 + u,
                    Presence {
                        channel: CHANNEL0 + u % 20,
                        camera: u % 2 == 0,
                    },
                )
            })
            .collect();
        snapshots.push((GUILD0 + g, present));
    }
    let now = 1_795_687_200_000_i64;
    let before = LIVE.load(Ordering::SeqCst);
    let mut tracker = Tracker::new(300_000);
    for (g, present) in &snapshots {
        drop(tracker.guild_snapshot(*g, present, now));
    }
    drop(tracker.flush(now + 60_000));
    let after = LIVE.load(Ordering::SeqCst);
    assert_eq!(tracker.len(), n);
    let bytes = after.saturating_sub(before);
    // hashbrown: buckets = next_power_of_two(n * 8 / 7), (key, value) + 1 control byte each.
    let buckets = (n * 8).div_ceil(7).next_power_of_two();
    let entry = std::mem::size_of::<(MemberKey, VoiceSession)>();
    let capacity_note = format!(
        "{buckets} buckets × ({entry} B entry + 1 B control) = {} B",
        buckets * (entry + 1)
    );
    drop(tracker);
    MemRow {
        sessions: n,
        bytes,
        capacity_note,
    }
}

// ---------------------------------------------------------------------------
// Machine description.

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".into(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    vec![
        ("CPUs (available parallelism)".into(), cpus.to_string()),
        ("CPU model".into(), model),
        ("RAM".into(), mem),
        ("kernel".into(), kernel),
        ("source".into(), git_revision()),
        (
            "build".into(),
            if cfg!(debug_assertions) {
                "debug (numbers not meaningful)".into()
            } else {
                "release (cargo bench profile)".into()
            },
        ),
    ]
}

/// `git rev-parse --short HEAD`, and whether the work tree differs from it.
fn git_revision() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = run(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    let dirty = run(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "src",
        "Cargo.toml",
    ])
    .is_some_and(|s| !s.is_empty());
    format!(
        "commit {head}{}",
        if dirty {
            " + uncommitted changes in src/ or Cargo.toml"
        } else {
            ""
        }
    )
}

async fn server_description(uri: &str) -> String {
    let Ok(client) = Client::with_uri_str(uri).await else {
        return "unknown".into();
    };
    let Ok(info) = client
        .database("admin")
        .run_command(doc! { "buildInfo": 1 })
        .await
    else {
        return "unknown".into();
    };
    let version = info.get_str("version").unwrap_or("?");
    let external = std::env::var("MONGODB_TEST_URI").is_ok_and(|u| !u.trim().is_empty());
    if let Ok(f) = info
        .get_str("ferretdbVersion")
        .or_else(|_| info.get_str("ferretdb"))
    {
        let backend = if external {
            "backend unknown (MONGODB_TEST_URI)"
        } else {
            "SQLite backend, embedded by tools/ferretdb"
        };
        let f = if f == "unknown" && !external {
            // The embedded build does not know its version; go.mod does.
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ferretdb/go.mod"),
            )
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| {
                        l.trim()
                            .strip_prefix("require github.com/FerretDB/FerretDB ")
                    })
                    .map(|v| format!("{} (from tools/ferretdb/go.mod)", v.trim()))
            })
            .unwrap_or_else(|| f.to_owned())
        } else {
            f.to_owned()
        };
        format!("FerretDB {f}, reports MongoDB {version}; {backend}")
    } else {
        format!("MongoDB {version}")
    }
}

// ---------------------------------------------------------------------------
// Report.

struct Run<'a> {
    cfg: &'a Config,
    server: &'a str,
    ingest: &'a [IngestRow],
    flushes: &'a [FlushScenario],
    mem: &'a [MemRow],
    probes: &'a Probes,
    wall: Duration,
}

fn report(r: &Run<'_>) -> String {
    let cfg = r.cfg;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "## Results{}\n",
        if cfg.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(w, "| machine | |\n|---|---|");
    for (k, v) in machine() {
        let _ = writeln!(w, "| {k} | {v} |");
    }
    let _ = writeln!(w, "| database | {} |", r.server);
    let _ = writeln!(
        w,
        "| path | bench process (bot's writer, driver, fault proxy, stub) → loopback → database; spool in {} |",
        std::env::temp_dir().display()
    );
    let _ = writeln!(w, "| wall time of this run | {} |\n", secs(r.wall));

    // Ingestion, burst.
    let _ = writeln!(
        w,
        "### Message ingestion, burst (real database, through the fault proxy)\n"
    );
    let _ = writeln!(w, "| added RTT | members | path | messages acked / sent | persisted msgs/s | event→ack p50 | p99 | max | `update` round trips | writer ÷ baseline |");
    let _ = writeln!(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for i in r.ingest {
        let _ = writeln!(
            w,
            "| {} ms | {} | baseline (`update_one` per event, awaited) | {} / {} | {:.0} | {} | {} | {} | {} | |",
            i.delay_ms,
            thousands(i.members),
            thousands(i.base_n as u64),
            thousands(i.base_n as u64),
            i.base_rate,
            i.base_lat.p50(),
            i.base_lat.p99(),
            i.base_lat.max(),
            thousands(i.base_n as u64),
        );
        let drained = i.writer_acked == i.writer_n;
        let _ = writeln!(
            w,
            "| {} ms | {} | {} | {} / {}{} | {:.0} | {} | {} | {} | {} | **{:.1}×** |",
            i.delay_ms,
            thousands(i.members),
            i.writer_label,
            thousands(i.writer_acked as u64),
            thousands(i.writer_n as u64),
            if drained {
                String::new()
            } else {
                format!(" (not drained in {})", secs(i.writer_window))
            },
            i.writer_rate,
            i.writer_lat.p50(),
            i.writer_lat.p99(),
            i.writer_lat.max(),
            i.writer_rt,
            i.writer_rate / i.base_rate
        );
    }
    let _ = writeln!(
        w,
        "\nWriter `App::message` call time (how long the event handler is held; spool backpressure included): {}.",
        r.ingest
            .iter()
            .map(|i| format!(
                "+{} ms/{}: p50 {}, p99 {}",
                i.delay_ms,
                i.members,
                i.writer_submit_lat.p50(),
                i.writer_submit_lat.p99()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        w,
        "Ack-time resolution (slowest `Writer::status()` sample + 250 µs poll period): {}.\n",
        r.ingest
            .iter()
            .map(|i| format!(
                "+{} ms/{}: {}",
                i.delay_ms,
                i.members,
                ms(Some(i.sample_err + Duration::from_micros(250)))
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    // Ingestion, paced.
    if r.ingest.iter().any(|i| i.paced) {
        let _ = writeln!(
            w,
            "### Message ingestion, paced ({} msgs/s for {} s, open loop; latency from the scheduled arrival)\n",
            cfg.paced_rate, cfg.paced_secs
        );
        let _ = writeln!(w, "| added RTT | members | path | acked / offered | event→ack p50 | p99 | max | `update` round trips |");
        let _ = writeln!(w, "|---:|---:|---|---:|---:|---:|---:|---:|");
        for i in r.ingest.iter().filter(|i| i.paced) {
            let _ = writeln!(
                w,
                "| {} ms | {} | baseline | {} / {} | {} | {} | {} | {} |",
                i.delay_ms,
                i.members,
                i.paced_base_acked,
                i.paced_base_n,
                i.paced_base.p50(),
                i.paced_base.p99(),
                i.paced_base.max(),
                i.paced_base_acked
            );
            let _ = writeln!(
                w,
                "| {} ms | {} | writer | {} / {} | {} | {} | {} | {} |",
                i.delay_ms,
                i.members,
                i.paced_writer_acked,
                i.paced_writer_n,
                i.paced_writer.p50(),
                i.paced_writer.p99(),
                i.paced_writer.max(),
                i.paced_writer_rt
            );
        }
    }

    // /ud.
    let _ = writeln!(w, "\n### `/ud` (`App::stats`) latency, real database\n");
    let _ = writeln!(w, "| added RTT | members | idle: calls | p50 | p99 | during the writer burst: calls | p50 | p99 | max |");
    let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for i in r.ingest {
        let _ = writeln!(
            w,
            "| {} ms | {} | {} | {} | {} | {} | {} | {} | {} |",
            i.delay_ms,
            thousands(i.members),
            i.ud_idle.sorted.len(),
            i.ud_idle.p50(),
            i.ud_idle.p99(),
            i.ud.sorted.len(),
            i.ud.p50(),
            i.ud.p99(),
            i.ud.max()
        );
    }

    // Flush.
    let _ = writeln!(
        w,
        "\n### Flush of open sessions ({} guilds; sessions opened by guild snapshots an hour earlier, then flushed every simulated minute)\n",
        cfg.flush_guilds
    );
    let _ = writeln!(w, "| server | sessions | flush | added RTT | credits | tracker lock held | durable in spool | all acknowledged | `update` round trips (proxy) | writer commands | statements (stub) | all requests (proxy) |");
    let _ = writeln!(
        w,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for f in r.flushes {
        if !f.setup_ok {
            let _ = writeln!(
                w,
                "| {} | {} | not run: setup did not finish ({} of {} checkpoint ops applied in {}) | | | | | | | | | |",
                f.server,
                thousands(f.sessions as u64),
                thousands(f.setup_applied),
                thousands(f.setup_ops),
                secs(f.setup)
            );
        }
        for x in &f.rows {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} ms | {} | {} | {} | {}{} | {} | {} | {} | {} |",
                f.server,
                thousands(f.sessions as u64),
                x.label,
                x.delay_ms,
                thousands(x.ops as u64),
                ms(Some(x.lock_held)),
                x.durable.map_or("n/a".into(), |d| ms(Some(d))),
                secs(x.total),
                if x.done {
                    String::new()
                } else {
                    format!(" (not drained: {} of {} applied)", x.applied, x.ops)
                },
                x.updates,
                x.commands,
                x.statements.map_or("".into(), thousands),
                x.all_requests
            );
        }
    }
    let _ = writeln!(
        w,
        "\nSetup (guild snapshots + checkpoint writes; not part of the flush figures): {}.\n",
        r.flushes
            .iter()
            .map(|f| format!(
                "{} {}: {}{}",
                f.server,
                thousands(f.sessions as u64),
                secs(f.setup),
                if f.setup_ok { "" } else { " (not drained)" }
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    // Memory.
    let _ = writeln!(w, "### Memory\n");
    let _ = writeln!(
        w,
        "| sessions | tracker heap (counting allocator) | bytes / session | hash table |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---|");
    for m in r.mem {
        let _ = writeln!(
            w,
            "| {} | {} B | **{:.1}** | {} |",
            thousands(m.sessions as u64),
            thousands(m.bytes as u64),
            m.bytes as f64 / m.sessions as f64,
            m.capacity_note
        );
    }
    let peak = r
        .flushes
        .iter()
        .filter(|f| f.hwm_reset || f.heap_peak > 0)
        .max_by_key(|f| (f.server.starts_with("stub"), f.sessions));
    if let Some(f) = peak {
        let _ = writeln!(
            w,
            "\nWhole bench process during the {}-session flush scenario ({}): peak RSS (VmHWM{}) **{} MiB**, RSS after it {} MiB; \
             peak live heap {:.1} MiB, live heap after {:.1} MiB. The process also holds the driver, the fault proxy, the stub and the runtime.",
            thousands(f.sessions as u64),
            f.server,
            if f.hwm_reset { ", reset just before the scenario" } else { ", since process start" },
            f.hwm_kb.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            f.rss_kb.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            f.heap_peak as f64 / 1_048_576.0,
            f.heap_now as f64 / 1_048_576.0,
        );
    }

    s.push_str(&probe_report(r.probes));

    // Targets.
    let w = &mut s;
    let _ = writeln!(w, "\n### Targets\n");
    let _ = writeln!(w, "| target | figure | met |\n|---|---|---|");
    let top = cfg.delays_ms.iter().copied().max().unwrap_or(0);
    for i in r.ingest.iter().filter(|i| i.delay_ms == top) {
        let ratio = i.writer_rate / i.base_rate;
        let _ = writeln!(
            w,
            "| ≥ 100× baseline message throughput at +{top} ms RTT ({} members) | {:.1}× ({:.0} vs {:.0} msgs/s) | {} |",
            thousands(i.members),
            ratio,
            i.writer_rate,
            i.base_rate,
            if ratio >= 100.0 { "yes" } else { "**no**" }
        );
    }
    for f in r.flushes.iter().filter(|f| f.sessions == 100_000) {
        let steady0 = f
            .rows
            .iter()
            .find(|x| x.label == "steady" && x.delay_ms == 0 && x.done)
            .map(|x| x.total);
        let figure = match steady0 {
            Some(d) => format!("steady flush, +0 ms: {}", secs(d)),
            None if !f.setup_ok => format!(
                "not measurable: {} of {} checkpoints applied in {}",
                thousands(f.setup_applied),
                thousands(f.setup_ops),
                secs(f.setup)
            ),
            None => "did not finish".into(),
        };
        let _ = writeln!(
            w,
            "| 100,000-session flush < 5 s locally ({}) | {figure} | {} |",
            if f.server.starts_with("stub") {
                format!(
                    "{}: the bot's side only, the database replaced by an instant-ack stub",
                    f.server
                )
            } else {
                f.server.clone()
            },
            if steady0.is_some_and(|d| d < Duration::from_secs(5)) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    if let Some(m) = r.mem.iter().max_by_key(|m| m.sessions) {
        let per = m.bytes as f64 / m.sessions as f64;
        let worst = r
            .mem
            .iter()
            .map(|m| m.bytes as f64 / m.sessions as f64)
            .fold(0.0, f64::max);
        let _ = writeln!(
            w,
            "| < 200 B tracker state per session | {per:.1} B at {} sessions (largest of the sizes measured: {worst:.1} B) | {} |",
            thousands(m.sessions as u64),
            if worst < 200.0 { "yes" } else { "**no**" }
        );
    }
    s
}

fn probe_report(p: &Probes) -> String {
    let rows = &p.rows;
    let mut w = String::new();
    if !p.multi.is_empty() {
        let _ = writeln!(
            w,
            "\n### Server probe: one `update` command with k `{{_id}}` upsert statements, each on a different document (400-document collection)\n"
        );
        let _ = writeln!(w, "| k statements | documents | reply |\n|---:|---|---:|");
        for m in &p.multi {
            let _ = writeln!(
                w,
                "| {} | {} | {} |",
                m.statements,
                if m.existing {
                    "existing (updates)"
                } else {
                    "new (inserts)"
                },
                m.result.map_or(
                    format!("**none within {}**", secs(p.multi_timeout)),
                    |d| ms(Some(d))
                )
            );
        }
    }
    if rows.is_empty() {
        return w;
    }
    let _ = writeln!(
        w,
        "\n### Server probe: one statement per command, directly to the database (no proxy)\n"
    );
    let _ = writeln!(w, "| docs in collection | statement | n | p50 | p99 |");
    let _ = writeln!(w, "|---:|---|---:|---:|---:|");
    for r in rows {
        for (name, _, lat) in &r.shapes {
            let _ = writeln!(
                w,
                "| {} | {name} | {} | {} | {} |",
                thousands(r.docs as u64),
                lat.sorted.len(),
                lat.p50(),
                lat.p99()
            );
        }
    }
    let _ = writeln!(
        w,
        "\nLoading the probe collections (insert_many, 1,000 per command): {}.",
        rows.iter()
            .map(|r| format!("{}: {}", thousands(r.docs as u64), secs(r.load)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    w
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

    let upstream = db::server_uri().to_owned();
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
        let proxy = FaultProxy::start(socket_addr_of(&upstream)).await;
        // 1-3 on the real database.
        let mut ingest = Vec::new();
        for &d in &cfg.delays_ms {
            ingest.push(
                ingestion(
                    &cfg,
                    &proxy,
                    d,
                    cfg.members,
                    true,
                    None,
                    cfg.writer_max,
                    cfg.drain_budget,
                )
                .await,
            );
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
        let stub_proxy = FaultProxy::start(socket_addr_of(&stub.uri())).await;
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
