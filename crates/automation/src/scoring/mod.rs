//! Lead scoring, intent scoring, lifecycle stages, lead recycling and inbox warm-up (ADR 0021):
//! the rules, the event consumer that feeds lead scores, and the periodic jobs (decay, intent
//! recompute, lifecycle progression, recycling, warm-up).

pub mod consumer;
pub mod intent;
pub mod jobs;
pub mod lead;
pub mod lifecycle;
pub mod recycling;
pub mod warmup;

#[cfg(test)]
mod tests;

use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::project::Project;
use crm_core::repo::{Stores, WorkspaceScope};
use crm_core::{EntityDef, Error, Filter, FindOptions, Result, SortKey, WorkspaceId};
use serde_json::Value;

/// This module's declarations, for the crate's `entities()`.
pub fn entities() -> [&'static EntityDef; 5] {
    [
        &lead::LEAD_SCORE,
        &intent::INTENT_SIGNAL,
        &lifecycle::CONTACT_LIFECYCLE_HISTORY,
        &recycling::LEAD_RECYCLING,
        &warmup::WARMUP_ACTIVITY,
    ]
}

pub const DAY_SECS: i64 = 24 * 3600;

/// A live contact of the scope's workspace; trashed, merged and foreign ones are not found.
pub async fn live_contact(scope: &WorkspaceScope, id: ContactId) -> Result<Contact> {
    let c = scope.repo::<Contact>().get(id).await?;
    if c.deleted_at.is_some() || c.merged_into.is_some() {
        return Err(Error::NotFound);
    }
    Ok(c)
}

/// Parses a contact id from a path or body; malformed ids are unknown ones (404), as for the
/// core routes.
pub fn contact_id(s: &str) -> Result<ContactId> {
    s.parse().map_err(|_| Error::NotFound)
}

/// The ids of every live workspace, for the periodic jobs that run across all of them.
pub async fn live_workspaces(stores: &Stores) -> Result<Vec<WorkspaceId>> {
    let repo = stores.global::<Project>();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut f = Filter::eq("deletedAt", Value::Null);
        if let Some(a) = &after {
            f = f.and(Filter::Gt("_id".into(), Value::String(a.clone())));
        }
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            skip: 0,
            limit: Some(500),
        };
        let page = repo.find(&f, &opts).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.to_string());
        let n = page.len();
        out.extend(page.into_iter().map(|p| p.id));
        if n < 500 {
            break;
        }
    }
    Ok(out)
}

/// The workspaces a periodic job works on: the job's own, or every live one.
pub async fn job_workspaces(stores: &Stores, ws: Option<WorkspaceId>) -> Result<Vec<WorkspaceId>> {
    match ws {
        Some(w) => Ok(vec![w]),
        None => live_workspaces(stores).await,
    }
}

/// Registers this module's job handlers, the `lead-scoring` consumer and the periodic jobs
/// (called from `runtime::standard`).
pub fn register(rt: &crate::runtime::Runtime) {
    use crate::periodic::{Periodic, Schedule};
    let stores = rt.stores().clone();
    for h in jobs::handlers(&stores) {
        rt.register_handler(h);
    }
    rt.register_consumer(std::sync::Arc::new(consumer::LeadScoringConsumer::new(
        stores,
    )));
    for (kind, schedule) in [
        (jobs::DECAY, Schedule::daily_at(3, 0)),
        (jobs::INTENT_RECOMPUTE, Schedule::daily_at(2, 0)),
        (jobs::LIFECYCLE_PROGRESSION, Schedule::every_secs(2 * 3600)),
        (jobs::RECYCLING, Schedule::daily_at(9, 0)),
        (jobs::WARMUP, Schedule::every_secs(3600)),
    ] {
        match schedule {
            Ok(s) => rt.register_periodic(Periodic::new(kind, s, kind)),
            Err(e) => tracing::error!(job = kind, error = %e, "bad schedule"),
        }
    }
}
