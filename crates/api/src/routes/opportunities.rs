//! Opportunities (deals): CRUD, list filters, `expand=contact,company`, and stage moves. Rules
//! live in `crm_core::services::opportunities`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::company::CompanyId;
use crm_core::entities::contact::ContactId;
use crm_core::entities::opportunity::{
    DealPriority, Opportunity, OpportunityId, OpportunityStatus,
};
use crm_core::entities::pipeline::{PipelineId, StageId};
use crm_core::repo::{WorkspaceScope, to_document};
use crm_core::services::opportunities::{
    self as svc, BulkMove, BulkReport, BulkUpdate, CreateOpportunity, ListFilter, MoveOpportunity,
    PatchOpportunity,
};
use crm_core::{Document, Error, SortKey, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListBody, ListParams, list_body};
use crate::routes::contacts::BulkDelete;
use crate::state::AppState;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_opportunity, list_opportunities))
        .routes(routes!(
            get_opportunity,
            patch_opportunity,
            delete_opportunity
        ))
        .routes(routes!(move_opportunity))
        .routes(routes!(restore_opportunity))
        .routes(routes!(bulk_delete_opportunities))
        .routes(routes!(bulk_update_opportunities))
        .routes(routes!(bulk_move_opportunities))
}

/// Opportunities list 50 per page by default, as in the original.
const LIST_LIMIT: u64 = 50;
const EXPANDABLE: &[&str] = &["contact", "company"];
const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "title",
    "value",
    "probability",
    "expectedCloseDate",
    "actualCloseDate",
    "lastActivityAt",
    "status",
    "priority",
];

/// A visit of a stage in `stageHistory`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StageVisit)]
#[serde(rename_all = "camelCase")]
pub struct StageVisitDoc {
    pub stage_id: String,
    pub stage_name: String,
    pub entered_at: String,
    #[schema(nullable = false)]
    pub exited_at: Option<String>,
    /// Milliseconds spent in the stage.
    #[schema(nullable = false)]
    pub duration: Option<f64>,
}

/// A deal. Optional fields are absent when unset.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Opportunity)]
#[serde(rename_all = "camelCase")]
pub struct OpportunityDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub workspace_id: String,
    /// Its creator.
    pub user_id: String,
    pub pipeline_id: String,
    pub stage_id: String,
    pub title: String,
    pub value: f64,
    pub currency: String,
    #[schema(nullable = false)]
    pub probability: Option<f64>,
    #[schema(nullable = false)]
    pub expected_close_date: Option<String>,
    /// Set when the deal is won or lost.
    #[schema(nullable = false)]
    pub actual_close_date: Option<String>,
    #[schema(nullable = false)]
    pub contact_id: Option<String>,
    /// The contact's name, kept in step with it.
    #[schema(nullable = false)]
    pub contact_name: Option<String>,
    #[schema(nullable = false)]
    pub company_id: Option<String>,
    #[schema(nullable = false)]
    pub company_name: Option<String>,
    pub associated_contacts: Vec<String>,
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[schema(nullable = false)]
    pub source: Option<String>,
    /// `open`, `won`, `lost` or `abandoned`.
    pub status: String,
    #[schema(nullable = false)]
    pub lost_reason: Option<String>,
    #[schema(nullable = false)]
    pub assigned_to: Option<String>,
    pub tags: Vec<String>,
    /// `low`, `medium` or `high`.
    #[schema(nullable = false)]
    pub priority: Option<String>,
    #[schema(nullable = false)]
    pub last_activity_at: Option<String>,
    #[schema(nullable = false)]
    pub next_action: Option<String>,
    #[schema(nullable = false)]
    pub next_action_due_date: Option<String>,
    /// `hot`, `warm` or `cold`.
    #[schema(nullable = false)]
    pub deal_temperature: Option<String>,
    pub activity_count: i64,
    pub email_count: i64,
    pub call_count: i64,
    pub meeting_count: i64,
    pub stage_history: Vec<StageVisitDoc>,
    #[schema(value_type = Object)]
    pub custom_fields: Value,
    /// With `expand=contact`: the contact record, or null.
    #[schema(value_type = Option<Object>)]
    pub contact: Option<Value>,
    /// With `expand=company`: the company record, or null.
    #[schema(value_type = Option<Object>)]
    pub company: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityList {
    pub opportunities: Vec<OpportunityDoc>,
    /// `{page, limit, total, pages}` or `{limit, nextCursor}`.
    pub pagination: Value,
}

