//! The public waitlist: anyone may sign up, nobody can read it over HTTP. Rate limited per client
//! IP and per email like login and register (`crate::ratelimit`).

use axum::extract::State;
use crm_core::entities::waitlist::TeamSize;
use crm_core::services::waitlist::{self, Join};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(join_waitlist))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinWaitlist {
    /// Trimmed and lower-cased.
    pub email: String,
    /// Up to 200 characters.
    pub company_name: Option<String>,
    /// Up to 200 characters.
    pub role: Option<String>,
    /// `1-5`, `6-20`, `21-50`, `51-200`, `200+` or empty.
    #[schema(value_type = Option<String>)]
    pub team_size: Option<TeamSize>,
    /// Up to 200 characters.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WaitlistJoined {
    /// Always `true`, whether or not the email was already on the list.
    pub joined: bool,
}

/// Puts an email on the waitlist. Answers the same whether or not the email was already there
/// (the first sign-up's details are kept), so the list cannot be probed.
#[utoipa::path(
    post,
    path = "/api/v1/waitlist",
    tag = "waitlist",
    request_body = JoinWaitlist,
    responses(
        (status = 200, description = "On the list", body = WaitlistJoined),
        (status = 422, description = "Not an email, or a field too long", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this address or for this email",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn join_waitlist(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<JoinWaitlist>,
) -> ApiResult<ApiJson<WaitlistJoined>> {
    waitlist::join(
        &state.stores,
        Join {
            email: req.email,
            company_name: req.company_name,
            role: req.role,
            team_size: req.team_size,
            source: req.source,
        },
    )
    .await?;
    Ok(ApiJson(WaitlistJoined { joined: true }))
}
