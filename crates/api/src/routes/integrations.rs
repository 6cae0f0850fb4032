//! Integrations under `Resource::Integrations` (owner and admins only, ADR 0023): encrypted
//! credentials, webhooks with their delivery log, test and replay, email ingestion by
//! Message-ID, and the plain records served by `crate::crud`.

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crm_core::accounts::{Action, Resource};
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::opportunity::Opportunity;
use crm_core::repo::{Actor, WorkspaceScope};
use crm_core::{Error, Filter, ObjectId, SortKey, Timestamp, Update};
use integrations::entities::{
    ApolloUsage, CalendarEvent, CalendarIntegration, CredentialStatus, CredentialType,
    CredentialView, EmailAccount, EmailIntegration, EmailMessage, EmailMessageId, FieldMapping,
    IntegrationCredential, IntegrationCredentialId, LinkedInActivity, ProfileInfo, Recording,
    SalesforceIntegration, SyncLog,
};
use integrations::webhooks::{
    self, EVENT_TYPES, WebhookDelivery, WebhookDeliveryId, WebhookSubscription,
    WebhookSubscriptionId,
};
use integrations::{CredentialPatch, NewCredential};

use super::tickets::path_id;
use crate::auth::Member;
use crate::crud::{Crud, crud_routes};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{DEFAULT_PAGE_LIMIT, ListParams, list_body, list_without_expand};
use crate::state::AppState;

const TAG: &str = "integrations";
const R: Resource = Resource::Integrations;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let r = r
        .routes(routes!(create_credential, list_credentials))
        .routes(routes!(get_credential, patch_credential, delete_credential))
        .routes(routes!(webhook_events))
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, patch_webhook, delete_webhook))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay_delivery))
        .routes(routes!(ingest_email));
    let r = crud_routes::<EmailAccount>(r);
    let r = crud_routes::<EmailIntegration>(r);
    let r = crud_routes::<EmailMessage>(r);
    let r = crud_routes::<CalendarIntegration>(r);
    let r = crud_routes::<CalendarEvent>(r);
    let r = crud_routes::<ApolloUsage>(r);
    let r = crud_routes::<SalesforceIntegration>(r);
    let r = crud_routes::<FieldMapping>(r);
    let r = crud_routes::<SyncLog>(r);
    let r = crud_routes::<LinkedInActivity>(r);
    crud_routes::<Recording>(r)
}

// ---- Credentials -----------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCredential {
    /// slack, google_sheets, notion, gmail, calendar, linkedin; one per type and workspace.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: CredentialType,
    /// 1 to 200 characters.
    pub name: String,
    /// The secrets (tokens, keys): encrypted at rest, never returned.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub profile_info: Option<ProfileInfo>,
}

/// Absent fields stay; `data` replaces every secret.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchCredential {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
    /// Connected, Expired, Error, Revoked.
    #[schema(value_type = Option<String>)]
    pub status: Option<CredentialStatus>,
    #[serde(default, deserialize_with = "crm_core::services::tasks::nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Timestamp>>,
    pub scopes: Option<Vec<String>>,
}

