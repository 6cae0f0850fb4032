//! Public, unauthenticated tracking endpoints: the website tracking script's batches, and the
//! email open pixel and click redirect. Rate limited per client IP by the shared limiter and
//! body-limited by the shared layer; the rules live in `analytics::tracking` and
//! `analytics::email`.

use ::analytics::email::{self, EmailTracking, TrackKind};
use ::analytics::tracking::{self, Refusal, TrackBatch, TrackResult};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::entities::project::Project;
use crm_core::{Error, WorkspaceId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

const TAG: &str = "tracking";
pub const OPEN_PREFIX: &str = "/api/v1/public/t/o/";
pub const CLICK_PREFIX: &str = "/api/v1/public/t/c/";

/// The smallest transparent GIF (1x1, 43 bytes).
pub const PIXEL_GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(track))
        .routes(routes!(open_pixel))
        .routes(routes!(click))
}

/// The public path of a tracked pixel or link.
pub fn public_path(t: &EmailTracking) -> String {
    match t.kind {
        TrackKind::Open => format!("{OPEN_PREFIX}{}.gif", t.token),
        TrackKind::Click => format!("{CLICK_PREFIX}{}", t.token),
    }
}

/// One event of a batch (documentation of `analytics::tracking::IncomingEvent`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct TrackEventDoc {
    /// page_view, button_click, form_view, form_submit, scroll_depth, custom.
    pub event_type: String,
    /// Up to 200 characters, stored as sent.
    pub event_name: String,
    /// Up to 2048 characters.
    pub url: String,
    pub session_id: Option<String>,
    pub referrer: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<serde_json::Value>,
}

/// The tracking script's request (documentation of `analytics::tracking::TrackBatch`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct TrackBody {
    /// The script's id for this browser, up to 200 characters.
    pub visitor_id: String,
    pub session_id: Option<String>,
    /// 0 to 100 events (at least one unless `identify` is given).
    pub events: Vec<TrackEventDoc>,
    /// `{email, firstName?, lastName?, phone?, company?}`: finds or creates the contact by
    /// email and links the visitor to it.
    #[schema(value_type = Option<Object>)]
    pub identify: Option<serde_json::Value>,
    /// `{userAgent?, ip?, screen?, language?}`.
    #[schema(value_type = Option<Object>)]
    pub device: Option<serde_json::Value>,
}

/// The workspace named in a public path: unknown, malformed and deleted ones are all 404.
async fn workspace(state: &AppState, raw: &str) -> Result<Project, Error> {
    let id: WorkspaceId = path_id(raw)?;
    let p = state.stores.global::<Project>().get(id).await?;
    if p.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    Ok(p)
}

fn origin_host(headers: &HeaderMap) -> Option<String> {
    [header::ORIGIN, header::REFERER]
        .iter()
        .filter_map(|h| headers.get(h).and_then(|v| v.to_str().ok()))
        .find_map(tracking::host_of)
}

/// Stores a batch of website events from one visitor; with `identify`, upserts the contact by
/// email, links the visitor and back-fills the contact on the visitor's earlier events.
#[utoipa::path(
    post,
    path = "/api/v1/public/track/{workspaceId}",
    tag = TAG,
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = TrackBody,
    responses(
        (status = 200, description = "`{stored, visitorId, contactId?}`", body = Object),
        (status = 400, description = "Malformed JSON, or more than 100 events", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Tracking is off for the workspace, or the origin is not \
            allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A field of the wrong shape or too long", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn track(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<TrackBatch>,
) -> ApiResult<Response> {
    let project = workspace(&state, &ws).await?;
    match tracking::tracking_allowed(&project, origin_host(&headers).as_deref()) {
        Ok(()) => {}
        Err(Refusal::Disabled) => {
            return Err(Error::Forbidden("tracking is disabled for this workspace".into()).into());
        }
        Err(Refusal::Origin) => {
            return Err(Error::Forbidden("this origin may not send tracking events".into()).into());
        }
    }
    // Over-long batches are a bad request (400), as in the original, not a field error.
    if batch.events.len() > tracking::MAX_EVENTS {
        return Ok(Problem::new(
            StatusCode::BAD_REQUEST,
            "too_many_events",
            "Too many events",
        )
        .detail(format!(
            "At most {} events per request.",
            tracking::MAX_EVENTS
        ))
        .field("events")
        .into_response());
    }
    let done: TrackResult = tracking::ingest(&state.stores, &project, batch).await?;
    Ok(ApiJson(done).into_response())
}

/// Records an email open and answers a transparent 1x1 GIF.
#[utoipa::path(
    get,
    path = "/api/v1/public/t/o/{file}",
    tag = TAG,
    params(("file" = String, Path, description = "`<token>.gif`")),
    responses(
        (status = 200, description = "A 1x1 transparent GIF", content_type = "image/gif",
            body = [u8]),
        (status = 404, description = "No such pixel", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn open_pixel(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> ApiResult<Response> {
    let token = file.strip_suffix(".gif").ok_or(Error::NotFound)?;
    email::hit(&state.stores, token, TrackKind::Open).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache, must-revalidate, private"),
            ),
        ],
        PIXEL_GIF.to_vec(),
    )
        .into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClickQuery {
    /// Accepted for links written by older senders and ignored: the destination is the one
    /// stored with the token.
    pub u: Option<String>,
}

/// Records a click and redirects (302) to the URL the link was issued for. Whatever `u` says,
/// the destination is the stored one, so the link cannot be turned into an open redirect.
#[utoipa::path(
    get,
    path = "/api/v1/public/t/c/{token}",
    tag = TAG,
    params(("token" = String, Path, description = "The link's token"), ClickQuery),
    responses(
        (status = 302, description = "To the link's URL (`Location`)"),
        (status = 404, description = "No such link", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiQuery(_q): ApiQuery<ClickQuery>,
) -> ApiResult<Response> {
    let t = email::hit(&state.stores, &token, TrackKind::Click).await?;
    let url = t.url.ok_or(Error::NotFound)?;
    let location =
        HeaderValue::from_str(&url).map_err(|_| Error::internal("stored URL is not a header"))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}
