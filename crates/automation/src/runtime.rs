//! The automation runtime (ADR 0019): the job queue, the workers, the outbox relay and the
//! periodic jobs of one process, with everything that registers handlers and consumers in
//! [`standard`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crm_core::accounts::MailerHandle;
use crm_core::outbound::{HttpCaller, RecordingHttp};
use crm_core::repo::Stores;
use crm_core::{Clock, Error, ObjectId, Result};

use crate::handlers::{EventConsumer, JobHandler};
use crate::jobs::JobQueue;
use crate::periodic::{Periodic, PeriodicSet};
use crate::queue::StoreJobQueue;
use crate::relay::{ConsumerSet, DeliverHandler, Relay};
use crate::worker::{HandlerSet, RunCounts, Worker, WorkerConfig};

/// What handlers and consumers reach outside the store.
#[derive(Debug, Clone)]
pub struct Ports {
    pub mailer: MailerHandle,
    pub http: Arc<dyn HttpCaller>,
    pub clock: Arc<dyn Clock>,
}

impl Ports {
    /// Mails logged, HTTP calls recorded and never sent: what tests and a bare state get.
    pub fn offline(clock: Arc<dyn Clock>) -> Self {
        Self {
            mailer: MailerHandle::default(),
            http: Arc::new(RecordingHttp::default()),
            clock,
        }
    }
}

/// Registers every handler, consumer and periodic job of the product. The server and the HTTP
/// test app both call it, so what runs in tests is what runs in production.
pub fn standard(rt: &mut Runtime, ports: &Ports) {
    crate::workflows::register(rt, ports);
    crate::scoring::register(rt);
    let _ = (rt, ports);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub worker: WorkerConfig,
    /// Jobs run at the same time by one process (one polling worker each).
    pub concurrency: usize,
    /// How long a relay holds an outbox entry before another may redo it.
    pub relay_lease_secs: i64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            worker: WorkerConfig::default(),
            concurrency: 4,
            relay_lease_secs: 60,
        }
    }
}

/// What one [`Runtime::run_until_idle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleReport {
    /// Outbox entries turned into deliveries.
    pub relayed: u64,
    pub jobs: RunCounts,
}

/// Rounds of relay-then-jobs one [`Runtime::run_until_idle`] makes at most.
const IDLE_ROUNDS: usize = 1000;

#[derive(Debug)]
pub struct Runtime {
    /// Distinguishes this process's workers and relay in leases.
    instance: String,
    stores: Stores,
    clock: Arc<dyn Clock>,
    queue: Arc<dyn JobQueue>,
    handlers: Arc<HandlerSet>,
    consumers: Arc<ConsumerSet>,
    periodic: Arc<PeriodicSet>,
    config: RuntimeConfig,
}

impl Runtime {
    pub fn new(stores: Stores, clock: Arc<dyn Clock>) -> Self {
        Self::with_config(stores, clock, RuntimeConfig::default())
    }

    pub fn with_config(stores: Stores, clock: Arc<dyn Clock>, config: RuntimeConfig) -> Self {
        let queue: Arc<dyn JobQueue> = Arc::new(StoreJobQueue::new(&stores, clock.clone()));
        let consumers = Arc::new(ConsumerSet::default());
        let handlers = Arc::new(HandlerSet::default());
        handlers.register(Arc::new(DeliverHandler::new(
            stores.clone(),
            consumers.clone(),
        )));
        Self {
            instance: ObjectId::new().to_hex(),
            stores,
            clock,
            queue,
            handlers,
            consumers,
            periodic: Arc::default(),
            config,
        }
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: RuntimeConfig) {
        self.config = config;
    }

    pub fn queue(&self) -> Arc<dyn JobQueue> {
        self.queue.clone()
    }

    /// Runs jobs of `h.kind()`, replacing an earlier handler of that kind.
    pub fn register_handler(&self, h: Arc<dyn JobHandler>) {
        self.handlers.register(h);
    }

