//! What action steps do, through ports: mail ([`WorkflowMailer`]), outgoing HTTP
//! (`crm_core::outbound::HttpCaller`), sequences ([`SequenceEnroller`]) and the core services,
//! so every write keeps the rules of the routes. A step's inputs are resolved first
//! ([`resolve_input`]); the dry run shows them without running anything.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crm_core::accounts::permissions::Role;
use crm_core::engine::Document;
use crm_core::entities::activity::{Activity, ActivityEntityType, ActivityType};
use crm_core::entities::company::{Company, CompanyId};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::counter::WorkspaceCounter;
use crm_core::entities::notification::{NotificationType, RelatedEntityType};
use crm_core::entities::opportunity::{Opportunity, OpportunityId};
use crm_core::entities::project::Project;
use crm_core::entities::team_member::{MemberStatus, TeamMember};
use crm_core::outbound::{HttpCaller, OutboundRequest};
use crm_core::repo::{Stores, WorkspaceEntity, WorkspaceScope};
use crm_core::services::contacts::{ContactPatch, WriteCtx};
use crm_core::services::notifications::{Notice, notify};
use crm_core::services::{companies, contacts, opportunities, tasks};
use crm_core::{Error, Filter, FindOptions, ObjectId, Result, SortKey, Timestamp, Update, UserId};

use super::engine::Engine;
use super::model::{EntityType, Step, Workflow, WorkflowEnrollment};
use super::template::{render, render_value};
use crate::scoring::lead;

/// A mail an action sends (the account `Mailer` carries only account mails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub workflow_id: String,
    pub enrollment_id: String,
}

#[async_trait]
pub trait WorkflowMailer: Send + Sync + Debug {
    /// An `Err` is the step's error (retried, then the enrollment fails).
    async fn send(&self, mail: OutgoingMail) -> std::result::Result<(), String>;
}

/// Logs the mail (recipient and subject only); the default until an SMTP adapter is plugged in.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWorkflowMailer;

#[async_trait]
impl WorkflowMailer for LogWorkflowMailer {
    async fn send(&self, mail: OutgoingMail) -> std::result::Result<(), String> {
        tracing::info!(to = %mail.to, subject = %mail.subject, workflow = %mail.workflow_id,
            "workflow mail (logged, not sent)");
        Ok(())
    }
}

/// Keeps every mail; for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingWorkflowMailer(Arc<parking_lot::Mutex<Vec<OutgoingMail>>>);

impl RecordingWorkflowMailer {
    pub fn sent(&self) -> Vec<OutgoingMail> {
        self.0.lock().clone()
    }
}

#[async_trait]
impl WorkflowMailer for RecordingWorkflowMailer {
    async fn send(&self, mail: OutgoingMail) -> std::result::Result<(), String> {
        self.0.lock().push(mail);
        Ok(())
    }
}

/// Enrolls a contact in a sequence (implemented by the campaigns crate's engine).
#[async_trait]
pub trait SequenceEnroller: Send + Sync + Debug {
    /// `key` is stable per workflow step run, so an enroller can make a redelivery a no-op.
    async fn enroll(
        &self,
        scope: &WorkspaceScope,
        sequence_id: &str,
        contact: ContactId,
        key: &str,
    ) -> std::result::Result<Value, String>;
}

/// Until sequences are wired in: every enroll_sequence step fails with a clear error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSequences;

#[async_trait]
impl SequenceEnroller for NoSequences {
    async fn enroll(
        &self,
        _: &WorkspaceScope,
        _: &str,
        _: ContactId,
        _: &str,
    ) -> std::result::Result<Value, String> {
        Err("no sequences configured".into())
    }
}

/// The outside world of the engine.
#[derive(Debug, Clone)]
pub struct WorkflowPorts {
    pub mailer: Arc<dyn WorkflowMailer>,
    pub http: Arc<dyn HttpCaller>,
    pub sequences: Arc<dyn SequenceEnroller>,
}

impl WorkflowPorts {
    /// Mails logged, HTTP recorded and never sent, no sequences.
    pub fn offline() -> Self {
        Self {
            mailer: Arc::new(LogWorkflowMailer),
            http: Arc::new(crm_core::outbound::RecordingHttp::default()),
            sequences: Arc::new(NoSequences),
        }
    }
}

