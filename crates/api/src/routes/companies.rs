//! Companies: CRUD with a trash (soft delete, restore, purge), lists with filters, sort, offset or
//! cursor paging and field selection, bulk delete and tag changes. The rules live in
//! `crm_core::services::companies`; bodies are strict as for contacts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::company::{Company, CompanyId};
use crm_core::repo::to_document;
use crm_core::services::companies::{self as svc, CompanyFilter, CompanyPatch, NewCompany};
use crm_core::services::contacts::{self as records, BulkTags};
use crm_core::services::opportunities::BulkReport;
use crm_core::{Error, SortKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contacts::{
    AddressDoc, BulkDelete, BulkResult, PaginationDoc, PurgeParam, parse_path_id, write_ctx,
};
use super::opportunities::BulkReportDoc;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{DEFAULT_PAGE_LIMIT, ListParams, list_without_expand};
use crate::state::AppState;

const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "name",
    "industry",
    "status",
    "companySize",
    "annualRevenue",
    "employeeCount",
    "accountScore",
    "lastContactedAt",
];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_company, list_companies))
        .routes(routes!(get_company, patch_company, delete_company))
        .routes(routes!(restore_company))
        .routes(routes!(bulk_delete_companies))
        .routes(routes!(bulk_tag_companies))
}

/// A company as returned. Optional fields are absent when unset.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Company)]
#[serde(rename_all = "camelCase")]
pub struct CompanyDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub workspace_id: String,
    /// The creator.
    pub user_id: String,
    pub name: String,
    pub industry: Option<String>,
    pub website: Option<String>,
    pub phone: Option<String>,
    /// 1-10, 11-50, 51-200, 201-500, 501-1000, 1000+.
    pub company_size: Option<String>,
    pub annual_revenue: Option<f64>,
    pub employee_count: Option<i64>,
    pub address: Option<AddressDoc>,
    /// lead, prospect, customer, churned.
    pub status: String,
    pub tags: Vec<String>,
    pub assigned_to: Option<String>,
    pub parent_company_id: Option<String>,
    pub subsidiary_ids: Vec<String>,
    /// tier1, tier2, tier3.
    pub account_tier: Option<String>,
    pub account_score: Option<f64>,
    pub is_target_account: bool,
    /// Values keyed by the workspace's custom-field keys.
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Set while the company is in the trash.
    pub deleted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The writable fields of a company. On create `name` is required; on PATCH every field is
/// optional, `null` (or blank text) removes a field, and `customFields` is merged key by key.
/// Any other key answers 422 naming it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CompanyInput)]
#[serde(rename_all = "camelCase")]
pub struct CompanyInputDoc {
    /// 1 to 200 characters (required on create); names need not be unique.
    pub name: Option<String>,
    /// Up to 100 characters.
    pub industry: Option<String>,
    /// A web address: `http(s)://...` or a bare domain.
    pub website: Option<String>,
    pub phone: Option<String>,
    /// 1-10, 11-50, 51-200, 201-500, 501-1000, 1000+.
    pub company_size: Option<String>,
    /// 0 or more.
    pub annual_revenue: Option<f64>,
    /// A whole number, 0 or more.
    pub employee_count: Option<i64>,
    pub address: Option<AddressDoc>,
    /// lead (default), prospect, customer, churned.
    pub status: Option<String>,
    pub tags: Option<Vec<String>>,
    /// An active member of the workspace (422 otherwise).
    pub assigned_to: Option<String>,
    /// Another company of the workspace, not in the trash (422 otherwise).
    pub parent_company_id: Option<String>,
    /// tier1, tier2, tier3.
    pub account_tier: Option<String>,
    /// 0 to 100.
    pub account_score: Option<f64>,
    pub is_target_account: Option<bool>,
    /// Checked against the workspace's active company custom fields; defaults applied on create.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CompanyList)]
pub struct CompanyListDoc {
    pub companies: Vec<CompanyDoc>,
    #[schema(inline)]
    pub pagination: PaginationDoc,
}

/// Filters of the company list, besides the shared list parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CompanyFilters {
    /// Comma-separated statuses (any of).
    pub status: Option<String>,
    /// A user id.
    pub assigned_to: Option<String>,
    /// Case-insensitive part of the industry.
    pub industry: Option<String>,
    /// Comma-separated sizes (any of).
    pub company_size: Option<String>,
    /// A company id: its subsidiaries.
    pub parent_company_id: Option<String>,
    /// `true` lists the trash instead of the live companies.
    pub deleted: Option<bool>,
}

fn doc(c: &Company) -> Result<Value, Error> {
    to_document(c).map(Value::Object)
}

