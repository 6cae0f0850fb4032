//! The worker: claims due jobs of the kinds it has handlers for, runs them, and completes or
//! fails them in the queue (ADR 0019). Retries and delays are the queue's, never timers here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;

use crm_core::{Error, Result};

use crate::handlers::JobHandler;
use crate::jobs::{Job, JobQueue, JobStatus};

/// The handlers a process runs, by job kind. Shared by its workers, so one registered later
/// is picked up by their next claim.
#[derive(Debug, Default)]
pub struct HandlerSet(RwLock<BTreeMap<&'static str, Arc<dyn JobHandler>>>);

impl HandlerSet {
    /// Registers `h` for its kind, replacing an earlier handler of that kind.
    pub fn register(&self, h: Arc<dyn JobHandler>) {
        self.0.write().insert(h.kind(), h);
    }
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.0.read().get(kind).cloned()
    }
    pub fn kinds(&self) -> Vec<&'static str> {
        self.0.read().keys().copied().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// How long a claim holds a job before another worker may take it.
    pub lease_secs: i64,
    /// How often a running job's lease is extended (well under the lease).
    pub heartbeat_every: Duration,
    /// How long an idle worker waits before looking for due jobs again.
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease_secs: 60,
            heartbeat_every: Duration::from_secs(20),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// What happened to the jobs a worker ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub done: u64,
    /// Failed and queued again after a backoff.
    pub retried: u64,
    /// Failed their last attempt.
    pub dead: u64,
    /// Lost their lease while running (expired, or cancelled); the result was not recorded.
    pub lost: u64,
}

impl RunCounts {
    pub fn total(&self) -> u64 {
        self.done + self.retried + self.dead + self.lost
    }
    pub fn add(&mut self, o: RunCounts) {
        self.done += o.done;
        self.retried += o.retried;
        self.dead += o.dead;
        self.lost += o.lost;
    }
}

/// Jobs one run of [`Worker::run_until_idle`] processes at most, so a job that keeps enqueueing
/// due jobs cannot hold a test forever.
const IDLE_RUN_LIMIT: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct Worker {
    id: String,
    queue: Arc<dyn JobQueue>,
    handlers: Arc<HandlerSet>,
    config: WorkerConfig,
}

impl Worker {
    /// `id` must be unique among all processes sharing the queue: leases are checked by it.
    pub fn new(
        id: impl Into<String>,
        queue: Arc<dyn JobQueue>,
        handlers: Arc<HandlerSet>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            id: id.into(),
            queue,
            handlers,
            config,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims one due job and runs it; `None` when nothing is due.
    pub async fn run_one(&self) -> Result<Option<RunCounts>> {
        let kinds = self.handlers.kinds();
        let Some(job) = self
            .queue
            .claim(&self.id, &kinds, self.config.lease_secs)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.execute(job).await?))
    }

    /// Runs jobs until none is due at the clock's now.
    pub async fn run_until_idle(&self) -> Result<RunCounts> {
        let mut counts = RunCounts::default();
        while let Some(c) = self.run_one().await? {
            counts.add(c);
            if counts.total() >= IDLE_RUN_LIMIT {
                return Err(Error::internal(
                    "jobs kept coming due: more than 100000 in one run",
                ));
            }
        }
        Ok(counts)
    }

    /// Polls for due jobs until `shutdown` turns true; a job already running is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let worked = match self.run_one().await {
                Ok(found) => found.is_some(),
                Err(e) => {
                    tracing::warn!(worker = %self.id, error = %e, "job queue unavailable");
                    false
                }
            };
            if worked {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Runs one claimed job on its own task (a panic fails the attempt instead of the worker),
    /// extending the lease while it runs.
    async fn execute(&self, job: Job) -> Result<RunCounts> {
        let mut counts = RunCounts::default();
        let id = job.id;
        let Some(handler) = self.handlers.get(&job.kind) else {
            self.queue
                .fail(id, &self.id, "no handler for this kind")
                .await?;
            counts.retried += 1;
            return Ok(counts);
        };
        let kind = job.kind.clone();
        let mut task = tokio::spawn(async move { handler.run(&job).await });
        let mut beat = tokio::time::interval(self.config.heartbeat_every);
        beat.tick().await;
        let outcome = loop {
            tokio::select! {
                r = &mut task => break Some(r),
                _ = beat.tick() => {
                    match self.queue.heartbeat(id, &self.id, self.config.lease_secs).await {
                        Ok(()) => {}
                        Err(Error::Stale | Error::NotFound) => {
                            task.abort();
                            break None;
                        }
                        Err(e) => tracing::warn!(job = %id, error = %e, "heartbeat failed"),
                    }
                }
            }
        };
        let error = match outcome {
            None => {
                tracing::warn!(job = %id, kind, "lost the lease while running; stopped");
                counts.lost += 1;
                return Ok(counts);
            }
            Some(Ok(Ok(()))) => None,
            Some(Ok(Err(e))) => Some(e.to_string()),
            Some(Err(join)) => Some(format!("handler panicked: {join}")),
        };
        let recorded = match &error {
            None => self.queue.complete(id, &self.id).await.map(|()| {
                counts.done += 1;
            }),
            Some(msg) => self.queue.fail(id, &self.id, msg).await.map(|s| {
                if s == JobStatus::Dead {
                    tracing::warn!(job = %id, kind, error = %msg, "job dead-lettered");
                    counts.dead += 1;
                } else {
                    tracing::info!(job = %id, kind, error = %msg, "job failed; will retry");
                    counts.retried += 1;
                }
            }),
        };
        match recorded {
            Ok(()) => Ok(counts),
            // Cancelled or re-claimed meanwhile: the other holder's outcome stands.
            Err(Error::Stale) => {
                counts.lost += 1;
                Ok(counts)
            }
            Err(e) => Err(e),
        }
    }
}
