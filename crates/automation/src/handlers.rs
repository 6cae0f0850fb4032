//! What runs jobs and consumes events. A worker dispatches claimed jobs to [`JobHandler`]s by
//! kind; the event relay turns each outbox entry into one delivery job per interested
//! [`EventConsumer`] (ADR 0018).

use std::fmt::Debug;

use async_trait::async_trait;

use crm_core::Result;
use crm_core::events::DomainEvent;

use crate::jobs::Job;

/// Runs the jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync + Debug {
    /// The `kind` of the jobs it runs, e.g. `workflow.step`.
    fn kind(&self) -> &'static str;
    /// An error fails this attempt (retried with backoff, then dead-lettered). A job may run
    /// more than once (a lease can expire mid-run), so effects must be idempotent.
    async fn run(&self, job: &Job) -> Result<()>;
}

/// Something that reacts to domain events: workflows, lead scoring, webhooks.
#[async_trait]
pub trait EventConsumer: Send + Sync + Debug {
    /// Stable name: part of each delivery's dedupe key, so never rename one.
    fn name(&self) -> &'static str;
    /// Whether it wants events of this type at all (cheap; decides if a delivery is enqueued).
    fn wants(&self, event_type: &str) -> bool;
    /// Handles one event. Delivery is at least once, so handling must be idempotent per event
    /// id: effects happen exactly once.
    async fn handle(&self, event: &DomainEvent) -> Result<()>;
}
