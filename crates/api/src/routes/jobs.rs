//! Automation visibility (ADR 0018, 0019): a workspace's domain events, its background jobs, and
//! cancelling or replaying a job. Jobs live in the global `jobs` collection with `workspaceId` as
//! data, so every job route filters or checks it: another workspace's job is a 404.

use automation::jobs::{Job, JobId, JobStatus};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::events::{DOMAIN_EVENT_TTL_SECONDS, DomainEvent};
use crm_core::services::tasks::id_filter;
use crm_core::{Error, Filter, SortKey, WorkspaceId};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_events))
        .routes(routes!(list_jobs))
        .routes(routes!(cancel_job))
        .routes(routes!(replay_job))
}

fn refuse_unsupported(p: &ListParams, what: &str) -> Result<(), Error> {
    for (name, given) in [
        ("search", p.search.is_some()),
        ("tags", p.tags.is_some()),
        ("sort", p.sort.is_some()),
    ] {
        if given {
            return Err(Error::invalid(name, format!("not supported by {what}")));
        }
    }
    Ok(())
}

fn text(field: &'static str, raw: Option<&str>) -> Option<Filter> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|v| Filter::eq(field, v))
}

/// Filters of the event list (besides paging and `fields`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EventFilters {
    /// An event type, e.g. `contact.created`, `deal.stage_changed`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// The record the events are about.
    pub entity_id: Option<String>,
}

/// Domain events of the workspace, newest first: `{events, pagination}`. Each has `type`
/// (`contact.updated`, `deal.won`, ...), `entityType`, `entityId`, `actor`, `changed` (paths),
/// `before`, `after`, `data` and `occurredAt`. Kept 90 days. Every role may read them.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/events",
    tag = "automation",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        EventFilters),
    responses(
        (status = 200, description = "`{events, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, paging, or a search/tags/sort the list does \
            not support", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list_events(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<EventFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    refuse_unsupported(&p, "the event list")?;
    // Stores other than MongoDB do not expire events: the window is the TTL's.
    let oldest = state
        .stores
        .clock()
        .now()
        .plus_seconds(-(DOMAIN_EVENT_TTL_SECONDS as i64))
        .to_canonical();
    let mut filter = Filter::Gte("occurredAt".into(), oldest.into());
    for part in [
        text("type", f.event_type.as_deref()),
        id_filter("entityId", f.entity_id.as_deref())?,
    ]
    .into_iter()
    .flatten()
    {
        filter = filter.and(part);
    }
    let sort = [SortKey::desc("occurredAt"), SortKey::desc("_id")];
    let body = list_without_expand(
        scope.repo::<DomainEvent>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "events",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// Filters of the job list (besides paging and `fields`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct JobFilters {
    /// queued, running, done, dead (failed every attempt) or cancelled.
    pub status: Option<String>,
    /// A job kind, e.g. `event.deliver`, `workflow.step`.
    pub kind: Option<String>,
}

fn status_filter(raw: Option<&str>) -> Result<Option<Filter>, Error> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let s: JobStatus = serde_json::from_value(raw.into()).map_err(|_| {
        Error::invalid("status", "must be queued, running, done, dead or cancelled")
    })?;
    let canonical = serde_json::to_value(s).map_err(Error::internal)?;
    Ok(Some(Filter::eq("status", canonical)))
}

/// The workspace's background jobs (event deliveries, workflow steps, ...), newest first:
/// `{jobs, pagination}`, each with `kind`, `status`, `runAt`, `attempts`, `maxAttempts`,
/// `lastError` and `payload`. Owner and admins only.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/jobs",
    tag = "automation",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        JobFilters),
    responses(
        (status = 200, description = "`{jobs, pagination}`", body = Object),
        (status = 403, description = "Only the owner and admins see jobs", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, paging, or a search/tags/sort the list does \
            not support", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<JobFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    refuse_unsupported(&p, "the job list")?;
    let mut filter = Filter::eq("workspaceId", scope.id().to_string());
    for part in [
        status_filter(f.status.as_deref())?,
        text("kind", f.kind.as_deref()),
    ]
    .into_iter()
    .flatten()
    {
        filter = filter.and(part);
    }
    let sort = [SortKey::desc("createdAt"), SortKey::desc("_id")];
    let body = list_without_expand(
        state.stores.global::<Job>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "jobs",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// The job `raw` names, when it works for `ws`; another workspace's is as missing as none.
async fn own_job(state: &AppState, ws: WorkspaceId, raw: &str) -> Result<JobId, Error> {
    let id: JobId = path_id(raw)?;
    let job = state.stores.global::<Job>().get(id).await?;
    if job.workspace_id != Some(ws) {
        return Err(Error::NotFound);
    }
    Ok(id)
}

/// Cancels a queued or running job (a running one's result is then ignored). Owner and admins.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/jobs/{id}/cancel",
    tag = "automation",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The cancelled job", body = Object),
        (status = 403, description = "Only the owner and admins manage jobs", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such job in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The job has already finished", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Job>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let id = own_job(&state, scope.id(), &id).await?;
    let queue = state.automation.queue();
    queue.cancel(id).await?;
    Ok(ApiJson(queue.get(id).await?))
}

/// Puts a dead (or cancelled) job back in the queue, due now, with its attempts reset. Owner
/// and admins.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/jobs/{id}/replay",
    tag = "automation",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The queued job", body = Object),
        (status = 403, description = "Only the owner and admins manage jobs", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such job in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Only dead or cancelled jobs can be replayed", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn replay_job(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Job>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let id = own_job(&state, scope.id(), &id).await?;
    let queue = state.automation.queue();
    queue.replay(id).await?;
    Ok(ApiJson(queue.get(id).await?))
}
