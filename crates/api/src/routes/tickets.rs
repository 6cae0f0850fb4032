//! Support tickets: CRUD, comments, stats, bulk status and assignment. Numbers (`TKT-0001`...) are drawn per workspace from
//! one atomic counter; the rules live in `crm_core::services::tickets`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::ticket::{Ticket, TicketId, TicketStatus};
use crm_core::services::opportunities::BulkReport;
use crm_core::services::tasks::{Actor, nullable};
use crm_core::services::tickets::{self, ListQuery, NewComment, NewTicket, TicketPatch};
use crm_core::{Error, SortKey, UserId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::routes::opportunities::BulkReportDoc;
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "ticketNumber",
    "status",
    "priority",
    "dueDate",
    "resolvedAt",
];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_ticket, list_tickets))
        .routes(routes!(get_ticket, patch_ticket, delete_ticket))
        .routes(routes!(add_comment))
        .routes(routes!(ticket_stats))
        .routes(routes!(bulk_ticket_status))
        .routes(routes!(bulk_ticket_assign))
}

pub(crate) fn actor(member: &Member, state: &AppState) -> Actor {
    Actor {
        user: member.user.id,
        owner: member.workspace.user_id,
        now: state.stores.clock().now(),
    }
}

/// A path id; a malformed one is as unknown as a missing one.
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, Error> {
    raw.parse().map_err(|_| Error::NotFound)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTicket {
    /// Up to 500 characters.
    pub subject: String,
    /// Up to 10000 characters.
    pub description: String,
    /// open (default), in_progress, waiting_on_customer, resolved, closed.
    #[schema(value_type = Option<String>)]
    pub status: Option<crm_core::entities::ticket::TicketStatus>,
    /// low, medium (default), high, urgent.
    #[schema(value_type = Option<String>)]
    pub priority: Option<crm_core::entities::task::Priority>,
    /// support (default), billing, technical, feature_request, bug, other.
    #[schema(value_type = Option<String>)]
    pub category: Option<crm_core::entities::ticket::TicketCategory>,
    /// A contact of the workspace.
    #[schema(value_type = Option<String>)]
    pub requester_id: Option<crm_core::entities::contact::ContactId>,
    pub requester_email: String,
    pub requester_name: Option<String>,
    /// An active member of the workspace.
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<crm_core::UserId>,
    pub assigned_team: Option<String>,
    #[schema(value_type = Option<String>)]
    pub related_contact_id: Option<crm_core::entities::contact::ContactId>,
    #[schema(value_type = Option<String>)]
    pub related_company_id: Option<crm_core::entities::company::CompanyId>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<crm_core::Timestamp>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// email, web (default), chat, phone, api.
    #[schema(value_type = Option<String>)]
    pub source: Option<crm_core::entities::ticket::TicketSource>,
}

impl From<CreateTicket> for NewTicket {
    fn from(c: CreateTicket) -> Self {
        NewTicket {
            subject: c.subject,
            description: c.description,
            status: c.status,
            priority: c.priority,
            category: c.category,
            requester_id: c.requester_id,
            requester_email: c.requester_email,
            requester_name: c.requester_name,
            assigned_to: c.assigned_to,
            assigned_team: c.assigned_team,
            related_contact_id: c.related_contact_id,
            related_company_id: c.related_company_id,
            due_date: c.due_date,
            tags: c.tags,
            source: c.source,
        }
    }
}

/// Absent fields stay; `null` clears the optional ones.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchTicket {
    pub subject: Option<String>,
    pub description: Option<String>,
    /// Entering resolved or closed the first time stamps `resolvedAt` and
    /// `resolutionTimeMinutes`.
    #[schema(value_type = Option<String>)]
    pub status: Option<crm_core::entities::ticket::TicketStatus>,
    #[schema(value_type = Option<String>)]
    pub priority: Option<crm_core::entities::task::Priority>,
    #[schema(value_type = Option<String>)]
    pub category: Option<crm_core::entities::ticket::TicketCategory>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub requester_id: Option<Option<crm_core::entities::contact::ContactId>>,
    pub requester_email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub requester_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<Option<crm_core::UserId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub assigned_team: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub related_contact_id: Option<Option<crm_core::entities::contact::ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub related_company_id: Option<Option<crm_core::entities::company::CompanyId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<Option<crm_core::Timestamp>>,
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<String>)]
    pub source: Option<crm_core::entities::ticket::TicketSource>,
}

