//! The gateway watch: reads the shard's state from serenity's shard manager
//! a few times a second and hands it to the app as a [`Link`] fact.
//!
//! Why a poll: serenity 0.12 dispatches no event when a connection drops and
//! its resume attempt fails; it only records the shard's stage (and the
//! latency of its last acknowledged heartbeat) in `ShardManager::runners`,
//! and restarts the shard. `READY` and `RESUMED` (see `events.rs`) say when
//! the gateway is back. The judgement of the observations is the core's
//! ([`HeartbeatWatch`]).
//!
//! Ordering: the runtime is single-threaded, and the stage read and the
//! tracker-lock request happen with no `.await` between them that could let
//! another task run. Serenity updates the stage before it dispatches `READY`
//! or `RESUMED`, so an observation of a lost shard always reaches the tracker
//! before the reconnect's events do.

use std::sync::Arc;
use std::time::Duration;

use poise::serenity_prelude as serenity;
use tokio_util::sync::CancellationToken;

use crate::app::{now_millis, App};
use crate::core::link::{HeartbeatWatch, Link};
use crate::telemetry::prometheus as metric;

/// How often the shard is observed: a lost gateway is credited at most
/// this much past the disconnect (the bot runs one shard, `Client::start`).
pub const POLL: Duration = Duration::from_millis(250);

/// Observes shard 0 every [`POLL`] until `stop` is cancelled.
pub async fn watch_gateway(
    shards: Arc<serenity::ShardManager>,
    app: Arc<App>,
    stop: CancellationToken,
) {
    let shard = serenity::ShardId(0);
    let shard_label = shard.0.to_string();
    let mut heartbeats = HeartbeatWatch::default();
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Link> = None;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (connected, latency) = {
            let runners = shards.runners.lock().await;
            runners.get(&shard).map_or((false, None), |r| {
                (r.stage == serenity::ConnectionStage::Connected, r.latency)
            })
        };
        if let Some(latency) = latency {
            metrics::gauge!(metric::SHARD_LATENCY, "shard" => shard_label.clone()).set(latency);
        }
        let latency = latency.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let at = now_millis();
        let link = heartbeats.observe(at, connected, latency);
        if last != Some(link) {
            tracing::debug!(shard = shard.0, ?link, "gateway link");
            last = Some(link);
        }
        app.gateway_link(shard.0, link, at).await;
    }
}
