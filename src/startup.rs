//! The one wiring of a running bot, used by `main`, the in-process tests and
//! the benchmark: [`Application::build`] assembles the store, the spool, the
//! writer, the app and the background tasks; [`Application::run_until_stopped`]
//! runs the gateway (when a token is set) until the shutdown future resolves,
//! then stops everything in order.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{flush_loop, lease_loop, now_millis, ping_loop, renew_loop, snowflake_at, App};
use crate::config::{redact_uri, HttpAddr, Settings};
use crate::durable::spool::{Spool, SpoolError};
use crate::durable::writer::{self, WriterOptions, WriterTasks};
use crate::http::{Health, HttpServer, Limits, Loops};
use crate::store::Store;
use crate::telemetry::{cause_chain, prometheus};

/// How long start-up waits for the previous run's spool before giving up on
/// resuming sessions.
const RESTORE_WAIT: Duration = Duration::from_secs(15);
/// How long start-up may spend reading checkpoints once the spool is
/// applied (its own budget: a slow drain does not eat it).
const RESTORE_READ: Duration = Duration::from_secs(15);
/// `/readyz` wants an answer from MongoDB within this...
const DB_ANSWER_WINDOW: Duration = Duration::from_secs(30);
/// ...so it is pinged when nothing answered for this long.
const DB_PING_EVERY: Duration = Duration::from_secs(10);
/// How long a lease holder handing over still counts messages sent before
/// the handoff (they may still be on their way).
const HANDOVER_SETTLE: Duration = Duration::from_secs(1);
/// How long requests in progress may take once shutdown is done.
const HTTP_STOP: Duration = Duration::from_secs(1);
/// The part of `SHUTDOWN_TIMEOUT_SECS` (at most a quarter of it) kept for
/// the last steps: the writer's stop (the spool's last append, the
/// applier's stop) and the HTTP listener's.
const FINAL_STEPS: Duration = Duration::from_millis(1_500);

/// A bot with its parts assembled and its background tasks running.
#[derive(Debug)]
pub struct Application {
    settings: Settings,
    app: Arc<App>,
    writer_tasks: WriterTasks,
    /// Background loops (flusher, store preparation): stopped between
    /// iterations by `stop_tasks`, waited for at shutdown.
    tasks: TaskTracker,
    stop_tasks: CancellationToken,
    store_ready: watch::Receiver<bool>,
    /// The loops whose end `/healthz` reports.
    loops: Loops,
    /// The health and metrics listener (`HTTP_ADDR`), unless turned off.
    http: Option<HttpServer>,
}

