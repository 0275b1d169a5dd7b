//! `spawn_app`: the bot in this process, wired exactly as `main` wires it
//! ([`Application::build`]), headless (no Discord token), with a shutdown
//! the test triggers. The benchmark includes this file too.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use study_tracker::app::App;
use study_tracker::cli::Cli;
use study_tracker::config::Settings;
use study_tracker::durable::writer::WriterOptions;
use study_tracker::startup::Application;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Adds short server-selection and connect timeouts so that outages are
/// noticed in tests within a second, not the default 5 s.
pub fn with_fast_timeouts(uri: &str) -> String {
    let sep = if uri.contains('?') {
        "&"
    } else if uri.ends_with('/') {
        "?"
    } else {
        "/?"
    };
    format!("{uri}{sep}serverSelectionTimeoutMS=1000&connectTimeoutMS=1000")
}

/// Settings for an in-process bot on database `db` at `uri`, spooling in
/// `spool_dir`, with no HTTP listener (`settings.http.addr =
/// HttpAddr::At(127.0.0.1:0)` starts one); adjust fields before spawning.
pub fn test_settings(uri: &str, db: &str, spool_dir: &Path) -> Settings {
    let spool_dir = spool_dir.to_str().expect("utf-8 spool path");
    let uri = with_fast_timeouts(uri);
    let cli = Cli::try_parse_from([
        "study-tracker",
        "--mongodb-uri",
        &uri,
        "--mongodb-db",
        db,
        "--spool-dir",
        spool_dir,
        "--timezone",
        "UTC",
        "--flush-interval-secs",
        "120",
        "--resume-grace-secs",
        "300",
        "--shutdown-timeout-secs",
        "10",
        "--http-addr",
        "",
    ])
    .expect("test settings parse");
    let mut settings = cli.settings;
    // The lease as deployed (LEASE_TTL_SECS defaults to 15); a test that
    // needs the single-instance mode sets 0.
    // Headless, whatever the environment holds.
    settings.discord.token = None;
    settings
}

/// A running in-process bot.
pub struct TestApp {
    pub app: Arc<App>,
    /// Turns true once the store is prepared (server known, indexes, test write).
    pub store_ready: watch::Receiver<bool>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, if they are.
    pub http_addr: Option<SocketAddr>,
    shutdown: oneshot::Sender<()>,
    running: JoinHandle<anyhow::Result<()>>,
}

/// Builds and runs a bot with `settings` and default writer tuning.
pub async fn spawn_app(settings: Settings) -> TestApp {
    spawn_app_with(settings, WriterOptions::default()).await
}

/// Builds and runs a bot with `settings` and `writer` tuning.
pub async fn spawn_app_with(settings: Settings, writer: WriterOptions) -> TestApp {
    let application = Application::build_with(settings, writer)
        .await
        .expect("application builds");
    let app = application.app().clone();
    let store_ready = application.store_ready();
    let http_addr = application.http_addr();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        app,
        store_ready,
        http_addr,
        shutdown,
        running,
    }
}

impl TestApp {
    /// Triggers the graceful shutdown without waiting for it.
    pub fn begin_shutdown(self) -> JoinHandle<anyhow::Result<()>> {
        let _ = self.shutdown.send(());
        self.running
    }

    /// Triggers the graceful shutdown and waits for it (at most 60 s).
    pub async fn stop(self) {
        let running = self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .expect("shutdown finishes")
            .expect("application task")
            .expect("application ran");
    }
}
