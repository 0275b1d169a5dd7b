//! Typed settings, validated once at start-up: every setting is a flag and
//! an environment variable (also read from `.env`), grouped by what it
//! configures. Secrets are redacted in `Debug` and logs.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

/// All settings, by group.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    #[command(flatten)]
    pub discord: DiscordSettings,
    #[command(flatten)]
    pub mongo: MongoSettings,
    #[command(flatten)]
    pub tracking: TrackingSettings,
    #[command(flatten)]
    pub spool: SpoolSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub log: LogSettings,
}

/// How to reach Discord.
#[derive(Clone, Args)]
#[command(next_help_heading = "Discord")]
pub struct DiscordSettings {
    /// Bot token from the Discord developer portal (required for `run`; never printed).
    #[arg(long = "discord-token", env = "DISCORD_TOKEN", hide_env_values = true, global = true, value_parser = parse_secret)]
    pub token: Option<SecretString>,

    /// Base URL of the Discord HTTP API; the gateway URL is asked from it.
    #[arg(long = "discord-api-url", env = "DISCORD_API_URL", default_value = DEFAULT_DISCORD_API_URL, global = true)]
    pub api_url: String,

    /// Register /ud on this guild only (instant updates while developing) instead of globally.
    #[arg(long = "dev-guild-id", env = "DEV_GUILD_ID", global = true)]
    pub dev_guild_id: Option<u64>,

    /// Seconds the ◀ ▶ buttons of /history and /leaderboard stay usable before they are removed (at most 840: the reply can be edited for 15 minutes).
    #[arg(long = "buttons-timeout-secs", env = "BUTTONS_TIMEOUT_SECS", default_value_t = 300, global = true, value_parser = clap::value_parser!(u64).range(1..=840))]
    pub buttons_timeout_secs: u64,
}

/// Where the numbers are kept.
#[derive(Clone, Args)]
#[command(next_help_heading = "MongoDB")]
pub struct MongoSettings {
    /// MongoDB connection string (any password in it is redacted in logs).
    #[arg(
        long = "mongodb-uri",
        env = "MONGODB_URI",
        default_value = "mongodb://localhost:27017",
        hide_env_values = true,
        global = true
    )]
    pub uri: String,

    /// Database name.
    #[arg(
        long = "mongodb-db",
        env = "MONGODB_DB",
        default_value = "study_tracker",
        global = true
    )]
    pub db: String,

    /// Write concern of the writer's updates: `majority` (an acknowledged increment survives a failover) or a number of nodes (`1`: the primary alone).
    #[arg(
        long = "mongodb-write-concern",
        env = "MONGODB_WRITE_CONCERN",
        default_value = "majority",
        global = true,
        value_parser = parse_write_concern
    )]
    pub write_concern: WriteConcern,
}

/// How many nodes must have a write before MongoDB acknowledges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteConcern {
    /// A majority of the replica set (survives a failover).
    Majority,
    /// This many nodes (`1`: the primary alone).
    Nodes(u32),
}

/// What is counted, and when.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Tracking")]
pub struct TrackingSettings {
    /// Seconds between credits of active voice sessions (at most the resume grace, unless that is 0).
    #[arg(long = "flush-interval-secs", env = "FLUSH_INTERVAL_SECS", default_value_t = 120, global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub flush_interval_secs: u64,

    /// IANA timezone where "today", "this week" (Monday) and "this month" begin.
    #[arg(long = "timezone", env = "TIMEZONE", default_value = "UTC", global = true, value_parser = parse_tz)]
    pub timezone: chrono_tz::Tz,