    /// Delivers the events `c` wants to it, from the next relayed event on.
    pub fn register_consumer(&self, c: Arc<dyn EventConsumer>) {
        self.consumers.register(c);
    }

    /// Enqueues `p`'s job once per period (see [`crate::periodic`]); its kind needs a handler.
    pub fn register_periodic(&self, p: Periodic) {
        self.periodic.register(p);
    }

    fn worker(&self, name: &str) -> Worker {
        Worker::new(
            format!("{}:{name}", self.instance),
            self.queue.clone(),
            self.handlers.clone(),
            self.config.worker.clone(),
        )
    }

    fn relay(&self) -> Relay {
        Relay::new(
            format!("{}:relay", self.instance),
            self.stores.clone(),
            self.clock.clone(),
            self.queue.clone(),
            self.consumers.clone(),
            self.config.relay_lease_secs,
        )
    }

    /// Enqueues the current period's job of every periodic schedule (idempotent per period).
    pub async fn tick_periodic(&self) -> Result<u64> {
        self.periodic.tick(&self.queue, self.clock.now()).await
    }

    /// Relays every pending event and runs every job due at the clock's now, again and again
    /// until nothing is left to do now: what a test calls to let automation happen. Periodic
    /// jobs are enqueued only by [`Runtime::tick_periodic`], so tests decide when they come.
    pub async fn run_until_idle(&self) -> Result<IdleReport> {
        let relay = self.relay();
        let worker = self.worker("idle");
        let mut report = IdleReport::default();
        for _ in 0..IDLE_ROUNDS {
            let relayed = relay.run_until_idle().await?;
            let jobs = worker.run_until_idle().await?;
            report.relayed += relayed;
            report.jobs.add(jobs);
            if relayed == 0 && jobs.total() == 0 {
                return Ok(report);
            }
        }
        Err(Error::internal(
            "automation did not settle: events and jobs kept coming",
        ))
    }

    /// Starts this process's background work: `concurrency` polling workers, the relay and
    /// the periodic ticker, all stopping when `shutdown` turns true (running jobs finish).
    pub fn spawn(&self, worker_id: &str, shutdown: watch::Receiver<bool>) -> RuntimeTasks {
        let mut tasks = JoinSet::new();
        let poll = self.config.worker.poll_interval;
        for i in 0..self.config.concurrency.max(1) {
            let w = self.worker(&format!("{worker_id}-{i}"));
            tasks.spawn(w.run(shutdown.clone()));
        }
        tasks.spawn(self.relay().run(poll, shutdown.clone()));
        let periodic = self.periodic.clone();
        let queue = self.queue.clone();
        let clock = self.clock.clone();
        let mut stop = shutdown;
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                if let Err(e) = periodic.tick(&queue, clock.now()).await {
                    tracing::warn!(error = %e, "could not enqueue periodic jobs");
                }
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(poll.max(Duration::from_secs(1))) => {}
                }
            }
        });
        RuntimeTasks(tasks)
    }
}

/// The background tasks [`Runtime::spawn`] started.
#[derive(Debug)]
pub struct RuntimeTasks(JoinSet<()>);

