//! 4: flush.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use study_tracker::app::now_millis;
use study_tracker::core::calendar::{local_midnight, today};
use study_tracker::core::Presence;

use crate::allocator::{LIVE, PEAK};
use crate::helpers::{proc_status, progress, reset_peak_rss, secs, CHANNEL0, GUILD0, TZ, USER0};
use crate::results::{FlushRow, FlushScenario};
use crate::servers::{FaultProxy, StubMongo};
use crate::wiring::{db_name, start_bot, wait_idle_fine};
use crate::Config;

/// The flush whose credits all cross local midnight.
pub const ACROSS_MIDNIGHT: &str = "across midnight (rolling)";

#[allow(clippy::too_many_arguments)]
pub async fn flush_scenario(
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
    // Opened 50 minutes before the last local midnight (at least ten
    // minutes ago), so that the steady flushes fall on one day and the last
    // one crosses midnight.
    let midnight = local_midnight(today(now_millis() - 600_000, TZ), TZ);
    let t_open = midnight - 3_000_000;
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
    let plan: [(&'static str, u64); 5] = [
        ("first (inserts)", 0),
        ("steady", 0),
        ("steady", 5),
        ("steady", 20),
        (ACROSS_MIDNIGHT, 0),
    ];
    for (k, (label, delay)) in plan.iter().enumerate() {
        if !setup_ok {
            break;
        }
        let across = *label == ACROSS_MIDNIGHT;
        if k > 0 && !across && !cfg.delays_ms.contains(delay) {
            continue;
        }
        // On the real database, sizes above 100 get the first flush and the
        // one across midnight only (the 100-session rows show the rest).
        if stub.is_none() && n > 100 && k > 0 && !across {
            continue;
        }
        proxy.set_delay(Duration::from_millis(*delay));
        let r0 = proxy.requests("update");
        let all0 = proxy.requests("");
        let s0 = stub.map(StubMongo::statements);
        let st0 = bot.writer.status();
        // Every credit of the flush across midnight spans two days: each
        // `member_stats` statement takes the rolling shape (a pipeline).
        let now = if across {
            midnight + 60_000
        } else {
            t_open + 60_000 * (k as i64 + 1)
        };
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
