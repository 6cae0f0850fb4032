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
