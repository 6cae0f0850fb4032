//! Routes for tasks (being written).

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r
}