impl Application {
    /// Binds `HTTP_ADDR`, opens the store (lazily: MongoDB may be down), the
    /// spool and the writer, prepares the store in the background, starts
    /// the health and metrics listener, restores session checkpoints and
    /// starts the flusher.
    ///
    /// # Errors
    /// `HTTP_ADDR` cannot be bound, the MongoDB URI does not parse, or
    /// `SPOOL_DIR` cannot be used.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with(settings, WriterOptions::default()).await
    }

    /// [`Application::build`] with writer tuning (tests and benchmarks).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with(
        settings: Settings,
        writer_options: WriterOptions,
    ) -> anyhow::Result<Application> {
        settings.validate()?;
        tracing::info!(
            mongodb = %redact_uri(&settings.mongo.uri),
            db = %settings.mongo.db,
            timezone = %settings.tracking.timezone,
            flush_interval_secs = settings.tracking.flush_interval_secs,
            spool_dir = %settings.spool.dir.display(),
            "starting study-tracker {}",
            env!("CARGO_PKG_VERSION")
        );
        // Bound first: a taken port fails start-up before anything runs. The
        // recorder is installed before the writer starts, so that its first
        // counts are recorded.
        let listener = match settings.http.addr {
            HttpAddr::At(addr) => Some((crate::http::bind(addr).await?, prometheus::recorder())),
            HttpAddr::Off => None,
        };
        let store = Store::connect(&settings.mongo.uri, &settings.mongo.db)
            .await?
            .with_write_concern(settings.mongo.write_concern)
            .with_timezone(settings.tracking.timezone);
        let spool = open_spool(&settings.spool.dir, settings.spool.max_bytes)?;
        // Under a lease nothing is written (not even the previous run's
        // spool) before this instance holds it.
        let writer_options = WriterOptions {
            writes_start_paused: settings.tracking.lease_ttl_secs > 0,
            ..writer_options
        };
        let (writer, writer_tasks) = writer::start(store.clone(), spool, writer_options);
        let loops = Loops::default();
        for (name, task) in writer_tasks.loops() {
            loops.watch(name, task);
        }
        let tasks = TaskTracker::new();
        let stop_tasks = CancellationToken::new();
        let (ready_tx, store_ready) = watch::channel(false);
        tasks.spawn(prepare_store(store.clone(), ready_tx, stop_tasks.clone()));

        let app = Arc::new(App::new(
            store,
            writer,
            settings.tracking.timezone,
            Duration::from_secs(settings.tracking.resume_grace_secs),
            Duration::from_secs(u64::from(settings.tracking.streak_min_minutes) * 60),
            Duration::from_secs(settings.tracking.lease_ttl_secs),
        ));
        // Served before the restore (up to 30 s): liveness probes must
        // get answers from the start.
        let http = match listener {
            Some((listener, metrics)) => {
                let pinging =
                    tasks.spawn(ping_loop(app.clone(), DB_PING_EVERY, stop_tasks.clone()));
                loops.watch("mongodb_ping", pinging.abort_handle());
                let health = Health {
                    app: app.clone(),
                    loops: loops.clone(),
                    stopping: stop_tasks.clone(),
                    gateway: settings.discord.token.is_some(),
                    limits: Limits {
                        db_window: DB_ANSWER_WINDOW,
                        max_backlog: settings.http.ready_max_backlog,
                    },
                    metrics,
                };
                Some(HttpServer::start(listener, health)?)
            }
            None => None,
        };
        start_counting(&app, &tasks, &loops, &stop_tasks).await;
        let flushing = tasks.spawn(flush_loop(
            app.clone(),
            Duration::from_secs(settings.tracking.flush_interval_secs),
            stop_tasks.clone(),
        ));
        loops.watch("flusher", flushing.abort_handle());
        Ok(Application {
            settings,
            app,
            writer_tasks,
            tasks,
            stop_tasks,
            store_ready,
            loops,
            http,
        })
    }

    /// The service the adapters call.
    #[must_use]
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The address `/healthz`, `/readyz` and `/metrics` are served on
    /// (`None`: `HTTP_ADDR` is empty).
    #[must_use]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::addr)
    }

    /// Turns true once the store is prepared (server known, indexes, test
    /// write); the bot runs before that (it spools while MongoDB is away).
    #[must_use]
    pub fn store_ready(&self) -> watch::Receiver<bool> {
        self.store_ready.clone()
    }

    /// Runs until `shutdown` resolves (or the gateway stops for good), then
    /// shuts down gracefully. With a Discord token the gateway client runs;
    /// without one the bot is headless (tests and benchmarks drive the
    /// [`App`] directly).
    ///
    /// # Errors
    /// The Discord client cannot be built, or the gateway stopped for good.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        if self.settings.discord.token.is_none() {
            shutdown.await;
            self.stop(None).await;
            return Ok(());
        }
        let token = self.settings.discord.token()?.to_owned();
        let mut client = crate::discord::client(
            &token,
            &self.settings.discord.api_url,
            self.settings.discord.dev_guild_id,
            Duration::from_secs(self.settings.discord.buttons_timeout_secs),
            self.app.clone(),
        )
        .await
        .context("cannot build the Discord client")?;
        let shards = client.shard_manager.clone();
        // Spawned once per run, on the tracked tasks: it stops with them.
        let watching = self.tasks.spawn(crate::discord::watch_gateway(
            shards.clone(),
            self.app.clone(),
            self.stop_tasks.clone(),
        ));
        self.loops.watch("gateway_watch", watching.abort_handle());
        let outcome = tokio::select! {
            r = client.start() => r.map_err(|e| anyhow::anyhow!("Discord gateway stopped: {e}")),
            () = shutdown => Ok(()),
        };
        self.stop(Some(shards)).await;
        outcome
    }

    /// Stops intake, lets the background loops finish their iteration,
    /// credits every open session up to this moment, closes the shards and
    /// drains the writer, then stops the HTTP listener (`/readyz` says
    /// "stopping" meanwhile, and `/metrics` shows the drain). Each wait is
    /// bounded by `SHUTDOWN_TIMEOUT_SECS`; what MongoDB has not taken stays
    /// in the spool.
    async fn stop(self, shards: Option<Arc<poise::serenity_prelude::ShardManager>>) {
        use tokio::time::{timeout_at, Instant};
        let stopped_at = now_millis();
        // One budget for the whole shutdown, from the signal to the exit:
        // the platform's kill comes after its own grace period, which must
        // be at least `SHUTDOWN_TIMEOUT_SECS`. Every step that talks to
        // MongoDB or Discord is cut at `work`; the last steps (the spool's
        // final append, the applier's and the listener's stop) have the
        // rest, so an outage (renewal, drain and release all waiting for a
        // server that does not answer) cannot push the exit past `hard`.
        let timeout = Duration::from_secs(self.settings.spool.shutdown_timeout_secs);
        let hard = Instant::now() + timeout;
        let work = hard - (timeout / 4).min(FINAL_STEPS);
        let left = |until: Instant| until.saturating_duration_since(Instant::now());
        // The lease holder hands over: messages from `handoff` on are the
        // next holder's (it buffered them).
        let handing_over = self.app.lease_enabled() && self.app.lease().held();
        let handoff = snowflake_at(stopped_at);
        if handing_over {
            self.app.begin_handover(handoff);
        }
        self.stop_tasks.cancel();
        self.tasks.close();
        if timeout_at(work, self.tasks.wait()).await.is_err() {
            tracing::error!(
                consequence = "the credits of that flush are lost",
                "a background loop did not stop in time"
            );
        }
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
            // Messages sent before the handoff may still be on their way.
            tokio::time::sleep(HANDOVER_SETTLE.min(left(work))).await;
        }
        self.app.end_message_intake();
        if handing_over {
            // The gateway stays up (commands answered) until the release.
            // A fresh validity for the drain (writes pause once it lapses).
            if timeout_at(work, self.app.renew_lease()).await.is_err() {
                tracing::warn!("the lease renewal before the drain did not finish in time");
            }
            // The release's round trip comes out of the drain's time.
            let release_at = work - (left(work) / 4).min(Duration::from_secs(1));
            if self.app.writer().wait_idle(left(release_at)).await {
                if timeout_at(work, self.app.release_lease(handoff, stopped_at))
                    .await
                    .is_err()
                {
                    tracing::error!(
                        consequence = "the standby takes over when the lease expires",
                        "the lease release did not finish in time"
                    );
                }
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
}

/// Takes the lease (or stands by) and keeps it, or, without a lease,
/// restores the sessions of the previous run.
async fn start_counting(
    app: &Arc<App>,
    tasks: &TaskTracker,
    loops: &Loops,
    stop: &CancellationToken,
) {
    if app.lease_enabled() {
        // Before the first takeover: it renews while that one restores.
        let renewing = tasks.spawn(renew_loop(app.clone(), stop.clone()));
        loops.watch("lease_renewal", renewing.abort_handle());
        // Holder: the takeover restores; standby: the later one does.
        if !app.start_lease((RESTORE_WAIT, RESTORE_READ)).await {
            tracing::info!(
                "another instance holds the lease; standing by (connected, counting nothing)"
            );
        }
        let leasing = tasks.spawn(lease_loop(
            app.clone(),
            (RESTORE_WAIT, RESTORE_READ),
            stop.clone(),
        ));
        loops.watch("lease", leasing.abort_handle());
    } else {
        app.raise_seq_floor().await;
        app.restore_sessions(RESTORE_WAIT, RESTORE_READ).await;
    }
}

/// Learns the server, creates indexes and does the start-up test write,
/// retried until it succeeds or `stop`: the bot runs (and spools) while
/// MongoDB is away.
async fn prepare_store(store: Store, ready: watch::Sender<bool>, stop: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        let attempt = tokio::select! {
            r = store.prepare() => r,
            () = stop.cancelled() => return,
        };
        match attempt {
            Ok(()) => {
                tracing::info!("MongoDB test write succeeded; indexes ready");
                ready.send_replace(true);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), retry_in_secs = delay.as_secs_f32(), consequence = "the bot keeps tracking and spools writes meanwhile", "MongoDB not ready (test write failed)");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// The spool in `dir`; a directory that cannot be used is named in the error.
fn open_spool(dir: &std::path::Path, max_bytes: u64) -> anyhow::Result<Spool> {
    match Spool::open(dir, max_bytes) {
        Ok(spool) => Ok(spool),
        Err(SpoolError::Io(e)) => Err(e).with_context(|| {
            format!(
                "SPOOL_DIR {} cannot be used (it must be a writable directory)",
                dir.display()
            )
        }),
        Err(e) => Err(e.into()),
    }
}
