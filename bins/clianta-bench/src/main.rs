//! Storage benchmark: `cargo run --release -p clianta-bench -- storage [options]`.
//!
//! Seeds contacts in several workspaces on each adapter and prints ops/s and p50/p99 latency for
//! insert, get by id, a filtered sorted page, count, and cursor paging deep into one big
//! workspace. Figures are printed, never asserted: speed is shown, not tested.
//!
//! HTTP benchmark: `cargo run --release -p clianta-bench -- http [options]` (see `http.rs`).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

mod events;
mod http;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crm_core::entities::contact::{CONTACT, Contact, ContactStatus};
use crm_core::paging::{PageRequest, Pagination};
use crm_core::repo::{Repo, Stores, to_document};
use crm_core::{Filter, ObjectId, SortKey, Storage, SystemClock, Tenant, UserId, WorkspaceId};
use hdrhistogram::Histogram;

#[derive(Debug, Clone)]
struct Options {
    adapters: Vec<String>,
    contacts: u64,
    workspaces: u64,
    ops: u64,
    deep: u64,
    deep_pages: u64,
    page_size: u64,
    mongo_uri: String,
    mongo_contacts: u64,
    sqlite_path: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            adapters: vec!["memory".into(), "sqlite".into(), "mongo".into()],
            contacts: 100_000,
            workspaces: 10,
            ops: 20_000,
            deep: 1_000_000,
            deep_pages: 1_000,
            page_size: 50,
            mongo_uri: std::env::var("CLIANTA_TEST_MONGODB_URI")
                .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".into()),
            mongo_contacts: 2_000,
            sqlite_path: None,
        }
    }
}

const USAGE: &str = "usage: clianta-bench http [options] | clianta-bench storage [--adapters memory,sqlite,mongo] [--contacts N] \
[--workspaces W] [--ops N] [--deep N] [--deep-pages P] [--page-size S] [--mongo-uri URI] \
[--mongo-contacts N] [--sqlite-path FILE]";

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("storage") => {}
        _ => bail!("{USAGE}"),
    }
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = || {
            val.parse::<u64>()
                .with_context(|| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--adapters" => o.adapters = val.split(',').map(str::to_owned).collect(),
            "--contacts" => o.contacts = num()?,
            "--workspaces" => o.workspaces = num()?.max(1),
            "--ops" => o.ops = num()?.max(1),
            "--deep" => o.deep = num()?,
            "--deep-pages" => o.deep_pages = num()?.max(1),
            "--page-size" => o.page_size = num()?.clamp(1, 500),
            "--mongo-uri" => o.mongo_uri = val.clone(),
            "--mongo-contacts" => o.mongo_contacts = num()?,
            "--sqlite-path" => o.sqlite_path = Some(val.clone()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    Ok(o)
}

struct Stat {
    hist: Histogram<u64>,
    total: Duration,
}

impl Stat {
    fn new() -> Result<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            total: Duration::ZERO,
        })
    }
    fn record(&mut self, d: Duration) {
        self.total += d;
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.hist.record(us.min(60_000_000));
    }
    fn line(&self, adapter: &str, op: &str, n_docs: u64) -> String {
        let n = self.hist.len();
        let ops = if self.total.is_zero() {
            0.0
        } else {
            n as f64 / self.total.as_secs_f64()
        };
        format!(
            "{adapter:<7} {op:<34} {n:>8} ops {ops:>12.0} ops/s  p50 {:>8} us  p99 {:>8} us  ({n_docs} contacts)",
            self.hist.value_at_quantile(0.5),
            self.hist.value_at_quantile(0.99)
        )
    }
}

/// Deterministic pseudo-random numbers, so every adapter sees the same workload.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

const STATUSES: [ContactStatus; 4] = [
    ContactStatus::Lead,
    ContactStatus::Prospect,
    ContactStatus::Customer,
    ContactStatus::Nurture,
];

