//! Contact lists: CRUD, static membership (add/remove ids), the members of a list as a contact
//! page, and the member count. The rules live in `crm_core::services::contact_lists`.
//!
//! Lists count as contact data for the role table.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::contact_list::{ContactList, ContactListId, ListFilters, ListType};
use crm_core::services::contact_lists::{self as svc, ListPatch, NewList};
use crm_core::services::tasks::nullable;
use crm_core::{SortKey, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contacts::contact_page;
use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const SORTABLE: &[&str] = &["createdAt", "updatedAt", "name", "type", "cachedCount"];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_list, list_lists))
        .routes(routes!(get_list, patch_list, delete_list))
        .routes(routes!(add_members, remove_members))
        .routes(routes!(list_members))
        .routes(routes!(count_members))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateContactList {
    /// 1 to 100 characters.
    pub name: String,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// `static` (default): members are listed ids; `dynamic`: members are the contacts matching
    /// `filters`.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<ListType>,
    /// Static lists only: up to 500 initial members, live contacts of this workspace.
    pub contacts: Option<Vec<String>>,
    /// Dynamic lists only (required there): `{conditions: [{field, operator, value}], logic}`.
    /// `field` is a contact field or `customFields.<key>`; `operator` is one of equals,
    /// not_equals, contains, not_contains, greater_than, less_than, in, not_in, exists,
    /// not_exists; `logic` is AND (default) or OR.
    #[schema(value_type = Option<Object>)]
    pub filters: Option<ListFilters>,
    pub color: Option<String>,
    pub icon: Option<String>,
}

impl From<CreateContactList> for NewList {
    fn from(c: CreateContactList) -> Self {
        NewList {
            name: c.name,
            description: c.description,
            kind: c.kind,
            contacts: c.contacts,
            filters: c.filters,
            color: c.color,
            icon: c.icon,
        }
    }
}

/// Absent fields stay; `null` clears the optional ones. The type cannot change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchContactList {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Dynamic lists only: replaces the conditions (checked as on create).
    #[schema(value_type = Option<Object>)]
    pub filters: Option<ListFilters>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub color: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub icon: Option<Option<String>>,
}

impl From<PatchContactList> for ListPatch {
    fn from(p: PatchContactList) -> Self {
        ListPatch {
            name: p.name,
            description: p.description,
            filters: p.filters,
            color: p.color,
            icon: p.icon,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListMembers {
    /// 1 to 500 contact ids.
    pub contact_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListFilters {
    /// `static` or `dynamic`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListCount {
    /// Live contacts in the list now (also stored as the list's `cachedCount`).
    pub count: u64,
    #[schema(value_type = String, format = DateTime)]
    pub last_count_update: Option<Timestamp>,
}

fn now(state: &AppState) -> Timestamp {
    state.stores.clock().now()
}

/// Creates a list owned by the caller (201), with its member count.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateContactList,
    responses(
        (status = 201, description = "The list", body = Object),
        (status = 403, description = "The role may not create contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, condition (`field` names its path, e.g. \
            `filters.conditions[2].field`) or contact id", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_list(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<CreateContactList>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::Create)?;
    let l = svc::create(scope, member.user.id, now(&state), req.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(l)).into_response())
}

/// Lists, newest first, filtered by type and search (name, description).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        ContactListFilters),
    responses(
        (status = 200, description = "`{contactLists, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_lists(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<ContactListFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let filter = svc::list_filter(f.kind.as_deref(), p.search.as_deref())?;
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<ContactList>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "contactLists",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id")),
    responses(
        (status = 200, description = "The list", body = Object),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_list(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<ContactList>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ContactListId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<ContactList>().get(id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id")),
    request_body = PatchContactList,
    responses(
        (status = 200, description = "The updated list", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or condition", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_list(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchContactList>,
) -> ApiResult<ApiJson<ContactList>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let id: ContactListId = path_id(&id)?;
    Ok(ApiJson(
        svc::update(scope, now(&state), id, req.into()).await?,
    ))
}

/// Deletes the list (never its contacts).
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_list(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let id: ContactListId = path_id(&id)?;
    scope.repo::<ContactList>().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds contacts to a static list; ids already in it are left alone.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}/members",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id")),
    request_body = ListMembers,
    responses(
        (status = 200, description = "The updated list", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A dynamic list, or ids that are not live contacts of \
            this workspace (named in `detail`)", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn add_members(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<ListMembers>,
) -> ApiResult<ApiJson<ContactList>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let id: ContactListId = path_id(&id)?;
    Ok(ApiJson(
        svc::add_members(scope, now(&state), id, &req.contact_ids).await?,
    ))
}

/// Removes ids from a static list (ids that are not members are ignored).
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}/members",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id")),
    request_body = ListMembers,
    responses(
        (status = 200, description = "The updated list", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A dynamic list, or malformed ids", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn remove_members(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<ListMembers>,
) -> ApiResult<ApiJson<ContactList>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let id: ContactListId = path_id(&id)?;
    Ok(ApiJson(
        svc::remove_members(scope, now(&state), id, &req.contact_ids).await?,
    ))
}

/// The list's live members as a contact page: the same paging, sort, search, tags, fields and
/// `expand=company` as the contact list.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}/contacts",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id"), ListParams),
    responses(
        (status = 200, description = "`{contacts, pagination}`", body = Object),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad sort, paging or expansion, or a stored condition the \
            store refuses", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list_members(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ContactListId = path_id(&id)?;
    let list = scope.repo::<ContactList>().get(id).await?;
    contact_page(scope, svc::member_filter(&list)?, &p).await
}

/// Counts the live members now and stores the count as `cachedCount`.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contact-lists/{id}/count",
    tag = "contact-lists",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The list id")),
    responses(
        (status = 200, description = "The count", body = ListCount),
        (status = 404, description = "No such list in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn count_members(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<ListCount>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ContactListId = path_id(&id)?;
    let l = svc::refresh(scope, now(&state), id).await?;
    Ok(ApiJson(ListCount {
        count: l.cached_count.unwrap_or_default(),
        last_count_update: l.last_count_update,
    }))
}
