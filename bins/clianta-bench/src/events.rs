//! Event pipeline benchmark: `clianta-bench events [--events N] [--workers W] [--poll-ms P]
//! [--writers K] [--sqlite-path FILE]`.
//!
//! Creates N contacts through the repository on a SQLite file (each write stores its
//! `contact.created` event and outbox entry atomically) while the automation runtime runs: the
//! relay turns outbox entries into `event.deliver` jobs and W workers run them; the consumer does
//! one write per event (tags the contact, itself an evented write). Prints events/s end to end
//! (first create to last handled) and the latency from each event's `occurredAt` to its
//! handling. Figures are printed, never asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use automation::handlers::EventConsumer;
use automation::jobs::Job;
use automation::runtime::{Runtime, RuntimeConfig};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::events::DomainEvent;
use crm_core::repo::Stores;
use crm_core::{Clock, Filter, ObjectId, Storage, SystemClock, Update, UserId, WorkspaceId};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use storage_sqlite::SqliteStore;

const USAGE: &str = "usage: clianta-bench events [--events N] [--workers W] [--poll-ms P] \
[--writers K] [--sqlite-path FILE]";

#[derive(Debug, Clone)]
struct Options {
    events: u64,
    workers: usize,
    poll_ms: u64,
    writers: u64,
    sqlite_path: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        events: 5_000,
        workers: 4,
        poll_ms: 5,
        writers: 4,
        sqlite_path: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = || {
            val.parse::<u64>()
                .with_context(|| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--events" => o.events = num()?.max(1),
            "--workers" => o.workers = usize::try_from(num()?.max(1))?,
            "--poll-ms" => o.poll_ms = num()?.max(1),
            "--writers" => o.writers = num()?.max(1),
            "--sqlite-path" => o.sqlite_path = Some(val.clone()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    Ok(o)
}

/// Tags each created contact (one write) and records how long after the event that happened.
#[derive(Debug)]
struct Tagger {
    stores: Stores,
    clock: Arc<dyn Clock>,
    handled: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

#[async_trait]
impl EventConsumer for Tagger {
    fn name(&self) -> &'static str {
        "bench.tagger"
    }
    fn wants(&self, event_type: &str) -> bool {
        event_type == "contact.created"
    }
    async fn handle(&self, event: &DomainEvent) -> crm_core::Result<()> {
        let Some(id) = event.entity_id else {
            return Ok(());
        };
        self.stores
            .workspace(event.workspace_id)
            .repo::<Contact>()
            .update(
                ContactId::from(id),
                &Update::new().add_to_set("tags", "handled"),
            )
            .await?;
        let waited = self.clock.now().millis() - event.occurred_at.millis();
        let us = u64::try_from(waited.max(0)).unwrap_or(0) * 1000;
        let _ = self.latency_us.lock().record(us.max(1));
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let path = o.sqlite_path.clone().map_or_else(
        || std::env::temp_dir().join(format!("clianta-bench-events-{}.db", ObjectId::new())),
        Into::into,
    );
    let store = Arc::new(SqliteStore::open(&path).context("cannot open the SQLite file")?);
    let storage = Storage::new(store);
    storage
        .admin
        .ensure_schema(&clianta_catalog::all_entities())
        .await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = Stores::new(storage.docs.clone(), clock.clone());
    let mut config = RuntimeConfig {
        concurrency: o.workers,
        ..RuntimeConfig::default()
    };
    config.worker.poll_interval = Duration::from_millis(o.poll_ms);
    let rt = Runtime::with_config(stores.clone(), clock.clone(), config);
    let tagger = Arc::new(Tagger {
        stores: stores.clone(),
        clock: clock.clone(),
        handled: AtomicU64::new(0),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
    });
    rt.register_consumer(tagger.clone());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let tasks = rt.spawn("bench", stopping);

    println!(
        "clianta-bench events: {} contacts on sqlite ({}), {} writers, {} workers, poll {} ms",
        o.events,
        path.display(),
        o.writers,
        o.workers,
        o.poll_ms
    );
    let started = Instant::now();
    let ws = WorkspaceId::new();
    let owner = UserId::new();
    let mut writers: tokio::task::JoinSet<crm_core::Result<()>> = tokio::task::JoinSet::new();
    for w in 0..o.writers {
        let repo = stores.workspace(ws).repo::<Contact>();
        let n = o.events / o.writers + u64::from(w < o.events % o.writers);
        writers.spawn(async move {
            for i in 0..n {
                repo.insert(&Contact::new(ws, owner, format!("c{w}-{i}")))
                    .await?;
            }
            Ok(())
        });
    }
    while let Some(r) = writers.join_next().await {
        r??;
    }
    let created = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while tagger.handled.load(Ordering::SeqCst) < o.events {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} events handled after 10 minutes",
                tagger.handled.load(Ordering::SeqCst),
                o.events
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let total = started.elapsed();
    let _ = stop.send(true);
    tasks.join().await;
    let done = stores
        .global::<Job>()
        .count(&Filter::eq("status", "done"))
        .await?;
    let h = tagger.latency_us.lock().clone();
    println!(
        "created {} contacts in {:.2} s ({:.0}/s); all handled after {:.2} s: {:.0} events/s end to end; {} delivery jobs done",
        o.events,
        created.as_secs_f64(),
        o.events as f64 / created.as_secs_f64(),
        total.as_secs_f64(),
        o.events as f64 / total.as_secs_f64(),
        done
    );
    println!(
        "created -> handled latency: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(&h, 0.5),
        ms(&h, 0.9),
        ms(&h, 0.99),
        h.max() as f64 / 1000.0
    );
    if o.sqlite_path.is_none() {
        drop(rt);
        drop(storage);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}
