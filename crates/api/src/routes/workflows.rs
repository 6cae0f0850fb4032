//! Workflows (issue 4 item 3, ADR 0020): definitions, activation and pausing, clone, manual and
//! bulk enrollment, enrollments with their step log, retry, a record's workflows, analytics and
//! a dry run. The rules live in `automation::workflows`; enrollments run as jobs of the
//! automation runtime.

use std::collections::HashMap;

use automation::queue::StoreJobQueue;
use automation::workflows::engine::{DryRun, Enroll, load_record};
use automation::workflows::model::{
    Criteria, EnrollmentSource, EnrollmentStatus, EntityType, Step, Workflow, WorkflowEnrollment,
    WorkflowEnrollmentId, WorkflowId, WorkflowStats, WorkflowStatus,
};
use automation::workflows::{Engine, WorkflowPorts, validate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::repo::WorkspaceScope;
use crm_core::{Error, Filter, ObjectId, SortKey, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 50;
const BULK_MAX: usize = 500;
const SORTABLE: &[&str] = &[
    "createdAt",
    "updatedAt",
    "name",
    "status",
    "lastActivatedAt",
];
const ENROLLMENT_SORTABLE: &[&str] = &["createdAt", "enrolledAt", "status", "completedAt"];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_workflow, list_workflows))
        .routes(routes!(get_workflow, put_workflow, delete_workflow))
        .routes(routes!(activate_workflow))
        .routes(routes!(pause_workflow))
        .routes(routes!(clone_workflow))
        .routes(routes!(enroll))
        .routes(routes!(enroll_bulk))
        .routes(routes!(list_enrollments))
        .routes(routes!(retry_enrollment))
        .routes(routes!(entity_workflows))
        .routes(routes!(workflow_analytics))
        .routes(routes!(dry_run))
}