/// Creates a company (201).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/companies",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CompanyInputDoc,
    responses(
        (status = 201, description = "The company", body = CompanyDoc),
        (status = 403, description = "The role may not create companies", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field, or unknown reference",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create_company(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Companies, Action::Create)?;
    let cmd = NewCompany::parse(&body)?;
    let c = svc::create(&write_ctx(&member, scope, &state), &cmd).await?;
    Ok((StatusCode::CREATED, ApiJson(doc(&c)?)).into_response())
}

/// Companies, newest first by default, filtered by status, assignee, industry (part of it, any
/// case), size, parent, tags (any of) and search (every word in name, industry or website).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/companies",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        CompanyFilters),
    responses(
        (status = 200, description = "A page of companies", body = CompanyListDoc),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, sort or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_companies(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<CompanyFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Companies, Action::View)?;
    let filter = CompanyFilter {
        status: f.status,
        assigned_to: f.assigned_to,
        industry: f.industry,
        company_size: f.company_size,
        parent_company_id: f.parent_company_id,
        deleted: f.deleted.unwrap_or(false),
    }
    .to_filter()?
    .and(p.base_filter());
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let repo = scope.repo::<Company>();
    let body =
        list_without_expand(repo, &p, &filter, &sort, DEFAULT_PAGE_LIMIT, "companies").await?;
    Ok(ApiJson(body).into_response())
}

/// One company (not in the trash).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/companies/{id}",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The company id")),
    responses(
        (status = 200, description = "The company", body = CompanyDoc),
        (status = 404, description = "No such company in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_company(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Companies, Action::View)?;
    let id: CompanyId = parse_path_id(&id)?;
    let c = records::get_live::<Company>(scope, id.into()).await?;
    Ok(ApiJson(doc(&c)?))
}

/// Changes a company: given fields are set, `null` removes one, `customFields` is merged.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/companies/{id}",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The company id")),
    request_body = CompanyInputDoc,
    responses(
        (status = 200, description = "The updated company", body = CompanyDoc),
        (status = 403, description = "The role may not edit companies", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such company in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field, or unknown reference",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn patch_company(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Companies, Action::Edit)?;
    let id: CompanyId = parse_path_id(&id)?;
    let cmd = CompanyPatch::parse(&body)?;
    let c = svc::patch(&write_ctx(&member, scope, &state), id, &cmd).await?;
    Ok(ApiJson(doc(&c)?))
}

/// Moves a company to the trash (restorable), or with `purge=true` deletes it for good and
/// clears contacts' `companyId` and subsidiaries' `parentCompanyId` pointing at it. Owner and
/// admins only.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/companies/{id}",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The company id"), PurgeParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete companies", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such company in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_company(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PurgeParam>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Companies, Action::Delete)?;
    let id: CompanyId = parse_path_id(&id)?;
    if q.purge.unwrap_or(false) {
        // 404 before touching any reference when the id is not a company here.
        scope.repo::<Company>().get(id).await?;
        // Attachments (records, then bytes) go first: the parent outlives an interruption.
        crm_core::services::attachments::purge_parent(
            scope,
            state.blobs.as_ref(),
            "companyId",
            &id.to_string(),
        )
        .await?;
        svc::purge(scope, id).await?;
    } else {
        records::soft_delete::<Company>(&write_ctx(&member, scope, &state), id.into()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a company out of the trash (a live one is returned unchanged). Owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/companies/{id}/restore",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The company id")),
    responses(
        (status = 200, description = "The restored company", body = CompanyDoc),
        (status = 403, description = "The role may not delete or restore companies",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such company in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn restore_company(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Companies, Action::Delete)?;
    let id: CompanyId = parse_path_id(&id)?;
    let c = records::restore::<Company>(scope, id.into()).await?;
    Ok(ApiJson(doc(&c)?))
}

/// Moves up to 500 companies to the trash. Owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/companies/bulk-delete",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkDelete,
    responses(
        (status = 200, description = "How many companies moved to the trash", body = BulkResult),
        (status = 403, description = "The role may not delete companies", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, more than 500, or a malformed one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_delete_companies(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<BulkDelete>,
) -> ApiResult<ApiJson<BulkResult>> {
    let scope = member.can(Resource::Companies, Action::Delete)?;
    let ids = records::parse_ids(&body.ids, "ids")?;
    let matched =
        records::bulk_soft_delete::<Company>(&write_ctx(&member, scope, &state), &ids).await?;
    Ok(ApiJson(BulkResult { matched }))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = CompaniesBulkTags)]
#[serde(deny_unknown_fields)]
pub struct BulkTagsBody {
    /// 1 to 500 company ids.
    pub ids: Vec<String>,
    /// Tags to add (each once).
    #[serde(default)]
    pub add: Vec<String>,
    /// Tags to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Adds and removes tags on many companies; one write per company whose tags change.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/companies/bulk/tags",
    tag = "companies",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkTagsBody,
    responses(
        (status = 200, description = "What happened to each id", body = BulkReportDoc),
        (status = 403, description = "The role may not edit companies", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad ids or tags", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_tag_companies(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<BulkTagsBody>,
) -> ApiResult<ApiJson<BulkReport>> {
    let scope = member.can(Resource::Companies, Action::Edit)?;
    let cmd = BulkTags::parse(&body.ids, &body.add, &body.remove)?;
    Ok(ApiJson(
        svc::bulk_tags(&write_ctx(&member, scope, &state), &cmd).await?,
    ))
}
