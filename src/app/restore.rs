//! Session checkpoints from before a restart, handed to the tracker once
//! the previous run's spool has reached MongoDB; and the one-time carry of
//! an earlier version's running periods.

use std::time::{Duration, Instant};

use super::App;
use crate::core::tracker::RestoredSession;
use crate::telemetry::cause_chain;

impl App {
    /// Loads session checkpoints left by the previous run, once the spool from
    /// that run has reached MongoDB (so they are current). Waits at most
    /// `drain` for the spool, then gives the read its own budget, `read`;
    /// if MongoDB is down, members in voice are tracked from the moment they
    /// are seen, and the log says so. A read cut short resumes what it got.
    /// Returns the sessions handed to the tracker.
    pub async fn restore_sessions(&self, drain: Duration, read: Duration) -> Vec<RestoredSession> {
        let timeout = drain;
        let started = Instant::now();
        loop {
            let status = self.writer.status();
            if status.backlog == 0 {
                break;
            }
            // Give an unreachable MongoDB a moment, not the whole timeout.
            let waited = started.elapsed();
            if waited >= timeout || (!status.db_ok && waited >= Duration::from_secs(2)) {
                tracing::warn!(backlog = status.backlog, consequence = "sessions from before the restart are not resumed; members in voice are tracked from now", "the previous run's spool is not applied yet (MongoDB unreachable?)");
                return Vec::new();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reading = Instant::now();
        match self
            .store
            .open_sessions(tokio::time::Instant::now() + read)
            .await
        {
            Ok(mut found) => {
                // Credits the totals refused (dead letters) are past the
                // stored resume point: resuming before them would credit
                // their stretch again once they are retried.
                let refused = self.writer.dead_letter_credits();
                for s in &mut found.sessions {
                    if let Some(to) = refused.get(&s.member) {
                        s.session.last_credit = s.session.last_credit.max(*to);
                    }
                }
                if found.complete {
                    tracing::info!(
                        sessions = found.sessions.len(),
                        round_trips = found.round_trips,
                        ms = reading.elapsed().as_millis(),
                        "loaded session checkpoints from before the restart"
                    );
                } else {
                    tracing::error!(
                        resumed = found.sessions.len(),
                        budget_secs = read.as_secs(),
                        consequence = "members whose checkpoint was not read are tracked from now; their downtime is not credited",
                        "loading session checkpoints did not finish in time"
                    );
                }
                self.tracker.lock().await.restore(found.sessions.clone());
                found.sessions
            }
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), consequence = "members in voice are tracked from now", "cannot load session checkpoints");
                Vec::new()
            }
        }
    }

    /// Starts sequence numbers above the high-water mark saved in MongoDB, so
    /// a host with an empty spool and a clock behind the previous one's does
    /// not issue numbers MongoDB would take for replays. Without MongoDB the
    /// local floor (`spool.seq`) is all there is, and the log says so.
    pub async fn raise_seq_floor(&self) {
        match tokio::time::timeout(Duration::from_secs(3), self.store.seq_high_water()).await {
            Ok(Ok(seq)) => {
                self.writer.raise_seq_floor(seq);
                tracing::debug!(
                    seq,
                    "sequence numbers start above the saved high-water mark"
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %cause_chain(&e), consequence = "sequence numbers rely on the local spool and the clock", "cannot read the sequence high-water mark");
            }
            Err(_) => tracing::warn!(
                consequence = "sequence numbers rely on the local spool and the clock",
                "reading the sequence high-water mark timed out"
            ),
        }
    }

    /// Carries an earlier version's running periods into `member_stats`
    /// once per database (`store/carry.rs`), on a task of its own: counting
    /// does not wait for it.
    pub fn carry_periods(&self) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.carry_periods_once().await {
                tracing::warn!(error = %cause_chain(&e), consequence = "the day, week and month leaderboards may miss what the previous version counted in the running periods; tried again at the next takeover", "cannot carry the previous version's running periods");
            }
        });
    }
}