fn contact(ws: WorkspaceId, user: UserId, i: u64, created_ms: i64) -> Contact {
    let mut c = Contact::new(ws, user, format!("First{i}")).with_email(format!("p{i}@example.com"));
    c.last_name = format!("Last{i}");
    c.status = STATUSES[(i % 4) as usize];
    c.tags = vec![format!("t{}", i % 7)];
    c.intent_score = (i % 100) as f64;
    c.created_at = Some(crm_core::Timestamp::from_millis(created_ms));
    c.updated_at = c.created_at;
    c
}

/// Inserts `n` contacts in batches through the raw port (the typed layer stamps "now").
async fn seed(storage: &Storage, ws: WorkspaceId, n: u64, start: u64) -> Result<Vec<ObjectId>> {
    let user = UserId::new();
    let mut ids = Vec::with_capacity(usize::try_from(n)?);
    let base = 1_700_000_000_000_i64;
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(5_000);
        let mut docs = Vec::with_capacity(usize::try_from(batch)?);
        for j in i..i + batch {
            let c = contact(ws, user, start + j, base + i64::try_from(j)? * 1_000);
            ids.push(c.id.object_id());
            docs.push(to_document(&c)?);
        }
        storage
            .docs
            .insert_many(Tenant::Workspace(ws), &CONTACT, docs)
            .await?;
        i += batch;
    }
    Ok(ids)
}

async fn open(adapter: &str, o: &Options) -> Result<(Storage, Option<std::path::PathBuf>)> {
    Ok(match adapter {
        "memory" => (
            Storage::new(Arc::new(storage_memory::MemoryStore::new())),
            None,
        ),
        "sqlite" => {
            let path = match &o.sqlite_path {
                Some(p) => std::path::PathBuf::from(p),
                None => std::env::temp_dir().join(format!("clianta-bench-{}.db", ObjectId::new())),
            };
            let s = storage_sqlite::SqliteStore::open(&path)?;
            (Storage::new(Arc::new(s)), Some(path))
        }
        "mongo" => {
            let db = format!("clianta_bench_{}", ObjectId::new());
            let s = storage_mongo::MongoStore::connect_db(&o.mongo_uri, &db)
                .await
                .with_context(|| format!("mongo at {}", o.mongo_uri))?;
            (Storage::new(Arc::new(s)), None)
        }
        other => bail!("unknown adapter {other}"),
    })
}

