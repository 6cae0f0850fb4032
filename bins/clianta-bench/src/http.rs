//! HTTP benchmark: `clianta-bench http [--connections 1,16,64] [--duration-secs 10]
//! [--storage sqlite|memory]`.
//!
//! Serves the real router on 127.0.0.1 (ephemeral port) in this process, registers a user,
//! creates a workspace, seeds contacts, a pipeline and deals through the API, then at each
//! concurrency level drives a mixed load over that many keep-alive HTTP/1.1 connections:
//! create contact, get contact, list contacts by status with a sort, move a deal's stage.
//! Server and client share the process and its cores, so the figures are for both together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clianta_api::ratelimit::RateLimitCounters;
use clianta_api::{ApiConfig, AppState, RateLimitConfig};
use crm_core::migrate::{self, MIGRATIONS};
use crm_core::services::ratelimit::Limit;
use crm_core::{ObjectId, Storage, SystemClock};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::Lcg;

const USAGE: &str = "usage: clianta-bench http [--connections 1,16,64] [--duration-secs 10] \
[--storage sqlite|memory] [--rate-limit process|store|off] [--member-cache-ttl-secs 5] \
[--list cursor|offset] [--deals-per-connection 8] [--max-requests N] [--seed-contacts N]";

/// Where the limiter counts; `Process` is what the server picks for the embedded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limiter {
    Off,
    Store,
    Process,
}

#[derive(Debug, Clone)]
struct Options {
    connections: Vec<usize>,
    duration: Duration,
    storage: String,
    /// Unless off, the limiter counts every request with budgets no run can reach.
    limiter: Limiter,
    member_cache_ttl: Duration,
    /// Cursor paging (no `total`, no count) or offset paging (counts the matches every page).
    list_cursor: bool,
    deals_per_connection: usize,
    /// Per level: the level also stops after this many requests.
    max_requests: u64,
    seed_contacts: u64,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        connections: vec![1, 16, 64],
        duration: Duration::from_secs(10),
        storage: "sqlite".into(),
        limiter: Limiter::Process,
        member_cache_ttl: ApiConfig::default().member_cache_ttl,
        list_cursor: true,
        deals_per_connection: 8,
        max_requests: 1_000_000,
        seed_contacts: 1_000,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            bail!("{USAGE}");
        }
        let val = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = || {
            val.parse::<u64>()
                .with_context(|| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--connections" => {
                o.connections = val
                    .split(',')
                    .map(|c| c.trim().parse::<usize>().map(|n| n.clamp(1, 1024)))
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("{flag}: not a list of numbers"))?;
            }
            "--duration-secs" => o.duration = Duration::from_secs(num()?.clamp(1, 600)),
            "--storage" => match val.as_str() {
                "sqlite" | "memory" => o.storage = val.clone(),
                other => bail!("unknown storage {other}\n{USAGE}"),
            },
            "--rate-limit" => match val.as_str() {
                "process" => o.limiter = Limiter::Process,
                "store" | "counted" => o.limiter = Limiter::Store,
                "off" => o.limiter = Limiter::Off,
                other => bail!("unknown rate-limit mode {other}\n{USAGE}"),
            },
            "--list" => match val.as_str() {
                "cursor" => o.list_cursor = true,
                "offset" => o.list_cursor = false,
                other => bail!("unknown list paging {other}\n{USAGE}"),
            },
            "--deals-per-connection" => {
                o.deals_per_connection = usize::try_from(num()?.clamp(1, 64))?;
            }
            "--member-cache-ttl-secs" => o.member_cache_ttl = Duration::from_secs(num()?),
            "--max-requests" => o.max_requests = num()?.max(1),
            "--seed-contacts" => o.seed_contacts = num()?.clamp(1, 100_000),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    Ok(o)
}

/// The mixed operations, in print order, with their share of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Get,
    List,
    Move,
}

const OPS: [(Op, &str, u64); 4] = [
    (Op::Create, "POST contacts", 20),
    (Op::Get, "GET contacts/{id}", 40),
    (Op::List, "GET contacts?status&sort", 30),
    (Op::Move, "PATCH opportunities/{id}/move", 10),
];

