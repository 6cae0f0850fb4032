//! Sales engagement (ADR 0022): the plain records through the generic CRUD routes, plus the
//! operations with rules: template render, campaign enroll/start/pause, sequence
//! enroll/activate/pause/reply, form publish/unpublish/archive and the form template library.
//! All under `Resource::Campaigns`.

use std::collections::BTreeMap;

use ::campaigns::campaign::{Campaign, CampaignEnrollment, CampaignId};
use ::campaigns::content::{
    Chatbot, DeliverabilityTest, LandingPage, LeadMagnet, MeetingScheduler, VoiceDrop,
};
use ::campaigns::engage::{self, Enrolled};
use ::campaigns::forms::{Form, FormId, FormSubmission, FormTemplate, LeadForm, PublishStatus};
use ::campaigns::sequence::{
    MultiChannelSequence, Sequence, SequenceEnrollment, SequenceEnrollmentId, SequenceId,
    SequenceStatus,
};
use ::campaigns::submit;
use ::campaigns::templates::{self, EmailTemplate, EmailTemplateId, Rendered};
use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::repo::{Actor, WorkspaceScope};
use crm_core::services::tasks::ensure_exists;
use crm_core::{Error, Filter, ObjectId, SortKey};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tickets::path_id;
use crate::auth::{AuthUser, Member};
use crate::crud::{Crud, crud_routes};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_without_expand};
use crate::state::AppState;

const TAG: &str = "campaigns";

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let r = crud_routes::<EmailTemplate>(r);
    let r = crud_routes::<Campaign>(r);
    let r = crud_routes::<Sequence>(r);
    let r = crud_routes::<MultiChannelSequence>(r);
    let r = crud_routes::<Form>(r);
    let r = crud_routes::<FormSubmission>(r);
    let r = crud_routes::<LeadForm>(r);
    let r = crud_routes::<LandingPage>(r);
    let r = crud_routes::<Chatbot>(r);
    let r = crud_routes::<LeadMagnet>(r);
    let r = crud_routes::<VoiceDrop>(r);
    let r = crud_routes::<MeetingScheduler>(r);
    let r = crud_routes::<DeliverabilityTest>(r);
    r.routes(routes!(render_template))
        .routes(routes!(enroll_in_campaign, list_campaign_enrollments))
        .routes(routes!(start_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(enroll_in_sequence))
        .routes(routes!(activate_sequence))
        .routes(routes!(pause_sequence))
        .routes(routes!(sequence_reply))
        .routes(routes!(publish_form))
        .routes(routes!(unpublish_form))
        .routes(routes!(archive_form))
        .routes(routes!(list_form_templates))
        .routes(routes!(get_form_template))
}

fn user_of(actor: Actor) -> crm_core::UserId {
    actor.user().unwrap_or_default()
}

/// A reference must name a record of this workspace (422 on `field` otherwise).
async fn must_exist<E: crm_core::repo::WorkspaceEntity>(
    scope: &WorkspaceScope,
    id: impl Into<ObjectId>,
    field: &str,
) -> crm_core::Result<()> {
    ensure_exists::<E>(scope, id.into(), field).await
}

async fn email_account(scope: &WorkspaceScope, id: ObjectId, field: &str) -> crm_core::Result<()> {
    must_exist::<integrations::entities::EmailAccount>(scope, id, field).await
}

#[async_trait]
impl Crud for EmailTemplate {
    const PATH: &'static str = "email-templates";
    const PLURAL: &'static str = "templates";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["category", "isPredesigned"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] =
        &["createdBy", "variables", "usageCount", "lastUsedAt"];
    fn on_create(&mut self, actor: Actor) {
        self.created_by = actor.user();
    }
}

