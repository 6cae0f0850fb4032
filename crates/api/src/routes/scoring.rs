//! Lead scores, intent, lifecycle stages and lead recycling. The rules live in
//! `automation::scoring`. Scores, signals and stages are contact data, so the role table's
//! `Contacts` row governs them (ADR 0021): viewers read, members score, track and move stages,
//! admins also run decay and skip the transition table.

use automation::scoring::intent::{self, SignalType, Track};
use automation::scoring::lead::{self, Grade, LeadScore};
use automation::scoring::lifecycle::{self, TransitionRequest};
use automation::scoring::recycling::{
    self, LeadRecycling, LeadRecyclingId, RecyclingPatch, RecyclingStatus,
};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::services::tasks::{ensure_member, nullable};
use crm_core::{Error, Filter, SortKey, Timestamp, UserId};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_scores))
        .routes(routes!(top_scores))
        .routes(routes!(score_distribution))
        .routes(routes!(run_decay))
        .routes(routes!(get_score, score_contact))
        .routes(routes!(explain_score))
        .routes(routes!(track_intent))
        .routes(routes!(hot_leads))
        .routes(routes!(contact_intent))
        .routes(routes!(intent_analytics))
        .routes(routes!(transition))
        .routes(routes!(lifecycle_history))
        .routes(routes!(lifecycle_funnel))
        .routes(routes!(sla_breaches))
        .routes(routes!(list_recycling))
        .routes(routes!(get_recycling, patch_recycling))
}

fn now(state: &AppState) -> Timestamp {
    state.stores.clock().now()
}

fn contact(raw: &str) -> Result<ContactId, Error> {
    path_id(raw)
}

// ---------------------------------------------------------------- lead scores

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ScoreFilters {
    /// A, B, C, D or F.
    pub grade: Option<String>,
    /// Scores at or above.
    pub min_score: Option<i64>,
}

const SCORE_SORTABLE: &[&str] = &["currentScore", "lastActivityAt", "updatedAt", "createdAt"];

/// Lead scores, highest first, by grade and minimum score.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        ScoreFilters),
    responses(
        (status = 200, description = "`{leadScores, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_scores(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<ScoreFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let mut filter = Filter::all();
    if let Some(g) = &f.grade {
        filter = filter.and(Filter::eq("grade", Grade::parse(g)?.as_str()));
    }
    if let Some(m) = f.min_score {
        filter = filter.and(Filter::Gte("currentScore".into(), json!(m)));
    }
    let sort = p.sort(SCORE_SORTABLE, &[SortKey::desc("currentScore")])?;
    let body = list_without_expand(
        scope.repo::<LeadScore>(),
        &p,
        &filter,
        &sort,
        20,
        "leadScores",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// 1 to 100, default 10.
    pub limit: Option<u64>,
}

/// The best scores with their contacts' names, emails and companies.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores/top",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), TopParams),
    responses(
        (status = 200, description = "`{leadScores}`, each with `contact`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn top_scores(
    member: Member,
    ApiQuery(q): ApiQuery<TopParams>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("limit", "must be between 1 and 100").into());
    }
    let top = lead::top(scope, limit).await?;
    let contacts = scope.repo::<Contact>();
    let mut out = Vec::with_capacity(top.len());
    for s in top {
        let mut v = serde_json::to_value(&s).map_err(Error::internal)?;
        if let Ok(c) = contacts.get(s.contact_id).await {
            v["contact"] = json!({
                "_id": c.id,
                "firstName": c.first_name,
                "lastName": c.last_name,
                "email": c.email,
                "company": c.company,
            });
        }
        out.push(v);
    }
    Ok(ApiJson(json!({ "leadScores": out })))
}

/// How many scores have each grade.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores/distribution",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{distribution: {A, B, C, D, F}, total}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn score_distribution(member: Member) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let d = lead::distribution(scope).await?;
    let total: u64 = d.iter().map(|(_, n)| n).sum();
    let dist: Map<String, Value> = d
        .into_iter()
        .map(|(g, n)| (g.as_str().to_owned(), json!(n)))
        .collect();
    Ok(ApiJson(json!({ "distribution": dist, "total": total })))
}

