//! Small helpers.

use std::time::{Duration, Instant};

use chrono_tz::Tz;
use study_tracker::core::MemberKey;

pub const GUILD0: u64 = 1_100_000_000_000_000_000;
pub const USER0: u64 = 1_200_000_000_000_000_000;
pub const CHANNEL0: u64 = 1_300_000_000_000_000_000;
pub const TZ: Tz = chrono_tz::UTC;

pub fn member(g: u64, u: u64) -> MemberKey {
    MemberKey {
        guild: GUILD0 + g,
        user: USER0 + u,
    }
}

pub fn progress(msg: &str) {
    eprintln!("[bench {:>7.1}s] {msg}", started().elapsed().as_secs_f64());
}

pub fn started() -> Instant {
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

pub fn ms(d: Option<Duration>) -> String {
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

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Clone, Debug, Default)]
pub struct Lat {
    pub sorted: Vec<Duration>,
}

impl Lat {
    pub fn new(mut v: Vec<Duration>) -> Lat {
        v.sort_unstable();
        Lat { sorted: v }
    }
    pub fn p50(&self) -> String {
        ms(pct(&self.sorted, 50.0))
    }
    pub fn p99(&self) -> String {
        ms(pct(&self.sorted, 99.0))
    }
    pub fn max(&self) -> String {
        ms(self.sorted.last().copied())
    }
}

pub fn proc_status(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok() // kB
}

/// Resets `VmHWM` (peak RSS) to the current RSS (Linux `clear_refs` 5).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
