//! AI memory (recall, facts) and the other AI records under `Resource::Ai` (ADR 0023). The
//! rules live in the `ai-memory` crate; the plain records are served by `crate::crud`.

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ai_memory::agents::{
    AINotification, Agent, AgentCopilotConversation, AgentExecution, AgentInsight, AgentMemoryData,
    AgentPerformance, AgentSession, AgentTestRun, BusinessProfile, ChatMessage, Conversation,
    Meeting,
};
use ai_memory::memory::{
    self, AIClientMemory, DEFAULT_RECALL_LIMIT, Interaction, MAX_RECALL_LIMIT, NewFact, Outcome,
    Provenance, Recalled, Subject,
};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::contact::Contact;
use crm_core::repo::{Actor, WorkspaceScope};
use crm_core::{Error, Filter, ObjectId};

use crate::auth::Member;
use crate::crud::{Crud, crud_routes};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

const TAG: &str = "ai";

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let r = r
        .routes(routes!(recall))
        .routes(routes!(get_memory))
        .routes(routes!(upsert_fact))
        .routes(routes!(record_interaction))
        .routes(routes!(delete_fact));
    let r = crud_routes::<AgentSession>(r);
    let r = crud_routes::<AgentPerformance>(r);
    let r = crud_routes::<AgentInsight>(r);
    let r = crud_routes::<AINotification>(r);
    let r = crud_routes::<Conversation>(r);
    let r = crud_routes::<ChatMessage>(r);
    let r = crud_routes::<Meeting>(r);
    let r = crud_routes::<BusinessProfile>(r);
    let r = crud_routes::<Agent>(r);
    let r = crud_routes::<AgentExecution>(r);
    let r = crud_routes::<AgentTestRun>(r);
    let r = crud_routes::<AgentMemoryData>(r);
    crud_routes::<AgentCopilotConversation>(r)
}

/// Names the record a memory is about: exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SubjectParams {
    /// A contact of the workspace.
    pub contact_id: Option<String>,
    /// A company of the workspace.
    pub company_id: Option<String>,
    /// A deal (opportunity) of the workspace.
    pub deal_id: Option<String>,
}

impl SubjectParams {
    fn subject(&self) -> Result<Subject, Error> {
        let parse = |field: &str, raw: &str| {
            raw.parse::<ObjectId>()
                .map_err(|_| Error::invalid(field, "must be an id"))
        };
        match (&self.contact_id, &self.company_id, &self.deal_id) {
            (Some(c), None, None) => Ok(Subject::Contact(parse("contactId", c)?.into())),
            (None, Some(c), None) => Ok(Subject::Company(parse("companyId", c)?.into())),
            (None, None, Some(d)) => Ok(Subject::Deal(parse("dealId", d)?.into())),
            _ => Err(Error::invalid(
                "contactId",
                "name exactly one of contactId, companyId, dealId",
            )),
        }
    }