/// Everything a step is evaluated against.
#[derive(Debug, Clone)]
pub struct StepCtx<'a> {
    pub scope: &'a WorkspaceScope,
    pub workflow: &'a Workflow,
    pub enrollment: &'a WorkflowEnrollment,
    pub record: &'a Document,
    /// `{contact|deal|company: record, company?: ..., workflow, enrollment}` for placeholders.
    pub vars: &'a Value,
    pub now: Timestamp,
    /// Stable per (enrollment, run, step): idempotency key for ports that accept one.
    pub key: String,
}

/// The placeholder context of a record: the record under its type (and as `opportunity` for
/// deals), the contact's company when it has one, the workflow and the enrollment.
pub async fn vars(
    scope: &WorkspaceScope,
    wf: &Workflow,
    e: &WorkflowEnrollment,
    record: &Document,
) -> Value {
    let mut m = Map::new();
    let rec = Value::Object(record.clone());
    m.insert(e.entity_type.as_str().into(), rec.clone());
    if e.entity_type == EntityType::Deal {
        m.insert("opportunity".into(), rec);
    }
    if e.entity_type != EntityType::Company
        && let Some(id) = record
            .get("companyId")
            .and_then(Value::as_str)
            .and_then(|s| ObjectId::parse_str(s).ok())
        && let Ok(c) = scope.repo::<Company>().get(id).await
        && let Ok(doc) = crm_core::repo::to_document(&c)
    {
        m.insert("company".into(), Value::Object(doc));
    }
    m.insert(
        "workflow".into(),
        json!({"_id": wf.id.to_string(), "name": wf.name}),
    );
    m.insert(
        "enrollment".into(),
        json!({"_id": e.id.to_string(), "enrolledAt": e.enrolled_at.to_canonical()}),
    );
    Value::Object(m)
}

fn text(ctx: &StepCtx<'_>, s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(|t| render(t, ctx.vars, ctx.enrollment.entity_type.as_str()))
}

fn record_str<'a>(r: &'a Document, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The step's config with placeholders resolved: what it runs with (logged as `input`) and
/// what a dry run reports.
pub fn resolve_input(ctx: &StepCtx<'_>, step: &Step) -> Value {
    let c = &step.config;
    let rt = ctx.enrollment.entity_type.as_str();
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    let kind = c.action_type.as_deref().unwrap_or("");
    put("actionType", Some(json!(kind)));
    match kind {
        "send_email" => {
            let to = text(ctx, &c.recipient_email)
                .or_else(|| record_str(ctx.record, "email").map(str::to_owned));
            put("to", to.map(Value::from));
            put("subject", text(ctx, &c.email_subject).map(Value::from));
            put("body", text(ctx, &c.email_body).map(Value::from));
            put(
                "emailTemplateId",
                c.email_template_id.clone().map(Value::from),
            );
        }
        "update_field" => {
            put("fieldName", c.field_name.clone().map(Value::from));
            put(
                "fieldValue",
                c.field_value
                    .as_ref()
                    .map(|v| render_value(v, ctx.vars, rt)),
            );
        }
        "create_task" => {
            put("title", text(ctx, &c.task_title).map(Value::from));
            put(
                "description",
                text(ctx, &c.task_description).map(Value::from),
            );
            put(
                "dueDate",
                c.task_due_in_days
                    .map(|d| json!(ctx.now.plus_seconds((d * 86_400.0) as i64).to_canonical())),
            );
            put("assignee", c.task_assignee.clone().map(Value::from));
        }
        "add_tag" | "remove_tag" => put("tag", text(ctx, &c.tag_name).map(Value::from)),
        "send_notification" => {
            put(
                "message",
                text(ctx, &c.notification_message).map(Value::from),
            );
            put("userId", c.notification_user_id.clone().map(Value::from));
        }
        "enroll_workflow" => put(
            "targetWorkflowId",
            c.target_workflow_id.clone().map(Value::from),
        ),
        "enroll_sequence" => put("sequenceId", c.sequence_id.clone().map(Value::from)),
        "update_lead_score" => {
            put("eventType", c.score_event_type.clone().map(Value::from));
            put("points", c.score_points.map(Value::from));
            put("reason", text(ctx, &c.score_reason).map(Value::from));
        }
        "send_webhook" => {
            put("url", text(ctx, &c.webhook_url).map(Value::from));
            put(
                "method",
                Some(json!(c.webhook_method.as_deref().unwrap_or("POST"))),
            );
            let body = match &c.webhook_body {
                Some(b) => render_value(b, ctx.vars, rt),
                None => json!({
                    "event": "workflow.action",
                    "workflowId": ctx.workflow.id.to_string(),
                    "enrollmentId": ctx.enrollment.id.to_string(),
                    "entityType": rt,
                    "entityId": ctx.enrollment.entity_id.to_hex(),
                    "record": Value::Object(ctx.record.clone()),
                }),
            };
            put("body", Some(body));
            put(
                "headers",
                c.webhook_headers
                    .as_ref()
                    .map(|h| render_value(&Value::Object(h.clone()), ctx.vars, rt)),
            );
        }
        "create_activity" => {
            put("title", text(ctx, &c.activity_title).map(Value::from));
            put(
                "description",
                text(ctx, &c.activity_description).map(Value::from),
            );
        }
        "assign_owner" => {}
        _ => {}
    }
    Value::Object(m)
}

