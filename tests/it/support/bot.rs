//! Runs the real `study-tracker` binary as a child process, collects its log
//! lines, and sends it signals. Every bot runs with
//! `serenity::client::dispatch=debug` so that an event serenity could not
//! parse ("An unknown event was received") fails the test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::app::with_fast_timeouts;
use super::discord_sim::{DiscordSim, BOT_TOKEN};
use super::poll::eventually;

pub const BIN: &str = env!("CARGO_BIN_EXE_study-tracker");
const UNKNOWN_EVENT: &str = "An unknown event was received";

/// How to start a bot.
#[derive(Clone, Debug)]
pub struct BotConfig {
    pub api_url: String,
    pub mongodb_uri: String,
    pub mongodb_db: String,
    pub spool_dir: PathBuf,
    pub flush_interval_secs: u64,
    pub resume_grace_secs: u64,
    pub extra_env: Vec<(String, String)>,
}

impl BotConfig {
    /// A bot talking to `sim`, writing to database `db` at `uri`, spooling in `spool_dir`.
    pub fn new(sim: &DiscordSim, uri: &str, db: &str, spool_dir: &Path) -> BotConfig {
        BotConfig {
            api_url: sim.base_url(),
            mongodb_uri: with_fast_timeouts(uri),
            mongodb_db: db.to_owned(),
            spool_dir: spool_dir.to_owned(),
            flush_interval_secs: 1,
            resume_grace_secs: 300,
            extra_env: Vec::new(),
        }
    }
}

/// Where Debian's `faketime` package puts the library (scripts/test.sh
/// installs it).
const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

impl BotConfig {
    /// Runs the bot with its wall clock `offset` away from everyone
    /// else's (libfaketime preloaded, e.g. `"-2s"`, `"+2s"`); its monotonic
    /// clock is left alone, as a real host's skew would.
    ///
    /// # Panics
    /// Without libfaketime (`apt-get install faketime`).
    #[must_use]
    pub fn with_clock_offset(mut self, offset: &str) -> BotConfig {
        let lib = LIBFAKETIME
            .iter()
            .find(|p| Path::new(p).exists())
            .expect("libfaketime (Debian package faketime; scripts/test.sh installs it)");
        for (k, v) in [
            ("LD_PRELOAD", *lib),
            ("FAKETIME", offset),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("FAKETIME_DONT_RESET", "1"),
        ] {
            self.extra_env.push((k.into(), v.into()));
        }
        self
    }
}

/// A running bot.
pub struct Bot {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    http_addr: SocketAddr,
}

/// A port on 127.0.0.1 that was free a moment ago (bound, read, released),
/// for a child process's listener.
fn free_local_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
}

/// A hostname of its own for every process started, as a container or a
/// pod gets (a Docker recreate, a pod rescheduled onto its volume: the
/// same `SPOOL_DIR` under a new `HOSTNAME`).
fn new_hostname() -> String {
    static STARTED: AtomicU64 = AtomicU64::new(0);
    format!(
        "bot-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts the real binary with `config` (`study-tracker run`), its HTTP
/// listener on a free local port (unless `extra_env` sets `HTTP_ADDR`),
/// under a `HOSTNAME` of its own (unless `extra_env` sets one).
pub fn spawn_bot(config: &BotConfig) -> Bot {
    let http_addr = free_local_addr();
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOSTNAME", new_hostname())
        .env("DISCORD_TOKEN", BOT_TOKEN)
        .env("DISCORD_API_URL", &config.api_url)
        .env("MONGODB_URI", &config.mongodb_uri)
        .env("MONGODB_DB", &config.mongodb_db)
        .env("SPOOL_DIR", &config.spool_dir)
        .env(
            "FLUSH_INTERVAL_SECS",
            config.flush_interval_secs.to_string(),
        )
        .env("RESUME_GRACE_SECS", config.resume_grace_secs.to_string())
        .env(
            "RUST_LOG",
            "info,study_tracker=debug,serenity::client::dispatch=debug",
        )
        .env("HTTP_ADDR", http_addr.to_string())
        // The lease as deployed (LEASE_TTL_SECS defaults to 15) unless a
        // test sets LEASE_TTL_SECS in `extra_env`.
        .env_remove("LEASE_TTL_SECS")
        .env("LOG_FORMAT", "text")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &config.extra_env {
        cmd.env(k, v);
    }
    // Run where no stray .env can be picked up.
    cmd.current_dir(&config.spool_dir);
    let mut child = cmd.spawn().expect("start study-tracker");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let echo = std::env::var_os("TEST_LOG").is_some();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    for stream in [
        Box::new(out) as Box<dyn std::io::Read + Send>,
        Box::new(err),
    ] {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[bot] {line}");
                }
                logs.lock().unwrap().push(line);
            }
        });
    }
    Bot {
        child,
        logs,
        http_addr,
    }
}

impl Bot {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.logs().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) {
        let logged = || self.logs.lock().unwrap().iter().any(|l| l.contains(needle));
        if eventually(timeout, || std::future::ready(logged())).await {
            return;
        }
        panic!(
            "bot never logged {needle:?} within {timeout:?}; log:\n{}",
            self.log_text()
        );
    }

    /// Fails the test if serenity dropped an event it could not parse.
    pub fn assert_no_unknown_events(&self) {
        let logs = self.logs();
        let bad: Vec<&String> = logs.iter().filter(|l| l.contains(UNKNOWN_EVENT)).collect();
        assert!(
            bad.is_empty(),
            "serenity could not parse simulator events:\n{}",
            bad.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            !logs.iter().any(|l| l.contains("panicked")),
            "the bot panicked:\n{}",
            self.log_text()
        );
    }

    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGSTOP: the process is frozen (a stalled VM, a long GC pause).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT: a frozen process runs again.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        let child = &mut self.child;
        let exited = eventually(timeout, || {
            status = child.try_wait().expect("try_wait");
            std::future::ready(status.is_some())
        })
        .await;
        assert!(
            exited,
            "bot did not exit within {timeout:?}; log:\n{}",
            self.log_text()
        );
        // Let the reader threads take the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        status.expect("exited")
    }

    /// SIGTERM and wait: the graceful path.
    pub async fn stop(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit(Duration::from_secs(30)).await
    }

    /// SIGKILL and wait: a crash.
    pub async fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(10)).await;
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion with the given args and env (no `.env`
/// lookup: runs in a temp dir); returns (exit status, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    run_cli_in(dir.path(), args, env)
}

/// [`run_cli`] in a given working directory (where a `.env` may be).
pub fn run_cli_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run study-tracker");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `study-tracker stats --json` for one member.
pub fn stats_json(uri: &str, db: &str, guild: u64, user: u64) -> serde_json::Value {
    let (status, stdout, stderr) = run_cli(
        &[
            "stats",
            "--guild",
            &guild.to_string(),
            "--user",
            &user.to_string(),
            "--json",
        ],
        &[("MONGODB_URI", uri), ("MONGODB_DB", db)],
    );
    assert!(status.success(), "stats failed: {stderr}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stats --json printed {stdout:?}: {e}"))
}
