//! Referrals of a workspace: a contact refers someone by email under a referral code unique in
//! the workspace. Create, list, get, patch (status, conversion), delete; referrals count as
//! contact data for the role table. The rules live in `crm_core::services::referrals`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::SortKey;
use crm_core::accounts::{Action, Resource};
use crm_core::entities::contact::ContactId;
use crm_core::entities::referral::{Referral, ReferralId, ReferralStatus, UtmParams};
use crm_core::services::referrals::{self as svc, NewReferral, ReferralPatch};
use crm_core::services::tasks::nullable;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "status",
    "convertedAt",
    "referralCode",
    "referredEmail",
];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_referral, list_referrals))
        .routes(routes!(get_referral, patch_referral, delete_referral))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateReferral {
    /// The referring contact: a live contact of this workspace with an email.
    #[schema(value_type = String)]
    pub referrer_id: ContactId,
    /// Who was referred.
    pub referred_email: String,
    pub referred_name: Option<String>,
    /// 3 to 32 letters, digits, `-` or `_`, unique in the workspace (409 with field
    /// `referralCode`); 8 characters are generated when absent.
    pub referral_code: Option<String>,
    /// Defaults to `/r/<code>`.
    pub referral_link: Option<String>,
    pub source: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub utm_params: Option<UtmParams>,
    pub notes: Option<String>,
}

/// Absent fields stay; `null` clears the optional ones.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchReferral {
    /// pending, signed_up, qualified, converted, expired, invalid. Reaching signed_up,
    /// qualified or converted the first time stamps `signedUpAt`, `qualifiedAt`, `convertedAt`.
    #[schema(value_type = Option<String>)]
    pub status: Option<ReferralStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub referred_name: Option<Option<String>>,
    /// The contact the referral became: a live contact of this workspace.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub referred_contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub conversion_value: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ReferralFilters {
    /// pending, signed_up, qualified, converted, expired, invalid.
    pub status: Option<String>,
    /// A contact id.
    pub referrer_id: Option<String>,
    pub referral_code: Option<String>,
}

/// Creates a referral (201).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/referrals",
    tag = "referrals",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateReferral,
    responses(
        (status = 201, description = "The referral", body = Object),
        (status = 403, description = "The role may not create contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The code is taken in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or unknown contact", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_referral(
    member: Member,
    ApiJson(req): ApiJson<CreateReferral>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::Create)?;
    let r = svc::create(
        scope,
        NewReferral {
            referrer_id: req.referrer_id,
            referred_email: req.referred_email,
            referred_name: req.referred_name,
            referral_code: req.referral_code,
            referral_link: req.referral_link,
            source: req.source,
            utm_params: req.utm_params,
            notes: req.notes,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(r)).into_response())
}

/// Referrals, newest first, filtered by status, referrer, code and search (referred email or
/// name).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/referrals",
    tag = "referrals",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        ReferralFilters),
    responses(
        (status = 200, description = "`{referrals, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_referrals(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<ReferralFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let filter = svc::list_filter(
        f.status.as_deref(),
        f.referrer_id.as_deref(),
        f.referral_code.as_deref(),
        p.search.as_deref(),
    )?;
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<Referral>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "referrals",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/referrals/{id}",
    tag = "referrals",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The referral id")),
    responses(
        (status = 200, description = "The referral", body = Object),
        (status = 404, description = "No such referral in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_referral(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Referral>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ReferralId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<Referral>().get(id).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/referrals/{id}",
    tag = "referrals",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The referral id")),
    request_body = PatchReferral,
    responses(
        (status = 200, description = "The updated referral", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such referral in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or unknown contact", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_referral(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchReferral>,
) -> ApiResult<ApiJson<Referral>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let id: ReferralId = path_id(&id)?;
    let p = ReferralPatch {
        status: req.status,
        referred_name: req.referred_name,
        referred_contact_id: req.referred_contact_id,
        conversion_value: req.conversion_value,
        notes: req.notes,
    };
    Ok(ApiJson(
        svc::update(scope, state.stores.clock().now(), id, p).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/referrals/{id}",
    tag = "referrals",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The referral id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such referral in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_referral(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let id: ReferralId = path_id(&id)?;
    scope.repo::<Referral>().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
