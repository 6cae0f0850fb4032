//! Tasks: CRUD, completion, bulk status and assignment, stats. The rules live in
//! `crm_core::services::tasks`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::SortKey;
use crm_core::accounts::{Action, Resource};
use crm_core::entities::company::CompanyId;
use crm_core::entities::contact::ContactId;
use crm_core::entities::opportunity::OpportunityId;
use crm_core::entities::task::{Priority, Task, TaskId, TaskStatus};
use crm_core::services::tasks::{self, ListQuery, NewTask, TaskPatch, nullable};
use crm_core::{Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::{actor, path_id};
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "dueDate",
    "status",
    "priority",
    "title",
    "completedAt",
];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_task, list_tasks))
        .routes(routes!(get_task, patch_task, delete_task))
        .routes(routes!(complete_task))
        .routes(routes!(task_stats))
        .routes(routes!(bulk_status))
        .routes(routes!(bulk_assign))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTask {
    /// Up to 500 characters.
    pub title: String,
    /// Up to 5000 characters.
    pub description: Option<String>,
    /// todo (default), in_progress, completed, cancelled.
    #[schema(value_type = Option<String>)]
    pub status: Option<TaskStatus>,
    /// low, medium (default), high, urgent.
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reminder_date: Option<Timestamp>,
    /// A contact of the workspace.
    #[schema(value_type = Option<String>)]
    pub related_contact_id: Option<ContactId>,
    /// A company of the workspace.
    #[schema(value_type = Option<String>)]
    pub related_company_id: Option<CompanyId>,
    /// An opportunity of the workspace.
    #[schema(value_type = Option<String>)]
    pub related_opportunity_id: Option<OpportunityId>,
    /// An active member of the workspace.
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<UserId>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl From<CreateTask> for NewTask {
    fn from(c: CreateTask) -> Self {
        NewTask {
            title: c.title,
            description: c.description,
            status: c.status,
            priority: c.priority,
            due_date: c.due_date,
            reminder_date: c.reminder_date,
            related_contact_id: c.related_contact_id,
            related_company_id: c.related_company_id,
            related_opportunity_id: c.related_opportunity_id,
            assigned_to: c.assigned_to,
            tags: c.tags,
        }
    }
}

/// Absent fields stay; `null` clears the optional ones.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchTask {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Entering completed stamps `completedAt`; leaving it clears it.
    #[schema(value_type = Option<String>)]
    pub status: Option<TaskStatus>,
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reminder_date: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub related_contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub related_company_id: Option<Option<CompanyId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub related_opportunity_id: Option<Option<OpportunityId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<Option<UserId>>,
    pub tags: Option<Vec<String>>,
}

impl From<PatchTask> for TaskPatch {
    fn from(p: PatchTask) -> Self {
        TaskPatch {
            title: p.title,
            description: p.description,
            status: p.status,
            priority: p.priority,
            due_date: p.due_date,
            reminder_date: p.reminder_date,
            related_contact_id: p.related_contact_id,
            related_company_id: p.related_company_id,
            related_opportunity_id: p.related_opportunity_id,
            assigned_to: p.assigned_to,
            tags: p.tags,
        }
    }
}