/// Stores a credential encrypted (AES-256-GCM under the workspace's key); answers without it.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/integration-credentials",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateCredential,
    responses(
        (status = 201, description = "The credential, without its secrets", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "A credential of this type exists", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_credential(
    State(state): State<AppState>,
    member: Member,
    ApiJson(b): ApiJson<CreateCredential>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::Create)?;
    let v = integrations::create_credential(
        scope,
        &state.config.encryption_key,
        NewCredential {
            kind: b.kind,
            name: b.name,
            data: b.data,
            expires_at: b.expires_at,
            scopes: b.scopes,
            profile_info: b.profile_info,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(v)).into_response())
}

#[derive(Debug, Serialize)]
struct CredentialList {
    credentials: Vec<CredentialView>,
}

/// The workspace's credentials (at most one per type), without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/integration-credentials",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{credentials}`", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_credentials(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::View)?;
    let all = scope
        .repo::<IntegrationCredential>()
        .find(
            &Filter::all(),
            &crm_core::FindOptions {
                sort: vec![SortKey::asc("type")],
                skip: 0,
                limit: Some(100),
            },
        )
        .await?;
    let credentials = all
        .into_iter()
        .map(|c| integrations::view(&state.config.encryption_key, c))
        .collect::<crm_core::Result<Vec<_>>>()?;
    Ok(ApiJson(CredentialList { credentials }).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/integration-credentials/{id}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The credential id")),
    responses(
        (status = 200, description = "The credential, without its secrets", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_credential(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<CredentialView>> {
    let scope = member.can(R, Action::View)?;
    let id: IntegrationCredentialId = path_id(&id)?;
    let c = scope.repo::<IntegrationCredential>().get(id).await?;
    Ok(ApiJson(integrations::view(
        &state.config.encryption_key,
        c,
    )?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/integration-credentials/{id}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The credential id")),
    request_body = PatchCredential,
    responses(
        (status = 200, description = "The credential, without its secrets", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_credential(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<PatchCredential>,
) -> ApiResult<ApiJson<CredentialView>> {
    let scope = member.can(R, Action::Edit)?;
    let id: IntegrationCredentialId = path_id(&id)?;
    let v = integrations::update_credential(
        scope,
        &state.config.encryption_key,
        id,
        CredentialPatch {
            name: b.name,
            data: b.data,
            status: b.status,
            expires_at: b.expires_at,
            scopes: b.scopes,
        },
    )
    .await?;
    Ok(ApiJson(v))
}

#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/integration-credentials/{id}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The credential id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_credential(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(R, Action::Delete)?;
    let id: IntegrationCredentialId = path_id(&id)?;
    scope.repo::<IntegrationCredential>().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- Webhooks --------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventNames {
    /// Every event type a subscription may name.
    pub events: Vec<&'static str>,
}

/// The event names webhooks deliver.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/events",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "The event names", body = EventNames),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn webhook_events(member: Member) -> ApiResult<ApiJson<EventNames>> {
    member.can(R, Action::View)?;
    Ok(ApiJson(EventNames {
        events: EVENT_TYPES.to_vec(),
    }))
}

/// A subscription as answered: everything but the secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookView {
    #[serde(flatten)]
    sub: Map<String, Value>,
    /// Only in the answer to the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn webhook_view(s: &WebhookSubscription, show_secret: bool) -> crm_core::Result<WebhookView> {
    let mut sub = crm_core::repo::to_document(s)?;
    let secret = sub
        .remove("secret")
        .and_then(|v| v.as_str().map(str::to_owned));
    Ok(WebhookView {
        sub,
        secret: secret.filter(|_| show_secret),
    })
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// http(s) URL receiving POSTs.
    pub url: String,
    /// At least one of GET /webhooks/events.
    pub events: Vec<String>,
    /// Default true.
    pub is_active: Option<bool>,
    /// Extra headers sent with each delivery.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub headers: Map<String, Value>,
}

/// Subscribes a URL to events; the answer carries the signing secret, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/webhooks",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The subscription with `secret` (whsec_...)", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad URL, no events or an unknown one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_webhook(
    member: Member,
    ApiJson(b): ApiJson<CreateWebhook>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::Create)?;
    webhooks::validate_subscription(&b.url, &b.events)?;
    check_headers(&b.headers)?;
    let sub = WebhookSubscription {
        id: WebhookSubscriptionId::new(),
        workspace_id: scope.id(),
        user_id: scope.actor().user(),
        url: b.url,
        events: b.events,
        is_active: b.is_active.unwrap_or(true),
        secret: Some(webhooks::new_secret()),
        headers: b.headers,
        retry_count: 0,
        last_triggered_at: None,
        last_error: None,
        created_at: None,
        updated_at: None,
    };
    let stored = scope.repo::<WebhookSubscription>().insert(&sub).await?;
    Ok((StatusCode::CREATED, ApiJson(webhook_view(&stored, true)?)).into_response())
}

fn check_headers(h: &Map<String, Value>) -> crm_core::Result<()> {
    for (k, v) in h {
        let lower = k.to_ascii_lowercase();
        if !v.is_string() || lower.starts_with("webhook-") || lower == "content-type" {
            return Err(Error::invalid(
                format!("headers.{k}"),
                "must be a string and not a webhook-* or content-type header",
            ));
        }
    }
    Ok(())
}

/// The subscriptions, newest first, without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/webhooks",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams),
    responses(
        (status = 200, description = "`{webhooks, pagination}`", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_webhooks(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::View)?;
    let req = p.page_request(DEFAULT_PAGE_LIMIT)?;
    let sort = p.sort(&["createdAt", "updatedAt"], &[SortKey::desc("createdAt")])?;
    let page = scope
        .repo::<WebhookSubscription>()
        .page(&Filter::all(), &sort, &req)
        .await?
        .try_map(|s| webhook_view(&s, false).map(|v| v.sub))?;
    Ok(ApiJson(list_body("webhooks", page, None)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/{id}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 200, description = "The subscription, without its secret", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_webhook(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::View)?;
    let id: WebhookSubscriptionId = path_id(&id)?;
    let s = scope.repo::<WebhookSubscription>().get(id).await?;
    Ok(ApiJson(webhook_view(&s, false)?).into_response())
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub is_active: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Map<String, Value>>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/{id}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The subscription id")),
    request_body = PatchWebhook,
    responses(
        (status = 200, description = "The subscription, without its secret", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad URL, no events or an unknown one", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_webhook(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<PatchWebhook>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::Edit)?;
    let id: WebhookSubscriptionId = path_id(&id)?;
    let repo = scope.repo::<WebhookSubscription>();
    let cur = repo.get(id).await?;
    let url = b.url.unwrap_or(cur.url);
    let events = b.events.unwrap_or(cur.events);
    webhooks::validate_subscription(&url, &events)?;
    let mut u = Update::new().set("url", url).set("events", events);
    if let Some(a) = b.is_active {
        u = u.set("isActive", a);
    }
    if let Some(h) = b.headers {
        check_headers(&h)?;
        u = u.set("headers", Value::Object(h));
    }
    let s = repo.update(id, &u).await?;
    Ok(ApiJson(webhook_view(&s, false)?).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/{id}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 204, description = "Deleted; pending deliveries are dropped"),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_webhook(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(R, Action::Delete)?;
    let id: WebhookSubscriptionId = path_id(&id)?;
    scope.repo::<WebhookSubscription>().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enqueued {
    /// The delivery job; its attempts appear under the subscription's deliveries.
    pub job_id: String,
}

/// Sends a `webhook.test` delivery to this subscription (a job, run by the workers).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/{id}/test",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 202, description = "The delivery is queued", body = Enqueued),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::Edit)?;
    let id: WebhookSubscriptionId = path_id(&id)?;
    let queue = state.automation.queue();
    let job = webhooks::enqueue_test(queue.as_ref(), scope, id, state.stores.clock().now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Enqueued {
            job_id: job.to_string(),
        }),
    )
        .into_response())
}

/// Every delivery attempt of a subscription, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/{id}/deliveries",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The subscription id"), ListParams),
    responses(
        (status = 200, description = "`{deliveries, pagination}`", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_deliveries(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::View)?;
    let id: WebhookSubscriptionId = path_id(&id)?;
    scope.repo::<WebhookSubscription>().get(id).await?;
    let sort = p.sort(&["deliveredAt"], &[SortKey::desc("deliveredAt")])?;
    let body = list_without_expand(
        scope.repo::<WebhookDelivery>(),
        &p,
        &Filter::eq("subscriptionId", id.to_string()),
        &sort,
        DEFAULT_PAGE_LIMIT,
        "deliveries",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// Delivers the event of a logged attempt again (a new job with its own retries).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/webhooks/{id}/deliveries/{deliveryId}/replay",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The subscription id"),
        ("deliveryId" = String, Path, description = "A delivery of this subscription")),
    responses(
        (status = 202, description = "The delivery is queued", body = Enqueued),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription or delivery in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn replay_delivery(
    State(state): State<AppState>,
    member: Member,
    Path((_, id, d)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::Edit)?;
    let id: WebhookSubscriptionId = path_id(&id)?;
    let d: WebhookDeliveryId = path_id(&d)?;
    let queue = state.automation.queue();
    let job =
        webhooks::enqueue_replay(queue.as_ref(), scope, id, d, state.stores.clock().now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Enqueued {
            job_id: job.to_string(),
        }),
    )
        .into_response())
}

// ---- Email ingestion -------------------------------------------------------------------------

/// Stores a synced or sent email once per Message-ID: 201 the first time, 200 with the stored
/// record after (nothing changes).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/email-messages/ingest",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body(content = Object, description = "An EmailMessage; `messageId` and `sentAt` required"),
    responses(
        (status = 200, description = "Already stored: the stored message", body = Object),
        (status = 201, description = "Stored", body = Object),
        (status = 403, description = "Only owners and admins manage integrations",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or a reference outside this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn ingest_email(
    member: Member,
    ApiJson(mut body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let scope = member.can(R, Action::Create)?;
    for k in ["_id", "workspaceId", "createdAt", "updatedAt"] {
        if body.contains_key(k) {
            return Err(Error::invalid(k, "is set by the server").into());
        }
    }
    body.insert("_id".into(), Value::String(ObjectId::new().to_hex()));
    body.insert("workspaceId".into(), Value::String(scope.id().to_string()));
    let msg: EmailMessage = serde_path_to_error::deserialize(Value::Object(body)).map_err(|e| {
        crate::error::ApiError::InvalidJson {
            field: Some(e.path().to_string()),
            detail: e.into_inner().to_string(),
        }
    })?;
    EmailMessage::check(scope, &msg).await?;
    let (stored, created) = integrations::ingest_email(scope, msg).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let _: EmailMessageId = stored.id;
    Ok((status, ApiJson(stored)).into_response())
}

// ---- Plain records ---------------------------------------------------------------------------

/// 422 on `field` unless a record of `E` with `id` exists in this workspace.
async fn exists<E: crm_core::repo::WorkspaceEntity>(
    scope: &WorkspaceScope,
    field: &str,
    id: ObjectId,
) -> crm_core::Result<()> {
    match scope.repo::<E>().get(id).await {
        Ok(_) => Ok(()),
        Err(Error::NotFound) => Err(Error::invalid(field, "no such record in this workspace")),
        Err(e) => Err(e),
    }
}

async fn maybe<E: crm_core::repo::WorkspaceEntity>(
    scope: &WorkspaceScope,
    field: &str,
    id: Option<ObjectId>,
) -> crm_core::Result<()> {
    match id {
        Some(id) => exists::<E>(scope, field, id).await,
        None => Ok(()),
    }
}

/// Provider secrets are never accepted through these records: they go through credentials.
const TOKENS: &[&str] = &[
    "accessToken",
    "refreshToken",
    "smtpPassword",
    "apolloApiKey",
];

#[async_trait]
impl Crud for EmailAccount {
    const PATH: &'static str = "email-accounts";
    const PLURAL: &'static str = "accounts";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status", "userId", "email"];
    const SERVER_FIELDS: &'static [&'static str] = TOKENS;
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for EmailIntegration {
    const PATH: &'static str = "email-integrations";
    const PLURAL: &'static str = "integrations";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["userId", "provider", "email"];
    const SERVER_FIELDS: &'static [&'static str] = TOKENS;
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for CalendarIntegration {
    const PATH: &'static str = "calendar-integrations";
    const PLURAL: &'static str = "integrations";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["userId", "provider", "email"];
    const SERVER_FIELDS: &'static [&'static str] = TOKENS;
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for EmailMessage {
    const PATH: &'static str = "email-messages";
    const PLURAL: &'static str = "messages";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &[
        "source",
        "contactId",
        "campaignId",
        "sequenceId",
        "workflowId",
        "threadId",
        "replied",
        "messageId",
    ];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "sentAt"];
    async fn check(scope: &WorkspaceScope, m: &Self) -> crm_core::Result<()> {
        maybe::<Contact>(scope, "contactId", m.contact_id).await?;
        maybe::<EmailAccount>(scope, "fromAccountId", m.from_account_id).await
    }
}

#[async_trait]
impl Crud for CalendarEvent {
    const PATH: &'static str = "calendar-events";
    const PLURAL: &'static str = "events";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["userId", "contactId", "provider", "externalId"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "startTime"];
    async fn check(scope: &WorkspaceScope, e: &Self) -> crm_core::Result<()> {
        if e.end_time < e.start_time {
            return Err(Error::invalid("endTime", "must not be before startTime"));
        }
        maybe::<Contact>(scope, "contactId", e.contact_id).await?;
        maybe::<Company>(scope, "companyId", e.company_id).await?;
        maybe::<Opportunity>(scope, "opportunityId", e.opportunity_id).await
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for ApolloUsage {
    const PATH: &'static str = "apollo-usage";
    const PLURAL: &'static str = "usage";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["userId", "action", "success", "entityId"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "timestamp"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for SalesforceIntegration {
    const PATH: &'static str = "salesforce-integrations";
    const PLURAL: &'static str = "integrations";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["organizationId", "syncStatus"];
    const SERVER_FIELDS: &'static [&'static str] = TOKENS;
    /// One per workspace, as the original's unique `{workspaceId}`.
    async fn check(scope: &WorkspaceScope, s: &Self) -> crm_core::Result<()> {
        let others = Filter::eq("_id", s.id.to_string()).negate();
        if scope.repo::<SalesforceIntegration>().count(&others).await? > 0 {
            return Err(Error::conflict("workspaceId"));
        }
        Ok(())
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for FieldMapping {
    const PATH: &'static str = "field-mappings";
    const PLURAL: &'static str = "mappings";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["integrationId", "objectType"];
    async fn check(scope: &WorkspaceScope, m: &Self) -> crm_core::Result<()> {
        exists::<SalesforceIntegration>(scope, "integrationId", m.integration_id.0).await
    }
}

#[async_trait]
impl Crud for SyncLog {
    const PATH: &'static str = "sync-logs";
    const PLURAL: &'static str = "logs";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["integrationId", "status"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "startedAt"];
    async fn check(scope: &WorkspaceScope, l: &Self) -> crm_core::Result<()> {
        exists::<SalesforceIntegration>(scope, "integrationId", l.integration_id.0).await
    }
}

#[async_trait]
impl Crud for LinkedInActivity {
    const PATH: &'static str = "linkedin-activities";
    const PLURAL: &'static str = "activities";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["contactId", "type", "isRead"];
    async fn check(scope: &WorkspaceScope, a: &Self) -> crm_core::Result<()> {
        exists::<Contact>(scope, "contactId", a.contact_id).await
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = self.user_id.or(actor.user());
    }
}

#[async_trait]
impl Crud for Recording {
    const PATH: &'static str = "recordings";
    const RESOURCE: Resource = R;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["meetingId", "hostUserId", "status", "schedulerId"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "recordedAt"];
    async fn check(scope: &WorkspaceScope, r: &Self) -> crm_core::Result<()> {
        maybe::<ai_memory::agents::Meeting>(scope, "meetingId", r.meeting_id).await
    }
}
