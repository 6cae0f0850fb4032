//! [`StoreJobQueue`]: the [`JobQueue`] over the document store, so it runs on every adapter and
//! several processes sharing one store share one queue (ADR 0019).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crm_core::repo::{Repo, Stores};
use crm_core::{Clock, Error, Filter, FindOptions, Result, Timestamp, Update};

use crate::jobs::{Job, JobId, JobQueue, JobStatus, NewJob, backoff_secs};

fn status(s: JobStatus) -> Value {
    match s {
        JobStatus::Queued => json!("queued"),
        JobStatus::Running => json!("running"),
        JobStatus::Done => json!("done"),
        JobStatus::Dead => json!("dead"),
        JobStatus::Cancelled => json!("cancelled"),
    }
}

fn at(t: Timestamp) -> Value {
    Value::String(t.to_canonical())
}

fn id_is(id: JobId) -> Filter {
    Filter::eq("_id", id.to_string())
}

/// The job queue over the global `jobs` collection.
#[derive(Debug, Clone)]
pub struct StoreJobQueue {
    jobs: Repo<Job>,
    clock: Arc<dyn Clock>,
}

impl StoreJobQueue {
    pub fn new(stores: &Stores, clock: Arc<dyn Clock>) -> Self {
        Self {
            jobs: stores.global::<Job>(),
            clock,
        }
    }

    /// Why a guarded write matched nothing: the job is gone, or someone else holds it.
    async fn missed(&self, id: JobId) -> Error {
        match self.jobs.get(id).await {
            Ok(_) => Error::Stale,
            Err(e) => e,
        }
    }

    async fn by_dedupe_key(&self, key: &str) -> Result<Option<Job>> {
        let opts = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        Ok(self
            .jobs
            .find(&Filter::eq("dedupeKey", key), &opts)
            .await?
            .into_iter()
            .next())
    }

    /// A job the caller expects to hold: running and leased to `worker`.
    fn held_by(id: JobId, worker: &str) -> Filter {
        id_is(id)
            .and(Filter::eq("status", status(JobStatus::Running)))
            .and(Filter::eq("leasedBy", worker))
    }
}

