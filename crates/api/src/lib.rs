//! The HTTP layer of Clianta: builds the axum router (no socket), renders every error as RFC 7807
//! problem+json from one [`ApiError`], and serves the OpenAPI document generated from the handlers.

mod api_doc;
pub mod auth;
pub mod crud;
mod error;
pub mod etag;
pub mod extract;
pub mod idempotency;
pub mod listing;
mod middleware;
pub mod ratelimit;
pub mod routes;
mod state;

use std::sync::Arc;

use axum::{Extension, Router};

pub use auth::{AuthConfig, AuthUser, JwtSecret, Member};
pub use error::{ApiError, ApiResult, PROBLEM_JSON, Problem};
pub use extract::{ApiJson, ApiQuery};
pub use idempotency::IdempotencyConfig;
pub use middleware::REQUEST_ID;
pub use ratelimit::RateLimitConfig;
pub use state::{ApiConfig, AppState};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Clianta API",
        description = "Multi-tenant CRM. Errors are RFC 7807 `application/problem+json` bodies \
                       (schema `Problem`) with a stable `code`.",
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "ops", description = "Liveness, readiness and this description"),
        (name = "auth", description = "Accounts and tokens: short-lived JWT access tokens and \
                                        rotating refresh tokens"),
        (name = "workspaces", description = "Workspaces, members and roles"),
    ),
)]
pub(crate) struct ApiDoc;

/// Declares the `bearer` scheme that protected operations name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole application: routes, fallback and middleware over `state`.
pub fn router(state: AppState) -> Router {
    router_with(state, |r| r)
}

/// [`router`] with extra routes (an embedder's, or a test entity's `crud::crud_routes`),
/// documented in the same OpenAPI document.
pub fn router_with(
    state: AppState,
    extra: impl FnOnce(
        utoipa_axum::router::OpenApiRouter<AppState>,
    ) -> utoipa_axum::router::OpenApiRouter<AppState>,
) -> Router {
    let config = state.config.clone();
    let (routes, mut doc) = extra(routes::api_routes()).split_for_parts();
    complete(&mut doc);
    let app = routes
        .fallback(middleware::fallback)
        .layer(Extension(Arc::new(doc)))
        .with_state(state.clone());
    middleware::apply(middleware::shared_limits(app, state), &config)
}

/// The OpenAPI document [`router`] serves at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = routes::api_routes().into_openapi();
    complete(&mut doc);
    doc
}

/// What the collected handler annotations leave out: the API-key scheme, and the answers of the
/// shared layers (401, 403, 404, 412, 413, 422, 429, `Idempotency-Key`, `If-Match`, `ETag`).
fn complete(doc: &mut utoipa::openapi::OpenApi) {
    auth::api_key::document(doc);
    utoipa::Modify::modify(&api_doc::SharedResponses, doc);
}

/// Wraps a router of extra routes in the same layers [`router`] uses (tests of extractors, and
/// embedders that add their own routes).
pub fn with_middleware(router: Router, config: &ApiConfig) -> Router {
    middleware::apply(router.fallback(middleware::fallback), config)
}