/// What the seeding left to work with; `None` means the operation is skipped.
#[derive(Debug)]
struct Seed {
    token: String,
    base: String,
    contact_ids: Option<Vec<String>>,
    list: bool,
    /// Deals, each with the stage ids it cycles through.
    deals: Option<Vec<String>>,
    stages: Vec<String>,
}

/// One keep-alive connection; reconnects after a transport error.
struct Conn {
    addr: SocketAddr,
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self { addr, tx })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        if self.tx.is_closed() {
            *self = Self::open(self.addr).await?;
        }
        self.tx.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "127.0.0.1");
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(b) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(b)?)
            }
            None => Bytes::new(),
        };
        let resp = self.tx.send_request(req.body(Full::new(bytes))?).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A request that must succeed; answers the JSON body.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Result<Value, (StatusCode, String)>> {
        let (status, bytes) = self.send(method, path, token, body).await?;
        if status.is_success() {
            Ok(Ok(serde_json::from_slice(&bytes)?))
        } else {
            Ok(Err((status, String::from_utf8_lossy(&bytes).into_owned())))
        }
    }
}

fn id_of(v: &Value) -> Result<String> {
    v.get("_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no _id in {v}"))
}

/// A missing route answers 404/405; the operation is then left out of the load.
fn missing(what: &str, status: StatusCode, body: &str) -> Result<()> {
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        println!("skipped: {what} (answered {status}: {body})");
        Ok(())
    } else {
        bail!("{what}: {status} {body}")
    }
}

const STATUSES: [&str; 4] = ["lead", "prospect", "customer", "nurture"];

fn contact_body(tag: &str, i: u64) -> Value {
    json!({
        "firstName": format!("First{i}"),
        "lastName": format!("Last{i}"),
        "email": format!("{tag}-{i}@example.com"),
        "status": STATUSES[(i % 4) as usize],
        "tags": [format!("t{}", i % 7)],
        "company": "Bench Ltd",
    })
}

async fn seed(addr: SocketAddr, o: &Options) -> Result<Seed> {
    let mut c = Conn::open(addr).await?;
    let reg = c
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(&json!({
                "email": "bench@example.com",
                "password": "Bench-passw0rd",
                "name": "Bench",
            })),
        )
        .await?
        .map_err(|(s, b)| anyhow!("register: {s} {b}"))?;
    let token = reg
        .pointer("/tokens/accessToken")
        .and_then(Value::as_str)
        .context("register answered no access token")?
        .to_owned();
    let ws = c
        .call(
            Method::POST,
            "/api/v1/workspaces",
            Some(&token),
            Some(&json!({"name": "Bench"})),
        )
        .await?
        .map_err(|(s, b)| anyhow!("create workspace: {s} {b}"))?;
    let base = format!("/api/v1/workspaces/{}", id_of(&ws)?);

    let t = Instant::now();
    let mut contact_ids = Some(Vec::new());
    for i in 0..o.seed_contacts {
        let body = contact_body("seed", i);
        match c
            .call(
                Method::POST,
                &format!("{base}/contacts"),
                Some(&token),
                Some(&body),
            )
            .await?
        {
            Ok(v) => {
                if let Some(ids) = contact_ids.as_mut() {
                    ids.push(id_of(&v)?);
                }
            }
            Err((s, b)) => {
                missing("contacts (create and get)", s, &b)?;
                contact_ids = None;
                break;
            }
        }
    }
    if let Some(ids) = &contact_ids {
        println!(
            "seeded {} contacts in {:.1} s",
            ids.len(),
            t.elapsed().as_secs_f64()
        );
    }

    let list = match c
        .call(
            Method::GET,
            &format!("{base}/contacts?status=customer&sort=-createdAt&limit=20"),
            Some(&token),
            None,
        )
        .await?
    {
        Ok(_) => true,
        Err((s, b)) => {
            missing("contact list", s, &b)?;
            false
        }
    };

    let (deals, stages) = seed_deals(&mut c, &base, &token, o, contact_ids.as_deref()).await?;
    Ok(Seed {
        token,
        base,
        contact_ids,
        list,
        deals,
        stages,
    })
}

