//! Analytics of a workspace: attribution (per contact and per period), the revenue forecast and
//! its risks (and stored snapshots), the user-action report, email tracking links, the tracked
//! visitors and events, and the records of the report builder and sales intelligence (generic
//! CRUD). The rules live in the `analytics` crate; every route is `Resource::Analytics`.

use ::analytics::attribution::{self, Attribution, AttributionReport, ContactAttribution, Model};
use ::analytics::email::{self, EmailTracking, NewTracking, TrackKind};
use ::analytics::forecast::{self, DealRisk, Forecast, ForecastFigures, Period};
use ::analytics::intel::{
    Battlecard, BuyingCommittee, CallRecording, Competitor, IcpDefinition, Proposal,
};
use ::analytics::reports::{self, UserActionReport};
use ::analytics::reports::{ReportComment, ReportDashboard, ReportSubscription, ReportTemplate};
use ::analytics::tracking::{CompanyVisitor, TrackingEvent, Visitor};
use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::company::Company;
use crm_core::entities::contact::Contact;
use crm_core::entities::contact::ContactId;
use crm_core::entities::opportunity::Opportunity;
use crm_core::repo::{Actor, WorkspaceEntity, WorkspaceScope};
use crm_core::{Filter, ObjectId, SortKey, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::Member;
use crate::crud::{Crud, crud_routes};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const TAG: &str = "analytics";
const DEFAULT_LIMIT: u64 = 50;
/// Default report window when `from` is not given.
const DEFAULT_WINDOW_DAYS: i64 = 30;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    crud(r)
        .routes(routes!(contact_attribution))
        .routes(routes!(attribution_report))
        .routes(routes!(list_attributions))
        .routes(routes!(get_forecast))
        .routes(routes!(forecast_risks))
        .routes(routes!(create_snapshot, list_snapshots))
        .routes(routes!(user_action_report))
        .routes(routes!(create_email_tracking, list_email_tracking))
        .routes(routes!(list_visitors))
        .routes(routes!(list_tracking_events))
}

/// The plain records: generic CRUD (ADR 0026) with their references checked.
pub fn crud(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let r = crud_routes::<Proposal>(r);
    let r = crud_routes::<CallRecording>(r);
    let r = crud_routes::<ReportDashboard>(r);
    let r = crud_routes::<ReportTemplate>(r);
    let r = crud_routes::<ReportSubscription>(r);
    let r = crud_routes::<ReportComment>(r);
    let r = crud_routes::<BuyingCommittee>(r);
    let r = crud_routes::<Battlecard>(r);
    let r = crud_routes::<Competitor>(r);
    let r = crud_routes::<IcpDefinition>(r);
    crud_routes::<CompanyVisitor>(r)
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    /// first_touch, last_touch, linear (default), time_decay, u_shaped, w_shaped.
    #[param(value_type = Option<String>)]
    pub model: Option<Model>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// first_touch, last_touch, linear (default), time_decay, u_shaped, w_shaped (attribution
    /// only).
    #[param(value_type = Option<String>)]
    pub model: Option<Model>,
    /// Start (RFC 3339, inclusive); default 30 days before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// End (RFC 3339, exclusive); default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
}

impl PeriodQuery {
    fn window(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        let to = self.to.unwrap_or(now);
        let from = self
            .from
            .unwrap_or_else(|| to.plus_seconds(-DEFAULT_WINDOW_DAYS * 86_400));
        (from, to)
    }
}

fn now(state: &AppState) -> Timestamp {
    state.stores.clock().now()
}

