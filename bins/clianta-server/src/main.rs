//! The Clianta server: loads configuration, opens the store it names, prepares it (schema,
//! migrations) and serves the HTTP API until SIGTERM or Ctrl-C. `migrate` manages data
//! migrations by hand.

mod blobs;
mod config;
mod doctor;
mod outbound;
mod run;
mod storage;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "clianta-server", version, about = "The Clianta CRM server")]
struct Cli {
    /// TOML configuration file (default: $CLIANTA_CONFIG, else ./clianta.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply, revert or list data migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Check an existing database, reading only (exit 0 clean, 1 findings, 2 could not run).
    Doctor,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (all, or up to and including version N).
    Up {
        #[arg(long, value_name = "N")]
        to: Option<u32>,
    },
    /// Revert applied migrations above version N (default: only the last applied one; 0 reverts
    /// all).
    Down {
        #[arg(long, value_name = "N")]
        to: Option<u32>,
    },
    /// List every migration and whether it is applied.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Doctor)) {
        return run_doctor(&cli);
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
        .and_then(|rt| {
            let r = rt.block_on(async {
                let cfg = config::Config::load(cli.config.as_deref())?;
                match cli.command.unwrap_or(Command::Serve) {
                    Command::Serve => run::serve(cfg).await,
                    Command::Migrate(cmd) => run::migrate(cfg, cmd).await,
                    Command::Doctor => Ok(()),
                }
            });
            // Driver background tasks must not hold the exit.
            rt.shutdown_timeout(Duration::from_secs(5));
            r
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the causes joined by ": ".
            let msg = format!("{e:#}");
            eprintln!(
                "error: {}",
                msg.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::FAILURE
        }
    }
}

/// Its own exit codes, so scripts can tell findings (1) from a failure to run (2).
fn run_doctor(cli: &Cli) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("doctor could not run: cannot start the async runtime: {e}");
            return ExitCode::from(doctor::COULD_NOT_RUN);
        }
    };
    let code = rt.block_on(async {
        match config::Config::load(cli.config.as_deref()) {
            Ok(cfg) => doctor::run(cfg).await,
            Err(e) => {
                eprintln!("doctor could not run: {e:#}");
                ExitCode::from(doctor::COULD_NOT_RUN)
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    code
}