#[async_trait]
impl JobQueue for StoreJobQueue {
    async fn enqueue(&self, job: NewJob) -> Result<JobId> {
        let new = Job {
            id: JobId::new(),
            kind: job.kind,
            workspace_id: job.workspace_id,
            payload: job.payload,
            run_at: job.run_at,
            status: JobStatus::Queued,
            attempts: 0,
            max_attempts: job.max_attempts.max(1),
            lease_until: None,
            leased_by: None,
            last_error: None,
            dedupe_key: job.dedupe_key,
            finished_at: None,
            created_at: None,
            updated_at: None,
        };
        // A dedupe key may lose an insert race to another process: the winner's id is the
        // answer. Jobs are never deleted while their key matters, so the second read finds it.
        for _ in 0..3 {
            match self.jobs.insert(&new).await {
                Ok(j) => return Ok(j.id),
                Err(Error::Conflict { key }) => {
                    let Some(dk) = new.dedupe_key.as_deref() else {
                        return Err(Error::Conflict { key });
                    };
                    if let Some(existing) = self.by_dedupe_key(dk).await? {
                        return Ok(existing.id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }

    async fn claim(&self, worker: &str, kinds: &[&str], lease_secs: i64) -> Result<Option<Job>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let kinds: Vec<Value> = kinds.iter().map(|k| json!(k)).collect();
        let of_kinds = Filter::In("kind".into(), kinds);
        // Two simple filters rather than one `Or`, so each is served by its own index
        // (`status, runAt` and `status, leaseUntil`) however many finished jobs are kept.
        let due = Filter::eq("status", status(JobStatus::Queued))
            .and(Filter::Lte("runAt".into(), at(now)))
            .and(of_kinds.clone());
        let expired = Filter::eq("status", status(JobStatus::Running))
            .and(Filter::Lt("leaseUntil".into(), at(now)))
            .and(of_kinds);
        let update = Update::new()
            .set("status", status(JobStatus::Running))
            .set("leasedBy", worker)
            .set("leaseUntil", at(now.plus_seconds(lease_secs)))
            .inc("attempts", 1);
        loop {
            let mut claimed = self.jobs.find_one_and_update(&due, &update, false).await?;
            if claimed.is_none() {
                claimed = self
                    .jobs
                    .find_one_and_update(&expired, &update, false)
                    .await?;
            }
            let Some(job) = claimed else {
                return Ok(None);
            };
            if job.attempts <= job.max_attempts {
                return Ok(Some(job));
            }
            // The lease of its last attempt ran out (the worker died or hung): that attempt
            // failed, so it is dead rather than run once more than allowed. The store cannot
            // compare two fields in the claim's filter, hence this second step.
            let dead = Update::new()
                .set("status", status(JobStatus::Dead))
                .set("finishedAt", at(now))
                .set("lastError", "the lease of its last attempt expired")
                .set("attempts", job.max_attempts)
                .unset("leaseUntil");
            let mine = Self::held_by(job.id, worker).and(Filter::eq("attempts", job.attempts));
            self.jobs.find_one_and_update(&mine, &dead, false).await?;
        }
    }

    async fn heartbeat(&self, id: JobId, worker: &str, lease_secs: i64) -> Result<()> {
        let until = self.clock.now().plus_seconds(lease_secs);
        let update = Update::new().set("leaseUntil", at(until));
        match self
            .jobs
            .find_one_and_update(&Self::held_by(id, worker), &update, false)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(self.missed(id).await),
        }
    }

    async fn complete(&self, id: JobId, worker: &str) -> Result<()> {
        let update = Update::new()
            .set("status", status(JobStatus::Done))
            .set("finishedAt", at(self.clock.now()))
            .unset("leaseUntil");
        match self
            .jobs
            .find_one_and_update(&Self::held_by(id, worker), &update, false)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(self.missed(id).await),
        }
    }

    async fn fail(&self, id: JobId, worker: &str, error: &str) -> Result<JobStatus> {
        let job = self.jobs.get(id).await?;
        if job.status != JobStatus::Running || job.leased_by.as_deref() != Some(worker) {
            return Err(Error::Stale);
        }
        let now = self.clock.now();
        let excerpt: String = error.chars().take(2000).collect();
        let (next, update) = if job.attempts >= job.max_attempts {
            let u = Update::new()
                .set("status", status(JobStatus::Dead))
                .set("finishedAt", at(now));
            (JobStatus::Dead, u)
        } else {
            let u = Update::new()
                .set("status", status(JobStatus::Queued))
                .set("runAt", at(now.plus_seconds(backoff_secs(job.attempts))));
            (JobStatus::Queued, u)
        };
        let update = update.set("lastError", excerpt).unset("leaseUntil");
        // The attempt count pins the claim this failure belongs to.
        let guard = Self::held_by(id, worker).and(Filter::eq("attempts", job.attempts));
        match self
            .jobs
            .find_one_and_update(&guard, &update, false)
            .await?
        {
            Some(_) => Ok(next),
            None => Err(self.missed(id).await),
        }
    }

    async fn cancel(&self, id: JobId) -> Result<()> {
        let open = id_is(id).and(Filter::In(
            "status".into(),
            vec![status(JobStatus::Queued), status(JobStatus::Running)],
        ));
        let update = Update::new()
            .set("status", status(JobStatus::Cancelled))
            .set("finishedAt", at(self.clock.now()))
            .unset("leaseUntil");
        match self.jobs.find_one_and_update(&open, &update, false).await? {
            Some(_) => Ok(()),
            None => match self.missed(id).await {
                Error::Stale => Err(Error::invalid("status", "the job has already finished")),
                e => Err(e),
            },
        }
    }

    async fn replay(&self, id: JobId) -> Result<()> {
        let finished = id_is(id).and(Filter::In(
            "status".into(),
            vec![status(JobStatus::Dead), status(JobStatus::Cancelled)],
        ));
        let update = Update::new()
            .set("status", status(JobStatus::Queued))
            .set("runAt", at(self.clock.now()))
            .set("attempts", 0)
            .unset("leaseUntil")
            .unset("leasedBy")
            .unset("finishedAt");
        match self
            .jobs
            .find_one_and_update(&finished, &update, false)
            .await?
        {
            Some(_) => Ok(()),
            None => match self.missed(id).await {
                Error::Stale => Err(Error::invalid(
                    "status",
                    "only dead or cancelled jobs can be replayed",
                )),
                e => Err(e),
            },
        }
    }

    async fn get(&self, id: JobId) -> Result<Job> {
        self.jobs.get(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::ManualClock;
    use crm_core::WorkspaceId;

    fn setup() -> (StoreJobQueue, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_800_000_000_000)));
        let store = Arc::new(storage_memory::MemoryStore::new());
        let stores = Stores::new(store, clock.clone());
        (StoreJobQueue::new(&stores, clock.clone()), clock)
    }

    fn job(kind: &str, clock: &ManualClock) -> NewJob {
        NewJob::new(kind, json!({"n": 1}), clock.now())
    }

    #[tokio::test]
    async fn a_claimed_job_is_leased_and_counts_an_attempt() {
        let (q, clock) = setup();
        let ws = WorkspaceId::new();
        let id = q.enqueue(job("a", &clock).in_workspace(ws)).await.unwrap();
        assert!(q.claim("w1", &["b"], 30).await.unwrap().is_none());
        let j = q.claim("w1", &["a"], 30).await.unwrap().unwrap();
        assert_eq!(j.id, id);
        assert_eq!(j.status, JobStatus::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.workspace_id, Some(ws));
        assert_eq!(j.leased_by.as_deref(), Some("w1"));
        assert_eq!(j.lease_until, Some(clock.now().plus_seconds(30)));
        assert!(q.claim("w2", &["a"], 30).await.unwrap().is_none());
        q.complete(id, "w1").await.unwrap();
        let done = q.get(id).await.unwrap();
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.finished_at, Some(clock.now()));
        assert!(q.claim("w2", &["a"], 30).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_job_due_later_waits_for_its_time() {
        let (q, clock) = setup();
        let later = NewJob::new("a", Value::Null, clock.now().plus_seconds(60));
        q.enqueue(later).await.unwrap();
        assert!(q.claim("w", &["a"], 30).await.unwrap().is_none());
        clock.advance_seconds(59);
        assert!(q.claim("w", &["a"], 30).await.unwrap().is_none());
        clock.advance_seconds(1);
        assert!(q.claim("w", &["a"], 30).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn failures_back_off_exponentially_then_dead_letter() {
        let (q, clock) = setup();
        let id = q.enqueue(job("a", &clock).attempts(4)).await.unwrap();
        for (attempt, wait) in [(1, 1), (2, 2), (3, 4)] {
            let j = q.claim("w", &["a"], 30).await.unwrap().unwrap();
            assert_eq!(j.attempts, attempt);
            let before = clock.now();
            assert_eq!(q.fail(id, "w", "boom").await.unwrap(), JobStatus::Queued);
            let j = q.get(id).await.unwrap();
            assert_eq!(j.run_at, before.plus_seconds(wait));
            assert_eq!(j.last_error.as_deref(), Some("boom"));
            clock.advance_seconds(wait - 1);
            assert!(q.claim("w", &["a"], 30).await.unwrap().is_none());
            clock.advance_seconds(1);
        }
        q.claim("w", &["a"], 30).await.unwrap().unwrap();
        assert_eq!(q.fail(id, "w", "last").await.unwrap(), JobStatus::Dead);
        clock.advance_seconds(100_000);
        assert!(q.claim("w", &["a"], 30).await.unwrap().is_none());
        let dead = q.get(id).await.unwrap();
        assert_eq!((dead.status, dead.attempts), (JobStatus::Dead, 4));
    }

    #[test]
    fn backoff_doubles_and_is_capped_at_an_hour() {
        assert_eq!(
            (1..=5).map(backoff_secs).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16]
        );
        assert_eq!(backoff_secs(13), 3600);
        assert_eq!(backoff_secs(1000), 3600);
    }

    #[tokio::test]
    async fn an_expired_lease_is_claimed_again_and_the_old_holder_is_stale() {
        let (q, clock) = setup();
        let id = q.enqueue(job("a", &clock)).await.unwrap();
        q.claim("w1", &["a"], 30).await.unwrap().unwrap();
        clock.advance_seconds(20);
        q.heartbeat(id, "w1", 30).await.unwrap();
        clock.advance_seconds(20);
        assert!(q.claim("w2", &["a"], 30).await.unwrap().is_none());
        clock.advance_seconds(11);
        let again = q.claim("w2", &["a"], 30).await.unwrap().unwrap();
        assert_eq!(
            (again.attempts, again.leased_by.as_deref()),
            (2, Some("w2"))
        );
        assert_eq!(q.complete(id, "w1").await, Err(Error::Stale));
        assert_eq!(q.heartbeat(id, "w1", 30).await, Err(Error::Stale));
        assert_eq!(q.fail(id, "w1", "x").await, Err(Error::Stale));
        q.complete(id, "w2").await.unwrap();
        assert_eq!(q.complete(id, "w2").await, Err(Error::Stale));
        assert_eq!(q.complete(JobId::new(), "w2").await, Err(Error::NotFound));
    }

    #[tokio::test]
    async fn a_last_attempt_whose_lease_expires_is_dead_not_run_again() {
        let (q, clock) = setup();
        let id = q.enqueue(job("a", &clock).attempts(2)).await.unwrap();
        q.claim("w1", &["a"], 30).await.unwrap().unwrap();
        clock.advance_seconds(31);
        let second = q.claim("w2", &["a"], 30).await.unwrap().unwrap();
        assert_eq!(second.attempts, 2);
        clock.advance_seconds(31);
        assert!(q.claim("w3", &["a"], 30).await.unwrap().is_none());
        let dead = q.get(id).await.unwrap();
        assert_eq!((dead.status, dead.attempts), (JobStatus::Dead, 2));
        assert_eq!(q.complete(id, "w2").await, Err(Error::Stale));
    }

    #[tokio::test]
    async fn a_dedupe_key_stores_one_job() {
        let (q, clock) = setup();
        let a = q.enqueue(job("a", &clock).dedupe("k1")).await.unwrap();
        let b = q.enqueue(job("a", &clock).dedupe("k1")).await.unwrap();
        let c = q.enqueue(job("a", &clock).dedupe("k2")).await.unwrap();
        let d = q.enqueue(job("a", &clock)).await.unwrap();
        let e = q.enqueue(job("a", &clock)).await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(d, e);
        let mut claimed = 0;
        while let Some(j) = q.claim("w", &["a"], 30).await.unwrap() {
            q.complete(j.id, "w").await.unwrap();
            claimed += 1;
        }
        assert_eq!(claimed, 4);
        // Even once done, the key still answers with the first job.
        assert_eq!(q.enqueue(job("a", &clock).dedupe("k1")).await.unwrap(), a);
    }

    #[tokio::test]
    async fn cancel_and_replay() {
        let (q, clock) = setup();
        let id = q.enqueue(job("a", &clock)).await.unwrap();
        q.cancel(id).await.unwrap();
        assert_eq!(q.get(id).await.unwrap().status, JobStatus::Cancelled);
        assert!(q.claim("w", &["a"], 30).await.unwrap().is_none());
        assert!(matches!(q.cancel(id).await, Err(Error::Invalid { .. })));
        assert_eq!(q.cancel(JobId::new()).await, Err(Error::NotFound));
        assert_eq!(q.replay(JobId::new()).await, Err(Error::NotFound));

        q.replay(id).await.unwrap();
        let j = q.get(id).await.unwrap();
        assert_eq!(
            (j.status, j.attempts, j.run_at),
            (JobStatus::Queued, 0, clock.now())
        );
        assert!(matches!(q.replay(id).await, Err(Error::Invalid { .. })));

        let dead = q.enqueue(job("b", &clock).attempts(1)).await.unwrap();
        q.claim("w", &["b"], 30).await.unwrap().unwrap();
        assert_eq!(q.fail(dead, "w", "no").await.unwrap(), JobStatus::Dead);
        q.replay(dead).await.unwrap();
        let j = q.claim("w", &["b"], 30).await.unwrap().unwrap();
        assert_eq!((j.id, j.attempts), (dead, 1));
        q.complete(dead, "w").await.unwrap();

        // A running job can be cancelled; its holder then finds it stale.
        let run = q.enqueue(job("c", &clock)).await.unwrap();
        q.claim("w", &["c"], 30).await.unwrap().unwrap();
        q.cancel(run).await.unwrap();
        assert_eq!(q.complete(run, "w").await, Err(Error::Stale));
    }
}
