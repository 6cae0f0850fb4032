//! Liveness, readiness and the API description (the OpenAPI document and a page to read it):
//! what probes and clients need before anything else.

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

/// The API page: its assets are relative links, so the page itself is served under a trailing
/// slash.
pub const DOCS_PATH: &str = "/api/v1/docs/";

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(get_docs_redirect))
        .routes(routes!(get_docs_page))
        .routes(routes!(get_docs_asset))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ok` when the storage answered.
    pub status: String,
    /// The storage backend (`memory`, `sqlite`, `mongo`).
    pub storage: String,
}

/// Liveness: the process serves HTTP. Never touches storage.
#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    responses((status = 200, description = "The process is up", body = Health)),
)]
pub async fn get_health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the storage answers a ping within the configured time.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "ops",
    responses(
        (status = 200, description = "Ready to serve requests", body = Ready),
        (status = 503, description = "The storage does not answer", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_ready(State(state): State<AppState>) -> ApiResult<Json<Ready>> {
    let admin = &state.storage.admin;
    match tokio::time::timeout(state.config.ready_timeout, admin.ping()).await {
        Ok(Ok(())) => Ok(Json(Ready {
            status: "ok".into(),
            storage: admin.backend().into(),
        })),
        Ok(Err(e)) => Err(ApiError::NotReady(e.to_string())),
        Err(_) => Err(ApiError::NotReady(format!(
            "ping took longer than {:?}",
            state.config.ready_timeout
        ))),
    }
}

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub async fn get_openapi(Extension(doc): Extension<Arc<OpenApi>>) -> Response {
    Json(doc.as_ref()).into_response()
}

/// Swagger UI pointed at [`get_openapi`]. The validator is off: Swagger UI would otherwise send the
/// document to an online validator; the page loads nothing from outside this server.
static DOCS_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"])
            .validator_url("none")
            .filter(true)
            .display_request_duration(true),
    )
});

/// One file of the page; `""` is the page itself.
fn docs_file(name: &str) -> ApiResult<Response> {
    let file = utoipa_swagger_ui::serve(name, DOCS_CONFIG.clone())
        .map_err(|e| ApiError::Core(crm_core::Error::Internal(format!("API page: {e}"))))?
        .ok_or(ApiError::Core(crm_core::Error::NotFound))?;
    let content_type = HeaderValue::try_from(file.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // Borrowed from the binary for all but the initializer, which carries the config.
    let mut res = (StatusCode::OK, axum::body::Body::from(file.bytes)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, content_type);
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

/// The API page without its trailing slash: redirects to it.
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    tag = "ops",
    responses((status = 303, description = "To `/api/v1/docs/`",
        headers(("Location" = String, description = "`/api/v1/docs/`")))),
)]
pub async fn get_docs_redirect() -> Redirect {
    Redirect::to(DOCS_PATH)
}

/// A readable page over this API's OpenAPI document (Swagger UI, served from assets built into
/// the server; nothing is loaded from elsewhere).
#[utoipa::path(
    get,
    path = "/api/v1/docs/",
    tag = "ops",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")),
)]
pub async fn get_docs_page() -> ApiResult<Response> {
    docs_file("")
}

/// A script, stylesheet or image of the API page.
#[utoipa::path(
    get,
    path = "/api/v1/docs/{file}",
    tag = "ops",
    params(("file" = String, Path, description = "A file name, e.g. `swagger-ui-bundle.js`")),
    responses(
        (status = 200, description = "The file, with its content type", body = String,
            content_type = "application/octet-stream"),
        (status = 404, description = "No such file", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_docs_asset(Path(file): Path<String>) -> ApiResult<Response> {
    docs_file(&file)
}
