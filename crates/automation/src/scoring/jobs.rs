//! The periodic jobs: each runs for the job's workspace, or for every live workspace when the
//! job names none (how the periodic scheduler enqueues them).

use std::sync::Arc;

use async_trait::async_trait;

use crm_core::Result;
use crm_core::repo::Stores;

use super::warmup::{WarmupPool, WarmupSender};
use super::{intent, job_workspaces, lead, lifecycle, recycling, warmup};
use crate::handlers::JobHandler;
use crate::jobs::Job;

pub const DECAY: &str = "scoring.decay";
pub const INTENT_RECOMPUTE: &str = "scoring.intent_recompute";
pub const LIFECYCLE_PROGRESSION: &str = "scoring.lifecycle_progression";
pub const RECYCLING: &str = "scoring.lead_recycling";
pub const WARMUP: &str = "scoring.warmup";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Decay,
    Intent,
    Lifecycle,
    Recycling,
}

/// Runs one of the per-workspace jobs.
#[derive(Debug, Clone)]
pub struct WorkspaceJob {
    stores: Stores,
    kind: Kind,
}

#[async_trait]
impl JobHandler for WorkspaceJob {
    fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Decay => DECAY,
            Kind::Intent => INTENT_RECOMPUTE,
            Kind::Lifecycle => LIFECYCLE_PROGRESSION,
            Kind::Recycling => RECYCLING,
        }
    }

    async fn run(&self, job: &Job) -> Result<()> {
        for ws in job_workspaces(&self.stores, job.workspace_id).await? {
            let scope = self.stores.workspace(ws);
            let now = self.stores.clock().now();
            let n = match self.kind {
                Kind::Decay => lead::apply_decay(&scope, now).await?,
                Kind::Intent => intent::recompute_workspace(&scope, now).await?,
                Kind::Lifecycle => lifecycle::auto_progress(&scope, now).await?,
                Kind::Recycling => {
                    let opened = recycling::detect(&scope, now).await?;
                    let p = recycling::process(&scope, now).await?;
                    opened + p.attempted + p.re_engaged
                }
            };
            if n > 0 {
                tracing::info!(job = self.kind(), workspace = %ws, changed = n, "periodic job ran");
            }
        }
        Ok(())
    }
}

/// The hourly warm-up round.
#[derive(Debug, Clone)]
pub struct WarmupJob {
    stores: Stores,
    pool: Arc<dyn WarmupPool>,
    sender: Arc<dyn WarmupSender>,
}

impl WarmupJob {
    pub fn new(stores: Stores, pool: Arc<dyn WarmupPool>, sender: Arc<dyn WarmupSender>) -> Self {
        Self {
            stores,
            pool,
            sender,
        }
    }
}

#[async_trait]
impl JobHandler for WarmupJob {
    fn kind(&self) -> &'static str {
        WARMUP
    }

    async fn run(&self, _job: &Job) -> Result<()> {
        let now = self.stores.clock().now();
        warmup::run_hour(&self.stores, self.pool.as_ref(), self.sender.as_ref(), now).await?;
        Ok(())
    }
}

/// The handlers of every periodic job here, with the default warm-up pool (none) and sender
/// (logging).
pub fn handlers(stores: &Stores) -> Vec<Arc<dyn JobHandler>> {
    let ws = |kind| -> Arc<dyn JobHandler> {
        Arc::new(WorkspaceJob {
            stores: stores.clone(),
            kind,
        })
    };
    vec![
        ws(Kind::Decay),
        ws(Kind::Intent),
        ws(Kind::Lifecycle),
        ws(Kind::Recycling),
        Arc::new(WarmupJob::new(
            stores.clone(),
            Arc::new(warmup::NoAccounts),
            Arc::new(warmup::LogWarmupSender),
        )),
    ]
}