/// The fields of a new deal.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CreateOpportunity)]
#[serde(rename_all = "camelCase")]
pub struct CreateOpportunityDoc {
    /// 1 to 200 characters.
    pub title: String,
    /// 0 or more.
    pub value: f64,
    /// 3 letters, upper-cased; default `USD`.
    pub currency: Option<String>,
    /// 0 to 100.
    pub probability: Option<f64>,
    /// An active pipeline of the workspace; default: the workspace's default pipeline.
    pub pipeline_id: Option<String>,
    /// A stage of that pipeline; default: its first stage.
    pub stage_id: Option<String>,
    pub expected_close_date: Option<String>,
    /// A contact of the workspace.
    pub contact_id: Option<String>,
    /// A company of the workspace.
    pub company_id: Option<String>,
    pub associated_contacts: Option<Vec<String>>,
    /// At most 2000 characters.
    pub description: Option<String>,
    /// At most 100 characters.
    pub source: Option<String>,
    /// `open`, `won`, `lost`, `abandoned`; a won/lost stage overrides it.
    pub status: Option<String>,
    pub lost_reason: Option<String>,
    /// An active member of the workspace; default: the caller.
    pub assigned_to: Option<String>,
    pub tags: Option<Vec<String>>,
    pub priority: Option<String>,
    pub next_action: Option<String>,
    pub next_action_due_date: Option<String>,
    pub deal_temperature: Option<String>,
    /// Checked against the workspace's active `deal` custom fields.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Value>,
}