async fn bench_adapter(adapter: &str, o: &Options) -> Result<()> {
    let (storage, file) = open(adapter, o).await?;
    storage
        .admin
        .ensure_schema(&clianta_catalog::all_entities())
        .await?;
    let stores = Stores::new(storage.docs.clone(), Arc::new(SystemClock));
    let n = if adapter == "mongo" {
        o.mongo_contacts
    } else {
        o.contacts
    };
    let ops = if adapter == "mongo" {
        o.ops.min(1_000)
    } else {
        o.ops
    };
    let per_ws = (n / o.workspaces).max(1);

    let t = Instant::now();
    let mut workspaces = Vec::new();
    let mut ids = Vec::new();
    for w in 0..o.workspaces {
        let ws = WorkspaceId::new();
        ids.extend(
            seed(&storage, ws, per_ws, w * per_ws)
                .await?
                .into_iter()
                .map(|id| (ws, id)),
        );
        workspaces.push(ws);
    }
    let seeded = ids.len() as u64;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{adapter:<7} {:<34} {seeded:>8} docs {:>12.0} docs/s  (batches of 5,000)",
        "seed (insert_many)",
        seeded as f64 / secs
    );

    let mut rng = Lcg(42);
    let repo = |ws| -> Repo<Contact> { stores.workspace(ws).repo::<Contact>() };

    let mut st = Stat::new()?;
    for i in 0..ops.min(5_000) {
        let ws = workspaces[(i % o.workspaces) as usize];
        let c = contact(ws, UserId::new(), 10_000_000 + i, 1_800_000_000_000);
        let t = Instant::now();
        repo(ws).insert(&c).await?;
        st.record(t.elapsed());
    }
    println!("{}", st.line(adapter, "insert (typed, single)", seeded));

    let mut st = Stat::new()?;
    for _ in 0..ops {
        let (ws, id) = ids[(rng.next() % seeded) as usize];
        let t = Instant::now();
        repo(ws).get(id).await?;
        st.record(t.elapsed());
    }
    println!("{}", st.line(adapter, "get by id", seeded));

    let list_ops = (ops / 10).max(1);
    let sort = [SortKey::desc("createdAt")];
    let mut st = Stat::new()?;
    for i in 0..list_ops {
        let ws = workspaces[(i % o.workspaces) as usize];
        let f = Filter::eq("status", "customer");
        let page = PageRequest::Cursor {
            after: None,
            limit: o.page_size,
        };
        let t = Instant::now();
        repo(ws).page(&f, &sort, &page).await?;
        st.record(t.elapsed());
    }
    println!(
        "{}",
        st.line(adapter, "list status=customer by createdAt", seeded)
    );

    let mut st = Stat::new()?;
    for i in 0..list_ops {
        let ws = workspaces[(i % o.workspaces) as usize];
        let t = Instant::now();
        repo(ws).count(&Filter::eq("status", "customer")).await?;
        st.record(t.elapsed());
    }
    println!("{}", st.line(adapter, "count status=customer", seeded));

    // Deep paging is the embedded store's target; memory scans and Mongo here is a Python server.
    if adapter == "sqlite" && o.deep > 0 {
        deep_paging(adapter, &storage, &stores, o).await?;
    }
    if let Some(f) = file {
        let _ = std::fs::remove_file(&f);
        let _ = std::fs::remove_file(f.with_extension("db-wal"));
        let _ = std::fs::remove_file(f.with_extension("db-shm"));
    }
    Ok(())
}

/// Page 1 against page `deep_pages` of one big workspace, walking with cursors.
async fn deep_paging(adapter: &str, storage: &Storage, stores: &Stores, o: &Options) -> Result<()> {
    let ws = WorkspaceId::new();
    let t = Instant::now();
    seed(storage, ws, o.deep, 50_000_000).await?;
    println!(
        "{adapter:<7} {:<34} {:>8} docs in {:.1} s",
        "seed big workspace",
        o.deep,
        t.elapsed().as_secs_f64()
    );
    let repo = stores.workspace(ws).repo::<Contact>();
    let sort = [SortKey::desc("createdAt")];
    let mut first = Stat::new()?;
    let mut last = Stat::new()?;
    let mut all = Stat::new()?;
    let rounds = 3;
    for _ in 0..rounds {
        let mut after = None;
        for p in 1..=o.deep_pages {
            let req = PageRequest::Cursor {
                after: after.clone(),
                limit: o.page_size,
            };
            let t = Instant::now();
            let page = repo.page(&Filter::all(), &sort, &req).await?;
            let d = t.elapsed();
            all.record(d);
            if p == 1 {
                first.record(d);
            }
            if p == o.deep_pages {
                last.record(d);
            }
            after = match page.pagination {
                Pagination::Cursor {
                    next_cursor: Some(c),
                    ..
                } => Some(c),
                _ => break,
            };
        }
    }
    println!(
        "{}",
        first.line(adapter, "cursor page 1 (createdAt desc)", o.deep)
    );
    println!(
        "{}",
        last.line(
            adapter,
            &format!("cursor page {} (createdAt desc)", o.deep_pages),
            o.deep
        )
    );
    println!("{}", all.line(adapter, "cursor pages, all", o.deep));
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("events", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return match events::run(rest).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("events: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(("http", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return match http::run(rest).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("http: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    println!(
        "clianta-bench storage: {} contacts over {} workspaces ({} on mongo), {} ops, deep workspace {} contacts, page size {}",
        o.contacts, o.workspaces, o.mongo_contacts, o.ops, o.deep, o.page_size
    );
    for a in &o.adapters {
        if let Err(e) = bench_adapter(a, &o).await {
            eprintln!("{a}: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