/// A contact's touchpoints (one per visit) with the credit each gets under the model.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/attribution/contacts/{contactId}",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("contactId" = String, Path, description = "A contact of the workspace"), ModelQuery),
    responses(
        (status = 200, description = "`{contactId, model, touchpoints[{..., credit}], channels}`",
            body = Object),
        (status = 400, description = "Unknown model", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such contact in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn contact_attribution(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ModelQuery>,
) -> ApiResult<ApiJson<ContactAttribution>> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let id: ContactId = path_id(&id)?;
    Ok(ApiJson(
        attribution::for_contact(scope, id, q.model.unwrap_or_default()).await?,
    ))
}

/// Deals won in `[from, to)` credited to channels under the model.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/attribution/report",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), PeriodQuery),
    responses(
        (status = 200, description = "`{model, from, to, attributedDeals, unattributedDeals, \
            totalRevenue, channels[{channel, conversions, revenue, touchpoints}]}`",
            body = Object),
        (status = 400, description = "Unknown model or bad date", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`to` not after `from`", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn attribution_report(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> ApiResult<ApiJson<AttributionReport>> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let (from, to) = q.window(now(&state));
    Ok(ApiJson(
        attribution::report(scope, q.model.unwrap_or_default(), from, to).await?,
    ))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AttributionFilters {
    /// true or false.
    pub converted: Option<bool>,
    pub first_touch_channel: Option<String>,
}

/// Stored journeys (one per identified contact), refreshed when a visitor is identified.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/attributions",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        AttributionFilters),
    responses(
        (status = 200, description = "`{attributions, pagination}`", body = Object),
        (status = 422, description = "Bad paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_attributions(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<AttributionFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let mut filter = Filter::all();
    if let Some(c) = f.converted {
        filter = filter.and(Filter::eq("converted", c));
    }
    if let Some(c) = f.first_touch_channel {
        filter = filter.and(Filter::eq("firstTouchChannel", c));
    }
    list_of::<Attribution>(
        scope,
        &p,
        filter,
        &["createdAt", "updatedAt", "convertedAt"],
        "attributions",
    )
    .await
}

async fn list_of<E: crm_core::repo::WorkspaceEntity>(
    scope: &crm_core::repo::WorkspaceScope,
    p: &ListParams,
    filter: Filter,
    sortable: &[&str],
    plural: &str,
) -> ApiResult<Response> {
    let sort = p.sort(sortable, &[SortKey::desc("createdAt")])?;
    let body =
        list_without_expand(scope.repo::<E>(), p, &filter, &sort, DEFAULT_LIMIT, plural).await?;
    Ok(ApiJson(body).into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// month, quarter, year (calendar, UTC) or next_30_days (default).
    #[param(value_type = Option<String>)]
    pub period: Option<Period>,
}

/// Open deals expected to close in the period: weighted (probability, default 50, x0.7 after 14
/// idle days, x0.5 more after 30), best case and committed (>= 80 % and active).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/forecast",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ForecastQuery),
    responses(
        (status = 200, description = "`{period, periodStart, periodEnd, dealCount, weighted, \
            bestCase, committed, deals}`", body = Object),
        (status = 400, description = "Unknown period", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_forecast(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<ForecastQuery>,
) -> ApiResult<ApiJson<ForecastFigures>> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    Ok(ApiJson(
        forecast::forecast(scope, q.period.unwrap_or_default(), now(&state)).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RisksBody {
    #[schema(value_type = Vec<Object>)]
    pub risks: Vec<DealRisk>,
    pub threshold: u32,
}

/// Open deals with a risk score of at least 30: +25 idle > 14 days, +30 past the expected
/// close, +15 no next action, +20 cold, +15 probability under 30. Riskiest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/forecast/risks",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    responses((status = 200, description = "`{risks, threshold}`", body = RisksBody)),
)]
pub async fn forecast_risks(
    State(state): State<AppState>,
    member: Member,
) -> ApiResult<ApiJson<RisksBody>> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    Ok(ApiJson(RisksBody {
        risks: forecast::deal_risks(scope, now(&state)).await?,
        threshold: forecast::RISK_THRESHOLD,
    }))
}

/// Computes the forecast of the period and stores it as a snapshot.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/forecast/snapshots",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ForecastQuery),
    responses(
        (status = 201, description = "The stored snapshot", body = Object),
        (status = 400, description = "Unknown period", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not create analytics records", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_snapshot(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<ForecastQuery>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::Create)?;
    let f = forecast::snapshot(
        scope,
        q.period.unwrap_or_default(),
        now(&state),
        Some(member.user.id),
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(f)).into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotFilters {
    /// month, quarter, year or next_30_days.
    pub period: Option<String>,
}

/// Stored forecast snapshots, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/forecast/snapshots",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        SnapshotFilters),
    responses(
        (status = 200, description = "`{forecasts, pagination}`", body = Object),
        (status = 422, description = "Bad paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_snapshots(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<SnapshotFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let filter = f
        .period
        .map_or_else(Filter::all, |p| Filter::eq("period", p));
    let sort = p.sort(
        &["generatedAt", "createdAt"],
        &[SortKey::desc("generatedAt")],
    )?;
    let body = list_without_expand(
        scope.repo::<Forecast>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "forecasts",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// How many actions were recorded in `[from, to)` (default the last 30 days), per action type,
/// resource type and user, counted by the store's aggregation.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/reports/user-actions",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), PeriodQuery),
    responses(
        (status = 200, description = "`{from, to, total, byActionType, byResourceType, byUser}` \
            (each `[{key, count}]`, largest first)", body = Object),
        (status = 400, description = "Bad date", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`to` not after `from`", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn user_action_report(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> ApiResult<ApiJson<UserActionReport>> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let (from, to) = q.window(now(&state));
    Ok(ApiJson(reports::user_action_report(scope, from, to).await?))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEmailTracking {
    /// `open` (a pixel) or `click` (a link to `url`).
    #[schema(value_type = String)]
    pub kind: TrackKind,
    /// The click's destination: an absolute http(s) URL; the link redirects only there.
    pub url: Option<String>,
    /// A contact of the workspace.
    #[schema(value_type = Option<String>)]
    pub contact_id: Option<ContactId>,
    #[schema(value_type = Option<String>)]
    pub email_message_id: Option<ObjectId>,
    #[schema(value_type = Option<String>)]
    pub campaign_id: Option<ObjectId>,
    /// The message's `trackingId`, to join with `emailmessages`.
    pub tracking_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedTracking {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub record: EmailTracking,
    /// The public path to put in the email (the pixel's `src` or the link's `href`).
    pub path: String,
}

/// Issues a tracked open pixel or click link for an outgoing email.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/email-tracking",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateEmailTracking,
    responses(
        (status = 201, description = "The record, with the public `path`", body = IssuedTracking),
        (status = 403, description = "The role may not create analytics records", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad URL, or a contact not of this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_email_tracking(
    member: Member,
    ApiJson(req): ApiJson<CreateEmailTracking>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::Create)?;
    let record = email::issue(
        scope,
        req.kind,
        NewTracking {
            url: req.url,
            contact_id: req.contact_id,
            email_message_id: req.email_message_id,
            campaign_id: req.campaign_id,
            tracking_id: req.tracking_id,
        },
    )
    .await?;
    let path = super::public_tracking::public_path(&record);
    Ok((
        StatusCode::CREATED,
        ApiJson(IssuedTracking { record, path }),
    )
        .into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EmailTrackingFilters {
    /// A contact id.
    pub contact_id: Option<String>,
    pub tracking_id: Option<String>,
    /// An email message id.
    pub email_message_id: Option<String>,
}

fn id_filter(f: Filter, path: &'static str, raw: Option<String>) -> ApiResult<Filter> {
    Ok(match raw {
        None => f,
        Some(v) => {
            let id: ObjectId = v
                .parse()
                .map_err(|_| crm_core::Error::invalid(path, "must be an id"))?;
            f.and(Filter::eq(path, id.to_hex()))
        }
    })
}

/// Tracked pixels and links with their hit counts.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/email-tracking",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        EmailTrackingFilters),
    responses(
        (status = 200, description = "`{emailTrackings, pagination}`", body = Object),
        (status = 422, description = "Bad filter, paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_email_tracking(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<EmailTrackingFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let mut filter = id_filter(Filter::all(), "contactId", f.contact_id)?;
    filter = id_filter(filter, "emailMessageId", f.email_message_id)?;
    if let Some(t) = f.tracking_id {
        filter = filter.and(Filter::eq("trackingId", t));
    }
    list_of::<EmailTracking>(
        scope,
        &p,
        filter,
        &["createdAt", "updatedAt", "lastAt"],
        "emailTrackings",
    )
    .await
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct VisitorFilters {
    /// A contact id.
    pub contact_id: Option<String>,
    /// The tracking script's visitor id.
    pub visitor_id: Option<String>,
}

/// Tracked visitors, most recently seen first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/visitors",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        VisitorFilters),
    responses(
        (status = 200, description = "`{visitors, pagination}`", body = Object),
        (status = 422, description = "Bad filter, paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_visitors(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<VisitorFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let mut filter = id_filter(Filter::all(), "contactId", f.contact_id)?;
    if let Some(v) = f.visitor_id {
        filter = filter.and(Filter::eq("visitorId", v));
    }
    let sort = p.sort(
        &["lastSeen", "sessionCount", "createdAt"],
        &[SortKey::desc("lastSeen")],
    )?;
    let body = list_without_expand(
        scope.repo::<Visitor>(),
        &p,
        &filter,
        &sort,
        DEFAULT_LIMIT,
        "visitors",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EventFilters {
    /// A contact id.
    pub contact_id: Option<String>,
    pub visitor_id: Option<String>,
    pub session_id: Option<String>,
    /// page_view, button_click, form_view, form_submit, scroll_depth, custom.
    pub event_type: Option<String>,
}

/// Raw tracking events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/tracking-events",
    tag = TAG,
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        EventFilters),
    responses(
        (status = 200, description = "`{trackingEvents, pagination}`", body = Object),
        (status = 422, description = "Bad filter, paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_tracking_events(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<EventFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Analytics, Action::View)?;
    let mut filter = id_filter(Filter::all(), "contactId", f.contact_id)?;
    for (path, v) in [
        ("visitorId", f.visitor_id),
        ("sessionId", f.session_id),
        ("eventType", f.event_type),
    ] {
        if let Some(v) = v {
            filter = filter.and(Filter::eq(path, v));
        }
    }
    list_of::<TrackingEvent>(scope, &p, filter, &["createdAt"], "trackingEvents").await
}

// ---- plain records ----

/// A reference must name a record of this workspace (422 naming the field otherwise).
async fn exists<E: WorkspaceEntity>(
    scope: &WorkspaceScope,
    id: Option<ObjectId>,
    field: &str,
) -> crm_core::Result<()> {
    let Some(id) = id else { return Ok(()) };
    match scope.repo::<E>().get(id).await {
        Ok(_) => Ok(()),
        Err(crm_core::Error::NotFound) => Err(crm_core::Error::invalid(
            field,
            "no such record in this workspace",
        )),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Crud for Proposal {
    const PATH: &'static str = "proposals";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status", "opportunityId"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "validUntil"];
    const SERVER_FIELDS: &'static [&'static str] = &["createdBy"];
    async fn check(scope: &WorkspaceScope, p: &Self) -> crm_core::Result<()> {
        exists::<Opportunity>(scope, p.opportunity_id.map(Into::into), "opportunityId").await?;
        exists::<Contact>(scope, p.contact_id.map(Into::into), "contactId").await?;
        exists::<Company>(scope, p.company_id.map(Into::into), "companyId").await
    }
    fn on_create(&mut self, actor: Actor) {
        self.created_by = actor.user();
    }
}

#[async_trait]
impl Crud for CallRecording {
    const PATH: &'static str = "call-recordings";
    const PLURAL: &'static str = "callRecordings";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["contactId", "opportunityId"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "recordedAt"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId"];
    async fn check(scope: &WorkspaceScope, c: &Self) -> crm_core::Result<()> {
        exists::<Contact>(scope, c.contact_id.map(Into::into), "contactId").await?;
        exists::<Opportunity>(scope, c.opportunity_id.map(Into::into), "opportunityId").await
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = actor.user();
    }
}

#[async_trait]
impl Crud for ReportDashboard {
    const PATH: &'static str = "report-dashboards";
    const PLURAL: &'static str = "reportDashboards";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["isFavorite"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    // Sharing publicly is not served yet; the token is never taken from a body.
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "shareToken"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = actor.user();
    }
}

#[async_trait]
impl Crud for ReportTemplate {
    const PATH: &'static str = "report-templates";
    const PLURAL: &'static str = "reportTemplates";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = actor.user();
    }
}

#[async_trait]
impl Crud for ReportSubscription {
    const PATH: &'static str = "report-subscriptions";
    const PLURAL: &'static str = "reportSubscriptions";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["dashboardId", "isActive"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "nextRunAt"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "lastRunAt"];
    async fn check(scope: &WorkspaceScope, s: &Self) -> crm_core::Result<()> {
        exists::<ReportDashboard>(scope, Some(s.dashboard_id.into()), "dashboardId").await
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = actor.user();
    }
}

#[async_trait]
impl Crud for ReportComment {
    const PATH: &'static str = "report-comments";
    const PLURAL: &'static str = "reportComments";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["dashboardId", "widgetId"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId"];
    async fn check(scope: &WorkspaceScope, c: &Self) -> crm_core::Result<()> {
        exists::<ReportDashboard>(scope, Some(c.dashboard_id.into()), "dashboardId").await
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = actor.user();
    }
}

#[async_trait]
impl Crud for BuyingCommittee {
    const PATH: &'static str = "buying-committees";
    const PLURAL: &'static str = "buyingCommittees";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["companyId", "opportunityId", "dealStage"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "coverageScore"];
    const SERVER_FIELDS: &'static [&'static str] = &["coverageScore"];
    async fn check(scope: &WorkspaceScope, b: &Self) -> crm_core::Result<()> {
        exists::<Company>(scope, Some(b.company_id.into()), "companyId").await?;
        exists::<Opportunity>(scope, b.opportunity_id.map(Into::into), "opportunityId").await?;
        for (i, m) in b.members.iter().enumerate() {
            exists::<Contact>(
                scope,
                Some(m.contact_id.into()),
                &format!("members[{i}].contactId"),
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Crud for Battlecard {
    const PATH: &'static str = "battlecards";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["competitorId", "category"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "title"];
    const SERVER_FIELDS: &'static [&'static str] = &["createdBy"];
    async fn check(scope: &WorkspaceScope, b: &Self) -> crm_core::Result<()> {
        exists::<Competitor>(scope, b.competitor_id.map(Into::into), "competitorId").await
    }
    fn on_create(&mut self, actor: Actor) {
        self.created_by = actor.user();
    }
}

#[async_trait]
impl Crud for Competitor {
    const PATH: &'static str = "competitors";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["keywords", "threatLevel"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
}

#[async_trait]
impl Crud for IcpDefinition {
    const PATH: &'static str = "icp-definitions";
    const PLURAL: &'static str = "icpDefinitions";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["isDefault"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] = &["createdBy"];
    /// One default per workspace: a record becoming the default clears the others. The name is
    /// checked first so a create that is about to fail on it clears nothing.
    async fn check(scope: &WorkspaceScope, d: &Self) -> crm_core::Result<()> {
        if !d.is_default {
            return Ok(());
        }
        let same_name = scope
            .repo::<IcpDefinition>()
            .count(
                &Filter::eq("name", d.name.as_str())
                    .and(Filter::Ne("_id".into(), d.id.to_string().into())),
            )
            .await?;
        if same_name > 0 {
            return Err(crm_core::Error::conflict("name"));
        }
        ::analytics::intel::clear_other_defaults(scope, d.id).await?;
        Ok(())
    }
    fn on_create(&mut self, actor: Actor) {
        self.created_by = actor.user();
    }
}

#[async_trait]
impl Crud for CompanyVisitor {
    const PATH: &'static str = "company-visitors";
    const PLURAL: &'static str = "companyVisitors";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["domain", "isTargetAccount", "companyName"];
    const SORTS: &'static [&'static str] = &[
        "createdAt",
        "updatedAt",
        "accountScore",
        "engagement.lastSeenAt",
        "engagement.totalPageViews",
    ];
    async fn check(scope: &WorkspaceScope, v: &Self) -> crm_core::Result<()> {
        exists::<Company>(scope, v.company_id.map(Into::into), "companyId").await
    }
}
