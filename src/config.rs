//! Command line and settings: every setting is a flag and an environment
//! variable (also read from `.env`), typed and validated once at start-up.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

/// Discord bot that records study time in voice channels (camera on / off)
/// and messages, and shows members their numbers with `/ud`.
#[derive(Debug, Parser)]
#[command(name = "study-tracker", version, about, long_about = None)]
#[command(
    after_help = "Every setting can also be given as an environment variable (shown in [env: ...]) or in a .env file in the working directory.\nRUST_LOG takes tracing filter directives, e.g. `info,study_tracker=debug`."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `run` when none is given.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Connect to Discord and track (the default).
    Run,
    /// Load the configuration, connect to MongoDB, do the test write, print the result.
    Check,
    /// Print what is stored for one member.
    Stats {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// User id.
        #[arg(long)]
        user: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add the previous Python bot's totals (collection `users`) to one guild, once.
    ImportLegacy {
        /// Guild (server) id the legacy totals belong to.
        #[arg(long)]
        guild: u64,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// All settings.
#[derive(Clone, Args)]
pub struct Settings {
    /// Bot token from the Discord developer portal (required for `run`; never printed).
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true, global = true, value_parser = parse_secret)]
    pub discord_token: Option<SecretString>,

    /// MongoDB connection string (any password in it is redacted in logs).
    #[arg(
        long,
        env = "MONGODB_URI",
        default_value = "mongodb://localhost:27017",
        hide_env_values = true,
        global = true
    )]
    pub mongodb_uri: String,

    /// Database name.
    #[arg(
        long,
        env = "MONGODB_DB",
        default_value = "study_tracker",
        global = true
    )]
    pub mongodb_db: String,

    /// Base URL of the Discord HTTP API; the gateway URL is asked from it.
    #[arg(long, env = "DISCORD_API_URL", default_value = DEFAULT_DISCORD_API_URL, global = true)]
    pub discord_api_url: String,

    /// Register /ud on this guild only (instant updates while developing) instead of globally.
    #[arg(long, env = "DEV_GUILD_ID", global = true)]
    pub dev_guild_id: Option<u64>,

    /// Seconds between credits of active voice sessions.
    #[arg(long, env = "FLUSH_INTERVAL_SECS", default_value_t = 120, global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub flush_interval_secs: u64,

    /// IANA timezone where "today", "this week" (Monday) and "this month" begin.
    #[arg(long, env = "TIMEZONE", default_value = "UTC", global = true, value_parser = parse_tz)]
    pub timezone: chrono_tz::Tz,

    /// After a restart, credit the gap for members still in voice if their last credit is at most this old.
    #[arg(long, env = "RESUME_GRACE_SECS", default_value_t = 300, global = true)]
    pub resume_grace_secs: u64,

    /// Directory of the on-disk spool that holds increments until MongoDB has them.
    #[arg(long, env = "SPOOL_DIR", default_value = "./data/spool", global = true)]
    pub spool_dir: PathBuf,

    /// Largest the spool may grow (bytes) during a MongoDB outage.
    #[arg(long, env = "SPOOL_MAX_BYTES", default_value_t = 256 * 1024 * 1024, global = true, value_parser = clap::value_parser!(u64).range(MIN_SPOOL_BYTES..))]
    pub spool_max_bytes: u64,

    /// On SIGTERM, how long to wait for MongoDB to take pending writes; the rest stays in the spool.
    #[arg(
        long,
        env = "SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub shutdown_timeout_secs: u64,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub rust_log: String,
}

/// Smallest spool that always fits one append group (8,192 ops).
pub const MIN_SPOOL_BYTES: u64 = 8 * 1024 * 1024;

/// Discord's own API; any other value means a Discord-compatible test server.
pub const DEFAULT_DISCORD_API_URL: &str = "https://discord.com";

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "discord_token",
                &self.discord_token.as_ref().map(|_| "[redacted]"),
            )
            .field("mongodb_uri", &redact_uri(&self.mongodb_uri))
            .field("mongodb_db", &self.mongodb_db)
            .field("discord_api_url", &self.discord_api_url)
            .field("dev_guild_id", &self.dev_guild_id)
            .field("flush_interval_secs", &self.flush_interval_secs)
            .field("timezone", &self.timezone)
            .field("resume_grace_secs", &self.resume_grace_secs)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The token, or an error naming the setting.
    ///
    /// # Errors
    /// `DISCORD_TOKEN` is missing or empty.
    pub fn token(&self) -> anyhow::Result<&str> {
        match &self.discord_token {
            Some(t) if !t.expose_secret().trim().is_empty() => Ok(t.expose_secret().trim()),
            _ => anyhow::bail!(
                "DISCORD_TOKEN is not set: `run` needs the bot token (set it in the environment or .env, or pass --discord-token)"
            ),
        }
    }
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn missing_token_names_the_setting() {
        let cli = Cli::parse_from(["study-tracker"]);
        if cli.settings.discord_token.is_none() {
            assert!(cli
                .settings
                .token()
                .unwrap_err()
                .to_string()
                .contains("DISCORD_TOKEN"));
        }
    }
}
