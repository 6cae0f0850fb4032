//! The public (unauthenticated) engagement endpoints: form definitions and submissions, and
//! published landing pages. Everything served is data (JSON); nothing submitted is rendered.

use std::net::{IpAddr, SocketAddr};

use ::campaigns::content::LandingPage;
use ::campaigns::forms::{FormId, PublishStatus, SubmissionSource};
use ::campaigns::submit;
use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, header};
use crm_core::services::ratelimit::{self, Decision, Limit};
use crm_core::{Error, Filter, FindOptions, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, decode_json};
use crate::state::AppState;

/// Largest submission body, in bytes (the original's JSON limit is 100 kB).
pub const SUBMIT_BODY_LIMIT: usize = 64 * 1024;
/// Submissions per client IP per form and window.
pub const SUBMIT_LIMIT: Limit = Limit {
    max: 10,
    window_secs: 60,
};

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(get_public_form))
        .routes(routes!(submit_form))
        .routes(routes!(get_landing_page))
}

/// What a visitor's browser needs to draw a form.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicFormView {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub fields: Value,
    pub submit_button_text: String,
    /// The name of the hidden field bots fill in; leave it empty.
    pub honeypot_field: &'static str,
}

/// A published form's fields (404 for unknown, draft and archived forms).
#[utoipa::path(
    get,
    path = "/api/v1/public/forms/{formId}",
    tag = "public",
    params(("formId" = String, Path, description = "The form id")),
    responses(
        (status = 200, description = "The form's public view", body = PublicFormView),
        (status = 404, description = "No such published form", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_public_form(
    State(state): State<AppState>,
    Path(form): Path<String>,
) -> ApiResult<ApiJson<PublicFormView>> {
    let form: FormId = path_id(&form)?;
    let (_, f) = submit::published_form(&state.stores, form).await?;
    Ok(ApiJson(PublicFormView {
        id: f.id.to_string(),
        name: f.name.to_string(),
        description: f.description,
        fields: serde_json::to_value(&f.fields).map_err(Error::internal)?,
        submit_button_text: f.settings.submit_button_text,
        honeypot_field: submit::HONEYPOT_FIELD,
    }))
}

/// Where the visitor came from, as the embed reports it (IP and user agent are taken from the
/// request, never from the body).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitSource {
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitBody {
    /// Answers by field id; stored exactly as sent.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub source: SubmitSource,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmitAnswer {
    pub success: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip.to_string();
    }
    peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|e| e.trim().to_ascii_lowercase())
        .is_some_and(|e| {
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        })
}

/// Submits a published form. Limits: schedule and total/daily maximums (403), 10 per client
/// IP per form per minute (429), bodies up to 64 KiB or the server's limit if lower (413). A filled honeypot field answers the
/// same 200 but is stored as spam, without a contact. The contact is found by email (else
/// phone) and has its empty fields filled, or is created; `form.submitted` is emitted.
#[utoipa::path(
    post,
    path = "/api/v1/public/forms/{formId}/submit",
    tag = "public",
    params(("formId" = String, Path, description = "The form id")),
    request_body = SubmitBody,
    responses(
        (status = 200, description = "Received", body = SubmitAnswer),
        (status = 400, description = "Malformed JSON", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The form is closed or at its submission limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such published form", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 64 KiB", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A required answer is missing or a contact field is invalid (`field` = data.<fieldId>)", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many submissions from this address", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn submit_form(
    State(state): State<AppState>,
    Path(form): Path<String>,
    request: Request,
) -> ApiResult<ApiJson<SubmitAnswer>> {
    let headers = request.headers().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !is_json(&headers) {
        return Err(ApiError::NotJson);
    }
    let limit = SUBMIT_BODY_LIMIT.min(state.config.body_limit);
    let body = to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let req: SubmitBody = decode_json(&body)?;
    let form: FormId = path_id(&form)?;
    let ip = client_ip(&headers, peer, state.config.rate_limit.trust_forwarded_for);
    if state.config.rate_limit.enabled {
        let bucket = format!("form-submit:{form}:{ip}");
        let now = state.stores.clock().now();
        if let Decision::Limited { retry_after_secs } =
            ratelimit::hit(&*state.storage.docs, &bucket, SUBMIT_LIMIT, now).await?
        {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: Some(retry_after_secs),
            });
        }
    }
    let source = SubmissionSource {
        url: req.source.url,
        referrer: req.source.referrer,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: Some(ip),
        utm_source: req.source.utm_source,
        utm_medium: req.source.utm_medium,
        utm_campaign: req.source.utm_campaign,
        utm_term: req.source.utm_term,
        utm_content: req.source.utm_content,
    };
    let done = submit::submit(&state.stores, form, req.data, source).await?;
    Ok(ApiJson(SubmitAnswer {
        success: true,
        message: done.success_message,
        redirect_url: done.redirect_url,
    }))
}

/// A published landing page of a workspace, by slug (404 otherwise). Sections, SEO and
/// settings are returned as stored, as JSON data for the page renderer.
#[utoipa::path(
    get,
    path = "/api/v1/public/landing-pages/{workspaceId}/{slug}",
    tag = "public",
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("slug" = String, Path, description = "The page slug")),
    responses(
        (status = 200, description = "The page", body = Object),
        (status = 404, description = "No such published page", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_landing_page(
    State(state): State<AppState>,
    Path((ws, slug)): Path<(String, String)>,
) -> ApiResult<ApiJson<LandingPage>> {
    let ws: WorkspaceId = path_id(&ws)?;
    let slug = slug.trim().to_lowercase();
    let opts = FindOptions {
        limit: Some(1),
        ..FindOptions::default()
    };
    let page = state
        .stores
        .workspace(ws)
        .repo::<LandingPage>()
        .find(
            &Filter::eq("slug", slug).and(Filter::eq("status", "published")),
            &opts,
        )
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)?;
    debug_assert_eq!(page.status, PublishStatus::Published);
    Ok(ApiJson(page))
}
