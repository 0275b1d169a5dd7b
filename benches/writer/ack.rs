//! Acknowledgement tracking: `Writer::status().applied` counts ops applied, in
//! spool order (= submission order for a single producer). A thread samples it
//! and records when each value was first seen.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use study_tracker::durable::writer::Writer;

pub struct AckPoller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<AckLog>,
}

#[derive(Default)]
pub struct AckLog {
    /// (applied, first seen at); `applied` is increasing.
    points: Vec<(u64, Instant)>,
    /// Longest single `status()` call (lock waits), i.e. the sampling error bound.
    pub worst_sample: Duration,
}

impl AckPoller {
    pub fn start(writer: Writer) -> AckPoller {
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

    pub fn finish(self) -> AckLog {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("ack poller")
    }
}

impl AckLog {
    /// Ack time of each of `n` ops submitted after the counter stood at `base`.
    pub fn ack_times(&self, base: u64, n: usize) -> Vec<Option<Instant>> {
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