/// Runs decay now (admins): scores inactive for 30 days lose 10 %, rounded up, once per 30
/// inactive days. The daily job does the same.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores/decay",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{decayed}`: how many scores decayed", body = Object),
        (status = 403, description = "Only admins run decay", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn run_decay(State(state): State<AppState>, member: Member) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::Delete)?;
    let n = lead::apply_decay(scope, now(&state)).await?;
    Ok(ApiJson(json!({ "decayed": n })))
}

/// The contact's score (a contact without one has 0, grade F).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores/{contactId}",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace")),
    responses(
        (status = 200, description = "The lead score", body = Object),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_score(
    State(state): State<AppState>,
    member: Member,
    Path((_, c)): Path<(String, String)>,
) -> ApiResult<ApiJson<LeadScore>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    Ok(ApiJson(
        lead::get_or_create(scope, contact(&c)?, now(&state)).await?,
    ))
}

/// Scores an event of the point table (`{eventType}`), or sets the score (`{points, reason}`:
/// the difference is logged as `manual`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoreRequest {
    /// An event of the point table, e.g. `email_opened`, `demo_requested`.
    pub event_type: Option<String>,
    /// The score to set (0 or more).
    pub points: Option<i64>,
    /// Why (with `points`); up to 500 characters.
    pub reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores/{contactId}",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace")),
    request_body = ScoreRequest,
    responses(
        (status = 200, description = "The lead score after the change", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Changed concurrently too often; retry", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown event, negative points, or neither or both given",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn score_contact(
    State(state): State<AppState>,
    member: Member,
    Path((_, c)): Path<(String, String)>,
    ApiJson(req): ApiJson<ScoreRequest>,
) -> ApiResult<ApiJson<LeadScore>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let c = contact(&c)?;
    let applied = match (req.event_type, req.points) {
        (Some(e), None) => lead::add_event(scope, c, &e, None, now(&state)).await?,
        (None, Some(p)) => {
            let reason = req
                .reason
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "Manual adjustment".to_owned());
            if reason.chars().count() > 500 {
                return Err(Error::invalid("reason", "at most 500 characters").into());
            }
            lead::set_score(scope, c, p, &reason, now(&state)).await?
        }
        _ => {
            return Err(Error::invalid("eventType", "give either eventType or points").into());
        }
    };
    Ok(ApiJson(applied.score))
}

/// Every history entry behind the score, with sums: `earlierPoints + gained + lost + decay`
/// equals the score.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-scores/{contactId}/explain",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace")),
    responses(
        (status = 200, description = "`{contactId, currentScore, grade, entries, earlierPoints, \
            gained, lost, decay, decayedAt, total, unexplained}`", body = Object),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn explain_score(
    State(state): State<AppState>,
    member: Member,
    Path((_, c)): Path<(String, String)>,
) -> ApiResult<ApiJson<lead::Explanation>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let s = lead::get_or_create(scope, contact(&c)?, now(&state)).await?;
    Ok(ApiJson(lead::explain(&s)))
}

