//! Report: the markdown tables (what BENCHMARKS.md records).

use std::fmt::Write as _;
use std::time::Duration;

use crate::helpers::{ms, secs, thousands};
use crate::machine::machine;
use crate::probes::Probes;
use crate::results::{FlushScenario, IngestRow, MemRow};
use crate::Config;

pub struct Run<'a> {
    pub cfg: &'a Config,
    pub server: &'a str,
    pub ingest: &'a [IngestRow],
    pub flushes: &'a [FlushScenario],
    pub mem: &'a [MemRow],
    pub probes: &'a Probes,
    pub wall: Duration,
}

pub fn report(r: &Run<'_>) -> String {
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
    let ceiling = best_ceiling(r.probes);
    let _ = writeln!(
        w,
        "\nDocuments written and the server's ceiling: *statements* are the statements of the writer's `update` commands in the burst (each writes one document), counted at the proxy; the ceiling is the statements/s of the server probe below in the writer's command shape (existing documents carrying `member_stats`' indexes, the largest collection measured, the writer's command size and commands in flight), without added RTT.\n"
    );
    let _ = writeln!(w, "| added RTT | members | messages | statements | per message | `update` commands | round trips per 1,000 messages | writer statements/s | server ceiling | writer ÷ ceiling |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for i in r.ingest {
        let rate = i.writer_statements as f64 / i.writer_window.as_secs_f64();
        let _ = writeln!(
            w,
            "| {} ms | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} |",
            i.delay_ms,
            thousands(i.members),
            thousands(i.writer_acked as u64),
            thousands(i.writer_statements),
            i.writer_statements as f64 / i.writer_acked.max(1) as f64,
            i.writer_rt,
            i.writer_rt as f64 * 1000.0 / i.writer_acked.max(1) as f64,
            thousands(rate as u64),
            ceiling.map_or("n/a".into(), |c| thousands(c as u64)),
            ceiling.map_or("n/a".into(), |c| format!("{:.0}%", 100.0 * rate / c)),
        );
    }
    let _ = writeln!(
        w,
        "\nWriter `App::message` call time (how long the event handler is held; spool backpressure included): {}.",
        joined(r.ingest, |i| format!(
            "+{} ms/{}: p50 {}, p99 {}",
            i.delay_ms,
            i.members,
            i.writer_submit_lat.p50(),
            i.writer_submit_lat.p99()
        ))
    );
    let _ = writeln!(
        w,
        "Ack-time resolution (slowest `Writer::status()` sample + 250 µs poll period): {}.\n",
        joined(r.ingest, |i| format!(
            "+{} ms/{}: {}",
            i.delay_ms,
            i.members,
            ms(Some(i.sample_err + Duration::from_micros(250)))
        ))
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
        "\n### Flush of open sessions ({} guilds; sessions opened by guild snapshots 50 minutes before the last local midnight, flushed every simulated minute before it, and the row \"across midnight\" at 00:01)\n",
        cfg.flush_guilds
    );
    let _ = writeln!(w, "| server | sessions | flush | added RTT | credits | tracker lock held | durable in spool | all acknowledged | `update` round trips (proxy) | writer commands | statements (stub) | documents per credit (stub) | round trips per 1,000 credits | all requests (proxy) |");
    let _ = writeln!(
        w,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for f in r.flushes {
        if !f.setup_ok {
            let _ = writeln!(
                w,
                "| {} | {} | not run: setup did not finish ({} of {} checkpoint ops applied in {}) | | | | | | | | | | | |",
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
                "| {} | {} | {} | {} ms | {} | {} | {} | {}{} | {} | {} | {} | {} | {:.1} | {} |",
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
                x.statements.map_or(String::new(), thousands),
                x.statements.map_or(String::new(), |s| format!(
                    "{:.2}",
                    s as f64 / x.ops.max(1) as f64
                )),
                x.updates as f64 * 1000.0 / x.ops.max(1) as f64,
                x.all_requests
            );
        }
    }
    let _ = writeln!(
        w,
        "\nSetup (guild snapshots + checkpoint writes; not part of the flush figures): {}.\n",
        joined(r.flushes, |f| format!(
            "{} {}: {}{}",
            f.server,
            thousands(f.sessions as u64),
            secs(f.setup),
            if f.setup_ok { "" } else { " (not drained)" }
        ))
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
        // 100× the baseline needs this many statements per second from the
        // server; where its ceiling is lower, the bound is 80% of it.
        let per_msg = i.writer_statements as f64 / i.writer_acked.max(1) as f64;
        let needed = 100.0 * i.base_rate * per_msg;
        let rate = i.writer_statements as f64 / i.writer_window.as_secs_f64();
        let (bound, met) = match ceiling {
            Some(c) if c < needed => (
                format!(
                    "the server's ceiling bounds it: 100× needs {} statements/s, the ceiling is {}; the writer reaches {:.0}% of it (target ≥ 80%)",
                    thousands(needed as u64),
                    thousands(c as u64),
                    100.0 * rate / c
                ),
                rate >= 0.8 * c,
            ),
            _ => ("100× holds as the bound".into(), ratio >= 100.0),
        };
        let _ = writeln!(
            w,
            "| ≥ 100× baseline message throughput at +{top} ms RTT ({} members), or ≥ 80% of the server's ceiling where that makes 100× impossible | {:.1}× ({:.0} vs {:.0} msgs/s); {bound} | {} |",
            thousands(i.members),
            ratio,
            i.writer_rate,
            i.base_rate,
            if met { "yes" } else { "**no**" }
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

/// The server's statements/s in the writer's command shape: existing
/// documents with the writer's indexes, the largest collection measured, the
/// largest command size and the most commands in flight that were measured.
fn best_ceiling(p: &Probes) -> Option<f64> {
    let docs = p.ceiling.iter().map(|c| c.docs).max()?;
    let k = p.ceiling.iter().map(|c| c.statements).max()?;
    let c = p.ceiling.iter().map(|c| c.in_flight).max()?;
    p.ceiling
        .iter()
        .find(|r| {
            r.existing && r.indexed && r.docs == docs && r.statements == k && r.in_flight == c
        })
        .map(|r| r.per_sec)
}

pub fn probe_report(p: &Probes) -> String {
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
    if !p.ceiling.is_empty() {
        let _ = writeln!(
            w,
            "\n### Server ceiling: one `update` of k statements in the writer's shape (seq-guarded upserts, `ordered: false`, each on its own document), c commands in flight, directly to the database\n"
        );
        let _ = writeln!(
            w,
            "| docs in collection | indexes | k statements | c in flight | documents | commands | statements/s | command p50 |\n|---:|---|---:|---:|---|---:|---:|---:|"
        );
        for r in &p.ceiling {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(r.docs as u64),
                if r.indexed {
                    "`_id` + `member_stats`' `rank_*` as the store makes them here"
                } else {
                    "`_id` only"
                },
                thousands(r.statements as u64),
                r.in_flight,
                if r.existing {
                    "existing (updates)"
                } else {
                    "new (inserts)"
                },
                r.commands,
                thousands(r.per_sec as u64),
                ms(Some(r.command_p50))
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
        joined(rows, |r| format!(
            "{}: {}",
            thousands(r.docs as u64),
            secs(r.load)
        ))
    );
    w
}

/// A summary line's list: each of `items` formatted by `f`, joined by "; ".
fn joined<T>(items: impl IntoIterator<Item = T>, f: impl FnMut(T) -> String) -> String {
    items.into_iter().map(f).collect::<Vec<_>>().join("; ")
}
