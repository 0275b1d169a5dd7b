//! The HTTP listener (`HTTP_ADDR`): `/healthz`, `/readyz` and `/metrics`,
//! served by axum for platforms' health checks and Prometheus.
//!
//! - this file: binding, serving, stopping; the registry of loops whose
//!   end `/healthz` reports.
//! - [`routes`]: the handlers, and the gauges sampled for `/metrics`.
//! - [`readiness`]: liveness and readiness as pure functions of a snapshot.

mod readiness;
mod routes;

pub use readiness::{liveness, readiness, Gateway, Limits, Liveness, Readiness, Snapshot};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::telemetry::cause_chain;

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (they would otherwise pile up in memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The background loops whose end makes the process not alive. Handles are
/// only asked whether their task finished; nothing here stops a task.
#[derive(Clone, Debug, Default)]
pub struct Loops(Arc<Mutex<Vec<(&'static str, AbortHandle)>>>);

impl Loops {
    /// Reports `task`'s end, under `name`, from now on.
    pub fn watch(&self, name: &'static str, task: AbortHandle) {
        self.lock().push((name, task));
    }

    /// Each loop's name and whether it has ended.
    #[must_use]
    pub fn ended(&self) -> Vec<(&'static str, bool)> {
        self.lock()
            .iter()
            .map(|(name, task)| (*name, task.is_finished()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, AbortHandle)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct Health {
    pub app: Arc<App>,
    pub loops: Loops,
    /// Cancelled when shutdown begins (the loops then end on purpose).
    pub stopping: CancellationToken,
    /// Whether a gateway runs (a Discord token is set).
    pub gateway: bool,
    pub limits: Limits,
    pub metrics: PrometheusHandle,
}

/// Binds the listener (`HTTP_ADDR`).
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("HTTP_ADDR {addr} cannot be bound (empty HTTP_ADDR turns the listener off)")
    })
}

/// The running listener.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl HttpServer {
    /// Serves `health` on `listener` until [`HttpServer::shutdown`].
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn start(listener: TcpListener, health: Health) -> anyhow::Result<HttpServer> {
        let addr = listener
            .local_addr()
            .context("the HTTP listener has no address")?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let metrics = health.metrics.clone();
        let router = routes::router(health);
        let serving = stop.clone();
        tasks.spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(serving.cancelled_owned())
                .await
            {
                tracing::error!(error = %cause_chain(&e), consequence = "health checks fail; the bot goes on counting", "the HTTP listener stopped");
            }
        });
        tasks.spawn(upkeep(metrics, stop.clone()));
        tasks.close();
        tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
        Ok(HttpServer { addr, stop, tasks })
    }

    /// The address it listens on (the port the system chose for port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in progress finish (at most `timeout`).
    pub async fn shutdown(self, timeout: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(timeout, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                waited_secs = timeout.as_secs_f32(),
                "HTTP requests were still in progress at shutdown"
            );
        }
    }
}

async fn upkeep(metrics: PrometheusHandle, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(UPKEEP_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => metrics.run_upkeep(),
        }
    }
}