    /// The subject, checked to exist in this workspace (422 otherwise).
    async fn checked(&self, scope: &WorkspaceScope) -> Result<Subject, Error> {
        let s = self.subject()?;
        s.check_exists(scope).await?;
        Ok(s)
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RecallParams {
    /// Free text; facts sharing more of its words rank higher.
    pub q: Option<String>,
    /// 1 to 100 (default 10).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecallAnswer {
    /// contact, company or deal.
    pub entity_type: String,
    pub entity_id: String,
    pub query: String,
    /// Best first; each with `score` and `scoreParts {relevance, confidence, recency}`.
    #[schema(value_type = Vec<Object>)]
    pub facts: Vec<Recalled>,
}

/// Recalls what agents learned about a contact, company or deal: facts not expired and with
/// confidence >= 40, ranked by relevance to `q` (0.6), confidence (0.25) and recency (0.15).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/ai-memory/recall",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), SubjectParams,
        RecallParams),
    responses(
        (status = 200, description = "The ranked facts", body = RecallAnswer),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Not exactly one subject, or none in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn recall(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(s): ApiQuery<SubjectParams>,
    ApiQuery(p): ApiQuery<RecallParams>,
) -> ApiResult<ApiJson<RecallAnswer>> {
    let scope = member.can(Resource::Ai, Action::View)?;
    let limit = p.limit.unwrap_or(DEFAULT_RECALL_LIMIT);
    if !(1..=MAX_RECALL_LIMIT).contains(&limit) {
        return Err(Error::invalid("limit", "1 to 100").into());
    }
    let subject = s.checked(scope).await?;
    let query = p.q.unwrap_or_default();
    let now = state.stores.clock().now();
    let facts = memory::recall(scope, subject, &query, limit, now).await?;
    Ok(ApiJson(RecallAnswer {
        entity_type: entity_type_name(subject).to_owned(),
        entity_id: subject.id().to_hex(),
        query,
        facts,
    }))
}

fn entity_type_name(s: Subject) -> &'static str {
    match s {
        Subject::Contact(_) => "contact",
        Subject::Company(_) => "company",
        Subject::Deal(_) => "deal",
    }
}

/// The memory without its expired facts.
fn live(mut m: AIClientMemory, now: crm_core::Timestamp) -> AIClientMemory {
    m.facts.retain(|f| !f.expired(now));
    m
}

/// The memory of a contact, company or deal (expired facts left out).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/ai-memory",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), SubjectParams),
    responses(
        (status = 200, description = "The AIClientMemory record", body = Object),
        (status = 404, description = "No such workspace, or nothing remembered yet",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not exactly one subject, or none in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_memory(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(s): ApiQuery<SubjectParams>,
) -> ApiResult<ApiJson<AIClientMemory>> {
    let scope = member.can(Resource::Ai, Action::View)?;
    let subject = s.checked(scope).await?;
    let m = memory::find(scope, subject).await?.ok_or(Error::NotFound)?;
    Ok(ApiJson(live(m, state.stores.clock().now())))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FactBody {
    pub contact_id: Option<String>,
    pub company_id: Option<String>,
    pub deal_id: Option<String>,
    /// 1 to 100 characters, e.g. `budget_range`; a fact of the same key is confirmed.
    pub key: String,
    /// 1 to 2000 characters.
    pub value: String,
    /// 0 to 100 (default 50); a confirmation keeps the higher.
    pub confidence: Option<f64>,
    /// Where it was learned, e.g. `email`, `call`, `manual`.
    pub source: String,
    /// Which agent, from what record.
    #[schema(value_type = Option<Object>)]
    pub provenance: Option<Provenance>,
    /// After this many seconds the fact is never recalled.
    pub ttl_seconds: Option<i64>,
}

/// Teaches a fact (upsert by key: confirmedCount + 1, confidence the higher).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/ai-memory/facts",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = FactBody,
    responses(
        (status = 200, description = "The memory with the fact", body = Object),
        (status = 403, description = "The role may not teach facts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Another write to this memory won every retry",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or a subject not in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn upsert_fact(
    State(state): State<AppState>,
    member: Member,
    ApiJson(b): ApiJson<FactBody>,
) -> ApiResult<ApiJson<AIClientMemory>> {
    let scope = member.can(Resource::Ai, Action::Create)?;
    let subject = SubjectParams {
        contact_id: b.contact_id,
        company_id: b.company_id,
        deal_id: b.deal_id,
    }
    .checked(scope)
    .await?;
    let now = state.stores.clock().now();
    let m = memory::upsert_fact(
        scope,
        subject,
        NewFact {
            key: b.key,
            value: b.value,
            confidence: b.confidence,
            source: b.source,
            provenance: b.provenance,
            ttl_secs: b.ttl_seconds,
        },
        now,
    )
    .await?;
    Ok(ApiJson(live(m, now)))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InteractionBody {
    pub contact_id: Option<String>,
    pub company_id: Option<String>,
    pub deal_id: Option<String>,
    /// Which agent answered, e.g. `sales`.
    pub agent_type: String,
    /// What was asked, up to 500 characters.
    pub query: Option<String>,
    /// 1 to 1000 characters.
    pub summary: String,
    /// positive, neutral (default) or negative.
    #[schema(value_type = Option<String>)]
    pub outcome: Option<Outcome>,
    /// Up to 500 characters.
    pub lessons_learned: Option<String>,
    /// -1 to 1.
    pub feedback_score: Option<f64>,
}

/// Records an agent interaction (the memory keeps the last 50, with totals).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/ai-memory/interactions",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = InteractionBody,
    responses(
        (status = 200, description = "The memory with the interaction", body = Object),
        (status = 403, description = "The role may not record interactions", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Another write to this memory won every retry",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or a subject not in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn record_interaction(
    State(state): State<AppState>,
    member: Member,
    ApiJson(b): ApiJson<InteractionBody>,
) -> ApiResult<ApiJson<AIClientMemory>> {
    let scope = member.can(Resource::Ai, Action::Create)?;
    let subject = SubjectParams {
        contact_id: b.contact_id,
        company_id: b.company_id,
        deal_id: b.deal_id,
    }
    .checked(scope)
    .await?;
    let now = state.stores.clock().now();
    let m = memory::record_interaction(
        scope,
        subject,
        Interaction {
            date: now,
            agent_type: b.agent_type,
            query: b.query,
            summary: b.summary,
            outcome: b.outcome.unwrap_or_default(),
            lessons_learned: b.lessons_learned,
            feedback_score: b.feedback_score,
        },
    )
    .await?;
    Ok(ApiJson(live(m, now)))
}

/// Forgets one fact.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/ai-memory/facts/{key}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("key" = String, Path, description = "The fact's key"), SubjectParams),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 403, description = "The role may not delete facts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or fact", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Another write to this memory won every retry",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not exactly one subject, or none in this workspace",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_fact(
    member: Member,
    Path((_, key)): Path<(String, String)>,
    ApiQuery(s): ApiQuery<SubjectParams>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Ai, Action::Delete)?;
    let subject = s.checked(scope).await?;
    memory::delete_fact(scope, subject, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Plain records ---------------------------------------------------------------------------

/// 422 on `field` unless a record of `E` with `id` exists in this workspace.
async fn exists<E: crm_core::repo::WorkspaceEntity>(
    scope: &WorkspaceScope,
    field: &str,
    id: ObjectId,
) -> crm_core::Result<()> {
    match scope.repo::<E>().get(id).await {
        Ok(_) => Ok(()),
        Err(Error::NotFound) => Err(Error::invalid(field, "no such record in this workspace")),
        Err(e) => Err(e),
    }
}

fn user_of(actor: Actor) -> Option<crm_core::UserId> {
    actor.user()
}

#[async_trait]
impl Crud for AgentSession {
    const PATH: &'static str = "agent-sessions";
    const PLURAL: &'static str = "sessions";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["userId", "sessionId"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for AgentPerformance {
    const PATH: &'static str = "agent-performance";
    const PLURAL: &'static str = "records";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["agentType", "userId", "actionTaken"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for AgentInsight {
    const PATH: &'static str = "agent-insights";
    const PLURAL: &'static str = "insights";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] =
        &["userId", "contextType", "contextId", "agentType", "status"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for AINotification {
    const PATH: &'static str = "ai-notifications";
    const PLURAL: &'static str = "notifications";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["userId", "type", "priority", "status"];
}

#[async_trait]
impl Crud for Conversation {
    const PATH: &'static str = "conversations";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["visitorId", "contactId", "status", "assignedTo"];
    async fn check(scope: &WorkspaceScope, c: &Self) -> crm_core::Result<()> {
        if let Some(id) = c.contact_id {
            exists::<Contact>(scope, "contactId", id).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Crud for ChatMessage {
    const PATH: &'static str = "chat-messages";
    const PLURAL: &'static str = "messages";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["conversationId", "isRead"];
    async fn check(scope: &WorkspaceScope, m: &Self) -> crm_core::Result<()> {
        exists::<Conversation>(scope, "conversationId", m.conversation_id.0).await
    }
}

#[async_trait]
impl Crud for Meeting {
    const PATH: &'static str = "meetings";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["contactId", "hostUserId", "status", "schedulerId"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "scheduledAt"];
    async fn check(scope: &WorkspaceScope, m: &Self) -> crm_core::Result<()> {
        if let Some(id) = m.contact_id {
            exists::<Contact>(scope, "contactId", id).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Crud for BusinessProfile {
    const PATH: &'static str = "business-profiles";
    const PLURAL: &'static str = "profiles";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    /// One per workspace, as the original's unique `{workspace}`.
    async fn check(scope: &WorkspaceScope, p: &Self) -> crm_core::Result<()> {
        let others = Filter::eq("_id", p.id.to_string()).negate();
        if scope.repo::<BusinessProfile>().count(&others).await? > 0 {
            return Err(Error::conflict("workspace"));
        }
        Ok(())
    }
}

#[async_trait]
impl Crud for Agent {
    const PATH: &'static str = "agents";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status", "createdBy"];
    const SERVER_FIELDS: &'static [&'static str] = &["createdBy"];
    fn on_create(&mut self, actor: Actor) {
        self.created_by = user_of(actor);
    }
}

#[async_trait]
impl Crud for AgentExecution {
    const PATH: &'static str = "agent-executions";
    const PLURAL: &'static str = "executions";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["agent", "status", "linkedTestRunId"];
    async fn check(scope: &WorkspaceScope, e: &Self) -> crm_core::Result<()> {
        exists::<Agent>(scope, "agent", e.agent.0).await
    }
}

#[async_trait]
impl Crud for AgentTestRun {
    const PATH: &'static str = "agent-test-runs";
    const PLURAL: &'static str = "testRuns";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["agent"];
    async fn check(scope: &WorkspaceScope, e: &Self) -> crm_core::Result<()> {
        exists::<Agent>(scope, "agent", e.agent.0).await
    }
}

#[async_trait]
impl Crud for AgentMemoryData {
    const PATH: &'static str = "agent-memory";
    const PLURAL: &'static str = "memory";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["agent", "key"];
    async fn check(scope: &WorkspaceScope, e: &Self) -> crm_core::Result<()> {
        exists::<Agent>(scope, "agent", e.agent.0).await
    }
}

#[async_trait]
impl Crud for AgentCopilotConversation {
    const PATH: &'static str = "agent-copilot-conversations";
    const PLURAL: &'static str = "conversations";
    const RESOURCE: Resource = Resource::Ai;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["agent", "user"];
    async fn check(scope: &WorkspaceScope, e: &Self) -> crm_core::Result<()> {
        exists::<Agent>(scope, "agent", e.agent.0).await
    }
}
