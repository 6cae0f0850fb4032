//! Pipelines and their embedded stages, and the kanban board of a pipeline. Rules live in
//! `crm_core::services::pipelines`; pipelines fall under the `Deals` permission.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::pipeline::{Pipeline, PipelineId, StageId};
use crm_core::repo::to_document;
use crm_core::services::opportunities::{self as deals, KANBAN_PER_STAGE};
use crm_core::services::pipelines::{
    self as svc, CreatePipeline, PatchPipeline, PatchStage, ReorderStages, StageInput,
};
use crm_core::{Error, Filter, SortKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListBody, ListParams, list_without_expand};
use crate::state::AppState;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_pipeline, list_pipelines))
        .routes(routes!(get_pipeline, patch_pipeline, delete_pipeline))
        .routes(routes!(add_stage))
        .routes(routes!(patch_stage, delete_stage))
        .routes(routes!(reorder_stages))
        .routes(routes!(get_kanban))
}

/// Pipelines list 50 per page by default, as in the original.
const LIST_LIMIT: u64 = 50;

/// A stage embedded in a pipeline.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Stage)]
#[serde(rename_all = "camelCase")]
pub struct StageDoc {
    #[serde(rename = "_id")]
    pub id: String,
    /// At most 50 characters.
    pub name: String,
    /// Position, `0..n-1`.
    pub order: u32,
    /// `#RRGGBB`.
    pub color: String,
    /// `won` or `lost`: deals entering the stage take that status. Absent for open stages.
    #[schema(nullable = false)]
    pub outcome: Option<String>,
}

/// A pipeline with its stages in order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Pipeline)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub workspace_id: String,
    /// Its creator.
    pub user_id: String,
    pub name: String,
    #[schema(nullable = false)]
    pub description: Option<String>,
    pub stages: Vec<StageDoc>,
    /// Exactly one active pipeline per workspace is the default.
    pub is_default: bool,
    /// `false` once archived.
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineList {
    pub pipelines: Vec<PipelineDoc>,
    /// `{page, limit, total, pages}` or `{limit, nextCursor}`.
    pub pagination: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = StageInput)]
#[serde(rename_all = "camelCase")]
pub struct StageInputDoc {
    /// 1 to 50 characters.
    pub name: String,
    /// `#RRGGBB`, default `#6B7280`.
    pub color: Option<String>,
    /// Position; the end when absent.
    pub order: Option<u32>,
    /// `won` or `lost`.
    pub outcome: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CreatePipeline)]
#[serde(rename_all = "camelCase")]
pub struct CreatePipelineDoc {
    /// 1 to 100 characters.
    pub name: String,
    /// At most 500 characters.
    pub description: Option<String>,
    /// 1 to 20 stages; absent: Lead, Qualified, Proposal, Negotiation, Closed Won (won),
    /// Closed Lost (lost).
    pub stages: Option<Vec<StageInputDoc>>,
    /// The workspace's first pipeline is always the default.
    pub is_default: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PatchPipeline)]
#[serde(rename_all = "camelCase")]
pub struct PatchPipelineDoc {
    pub name: Option<String>,
    /// `null` clears it.
    pub description: Option<String>,
    /// Only `true` (the default moves by setting another pipeline).
    pub is_default: Option<bool>,
    /// `false` archives (refused while deals use it), `true` restores.
    pub is_active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PatchStage)]
#[serde(rename_all = "camelCase")]
pub struct PatchStageDoc {
    pub name: Option<String>,
    pub color: Option<String>,
    /// `won`, `lost`, or `null` for an open stage.
    pub outcome: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReorderStages)]
#[serde(rename_all = "camelCase")]
pub struct ReorderStagesDoc {
    /// Every stage id of the pipeline exactly once, in the new order.
    pub stage_order: Vec<String>,
}