/// Filters of the task list (besides the shared list parameters).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TaskFilters {
    /// todo, in_progress, completed, cancelled.
    pub status: Option<String>,
    /// low, medium, high, urgent.
    pub priority: Option<String>,
    /// A user id.
    pub assigned_to: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkStatus {
    /// 1 to 500 task ids; ids of other workspaces are ignored.
    pub task_ids: Vec<String>,
    #[schema(value_type = String)]
    pub status: TaskStatus,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkAssign {
    /// 1 to 500 task ids; ids of other workspaces are ignored.
    pub task_ids: Vec<String>,
    /// An active member, or null to unassign.
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<UserId>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    /// Tasks of this workspace among the given ids.
    pub matched: u64,
}

/// Creates a task owned by the caller.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateTask,
    responses(
        (status = 201, description = "The task", body = Object),
        (status = 403, description = "The role may not create tasks", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or unknown reference", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_task(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<CreateTask>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Tasks, Action::Create)?;
    let t = tasks::create(scope, &actor(&member, &state), req.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(t)).into_response())
}

/// Tasks, newest first, filtered by status, priority, assignee, tags and search (title,
/// description).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        TaskFilters),
    responses(
        (status = 200, description = "`{tasks, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_tasks(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<TaskFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Tasks, Action::View)?;
    let q = ListQuery {
        status: f.status,
        priority: f.priority,
        assigned_to: f.assigned_to,
        search: p.search.clone(),
    };
    let tags_only = ListParams {
        search: None,
        ..p.clone()
    };
    let filter = tags_only.base_filter().and(tasks::list_filter(&q)?);
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<Task>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "tasks",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The task id")),
    responses(
        (status = 200, description = "The task", body = Object),
        (status = 404, description = "No such task in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_task(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Task>> {
    let scope = member.can(Resource::Tasks, Action::View)?;
    let id: TaskId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<Task>().get(id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The task id")),
    request_body = PatchTask,
    responses(
        (status = 200, description = "The updated task", body = Object),
        (status = 403, description = "The role may not edit tasks", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such task in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or unknown reference", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_task(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchTask>,
) -> ApiResult<ApiJson<Task>> {
    let scope = member.can(Resource::Tasks, Action::Edit)?;
    let id: TaskId = path_id(&id)?;
    let t = tasks::update(scope, &actor(&member, &state), id, req.into()).await?;
    Ok(ApiJson(t))
}

#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The task id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete tasks", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such task in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_task(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Tasks, Action::Delete)?;
    let id: TaskId = path_id(&id)?;
    scope.repo::<Task>().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks a task completed (keeps the first completion time when it already was).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/tasks/{id}/complete",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The task id")),
    responses(
        (status = 200, description = "The completed task", body = Object),
        (status = 403, description = "The role may not edit tasks", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such task in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn complete_task(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Task>> {
    let scope = member.can(Resource::Tasks, Action::Edit)?;
    let id: TaskId = path_id(&id)?;
    let t = tasks::complete(scope, state.stores.clock().now(), id).await?;
    Ok(ApiJson(t))
}

/// Counts by status and priority, overdue and due today (UTC).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tasks-stats",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{total, byStatus, byPriority, overdue, dueToday}`",
            body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn task_stats(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<ApiJson<tasks::TaskStats>> {
    let scope = member.can(Resource::Tasks, Action::View)?;
    Ok(ApiJson(
        tasks::stats(scope, state.stores.clock().now()).await?,
    ))
}

/// Sets the status of many tasks.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/tasks/bulk/status",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkStatus,
    responses(
        (status = 200, description = "How many tasks matched", body = BulkResult),
        (status = 403, description = "The role may not edit tasks", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, more than 500, or a malformed one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_status(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<BulkStatus>,
) -> ApiResult<ApiJson<BulkResult>> {
    let scope = member.can(Resource::Tasks, Action::Edit)?;
    let matched =
        tasks::bulk_status(scope, state.stores.clock().now(), &req.task_ids, req.status).await?;
    Ok(ApiJson(BulkResult { matched }))
}

/// Assigns many tasks to a member, or unassigns them.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/tasks/bulk/assign",
    tag = "tasks",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkAssign,
    responses(
        (status = 200, description = "How many tasks matched", body = BulkResult),
        (status = 403, description = "The role may not edit tasks", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad ids or an assignee who is not a member", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_assign(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<BulkAssign>,
) -> ApiResult<ApiJson<BulkResult>> {
    let scope = member.can(Resource::Tasks, Action::Edit)?;
    let matched = tasks::bulk_assign(
        scope,
        &actor(&member, &state),
        &req.task_ids,
        req.assigned_to,
    )
    .await?;
    Ok(ApiJson(BulkResult { matched }))
}
