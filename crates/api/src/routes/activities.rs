//! Timelines of contacts, companies and opportunities. Permissions follow the parent: contacts →
//! `Contacts`, companies → `Companies`, opportunities → `Deals`. The rules live in
//! `crm_core::services::activities`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::Error;
use crm_core::accounts::{Action, Resource};
use crm_core::entities::activity::{
    Activity, ActivityEntityType, ActivityId, ActivityType, Direction,
};
use crm_core::repo::WorkspaceScope;
use crm_core::services::activities::{self, ActivityPatch, NewActivity, Parent};
use crm_core::services::tasks::{contains_any, nullable};
use crm_core::{SortKey, Timestamp, UserId};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::{actor, path_id};
use crate::auth::Member;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_contact_activity, list_contact_activities))
        .routes(routes!(create_company_activity, list_company_activities))
        .routes(routes!(
            create_opportunity_activity,
            list_opportunity_activities
        ))
        .routes(routes!(patch_activity, delete_activity))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateActivity {
    /// email, call, meeting, note, stage_change, file_upload, task, ai_suggestion
    /// (`workflow_action` is written by automation only).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: ActivityType,
    /// Up to 200 characters.
    pub title: String,
    /// Up to 5000 characters.
    pub description: Option<String>,
    /// inbound or outbound.
    #[schema(value_type = Option<String>)]
    pub direction: Option<Direction>,
    /// Seconds, 0 or more.
    pub duration: Option<f64>,
    pub email_subject: Option<String>,
    pub email_body: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<Timestamp>,
    #[serde(default)]
    pub completed: bool,
    /// An active member of the workspace.
    #[schema(value_type = Option<String>)]
    pub assignee_id: Option<UserId>,
    /// Free-form object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

impl From<CreateActivity> for NewActivity {
    fn from(c: CreateActivity) -> Self {
        NewActivity {
            kind: c.kind,
            title: c.title,
            description: c.description,
            direction: c.direction,
            duration: c.duration,
            email_subject: c.email_subject,
            email_body: c.email_body,
            due_date: c.due_date,
            completed: c.completed,
            assignee_id: c.assignee_id,
            metadata: c.metadata,
        }
    }
}

/// Absent fields stay; `null` clears description and metadata.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchActivity {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub completed: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Option<Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityFilters {
    /// One activity type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
}

fn resource_of(kind: Option<ActivityEntityType>) -> Resource {
    match kind {
        Some(ActivityEntityType::Contact) | None => Resource::Contacts,
        Some(ActivityEntityType::Company) => Resource::Companies,
        Some(ActivityEntityType::Deal | ActivityEntityType::Opportunity) => Resource::Deals,
    }
}

async fn create(
    state: &AppState,
    member: &Member,
    resource: Resource,
    parent: Parent,
    req: CreateActivity,
) -> ApiResult<Response> {
    let scope = member.can(resource, Action::Create)?;
    let a = activities::create(scope, &actor(member, state), parent, req.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(a)).into_response())
}

async fn list(
    member: &Member,
    resource: Resource,
    parent: Parent,
    p: &ListParams,
    f: &ActivityFilters,
) -> ApiResult<Response> {
    let scope = member.can(resource, Action::View)?;
    parent.ensure_exists(scope).await?;
    let mut filter = parent.filter();
    if let Some(t) = activities::type_filter(f.kind.as_deref())? {
        filter = filter.and(t);
    }
    if let Some(q) = contains_any(&["title", "description"], p.search.as_deref()) {
        filter = filter.and(q);
    }
    if p.tags.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        return Err(Error::invalid("tags", "activities have no tags").into());
    }
    let sort = p.sort(
        &["createdAt", "type", "dueDate"],
        &[SortKey::desc("createdAt")],
    )?;
    let repo = scope.repo::<Activity>();
    let body = list_without_expand(repo, p, &filter, &sort, DEFAULT_LIMIT, "activities").await?;
    Ok(ApiJson(body).into_response())
}

