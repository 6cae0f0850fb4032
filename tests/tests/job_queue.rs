//! The job queue shared by two processes (two `StoreJobQueue`s over two store connections to one
//! SQLite file or one MongoDB database): random interleavings of claims, completions, failures,
//! heartbeats and lease expiries never complete a job twice, never lease one job to both
//! workers at once, never lose one, and every job ends done or dead. Also: real concurrent
//! claims, and a job due in three days surviving a restart.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "test helpers")]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use automation::handlers::JobHandler;
use automation::jobs::{JOB, Job, JobId, JobQueue, JobStatus, NewJob};
use automation::queue::StoreJobQueue;
use automation::runtime::Runtime;
use crm_core::repo::Stores;
use crm_core::{
    Clock, Error, Filter, FindOptions, ManualClock, ObjectId, Storage, StoreAdmin, Timestamp,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use storage_mongo::MongoStore;
use storage_sqlite::SqliteStore;

const LEASE: i64 = 30;

#[derive(Debug, Clone)]
enum Op {
    Claim(usize),
    Complete(usize),
    Fail(usize),
    Heartbeat(usize),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize).prop_map(Op::Claim),
        3 => (0..2usize).prop_map(Op::Complete),
        2 => (0..2usize).prop_map(Op::Fail),
        1 => (0..2usize).prop_map(Op::Heartbeat),
        2 => (1..50i64).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// Max attempts of each job.
    jobs: Vec<u32>,
    ops: Vec<Op>,
}

fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(1..4u32, 1..6),
        proptest::collection::vec(op(), 1..max_ops),
    )
        .prop_map(|(jobs, ops)| Case { jobs, ops })
}

/// Two processes' queues over one store, sharing one clock.
struct Pair {
    queues: [StoreJobQueue; 2],
    clock: Arc<ManualClock>,
}

fn pair(a: Storage, b: Storage) -> Pair {
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_800_000_000_000)));
    let c: Arc<dyn Clock> = clock.clone();
    let q = |s: Storage| StoreJobQueue::new(&Stores::new(s.docs, c.clone()), c.clone());
    Pair {
        queues: [q(a), q(b)],
        clock,
    }
}

const WORKERS: [&str; 2] = ["p1-w", "p2-w"];

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

async fn run_case(p: &Pair, case: &Case) -> Result<(), TestCaseError> {
    // Each case has a kind of its own, so cases sharing a database do not meet.
    let kind = format!("k{}", ObjectId::new());
    let kinds = [kind.as_str()];
    let mut ids = Vec::new();
    for &max in &case.jobs {
        let job = NewJob::new(kind.clone(), Value::Null, p.clock.now()).attempts(max);
        ids.push(p.queues[0].enqueue(job).await.unwrap());
    }
    let mut held: [Option<(JobId, Timestamp)>; 2] = [None, None];
    let mut completions: BTreeMap<JobId, u32> = BTreeMap::new();

    for op in &case.ops {
        match *op {
            Op::Advance(s) => p.clock.advance_seconds(s),
            Op::Claim(w) => {
                if held[w].is_some() {
                    continue;
                }
                if let Some(j) = p.queues[w].claim(WORKERS[w], &kinds, LEASE).await.unwrap() {
                    let other = held[1 - w];
                    check(
                        !matches!(other, Some((id, until)) if id == j.id && until >= p.clock.now()),
                        || format!("job {} leased to both workers", j.id),
                    )?;
                    check(!completions.contains_key(&j.id), || {
                        format!("completed job {} claimed again", j.id)
                    })?;
                    held[w] = Some((j.id, j.lease_until.unwrap()));
                }
            }
            Op::Complete(w) => {
                let Some((id, _)) = held[w].take() else {
                    continue;
                };
                match p.queues[w].complete(id, WORKERS[w]).await {
                    Ok(()) => *completions.entry(id).or_default() += 1,
                    Err(Error::Stale) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("complete: {e}"))),
                }
            }
            Op::Fail(w) => {
                let Some((id, _)) = held[w].take() else {
                    continue;
                };
                match p.queues[w].fail(id, WORKERS[w], "random failure").await {
                    Ok(_) | Err(Error::Stale) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("fail: {e}"))),
                }
            }
            Op::Heartbeat(w) => {
                let Some((id, _)) = held[w] else {
                    continue;
                };
                match p.queues[w].heartbeat(id, WORKERS[w], LEASE).await {
                    Ok(()) => held[w] = Some((id, p.clock.now().plus_seconds(LEASE))),
                    Err(Error::Stale) => held[w] = None,
                    Err(e) => return Err(TestCaseError::fail(format!("heartbeat: {e}"))),
                }
            }
        }
    }

    // Both processes stop holding anything; the jobs must still all finish.
    for _ in 0..50 {
        p.clock.advance_seconds(4000);
        let mut any = false;
        for (q, w) in p.queues.iter().zip(WORKERS) {
            while let Some(j) = q.claim(w, &kinds, LEASE).await.unwrap() {
                any = true;
                check(!completions.contains_key(&j.id), || {
                    format!("completed job {} claimed again", j.id)
                })?;
                q.complete(j.id, w).await.unwrap();
                *completions.entry(j.id).or_default() += 1;
            }
        }
        if !any {
            break;
        }
    }

    let stored = p.queues[0].get(ids[0]).await.unwrap();
    check(stored.kind == kind, || "wrong kind".into())?;
    for id in &ids {
        let j = p.queues[1].get(*id).await.unwrap();
        let n = completions.get(id).copied().unwrap_or(0);
        check(n <= 1, || format!("job {id} completed {n} times"))?;
        match j.status {
            JobStatus::Done => check(n == 1, || format!("job {id} done without a completion"))?,
            JobStatus::Dead => check(n == 0, || format!("dead job {id} was completed"))?,
            s => return Err(TestCaseError::fail(format!("job {id} ended {s:?}"))),
        }
        check(j.attempts <= j.max_attempts, || {
            format!("job {id}: {} attempts of {}", j.attempts, j.max_attempts)
        })?;
    }
    Ok(())
}

