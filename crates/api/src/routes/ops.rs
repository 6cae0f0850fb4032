//! Liveness, readiness and the API description: what probes and clients need before anything else.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;

use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

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
