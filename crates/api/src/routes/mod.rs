//! Handlers, one module per resource. Every route is registered through `routes!` so the OpenAPI
//! document cannot drift from the router.

pub mod activities;
pub mod ai_memory;
pub mod analytics;
pub mod api_keys;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod companies;
pub mod contact_lists;
pub mod contacts;
pub mod csv;
pub mod custom_fields;
pub mod integrations;
pub mod jobs;
pub mod notifications;
pub mod opportunities;
pub mod ops;
pub mod pipelines;
pub mod public_forms;
pub mod public_tracking;
pub mod referrals;
pub mod scoring;
pub mod tasks;
pub mod tickets;
pub mod waitlist;
pub mod workflows;
pub mod workspaces;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn api_routes() -> OpenApiRouter<AppState> {
    let r = OpenApiRouter::with_openapi(<crate::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(ops::get_health))
        .routes(routes!(ops::get_ready))
        .routes(routes!(ops::get_openapi))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(
            workspaces::create_workspace,
            workspaces::list_workspaces
        ))
        .routes(routes!(
            workspaces::get_workspace,
            workspaces::patch_workspace,
            workspaces::delete_workspace
        ))
        .routes(routes!(workspaces::list_members))
        .routes(routes!(workspaces::patch_member, workspaces::delete_member));
    // Each resource module registers its own routes.
    let r = ops::routes(r);
    let r = auth::routes(r);
    let r = workspaces::routes(r);
    let r = api_keys::routes(r);
    let r = audit::routes(r);
    let r = contacts::routes(r);
    let r = contact_lists::routes(r);
    let r = referrals::routes(r);
    let r = waitlist::routes(r);
    let r = companies::routes(r);
    let r = csv::routes(r);
    let r = custom_fields::routes(r);
    let r = pipelines::routes(r);
    let r = opportunities::routes(r);
    let r = activities::routes(r);
    let r = tasks::routes(r);
    let r = campaigns::routes(r);
    let r = public_forms::routes(r);
    let r = ai_memory::routes(r);
    let r = integrations::routes(r);
    let r = analytics::routes(r);
    let r = public_tracking::routes(r);
    let r = scoring::routes(r);
    let r = jobs::routes(r);
    let r = attachments::routes(r);
    let r = notifications::routes(r);
    let r = workflows::routes(r);
    tickets::routes(r)
}
