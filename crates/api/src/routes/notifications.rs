//! Notifications: the caller's own inbox in a workspace. Every member may read and tidy their own
//! notifications whatever their role (it is their inbox, not workspace data); nobody sees
//! another user's, whose ids answer 404. The rules live in `crm_core::services::notifications`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::SortKey;
use crm_core::accounts::{Action, Resource};
use crm_core::entities::notification::{Notification, NotificationId};
use crm_core::services::notifications;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 20;
const SORTABLE: &[&str] = &["createdAt", "isRead", "type", "priority"];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_notifications))
        .routes(routes!(unread_count))
        .routes(routes!(read_all))
        .routes(routes!(mark_read))
        .routes(routes!(delete_notification))
}

/// Filters of the notification list (besides paging, sort and fields).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct NotificationFilters {
    /// true or false.
    pub is_read: Option<String>,
    /// task_due, task_assigned, deal_won, deal_lost, new_lead, workflow_complete, mention,
    /// system, custom, agent_handoff.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnreadCount {
    pub unread_count: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadAll {
    /// Notifications that were unread.
    pub modified: u64,
}

/// The caller's notifications, newest first, with the unread count.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        NotificationFilters),
    responses(
        (status = 200, description = "`{notifications, unreadCount, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_notifications(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<NotificationFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workspace, Action::View)?;
    let me = member.user.id;
    for (name, v) in [("search", &p.search), ("tags", &p.tags)] {
        if v.is_some() {
            return Err(
                crm_core::Error::invalid(name, "notifications cannot be filtered by it").into(),
            );
        }
    }
    let filter = notifications::list_filter(me, f.is_read.as_deref(), f.kind.as_deref())?;
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let mut body = list_without_expand(
        scope.repo::<Notification>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "notifications",
    )
    .await?;
    let unread = notifications::unread_count(scope, me).await?;
    body.items.insert("unreadCount".into(), Value::from(unread));
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/notifications/unread-count",
    tag = "notifications",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "How many of the caller's notifications are unread",
            body = UnreadCount),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn unread_count(member: Member) -> ApiResult<ApiJson<UnreadCount>> {
    let scope = member.can(Resource::Workspace, Action::View)?;
    let unread_count = notifications::unread_count(scope, member.user.id).await?;
    Ok(ApiJson(UnreadCount { unread_count }))
}

/// Marks one notification read (`readAt` keeps the first time).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/notifications/{id}/read",
    tag = "notifications",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The notification id")),
    responses(
        (status = 200, description = "The notification", body = Object),
        (status = 404, description = "No such notification of the caller", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn mark_read(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Notification>> {
    let scope = member.can(Resource::Workspace, Action::View)?;
    let id: NotificationId = path_id(&id)?;
    let now = state.stores.clock().now();
    Ok(ApiJson(
        notifications::mark_read(scope, member.user.id, id, now).await?,
    ))
}

/// Marks all the caller's notifications read.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/notifications/read-all",
    tag = "notifications",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "How many were unread", body = ReadAll),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn read_all(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<ApiJson<ReadAll>> {
    let scope = member.can(Resource::Workspace, Action::View)?;
    let now = state.stores.clock().now();
    let modified = notifications::mark_all_read(scope, member.user.id, now).await?;
    Ok(ApiJson(ReadAll { modified }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/notifications/{id}",
    tag = "notifications",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The notification id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such notification of the caller", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_notification(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Workspace, Action::View)?;
    let id: NotificationId = path_id(&id)?;
    notifications::delete(scope, member.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
