//! The outbox relay (ADR 0018, 0019): turns each [`OutboxEntry`] into one `event.deliver` job
//! per interested [`EventConsumer`], then deletes the entry. Delivery jobs carry dedupe keys, so
//! a relay that dies half way and is redone by another enqueues nothing twice; retries and dead
//! letters of a delivery are the queue's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use serde_json::{Value, json};
use tokio::sync::watch;

use crm_core::events::{DomainEvent, DomainEventId, OutboxEntry};
use crm_core::repo::Stores;
use crm_core::{Clock, Error, Filter, Result, Update};

use crate::handlers::{EventConsumer, JobHandler};
use crate::jobs::{Job, JobQueue, NewJob};

/// The job kind of one event's delivery to one consumer.
pub const DELIVER_KIND: &str = "event.deliver";

/// The consumers a process delivers to.
#[derive(Debug, Default)]
pub struct ConsumerSet(RwLock<Vec<Arc<dyn EventConsumer>>>);

impl ConsumerSet {
    /// Registers `c`, replacing an earlier consumer of the same name.
    pub fn register(&self, c: Arc<dyn EventConsumer>) {
        let mut all = self.0.write();
        all.retain(|x| x.name() != c.name());
        all.push(c);
    }
    pub fn get(&self, name: &str) -> Option<Arc<dyn EventConsumer>> {
        self.0.read().iter().find(|c| c.name() == name).cloned()
    }
    /// The names of the consumers that want events of this type.
    pub fn wanting(&self, event_type: &str) -> Vec<&'static str> {
        self.0
            .read()
            .iter()
            .filter(|c| c.wants(event_type))
            .map(|c| c.name())
            .collect()
    }
}

/// The dedupe key of one event's delivery to one consumer.
pub fn delivery_key(event: DomainEventId, consumer: &str) -> String {
    format!("evt:{event}:{consumer}")
}

#[derive(Debug, Clone)]
pub struct Relay {
    id: String,
    stores: Stores,
    clock: Arc<dyn Clock>,
    queue: Arc<dyn JobQueue>,
    consumers: Arc<ConsumerSet>,
    lease_secs: i64,
}

impl Relay {
    pub fn new(
        id: impl Into<String>,
        stores: Stores,
        clock: Arc<dyn Clock>,
        queue: Arc<dyn JobQueue>,
        consumers: Arc<ConsumerSet>,
        lease_secs: i64,
    ) -> Self {
        Self {
            id: id.into(),
            stores,
            clock,
            queue,
            consumers,
            lease_secs,
        }
    }

    async fn claim(&self) -> Result<Option<OutboxEntry>> {
        let now = self.clock.now();
        let free = Filter::Or(vec![
            Filter::Exists("leaseUntil".into(), false),
            Filter::Lt("leaseUntil".into(), Value::String(now.to_canonical())),
        ]);
        let lease = Update::new()
            .set(
                "leaseUntil",
                now.plus_seconds(self.lease_secs).to_canonical(),
            )
            .set("leasedBy", self.id.as_str())
            .inc("attempts", 1);
        self.stores
            .global::<OutboxEntry>()
            .find_one_and_update(&free, &lease, false)
            .await
    }

    /// Relays one entry; `false` when the outbox has none free.
    pub async fn relay_one(&self) -> Result<bool> {
        let Some(entry) = self.claim().await? else {
            return Ok(false);
        };
        for consumer in self.consumers.wanting(&entry.event_type) {
            let job = NewJob::new(
                DELIVER_KIND,
                json!({"eventId": entry.event_id, "consumer": consumer}),
                self.clock.now(),
            )
            .in_workspace(entry.workspace_id)
            .dedupe(delivery_key(entry.event_id, consumer));
            self.queue.enqueue(job).await?;
        }
        match self.stores.global::<OutboxEntry>().delete(entry.id).await {
            // Another relay redid it after our lease ran out and got there first.
            Ok(()) | Err(Error::NotFound) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Relays every free entry; returns how many.
    pub async fn run_until_idle(&self) -> Result<u64> {
        let mut n = 0;
        while self.relay_one().await? {
            n += 1;
        }
        Ok(n)
    }

    /// Polls the outbox until `shutdown` turns true.
    pub async fn run(self, poll_interval: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let worked = match self.relay_one().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(relay = %self.id, error = %e, "event relay failed");
                    false
                }
            };
            if worked {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                () = tokio::time::sleep(poll_interval) => {}
            }
        }
    }
}

/// Runs `event.deliver` jobs: loads the event inside its workspace and hands it to the consumer.
#[derive(Debug, Clone)]
pub struct DeliverHandler {
    stores: Stores,
    consumers: Arc<ConsumerSet>,
}

impl DeliverHandler {
    pub fn new(stores: Stores, consumers: Arc<ConsumerSet>) -> Self {
        Self { stores, consumers }
    }
}

#[async_trait]
impl JobHandler for DeliverHandler {
    fn kind(&self) -> &'static str {
        DELIVER_KIND
    }

    async fn run(&self, job: &Job) -> Result<()> {
        let ws = job
            .workspace_id
            .ok_or_else(|| Error::invalid("workspaceId", "a delivery names its workspace"))?;
        let event_id: DomainEventId = job
            .payload
            .get("eventId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("payload.eventId", "missing"))?
            .parse()?;
        let name = job
            .payload
            .get("consumer")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("payload.consumer", "missing"))?;
        // An unknown consumer fails the job, so it dead-letters visibly and can be replayed
        // once a process that has the consumer runs.
        let consumer = self
            .consumers
            .get(name)
            .ok_or_else(|| Error::internal(format!("no event consumer named `{name}`")))?;
        let event = match self
            .stores
            .workspace(ws)
            .repo::<DomainEvent>()
            .get(event_id)
            .await
        {
            Ok(e) => e,
            // Expired (90-day TTL) or its workspace is gone: nothing left to deliver.
            Err(Error::NotFound) => {
                tracing::info!(event = %event_id, consumer = name, "event gone; not delivered");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        consumer.handle(&event).await
    }
}
