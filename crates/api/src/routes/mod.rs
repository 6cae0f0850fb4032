//! Handlers, one module per resource. Every route is registered through `routes!` so the OpenAPI
//! document cannot drift from the router.

pub mod ops;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<crate::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(ops::get_health))
        .routes(routes!(ops::get_ready))
        .routes(routes!(ops::get_openapi))
}