fn s<'a>(input: &'a Value, k: &str) -> Option<&'a str> {
    input.get(k).and_then(Value::as_str)
}

fn need<'a>(input: &'a Value, k: &str) -> std::result::Result<&'a str, String> {
    s(input, k)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("`{k}` resolved to nothing"))
}

/// The workspace's owner (who may have no membership row) for the services' write context.
async fn owner(stores: &Stores, scope: &WorkspaceScope) -> Result<UserId> {
    Ok(stores.global::<Project>().get(scope.id()).await?.user_id)
}

fn err(e: Error) -> String {
    match e {
        Error::Invalid { field, reason } => format!("invalid `{field}`: {reason}"),
        Error::NotFound => "the record no longer exists".into(),
        other => other.to_string(),
    }
}

async fn tag<E: WorkspaceEntity>(
    scope: &WorkspaceScope,
    id: ObjectId,
    tag: &str,
    add: bool,
) -> Result<()> {
    let u = if add {
        Update::new().add_to_set("tags", tag)
    } else {
        Update::new().pull("tags", tag)
    };
    scope.repo::<E>().update(id, &u).await.map(|_| ())
}

/// Users assignable round-robin: the owner and active members other than viewers, by id.
async fn assignees(scope: &WorkspaceScope, owner: UserId) -> Result<Vec<UserId>> {
    let opts = FindOptions {
        sort: vec![SortKey::asc("_id")],
        ..FindOptions::default()
    };
    let members = scope
        .repo::<TeamMember>()
        .find(&Filter::eq("status", "active"), &opts)
        .await?;
    let mut ids: Vec<UserId> = members
        .into_iter()
        .filter(|m| m.status == MemberStatus::Active && m.role != Role::Viewer)
        .filter_map(|m| m.user_id)
        .collect();
    ids.push(owner);
    ids.sort_by_key(|u| u.to_string());
    ids.dedup();
    Ok(ids)
}

/// Patches one field of the record through the core service of its type, so the value is
/// checked as the route would check it.
async fn patch_field(
    wctx: &WriteCtx,
    et: EntityType,
    id: ObjectId,
    field: &str,
    value: Value,
) -> Result<()> {
    let mut body = Map::new();
    body.insert(field.to_owned(), value);
    match et {
        EntityType::Contact => {
            let p = ContactPatch::parse(&body)?;
            contacts::patch(wctx, ContactId(id), &p).await.map(|_| ())
        }
        EntityType::Company => {
            let p = companies::CompanyPatch::parse(&body)?;
            companies::patch(wctx, CompanyId(id), &p).await.map(|_| ())
        }
        EntityType::Deal => {
            let p: opportunities::PatchOpportunity = serde_json::from_value(Value::Object(body))
                .map_err(|e| Error::invalid(field, e.to_string()))?;
            opportunities::patch(&wctx.scope, wctx.actor, OpportunityId(id), p, wctx.now)
                .await
                .map(|_| ())
        }
    }
}