/// One kanban column: a stage with its deal count, value total and newest deals.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KanbanColumn)]
#[serde(rename_all = "camelCase")]
pub struct KanbanColumnDoc {
    pub stage: StageDoc,
    /// Every live deal in the stage.
    pub count: u64,
    /// Sum of their `value` (currencies are not converted).
    pub total_value: f64,
    /// Newest first, at most `perStage`.
    #[schema(value_type = Vec<Object>)]
    pub opportunities: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Kanban)]
pub struct KanbanDoc {
    pub pipeline: PipelineDoc,
    pub columns: Vec<KanbanColumnDoc>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PipelineFilters {
    /// `false` lists archived pipelines instead of active ones.
    pub is_active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct KanbanParams {
    /// Deals listed per stage, 1 to 200 (default 50); counts and totals cover all.
    pub per_stage: Option<u64>,
}

pub(crate) fn doc<E: Serialize>(e: &E) -> ApiResult<Value> {
    Ok(Value::Object(to_document(e)?))
}

fn parse_pipeline(id: &str) -> Result<PipelineId, Error> {
    id.parse().map_err(|_| Error::NotFound)
}

fn parse_stage(id: &str) -> Result<StageId, Error> {
    id.parse().map_err(|_| Error::NotFound)
}

/// A pipeline or stage deals still use answers 409 with a detail saying so (the generic conflict
/// text speaks of duplicate keys).
fn in_use(e: Error, what: &str) -> ApiResult<Response> {
    match e {
        Error::Conflict { key } if key == "pipelineId" || key == "stageId" => Ok(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
        )
        .detail(format!(
            "Opportunities (trashed ones too) still use this {what}; move or purge them first."
        ))
        .field(key)
        .into_response()),
        other => Err(other.into()),
    }
}

/// Creates a pipeline; the workspace's first one becomes its default.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/pipelines",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreatePipelineDoc,
    responses(
        (status = 201, description = "Created", body = PipelineDoc),
        (status = 403, description = "The role may not create deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, stages or colours", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_pipeline(
    member: Member,
    ApiJson(cmd): ApiJson<CreatePipeline>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::Create)?;
    let p = svc::create(scope, member.user.id, cmd).await?;
    Ok((StatusCode::CREATED, ApiJson(doc(&p)?)).into_response())
}

/// Active pipelines (archived ones with `isActive=false`), newest first by default.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/pipelines",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        PipelineFilters),
    responses(
        (status = 200, description = "A page of pipelines", body = PipelineList),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_pipelines(
    member: Member,
    ApiQuery(params): ApiQuery<ListParams>,
    ApiQuery(filters): ApiQuery<PipelineFilters>,
) -> ApiResult<ApiJson<ListBody>> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let sort = params.sort(
        &["createdAt", "updatedAt", "name"],
        &[SortKey::desc("createdAt")],
    )?;
    let filter = params
        .base_filter()
        .and(Filter::eq("isActive", filters.is_active.unwrap_or(true)));
    let repo = scope.repo::<Pipeline>();
    let body = list_without_expand(repo, &params, &filter, &sort, LIST_LIMIT, "pipelines").await?;
    Ok(ApiJson(body))
}

/// One pipeline (archived ones too).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id")),
    responses(
        (status = 200, description = "The pipeline", body = PipelineDoc),
        (status = 404, description = "No such workspace or pipeline", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_pipeline(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let p = svc::get(scope, parse_pipeline(&id)?).await?;
    Ok(ApiJson(doc(&p)?))
}

/// Renames, describes, makes default, archives (`isActive: false`) or restores a pipeline.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id")),
    request_body = PatchPipelineDoc,
    responses(
        (status = 200, description = "The updated pipeline", body = PipelineDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or pipeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Archiving a pipeline deals still use", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_pipeline(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(cmd): ApiJson<PatchPipeline>,
) -> ApiResult<Response> {
    let action = if cmd.is_active == Some(false) {
        Action::Delete
    } else {
        Action::Edit
    };
    let scope = member.can(Resource::Deals, action)?;
    match svc::patch(scope, parse_pipeline(&id)?, cmd).await {
        Ok(p) => Ok(ApiJson(doc(&p)?).into_response()),
        Err(e) => in_use(e, "pipeline"),
    }
}

/// Archives a pipeline (the original's delete); refused with 409 while deals use it.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id")),
    responses(
        (status = 204, description = "Archived"),
        (status = 403, description = "The role may not delete deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or pipeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Deals still use the pipeline", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_pipeline(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::Delete)?;
    match svc::archive(scope, parse_pipeline(&id)?).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => in_use(e, "pipeline"),
    }
}

/// Adds a stage (at `order`, else at the end); at most 20.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}/stages",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id")),
    request_body = StageInputDoc,
    responses(
        (status = 201, description = "The pipeline with the new stage", body = PipelineDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or pipeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid stage, or 20 stages already", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn add_stage(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<StageInput>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let (p, _) = svc::add_stage(scope, parse_pipeline(&id)?, input).await?;
    Ok((StatusCode::CREATED, ApiJson(doc(&p)?)).into_response())
}

/// Renames or recolours a stage, or marks it won/lost/open.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}/stages/{stageId}",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id"),
        ("stageId" = String, Path, description = "The stage id")),
    request_body = PatchStageDoc,
    responses(
        (status = 200, description = "The updated pipeline", body = PipelineDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, pipeline or stage", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_stage(
    member: Member,
    Path((_, id, stage)): Path<(String, String, String)>,
    ApiJson(cmd): ApiJson<PatchStage>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let p = svc::patch_stage(scope, parse_pipeline(&id)?, parse_stage(&stage)?, cmd).await?;
    Ok(ApiJson(doc(&p)?))
}

/// Deletes a stage: 409 while deals sit in it (move them first), 422 for the last stage.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}/stages/{stageId}",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id"),
        ("stageId" = String, Path, description = "The stage id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The role may not delete deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, pipeline or stage", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Deals are in the stage", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The last stage", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_stage(
    member: Member,
    Path((_, id, stage)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Deals, Action::Delete)?;
    match svc::delete_stage(scope, parse_pipeline(&id)?, parse_stage(&stage)?).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => in_use(e, "stage"),
    }
}

/// Reorders the stages; `stageOrder` must list every stage id exactly once (422 otherwise).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}/stages/reorder",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id")),
    request_body = ReorderStagesDoc,
    responses(
        (status = 200, description = "The reordered pipeline", body = PipelineDoc),
        (status = 403, description = "The role may not edit deals", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or pipeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Not a permutation of the stages", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn reorder_stages(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(cmd): ApiJson<ReorderStages>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Deals, Action::Edit)?;
    let p = svc::reorder(scope, parse_pipeline(&id)?, cmd).await?;
    Ok(ApiJson(doc(&p)?))
}

/// The kanban board: stages in order, each with its deal count and value total (one
/// aggregation) and its newest deals.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/pipelines/{pipelineId}/kanban",
    tag = "pipelines",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("pipelineId" = String, Path, description = "The pipeline id"), KanbanParams),
    responses(
        (status = 200, description = "The board", body = KanbanDoc),
        (status = 404, description = "No such workspace or pipeline", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad perStage", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_kanban(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<KanbanParams>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Deals, Action::View)?;
    let board = deals::kanban(
        scope,
        parse_pipeline(&id)?,
        q.per_stage.unwrap_or(KANBAN_PER_STAGE),
    )
    .await?;
    let columns = board
        .columns
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("stage".into(), doc(&c.stage)?);
            m.insert("count".into(), Value::from(c.count));
            m.insert("totalValue".into(), Value::from(c.total_value));
            m.insert(
                "opportunities".into(),
                Value::Array(c.opportunities.iter().map(doc).collect::<ApiResult<_>>()?),
            );
            Ok(Value::Object(m))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let mut out = Map::new();
    out.insert("pipeline".into(), doc(&board.pipeline)?);
    out.insert("columns".into(), Value::Array(columns));
    Ok(ApiJson(Value::Object(out)))
}