    /// After a restart or a Discord gateway outage, credit the gap for members still in voice if their last credit is at most this old (0: never).
    #[arg(
        long = "resume-grace-secs",
        env = "RESUME_GRACE_SECS",
        default_value_t = 300,
        global = true
    )]
    pub resume_grace_secs: u64,

    /// Seconds the lease in MongoDB lasts without renewal (renewed every third); only its holder counts, writes and answers commands, so overlapping instances (rolling redeploys) never count twice. A holder restarted on its own spool directory takes its lease back at once. 0: no lease (one instance only, epoch 0; nothing stops a second instance from counting twice).
    #[arg(long = "lease-ttl-secs", env = "LEASE_TTL_SECS", default_value_t = 15, global = true, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub lease_ttl_secs: u64,

    /// Voice minutes a local day needs to count towards a /ud streak.
    #[arg(long = "streak-min-minutes", env = "STREAK_MIN_MINUTES", default_value_t = 15, global = true, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub streak_min_minutes: u32,

    /// Days a server's data is kept after the bot is removed from it (a `GUILD_DELETE` that is not an outage), then erased by the lease holder; the bot coming back in time cancels it. Fractions allowed.
    #[arg(long = "guild-retention-days", env = "GUILD_RETENTION_DAYS", default_value_t = 30.0, global = true, value_parser = parse_retention_days)]
    pub guild_retention_days: f64,

    /// In a server with at least --leaderboard-cache-min-members members in a period, /leaderboard and the /ud card's ranks are answered from a snapshot of that period at most this many seconds old (re-read in the background from half that age); smaller ones read MongoDB every time. 0: always read MongoDB.
    #[arg(long = "leaderboard-cache-secs", env = "LEADERBOARD_CACHE_SECS", default_value_t = 30, global = true, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub leaderboard_cache_secs: u64,

    /// Members a period needs before its rankings are answered from a kept snapshot (see --leaderboard-cache-secs).
    #[arg(
        long = "leaderboard-cache-min-members",
        env = "LEADERBOARD_CACHE_MIN_MEMBERS",
        default_value_t = 2_000,
        global = true
    )]
    pub leaderboard_cache_min_members: usize,
}

fn parse_retention_days(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && (0.0..=36_500.0).contains(d))
        .ok_or_else(|| {
            format!("GUILD_RETENTION_DAYS must be a number of days from 0 to 36500, not {s:?}")
        })
}

/// The local spool every increment goes through, and its drain on shutdown.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Spool")]
pub struct SpoolSettings {
    /// Directory of the on-disk spool that holds increments until MongoDB has them.
    #[arg(
        long = "spool-dir",
        env = "SPOOL_DIR",
        default_value = "./data/spool",
        global = true
    )]
    pub dir: PathBuf,

    /// Largest the spool may grow (bytes) during a MongoDB outage.
    #[arg(long = "spool-max-bytes", env = "SPOOL_MAX_BYTES", default_value_t = 256 * 1024 * 1024, global = true, value_parser = clap::value_parser!(u64).range(MIN_SPOOL_BYTES..))]
    pub max_bytes: u64,

    /// On SIGTERM, how long to wait for MongoDB to take pending writes; the rest stays in the spool.
    #[arg(
        long = "shutdown-timeout-secs",
        env = "SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub shutdown_timeout_secs: u64,
}

/// The HTTP listener: health checks and metrics.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Health checks and metrics")]
pub struct HttpSettings {
    /// Address (IP:port) of the HTTP listener serving /healthz, /readyz and /metrics; empty: no listener.
    #[arg(long = "http-addr", env = "HTTP_ADDR", default_value = "0.0.0.0:8080", global = true, value_parser = parse_http_addr)]
    pub addr: HttpAddr,

    /// /readyz reports not ready while more increments than this wait to reach MongoDB.
    #[arg(
        long = "ready-max-backlog",
        env = "READY_MAX_BACKLOG",
        default_value_t = 10_000,
        global = true
    )]
    pub ready_max_backlog: u64,
}

/// Where the HTTP listener listens, if anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpAddr {
    Off,
    At(std::net::SocketAddr),
}

/// What the logs look like.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogSettings {
    /// Log line format.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(
        long = "rust-log",
        env = "RUST_LOG",
        default_value = "info",
        global = true
    )]
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Smallest spool that always fits one append group (8,192 ops).
pub const MIN_SPOOL_BYTES: u64 = 8 * 1024 * 1024;

/// Discord's own API; any other value means a Discord-compatible test server.
pub const DEFAULT_DISCORD_API_URL: &str = "https://discord.com";

impl std::fmt::Debug for DiscordSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSettings")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("api_url", &self.api_url)
            .field("dev_guild_id", &self.dev_guild_id)
            .field("buttons_timeout_secs", &self.buttons_timeout_secs)
            .finish()
    }
}

impl std::fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSettings")
            .field("uri", &redact_uri(&self.uri))
            .field("db", &self.db)
            .field("write_concern", &self.write_concern)
            .finish()
    }
}

impl Settings {
    /// Checks what no single setting can check alone: combinations that
    /// would silently disable a promise.
    ///
    /// # Errors
    /// `FLUSH_INTERVAL_SECS` is longer than a non-zero `RESUME_GRACE_SECS`:
    /// every checkpoint would be older than the grace after a crash, so no
    /// session could ever be resumed.
    pub fn validate(&self) -> anyhow::Result<()> {
        let t = &self.tracking;
        if t.resume_grace_secs > 0 && t.flush_interval_secs > t.resume_grace_secs {
            anyhow::bail!(
                "FLUSH_INTERVAL_SECS ({}) is longer than RESUME_GRACE_SECS ({}): after a crash no session could be resumed; lower FLUSH_INTERVAL_SECS or raise RESUME_GRACE_SECS (0 turns resuming off)",
                t.flush_interval_secs,
                t.resume_grace_secs
            );
        }
        if let Some(refusal) = t.lease_refusal() {
            anyhow::bail!(refusal);
        }
        Ok(())
    }
}