macro_rules! timeline {
    ($create:ident, $list:ident, $path:tt, $param:tt, $what:literal, $variant:ident,
     $resource:expr) => {
        #[doc = concat!("Logs an activity on a ", $what, ".")]
        #[utoipa::path(
            post,
            path = $path,
            tag = "activities",
            security(("bearer" = [])),
            params(("workspaceId" = String, Path, description = "The workspace id"),
                ($param = String, Path, description = concat!("The ", $what, " id"))),
            request_body = CreateActivity,
            responses(
                (status = 201, description = "The activity", body = Object),
                (status = 403, description = "The role may not log activities here",
                    body = Problem, content_type = "application/problem+json"),
                (status = 404, description = concat!("No such ", $what, " in this workspace"),
                    body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Invalid field", body = Problem,
                    content_type = "application/problem+json"),
            ),
        )]
        pub async fn $create(
            State(state): State<AppState>,
            member: Member,
            Path((_, id)): Path<(String, String)>,
            ApiJson(req): ApiJson<CreateActivity>,
        ) -> ApiResult<Response> {
            let parent = Parent::$variant(path_id(&id)?);
            create(&state, &member, $resource, parent, req).await
        }

        #[doc = concat!("The ", $what, "'s activities, newest first.")]
        #[utoipa::path(
            get,
            path = $path,
            tag = "activities",
            security(("bearer" = [])),
            params(("workspaceId" = String, Path, description = "The workspace id"),
                ($param = String, Path, description = concat!("The ", $what, " id")),
                ListParams, ActivityFilters),
            responses(
                (status = 200, description = "`{activities, pagination}`", body = Object),
                (status = 404, description = concat!("No such ", $what, " in this workspace"),
                    body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Bad filter or paging", body = Problem,
                    content_type = "application/problem+json"),
            ),
        )]
        pub async fn $list(
            member: Member,
            Path((_, id)): Path<(String, String)>,
            ApiQuery(p): ApiQuery<ListParams>,
            ApiQuery(f): ApiQuery<ActivityFilters>,
        ) -> ApiResult<Response> {
            let parent = Parent::$variant(path_id(&id)?);
            list(&member, $resource, parent, &p, &f).await
        }
    };
}

timeline!(
    create_contact_activity,
    list_contact_activities,
    "/api/v1/workspaces/{workspaceId}/contacts/{contactId}/activities",
    "contactId",
    "contact",
    Contact,
    Resource::Contacts
);
timeline!(
    create_company_activity,
    list_company_activities,
    "/api/v1/workspaces/{workspaceId}/companies/{companyId}/activities",
    "companyId",
    "company",
    Company,
    Resource::Companies
);
timeline!(
    create_opportunity_activity,
    list_opportunity_activities,
    "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}/activities",
    "opportunityId",
    "opportunity",
    Opportunity,
    Resource::Deals
);

/// The activity and the scope, once the role may `action` on its parent's kind.
async fn load<'m>(
    member: &'m Member,
    id: &str,
    action: Action,
) -> Result<(&'m WorkspaceScope, Activity), ApiError> {
    // Every role may view every timeline; the parent's kind then decides the action.
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: ActivityId = path_id(id)?;
    let a = scope.repo::<Activity>().get(id).await?;
    let scope = member.can(resource_of(activities::owner_kind(&a)), action)?;
    Ok((scope, a))
}

/// Changes title, description, completion or metadata.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/activities/{activityId}",
    tag = "activities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("activityId" = String, Path, description = "The activity id")),
    request_body = PatchActivity,
    responses(
        (status = 200, description = "The updated activity", body = Object),
        (status = 403, description = "The role may not edit this timeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such activity in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_activity(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchActivity>,
) -> ApiResult<ApiJson<Activity>> {
    let (scope, a) = load(&member, &id, Action::Edit).await?;
    let patch = ActivityPatch {
        title: req.title,
        description: req.description,
        completed: req.completed,
        metadata: req.metadata,
    };
    Ok(ApiJson(activities::update(scope, a.id, patch).await?))
}

/// Deletes an activity; an opportunity's counters go down again.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/activities/{activityId}",
    tag = "activities",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("activityId" = String, Path, description = "The activity id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete from this timeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such activity in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_activity(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (scope, a) = load(&member, &id, Action::Delete).await?;
    activities::delete(scope, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_map_to_resources() {
        assert_eq!(
            resource_of(Some(ActivityEntityType::Opportunity)),
            Resource::Deals
        );
        assert_eq!(
            resource_of(Some(ActivityEntityType::Company)),
            Resource::Companies
        );
    }
}