#[async_trait]
impl Crud for Campaign {
    const PATH: &'static str = "campaigns";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] = &[
        "userId",
        "status",
        "totalEnrolled",
        "activeEnrollments",
        "completedEnrollments",
        "stats",
        "dailySent",
    ];
    async fn check(scope: &WorkspaceScope, c: &Self) -> crm_core::Result<()> {
        for (i, a) in c.from_accounts.iter().enumerate() {
            email_account(scope, *a, &format!("fromAccounts[{i}]")).await?;
        }
        Ok(())
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for Sequence {
    const PATH: &'static str = "sequences";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "status", "enrollments", "stats"];
    async fn check(scope: &WorkspaceScope, s: &Self) -> crm_core::Result<()> {
        for (i, st) in s.steps.iter().enumerate() {
            if let Some(t) = st.template_id {
                must_exist::<EmailTemplate>(scope, t, &format!("steps[{i}].templateId")).await?;
            }
        }
        if let Some(a) = s.send_from_account_id {
            must_exist::<integrations::entities::EmailIntegration>(scope, a, "sendFromAccountId")
                .await?;
        }
        Ok(())
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = actor.user();
    }
}

#[async_trait]
impl Crud for MultiChannelSequence {
    const PATH: &'static str = "multichannel-sequences";
    const PLURAL: &'static str = "sequences";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "stats"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for Form {
    const PATH: &'static str = "forms";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "status", "stats", "embedCode"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for FormSubmission {
    const PATH: &'static str = "form-submissions";
    const PLURAL: &'static str = "submissions";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["formId", "contactId", "status"];
    const SERVER_FIELDS: &'static [&'static str] = &["contactCreated", "processedAt"];
    async fn check(scope: &WorkspaceScope, s: &Self) -> crm_core::Result<()> {
        must_exist::<Form>(scope, s.form_id, "formId").await?;
        if let Some(c) = s.contact_id {
            must_exist::<Contact>(scope, c, "contactId").await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Crud for LeadForm {
    const PATH: &'static str = "lead-forms";
    const PLURAL: &'static str = "leadForms";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["active"];
    const SERVER_FIELDS: &'static [&'static str] = &["views", "submissions"];
}

#[async_trait]
impl Crud for LandingPage {
    const PATH: &'static str = "landing-pages";
    const PLURAL: &'static str = "pages";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status", "slug"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "name"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "stats"];
    async fn check(scope: &WorkspaceScope, p: &Self) -> crm_core::Result<()> {
        if let Some(f) = p.form_id {
            must_exist::<Form>(scope, f, "formId").await?;
        }
        for (i, s) in p.sections.iter().enumerate() {
            if let Some(raw) = s.settings.get("formId").and_then(Value::as_str) {
                let field = format!("sections[{i}].settings.formId");
                let id: ObjectId = raw
                    .parse()
                    .map_err(|_| Error::invalid(field.clone(), "must be a form id"))?;
                must_exist::<Form>(scope, id, &field).await?;
            }
        }
        Ok(())
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for Chatbot {
    const PATH: &'static str = "chatbots";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "stats", "lastActivatedAt"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for LeadMagnet {
    const PATH: &'static str = "lead-magnets";
    const PLURAL: &'static str = "leadMagnets";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status", "type", "slug"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "downloads"];
    const SERVER_FIELDS: &'static [&'static str] = &["views", "downloads", "conversionRate"];
    async fn check(scope: &WorkspaceScope, m: &Self) -> crm_core::Result<()> {
        if let Some(f) = m.form_id {
            must_exist::<Form>(scope, f, "formId").await?;
        }
        if let Some(t) = m.email_template_id {
            must_exist::<EmailTemplate>(scope, t, "emailTemplateId").await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Crud for VoiceDrop {
    const PATH: &'static str = "voice-drops";
    const PLURAL: &'static str = "voiceDrops";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status"];
    const SORTS: &'static [&'static str] = &["createdAt", "updatedAt", "scheduledAt"];
    const SERVER_FIELDS: &'static [&'static str] = &[
        "userId",
        "totalRecipients",
        "delivered",
        "failed",
        "estimatedCost",
        "actualCost",
    ];
    async fn check(scope: &WorkspaceScope, v: &Self) -> crm_core::Result<()> {
        for (i, r) in v.recipients.iter().enumerate() {
            must_exist::<Contact>(scope, r.contact_id, &format!("recipients[{i}].contactId"))
                .await?;
        }
        Ok(())
    }
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
        self.recount();
    }
}

#[async_trait]
impl Crud for MeetingScheduler {
    const PATH: &'static str = "meeting-schedulers";
    const PLURAL: &'static str = "schedulers";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["isActive", "slug"];
    const SERVER_FIELDS: &'static [&'static str] = &["userId", "stats"];
    fn on_create(&mut self, actor: Actor) {
        self.user_id = user_of(actor);
    }
}

#[async_trait]
impl Crud for DeliverabilityTest {
    const PATH: &'static str = "deliverability-tests";
    const PLURAL: &'static str = "tests";
    const RESOURCE: Resource = Resource::Campaigns;
    const TAG: &'static str = TAG;
    const FILTERS: &'static [&'static str] = &["status", "emailAccountId"];
    async fn check(scope: &WorkspaceScope, t: &Self) -> crm_core::Result<()> {
        email_account(scope, t.email_account_id, "emailAccountId").await
    }
}

// ---- templates ----

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderRequest {
    /// A contact of the workspace whose fields fill the placeholders (`firstName`, `name`,
    /// `email`, `company`, ... and `contact.<field>`).
    #[schema(value_type = Option<String>)]
    pub contact_id: Option<ContactId>,
    /// Values by placeholder name; they win over the contact's.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Fills a template for one recipient: values HTML-escaped in body and htmlContent, line
/// breaks removed in the subject. A placeholder without a value is a 422 naming it.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/email-templates/{id}/render",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The template id")),
    request_body = RenderRequest,
    responses(
        (status = 200, description = "`{subject, body, htmlContent?}`", body = Object),
        (status = 404, description = "No such template in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A placeholder has no value (`field` = variables), or the contact is not in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn render_template(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RenderRequest>,
) -> ApiResult<ApiJson<Rendered>> {
    let scope = member.can(Resource::Campaigns, Action::View)?;
    let id: EmailTemplateId = path_id(&id)?;
    let t = scope.repo::<EmailTemplate>().get(id).await?;
    let mut values = BTreeMap::new();
    if let Some(c) = req.contact_id {
        let contact = match scope.repo::<Contact>().get(c).await {
            Err(Error::NotFound) => {
                return Err(Error::invalid("contactId", "does not exist in this workspace").into());
            }
            other => other?,
        };
        values = templates::contact_values(&contact);
    }
    values.extend(req.variables);
    Ok(ApiJson(t.render(&values)?))
}

// ---- campaigns ----

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollRequest {
    /// 1 to 500 contacts of the workspace.
    #[schema(value_type = Vec<String>)]
    pub contact_ids: Vec<ContactId>,
}

/// Enrolls contacts. Idempotent per contact: one already enrolled gets its enrollment back.
/// In an active campaign the first send is queued for the sending window's next opening.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/campaigns/{id}/enrollments",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The campaign id")),
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "`{enrollments, created}`", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No ids, too many, or a contact outside this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn enroll_in_campaign(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<ApiJson<Enrolled>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: CampaignId = path_id(&id)?;
    let queue = state.automation.queue();
    let now = state.stores.clock().now();
    Ok(ApiJson(
        engage::enroll(scope, queue.as_ref(), now, id, &req.contact_ids).await?,
    ))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentFilters {
    /// pending, active, completed, replied, bounced, unsubscribed, paused.
    pub status: Option<String>,
}

/// The campaign's enrollments, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/campaigns/{id}/enrollments",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The campaign id"), ListParams, EnrollmentFilters),
    responses(
        (status = 200, description = "`{enrollments, pagination}`", body = Object),
        (status = 404, description = "No such campaign in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging or sort", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_campaign_enrollments(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<EnrollmentFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Campaigns, Action::View)?;
    let id: CampaignId = path_id(&id)?;
    scope.repo::<Campaign>().get(id).await?;
    let mut filter = Filter::eq("campaignId", id.to_string());
    if let Some(s) = f.status {
        filter = filter.and(Filter::eq("status", s));
    }
    let sort = p.sort(
        &["createdAt", "updatedAt", "nextSendAt"],
        &[SortKey::desc("createdAt")],
    )?;
    let body = list_without_expand(
        scope.repo::<CampaignEnrollment>(),
        &p,
        &filter,
        &sort,
        50,
        "enrollments",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

/// Starts (or resumes) a campaign: it needs a step; every live enrollment's next send is
/// queued for the sending window.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/campaigns/{id}/start",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "The campaign, active", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No steps, or the campaign is completed", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn start_campaign(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Campaign>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: CampaignId = path_id(&id)?;
    let queue = state.automation.queue();
    let now = state.stores.clock().now();
    Ok(ApiJson(
        engage::start(scope, queue.as_ref(), now, id).await?,
    ))
}

/// Pauses a campaign: queued sends do nothing until it starts again.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/campaigns/{id}/pause",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "The campaign, paused", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn pause_campaign(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Campaign>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: CampaignId = path_id(&id)?;
    Ok(ApiJson(engage::pause(scope, id).await?))
}

// ---- sequences ----

/// Enrolls contacts in an active sequence; a contact with an active enrollment keeps it. The
/// first step is due after its delay, inside the sequence's window.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/sequences/{id}/enrollments",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The sequence id")),
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "`{enrollments}`", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such sequence in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The sequence changed concurrently too often; retry", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Not active, no steps, or a contact outside this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn enroll_in_sequence(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<ApiJson<Value>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: SequenceId = path_id(&id)?;
    let queue = state.automation.queue();
    let now = state.stores.clock().now();
    let got: Vec<SequenceEnrollment> =
        engage::enroll_in_sequence(scope, queue.as_ref(), now, id, &req.contact_ids).await?;
    Ok(ApiJson(serde_json::json!({ "enrollments": got })))
}

async fn sequence_status(
    state: &AppState,
    member: &Member,
    id: &str,
    status: SequenceStatus,
) -> ApiResult<ApiJson<Sequence>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: SequenceId = path_id(id)?;
    let queue = state.automation.queue();
    let now = state.stores.clock().now();
    Ok(ApiJson(
        engage::set_sequence_status(scope, queue.as_ref(), now, id, status).await?,
    ))
}

/// Activates a sequence (it needs a step); the next step of every active enrollment is queued.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/sequences/{id}/activate",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The sequence id")),
    responses(
        (status = 200, description = "The sequence, active", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such sequence in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No steps", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn activate_sequence(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Sequence>> {
    sequence_status(&state, &member, &id, SequenceStatus::Active).await
}

/// Pauses a sequence: queued steps do nothing until it is activated again.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/sequences/{id}/pause",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The sequence id")),
    responses(
        (status = 200, description = "The sequence, paused", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such sequence in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn pause_sequence(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Sequence>> {
    sequence_status(&state, &member, &id, SequenceStatus::Paused).await
}

/// Records a reply from the enrolled contact: with `unenrollOnReply` (the default) the
/// enrollment exits with status `replied` and no further step runs.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/sequences/{id}/enrollments/{enrollmentId}/reply",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The sequence id"),
        ("enrollmentId" = String, Path, description = "The enrollment id")),
    responses(
        (status = 200, description = "The enrollment", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such sequence or enrollment in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The sequence changed concurrently too often; retry", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn sequence_reply(
    State(state): State<AppState>,
    member: Member,
    Path((_, id, enrollment)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<SequenceEnrollment>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: SequenceId = path_id(&id)?;
    let enrollment: SequenceEnrollmentId = path_id(&enrollment)?;
    let now = state.stores.clock().now();
    Ok(ApiJson(
        engage::record_reply(scope, now, id, enrollment).await?,
    ))
}

// ---- forms ----

async fn form_status(
    state: &AppState,
    member: &Member,
    id: &str,
    status: PublishStatus,
) -> ApiResult<ApiJson<Form>> {
    let scope = member.can(Resource::Campaigns, Action::Edit)?;
    let id: FormId = path_id(id)?;
    Ok(ApiJson(
        submit::set_form_status(&state.stores, scope, id, status).await?,
    ))
}

/// Publishes a form: `POST /api/v1/public/forms/{formId}/submit` accepts submissions from now.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/forms/{id}/publish",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The form id")),
    responses(
        (status = 200, description = "The form, published", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such form in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn publish_form(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Form>> {
    form_status(&state, &member, &id, PublishStatus::Published).await
}

/// Takes a form back to draft: the public endpoint answers 404 for it.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/forms/{id}/unpublish",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The form id")),
    responses(
        (status = 200, description = "The form, draft", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such form in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn unpublish_form(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Form>> {
    form_status(&state, &member, &id, PublishStatus::Draft).await
}

/// Archives a form: the public endpoint answers 404 for it.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/forms/{id}/archive",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The form id")),
    responses(
        (status = 200, description = "The form, archived", body = Object),
        (status = 403, description = "The role may not edit campaigns", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such form in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn archive_form(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Form>> {
    form_status(&state, &member, &id, PublishStatus::Archived).await
}

// ---- form template library (global, read-only) ----

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFilters {
    pub industry: Option<String>,
    pub use_case: Option<String>,
    pub featured: Option<bool>,
}

/// The shared form template library (any signed-in user), featured and best rated first.
#[utoipa::path(
    get,
    path = "/api/v1/form-templates",
    tag = "campaigns",
    security(("bearer" = [])),
    params(ListParams, TemplateFilters),
    responses(
        (status = 200, description = "`{templates, pagination}`", body = Object),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_form_templates(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<TemplateFilters>,
) -> ApiResult<Response> {
    let mut filter = p.base_filter();
    if let Some(i) = f.industry {
        filter = filter.and(Filter::eq("industry", i));
    }
    if let Some(u) = f.use_case {
        filter = filter.and(Filter::eq("useCase", u));
    }
    if let Some(x) = f.featured {
        filter = filter.and(Filter::eq("featured", x));
    }
    let sort = p.sort(
        &["createdAt", "rating", "usageCount", "name"],
        &[SortKey::desc("featured"), SortKey::desc("rating")],
    )?;
    let body = list_without_expand(
        state.stores.global::<FormTemplate>(),
        &p,
        &filter,
        &sort,
        50,
        "templates",
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/form-templates/{id}",
    tag = "campaigns",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The template id")),
    responses(
        (status = 200, description = "The template", body = Object),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_form_template(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<FormTemplate>> {
    let id: ::campaigns::forms::FormTemplateId = path_id(&id)?;
    Ok(ApiJson(
        state.stores.global::<FormTemplate>().get(id).await?,
    ))
}
