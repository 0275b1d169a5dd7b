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

use crate::app::{flush_loop, lease_loop, ping_loop, renew_loop, settings_loop, App};

/// How long the start waits for the servers' settings.
const SETTINGS_FIRST_READ: Duration = Duration::from_secs(3);
use crate::config::{redact_uri, HttpAddr, Settings};
use crate::durable::spool::{Spool, SpoolError};
use crate::durable::writer::{self, WriterOptions, WriterTasks};
use crate::http::{Health, HttpServer, Limits, Loops};
use crate::store::{BoardPolicy, Store};
use crate::telemetry::{cause_chain, prometheus};

mod stop;

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
        for warning in settings.tracking.lease_warnings() {
            tracing::warn!("{warning}");
        }
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
            .with_write_concern(settings.mongo.write_concern);
        store.keep_boards(BoardPolicy {
            max_age: Duration::from_secs(settings.tracking.leaderboard_cache_secs),
            min_members: settings.tracking.leaderboard_cache_min_members,
        });
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
        // Each server's settings decide what counts from the first event:
        // read before the gateway connects (bounded; an outage keeps the
        // defaults until the reload every few seconds reaches MongoDB).
        app.keep_settings_in(settings.spool.dir.join("guild-settings.json"));
        app.read_settings_at_start(SETTINGS_FIRST_READ).await;
        app.set_guild_retention(Duration::from_secs_f64(
            settings.tracking.guild_retention_days * 86_400.0,
        ));
        let reloading = tasks.spawn(settings_loop(app.clone(), stop_tasks.clone()));
        loops.watch("settings", reloading.abort_handle());
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
        app.carry_periods();
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
