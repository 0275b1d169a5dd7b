//! The `/ud` chart's render time: `cargo bench --bench chart [-- --runs N]`.
//!
//! Draws the 14-day chart (`render::render_chart`, what `/ud` runs on a
//! blocking thread and `render-ud` writes) for a plausible fortnight: every
//! day with camera-on and camera-off time and messages, a few days empty. 20
//! warm-up draws, then `N` (default 500) timed draws, one at a time on one
//! thread; prints p50, p90, p99 and the maximum, and the PNG's size. Target
//! (issue 9): p99 under 30 ms.

// A measurement program: counts and durations are converted for printing.
#![allow(clippy::cast_precision_loss)]

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use study_tracker::core::daily::DayTotals;
use study_tracker::render::render_chart;

const WARM_UP: usize = 20;

fn fortnight() -> Vec<DayTotals> {
    let first = NaiveDate::from_ymd_opt(2026, 11, 13).expect("a date");
    (0..14_i64)
        .map(|i| {
            let busy = !matches!(i, 3 | 9);
            DayTotals {
                date: first + chrono::Days::new(u64::try_from(i).unwrap_or(0)),
                cam_on_secs: if busy { 1_800 + i * 611 } else { 0 },
                cam_off_secs: if busy { 900 + (i % 5) * 1_237 } else { 0 },
                messages: (i * 7) % 31,
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round();
    // `rank` is within 0..len.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    sorted[rank as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runs = 500_usize;
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N");
        }
    }
    let days = fortnight();
    // The first draw parses the bundled fonts (once per process).
    let start = Instant::now();
    let size = render_chart(&days, "Ada: last 14 days")
        .expect("draws")
        .len();
    let first = start.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("first draw (parses the fonts): {:.2} ms", ms(first));
    println!(
        "| chart render ({runs} draws, 800×400 PNG of {size} bytes) | p50 | p90 | p99 | max |"
    );
    println!("|---|---|---|---|---|");
    for (what, title) in [
        ("Latin title", "Ada: last 14 days"),
        (
            "title in 7 scripts",
            "学习者 공부 นักเรียน विद्यार्थी طالب תלמיד 📚🔥: last 14 days",
        ),
    ] {
        let times = draws(&days, title, runs);
        println!(
            "| `render_chart`, 14 days, {what} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.90)),
            ms(percentile(&times, 0.99)),
            ms(times[times.len() - 1]),
        );
    }
}

/// `runs` timed draws of `title` after the warm-up, sorted.
fn draws(days: &[DayTotals], title: &str, runs: usize) -> Vec<Duration> {
    for _ in 0..WARM_UP {
        std::hint::black_box(render_chart(days, title).expect("draws"));
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let png = render_chart(days, title).expect("draws");
        times.push(start.elapsed());
        std::hint::black_box(png);
    }
    times.sort_unstable();
    times
}
