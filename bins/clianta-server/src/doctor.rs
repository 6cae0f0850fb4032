//! `clianta-server doctor`: checks the database the configuration names before the server is
//! pointed at it (or after), reading only. Exit code: 0 clean, 1 findings, 2 could not run.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};
use crm_core::migrations::doctor;

use crate::config::Config;

pub const CLEAN: u8 = 0;
pub const FINDINGS: u8 = 1;
pub const COULD_NOT_RUN: u8 = 2;

pub async fn run(cfg: Config) -> ExitCode {
    match check(&cfg).await {
        Ok(findings) => ExitCode::from(if findings == 0 { CLEAN } else { FINDINGS }),
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!(
                "doctor could not run: {}",
                msg.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

async fn check(cfg: &Config) -> anyhow::Result<u64> {
    // No `ensure_schema`: the doctor changes nothing, indexes included.
    let storage = crate::storage::open(&cfg.storage, cfg.connect_timeout).await?;
    let backend = storage.admin.backend();
    let legacy = storage
        .admin
        .legacy()
        .ok_or_else(|| anyhow!("the {backend} store holds no existing database to check"))?;
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut progress = move |collection: &str, read: u64| {
        let mut err = std::io::stderr().lock();
        // Progress on stderr keeps stdout the report, for scripts.
        let _ = if tty {
            write!(err, "\r\x1b[K{collection}: {read} documents read")
        } else {
            writeln!(err, "{collection}: {read} documents read")
        };
    };
    let report = doctor::run(
        legacy,
        backend,
        &clianta_catalog::all_entities(),
        &mut progress,
    )
    .await
    .with_context(|| format!("reading {}", cfg.storage))?;
    if tty {
        eprintln!("\r\x1b[K");
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{report}")?;
    writeln!(out, "took {:.1}s", started.elapsed().as_secs_f64())?;
    Ok(report.findings())
}
