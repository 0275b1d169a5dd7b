//! Redeploys measured with two real bot processes, the test suite's Discord
//! simulator and database server: `cargo bench --bench redeploy [-- --runs N]`.
//!
//! Messages arrive at a steady 100 per second from four members for 8 s;
//! 2 s in, the running instance is redeployed:
//! - **stop-then-start**: SIGTERM, wait for the exit, then start the new
//!   instance (what a platform without overlap does);
//! - **overlap**: start the new instance, wait until it stands by, then
//!   SIGTERM the old one (a rolling update with `maxSurge`, Railway's overlap,
//!   Render's zero-downtime deploy, Heroku preboot, Fly blue-green).
//!
//! Both run with the default lease (`LEASE_TTL_SECS=15`). For each it
//! reports the messages sent, stored, lost and counted twice, and the time
//! with no instance counting (from the signal, or the lease's release, to
//! the takeover, by the processes' log timestamps). Prints a markdown table
//! and writes it to `target/bench-redeploy.md`.

// A measurement program: counts and durations are converted for printing.
#![allow(clippy::cast_precision_loss)]
// The simulator's Discord payloads are large `json!` literals.
#![recursion_limit = "256"]

#[allow(
    dead_code,
    unused_imports,
    reason = "the test suite's support module, of which this program uses a part"
)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::time::Duration;

use study_tracker::core::MemberKey;
use study_tracker::store::Store;
use support::bot::{spawn_bot, Bot, BotConfig};
use support::db::fresh_db;
use support::discord_sim::{DiscordSim, SimGuild, SimUser};

const GUILD: u64 = 900_000_000_000_000_001;
const TEXT: u64 = 900_000_000_000_000_201;
const VOICE: u64 = 900_000_000_000_000_101;
const MEMBERS: [u64; 4] = [
    900_000_000_000_001_001,
    900_000_000_000_001_002,
    900_000_000_000_001_003,
    900_000_000_000_001_004,
];
const RATE_EVERY: Duration = Duration::from_millis(10);
const TRAFFIC: Duration = Duration::from_secs(8);
const REDEPLOY_AT: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(60);

struct Outcome {
    sent: i64,
    stored: i64,
    /// Time with no instance counting, in seconds.
    gap: f64,
}

fn guild() -> SimGuild {
    SimGuild {
        id: GUILD,
        name: "Bench".into(),
        afk_channel_id: None,
        voice_channels: vec![VOICE],
        text_channels: vec![TEXT],
        members: MEMBERS
            .iter()
            .map(|&m| SimUser::new(m, format!("m{m}")))
            .collect(),
        categories: Vec::new(),
    }
}

/// When a log line containing `needle` was written (its RFC 3339 prefix).
fn logged_at(bot: &Bot, needle: &str) -> chrono::DateTime<chrono::Utc> {
    let line = bot
        .logs()
        .into_iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?}"));
    let stamp = line.split_whitespace().next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(stamp)
        .unwrap_or_else(|e| panic!("{stamp:?}: {e}"))
        .with_timezone(&chrono::Utc)
}

async fn stored(store: &Store) -> i64 {
    let mut total = 0;
    for &user in &MEMBERS {
        let key = MemberKey { guild: GUILD, user };
        total += store
            .member(key, 0, "0000-00-00")
            .await
            .map_or(0, |m| m.messages);
    }
    total
}

async fn scenario(overlap: bool) -> Outcome {
    let sim = DiscordSim::start(vec![guild()]).await;
    let db = fresh_db().await;
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| BotConfig::new(&sim, &db.uri, &db.name, dir);
    let mut a = spawn_bot(&config(spool_a.path()));
    sim.wait_connections(1, WAIT).await;
    a.wait_log("took the lease", WAIT).await;
    let sender = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RATE_EVERY);
            let started = tokio::time::Instant::now();
            let mut sent = 0_i64;
            while started.elapsed() < TRAFFIC {
                ticker.tick().await;
                let author = MEMBERS[usize::try_from(sent).unwrap_or(0) % MEMBERS.len()];
                sim.send_message(Some(GUILD), TEXT, author, false).await;
                sent += 1;
            }
            sent
        })
    };
    tokio::time::sleep(REDEPLOY_AT).await;
    let b;
    let gap = if overlap {
        b = spawn_bot(&config(spool_b.path()));
        sim.wait_connections(2, WAIT).await;
        b.wait_log("guild snapshot", WAIT).await;
        a.sigterm();
        a.wait_exit(WAIT).await;
        b.wait_log("took the lease", WAIT).await;
        logged_at(&b, "took the lease") - logged_at(&a, "lease released")
    } else {
        let signal = chrono::Utc::now();
        a.sigterm();
        a.wait_exit(WAIT).await;
        b = spawn_bot(&config(spool_b.path()));
        b.wait_log("took the lease", WAIT).await;
        // Counting starts once the gateway delivers the guild again.
        b.wait_log("guild snapshot", WAIT).await;
        logged_at(&b, "guild snapshot") - signal
    };
    let sent = sender.await.expect("sender");
    let store = Store::from_database(db.db());
    // Settle: until two reads a second apart agree.
    let mut last = -1;
    loop {
        let now = stored(&store).await;
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(b);
    Outcome {
        sent,
        stored: last,
        gap: gap.num_milliseconds() as f64 / 1000.0,
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut table = String::from(
        "| redeploy | run | messages sent | stored | lost | counted twice | time with no instance counting |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, overlap) in [("stop-then-start", false), ("overlap", true)] {
        for run in 1..=runs {
            let o = scenario(overlap).await;
            let lost = (o.sent - o.stored).max(0);
            let twice = (o.stored - o.sent).max(0);
            let _ = writeln!(
                table,
                "| {name} | {run} | {} | {} | {lost} | {twice} | {:.2} s |",
                o.sent, o.stored, o.gap
            );
            eprintln!(
                "{name} run {run}: sent {} stored {} gap {:.2} s",
                o.sent, o.stored, o.gap
            );
        }
    }
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-redeploy.md");
    if let Err(e) = std::fs::write(&out, &table) {
        eprintln!("cannot write {}: {e}", out.display());
    }
}