/// Changes to a deal: absent keys stay, `null` clears optional ones. The stage changes only
/// through `/move`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PatchOpportunity)]
#[serde(rename_all = "camelCase")]
pub struct PatchOpportunityDoc {
    pub title: Option<String>,
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub probability: Option<f64>,
    pub expected_close_date: Option<String>,
    pub contact_id: Option<String>,
    pub company_id: Option<String>,
    pub associated_contacts: Option<Vec<String>>,
    pub description: Option<String>,
    pub source: Option<String>,
    /// Won/lost stamps `actualCloseDate`; back to open clears it.
    pub status: Option<String>,
    pub lost_reason: Option<String>,
    pub assigned_to: Option<String>,
    pub tags: Option<Vec<String>>,
    pub priority: Option<String>,
    pub next_action: Option<String>,
    pub next_action_due_date: Option<String>,
    pub deal_temperature: Option<String>,
    /// Merged key by key; `null` removes a key.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = MoveOpportunity)]
#[serde(rename_all = "camelCase")]
pub struct MoveOpportunityDoc {
    /// The target stage.
    pub stage_id: String,
    /// Another active pipeline of the workspace holding the stage; default: the current one.
    pub pipeline_id: Option<String>,
}

/// Filters of the opportunity list (all must hold).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct OpportunityFilters {
    #[param(value_type = Option<String>)]
    pub pipeline_id: Option<PipelineId>,
    #[param(value_type = Option<String>)]
    pub stage_id: Option<StageId>,
    /// `open`, `won`, `lost` or `abandoned`.
    #[param(value_type = Option<String>)]
    pub status: Option<OpportunityStatus>,
    #[param(value_type = Option<String>)]
    pub assigned_to: Option<UserId>,
    #[param(value_type = Option<String>)]
    pub contact_id: Option<ContactId>,
    #[param(value_type = Option<String>)]
    pub company_id: Option<CompanyId>,
    /// `low`, `medium` or `high`.
    #[param(value_type = Option<String>)]
    pub priority: Option<DealPriority>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpandParam {
    /// `contact`, `company`, or both comma-separated.
    pub expand: Option<String>,
}

fn parse_id(id: &str) -> Result<OpportunityId, Error> {
    id.parse().map_err(|_| Error::NotFound)
}

fn doc(o: &Opportunity) -> ApiResult<Document> {
    Ok(to_document(o)?)
}

async fn expanded(
    scope: &WorkspaceScope,
    docs: &mut [Document],
    expand: &[String],
) -> ApiResult<()> {
    let contact = expand.iter().any(|e| e == "contact");
    let company = expand.iter().any(|e| e == "company");
    if contact || company {
        svc::expand(scope, docs, contact, company).await?;
    }
    Ok(())
}

/// Creates a deal in a stage, with its first stage-history visit and a `StageChangeEvent`.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/opportunities",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateOpportunityDoc,
    responses(
        (status = 201, description = "Created", body = OpportunityDoc),
        (status = 403, description = "The role may not create deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or a reference not in the workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create_opportunity(
    State(state): State<AppState>,
    member: Member,
    ApiJson(cmd): ApiJson<CreateOpportunity>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::Create)?;
    let now = state.stores.clock().now();
    let o = svc::create(scope, member.user.id, cmd, now).await?;
    Ok((StatusCode::CREATED, ApiJson(doc(&o)?)).into_response())
}

/// Deals, newest first by default; filters, `search` (title, description), `tags` (any of),
/// `fields`, `expand=contact,company` (one query per kind).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/opportunities",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        OpportunityFilters),
    responses(
        (status = 200, description = "A page of deals", body = OpportunityList),
        (status = 400, description = "Malformed filter", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging, sort or expand", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_opportunities(
    member: Member,
    ApiQuery(params): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<OpportunityFilters>,
) -> ApiResult<ApiJson<ListBody>> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let sort = params.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let req = params.page_request(LIST_LIMIT)?;
    let mut fields = params.fields()?;
    let expand = params.expand(EXPANDABLE)?;
    let filter = ListFilter {
        pipeline_id: f.pipeline_id,
        stage_id: f.stage_id,
        status: f.status,
        assigned_to: f.assigned_to,
        contact_id: f.contact_id,
        company_id: f.company_id,
        priority: f.priority,
    }
    .to_filter()?
    .and(params.base_filter());
    let mut page = scope
        .repo::<Opportunity>()
        .page(&filter, &sort, &req)
        .await?
        .try_map(|o| to_document(&o))?;
    expanded(scope, &mut page.items, &expand).await?;
    // Expanded records stay visible under a field selection.
    if let Some(fs) = fields.as_mut() {
        for e in &expand {
            fs.push(
                crm_core::FieldPath::parse(e).map_err(|_| Error::invalid("expand", "bad field"))?,
            );
        }
    }
    Ok(ApiJson(list_body("opportunities", page, fields.as_deref())))
}

/// One deal; `expand=contact,company` resolves its references.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("opportunityId" = String, Path, description = "The deal id"), ExpandParam),
    responses(
        (status = 200, description = "The deal", body = OpportunityDoc),
        (status = 404, description = "No such workspace or deal", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad expand", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_opportunity(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ExpandParam>,
) -> ApiResult<ApiJson<Document>> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let expand = ListParams {
        expand: q.expand,
        ..ListParams::default()
    }
    .expand(EXPANDABLE)?;
    let o = svc::get(scope, parse_id(&id)?).await?;
    let mut docs = [doc(&o)?];
    expanded(scope, &mut docs, &expand).await?;
    let [d] = docs;
    Ok(ApiJson(d))
}

/// Changes a deal's fields; contact and company names follow the new references.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("opportunityId" = String, Path, description = "The deal id")),
    request_body = PatchOpportunityDoc,
    responses(
        (status = 200, description = "The updated deal", body = OpportunityDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or deal", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or a reference not in the workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn patch_opportunity(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(cmd): ApiJson<PatchOpportunity>,
) -> ApiResult<ApiJson<Document>> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let o = svc::patch(
        scope,
        member.user.id,
        parse_id(&id)?,
        cmd,
        state.stores.clock().now(),
    )
    .await?;
    Ok(ApiJson(doc(&o)?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurgeParam {
    /// `true` deletes for good (also from the trash), with the deal's timeline.
    pub purge: Option<bool>,
}

/// Moves a deal to the trash (restorable), or with `purge=true` deletes it for good. Its
/// stage-change log stays. Owner and admins only.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("opportunityId" = String, Path, description = "The deal id"), PurgeParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or deal", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_opportunity(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PurgeParam>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Deals, Action::Delete)?;
    let id = parse_id(&id)?;
    if q.purge.unwrap_or(false) {
        // Attachments (records, then bytes) go first: the parent outlives an interruption.
        crm_core::services::attachments::purge_parent(
            scope,
            state.blobs.as_ref(),
            "opportunityId",
            &id.to_string(),
        )
        .await?;
        svc::purge(scope, id).await?;
    } else {
        svc::delete(scope, id, state.stores.clock().now()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a deal out of the trash (a live one is returned unchanged). Owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}/restore",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("opportunityId" = String, Path, description = "The deal id")),
    responses(
        (status = 200, description = "The restored deal", body = OpportunityDoc),
        (status = 403, description = "The role may not delete or restore deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or deal", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn restore_opportunity(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Document>> {
    let scope = member.can(Resource::Deals, Action::Delete)?;
    let o = svc::restore(scope, parse_id(&id)?).await?;
    Ok(ApiJson(doc(&o)?))
}

/// Moves a deal to a stage: closes the open `stageHistory` visit, opens a new one, writes a
/// `StageChangeEvent`, and stamps the status (a won/lost stage sets it and `actualCloseDate`;
/// leaving one for an open stage reopens the deal). The current stage is a no-op.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}/move",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("opportunityId" = String, Path, description = "The deal id")),
    request_body = MoveOpportunityDoc,
    responses(
        (status = 200, description = "The moved deal", body = OpportunityDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or deal", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Concurrent moves kept colliding", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No such stage or pipeline in the workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn move_opportunity(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(cmd): ApiJson<MoveOpportunity>,
) -> ApiResult<ApiJson<Document>> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let o = svc::move_to(
        scope,
        member.user.id,
        parse_id(&id)?,
        cmd,
        state.stores.clock().now(),
    )
    .await?;
    Ok(ApiJson(doc(&o)?))
}

/// What a bulk request did to one id.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkItem)]
pub struct BulkItemDoc {
    pub id: String,
    /// `changed`; `unchanged` (already as asked, nothing written); `notFound` (unknown, in the
    /// trash, or of another workspace: never touched); `failed` (the record's rules refused it).
    pub outcome: String,
    /// With `failed`: the problem code (`invalid`, `conflict`, `forbidden`).
    #[schema(nullable = false)]
    pub code: Option<String>,
    /// With `failed`: the field at fault.
    #[schema(nullable = false)]
    pub field: Option<String>,
    #[schema(nullable = false)]
    pub detail: Option<String>,
}

/// The per-id answer of a bulk request, in request order (repeated ids once).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkReport)]
pub struct BulkReportDoc {
    /// Ids found in this workspace.
    pub matched: u64,
    /// Records written.
    pub changed: u64,
    pub results: Vec<BulkItemDoc>,
}

/// Tags to add (each once) and to remove.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = BulkTagChange)]
pub struct TagChangeDoc {
    pub add: Option<Vec<String>>,
    pub remove: Option<Vec<String>>,
}

/// The fields to set on every deal; absent ones stay, `null` clears assignee or priority.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = OpportunitiesBulkSet)]
#[serde(rename_all = "camelCase")]
pub struct BulkSetDoc {
    /// An active member of the workspace.
    pub assigned_to: Option<String>,
    /// `open`, `won`, `lost`, `abandoned`; won/lost stamps `actualCloseDate` as a PATCH does.
    pub status: Option<String>,
    /// `low`, `medium` or `high`.
    pub priority: Option<String>,
    pub tags: Option<TagChangeDoc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = OpportunitiesBulkUpdate)]
pub struct BulkUpdateDoc {
    /// 1 to 500 deal ids.
    pub ids: Vec<String>,
    pub set: BulkSetDoc,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = OpportunitiesBulkMove)]
#[serde(rename_all = "camelCase")]
pub struct BulkMoveDoc {
    /// 1 to 500 deal ids.
    pub ids: Vec<String>,
    /// The target stage; it must belong to an active pipeline of the workspace.
    pub stage_id: String,
    /// Another active pipeline holding the stage; default: each deal's own.
    pub pipeline_id: Option<String>,
}

/// Moves many deals to the trash. Owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/bulk-delete",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkDelete,
    responses(
        (status = 200, description = "What happened to each id", body = BulkReportDoc),
        (status = 403, description = "The role may not delete deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, more than 500, or a malformed one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_delete_opportunities(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<BulkDelete>,
) -> ApiResult<ApiJson<BulkReport>> {
    let scope = member.can(Resource::Deals, Action::Delete)?;
    let now = state.stores.clock().now();
    Ok(ApiJson(svc::bulk_delete(scope, &body.ids, now).await?))
}

/// Sets assignee, status, priority and tag changes on many deals, each through the rules of a
/// single PATCH (won/lost stamping, `lastActivityAt`, notifications).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/bulk/update",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkUpdateDoc,
    responses(
        (status = 200, description = "What happened to each id", body = BulkReportDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad ids, nothing to set, or an assignee who is not a member",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_update_opportunities(
    State(state): State<AppState>,
    member: Member,
    ApiJson(cmd): ApiJson<BulkUpdate>,
) -> ApiResult<ApiJson<BulkReport>> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let now = state.stores.clock().now();
    Ok(ApiJson(
        svc::bulk_update(scope, member.user.id, cmd, now).await?,
    ))
}

/// Moves many deals to a stage, each as a single move (history, `StageChangeEvent`, timeline,
/// status stamping); deals already there are `unchanged`.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/opportunities/bulk/move",
    tag = "opportunities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkMoveDoc,
    responses(
        (status = 200, description = "What happened to each id", body = BulkReportDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad ids, or no such stage or pipeline in the workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_move_opportunities(
    State(state): State<AppState>,
    member: Member,
    ApiJson(cmd): ApiJson<BulkMove>,
) -> ApiResult<ApiJson<BulkReport>> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let now = state.stores.clock().now();
    Ok(ApiJson(
        svc::bulk_move(scope, member.user.id, cmd, now).await?,
    ))
}