/// Runs an action step; `Ok` is its output for the log, `Err` its error.
pub async fn run(
    engine: &Engine,
    ctx: &StepCtx<'_>,
    step: &Step,
    input: &Value,
) -> std::result::Result<Value, String> {
    let scope = ctx.scope;
    let e = ctx.enrollment;
    let et = e.entity_type;
    let id = e.entity_id;
    let stores = engine.stores();
    let ports = engine.ports();
    let kind = step.config.action_type.as_deref().unwrap_or("");
    let owner = owner(stores, scope).await.map_err(err)?;
    let wctx = WriteCtx {
        scope: scope.clone(),
        actor: ctx.workflow.user_id,
        owner,
        now: ctx.now,
    };
    match kind {
        "send_email" => {
            let to = need(input, "to").map_err(|_| "the record has no email address".to_owned())?;
            let mail = OutgoingMail {
                to: to.to_owned(),
                subject: s(input, "subject").unwrap_or_default().to_owned(),
                body: s(input, "body").unwrap_or_default().to_owned(),
                workflow_id: ctx.workflow.id.to_string(),
                enrollment_id: e.id.to_string(),
            };
            ports.mailer.send(mail).await?;
            Ok(json!({"to": to}))
        }
        "update_field" => {
            let field = need(input, "fieldName")?;
            let value = input.get("fieldValue").cloned().unwrap_or(Value::Null);
            patch_field(&wctx, et, id, field, value.clone())
                .await
                .map_err(err)?;
            Ok(json!({"fieldName": field, "fieldValue": value}))
        }
        "create_task" => {
            let assignee = s(input, "assignee")
                .and_then(|a| a.parse::<UserId>().ok())
                .or_else(|| {
                    record_str(ctx.record, "assignedTo").and_then(|a| a.parse::<UserId>().ok())
                });
            let due = s(input, "dueDate").and_then(|d| Timestamp::parse(d).ok());
            let mut cmd = tasks::NewTask {
                title: need(input, "title")?.to_owned(),
                description: s(input, "description").map(str::to_owned),
                due_date: due,
                assigned_to: assignee,
                ..tasks::NewTask::default()
            };
            match et {
                EntityType::Contact => cmd.related_contact_id = Some(ContactId(id)),
                EntityType::Company => cmd.related_company_id = Some(CompanyId(id)),
                EntityType::Deal => cmd.related_opportunity_id = Some(OpportunityId(id)),
            }
            let actor = tasks::Actor {
                user: ctx.workflow.user_id,
                owner,
                now: ctx.now,
            };
            let t = tasks::create(scope, &actor, cmd).await.map_err(err)?;
            Ok(json!({"taskId": t.id.to_string()}))
        }
        "add_tag" | "remove_tag" => {
            let t = need(input, "tag")?;
            let add = kind == "add_tag";
            match et {
                EntityType::Contact => tag::<Contact>(scope, id, t, add).await,
                EntityType::Company => tag::<Company>(scope, id, t, add).await,
                EntityType::Deal => tag::<Opportunity>(scope, id, t, add).await,
            }
            .map_err(err)?;
            Ok(json!({"tag": t}))
        }
        "assign_owner" => {
            let users = assignees(scope, owner).await.map_err(err)?;
            // The counter lives in the store, so every server continues the same rotation.
            let counter = scope
                .repo::<WorkspaceCounter>()
                .find_one_and_update(
                    &Filter::eq("name", format!("workflow-assign:{}", ctx.workflow.id)),
                    &Update::new().inc("seq", 1),
                    true,
                )
                .await
                .map_err(err)?
                .ok_or_else(|| "the round-robin counter could not be read".to_owned())?;
            let n = users.len().max(1) as u64;
            let pick = users
                .get((counter.seq.saturating_sub(1) % n) as usize)
                .copied()
                .unwrap_or(owner);
            patch_field(&wctx, et, id, "assignedTo", json!(pick.to_string()))
                .await
                .map_err(err)?;
            Ok(json!({"assignedTo": pick.to_string()}))
        }
        "send_notification" => {
            let user = s(input, "userId")
                .and_then(|u| u.parse::<UserId>().ok())
                .or_else(|| {
                    record_str(ctx.record, "assignedTo").and_then(|a| a.parse::<UserId>().ok())
                })
                .unwrap_or(ctx.workflow.user_id);
            let notice = Notice::new(
                NotificationType::Custom,
                ctx.workflow.name.clone(),
                need(input, "message")?,
            )
            .about(RelatedEntityType::Workflow, ctx.workflow.id.object_id());
            let n = notify(scope, user, notice).await.map_err(err)?;
            Ok(json!({"notificationId": n.id.to_string(), "userId": user.to_string()}))
        }
        "enroll_workflow" => {
            let target = need(input, "targetWorkflowId")?
                .parse::<super::model::WorkflowId>()
                .map_err(|_| "targetWorkflowId is not an id".to_owned())?;
            let wf = scope
                .repo::<Workflow>()
                .get(target)
                .await
                .map_err(|_| "the target workflow does not exist".to_owned())?;
            let out = engine
                .enroll(
                    scope,
                    &wf,
                    et,
                    id,
                    super::engine::Enroll::manual(None, super::model::EnrollmentSource::Automatic),
                )
                .await
                .map_err(err)?;
            Ok(json!({"enrollmentId": out.enrollment.id.to_string(), "created": out.created}))
        }
        "enroll_sequence" => {
            if et != EntityType::Contact {
                return Err("only contacts can be enrolled in a sequence".into());
            }
            let seq = need(input, "sequenceId")?;
            ports
                .sequences
                .enroll(scope, seq, ContactId(id), &ctx.key)
                .await
        }
        "update_lead_score" => {
            if et != EntityType::Contact {
                return Err("lead scores belong to contacts".into());
            }
            let event = s(input, "eventType").unwrap_or("workflow_action");
            let points = match input.get("points").and_then(Value::as_f64) {
                Some(p) => p.round() as i64,
                None => lead::points_for(event)
                    .ok_or_else(|| format!("`{event}` is not in the point table"))?,
            };
            let reason = s(input, "reason").unwrap_or("workflow");
            lead::add_points(
                scope,
                ContactId(id),
                event,
                points,
                reason,
                Some(&ctx.key),
                ctx.now,
            )
            .await
            .map_err(err)?;
            Ok(json!({"points": points, "eventType": event}))
        }
        "send_webhook" => {
            let url = need(input, "url")?;
            let method = s(input, "method").unwrap_or("POST").to_owned();
            let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
            if let Some(h) = input.get("headers").and_then(Value::as_object) {
                for (k, v) in h {
                    if let Some(v) = v.as_str() {
                        headers.push((k.clone(), v.to_owned()));
                    }
                }
            }
            headers.push(("X-Clianta-Delivery-ID".into(), ctx.key.clone()));
            let body = if method == "GET" {
                Vec::new()
            } else {
                serde_json::to_vec(input.get("body").unwrap_or(&Value::Null))
                    .map_err(|e| e.to_string())?
            };
            let resp = ports
                .http
                .call(OutboundRequest {
                    method,
                    url: url.to_owned(),
                    headers,
                    body,
                    timeout_secs: 10,
                })
                .await?;
            if resp.status >= 400 {
                return Err(format!("the webhook answered {}", resp.status));
            }
            Ok(json!({"status": resp.status}))
        }
        "create_activity" => {
            let mut a = Activity::new(
                scope.id(),
                ActivityType::WorkflowAction,
                need(input, "title")?,
            );
            a.description = s(input, "description").map(str::to_owned);
            a.user_id = Some(ctx.workflow.user_id);
            a.entity_type = Some(match et {
                EntityType::Contact => ActivityEntityType::Contact,
                EntityType::Deal => ActivityEntityType::Deal,
                EntityType::Company => ActivityEntityType::Company,
            });
            a.entity_id = Some(id);
            if et == EntityType::Deal {
                a.opportunity_id = Some(OpportunityId(id));
            }
            a.workflow_id = Some(ctx.workflow.id.object_id());
            a.workflow_enrollment_id = Some(e.id.object_id());
            a.workflow_step_id = Some(step.id.clone());
            a.automated = true;
            let a = scope.repo::<Activity>().insert(&a).await.map_err(err)?;
            Ok(json!({"activityId": a.id.to_string()}))
        }
        other => Err(format!("unknown action type `{other}`")),
    }
}