impl DiscordSettings {
    /// The token, or an error naming the setting.
    ///
    /// # Errors
    /// `DISCORD_TOKEN` is missing or empty.
    pub fn token(&self) -> anyhow::Result<&str> {
        match &self.token {
            Some(t) if !t.expose_secret().trim().is_empty() => Ok(t.expose_secret().trim()),
            _ => anyhow::bail!(
                "DISCORD_TOKEN is not set: `run` needs the bot token (set it in the environment or .env, or pass --discord-token)"
            ),
        }
    }
}

// clap's `value_parser` takes a fallible function.
#[allow(clippy::unnecessary_wraps)]
fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

fn parse_write_concern(s: &str) -> Result<WriteConcern, String> {
    match s.trim() {
        "majority" => Ok(WriteConcern::Majority),
        n => n.parse::<u32>().ok().filter(|n| *n > 0).map(WriteConcern::Nodes).ok_or_else(|| {
            format!("MONGODB_WRITE_CONCERN must be `majority` or a number of nodes (1 or more), not {s:?}")
        }),
    }
}

fn parse_http_addr(s: &str) -> Result<HttpAddr, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(HttpAddr::Off);
    }
    s.parse().map(HttpAddr::At).map_err(|_| {
        format!("HTTP_ADDR must be an IP address and port such as 0.0.0.0:8080 (empty: no listener), not {s:?}")
    })
}

fn parse_tz(s: &str) -> Result<chrono_tz::Tz, String> {
    chrono_tz::Tz::from_str(s.trim()).map_err(|_| {
        format!("TIMEZONE must be an IANA timezone name such as UTC, Europe/Paris or Asia/Kolkata, not {s:?}")
    })
}

/// Replaces the password in a connection string (or in text containing one)
/// with `***`.
#[must_use]
pub fn redact_uri(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else {
        return uri.to_owned();
    };
    let rest = &uri[scheme_end + 3..];
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..host_end].rfind('@') else {
        return uri.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let redacted = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    format!("{}{}{}", &uri[..scheme_end + 3], redacted, &rest[at..])
}

mod lease_checks;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_uri("mongodb+srv://bob:s3cr%40t@cluster0.x.net/db?retryWrites=true"),
            "mongodb+srv://bob:***@cluster0.x.net/db?retryWrites=true"
        );
        assert_eq!(
            redact_uri("mongodb://localhost:27017"),
            "mongodb://localhost:27017"
        );
        assert_eq!(redact_uri("mongodb://bob@h/"), "mongodb://bob@h/");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cli = Cli::parse_from([
            "study-tracker",
            "--discord-token",
            "tok.en.SECRET",
            "--mongodb-uri",
            "mongodb://u:hunter2@h/",
        ]);
        let shown = format!("{:?}", cli.settings);
        assert!(
            !shown.contains("SECRET") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn bad_timezone_names_the_setting() {
        let err = Cli::try_parse_from(["study-tracker", "--timezone", "Mars/Olympus"]).unwrap_err();
        assert!(err.to_string().contains("TIMEZONE"), "{err}");
    }

    #[test]
    fn http_addr_is_an_ip_and_port_or_empty() {
        let parse = |v: &str| Cli::try_parse_from(["study-tracker", "--http-addr", v]);
        if std::env::var_os("HTTP_ADDR").is_none() {
            assert_eq!(
                Cli::parse_from(["study-tracker"]).settings.http.addr,
                HttpAddr::At("0.0.0.0:8080".parse().unwrap())
            );
        }
        assert_eq!(parse("").unwrap().settings.http.addr, HttpAddr::Off);
        assert_eq!(
            parse("127.0.0.1:0").unwrap().settings.http.addr,
            HttpAddr::At("127.0.0.1:0".parse().unwrap())
        );
        let err = parse("localhost").unwrap_err();
        assert!(err.to_string().contains("HTTP_ADDR"), "{err}");
    }

    #[test]
    fn missing_token_names_the_setting() {
        let cli = Cli::parse_from(["study-tracker"]);
        if cli.settings.discord.token.is_none() {
            assert!(cli
                .settings
                .discord
                .token()
                .unwrap_err()
                .to_string()
                .contains("DISCORD_TOKEN"));
        }
    }
}
