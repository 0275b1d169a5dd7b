//! Entry point: read `.env` and the command line, start logging, run the
//! subcommand, turn its outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use study_tracker::config::{Cli, Command};
use study_tracker::run;

// One thread: serenity spawns a task per gateway event, and a single-threaded
// runtime polls them in arrival order, so one member's events reach the
// tracker in the order Discord sent them. Blocking work (fsync) runs on
// tokio's blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A missing .env is normal; a broken one is reported by the settings it breaks.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(e) = run::init_tracing(&cli.settings) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run::bot(cli.settings, run::shutdown_signal()).await,
        Command::Check => run::check(&cli.settings).await,
        Command::Stats { guild, user, json } => run::stats(&cli.settings, guild, user, json).await,
        Command::ImportLegacy { guild } => run::import_legacy(&cli.settings, guild).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
