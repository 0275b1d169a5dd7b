//! The graceful shutdown of an [`Application`], within one budget.

use std::sync::Arc;
use std::time::Duration;

use super::Application;
use crate::app::{now_millis, snowflake_at};

/// How long a lease holder handing over still counts messages (any id: the
/// next holder counts exactly those it did not): fewer are left to a
/// standby whose deliveries lag.
const HANDOVER_SETTLE: Duration = Duration::from_secs(1);
/// How long requests in progress may take once shutdown is done.
const HTTP_STOP: Duration = Duration::from_secs(1);
/// The part of `SHUTDOWN_TIMEOUT_SECS` (at most a quarter of it) kept for
/// the last steps: the writer's stop (the spool's last append, the
/// applier's stop) and the HTTP listener's.
const FINAL_STEPS: Duration = Duration::from_millis(1_500);

impl Application {
    /// Stops intake, lets the background loops finish their iteration,
    /// credits every open session up to this moment, closes the shards and
    /// drains the writer, then stops the HTTP listener (`/readyz` says
    /// "stopping" meanwhile, and `/metrics` shows the drain). Each wait is
    /// bounded by `SHUTDOWN_TIMEOUT_SECS`; what MongoDB has not taken stays
    /// in the spool.
    pub(super) async fn stop(self, shards: Option<Arc<poise::serenity_prelude::ShardManager>>) {
        use tokio::time::{timeout_at, Instant};
        let signal = Instant::now();
        // One budget for the whole shutdown, from the signal to the exit:
        // the platform's kill comes after its own grace period, which must
        // be at least `SHUTDOWN_TIMEOUT_SECS`. Every step that talks to
        // MongoDB or Discord is cut at `work`; the last steps (the spool's
        // final append, the applier's and the listener's stop) have the
        // rest, so an outage (renewal, drain and release all waiting for a
        // server that does not answer) cannot push the exit past `hard`.
        let timeout = Duration::from_secs(self.settings.spool.shutdown_timeout_secs);
        let hard = signal + timeout;
        let work = hard - (timeout / 4).min(FINAL_STEPS);
        let left = |until: Instant| until.saturating_duration_since(Instant::now());
        // The lease holder hands over: it counts messages until its intake
        // closes; the next holder counts those it did not (by id). A standby
        // still starting is waited for (counting meanwhile), for at most
        // half the budget, so that the lease is not released to nobody.
        let handing_over = self.app.lease_enabled() && self.app.lease().held();
        if handing_over {
            self.app
                .wait_for_warm_standby(signal + (work - signal) / 2)
                .await;
        }
        let stopped_at = now_millis();
        let handoff = snowflake_at(stopped_at);
        if handing_over {
            self.app.begin_handover();
        }
        self.stop_tasks.cancel();
        self.tasks.close();
        if timeout_at(work, self.tasks.wait()).await.is_err() {
            tracing::error!(
                consequence = "the credits of that flush are lost",
                "a background loop did not stop in time"
            );
        }
        // A standby whose takeover was under way at the signal (both
        // instances stopped at once) is the holder now: it hands over too,
        // from this moment (it counted up to here from its buffer).
        let late = !handing_over && self.app.lease_enabled() && self.app.lease().held();
        let (stopped_at, handoff, handing_over) = if late {
            let now = now_millis();
            self.app.begin_handover();
            tracing::info!("took the lease while stopping; handing it over too");
            (now, snowflake_at(now), true)
        } else {
            (stopped_at, handoff, handing_over)
        };
        if let Ok(credited) = timeout_at(work, self.app.stop_and_credit(stopped_at)).await {
            tracing::info!(
                sessions = credited.sessions,
                secs = credited.secs,
                "credited open sessions up to shutdown"
            );
        } else {
            tracing::error!(
                consequence = "open sessions are not credited up to shutdown",
                "the spool is full and MongoDB unreachable"
            );
        }
        if handing_over {
            // Messages on their way to both instances: counted here, so a
            // standby whose deliveries lag does not miss them.
            tokio::time::sleep(HANDOVER_SETTLE.min(left(work))).await;
        }
        self.app.end_message_intake();
        if handing_over {
            // The gateway stays up (commands answered) until the release.
            // A fresh validity for the drain (writes pause once it lapses).
            if timeout_at(work, self.app.renew_lease()).await.is_err() {
                tracing::warn!("the lease renewal before the drain did not finish in time");
            }
            // Where it stopped, for a takeover at the expiry if the release
            // below never succeeds.
            let note_by = Instant::now() + (left(work) / 4).min(Duration::from_secs(2));
            self.app
                .note_pending_handoff(handoff, stopped_at, note_by)
                .await;
            // The release's round trip comes out of the drain's time.
            let release_at = work - (left(work) / 4).min(Duration::from_secs(1));
            if self.drain_renewing(release_at, work).await {
                self.app.release_lease(handoff, stopped_at, work).await;
            } else {
                tracing::error!(
                    consequence = "the standby takes over when the lease expires",
                    "the spool did not drain; the lease is not released"
                );
            }
        }
        if let Some(shards) = shards {
            // Serenity allows each shard 5 s to close; the spool comes first.
            let budget = left(work).min(Duration::from_secs(2));
            if tokio::time::timeout(budget, shards.shutdown_all())
                .await
                .is_err()
            {
                tracing::warn!("the Discord shards did not close in time; leaving them");
            }
        }
        // The HTTP listener's stop comes out of the writer's time.
        let http_stop = HTTP_STOP.min(left(hard) / 4);
        let report = self
            .writer_tasks
            .shutdown(left(hard).saturating_sub(http_stop))
            .await;
        if let Some(http) = self.http {
            http.shutdown(http_stop.min(left(hard))).await;
        }
        tracing::info!(left_in_spool = report.left_in_spool, "shutdown complete");
    }

    /// Waits until the writer is idle (by `until`), renewing the lease
    /// every third of its TTL meanwhile (the loops have stopped): a drain
    /// longer than the validity keeps writing, and the lease is released
    /// after it, rather than left to expire. Each renewal is cut at `work`.
    async fn drain_renewing(
        &self,
        until: tokio::time::Instant,
        work: tokio::time::Instant,
    ) -> bool {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let drain = self.app.writer().wait_idle(left);
        tokio::pin!(drain);
        loop {
            tokio::select! {
                biased;
                drained = &mut drain => return drained,
                () = tokio::time::sleep(self.app.lease_renew_every()) => {
                    if tokio::time::timeout_at(work, self.app.renew_lease()).await.is_err() {
                        tracing::warn!("a lease renewal during the drain did not finish in time");
                    }
                }
            }
        }
    }
}
