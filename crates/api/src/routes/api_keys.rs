//! API keys of a workspace: create (the key text is answered once), list, get, revoke. Owners and
//! admins manage them (`Integrations` in the role table) with their own session: a key never
//! manages keys. The rules live in `crm_core::accounts::api_keys`; ADR 0010.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::api_keys::{self, NewApiKey};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::api_key::{ApiKey, ApiKeyId, KeyRole};
use crm_core::repo::WorkspaceScope;
use crm_core::{Error, SortKey, Timestamp, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_body};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const SORTABLE: &[&str] = &["createdAt", "name", "lastUsedAt"];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, revoke_api_key))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for; up to 100 characters.
    pub name: String,
    /// admin, member or viewer; at most the creator's own role.
    #[schema(value_type = String)]
    pub role: KeyRole,
    /// When the key stops working; none: until revoked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// A key as lists show it: never its hash, never its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    #[serde(rename = "_id")]
    #[schema(value_type = String)]
    pub id: ApiKeyId,
    #[schema(value_type = String)]
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// admin, member or viewer.
    #[schema(value_type = String)]
    pub role: KeyRole,
    /// The user the key acts for.
    #[schema(value_type = String)]
    pub created_by: UserId,
    /// Precise to a minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub revoked_by: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            workspace_id: k.workspace_id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            created_by: k.created_by,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            revoked_by: k.revoked_by,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

/// A new key with its text, which is not shown again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub record: ApiKeyView,
    /// `clk_...`: send it as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
    pub key: String,
}

/// The workspace scope for managing keys, for a signed-in user allowed `action` on integrations.
fn manage(member: &Member, action: Action) -> Result<&WorkspaceScope, ApiError> {
    if member.user.api_key.is_some() {
        return Err(Error::Forbidden("API keys cannot manage API keys".into()).into());
    }
    member.can(Resource::Integrations, action)
}

/// Creates a key acting for the caller, with a role no higher than the caller's.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The key, with its text shown this once", body = CreatedApiKey),
        (status = 403, description = "Not an owner or admin, a role above the caller's, or \
            called with an API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, role or expiry", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> ApiResult<Response> {
    let scope = manage(&member, Action::Create)?;
    let new = NewApiKey {
        name: req.name,
        role: req.role,
        expires_at: req.expires_at,
    };
    let now = state.stores.clock().now();
    let issued = api_keys::create(scope, member.user.id, member.role, new, now).await?;
    let body = CreatedApiKey {
        record: issued.record.into(),
        key: issued.key,
    };
    Ok((StatusCode::CREATED, ApiJson(body)).into_response())
}

/// The workspace's keys, revoked ones included, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams),
    responses(
        (status = 200, description = "`{apiKeys, pagination}`", body = Object),
        (status = 403, description = "Not an owner or admin, or called with an API key",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_api_keys(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let scope = manage(&member, Action::View)?;
    let req = p.page_request(DEFAULT_LIMIT)?;
    let fields = p.fields()?;
    p.expand(&[])?;
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let page = scope
        .repo::<ApiKey>()
        .page(&p.base_filter(), &sort, &req)
        .await?
        .try_map(|k| crm_core::repo::to_document(&ApiKeyView::from(k)))?;
    Ok(ApiJson(list_body("apiKeys", page, fields.as_deref())).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The key id")),
    responses(
        (status = 200, description = "The key, without its text", body = ApiKeyView),
        (status = 403, description = "Not an owner or admin, or called with an API key",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_api_key(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<ApiKeyView>> {
    let scope = manage(&member, Action::View)?;
    let id: ApiKeyId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<ApiKey>().get(id).await?.into()))
}

/// Revokes a key: it stops working at once and stays listed with `revokedAt`. Revoking a revoked
/// key is a no-op.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an owner or admin, or called with an API key",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = manage(&member, Action::Delete)?;
    let id: ApiKeyId = path_id(&id)?;
    api_keys::revoke(scope, id, member.user.id, state.stores.clock().now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
