//! The durable job queue port (ADR 0019): what several server processes share to run background
//! work exactly once per success: delays of workflows, event delivery, periodic jobs, retries.
//!
//! Jobs are documents of the global `jobs` collection (each names the workspace it works for),
//! so the one implementation over `crm_core::DocumentStore` ([`crate::queue::StoreJobQueue`])
//! runs on every adapter: memory, SQLite and MongoDB. A claim is one atomic find-and-update.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crm_core::define_id;
use crm_core::repo::{Entity, GlobalEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{Result, Timestamp, WorkspaceId};

define_id!(JobId);

pub static JOB: EntityDef = EntityDef {
    name: "Job",
    collection: "jobs",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("kind", Text).required(),
        f("workspaceId", Id),
        f("payload", Any),
        f("runAt", Date).required(),
        f("status", Text).required(),
        f("attempts", Number).required(),
        f("maxAttempts", Number).required(),
        f("leaseUntil", Date),
        f("leasedBy", Text),
        f("lastError", Text),
        f("dedupeKey", Text),
        f("finishedAt", Date),
    ],
    unique: &[UniqueKey {
        name: "dedupeKey",
        fields: &["dedupeKey"],
    }],
    indexes: &[
        IndexDef::on(&[("status", Asc), ("runAt", Asc)]),
        IndexDef::on(&[("status", Asc), ("leaseUntil", Asc)]),
        IndexDef::on(&[("workspaceId", Asc), ("kind", Asc), ("status", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for `runAt`.
    Queued,
    /// Claimed by `leasedBy` until `leaseUntil`; an expired lease may be claimed again.
    Running,
    Done,
    /// Failed `maxAttempts` times; kept for inspection and replay.
    Dead,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(rename = "_id")]
    pub id: JobId,
    /// Which handler runs it, e.g. `workflow.step`, `event.deliver`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<WorkspaceId>,
    #[serde(default)]
    pub payload: Value,
    pub run_at: Timestamp,
    pub status: JobStatus,
    /// Claims so far (a claim counts as an attempt).
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leased_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// At most one job per key, ever: enqueueing the same key again returns the first job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Job {
    const DEF: &'static EntityDef = &JOB;
}
impl GlobalEntity for Job {}

/// Default attempts before a job is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// What to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub workspace_id: Option<WorkspaceId>,
    pub payload: Value,
    pub run_at: Timestamp,
    pub max_attempts: u32,
    pub dedupe_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value, run_at: Timestamp) -> Self {
        Self {
            kind: kind.into(),
            workspace_id: None,
            payload,
            run_at,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dedupe_key: None,
        }
    }
    pub fn in_workspace(mut self, ws: WorkspaceId) -> Self {
        self.workspace_id = Some(ws);
        self
    }
    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
    pub fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
}

/// The queue. Every method is safe to call from several processes sharing one store.
#[async_trait]
pub trait JobQueue: Send + Sync + Debug {
    /// Stores the job; with a dedupe key that already exists, stores nothing and returns the
    /// existing job's id.
    async fn enqueue(&self, job: NewJob) -> Result<JobId>;
    /// Atomically takes one due job of these kinds (queued with `runAt <= now`, or running with
    /// an expired lease), leasing it to `worker` for `lease_secs` and counting an attempt.
    async fn claim(&self, worker: &str, kinds: &[&str], lease_secs: i64) -> Result<Option<Job>>;
    /// Extends the lease; `Error::Stale` when `worker` no longer holds it.
    async fn heartbeat(&self, id: JobId, worker: &str, lease_secs: i64) -> Result<()>;
    /// Marks it done; `Error::Stale` when `worker` no longer holds the lease.
    async fn complete(&self, id: JobId, worker: &str) -> Result<()>;
    /// Records the error and either queues a retry after an exponential backoff or, after
    /// `maxAttempts`, dead-letters it; returns the new status.
    async fn fail(&self, id: JobId, worker: &str, error: &str) -> Result<JobStatus>;
    /// Cancels a job that is not finished; `Error::NotFound` when there is no such job,
    /// `Error::Invalid` (field `status`) when it has already finished.
    async fn cancel(&self, id: JobId) -> Result<()>;
    /// Puts a dead (or cancelled) job back in the queue, due now, with its attempts reset;
    /// `Error::Invalid` (field `status`) for a job in any other state.
    async fn replay(&self, id: JobId) -> Result<()>;
    async fn get(&self, id: JobId) -> Result<Job>;
}

/// Seconds to wait before retry `attempt` (1-based): 1 s doubling, capped at one hour.
pub fn backoff_secs(attempt: u32) -> i64 {
    let exp = attempt.saturating_sub(1).min(12);
    (1_i64 << exp).min(3600)
}