/// A pipeline of four open stages and `--deals-per-connection` deals per connection of the
/// largest level, so no two connections move the same deal at once and no deal's stage history
/// grows with the run's length as fast as one shared deal's would.
async fn seed_deals(
    c: &mut Conn,
    base: &str,
    token: &str,
    o: &Options,
    contacts: Option<&[String]>,
) -> Result<(Option<Vec<String>>, Vec<String>)> {
    let stage_names = ["Qualify", "Meet", "Propose", "Negotiate"];
    let body = json!({
        "name": "Bench pipeline",
        "stages": stage_names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
    });
    let pipeline = match c
        .call(
            Method::POST,
            &format!("{base}/pipelines"),
            Some(token),
            Some(&body),
        )
        .await?
    {
        Ok(p) => p,
        Err((s, b)) => {
            missing("pipelines, so the stage move", s, &b)?;
            return Ok((None, Vec::new()));
        }
    };
    let pipeline_id = id_of(&pipeline)?;
    let stages = pipeline
        .get("stages")
        .and_then(Value::as_array)
        .context("pipeline without stages")?
        .iter()
        .map(id_of)
        .collect::<Result<Vec<_>>>()?;
    let n = o.connections.iter().copied().max().unwrap_or(1) * o.deals_per_connection;
    let mut deals = Vec::with_capacity(n);
    for i in 0..n {
        let mut body = json!({
            "title": format!("Deal {i}"),
            "value": 1000 + i,
            "pipelineId": pipeline_id,
        });
        if let Some(id) = contacts.and_then(|ids| ids.get(i)) {
            body["contactId"] = json!(id);
        }
        match c
            .call(
                Method::POST,
                &format!("{base}/opportunities"),
                Some(token),
                Some(&body),
            )
            .await?
        {
            Ok(d) => deals.push(id_of(&d)?),
            Err((s, b)) => {
                missing("opportunities, so the stage move", s, &b)?;
                return Ok((None, stages));
            }
        }
    }
    println!(
        "seeded a pipeline of {} stages and {} deals",
        stages.len(),
        deals.len()
    );
    Ok((Some(deals), stages))
}

struct OpStat {
    hist: Histogram<u64>,
    errors: u64,
    /// The first failure, to say why.
    sample: Option<String>,
}

impl OpStat {
    fn new() -> Result<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            errors: 0,
            sample: None,
        })
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.hist.add(&other.hist)?;
        self.errors += other.errors;
        if self.sample.is_none() {
            self.sample.clone_from(&other.sample);
        }
        Ok(())
    }
}

type Stats = Vec<OpStat>;

fn new_stats() -> Result<Stats> {
    OPS.iter().map(|_| OpStat::new()).collect()
}

struct Shared {
    seed: Arc<Seed>,
    /// Operations in the mix: cumulative weights, to pick by one random number.
    mix: Vec<(usize, u64)>,
    sent: AtomicU64,
    max_requests: u64,
    level: usize,
    list_cursor: bool,
    deals_per_connection: usize,
}

