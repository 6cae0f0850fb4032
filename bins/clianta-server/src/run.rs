//! Start-up, serving and the `migrate` commands.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clianta_api::AppState;
use crm_core::migrate::{self, MIGRATIONS};
use crm_core::{Storage, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::MigrateCommand;
use crate::config::{Config, LogFormat};

/// Where log lines go: the server logs on stdout; `migrate` keeps stdout for its report.
#[derive(Debug, Clone, Copy)]
enum LogTo {
    Stdout,
    Stderr,
}

fn init_tracing(cfg: &Config, to: LogTo) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&cfg.log)
        .with_context(|| format!("invalid log filter `{}`", cfg.log))?;
    let colour = match to {
        LogTo::Stdout => std::io::stdout().is_terminal(),
        LogTo::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    let result = match (cfg.log_format, to) {
        (LogFormat::Text, LogTo::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Text, LogTo::Stderr) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json, LogTo::Stdout) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stdout)
            .try_init(),
        (LogFormat::Json, LogTo::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    result.map_err(|e| anyhow!("cannot set up logging: {e}"))
}

/// Every declared entity.
fn schema() -> Vec<&'static crm_core::EntityDef> {
    clianta_catalog::all_entities()
}

/// Opens the store and ensures its schema; every command starts here.
async fn open(cfg: &Config) -> anyhow::Result<Storage> {
    info!(storage = %cfg.storage, "opening storage");
    let storage = crate::storage::open(&cfg.storage, cfg.connect_timeout).await?;
    storage
        .admin
        .ensure_schema(&schema())
        .await
        .with_context(|| {
            format!(
                "cannot create the schema in {} (`clianta-server doctor` says why)",
                cfg.storage
            )
        })?;
    Ok(storage)
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    init_tracing(&cfg, LogTo::Stdout)?;
    // Handlers are installed before anything slow so an early SIGTERM is still graceful.
    let shutdown = shutdown_signal()?;
    let storage = open(&cfg).await?;
    if cfg.migrate_on_start {
        let done = migrate::up(storage.admin.as_ref(), MIGRATIONS, None, &SystemClock)
            .await
            .context("migrations failed")?;
        if !done.is_empty() {
            info!(versions = ?done, "migrations applied");
        }
    } else {
        let pending = migrate::status(storage.admin.as_ref(), MIGRATIONS)
            .await
            .context("cannot read the migration status")?
            .iter()
            .filter(|m| !m.applied)
            .count();
        if pending > 0 {
            warn!(
                pending,
                "migrations pending; run `clianta-server migrate up`"
            );
        }
    }

    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    let backend = storage.admin.backend();
    let blobs = crate::blobs::open(&cfg.blobs)?;
    info!(blobs = ?cfg.blobs, "attachment bytes");
    let http =
        Arc::new(crate::outbound::ReqwestHttp::new().context("cannot build the HTTP client")?);
    let state = AppState::new(storage, cfg.api.clone())
        .with_blobs(blobs)
        .with_http(http)
        .with_automation_config(cfg.automation.clone());
    // Workers, relay and periodic jobs stop with the server; a running job finishes (within
    // the grace period) or its lease lets another process redo it.
    let (stop_jobs, jobs_stopping) = tokio::sync::watch::channel(false);
    let jobs = (cfg.automation.concurrency > 0).then(|| {
        info!(workers = cfg.automation.concurrency, "background jobs");
        state.automation.spawn("w", jobs_stopping)
    });
    let app = clianta_api::router(state);
    info!(addr = %addr, storage = backend, "listening");

    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    // The peer address is what the rate limits key anonymous callers on.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        notify.notify_one();
    });
    let grace = cfg.shutdown_grace;
    tokio::select! {
        r = std::future::IntoFuture::into_future(server) => r.context("server failed")?,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        } => warn!(grace_secs = grace.as_secs(), "requests still open after the grace period"),
    }
    let _ = stop_jobs.send(true);
    if let Some(jobs) = jobs
        && tokio::time::timeout(grace, jobs.join()).await.is_err()
    {
        warn!(
            grace_secs = grace.as_secs(),
            "background jobs still running after the grace period"
        );
    }
    info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. The handlers exist once this returns, not on first poll.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        let term = term.recv();
        #[cfg(not(unix))]
        let term = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = ctrl_c => info!("Ctrl-C received, shutting down"),
            _ = term => info!("SIGTERM received, shutting down"),
        }
    })
}

pub async fn migrate(cfg: Config, cmd: MigrateCommand) -> anyhow::Result<()> {
    init_tracing(&cfg, LogTo::Stderr)?;
    info!(storage = %cfg.storage, "opening storage");
    let storage = crate::storage::open(&cfg.storage, cfg.connect_timeout).await?;
    // An original database may hold data a declared unique index refuses (two contacts with one
    // email): the migrations still run, and the one for that index lists the records.
    let schema_failed = match storage.admin.ensure_schema(&schema()).await {
        Ok(()) => false,
        Err(e) => {
            warn!(error = %e, "schema incomplete; running the migrations first");
            true
        }
    };
    let admin = storage.admin.as_ref();
    let mut out = std::io::stdout().lock();
    match cmd {
        MigrateCommand::Up { to } => {
            let done = migrate::up(admin, MIGRATIONS, to, &SystemClock)
                .await
                .context("migrations failed")?;
            report(&mut out, "applied", &done)?;
            if schema_failed {
                admin
                    .ensure_schema(&schema())
                    .await
                    .with_context(|| format!("cannot create the schema in {}", cfg.storage))?;
            }
        }
        MigrateCommand::Down { to } => {
            let target = match to {
                Some(t) => Some(t),
                None => admin
                    .applied_migrations()
                    .await
                    .context("cannot read the applied migrations")?
                    .iter()
                    .map(|m| m.version)
                    .max()
                    .map(|last| last - 1),
            };
            let done = match target {
                Some(t) => migrate::down(admin, MIGRATIONS, t)
                    .await
                    .context("reverting migrations failed")?,
                None => Vec::new(),
            };
            report(&mut out, "reverted", &done)?;
        }
        MigrateCommand::Status => {
            let applied = admin
                .applied_migrations()
                .await
                .context("cannot read the applied migrations")?;
            writeln!(
                out,
                "{:<8} {:<28} {:<8} applied_at",
                "version", "name", "state"
            )?;
            for m in MIGRATIONS {
                let at = applied.iter().find(|a| a.version == m.version);
                writeln!(
                    out,
                    "{:<8} {:<28} {:<8} {}",
                    m.version,
                    m.name,
                    if at.is_some() { "applied" } else { "pending" },
                    at.map(|a| a.applied_at.to_canonical()).unwrap_or_default()
                )?;
            }
        }
    }
    Ok(())
}

fn report(out: &mut impl Write, verb: &str, versions: &[u32]) -> anyhow::Result<()> {
    if versions.is_empty() {
        writeln!(out, "nothing {verb}")?;
    }
    for v in versions {
        let name = MIGRATIONS
            .iter()
            .find(|m| m.version == *v)
            .map_or("?", |m| m.name);
        writeln!(out, "{verb} {v} {name}")?;
    }
    Ok(())
}
