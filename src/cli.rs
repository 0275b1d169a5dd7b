//! The command line: subcommands and their arguments. Settings shared by
//! every subcommand live in [`crate::config`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Settings;

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
        /// Print one JSON object instead of text: the totals, the same for today, this week and this month, the streak, and `rank`: the member's place in the server by total voice in each period (null where they have nothing).
        #[arg(long)]
        json: bool,
    },
    /// Print a page of a server's leaderboard (10 members a page), from the rollups as stored: members with nothing in the period are not listed; ties share a rank (1, 1, 3).
    Leaderboard {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// The period containing now, in TIMEZONE (weeks start on Monday).
        #[arg(long, value_enum, default_value_t = PeriodArg::Week)]
        period: PeriodArg,
        /// What to rank by.
        #[arg(long, value_enum, default_value_t = ByArg::Voice)]
        by: ByArg,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        page: u64,
        /// Print one JSON object instead of a table: `{"period", "by", "entries": [{"rank", "user_id", "voice_cam_on_secs", "voice_cam_off_secs", "messages"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Print one member's latest sessions, newest first (a table in TIMEZONE, or JSON in UTC).
    History {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// User id.
        #[arg(long)]
        user: u64,
        /// How many sessions.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write one member's chart of the last 14 local days (in TIMEZONE) as a PNG.
    RenderUd {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// User id.
        #[arg(long)]
        user: u64,
        /// Where to write the PNG.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the increments a document refused for good (the dead-letter file beside the spool in `SPOOL_DIR`); with --retry, apply them again once the cause is fixed (each at most once).
    DeadLetters {
        /// Apply every dead letter again and remove those that now apply.
        #[arg(long)]
        retry: bool,
    },
    /// Print a server's settings (what `/settings show` says): its timezone, the channels that do not count, the streak threshold; defaults filled in.
    Settings {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// Print one JSON object: `{"timezone", "excluded_channels": [ids as strings], "streak_min_minutes"}`.
        #[arg(long)]
        json: bool,
    },
    /// Print a server's audit log, newest first: settings changes, corrections, erasures.
    Audit {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// Only the entries about this member.
        #[arg(long)]
        user: Option<u64>,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print one JSON object: `{"entries": [{"at", "actor_id", "action", "user_id", "what", "amount", "reason", "old", "new"}]}` (ids as strings, `at` in RFC 3339 UTC).
        #[arg(long)]
        json: bool,
    },
    /// Correct one member's figures in one server (what `/adjust` does; the actor recorded as `operator`): adds a signed amount to their all-time totals and to today's day, week and month (in the server's timezone), once, and keeps it in the audit log. Refused if it would take a total or today below zero.
    Adjust {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// User id.
        #[arg(long)]
        user: u64,
        /// `camera_on`, `camera_off` or `messages`.
        #[arg(long)]
        what: String,
        /// Signed amount: time as 1h30m, -45m, 90s or plain seconds; messages as a count.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// Why (required, up to 200 characters).
        #[arg(long)]
        reason: String,
    },
    /// Print everything stored about one member of one server as JSON (what `/privacy export` attaches): top-level keys `guild_id`, `user_id`, `totals`, `days`, `weeks`, `months`, `sessions`, `open_session`, `corrections`, `audit`, `opted_out`.
    Export {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// User id.
        #[arg(long)]
        user: u64,
    },
    /// Erase everything stored about one member of one server (what `/privacy erase` does): a tombstone so nothing counted before comes back, their documents deleted, an audit entry (actor `operator`).
    Erase {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
        /// User id.
        #[arg(long)]
        user: u64,
    },
    /// Erase a whole server's data at once (what the retention does `GUILD_RETENTION_DAYS` after the bot is removed): every member's numbers and sessions, its settings and opt-outs; an audit entry (actor `operator`) stays.
    PurgeGuild {
        /// Guild (server) id.
        #[arg(long)]
        guild: u64,
    },
    /// Add the previous Python bot's totals (collection `users`) to one guild, once.
    ImportLegacy {
        /// Guild (server) id the legacy totals belong to.
        #[arg(long)]
        guild: u64,
    },
}

/// `leaderboard --period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeriodArg {
    /// Today (since local midnight).
    Today,
    /// This week (since Monday).
    Week,
    /// This month.
    Month,
    /// All time.
    All,
}

/// `leaderboard --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ByArg {
    /// Total voice time (camera on and off).
    Voice,
    /// Voice time with the camera on.
    Camera,
    /// Messages.
    Messages,
}