async fn worker(shared: Arc<Shared>, addr: SocketAddr, n: usize, until: Instant) -> Result<Stats> {
    let mut stats = new_stats()?;
    let s = &shared.seed;
    let mut conn = Conn::open(addr).await?;
    let mut rng = Lcg(0x9e37_79b9 ^ ((shared.level as u64) << 32) ^ n as u64);
    let total_weight = shared.mix.last().map_or(0, |m| m.1);
    let mut mine: Vec<String> = Vec::new();
    let mut created = 0u64;
    let mut moves = 0usize;
    let per = shared.deals_per_connection;
    let tag = format!("l{}w{n}", shared.level);
    while Instant::now() < until && total_weight > 0 {
        if shared.sent.fetch_add(1, Ordering::Relaxed) >= shared.max_requests {
            break;
        }
        let r = rng.next() % total_weight;
        let Some(&(op, _)) = shared.mix.iter().find(|(_, cum)| r < *cum) else {
            break;
        };
        let (method, path, body) = match OPS[op].0 {
            Op::Create => {
                created += 1;
                (
                    Method::POST,
                    format!("{}/contacts", s.base),
                    Some(contact_body(&tag, created)),
                )
            }
            Op::Get => {
                let seeded = s.contact_ids.as_deref().unwrap_or_default();
                let k = (rng.next() as usize) % (seeded.len() + mine.len()).max(1);
                let id = if k < seeded.len() {
                    seeded.get(k)
                } else {
                    mine.get(k - seeded.len())
                };
                let Some(id) = id else { continue };
                (Method::GET, format!("{}/contacts/{id}", s.base), None)
            }
            Op::List => {
                let status = STATUSES[(rng.next() % 4) as usize];
                let paging = if shared.list_cursor { "&cursor=" } else { "" };
                (
                    Method::GET,
                    format!(
                        "{}/contacts?status={status}&sort=-createdAt&limit=20{paging}",
                        s.base
                    ),
                    None,
                )
            }
            Op::Move => {
                // This worker's deals in turn, each one stage further on each visit.
                let deals = s.deals.as_deref().unwrap_or_default();
                let Some(deal) = deals.get((n * per + moves % per) % deals.len().max(1)) else {
                    continue;
                };
                let stage = (moves / per + 1) % s.stages.len().max(1);
                moves += 1;
                let Some(stage_id) = s.stages.get(stage) else {
                    continue;
                };
                (
                    Method::PATCH,
                    format!("{}/opportunities/{deal}/move", s.base),
                    Some(json!({ "stageId": stage_id })),
                )
            }
        };
        let t = Instant::now();
        let res = conn
            .send(method, &path, Some(&s.token), body.as_ref())
            .await;
        let d = t.elapsed();
        let st = &mut stats[op];
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = st.hist.record(us.min(60_000_000));
        match res {
            Ok((status, bytes)) if status.is_success() => {
                if OPS[op].0 == Op::Create
                    && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
                    && let Ok(id) = id_of(&v)
                {
                    mine.push(id);
                }
            }
            Ok((status, bytes)) => {
                st.errors += 1;
                if st.sample.is_none() {
                    let text = String::from_utf8_lossy(&bytes);
                    st.sample = Some(format!(
                        "{status} {}",
                        text.chars().take(200).collect::<String>()
                    ));
                }
            }
            Err(e) => {
                st.errors += 1;
                if st.sample.is_none() {
                    st.sample = Some(format!("{e:#}"));
                }
                // The connection may be in any state after a transport error.
                conn = Conn::open(addr).await?;
            }
        }
    }
    Ok(stats)
}

/// The `VmHWM` (peak resident set) of this process, server and client together.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