/// The engine over this app's store and queue. HTTP only enrolls, pauses, resumes and dry-runs,
/// none of which touch the action ports.
fn engine(state: &AppState) -> Engine {
    let clock = state.stores.clock().clone();
    let queue = std::sync::Arc::new(StoreJobQueue::new(&state.stores, clock.clone()));
    Engine::new(state.stores.clone(), clock, queue, WorkflowPorts::offline())
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowBody {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// contact (default), deal or company.
    #[schema(value_type = Option<String>)]
    pub trigger_entity_type: Option<EntityType>,
    /// `{conditions: [{field, operator, value}], matchAll}`.
    #[schema(value_type = Option<Object>)]
    pub enrollment_criteria: Option<Criteria>,
    /// `[{id, type, name, position, nextStepIds, config}]`; types trigger, action, delay,
    /// condition, wait_until.
    #[schema(value_type = Option<Vec<Object>>)]
    pub steps: Option<Vec<Step>>,
    pub allow_reenrollment: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub goal_criteria: Option<Criteria>,
}

impl WorkflowBody {
    fn apply(self, w: &mut Workflow) {
        if let Some(v) = self.name {
            w.name = v.trim().to_owned();
        }
        if let Some(v) = self.description {
            let v = v.trim().to_owned();
            w.description = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = self.trigger_entity_type {
            w.trigger_entity_type = v;
        }
        if let Some(v) = self.enrollment_criteria {
            w.enrollment_criteria = v;
        }
        if let Some(v) = self.steps {
            w.steps = v;
        }
        if let Some(v) = self.allow_reenrollment {
            w.allow_reenrollment = v;
        }
        if let Some(v) = self.goal_criteria {
            w.goal_criteria = Some(v);
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowFilters {
    /// draft, active, paused, archived.
    pub status: Option<String>,
    /// contact, deal, company.
    pub trigger_entity_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentFilters {
    /// active, processing, completed, goal_met, failed, cancelled, paused, retrying,
    /// waiting_for_event.
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollBody {
    /// contact, deal or company: must be the workflow's trigger entity type.
    pub entity_type: String,
    /// A record of this workspace.
    pub entity_id: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollBulkBody {
    /// 1 to 500 record ids of the workflow's trigger entity type.
    pub entity_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkEnrollItem {
    pub id: String,
    /// changed (enrolled), unchanged (already enrolled), notFound (ADR 0017's outcomes).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkEnrollReport {
    /// Ids naming a record of this workspace.
    pub matched: u64,
    /// Enrollments created.
    pub changed: u64,
    pub results: Vec<BulkEnrollItem>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowAnalytics {
    pub workflow_id: String,
    /// The counters kept on the workflow (`stats`).
    #[schema(value_type = Object)]
    pub stats: WorkflowStats,
    /// Enrollments counted now, by status.
    #[schema(value_type = Object)]
    pub by_status: HashMap<&'static str, u64>,
    pub total_enrollments: u64,
    /// Completed or goal met over all finished enrollments, 0 to 100.
    pub completion_rate: f64,
}

fn status_filter<T: for<'de> Deserialize<'de>>(
    raw: Option<&str>,
    field: &'static str,
) -> ApiResult<Option<Filter>> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) => {
            serde_json::from_value::<T>(json!(s))
                .map_err(|_| Error::invalid(field, format!("unknown {field} `{s}`")))?;
            Ok(Some(Filter::eq(field, s)))
        }
    }
}

async fn workflow_of(scope: &WorkspaceScope, raw: &str) -> ApiResult<Workflow> {
    let id: WorkflowId = path_id(raw)?;
    Ok(scope.repo::<Workflow>().get(id).await?)
}

fn entity_type(raw: &str, field: &str) -> ApiResult<EntityType> {
    Ok(EntityType::parse(raw)
        .ok_or_else(|| Error::invalid(field, "one of contact, deal, company"))?)
}

/// Creates a draft workflow (behaviour 43) after static validation.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = WorkflowBody,
    responses(
        (status = 201, description = "The workflow, as a draft", body = Object),
        (status = 403, description = "The role may not create workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid workflow; `field` is the path, e.g. \
            `steps[2].nextStepIds[0]`", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create_workflow(
    member: Member,
    ApiJson(req): ApiJson<WorkflowBody>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::Create)?;
    if req.name.is_none() {
        return Err(Error::invalid("name", "is required").into());
    }
    let mut w = Workflow::new(scope.id(), member.user.id, "");
    req.apply(&mut w);
    validate::workflow(&w)?;
    let w = scope.repo::<Workflow>().insert(&w).await?;
    Ok((StatusCode::CREATED, ApiJson(w)).into_response())
}

/// Workflows, newest first, filtered by status, trigger entity type and search (name,
/// description).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/workflows",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        WorkflowFilters),
    responses(
        (status = 200, description = "`{workflows, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_workflows(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<WorkflowFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    let mut filter = p.base_filter();
    if let Some(x) = status_filter::<WorkflowStatus>(f.status.as_deref(), "status")? {
        filter = filter.and(x);
    }
    if let Some(x) = f.trigger_entity_type.as_deref().filter(|s| !s.is_empty()) {
        let t = entity_type(x, "triggerEntityType")?;
        filter = filter.and(Filter::eq("triggerEntityType", t.as_str()));
    }
    let sort = p.sort(SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<Workflow>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "workflows",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 200, description = "The workflow", body = Object),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_workflow(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Workflow>> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    Ok(ApiJson(workflow_of(scope, &id).await?))
}

/// Changes a workflow; absent fields stay. Status changes go through activate and pause (the
/// original let PUT set `status` without the activation checks). An active workflow stays
/// valid for activation.
#[utoipa::path(
    put,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    request_body = WorkflowBody,
    responses(
        (status = 200, description = "The updated workflow", body = Object),
        (status = 403, description = "The role may not edit workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid workflow", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn put_workflow(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<WorkflowBody>,
) -> ApiResult<ApiJson<Workflow>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let mut w = workflow_of(scope, &id).await?;
    req.apply(&mut w);
    if w.status == WorkflowStatus::Active {
        validate::activation(&w)?;
    } else {
        validate::workflow(&w)?;
    }
    let u = Update::new()
        .set("name", w.name.as_str())
        .set("description", json!(w.description))
        .set("triggerEntityType", w.trigger_entity_type.as_str())
        .set("enrollmentCriteria", to_json(&w.enrollment_criteria)?)
        .set("steps", to_json(&w.steps)?)
        .set("allowReenrollment", w.allow_reenrollment)
        .set("goalCriteria", to_json(&w.goal_criteria)?);
    Ok(ApiJson(scope.repo::<Workflow>().update(w.id, &u).await?))
}

fn to_json<T: Serialize>(v: &T) -> ApiResult<Value> {
    Ok(serde_json::to_value(v).map_err(Error::internal)?)
}

/// Deletes a workflow and its enrollments (behaviour 49).
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 204, description = "Deleted, with its enrollments"),
        (status = 403, description = "The role may not delete workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_workflow(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Workflows, Action::Delete)?;
    let w = workflow_of(scope, &id).await?;
    engine(&state).delete_workflow(scope, w.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Activates a workflow: it needs a trigger and an action step (behaviour 43). Enrollments
/// paused with it resume where they stood.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/activate",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 200, description = "The active workflow", body = Object),
        (status = 403, description = "The role may not edit workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Not activatable (no trigger or no action step, or \
            invalid)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn activate_workflow(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Workflow>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let w = workflow_of(scope, &id).await?;
    validate::activation(&w)?;
    let now = state.stores.clock().now();
    let u = Update::new()
        .set("status", "active")
        .set("lastActivatedAt", now.to_canonical());
    let w = scope.repo::<Workflow>().update(w.id, &u).await?;
    engine(&state).resume_enrollments(scope, w.id).await?;
    Ok(ApiJson(w))
}

/// Pauses a workflow and its running enrollments (behaviour 49).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/pause",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 200, description = "The paused workflow", body = Object),
        (status = 403, description = "The role may not edit workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn pause_workflow(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Workflow>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let w = workflow_of(scope, &id).await?;
    let w = scope
        .repo::<Workflow>()
        .update(w.id, &Update::new().set("status", "paused"))
        .await?;
    engine(&state).pause_enrollments(scope, w.id).await?;
    Ok(ApiJson(w))
}

/// Copies a workflow as a draft named "<name> (Copy)", with new step ids and every
/// `nextStepIds` pointing at the new ids (the original left them pointing at the old ones).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/clone",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 201, description = "The copy", body = Object),
        (status = 403, description = "The role may not create workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn clone_workflow(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::Create)?;
    let src = workflow_of(scope, &id).await?;
    let mut w = Workflow::new(scope.id(), member.user.id, "");
    let name: String = format!("{} (Copy)", src.name)
        .chars()
        .take(validate::NAME_MAX)
        .collect();
    w.name = name;
    w.description = src.description.clone();
    w.trigger_entity_type = src.trigger_entity_type;
    w.enrollment_criteria = src.enrollment_criteria.clone();
    w.allow_reenrollment = src.allow_reenrollment;
    w.goal_criteria = src.goal_criteria.clone();
    let ids: HashMap<String, String> = src
        .steps
        .iter()
        .map(|s| (s.id.clone(), format!("step-{}", ObjectId::new().to_hex())))
        .collect();
    w.steps = src
        .steps
        .iter()
        .map(|s| {
            let mut n = s.clone();
            n.id = ids.get(&s.id).cloned().unwrap_or_else(|| s.id.clone());
            n.next_step_ids = s
                .next_step_ids
                .iter()
                .map(|x| ids.get(x).cloned().unwrap_or_else(|| x.clone()))
                .collect();
            n
        })
        .collect();
    validate::workflow(&w)?;
    let w = scope.repo::<Workflow>().insert(&w).await?;
    Ok((StatusCode::CREATED, ApiJson(w)).into_response())
}

/// Enrolls one record by hand (behaviour 46): the workflow must be active and of the record's
/// type; the record must be in this workspace.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/enroll",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    request_body = EnrollBody,
    responses(
        (status = 201, description = "The enrollment", body = Object),
        (status = 403, description = "The role may not edit workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow or record in this workspace",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The record has a live enrollment and the workflow does \
            not allow re-enrollment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The workflow is not active or is of another entity type",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn enroll(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<EnrollBody>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let w = workflow_of(scope, &id).await?;
    let et = entity_type(&req.entity_type, "entityType")?;
    if w.status != WorkflowStatus::Active {
        return Err(Error::invalid("status", "the workflow is not active").into());
    }
    if et != w.trigger_entity_type {
        return Err(Error::invalid(
            "entityType",
            format!(
                "this workflow enrolls {} records",
                w.trigger_entity_type.as_str()
            ),
        )
        .into());
    }
    let entity = ObjectId::parse_str(&req.entity_id).map_err(|_| Error::NotFound)?;
    load_record(scope, et, entity).await?;
    let how = Enroll::manual(Some(member.user.id), source(&member));
    let out = engine(&state).enroll(scope, &w, et, entity, how).await?;
    Ok((StatusCode::CREATED, ApiJson(out.enrollment)).into_response())
}

fn source(member: &Member) -> EnrollmentSource {
    if member.user.api_key.is_some() {
        EnrollmentSource::Api
    } else {
        EnrollmentSource::Manual
    }
}

/// Enrolls many records of the workflow's type; each id is reported on its own.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/enroll-bulk",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    request_body = EnrollBulkBody,
    responses(
        (status = 200, description = "Per id: changed (enrolled), unchanged (already enrolled) or notFound",
            body = BulkEnrollReport),
        (status = 403, description = "The role may not edit workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The workflow is not active, or no ids or more than 500",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn enroll_bulk(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<EnrollBulkBody>,
) -> ApiResult<ApiJson<BulkEnrollReport>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let w = workflow_of(scope, &id).await?;
    if req.entity_ids.is_empty() || req.entity_ids.len() > BULK_MAX {
        return Err(Error::invalid("entityIds", "1 to 500 ids").into());
    }
    if w.status != WorkflowStatus::Active {
        return Err(Error::invalid("status", "the workflow is not active").into());
    }
    let engine = engine(&state);
    let et = w.trigger_entity_type;
    let mut report = BulkEnrollReport {
        matched: 0,
        changed: 0,
        results: Vec::with_capacity(req.entity_ids.len()),
    };
    for raw in &req.entity_ids {
        let item = |outcome, e: Option<&WorkflowEnrollment>| BulkEnrollItem {
            id: raw.clone(),
            outcome,
            enrollment_id: e.map(|e| e.id.to_string()),
        };
        let Ok(entity) = ObjectId::parse_str(raw) else {
            report.results.push(item("notFound", None));
            continue;
        };
        match load_record(scope, et, entity).await {
            Err(Error::NotFound) => {
                report.results.push(item("notFound", None));
                continue;
            }
            other => other?,
        };
        report.matched += 1;
        let how = Enroll::manual(Some(member.user.id), source(&member));
        match engine.enroll(scope, &w, et, entity, how).await {
            Ok(out) => {
                report.changed += 1;
                report.results.push(item("changed", Some(&out.enrollment)));
            }
            Err(Error::Conflict { .. }) => report.results.push(item("unchanged", None)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ApiJson(report))
}

/// A workflow's enrollments, newest first, each with its step log (`stepsExecuted`: inputs,
/// results, errors, timings).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/enrollments",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id"), ListParams, EnrollmentFilters),
    responses(
        (status = 200, description = "`{enrollments, pagination}`", body = Object),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_enrollments(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<EnrollmentFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    let w = workflow_of(scope, &id).await?;
    if p.search.is_some() {
        return Err(Error::invalid("search", "enrollments have no text search").into());
    }
    let mut filter = p
        .base_filter()
        .and(Filter::eq("workflowId", w.id.to_string()));
    if let Some(x) = status_filter::<EnrollmentStatus>(f.status.as_deref(), "status")? {
        filter = filter.and(x);
    }
    let sort = p.sort(ENROLLMENT_SORTABLE, &[SortKey::desc("createdAt")])?;
    let body = list_without_expand(
        scope.repo::<WorkflowEnrollment>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "enrollments",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// Runs a failed enrollment's failed step again.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/enrollments/{enrollmentId}/retry",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id"),
        ("enrollmentId" = String, Path, description = "The enrollment id")),
    responses(
        (status = 200, description = "The enrollment, active again", body = Object),
        (status = 403, description = "The role may not edit workflows", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workflow or enrollment", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The record has another live enrollment, or the \
            enrollment changed meanwhile", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The enrollment has not failed or the workflow is not \
            active", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn retry_enrollment(
    State(state): State<AppState>,
    member: Member,
    Path((_, id, eid)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<WorkflowEnrollment>> {
    let scope = member.can(Resource::Workflows, Action::Edit)?;
    let w = workflow_of(scope, &id).await?;
    let eid: WorkflowEnrollmentId = path_id(&eid)?;
    let e = scope.repo::<WorkflowEnrollment>().get(eid).await?;
    if e.workflow_id != w.id {
        return Err(Error::NotFound.into());
    }
    Ok(ApiJson(engine(&state).retry(scope, &w, &e).await?))
}

/// The enrollments of one record, each with its workflow's name and status.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/workflows/entity/{entityType}/{entityId}/workflows",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("entityType" = String, Path, description = "contact, deal or company"),
        ("entityId" = String, Path, description = "The record id")),
    responses(
        (status = 200, description = "`{enrollments: [{..., workflow: {_id, name, status}}]}`",
            body = Object),
        (status = 404, description = "No such record in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn entity_workflows(
    member: Member,
    Path((_, et, eid)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    let et = EntityType::parse(&et).ok_or(Error::NotFound)?;
    let entity = ObjectId::parse_str(&eid).map_err(|_| Error::NotFound)?;
    load_record(scope, et, entity).await?;
    let f = Filter::eq("entityType", et.as_str()).and(Filter::eq("entityId", entity.to_hex()));
    let opts = crm_core::FindOptions {
        sort: vec![SortKey::desc("createdAt")],
        limit: Some(500),
        ..Default::default()
    };
    let es = scope.repo::<WorkflowEnrollment>().find(&f, &opts).await?;
    let ids: Vec<Value> = es
        .iter()
        .map(|e| json!(e.workflow_id.to_string()))
        .collect();
    let wfs = scope
        .repo::<Workflow>()
        .find(&Filter::In("_id".into(), ids), &Default::default())
        .await?;
    let by: HashMap<WorkflowId, &Workflow> = wfs.iter().map(|w| (w.id, w)).collect();
    let items = es
        .iter()
        .map(|e| {
            let mut v = to_json(e)?;
            if let (Some(o), Some(w)) = (v.as_object_mut(), by.get(&e.workflow_id)) {
                o.insert(
                    "workflow".into(),
                    json!({"_id": w.id.to_string(), "name": w.name, "status": w.status}),
                );
            }
            Ok(v)
        })
        .collect::<ApiResult<Vec<Value>>>()?;
    Ok(ApiJson(json!({ "enrollments": items })))
}

/// Counters and enrollments by status.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/analytics",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 200, description = "Stats and counts", body = WorkflowAnalytics),
        (status = 404, description = "No such workflow in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn workflow_analytics(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<WorkflowAnalytics>> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    let w = workflow_of(scope, &id).await?;
    let repo = scope.repo::<WorkflowEnrollment>();
    let all = [
        EnrollmentStatus::Active,
        EnrollmentStatus::Processing,
        EnrollmentStatus::Completed,
        EnrollmentStatus::GoalMet,
        EnrollmentStatus::Failed,
        EnrollmentStatus::Cancelled,
        EnrollmentStatus::Paused,
        EnrollmentStatus::Retrying,
        EnrollmentStatus::WaitingForEvent,
    ];
    let mut by_status = HashMap::new();
    let mut total = 0;
    for s in all {
        let n = repo
            .count(
                &Filter::eq("workflowId", w.id.to_string()).and(Filter::eq("status", s.as_str())),
            )
            .await?;
        total += n;
        by_status.insert(s.as_str(), n);
    }
    let done = by_status["completed"] + by_status["goal_met"];
    let finished = done + by_status["failed"] + by_status["cancelled"];
    Ok(ApiJson(WorkflowAnalytics {
        workflow_id: w.id.to_string(),
        stats: w.stats,
        by_status,
        total_enrollments: total,
        completion_rate: if finished == 0 {
            0.0
        } else {
            (done as f64 * 1000.0 / finished as f64).round() / 10.0
        },
    }))
}

/// Evaluates the workflow against one record without side effects: whether it would enroll,
/// the path it would take and the actions it would run with their resolved inputs.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/workflows/{id}/dry-run",
    tag = "workflows",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The workflow id")),
    request_body = EnrollBody,
    responses(
        (status = 200, description = "`{enrollmentCriteriaMatched, goalMet, path, actions}`",
            body = Object),
        (status = 404, description = "No such workflow or record in this workspace",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown entity type", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn dry_run(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<EnrollBody>,
) -> ApiResult<ApiJson<DryRun>> {
    let scope = member.can(Resource::Workflows, Action::View)?;
    let w = workflow_of(scope, &id).await?;
    let et = entity_type(&req.entity_type, "entityType")?;
    let entity = ObjectId::parse_str(&req.entity_id).map_err(|_| Error::NotFound)?;
    Ok(ApiJson(
        engine(&state).dry_run(scope, &w, et, entity).await?,
    ))
}