// ---------------------------------------------------------------- intent

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackRequest {
    /// A contact of the workspace (or give `visitorId`).
    pub contact_id: Option<String>,
    /// An anonymous visitor (up to 200 characters).
    pub visitor_id: Option<String>,
    /// One of the 34 signals; else it is derived from `download` or `url`.
    pub signal_name: Option<String>,
    /// page_view (default), download, video_watch, form_view, email_click, search, custom.
    #[schema(value_type = Option<String>)]
    pub signal_type: Option<SignalType>,
    /// A page URL (up to 2000 characters).
    pub url: Option<String>,
    /// A downloaded file or asset name.
    pub download: Option<String>,
    pub page_title: Option<String>,
    pub session_id: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

fn bounded(v: &Option<String>, field: &str, max: usize) -> Result<(), Error> {
    if v.as_ref().is_some_and(|s| s.chars().count() > max) {
        return Err(Error::invalid(field, format!("at most {max} characters")));
    }
    Ok(())
}

/// Records a signal and recomputes the contact's intent score; a URL or download that maps to
/// no signal is answered `tracked: false` and stores nothing.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/intent/track",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = TrackRequest,
    responses(
        (status = 200, description = "`{tracked, signal?, score?}`", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown signal, or no contact or visitor", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn track_intent(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<TrackRequest>,
) -> ApiResult<ApiJson<intent::Tracked>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    bounded(&req.visitor_id, "visitorId", 200)?;
    bounded(&req.url, "url", 2000)?;
    bounded(&req.download, "download", 500)?;
    bounded(&req.page_title, "pageTitle", 500)?;
    bounded(&req.session_id, "sessionId", 200)?;
    bounded(&req.source, "source", 200)?;
    if serde_json::to_string(&req.metadata).map_or(0, |s| s.len()) > 10_000 {
        return Err(Error::invalid("metadata", "at most 10000 bytes").into());
    }
    let contact_id = req.contact_id.as_deref().map(contact).transpose()?;
    let t = Track {
        contact_id,
        visitor_id: req.visitor_id,
        signal_name: req.signal_name,
        signal_type: req.signal_type,
        url: req.url,
        download: req.download,
        page_title: req.page_title,
        session_id: req.session_id,
        source: req.source,
        metadata: req.metadata,
    };
    Ok(ApiJson(intent::track(scope, t, now(&state)).await?))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct HotParams {
    /// Default 100.
    pub min_score: Option<f64>,
    /// 1 to 500, default 50.
    pub limit: Option<u64>,
}

/// Contacts whose intent score is at least `minScore`, highest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/intent/hot-leads",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), HotParams),
    responses(
        (status = 200, description = "`{contacts}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or score", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn hot_leads(
    member: Member,
    ApiQuery(q): ApiQuery<HotParams>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("limit", "must be between 1 and 500").into());
    }
    let min = q.min_score.unwrap_or(intent::HOT);
    if !min.is_finite() {
        return Err(Error::invalid("minScore", "must be a number").into());
    }
    let contacts = intent::hot_leads(scope, min, limit).await?;
    Ok(ApiJson(json!({ "contacts": contacts })))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// 1 to 365, default 30.
    pub days: Option<i64>,
}

/// One contact's intent: the current score with each signal's decayed value and the patterns
/// found, points per signal type and per day over `days`.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/intent/contacts/{contactId}",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace"), DaysParams),
    responses(
        (status = 200, description = "`{contactId, days, score, signalsByType, timeline}`",
            body = Object),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad days", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn contact_intent(
    State(state): State<AppState>,
    member: Member,
    Path((_, c)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DaysParams>,
) -> ApiResult<ApiJson<intent::Breakdown>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let b = intent::breakdown(scope, contact(&c)?, q.days.unwrap_or(30), now(&state)).await?;
    Ok(ApiJson(b))
}

/// Signals of the last 30 days by name, and how many contacts are hot.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/intent/analytics",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{days, totalSignals, signals, hotLeads, \
            contactsWithIntent, hotThreshold}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn intent_analytics(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    Ok(ApiJson(intent::analytics(scope, now(&state)).await?))
}

// ---------------------------------------------------------------- lifecycle

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransitionBody {
    /// subscriber, lead, mql, sql, sal, opportunity, customer, evangelist, churned,
    /// disqualified.
    pub to_stage: String,
    /// Up to 500 characters.
    pub reason: Option<String>,
    /// Move even where the transition table does not allow it (admins only).
    #[serde(default)]
    pub skip_validation: bool,
}

/// Moves the contact to another lifecycle stage: the same stage changes nothing
/// (`changed: false`); a move the table does not allow is 422 unless `skipValidation`.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/lifecycle/{contactId}/transition",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace")),
    request_body = TransitionBody,
    responses(
        (status = 200, description = "`{changed, contactId, stage, history?}`", body = Object),
        (status = 403, description = "The role may not edit contacts (or skip validation)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The stage changed concurrently; retry", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown stage or a move the table does not allow",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn transition(
    State(state): State<AppState>,
    member: Member,
    Path((_, c)): Path<(String, String)>,
    ApiJson(req): ApiJson<TransitionBody>,
) -> ApiResult<ApiJson<lifecycle::Transition>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    if req.skip_validation {
        member.can(Resource::Contacts, Action::Delete)?;
    }
    bounded(&req.reason, "reason", 500)?;
    let to = lifecycle::parse_stage(&req.to_stage, "toStage")?;
    let t = lifecycle::transition(
        scope,
        contact(&c)?,
        TransitionRequest {
            to,
            reason: req.reason,
            skip_validation: req.skip_validation,
            method: None,
        },
        now(&state),
    )
    .await?;
    Ok(ApiJson(t))
}

/// The contact's stage moves, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lifecycle/{contactId}/history",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace")),
    responses(
        (status = 200, description = "`{history}`", body = Object),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn lifecycle_history(
    member: Member,
    Path((_, c)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let h = lifecycle::history(scope, contact(&c)?).await?;
    Ok(ApiJson(json!({ "history": h })))
}

/// Contacts per stage now, moves into each stage and the conversion to the next.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lifecycle/funnel",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{stages: [{stage, current, entered, conversionToNext}]}`",
            body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn lifecycle_funnel(member: Member) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    Ok(ApiJson(lifecycle::funnel(scope).await?))
}

/// Contacts past 80 % (at_risk) or 100 % (breached) of their stage's target time.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lifecycle/sla-breaches",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "`{contacts}`, worst first", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn sla_breaches(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let v = lifecycle::sla_breaches(scope, now(&state)).await?;
    Ok(ApiJson(json!({ "contacts": v })))
}

// ---------------------------------------------------------------- lead recycling

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RecyclingFilters {
    /// detected, in_recycling, re_engaged, failed, exhausted.
    pub status: Option<String>,
    /// A contact id.
    pub contact_id: Option<String>,
}

const RECYCLING_SORTABLE: &[&str] = &["detectedAt", "nextAttemptAt", "updatedAt", "createdAt"];

/// Recycling records, newest detection first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-recycling",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        RecyclingFilters),
    responses(
        (status = 200, description = "`{leadRecyclings, pagination}`", body = Object),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_recycling(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<RecyclingFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let mut filter = Filter::all();
    if let Some(s) = &f.status {
        let st: RecyclingStatus = serde_json::from_value(json!(s)).map_err(|_| {
            Error::invalid(
                "status",
                "must be one of detected, in_recycling, re_engaged, failed, exhausted",
            )
        })?;
        filter = filter.and(Filter::eq("status", json!(st)));
    }
    if let Some(c) = &f.contact_id {
        let c: ContactId = c
            .parse()
            .map_err(|_| Error::invalid("contactId", "not an id"))?;
        filter = filter.and(Filter::eq("contactId", c.to_string()));
    }
    let sort = p.sort(RECYCLING_SORTABLE, &[SortKey::desc("detectedAt")])?;
    let body = list_without_expand(
        scope.repo::<LeadRecycling>(),
        &p,
        &filter,
        &sort,
        20,
        "leadRecyclings",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/lead-recycling/{id}",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The recycling record id")),
    responses(
        (status = 200, description = "The recycling record", body = Object),
        (status = 404, description = "No such record in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_recycling(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<LeadRecycling>> {
    let scope = member.can(Resource::Contacts, Action::View)?;
    let id: LeadRecyclingId = path_id(&id)?;
    Ok(ApiJson(scope.repo::<LeadRecycling>().get(id).await?))
}

/// Absent fields stay; `null` clears notes and the assignee.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchRecycling {
    /// detected, in_recycling, re_engaged, failed, exhausted.
    #[schema(value_type = Option<String>)]
    pub status: Option<RecyclingStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<Option<UserId>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    /// 1 to 10, not below the attempts made.
    pub max_attempts: Option<u32>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/lead-recycling/{id}",
    tag = "scoring",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The recycling record id")),
    request_body = PatchRecycling,
    responses(
        (status = 200, description = "The updated record", body = Object),
        (status = 403, description = "The role may not edit contacts", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such record in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn patch_recycling(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchRecycling>,
) -> ApiResult<ApiJson<LeadRecycling>> {
    let scope = member.can(Resource::Contacts, Action::Edit)?;
    let id: LeadRecyclingId = path_id(&id)?;
    if let Some(tags) = &req.tags
        && (tags.len() > 50 || tags.iter().any(|t| t.chars().count() > 100))
    {
        return Err(Error::invalid("tags", "at most 50 tags of 100 characters").into());
    }
    if let Some(Some(u)) = req.assigned_to {
        ensure_member(scope, member.workspace.user_id, u, "assignedTo").await?;
    }
    let p = RecyclingPatch {
        status: req.status,
        notes: req.notes,
        tags: req.tags,
        assigned_to: req.assigned_to,
        next_attempt_at: req.next_attempt_at,
        max_attempts: req.max_attempts,
    };
    Ok(ApiJson(recycling::patch(scope, id, p, now(&state)).await?))
}