async fn run_level(shared: Arc<Shared>, addr: SocketAddr, conns: usize, o: &Options) -> Result<()> {
    let start = Instant::now();
    let until = start + o.duration;
    let handles: Vec<_> = (0..conns)
        .map(|n| tokio::spawn(worker(shared.clone(), addr, n, until)))
        .collect();
    let mut total = new_stats()?;
    for h in handles {
        let stats = h.await??;
        for (t, s) in total.iter_mut().zip(&stats) {
            t.merge(s)?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut all = OpStat::new()?;
    for (i, (_, name, _)) in OPS.iter().enumerate() {
        if !shared.mix.iter().any(|(op, _)| *op == i) {
            println!("{:<8} {conns:>4} conns  {name:<30} skipped", o.storage);
            continue;
        }
        let st = &total[i];
        let n = st.hist.len();
        println!(
            "{:<8} {conns:>4} conns  {name:<30} {n:>8} req {:>9.0} req/s  p50 {:>6} us  p99 {:>6} us  errors {}",
            o.storage,
            n as f64 / secs,
            st.hist.value_at_quantile(0.5),
            st.hist.value_at_quantile(0.99),
            st.errors,
        );
        if let Some(sample) = &st.sample {
            println!("         first error: {sample}");
        }
        all.merge(st)?;
    }
    let n = all.hist.len();
    println!(
        "{:<8} {conns:>4} conns  {:<30} {n:>8} req {:>9.0} req/s  p50 {:>6} us  p99 {:>6} us  errors {}  ({secs:.1} s, peak RSS so far {})",
        o.storage,
        "all (mixed)",
        n as f64 / secs,
        all.hist.value_at_quantile(0.5),
        all.hist.value_at_quantile(0.99),
        all.errors,
        peak_rss(),
    );
    Ok(())
}

async fn open_storage(o: &Options) -> Result<(Storage, Option<PathBuf>)> {
    Ok(match o.storage.as_str() {
        "memory" => (
            Storage::new(Arc::new(storage_memory::MemoryStore::new())),
            None,
        ),
        _ => {
            let dir = std::env::temp_dir().join(format!("clianta-bench-http-{}", ObjectId::new()));
            let s = storage_sqlite::SqliteStore::open(&dir.join("clianta.db"))?;
            (Storage::new(Arc::new(s)), Some(dir))
        }
    })
}

pub async fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let (storage, dir) = open_storage(&o).await?;
    let result = bench(&o, storage).await;
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    result
}

async fn bench(o: &Options, storage: Storage) -> Result<()> {
    // As the server does at start-up: schema, then migrations.
    storage
        .admin
        .ensure_schema(&clianta_catalog::all_entities())
        .await?;
    migrate::up(storage.admin.as_ref(), MIGRATIONS, None, &SystemClock).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = ApiConfig {
        rate_limit: if o.limiter != Limiter::Off {
            let unreachable = Limit::new(u64::MAX / 4, 300);
            RateLimitConfig {
                per_credential: unreachable,
                per_workspace: unreachable,
                auth: unreachable,
                ..RateLimitConfig::default()
            }
        } else {
            RateLimitConfig::disabled()
        },
        rate_limit_counters: if o.limiter == Limiter::Store {
            RateLimitCounters::Store
        } else {
            RateLimitCounters::Process
        },
        member_cache_ttl: o.member_cache_ttl,
        ..ApiConfig::default()
    };
    // As the server serves it: with the peer address for per-IP limits.
    let app = clianta_api::router(AppState::new(storage, config))
        .into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    println!(
        "clianta-bench http: server on {addr}, {} store, rate limits {}, member cache {} s, {} list paging, {} deals per connection, levels {:?} connections, {} s or {} requests per level, {} worker threads",
        o.storage,
        match o.limiter {
            Limiter::Process => "counted in process (budgets unreachable)",
            Limiter::Store => "counted in the store (budgets unreachable)",
            Limiter::Off => "off",
        },
        o.member_cache_ttl.as_secs(),
        if o.list_cursor { "cursor" } else { "offset" },
        o.deals_per_connection,
        o.connections,
        o.duration.as_secs(),
        o.max_requests,
        tokio::runtime::Handle::current().metrics().num_workers(),
    );

    let seed = seed(addr, o).await?;
    let mix = OPS
        .iter()
        .enumerate()
        .filter(|(_, (op, _, _))| match op {
            Op::Create | Op::Get => seed.contact_ids.is_some(),
            Op::List => seed.list,
            Op::Move => seed.deals.is_some(),
        })
        .scan(0, |cum, (i, (_, _, w))| {
            *cum += w;
            Some((i, *cum))
        })
        .collect::<Vec<_>>();
    let weights = OPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mix.iter().any(|(m, _)| m == i))
        .map(|(_, (_, name, w))| format!("{name} {w}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("mix: {weights}");
    let seed = Arc::new(seed);
    for (level, &conns) in o.connections.iter().enumerate() {
        let shared = Arc::new(Shared {
            seed: seed.clone(),
            mix: mix.clone(),
            sent: AtomicU64::new(0),
            max_requests: o.max_requests,
            level,
            list_cursor: o.list_cursor,
            deals_per_connection: o.deals_per_connection,
        });
        run_level(shared, addr, conns, o).await?;
    }
    let _ = stop.send(());
    server.await??;
    println!("peak memory (VmHWM, server and client): {}", peak_rss());
    Ok(())
}