impl RuntimeTasks {
    /// Waits for every task to stop (after the shutdown signal).
    pub async fn join(mut self) {
        while let Some(r) = self.0.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "an automation task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use parking_lot::Mutex;
    use serde_json::{Value, json};

    use crm_core::events::{DomainEvent, OutboxEntry};
    use crm_core::{DocumentStore, Filter, FindOptions, ManualClock, Timestamp, WorkspaceId};

    use super::*;
    use crate::jobs::{Job, JobStatus, NewJob};
    use crate::periodic::Schedule;

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::at(
            Timestamp::parse("2026-11-25T10:00:00.000Z").unwrap(),
        ))
    }

    fn runtime(store: &Arc<dyn DocumentStore>, clock: &Arc<ManualClock>) -> Runtime {
        let c: Arc<dyn Clock> = clock.clone();
        Runtime::new(Stores::new(store.clone(), c.clone()), c)
    }

    fn memory() -> Arc<dyn DocumentStore> {
        Arc::new(storage_memory::MemoryStore::new())
    }

    /// Records what it handled; fails while `failing` is set.
    #[derive(Debug, Default)]
    struct Recorder {
        name: &'static str,
        prefix: &'static str,
        seen: Mutex<Vec<(String, String)>>,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Recorder {
        fn new(name: &'static str, prefix: &'static str) -> Arc<Self> {
            Arc::new(Self {
                name,
                prefix,
                ..Self::default()
            })
        }
        fn seen(&self) -> Vec<(String, String)> {
            self.seen.lock().clone()
        }
    }

    #[async_trait]
    impl EventConsumer for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn wants(&self, event_type: &str) -> bool {
            event_type.starts_with(self.prefix)
        }
        async fn handle(&self, event: &DomainEvent) -> Result<()> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Unavailable("down".into()));
            }
            self.seen
                .lock()
                .push((event.id.to_string(), event.event_type.clone()));
            Ok(())
        }
    }

    #[derive(Debug, Default)]
    struct Counter {
        kind: &'static str,
        runs: AtomicU32,
    }

    #[async_trait]
    impl JobHandler for Counter {
        fn kind(&self) -> &'static str {
            self.kind
        }
        async fn run(&self, _job: &Job) -> Result<()> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    async fn outbox_len(rt: &Runtime) -> usize {
        rt.stores()
            .global::<OutboxEntry>()
            .find(&Filter::all(), &FindOptions::default())
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn each_event_reaches_each_interested_consumer_once() {
        let (store, clock) = (memory(), clock());
        let rt = runtime(&store, &clock);
        let contacts = Recorder::new("contacts", "contact.");
        let deals = Recorder::new("deals", "deal.");
        rt.register_consumer(contacts.clone());
        rt.register_consumer(deals.clone());
        let ws = WorkspaceId::new();
        let scope = rt.stores().workspace(ws);
        let a = scope
            .emit(DomainEvent::new(ws, "contact.created", clock.now()))
            .await
            .unwrap();
        let b = scope
            .emit(DomainEvent::new(ws, "deal.won", clock.now()))
            .await
            .unwrap();
        scope
            .emit(DomainEvent::new(ws, "ticket.created", clock.now()))
            .await
            .unwrap();
        let report = rt.run_until_idle().await.unwrap();
        assert_eq!(report.relayed, 3);
        assert_eq!(report.jobs.done, 2);
        assert_eq!(
            contacts.seen(),
            [(a.id.to_string(), "contact.created".to_owned())]
        );
        assert_eq!(deals.seen(), [(b.id.to_string(), "deal.won".to_owned())]);
        assert_eq!(outbox_len(&rt).await, 0);
        assert_eq!(rt.run_until_idle().await.unwrap(), IdleReport::default());
        assert_eq!(contacts.seen().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_consumer_is_retried_with_backoff_then_dead_lettered_and_replayed() {
        let (store, clock) = (memory(), clock());
        let rt = runtime(&store, &clock);
        let c = Recorder::new("c", "contact.");
        c.failing.store(true, Ordering::SeqCst);
        rt.register_consumer(c.clone());
        let ws = WorkspaceId::new();
        let ev = rt
            .stores()
            .workspace(ws)
            .emit(DomainEvent::new(ws, "contact.updated", clock.now()))
            .await
            .unwrap();
        let first = rt.run_until_idle().await.unwrap();
        assert_eq!((first.relayed, first.jobs.retried), (1, 1));
        let key = crate::relay::delivery_key(ev.id, "c");
        let job = rt
            .stores()
            .global::<Job>()
            .find(&Filter::eq("dedupeKey", key), &FindOptions::default())
            .await
            .unwrap()
            .remove(0);
        assert_eq!(job.workspace_id, Some(ws));
        assert_eq!(job.payload, json!({"eventId": ev.id, "consumer": "c"}));
        let mut retries = 1;
        for wait in [1, 2, 4] {
            assert_eq!(rt.run_until_idle().await.unwrap().jobs.total(), 0);
            clock.advance_seconds(wait);
            let r = rt.run_until_idle().await.unwrap();
            retries += r.jobs.retried;
            if r.jobs.dead == 1 {
                break;
            }
        }
        assert_eq!(retries, 4);
        clock.advance_seconds(8);
        assert_eq!(rt.run_until_idle().await.unwrap().jobs.dead, 1);
        assert_eq!(
            rt.queue().get(job.id).await.unwrap().status,
            JobStatus::Dead
        );
        assert!(c.seen().is_empty());

        c.failing.store(false, Ordering::SeqCst);
        rt.queue().replay(job.id).await.unwrap();
        assert_eq!(rt.run_until_idle().await.unwrap().jobs.done, 1);
        assert_eq!(c.seen().len(), 1);
    }

    #[tokio::test]
    async fn a_periodic_job_is_enqueued_once_per_period_by_two_processes() {
        let (store, clock) = (memory(), clock());
        let (one, two) = (runtime(&store, &clock), runtime(&store, &clock));
        let counter = Arc::new(Counter {
            kind: "test.hourly",
            ..Counter::default()
        });
        for rt in [&one, &two] {
            rt.register_handler(counter.clone());
            rt.register_periodic(Periodic::new(
                "hourly",
                Schedule::every_secs(3600).unwrap(),
                "test.hourly",
            ));
        }
        for _ in 0..3 {
            one.tick_periodic().await.unwrap();
            two.tick_periodic().await.unwrap();
            two.run_until_idle().await.unwrap();
            one.run_until_idle().await.unwrap();
            clock.advance_seconds(1200);
        }
        // 10:00, 10:20, 10:40: one period.
        assert_eq!(counter.runs.load(Ordering::SeqCst), 1);
        one.tick_periodic().await.unwrap();
        two.tick_periodic().await.unwrap();
        one.run_until_idle().await.unwrap();
        two.run_until_idle().await.unwrap();
        assert_eq!(counter.runs.load(Ordering::SeqCst), 2);
        let jobs = one
            .stores()
            .global::<Job>()
            .find(&Filter::eq("kind", "test.hourly"), &FindOptions::default())
            .await
            .unwrap();
        let keys: Vec<_> = jobs.iter().filter_map(|j| j.dedupe_key.clone()).collect();
        assert_eq!(
            keys,
            [
                "cron:hourly:2026-11-25T10:00:00.000Z",
                "cron:hourly:2026-11-25T11:00:00.000Z"
            ]
        );
    }

    #[tokio::test]
    async fn a_job_due_in_three_days_runs_after_a_restart() {
        let (store, clock) = (memory(), clock());
        let counter = Arc::new(Counter {
            kind: "test.later",
            ..Counter::default()
        });
        {
            let rt = runtime(&store, &clock);
            rt.register_handler(counter.clone());
            let due = clock.now().plus_seconds(3 * 86_400);
            rt.queue()
                .enqueue(NewJob::new("test.later", Value::Null, due))
                .await
                .unwrap();
            assert_eq!(rt.run_until_idle().await.unwrap().jobs.total(), 0);
        }
        let rt = runtime(&store, &clock);
        rt.register_handler(counter.clone());
        clock.advance_seconds(3 * 86_400 - 1);
        assert_eq!(rt.run_until_idle().await.unwrap().jobs.total(), 0);
        clock.advance_seconds(1);
        assert_eq!(rt.run_until_idle().await.unwrap().jobs.done, 1);
        assert_eq!(counter.runs.load(Ordering::SeqCst), 1);
    }

    /// Advances the clock past the lease in steps while it runs, as a long job would.
    #[derive(Debug)]
    struct Slow {
        clock: Arc<ManualClock>,
        cancel: Option<Arc<dyn JobQueue>>,
    }

    #[async_trait]
    impl JobHandler for Slow {
        fn kind(&self) -> &'static str {
            "test.slow"
        }
        async fn run(&self, job: &Job) -> Result<()> {
            if let Some(q) = &self.cancel {
                q.cancel(job.id).await?;
            }
            for _ in 0..5 {
                self.clock.advance_seconds(20);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Panics;

    #[async_trait]
    impl JobHandler for Panics {
        fn kind(&self) -> &'static str {
            "test.panics"
        }
        async fn run(&self, _job: &Job) -> Result<()> {
            panic!("handler bug")
        }
    }

    fn fast_heartbeats() -> RuntimeConfig {
        RuntimeConfig {
            worker: WorkerConfig {
                lease_secs: 30,
                heartbeat_every: Duration::from_millis(10),
                poll_interval: Duration::from_millis(10),
            },
            ..RuntimeConfig::default()
        }
    }

    #[tokio::test]
    async fn heartbeats_keep_a_long_job_leased_and_a_cancelled_one_is_dropped() {
        let (store, clock) = (memory(), clock());
        let c: Arc<dyn Clock> = clock.clone();
        let stores = Stores::new(store.clone(), c.clone());
        let rt = Runtime::with_config(stores.clone(), c.clone(), fast_heartbeats());
        rt.register_handler(Arc::new(Slow {
            clock: clock.clone(),
            cancel: None,
        }));
        let id = rt
            .queue()
            .enqueue(NewJob::new("test.slow", Value::Null, clock.now()))
            .await
            .unwrap();
        // 100 s of simulated run time against a 30 s lease: without heartbeats the lease
        // would have expired and the completion would be stale.
        let r = rt.run_until_idle().await.unwrap();
        assert_eq!((r.jobs.done, r.jobs.lost), (1, 0));
        assert_eq!(rt.queue().get(id).await.unwrap().attempts, 1);

        let rt = Runtime::with_config(stores, c, fast_heartbeats());
        rt.register_handler(Arc::new(Slow {
            clock: clock.clone(),
            cancel: Some(rt.queue()),
        }));
        let id = rt
            .queue()
            .enqueue(NewJob::new("test.slow", Value::Null, clock.now()))
            .await
            .unwrap();
        let r = rt.run_until_idle().await.unwrap();
        assert_eq!((r.jobs.done, r.jobs.lost), (0, 1));
        assert_eq!(
            rt.queue().get(id).await.unwrap().status,
            JobStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_fails_its_attempt() {
        let (store, clock) = (memory(), clock());
        let rt = runtime(&store, &clock);
        rt.register_handler(Arc::new(Panics));
        let id = rt
            .queue()
            .enqueue(NewJob::new("test.panics", Value::Null, clock.now()).attempts(1))
            .await
            .unwrap();
        assert_eq!(rt.run_until_idle().await.unwrap().jobs.dead, 1);
        let job = rt.queue().get(id).await.unwrap();
        assert!(job.last_error.unwrap_or_default().contains("panicked"));
    }

    #[tokio::test]
    async fn spawned_workers_run_jobs_and_stop_on_shutdown() {
        let store = memory();
        let clock: Arc<dyn Clock> = Arc::new(crm_core::SystemClock);
        let rt = Runtime::with_config(
            Stores::new(store, clock.clone()),
            clock.clone(),
            fast_heartbeats(),
        );
        let events = Recorder::new("all", "");
        rt.register_consumer(events.clone());
        let (tx, rx) = watch::channel(false);
        let tasks = rt.spawn("t", rx);
        let ws = WorkspaceId::new();
        for _ in 0..5 {
            rt.stores()
                .workspace(ws)
                .emit(DomainEvent::new(ws, "form.submitted", clock.now()))
                .await
                .unwrap();
        }
        for _ in 0..500 {
            if events.seen().len() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(events.seen().len(), 5);
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), tasks.join())
            .await
            .unwrap();
    }
}
