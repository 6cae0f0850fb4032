//! Contacts: CRUD with a trash (soft delete, restore, purge), lists with filters, sort, offset or
//! cursor paging, field selection and `expand=company`, bulk delete and tag changes, duplicate
//! detection and merges with their history (ADR 0011). The rules
//! live in `crm_core::services::contacts`; handlers extract, parse, call and map.
//!
//! Bodies are strict: a key that is not a writable field answers 422 naming it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::contact_merge::ContactMerge;
use crm_core::paging::PageRequest;
use crm_core::repo::WorkspaceScope;
use crm_core::repo::to_document;
use crm_core::services::contacts::{
    self as svc, BulkTags, ContactFilter, ContactPatch, NewContact, WriteCtx,
};
use crm_core::services::merge::{self, MergeCommand};
use crm_core::{Error, Filter, SortKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{DEFAULT_PAGE_LIMIT, ListParams, list_body};
use crate::state::AppState;

const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "firstName",
    "lastName",
    "email",
    "company",
    "jobTitle",
    "status",
    "lifecycleStage",
    "intentScore",
    "qualityScore",
    "lastContactedAt",
];
const EXPANDABLE: &[&str] = &["company"];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_contact, list_contacts))
        .routes(routes!(get_contact, patch_contact, delete_contact))
        .routes(routes!(restore_contact))
        .routes(routes!(bulk_delete_contacts))
        .routes(routes!(bulk_tag_contacts))
        .routes(routes!(contact_duplicates))
        .routes(routes!(merge_contacts))
        .routes(routes!(contact_merges))
}

/// The caller's write context in the member's workspace (after the permission check).
pub(crate) fn write_ctx(
    member: &Member,
    scope: &crm_core::repo::WorkspaceScope,
    state: &AppState,
) -> WriteCtx {
    WriteCtx {
        scope: scope.clone(),
        actor: member.user.id,
        owner: member.workspace.user_id,
        now: state.stores.clock().now(),
    }
}

/// A path id; a malformed one is as unknown as a missing one.
pub(crate) fn parse_path_id<T: std::str::FromStr>(raw: &str) -> Result<T, Error> {
    raw.parse().map_err(|_| Error::NotFound)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = PostalAddress)]
#[serde(rename_all = "camelCase")]
pub struct AddressDoc {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub zip_code: Option<String>,
}

/// A contact as returned. Optional fields are absent when unset.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Contact)]
#[serde(rename_all = "camelCase")]
pub struct ContactDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub workspace_id: String,
    /// The creator.
    pub user_id: String,
    /// The company id; with `expand=company`, the company itself (null when it is gone).
    #[schema(value_type = Option<Object>)]
    pub company_id: Option<Value>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Free-text company name.
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub source: Option<String>,
    /// lead, prospect, customer, inactive, disqualified, nurture.
    pub status: String,
    /// subscriber, lead, mql, sql, sal, opportunity, customer, evangelist, churned, disqualified.
    pub lifecycle_stage: String,
    pub lifecycle_stage_updated_at: Option<String>,
    pub previous_lifecycle_stage: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    pub website: Option<String>,
    pub address: Option<AddressDoc>,
    pub assigned_to: Option<String>,
    pub last_contacted_at: Option<String>,
    pub notes: Option<String>,
    /// Values keyed by the workspace's custom-field keys.
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    pub intent_score: f64,
    pub quality_score: Option<f64>,
    /// Set while the contact is in the trash.
    pub deleted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The writable fields of a contact. On create `firstName` is required; on PATCH every field is
/// optional, `null` (or blank text) removes a field, and `customFields` is merged key by key
/// (a key sent as `null` is removed). Any other key answers 422 naming it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ContactInput)]
#[serde(rename_all = "camelCase")]
pub struct ContactInputDoc {
    /// 1 to 50 characters (required on create).
    pub first_name: Option<String>,
    /// Up to 50 characters.
    pub last_name: Option<String>,
    /// Trimmed and lower-cased; unique in the workspace (409 with field `email`).
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Free-text company name, up to 100 characters.
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
    pub source: Option<String>,
    /// lead (default), prospect, customer, inactive, disqualified, nurture.
    pub status: Option<String>,
    /// lead (default), subscriber, mql, sql, sal, opportunity, customer, evangelist, churned,
    /// disqualified. A change records `previousLifecycleStage` and `lifecycleStageUpdatedAt`.
    pub lifecycle_stage: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    /// A web address: `http(s)://...` or a bare domain.
    pub website: Option<String>,
    pub address: Option<AddressDoc>,
    /// An active member of the workspace (422 otherwise).
    pub assigned_to: Option<String>,
    /// A company of the workspace, not in the trash (422 otherwise).
    pub company_id: Option<String>,
    pub notes: Option<String>,
    /// Checked against the workspace's active contact custom fields; defaults applied on create.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaginationDoc {
    /// Offset paging.
    pub page: Option<u64>,
    pub limit: u64,
    /// Offset paging: matching records.
    pub total: Option<u64>,
    /// Offset paging: number of pages.
    pub pages: Option<u64>,
    /// Cursor paging: pass as `cursor` for the next page; null at the end.
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ContactList)]
pub struct ContactListDoc {
    pub contacts: Vec<ContactDoc>,
    #[schema(inline)]
    pub pagination: PaginationDoc,
}

