//! Wiring for each subcommand: what `main` calls. Background loops are
//! spawned here, once; shutdown is a future passed in, so tests can trigger it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::app::{now_millis, App};
use crate::config::{redact_uri, LogFormat, Settings};
use crate::spool::Spool;
use crate::stats::{self, Periods, Totals};
use crate::store::Store;
use crate::tracker::MemberKey;
use crate::writer::{self, WriterOptions};

/// How long start-up waits for the previous run's spool before giving up on
/// resuming sessions.
const RESTORE_WAIT: Duration = Duration::from_secs(15);

/// Starts logging to stdout, text or JSON, filtered by `RUST_LOG`.
///
/// # Errors
/// `RUST_LOG` is not a valid filter.
pub fn init_tracing(settings: &Settings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.rust_log).map_err(|e| {
        anyhow::anyhow!(
            "RUST_LOG {:?} is not a valid log filter: {e}",
            settings.rust_log
        )
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
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

async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(&settings.mongodb_uri, &settings.mongodb_db).await
}

/// `run`: track on Discord until `shutdown` resolves.
///
/// # Errors
/// Bad settings, an unusable spool directory, or a Discord client that cannot start.
pub async fn bot(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let token = settings.token()?.to_owned();
    tracing::info!(
        mongodb = %redact_uri(&settings.mongodb_uri),
        db = %settings.mongodb_db,
        timezone = %settings.timezone,
        flush_interval_secs = settings.flush_interval_secs,
        spool_dir = %settings.spool_dir.display(),
        "starting study-tracker {}",
        env!("CARGO_PKG_VERSION")
    );
    let store = connect(&settings).await?;
    let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes).with_context(|| {
        format!(
            "SPOOL_DIR {} cannot be used (it must be a writable directory)",
            settings.spool_dir.display()
        )
    })?;
    let (writer, writer_tasks) = writer::start(store.clone(), spool, WriterOptions::default());
    let store_ready = tokio::spawn(prepare_store(store.clone()));

    let app = Arc::new(App::new(
        store,
        writer,
        settings.timezone,
        Duration::from_secs(settings.resume_grace_secs),
    ));
    app.restore_sessions(RESTORE_WAIT).await;

    let mut client = crate::discord::client(
        &token,
        &settings.discord_api_url,
        settings.dev_guild_id,
        app.clone(),
    )
    .await
    .context("cannot build the Discord client")?;
    let shards = client.shard_manager.clone();

    let flusher = tokio::spawn(flush_loop(
        app.clone(),
        Duration::from_secs(settings.flush_interval_secs),
    ));

    let outcome = tokio::select! {
        r = client.start() => r.map_err(|e| anyhow::anyhow!("Discord gateway stopped: {e}")),
        () = shutdown => Ok(()),
    };

    // Credit everyone up to this moment, stop the gateway, get it all to disk
    // and (if MongoDB is there) to the database.
    let drain = Duration::from_secs(settings.shutdown_timeout_secs);
    flusher.abort();
    store_ready.abort();
    match tokio::time::timeout(drain, app.stop_and_credit(now_millis())).await {
        Ok(credited) => tracing::info!(
            sessions = credited.sessions,
            secs = credited.secs,
            "credited open sessions up to shutdown"
        ),
        Err(_) => tracing::error!(
            "the spool is full and MongoDB unreachable: open sessions could not be credited before shutdown"
        ),
    }
    shards.shutdown_all().await;
    let report = writer_tasks.shutdown(drain).await;
    tracing::info!(left_in_spool = report.left_in_spool, "shutdown complete");
    outcome
}

/// Indexes and the start-up test write, retried in the background until they
/// succeed: the bot runs (and spools) while MongoDB is away.
async fn prepare_store(store: Store) {
    let mut delay = Duration::from_millis(500);
    loop {
        match store.prepare().await {
            Ok(()) => {
                tracing::info!("MongoDB test write succeeded; indexes ready");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_secs = delay.as_secs_f32(), "MongoDB not ready (test write failed); the bot keeps tracking and spools writes meanwhile");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Credits active sessions every `interval`. Errors cannot happen here (the
/// writer owns retries); the loop runs until aborted.
async fn flush_loop(app: Arc<App>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        app.flush_once(now_millis()).await;
    }
}

/// `check`: connect, create indexes, do the test write, say how it went.
///
/// # Errors
/// Any step failed; the message names the server (password redacted).
pub async fn check(settings: &Settings) -> anyhow::Result<()> {
    let store = connect(settings).await?;
    let uri = redact_uri(&settings.mongodb_uri);
    match store.prepare().await {
        Ok(()) => {
            println!(
                "OK: test write to {uri} (database {}, collection meta) succeeded",
                settings.mongodb_db
            );
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "MongoDB check failed for {uri}: {}",
            redact_uri(&e.to_string())
        )),
    }
}

/// `stats`: print what is stored for one member.
///
/// # Errors
/// MongoDB cannot be read.
pub async fn stats(settings: &Settings, guild: u64, user: u64, json: bool) -> anyhow::Result<()> {
    let store = connect(settings).await?;
    let now = now_millis();
    let periods = Periods::at(now, settings.timezone);
    let earliest = periods.earliest();
    let stored = store
        .member(MemberKey { guild, user }, earliest.at, &earliest.day)
        .await
        .with_context(|| {
            format!(
                "cannot read from MongoDB at {}",
                redact_uri(&settings.mongodb_uri)
            )
        })?;
    let s = stats::compute(&stored, None, &periods);
    if json {
        let t = |t: &Totals| {
            serde_json::json!({
                "voice_cam_on_secs": t.cam_on_secs,
                "voice_cam_off_secs": t.cam_off_secs,
                "messages": t.messages,
            })
        };
        let mut out = t(&s.all_time);
        out["guild_id"] = guild.to_string().into();
        out["user_id"] = user.to_string().into();
        out["timezone"] = settings.timezone.name().into();
        out["today"] = t(&s.today);
        out["this_week"] = t(&s.this_week);
        out["this_month"] = t(&s.this_month);
        println!("{out}");
    } else {
        println!(
            "{}",
            stats::render_ud(
                &format!("user {user} in guild {guild}"),
                &s,
                stats::Freshness::Current
            )
        );
    }
    Ok(())
}

/// `import-legacy`: add the previous bot's totals to one guild, once.
///
/// # Errors
/// MongoDB cannot be read or written.
pub async fn import_legacy(settings: &Settings, guild: u64) -> anyhow::Result<()> {
    let store = connect(settings).await?;
    let r = store
        .import_legacy(guild)
        .await
        .with_context(|| format!("import from {} failed", redact_uri(&settings.mongodb_uri)))?;
    println!(
        "imported {} members into guild {guild} ({} already imported earlier, {} skipped)",
        r.imported, r.already_imported, r.skipped
    );
    Ok(())
}