fn run_cases(pair: &Pair, cases: u32, max_ops: usize) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&case(max_ops), |c| handle.block_on(run_case(pair, &c)))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn sqlite_file() -> PathBuf {
    std::env::temp_dir().join(format!("clianta-jobs-{}.db", ObjectId::new()))
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

async fn sqlite_pair(path: &Path) -> Pair {
    let open = || Storage::new(Arc::new(SqliteStore::open(path).expect("sqlite file")));
    let (a, b) = (open(), open());
    a.admin.ensure_schema(&[&JOB]).await.unwrap();
    pair(a, b)
}

fn mongo_uri() -> String {
    std::env::var("CLIANTA_TEST_MONGODB_URI")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned())
}

async fn mongo(db: &str) -> Arc<MongoStore> {
    let uri = mongo_uri();
    let m = MongoStore::connect_db(&uri, db).await.unwrap_or_else(|e| {
        panic!(
            "the job queue test needs a MongoDB at {uri} (scripts/mongo-test-server.sh start): {e}"
        )
    });
    Arc::new(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_sqlite_file_never_run_a_job_twice_or_lose_one() {
    let path = sqlite_file();
    let p = sqlite_pair(&path).await;
    run_cases(&p, 64, 60);
    drop(p);
    remove_sqlite(&path);
}

/// Bounded: the test MongoDB server does about 800 operations a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_mongo_database_never_run_a_job_twice_or_lose_one() {
    let db = format!("clianta_jobs_{}", ObjectId::new());
    let (a, b) = (mongo(&db).await, mongo(&db).await);
    a.ensure_schema(&[&JOB]).await.unwrap();
    let p = pair(Storage::new(a.clone()), Storage::new(b));
    let started = std::time::Instant::now();
    run_cases(&p, 40, 40);
    let _ = a.drop_database().await;
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

/// Claims really at the same time from two processes: each job is taken and completed once.
async fn concurrent_claims(p: Pair, n: usize) {
    let kind = "concurrent";
    for _ in 0..n {
        p.queues[0]
            .enqueue(NewJob::new(kind, Value::Null, p.clock.now()))
            .await
            .unwrap();
    }
    let [a, b] = p.queues;
    let run = |q: StoreJobQueue, w: &'static str| async move {
        let mut mine = Vec::new();
        while let Some(j) = q.claim(w, &[kind], LEASE).await.unwrap() {
            q.complete(j.id, w).await.unwrap();
            mine.push(j.id);
        }
        mine
    };
    let (x, y) = tokio::join!(
        tokio::spawn(run(a.clone(), WORKERS[0])),
        tokio::spawn(run(b, WORKERS[1]))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let all: HashSet<JobId> = x.iter().chain(&y).copied().collect();
    assert_eq!(x.len() + y.len(), n, "{} + {}", x.len(), y.len());
    assert_eq!(all.len(), n);
    for id in all {
        assert_eq!(a.get(id).await.unwrap().status, JobStatus::Done);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_one_sqlite_file_take_each_job_once() {
    let path = sqlite_file();
    concurrent_claims(sqlite_pair(&path).await, 200).await;
    remove_sqlite(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_one_mongo_database_take_each_job_once() {
    let db = format!("clianta_jobs_{}", ObjectId::new());
    let (a, b) = (mongo(&db).await, mongo(&db).await);
    a.ensure_schema(&[&JOB]).await.unwrap();
    concurrent_claims(pair(Storage::new(a.clone()), Storage::new(b)), 60).await;
    let _ = a.drop_database().await;
}

#[derive(Debug, Default)]
struct Counter(AtomicU32);

#[async_trait]
impl JobHandler for Counter {
    fn kind(&self) -> &'static str {
        "test.in_three_days"
    }
    async fn run(&self, _job: &Job) -> crm_core::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_due_in_three_days_runs_after_a_restart_on_the_same_file() {
    let path = sqlite_file();
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_800_000_000_000)));
    let c: Arc<dyn Clock> = clock.clone();
    let open = || {
        let s = Storage::new(Arc::new(SqliteStore::open(&path).expect("sqlite file")));
        (
            Runtime::new(Stores::new(s.docs.clone(), c.clone()), c.clone()),
            s,
        )
    };
    let counter = Arc::new(Counter::default());
    let id = {
        let (rt, s) = open();
        s.admin
            .ensure_schema(&clianta_catalog::all_entities())
            .await
            .unwrap();
        rt.register_handler(counter.clone());
        let due = clock.now().plus_seconds(3 * 86_400);
        let id = rt
            .queue()
            .enqueue(NewJob::new("test.in_three_days", Value::Null, due))
            .await
            .unwrap();
        assert_eq!(rt.run_until_idle().await.unwrap().jobs.total(), 0);
        id
    };
    let (rt, _s) = open();
    rt.register_handler(counter.clone());
    clock.advance_seconds(3 * 86_400);
    assert_eq!(rt.run_until_idle().await.unwrap().jobs.done, 1);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    assert_eq!(rt.queue().get(id).await.unwrap().status, JobStatus::Done);
    let left = rt
        .stores()
        .global::<Job>()
        .find(&Filter::eq("status", "queued"), &FindOptions::default())
        .await
        .unwrap();
    assert!(left.is_empty());
    drop(rt);
    remove_sqlite(&path);
}