impl From<PatchTicket> for TicketPatch {
    fn from(p: PatchTicket) -> Self {
        TicketPatch {
            subject: p.subject,
            description: p.description,
            status: p.status,
            priority: p.priority,
            category: p.category,
            requester_id: p.requester_id,
            requester_email: p.requester_email,
            requester_name: p.requester_name,
            assigned_to: p.assigned_to,
            assigned_team: p.assigned_team,
            related_contact_id: p.related_contact_id,
            related_company_id: p.related_company_id,
            due_date: p.due_date,
            tags: p.tags,
            source: p.source,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateComment {
    /// Up to 10000 characters.
    pub message: String,
    /// Internal notes are not a response to the requester.
    #[serde(default)]
    pub is_internal: bool,
}

/// Filters of the ticket list (besides the shared list parameters).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TicketFilters {
    /// open, in_progress, waiting_on_customer, resolved, closed.
    pub status: Option<String>,
    /// low, medium, high, urgent.
    pub priority: Option<String>,
    /// A user id.
    pub assigned_to: Option<String>,
}

/// Opens a ticket with the workspace's next number.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/tickets",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateTicket,
    responses(
        (status = 201, description = "The ticket", body = Object),
        (status = 403, description = "The role may not create tickets", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or unknown reference", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_ticket(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<CreateTicket>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Tickets, Action::Create)?;
    let t = tickets::create(scope, &actor(&member, &state), req.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(t)).into_response())
}

/// Tickets, newest first, filtered by status, priority, assignee, tags and search (ticket number,
/// subject, description, requester email).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tickets",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        TicketFilters),
    responses(
        (status = 200, description = "`{tickets, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_tickets(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<TicketFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Tickets, Action::View)?;
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
    let filter = tags_only.base_filter().and(tickets::list_filter(&q)?);
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<Ticket>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "tickets",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// One ticket with its comments.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tickets/{id}",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The ticket id")),
    responses(
        (status = 200, description = "The ticket", body = Object),
        (status = 404, description = "No such ticket in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_ticket(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Ticket>> {
    let scope = member.can(Resource::Tickets, Action::View)?;
    let id: TicketId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<Ticket>().get(id).await?))
}

/// Changes a ticket; the first move to resolved or closed records the resolution time.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/tickets/{id}",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The ticket id")),
    request_body = PatchTicket,
    responses(
        (status = 200, description = "The updated ticket", body = Object),
        (status = 403, description = "The role may not edit tickets", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such ticket in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or unknown reference", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_ticket(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchTicket>,
) -> ApiResult<ApiJson<Ticket>> {
    let scope = member.can(Resource::Tickets, Action::Edit)?;
    let id: TicketId = path_id(&id)?;
    let t = tickets::update(scope, &actor(&member, &state), id, req.into()).await?;
    Ok(ApiJson(t))
}

/// Deletes a ticket (its number is not reused).
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/tickets/{id}",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The ticket id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete tickets", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such ticket in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_ticket(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Tickets, Action::Delete)?;
    let id: TicketId = path_id(&id)?;
    // 404 before anything is removed; then attachments, then the ticket.
    scope.repo::<Ticket>().get(id).await?;
    crm_core::services::attachments::purge_parent(
        scope,
        state.blobs.as_ref(),
        "ticketId",
        &id.to_string(),
    )
    .await?;
    scope.repo::<Ticket>().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a comment; the first public one records the first response time.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/tickets/{id}/comments",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The ticket id")),
    request_body = CreateComment,
    responses(
        (status = 201, description = "The ticket with the new comment", body = Object),
        (status = 403, description = "The role may not edit tickets", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such ticket in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Empty or too long message", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn add_comment(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<CreateComment>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Tickets, Action::Edit)?;
    let id: TicketId = path_id(&id)?;
    let cmd = NewComment {
        message: req.message,
        is_internal: req.is_internal,
    };
    let t = tickets::add_comment(scope, &actor(&member, &state), id, cmd).await?;
    Ok((StatusCode::CREATED, ApiJson(t)).into_response())
}

/// Counts by status and priority, mean response and resolution minutes.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tickets-stats",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{total, byStatus, byPriority, avgResponseMinutes, \
            avgResolutionMinutes}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn ticket_stats(member: Member) -> ApiResult<ApiJson<tickets::TicketStats>> {
    let scope = member.can(Resource::Tickets, Action::View)?;
    Ok(ApiJson(tickets::stats(scope).await?))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = TicketsBulkStatus)]
#[serde(deny_unknown_fields)]
pub struct BulkStatus {
    /// 1 to 500 ticket ids.
    pub ids: Vec<String>,
    /// open, in_progress, waiting_on_customer, resolved, closed.
    #[schema(value_type = String)]
    pub status: TicketStatus,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = TicketsBulkAssign)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkAssign {
    /// 1 to 500 ticket ids.
    pub ids: Vec<String>,
    /// An active member, or null to unassign.
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<UserId>,
}

/// Sets the status of many tickets; the first resolution is stamped as for one ticket.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/tickets/bulk/status",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkStatus,
    responses(
        (status = 200, description = "What happened to each id", body = BulkReportDoc),
        (status = 403, description = "The role may not edit tickets", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, more than 500, or a malformed one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_ticket_status(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<BulkStatus>,
) -> ApiResult<ApiJson<BulkReport>> {
    let scope = member.can(Resource::Tickets, Action::Edit)?;
    let r = tickets::bulk_status(scope, &actor(&member, &state), &req.ids, req.status).await?;
    Ok(ApiJson(r))
}

/// Assigns many tickets to a member, or unassigns them.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/tickets/bulk/assign",
    tag = "tickets",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkAssign,
    responses(
        (status = 200, description = "What happened to each id", body = BulkReportDoc),
        (status = 403, description = "The role may not edit tickets", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad ids or an assignee who is not a member", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_ticket_assign(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<BulkAssign>,
) -> ApiResult<ApiJson<BulkReport>> {
    let scope = member.can(Resource::Tickets, Action::Edit)?;
    let r = tickets::bulk_assign(scope, &actor(&member, &state), &req.ids, req.assigned_to).await?;
    Ok(ApiJson(r))
}