/// Filters of the contact list, besides the shared list parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ContactFilters {
    /// Comma-separated statuses (any of).
    pub status: Option<String>,
    /// Comma-separated lifecycle stages (any of).
    pub lifecycle_stage: Option<String>,
    /// A user id.
    pub assigned_to: Option<String>,
    /// A company id.
    pub company_id: Option<String>,
    /// `true` lists the trash instead of the live contacts.
    pub deleted: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpandParam {
    /// `company` replaces `companyId` by the company.
    pub expand: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurgeParam {
    /// `true` deletes for good instead of moving to the trash.
    pub purge: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = BulkDeleteRequest)]
#[serde(deny_unknown_fields)]
pub struct BulkDelete {
    /// 1 to 500 record ids; unknown ones, those of other workspaces and those already in the
    /// trash are skipped.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = ContactsBulkTags)]
#[serde(deny_unknown_fields)]
pub struct BulkTagsBody {
    /// 1 to 500 contact ids.
    pub ids: Vec<String>,
    /// Tags to add (each once).
    #[serde(default)]
    pub add: Vec<String>,
    /// Tags to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = RecordsMatched)]
pub struct BulkResult {
    /// Records the operation applied to.
    pub matched: u64,
}

/// One contact document, with its company when `expand=company`.
async fn respond(
    scope: &crm_core::repo::WorkspaceScope,
    c: &Contact,
    expand: &[String],
) -> ApiResult<ApiJson<Value>> {
    let mut docs = [to_document(c)?];
    if expand.iter().any(|e| e == "company") {
        svc::expand_company(scope, &mut docs).await?;
    }
    let [d] = docs;
    Ok(ApiJson(Value::Object(d)))
}

fn expansions(p: &ExpandParam) -> ApiResult<Vec<String>> {
    ListParams {
        expand: p.expand.clone(),
        ..ListParams::default()
    }
    .expand(EXPANDABLE)
}

/// Creates a contact (201). A duplicate email in the workspace answers 409 with field `email`;
/// any number of contacts may have no email.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contacts",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = ContactInputDoc,
    responses(
        (status = 201, description = "The contact", body = ContactDoc),
        (status = 403, description = "The role may not create contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The email is taken in this workspace (`field`: email)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field, or unknown reference",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create_contact(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::Create)?;
    let cmd = NewContact::parse(&body)?;
    let c = svc::create(&write_ctx(&member, scope, &state), &cmd).await?;
    Ok((StatusCode::CREATED, ApiJson(to_document(&c)?)).into_response())
}

/// Contacts, newest first by default, filtered by status, lifecycle stage, assignee, company,
/// tags (any of) and search (every word in first name, last name, email or company).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contacts",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        ContactFilters),
    responses(
        (status = 200, description = "A page of contacts", body = ContactListDoc),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter, sort, paging or expansion", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_contacts(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<ContactFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let filter = ContactFilter {
        status: f.status,
        lifecycle_stage: f.lifecycle_stage,
        assigned_to: f.assigned_to,
        company_id: f.company_id,
        deleted: f.deleted.unwrap_or(false),
    }
    .to_filter()?;
    contact_page(scope, filter, &p).await
}

/// A page of the contacts matching `filter` with the list parameters (search, tags, sort, paging,
/// fields, expand=company) every contact list takes; also serves a contact list's members.
pub(crate) async fn contact_page(
    scope: &WorkspaceScope,
    filter: Filter,
    p: &ListParams,
) -> ApiResult<Response> {
    let filter = filter.and(p.base_filter());
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let req = p.page_request(DEFAULT_PAGE_LIMIT)?;
    let fields = p.fields()?;
    let expand = p.expand(EXPANDABLE)?;
    let mut page = scope
        .repo::<Contact>()
        .page(&filter, &sort, &req)
        .await?
        .try_map(|c| to_document(&c))?;
    if expand.iter().any(|e| e == "company") {
        svc::expand_company(scope, &mut page.items).await?;
    }
    Ok(ApiJson(list_body("contacts", page, fields.as_deref())).into_response())
}

/// One contact (not in the trash).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contacts/{id}",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The contact id"), ExpandParam),
    responses(
        (status = 200, description = "The contact", body = ContactDoc),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_contact(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(e): ApiQuery<ExpandParam>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ContactId = parse_path_id(&id)?;
    let expand = expansions(&e)?;
    let c = svc::get_live::<Contact>(scope, id.into()).await?;
    respond(scope, &c, &expand).await
}

/// Changes a contact: given fields are set, `null` removes one, `customFields` is merged.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/contacts/{id}",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The contact id")),
    request_body = ContactInputDoc,
    responses(
        (status = 200, description = "The updated contact", body = ContactDoc),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The email is taken in this workspace (`field`: email)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown field, or unknown reference",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn patch_contact(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let id: ContactId = parse_path_id(&id)?;
    let cmd = ContactPatch::parse(&body)?;
    let c = svc::patch(&write_ctx(&member, scope, &state), id, &cmd).await?;
    Ok(ApiJson(Value::Object(to_document(&c)?)))
}

/// Moves a contact to the trash (restorable; its email is set aside as `trashedEmail` so a new
/// contact may take it), or with `purge=true` deletes it for good (also from the trash) with its
/// timeline and list memberships, clearing deals', tasks' and tickets' references to it. Owner
/// and admins only.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/contacts/{id}",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The contact id"), PurgeParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_contact(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PurgeParam>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let id: ContactId = parse_path_id(&id)?;
    if q.purge.unwrap_or(false) {
        // 404 before touching any reference when the id is not a contact here.
        // Attachments (records, then bytes) go first: the parent outlives an interruption.
        crm_core::services::attachments::purge_parent(
            scope,
            state.blobs.as_ref(),
            "contactId",
            &id.to_string(),
        )
        .await?;
        svc::purge(scope, id).await?;
    } else {
        svc::trash(&write_ctx(&member, scope, &state), id, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a contact out of the trash (a live one is returned unchanged), giving it back its email
/// (409 with field `email` when a live contact took it meanwhile). Owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contacts/{id}/restore",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The contact id")),
    responses(
        (status = 200, description = "The restored contact", body = ContactDoc),
        (status = 403, description = "The role may not delete or restore contacts",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "A live contact has the email now (`field`: email)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn restore_contact(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let id: ContactId = parse_path_id(&id)?;
    let c = svc::restore_contact(scope, id).await?;
    Ok(ApiJson(Value::Object(to_document(&c)?)))
}

/// Moves up to 500 contacts to the trash. Owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contacts/bulk-delete",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkDelete,
    responses(
        (status = 200, description = "How many contacts moved to the trash", body = BulkResult),
        (status = 403, description = "The role may not delete contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, more than 500, or a malformed one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_delete_contacts(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<BulkDelete>,
) -> ApiResult<ApiJson<BulkResult>> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let ids = svc::parse_ids(&body.ids, "ids")?;
    let matched = svc::bulk_trash(&write_ctx(&member, scope, &state), &ids).await?;
    Ok(ApiJson(BulkResult { matched }))
}

/// Adds tags to (set-like) and removes tags from up to 500 contacts.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/contacts/bulk/tags",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = BulkTagsBody,
    responses(
        (status = 200, description = "How many contacts matched", body = BulkResult),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, more than 500, a malformed one, or no tags",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn bulk_tag_contacts(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<BulkTagsBody>,
) -> ApiResult<ApiJson<BulkResult>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let cmd = BulkTags::parse(&body.ids, &body.add, &body.remove)?;
    let matched = svc::bulk_tags(&write_ctx(&member, scope, &state), &cmd).await?;
    Ok(ApiJson(BulkResult { matched }))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicatesParams {
    /// Most groups to return, 1 to 200 (default 50); the best scores come first.
    pub limit: Option<u64>,
}

const DUPLICATE_GROUPS_DEFAULT: u64 = 50;
const DUPLICATE_GROUPS_MAX: u64 = 200;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = DuplicateGroup)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateGroupDoc {
    /// `email` (same address, case and spaces ignored), `phone` (same digits, at least 7) or
    /// `nameAndCompany` (same first and last name within one company).
    pub reason: String,
    /// The normalised value the contacts share.
    pub key: String,
    /// How sure the match is, 0 to 100: email 95, phone 80, name and company 70.
    pub score: u8,
    /// Oldest first.
    pub contact_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = DuplicateReport)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateReportDoc {
    pub groups: Vec<DuplicateGroupDoc>,
    /// Live contacts read, newest first (at most 20,000).
    pub scanned: u64,
    /// False when the workspace has more live contacts than one search reads.
    pub complete: bool,
    /// False when more groups were found than `limit`.
    pub all_groups: bool,
}

/// Groups of live contacts that look like the same person: same normalised email, same phone
/// digits (7 or more), or same first and last name within one company. The search reads the
/// newest 20,000 live contacts (`complete` says whether that was all of them) and returns at
/// most `limit` groups, best score first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contacts/duplicates",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), DuplicatesParams),
    responses(
        (status = 200, description = "Duplicate groups", body = DuplicateReportDoc),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn contact_duplicates(
    member: Member,
    ApiQuery(q): ApiQuery<DuplicatesParams>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let limit = q.limit.unwrap_or(DUPLICATE_GROUPS_DEFAULT);
    if !(1..=DUPLICATE_GROUPS_MAX).contains(&limit) {
        return Err(
            Error::invalid("limit", format!("must be from 1 to {DUPLICATE_GROUPS_MAX}")).into(),
        );
    }
    let report = merge::find_duplicates(scope, limit as usize).await?;
    Ok(ApiJson(
        serde_json::to_value(report).map_err(Error::internal)?,
    ))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = ContactMergeRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MergeBody {
    /// The contact that stays.
    pub primary_id: String,
    /// 1 to 10 live contacts of the workspace to merge into the primary and move to the trash.
    pub duplicate_ids: Vec<String>,
    /// Field name to the id of the contact (primary or duplicate) to take it from. Fields not
    /// named keep the primary's value, or when it is empty take the first duplicate's that has
    /// one. Tags are unioned and custom fields merged key by key whatever this says.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ContactMerge)]
#[serde(rename_all = "camelCase")]
pub struct ContactMergeDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub workspace_id: String,
    pub primary_id: String,
    pub duplicate_ids: Vec<String>,
    /// Who merged.
    pub merged_by: String,
    /// The field choices sent.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// The primary before the merge.
    #[schema(value_type = Object)]
    pub primary_snapshot: Value,
    /// The duplicates before the merge, in `duplicateIds` order.
    #[schema(value_type = Vec<Object>)]
    pub duplicate_snapshots: Vec<Value>,
    /// Absent when the merge was interrupted.
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ContactMergeResult)]
pub struct MergeResultDoc {
    /// The primary after the merge.
    pub contact: ContactDoc,
    /// The merge record.
    pub merge: ContactMergeDoc,
}

/// Paging of the merge history.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PagingParams {
    /// 1-based page (offset paging).
    pub page: Option<u64>,
    /// Items per page, 1 to 500.
    pub limit: Option<u64>,
    /// Keyset cursor from a previous page's `nextCursor`; empty for the first page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ContactMergeList)]
pub struct MergeListDoc {
    pub merges: Vec<ContactMergeDoc>,
    #[schema(inline)]
    pub pagination: PaginationDoc,
}

/// Merges up to 10 duplicates into a primary contact: the primary keeps its values, empty ones
/// are filled from the duplicates (or taken as `fields` says), tags and custom fields are unioned,
/// activities, tasks, tickets, deals (with their `contactName`), attachments and list memberships
/// of the duplicates move to the primary, and the duplicates go to the trash with `mergedInto`.
/// A merge record keeps who, when and every contact's pre-merge snapshot. It trashes records, so
/// owner and admins only.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/contacts/merge",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = MergeBody,
    responses(
        (status = 200, description = "The merged contact and the merge record",
            body = MergeResultDoc),
        (status = 403, description = "The role may not delete contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "A live contact took the email meanwhile (`field`: email)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed id, one that is not a live contact of this \
            workspace (`field` names it), a field that cannot be chosen, or too many tags",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn merge_contacts(
    State(state): State<AppState>,
    member: Member,
    ApiJson(body): ApiJson<MergeBody>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let cmd = MergeCommand::parse(&body.primary_id, &body.duplicate_ids, &body.fields)?;
    let out = merge::merge(&write_ctx(&member, scope, &state), &cmd).await?;
    let mut m = Map::new();
    m.insert("contact".into(), Value::Object(to_document(&out.contact)?));
    m.insert("merge".into(), Value::Object(to_document(&out.merge)?));
    Ok(ApiJson(Value::Object(m)))
}

/// The merges a contact took part in, as primary or as duplicate (also while it is in the
/// trash), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/contacts/{id}/merges",
    tag = "contacts",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The contact id"), PagingParams),
    responses(
        (status = 200, description = "A page of merge records", body = MergeListDoc),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn contact_merges(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<PagingParams>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ContactId = parse_path_id(&id)?;
    scope.repo::<Contact>().get(id).await?;
    let req: PageRequest = ListParams {
        page: p.page,
        limit: p.limit,
        cursor: p.cursor,
        ..ListParams::default()
    }
    .page_request(DEFAULT_PAGE_LIMIT)?;
    let page = scope
        .repo::<ContactMerge>()
        .page(&merge::merges_of(id), &[SortKey::desc("createdAt")], &req)
        .await?
        .try_map(|m| to_document(&m))?;
    Ok(ApiJson(list_body("merges", page, None)).into_response())
}
