//! Entry point: read `.env` and the command line, start logging, run the
//! subcommand, turn its outcome into an exit code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use study_tracker::cli::{Cli, Command};
use study_tracker::startup::{shutdown_signal, Application};
use study_tracker::{cmd, telemetry};

// The allocator: a flush builds, encodes and frees BSON documents by the
// hundred thousand; mimalloc costs them far less than the system's malloc
// (BENCHMARKS.md, "F7: two documents per op"). The writer benchmark's
// counting allocator wraps the same one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: serenity spawns a task per gateway event, and a single-threaded
// runtime polls them in arrival order, so one member's events reach the
// tracker in the order Discord sent them. Blocking work (fsync) runs on
// tokio's blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A missing .env is normal; a broken one is reported by the settings it breaks.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(e) = telemetry::init(&cli.settings.log) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let settings = cli.settings;
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(settings).await,
        Command::Check => cmd::check(&settings).await,
        Command::Stats { guild, user, json } => cmd::stats(&settings, guild, user, json).await,
        Command::PurgeGuild { guild } => cmd::purge_guild(&settings, guild).await,
        Command::Erase { guild, user } => cmd::erase(&settings, guild, user).await,
        Command::Adjust {
            guild,
            user,
            what,
            amount,
            reason,
        } => cmd::adjust(&settings, guild, user, &what, &amount, &reason).await,
        Command::Export { guild, user } => cmd::export(&settings, guild, user).await,
        Command::Settings { guild, json } => cmd::settings(&settings, guild, json).await,
        Command::Audit {
            guild,
            user,
            limit,
            json,
        } => cmd::audit(&settings, guild, user, limit, json).await,
        Command::History {
            guild,
            user,
            limit,
            json,
        } => cmd::history(&settings, guild, user, limit, json).await,
        Command::Leaderboard {
            guild,
            period,
            by,
            page,
            json,
        } => cmd::leaderboard(&settings, guild, period, by, page, json).await,
        Command::RenderUd { guild, user, out } => {
            cmd::render_ud(&settings, guild, user, &out).await
        }
        Command::ImportLegacy { guild } => cmd::import_legacy(&settings.mongo, guild).await,
        Command::DeadLetters { retry } => cmd::dead_letters(&settings, retry).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `run`: track on Discord until SIGTERM or Ctrl-C.
async fn run(settings: study_tracker::config::Settings) -> anyhow::Result<()> {
    settings.discord.token()?;
    settings.validate()?;
    Application::build(settings)
        .await?
        .run_until_stopped(shutdown_signal())
        .await
}
