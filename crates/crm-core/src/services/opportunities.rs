//! Opportunities (deals): validation of create and patch, references checked inside the
//! workspace, denormalised contact and company names, stage moves with history and
//! `StageChangeEvent`s, won/lost stamping, and the kanban board.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::pipelines::{default_pipeline, nullable, text};
use crate::engine::Document;
use crate::entities::activity::{Activity, ActivityEntityType, ActivityId, ActivityType};
use crate::entities::company::{Company, CompanyId};
use crate::entities::contact::{Contact, ContactId};
use crate::entities::custom_field::CustomFieldDefinition;
use crate::entities::opportunity::{
    DealPriority, DealTemperature, Opportunity, OpportunityId, OpportunityStatus, StageVisit,
};
use crate::entities::pipeline::{Pipeline, PipelineId, Stage, StageId, StageOutcome};
use crate::entities::stage_change_event::{StageChangeEvent, StageChangeMeta};
use crate::entities::team_member::TeamMember;
use crate::error::{Error, Result};
use crate::id::{ObjectId, UserId};
use crate::path::FieldPath;
use crate::query::{Filter, FindOptions, GroupBy, SortKey, Update};
use crate::repo::{WorkspaceScope, to_document};
use crate::services::custom_fields::validate_values;
use crate::time::Timestamp;

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 2000;
pub const SOURCE_MAX: usize = 100;
pub const LOST_REASON_MAX: usize = 500;
pub const NEXT_ACTION_MAX: usize = 200;
pub const TAG_MAX: usize = 50;
pub const TAGS_MAX: usize = 100;
pub const ASSOCIATED_MAX: usize = 100;
/// Kanban columns show at most this many deals unless asked otherwise.
pub const KANBAN_PER_STAGE: u64 = 50;
pub const KANBAN_PER_STAGE_MAX: u64 = 200;
/// A stage move retries its compare-and-set this often before answering a conflict.
const MOVE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOpportunity {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub probability: Option<f64>,
    /// Absent: the workspace's default pipeline.
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
    /// Absent: the pipeline's first stage.
    #[serde(default)]
    pub stage_id: Option<StageId>,
    #[serde(default)]
    pub expected_close_date: Option<Timestamp>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    #[serde(default)]
    pub company_id: Option<CompanyId>,
    #[serde(default)]
    pub associated_contacts: Option<Vec<ContactId>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub status: Option<OpportunityStatus>,
    #[serde(default)]
    pub lost_reason: Option<String>,
    /// Absent: the caller.
    #[serde(default)]
    pub assigned_to: Option<UserId>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub priority: Option<DealPriority>,
    #[serde(default)]
    pub next_action: Option<String>,
    #[serde(default)]
    pub next_action_due_date: Option<Timestamp>,
    #[serde(default)]
    pub deal_temperature: Option<DealTemperature>,
    #[serde(default)]
    pub custom_fields: Option<Map<String, Value>>,
}

/// A PATCH: absent keys stay, `null` clears optional ones. Stage changes go through [`move_to`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchOpportunity {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub probability: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub expected_close_date: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    pub contact_id: Option<Option<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub company_id: Option<Option<CompanyId>>,
    #[serde(default)]
    pub associated_contacts: Option<Vec<ContactId>>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub source: Option<Option<String>>,
    #[serde(default)]
    pub status: Option<OpportunityStatus>,
    #[serde(default, deserialize_with = "nullable")]
    pub lost_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub assigned_to: Option<Option<UserId>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub priority: Option<Option<DealPriority>>,
    #[serde(default, deserialize_with = "nullable")]
    pub next_action: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub next_action_due_date: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    pub deal_temperature: Option<Option<DealTemperature>>,
    /// Merged key by key; a `null` value removes the key.
    #[serde(default)]
    pub custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveOpportunity {
    pub stage_id: StageId,
    /// Another pipeline of the workspace to move into; the current one when absent.
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
}

/// List filters on indexed fields (each optional, all must hold).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub pipeline_id: Option<PipelineId>,
    pub stage_id: Option<StageId>,
    pub status: Option<OpportunityStatus>,
    pub assigned_to: Option<UserId>,
    pub contact_id: Option<ContactId>,
    pub company_id: Option<CompanyId>,
    pub priority: Option<DealPriority>,
}

fn idv(id: impl std::fmt::Display) -> Value {
    Value::String(id.to_string())
}

fn enum_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

/// Live (not soft-deleted) deals only.
pub fn live() -> Filter {
    Filter::eq("deletedAt", Value::Null)
}

impl ListFilter {
    pub fn to_filter(&self) -> Result<Filter> {
        let mut f = live();
        let pairs = [
            ("pipelineId", self.pipeline_id.map(idv)),
            ("stageId", self.stage_id.map(idv)),
            ("assignedTo", self.assigned_to.map(idv)),
            ("contactId", self.contact_id.map(idv)),
            ("companyId", self.company_id.map(idv)),
            ("status", self.status.as_ref().map(enum_value).transpose()?),
            (
                "priority",
                self.priority.as_ref().map(enum_value).transpose()?,
            ),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                f = f.and(Filter::eq(k, v));
            }
        }
        Ok(f)
    }
}

fn title(s: &str) -> Result<String> {
    text("title", s, TITLE_MAX, true)?.ok_or_else(|| Error::invalid("title", "is required"))
}

fn value(v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid("value", "must be a number of 0 or more"))
    }
}

fn currency(c: &str) -> Result<String> {
    let c = c.trim();
    if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
        Ok(c.to_ascii_uppercase())
    } else {
        Err(Error::invalid(
            "currency",
            "must be a 3-letter currency code",
        ))
    }
}

fn probability(p: f64) -> Result<f64> {
    if (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::invalid("probability", "must be between 0 and 100"))
    }
}

fn tags(v: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in v.iter().enumerate() {
        if let Some(t) = text(&format!("tags[{i}]"), t, TAG_MAX, false)?
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    if out.len() > TAGS_MAX {
        return Err(Error::invalid("tags", format!("at most {TAGS_MAX} tags")));
    }
    Ok(out)
}

fn opt_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>> {
    v.map(|s| text(field, s, max, false))
        .transpose()
        .map(Option::flatten)
}

async fn contact_name(scope: &WorkspaceScope, id: ContactId) -> Result<String> {
    match scope.repo::<Contact>().get(id).await {
        Ok(c) if c.deleted_at.is_none() => Ok(format!("{} {}", c.first_name, c.last_name)
            .trim()
            .to_owned()),
        Ok(_) | Err(Error::NotFound) => Err(Error::invalid(
            "contactId",
            "no such contact in this workspace",
        )),
        Err(e) => Err(e),
    }
}

async fn company_name(scope: &WorkspaceScope, id: CompanyId) -> Result<String> {
    match scope.repo::<Company>().get(id).await {
        Ok(c) if c.deleted_at.is_none() => Ok(c.name),
        Ok(_) | Err(Error::NotFound) => Err(Error::invalid(
            "companyId",
            "no such company in this workspace",
        )),
        Err(e) => Err(e),
    }
}

/// Every id must be a live contact of the workspace (one query). Returns them deduplicated.
async fn check_contacts(scope: &WorkspaceScope, ids: &[ContactId]) -> Result<Vec<ContactId>> {
    let mut unique: Vec<ContactId> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    if unique.len() > ASSOCIATED_MAX {
        return Err(Error::invalid(
            "associatedContacts",
            format!("at most {ASSOCIATED_MAX} contacts"),
        ));
    }
    if unique.is_empty() {
        return Ok(unique);
    }
    let f = Filter::In("_id".into(), unique.iter().map(|i| idv(*i)).collect()).and(live());
    let found = scope.repo::<Contact>().count(&f).await?;
    if found != unique.len() as u64 {
        return Err(Error::invalid(
            "associatedContacts",
            "every contact must exist in this workspace",
        ));
    }
    Ok(unique)
}

/// The assignee must be the caller or an active member of the workspace.
async fn check_assignee(scope: &WorkspaceScope, caller: UserId, who: UserId) -> Result<()> {
    if who == caller {
        return Ok(());
    }
    let f = Filter::eq("userId", idv(who)).and(Filter::eq("status", "active"));
    if scope.repo::<TeamMember>().count(&f).await? == 0 {
        return Err(Error::invalid(
            "assignedTo",
            "must be an active member of this workspace",
        ));
    }
    Ok(())
}

async fn custom_fields(
    scope: &WorkspaceScope,
    values: &Map<String, Value>,
    partial: bool,
) -> Result<Map<String, Value>> {
    let defs = scope
        .repo::<CustomFieldDefinition>()
        .find(
            &Filter::eq("entityType", "deal").and(Filter::eq("isActive", true)),
            &FindOptions::default(),
        )
        .await?;
    if defs.is_empty() && values.is_empty() {
        return Ok(Map::new());
    }
    validate_values(&defs, "deal", values, partial)
}

/// An active pipeline of the workspace (`field` names the reference in errors).
async fn active_pipeline(scope: &WorkspaceScope, id: PipelineId) -> Result<Pipeline> {
    match scope.repo::<Pipeline>().get(id).await {
        Ok(p) if p.is_active => Ok(p),
        Ok(_) => Err(Error::invalid("pipelineId", "the pipeline is archived")),
        Err(Error::NotFound) => Err(Error::invalid(
            "pipelineId",
            "no such pipeline in this workspace",
        )),
        Err(e) => Err(e),
    }
}

fn stage_in(p: &Pipeline, id: StageId) -> Result<Stage> {
    p.stage(id)
        .cloned()
        .ok_or_else(|| Error::invalid("stageId", "no such stage in the pipeline"))
}

fn status_of(outcome: Option<StageOutcome>) -> Option<OpportunityStatus> {
    outcome.map(|o| match o {
        StageOutcome::Won => OpportunityStatus::Won,
        StageOutcome::Lost => OpportunityStatus::Lost,
    })
}

fn is_closed(s: OpportunityStatus) -> bool {
    matches!(s, OpportunityStatus::Won | OpportunityStatus::Lost)
}

pub async fn create(
    scope: &WorkspaceScope,
    caller: UserId,
    cmd: CreateOpportunity,
    now: Timestamp,
) -> Result<Opportunity> {
    let title = title(cmd.title.as_deref().unwrap_or_default())?;
    let value = value(
        cmd.value
            .ok_or_else(|| Error::invalid("value", "is required"))?,
    )?;
    let pipeline = match cmd.pipeline_id {
        Some(id) => active_pipeline(scope, id).await?,
        None => default_pipeline(scope).await?.ok_or_else(|| {
            Error::invalid(
                "pipelineId",
                "is required: the workspace has no default pipeline",
            )
        })?,
    };
    let stage = match cmd.stage_id {
        Some(id) => stage_in(&pipeline, id)?,
        None => pipeline
            .stages
            .iter()
            .min_by_key(|s| s.order)
            .cloned()
            .ok_or_else(|| Error::invalid("stageId", "the pipeline has no stages"))?,
    };
    let mut o = Opportunity::new(scope.id(), caller, pipeline.id, stage.id, title, value);
    if let Some(c) = cmd.currency.as_deref() {
        o.currency = currency(c)?;
    }
    o.probability = cmd.probability.map(probability).transpose()?;
    o.expected_close_date = cmd.expected_close_date;
    o.description = opt_text("description", cmd.description.as_deref(), DESCRIPTION_MAX)?;
    o.source = opt_text("source", cmd.source.as_deref(), SOURCE_MAX)?;
    o.lost_reason = opt_text("lostReason", cmd.lost_reason.as_deref(), LOST_REASON_MAX)?;
    o.next_action = opt_text("nextAction", cmd.next_action.as_deref(), NEXT_ACTION_MAX)?;
    o.next_action_due_date = cmd.next_action_due_date;
    o.priority = cmd.priority;
    o.deal_temperature = cmd.deal_temperature;
    o.tags = tags(cmd.tags.as_deref().unwrap_or_default())?;
    o.custom_fields = custom_fields(scope, &cmd.custom_fields.unwrap_or_default(), false).await?;
    if let Some(id) = cmd.contact_id {
        o.contact_name = Some(contact_name(scope, id).await?);
        o.contact_id = Some(id);
    }
    if let Some(id) = cmd.company_id {
        o.company_name = Some(company_name(scope, id).await?);
        o.company_id = Some(id);
    }
    o.associated_contacts = check_contacts(
        scope,
        cmd.associated_contacts.as_deref().unwrap_or_default(),
    )
    .await?;
    let assignee = cmd.assigned_to.unwrap_or(caller);
    check_assignee(scope, caller, assignee).await?;
    o.assigned_to = Some(assignee);
    // A won/lost stage decides the status; otherwise the given one.
    o.status = status_of(stage.outcome).unwrap_or(cmd.status.unwrap_or_default());
    if is_closed(o.status) {
        o.actual_close_date = Some(now);
    }
    o.last_activity_at = Some(now);
    o.stage_history = vec![StageVisit {
        stage_id: stage.id,
        stage_name: stage.name.clone(),
        entered_at: now,
        exited_at: None,
        duration: None,
    }];
    let o = scope.repo::<Opportunity>().insert(&o).await?;
    record_event(scope, &o, None, &stage, caller, now).await?;
    Ok(o)
}

async fn record_event(
    scope: &WorkspaceScope,
    o: &Opportunity,
    from: Option<&Stage>,
    to: &Stage,
    who: UserId,
    now: Timestamp,
) -> Result<()> {
    let mut e = StageChangeEvent::new(scope.id(), o.id, o.pipeline_id, to.id, &to.name, now);
    e.old_stage_id = from.map(|s| s.id);
    e.old_stage_name = from.map(|s| s.name.clone());
    e.user_id = Some(who);
    e.metadata = StageChangeMeta {
        value: Some(o.value),
        probability: o.probability,
        status: Some(o.status),
        assigned_to: o.assigned_to,
        extra: Map::new(),
    };
    scope.repo::<StageChangeEvent>().insert(&e).await?;
    Ok(())
}

/// A live deal of the workspace.
pub async fn get(scope: &WorkspaceScope, id: OpportunityId) -> Result<Opportunity> {
    let o = scope.repo::<Opportunity>().get(id).await?;
    if o.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    Ok(o)
}

fn set_opt<T: serde::Serialize>(u: Update, path: &'static str, v: Option<T>) -> Result<Update> {
    Ok(match v {
        Some(v) => u.set(path, enum_value(&v)?),
        None => u.unset(path),
    })
}

fn ts(t: Timestamp) -> String {
    t.to_canonical()
}

pub async fn patch(
    scope: &WorkspaceScope,
    caller: UserId,
    id: OpportunityId,
    cmd: PatchOpportunity,
    now: Timestamp,
) -> Result<Opportunity> {
    let cur = get(scope, id).await?;
    let mut u = Update::new();
    let mut activity = false;
    if let Some(t) = cmd.title.as_deref() {
        u = u.set("title", title(t)?);
    }
    if let Some(v) = cmd.value {
        u = u.set("value", value(v)?);
    }
    if let Some(c) = cmd.currency.as_deref() {
        u = u.set("currency", currency(c)?);
    }
    if let Some(p) = cmd.probability {
        u = set_opt(u, "probability", p.map(probability).transpose()?)?;
    }
    if let Some(d) = cmd.expected_close_date {
        u = set_opt(u, "expectedCloseDate", d.map(ts))?;
    }
    for (field, v, max) in [
        ("description", &cmd.description, DESCRIPTION_MAX),
        ("source", &cmd.source, SOURCE_MAX),
        ("lostReason", &cmd.lost_reason, LOST_REASON_MAX),
        ("nextAction", &cmd.next_action, NEXT_ACTION_MAX),
    ] {
        if let Some(v) = v {
            u = set_opt(u, field, opt_text(field, v.as_deref(), max)?)?;
            activity |= field == "nextAction";
        }
    }
    if let Some(d) = cmd.next_action_due_date {
        u = set_opt(u, "nextActionDueDate", d.map(ts))?;
        activity = true;
    }
    if let Some(p) = cmd.priority {
        u = set_opt(u, "priority", p)?;
    }
    if let Some(t) = cmd.deal_temperature {
        u = set_opt(u, "dealTemperature", t)?;
    }
    if let Some(t) = cmd.tags.as_deref() {
        u = u.set("tags", Value::from(tags(t)?));
    }
    match cmd.contact_id {
        Some(Some(c)) => {
            let name = contact_name(scope, c).await?;
            u = u.set("contactId", idv(c)).set("contactName", name);
        }
        Some(None) => u = u.unset("contactId").unset("contactName"),
        None => {}
    }
    match cmd.company_id {
        Some(Some(c)) => {
            let name = company_name(scope, c).await?;
            u = u.set("companyId", idv(c)).set("companyName", name);
        }
        Some(None) => u = u.unset("companyId").unset("companyName"),
        None => {}
    }
    if let Some(a) = cmd.associated_contacts.as_deref() {
        let ids = check_contacts(scope, a).await?;
        u = u.set(
            "associatedContacts",
            Value::Array(ids.into_iter().map(idv).collect()),
        );
    }
    if let Some(a) = cmd.assigned_to {
        if let Some(who) = a {
            check_assignee(scope, caller, who).await?;
        }
        u = set_opt(u, "assignedTo", a.map(idv))?;
    }
    if let Some(s) = cmd.status
        && s != cur.status
    {
        u = u.set("status", enum_value(&s)?);
        if is_closed(s) {
            u = u.set("actualCloseDate", ts(now));
        } else {
            u = u.unset("actualCloseDate");
        }
        activity = true;
    }
    if let Some(cf) = cmd.custom_fields.as_ref().filter(|m| !m.is_empty()) {
        for (k, v) in custom_fields(scope, cf, true).await? {
            let path = FieldPath::parse(&format!("customFields.{k}"))
                .map_err(|_| Error::invalid(format!("customFields.{k}"), "is not a valid key"))?;
            u = if v.is_null() {
                u.unset(path)
            } else {
                u.set(path, v)
            };
        }
    }
    if u.is_empty() {
        return Ok(cur);
    }
    if activity {
        u = u.set("lastActivityAt", ts(now));
    }
    let o = scope.repo::<Opportunity>().update(id, &u).await?;
    super::notifications::deal_closed(scope, caller, cur.status, &o).await;
    Ok(o)
}

/// Moves a live deal to the trash (`deletedAt`); it disappears from reads and lists but keeps
/// its pipeline and stage in use until purged.
pub async fn delete(scope: &WorkspaceScope, id: OpportunityId, now: Timestamp) -> Result<()> {
    let live_one = Filter::eq("_id", idv(id)).and(live());
    scope
        .repo::<Opportunity>()
        .find_one_and_update(&live_one, &Update::new().set("deletedAt", ts(now)), false)
        .await?
        .map(drop)
        .ok_or(Error::NotFound)
}

/// Takes a deal out of the trash; a live one is returned unchanged.
pub async fn restore(scope: &WorkspaceScope, id: OpportunityId) -> Result<Opportunity> {
    let trashed = Filter::eq("_id", idv(id)).and(Filter::Ne("deletedAt".into(), Value::Null));
    match scope
        .repo::<Opportunity>()
        .find_one_and_update(&trashed, &Update::new().unset("deletedAt"), false)
        .await?
    {
        Some(o) => Ok(o),
        None => get(scope, id).await,
    }
}

/// Deletes a deal for good (live or trashed) with its timeline activities; its stage-change
/// log stays for pipeline statistics.
pub async fn purge(scope: &WorkspaceScope, id: OpportunityId) -> Result<()> {
    scope.repo::<Opportunity>().get(id).await?;
    scope
        .repo::<Activity>()
        .delete_many(&Filter::eq("opportunityId", idv(id)))
        .await?;
    scope.repo::<Opportunity>().delete(id).await
}

/// Moves a deal to a stage (of its pipeline, or of `pipelineId`): closes the open history
/// visit, appends the new one, writes a `StageChangeEvent`, and stamps the status: entering a
/// won/lost stage sets it and `actualCloseDate`, leaving one for an open stage reopens the deal.
/// Moving to the current stage changes nothing.
pub async fn move_to(
    scope: &WorkspaceScope,
    caller: UserId,
    id: OpportunityId,
    cmd: MoveOpportunity,
    now: Timestamp,
) -> Result<Opportunity> {
    move_checked(scope, caller, id, cmd, now)
        .await
        .map(|(o, _)| o)
}

/// [`move_to`], also saying whether the deal moved (`false`: it already was in the stage).
async fn move_checked(
    scope: &WorkspaceScope,
    caller: UserId,
    id: OpportunityId,
    cmd: MoveOpportunity,
    now: Timestamp,
) -> Result<(Opportunity, bool)> {
    let repo = scope.repo::<Opportunity>();
    for _ in 0..MOVE_ATTEMPTS {
        let cur = get(scope, id).await?;
        let pipeline = active_pipeline(scope, cmd.pipeline_id.unwrap_or(cur.pipeline_id)).await?;
        let to = stage_in(&pipeline, cmd.stage_id)?;
        if to.id == cur.stage_id {
            return Ok((cur, false));
        }
        let from_pipeline = if pipeline.id == cur.pipeline_id {
            Some(pipeline.clone())
        } else {
            scope.repo::<Pipeline>().get(cur.pipeline_id).await.ok()
        };
        let from = from_pipeline
            .as_ref()
            .and_then(|p| p.stage(cur.stage_id).cloned());
        let mut history = cur.stage_history.clone();
        if let Some(open) = history.iter_mut().rev().find(|v| v.exited_at.is_none()) {
            open.exited_at = Some(now);
            // Millisecond counts fit an f64 exactly for any real duration.
            open.duration = Some((now.millis() - open.entered_at.millis()).max(0) as f64);
        }
        history.push(StageVisit {
            stage_id: to.id,
            stage_name: to.name.clone(),
            entered_at: now,
            exited_at: None,
            duration: None,
        });
        let history = serde_json::to_value(&history).map_err(Error::internal)?;
        let mut u = Update::new()
            .set("pipelineId", idv(pipeline.id))
            .set("stageId", idv(to.id))
            .set("stageHistory", history)
            .set("lastActivityAt", ts(now));
        match status_of(to.outcome) {
            Some(s) => {
                u = u
                    .set("status", enum_value(&s)?)
                    .set("actualCloseDate", ts(now));
            }
            None if is_closed(cur.status) => {
                u = u.set("status", "open").unset("actualCloseDate");
            }
            None => {}
        }
        // Compare-and-set on the stage and the last write, so concurrent moves never lose a
        // history entry.
        let unchanged = Filter::eq("_id", idv(id))
            .and(Filter::eq("stageId", idv(cur.stage_id)))
            .and(match cur.updated_at {
                Some(t) => Filter::eq("updatedAt", ts(t)),
                None => Filter::Exists("updatedAt".into(), false),
            });
        if let Some(o) = repo.find_one_and_update(&unchanged, &u, false).await? {
            record_event(scope, &o, from.as_ref(), &to, caller, now).await?;
            log_move(scope, &o, from.as_ref(), &to, caller).await?;
            super::notifications::deal_closed(scope, caller, cur.status, &o).await;
            return Ok((o, true));
        }
    }
    Err(Error::conflict("stageId"))
}

/// The timeline entries of a move: a `stage_change` activity on the deal, and one on its company
/// when it has one (target behaviour 30). They do not count as the deal's own activities.
async fn log_move(
    scope: &WorkspaceScope,
    o: &Opportunity,
    from: Option<&Stage>,
    to: &Stage,
    who: UserId,
) -> Result<()> {
    let from_name = from.map_or("(none)", |s| s.name.as_str());
    let title = format!("Moved from {from_name} to {}", to.name);
    let mut meta = Map::new();
    meta.insert("fromStage".into(), Value::String(from_name.to_owned()));
    meta.insert("toStage".into(), Value::String(to.name.clone()));
    let mut a = Activity::new(scope.id(), ActivityType::StageChange, &title);
    a.user_id = Some(who);
    a.opportunity_id = Some(o.id);
    a.entity_type = Some(ActivityEntityType::Opportunity);
    a.entity_id = Some(o.id.into());
    a.metadata = Some(Value::Object(meta));
    a.is_auto_logged = true;
    let repo = scope.repo::<Activity>();
    if let Some(c) = o.company_id {
        let mut ca = a.clone();
        ca.id = ActivityId::new();
        ca.entity_type = Some(ActivityEntityType::Company);
        ca.entity_id = Some(c.into());
        ca.title = format!("{}: {title}", o.title);
        repo.insert(&ca).await?;
    }
    repo.insert(&a).await?;
    Ok(())
}

/// Resolves `contact` and `company` on each document (one query per kind); a reference to a
/// missing record resolves to `null`.
pub async fn expand(
    scope: &WorkspaceScope,
    docs: &mut [Document],
    contact: bool,
    company: bool,
) -> Result<()> {
    async fn resolve<E: crate::repo::WorkspaceEntity>(
        scope: &WorkspaceScope,
        docs: &mut [Document],
        key: &str,
        into: &str,
    ) -> Result<()> {
        let ids: HashSet<String> = docs
            .iter()
            .filter_map(|d| d.get(key).and_then(Value::as_str).map(str::to_owned))
            .collect();
        let found: HashMap<String, Value> = if ids.is_empty() {
            HashMap::new()
        } else {
            let f =
                Filter::In("_id".into(), ids.into_iter().map(Value::String).collect()).and(live());
            scope
                .repo::<E>()
                .find(&f, &FindOptions::default())
                .await?
                .iter()
                .map(|e| {
                    let d = to_document(e)?;
                    let id = d
                        .get("_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    Ok((id, Value::Object(d)))
                })
                .collect::<Result<_>>()?
        };
        for d in docs.iter_mut() {
            let v = d
                .get(key)
                .and_then(Value::as_str)
                .and_then(|id| found.get(id).cloned())
                .unwrap_or(Value::Null);
            d.insert(into.to_owned(), v);
        }
        Ok(())
    }
    if contact {
        resolve::<Contact>(scope, docs, "contactId", "contact").await?;
    }
    if company {
        resolve::<Company>(scope, docs, "companyId", "company").await?;
    }
    Ok(())
}

/// Keeps `contactName` in step after a contact is renamed (`None`: it is gone).
pub async fn sync_contact_name(
    scope: &WorkspaceScope,
    contact: ContactId,
    name: Option<&str>,
) -> Result<u64> {
    let f = Filter::eq("contactId", idv(contact));
    let u = match name {
        Some(n) => Update::new().set("contactName", n),
        None => Update::new().unset("contactName"),
    };
    scope.repo::<Opportunity>().update_many(&f, &u).await
}

/// Keeps `companyName` in step after a company is renamed (`None`: it is gone).
pub async fn sync_company_name(
    scope: &WorkspaceScope,
    company: CompanyId,
    name: Option<&str>,
) -> Result<u64> {
    let f = Filter::eq("companyId", idv(company));
    let u = match name {
        Some(n) => Update::new().set("companyName", n),
        None => Update::new().unset("companyName"),
    };
    scope.repo::<Opportunity>().update_many(&f, &u).await
}

#[derive(Debug, Clone, PartialEq)]
pub struct KanbanColumn {
    pub stage: Stage,
    /// Every live deal in the stage, beyond the ones listed.
    pub count: u64,
    pub total_value: f64,
    /// Newest first, at most the requested number.
    pub opportunities: Vec<Opportunity>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kanban {
    pub pipeline: Pipeline,
    pub columns: Vec<KanbanColumn>,
}

/// The board of a pipeline: its stages in order, each with its count and value total (one
/// aggregation for all stages) and its newest deals (one query for every stage that fits the
/// bound, one more per stage that does not).
pub async fn kanban(scope: &WorkspaceScope, id: PipelineId, per_stage: u64) -> Result<Kanban> {
    if !(1..=KANBAN_PER_STAGE_MAX).contains(&per_stage) {
        return Err(Error::invalid(
            "perStage",
            format!("must be between 1 and {KANBAN_PER_STAGE_MAX}"),
        ));
    }
    let mut pipeline = scope.repo::<Pipeline>().get(id).await?;
    pipeline.stages.sort_by_key(|s| s.order);
    let repo = scope.repo::<Opportunity>();
    let base = Filter::eq("pipelineId", idv(id)).and(live());
    let rows = repo
        .group(&GroupBy {
            filter: base.clone(),
            key: "stageId".into(),
            sums: vec!["value".into()],
        })
        .await?;
    let totals: HashMap<String, (u64, f64)> = rows
        .into_iter()
        .filter_map(|r| {
            let k = r.key.as_str()?.to_owned();
            Some((k, (r.count, r.sums.first().copied().unwrap_or(0.0))))
        })
        .collect();
    let count_of = |s: &Stage| totals.get(&s.id.to_string()).map_or(0, |t| t.0);
    let newest = vec![SortKey::desc("createdAt")];
    let (small, large): (Vec<&Stage>, Vec<&Stage>) = pipeline
        .stages
        .iter()
        .filter(|s| count_of(s) > 0)
        .partition(|s| count_of(s) <= per_stage);
    let mut by_stage: HashMap<StageId, Vec<Opportunity>> = HashMap::new();
    if !small.is_empty() {
        let f = base.clone().and(Filter::In(
            "stageId".into(),
            small.iter().map(|s| idv(s.id)).collect(),
        ));
        let opts = FindOptions {
            sort: newest.clone(),
            ..FindOptions::default()
        };
        for o in repo.find(&f, &opts).await? {
            by_stage.entry(o.stage_id).or_default().push(o);
        }
    }
    for s in large {
        let f = base.clone().and(Filter::eq("stageId", idv(s.id)));
        let opts = FindOptions {
            sort: newest.clone(),
            limit: Some(per_stage),
            ..FindOptions::default()
        };
        by_stage.insert(s.id, repo.find(&f, &opts).await?);
    }
    let columns = pipeline
        .stages
        .iter()
        .map(|s| {
            let (count, total_value) = totals.get(&s.id.to_string()).copied().unwrap_or((0, 0.0));
            KanbanColumn {
                stage: s.clone(),
                count,
                total_value,
                opportunities: by_stage.remove(&s.id).unwrap_or_default(),
            }
        })
        .collect();
    Ok(Kanban { pipeline, columns })
}

/// What a bulk request did to one of its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BulkOutcome {
    Changed,
    /// Already as asked: nothing written.
    Unchanged,
    /// Unknown, in the trash, or of another workspace: never touched.
    NotFound,
    /// The record's own rules refused the change; `code`, `field` and `detail` say why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkItem {
    pub id: String,
    pub outcome: BulkOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The per-id answer of a bulk request, in request order (duplicates dropped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkReport {
    /// Ids found in this workspace.
    pub matched: u64,
    pub changed: u64,
    pub results: Vec<BulkItem>,
}

impl BulkReport {
    /// Records one id's result (`Ok(true)`: written). Store failures abort the request instead:
    /// they say nothing about the record.
    pub fn push(&mut self, id: ObjectId, r: Result<bool>) -> Result<()> {
        let (outcome, code, field, detail) = match r {
            Ok(true) => (BulkOutcome::Changed, None, None, None),
            Ok(false) => (BulkOutcome::Unchanged, None, None, None),
            Err(Error::NotFound) => (BulkOutcome::NotFound, None, None, None),
            Err(Error::Invalid { field, reason }) => (
                BulkOutcome::Failed,
                Some("invalid"),
                Some(field),
                Some(reason),
            ),
            Err(Error::Conflict { key }) => (
                BulkOutcome::Failed,
                Some("conflict"),
                Some(key),
                Some("changed concurrently; retry".to_owned()),
            ),
            Err(Error::Forbidden(why)) => (BulkOutcome::Failed, Some("forbidden"), None, Some(why)),
            Err(e) => return Err(e),
        };
        if outcome != BulkOutcome::NotFound {
            self.matched += 1;
        }
        if outcome == BulkOutcome::Changed {
            self.changed += 1;
        }
        self.results.push(BulkItem {
            id: id.to_hex(),
            outcome,
            code: code.map(str::to_owned),
            field,
            detail,
        });
        Ok(())
    }
}

/// Tags to add (set-like, in order) and to remove.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagChange {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

impl TagChange {
    fn checked(&self, field: &str) -> Result<Self> {
        let add = self
            .add
            .iter()
            .enumerate()
            .map(|(i, t)| title_like(&format!("{field}.add[{i}]"), t))
            .collect::<Result<Vec<_>>>()?;
        let remove: Vec<String> = self.remove.iter().map(|t| t.trim().to_owned()).collect();
        if add.is_empty() && remove.is_empty() {
            return Err(Error::invalid(field, "add or remove at least one tag"));
        }
        if let Some(t) = add.iter().find(|t| remove.contains(t)) {
            return Err(Error::invalid(
                format!("{field}.remove"),
                format!("`{t}` is both added and removed"),
            ));
        }
        Ok(Self { add, remove })
    }

    /// `cur` without the removed tags, then the added ones it lacks.
    pub fn apply(&self, cur: &[String]) -> Vec<String> {
        let mut out: Vec<String> = cur
            .iter()
            .filter(|t| !self.remove.contains(t))
            .cloned()
            .collect();
        for t in &self.add {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }
}

fn title_like(field: &str, t: &str) -> Result<String> {
    text(field, t, TAG_MAX, true)?.ok_or_else(|| Error::invalid(field, "is required"))
}

/// The fields a bulk update may set; absent ones stay, `null` clears assignee and priority.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkSet {
    #[serde(default, deserialize_with = "nullable")]
    pub assigned_to: Option<Option<UserId>>,
    #[serde(default)]
    pub status: Option<OpportunityStatus>,
    #[serde(default, deserialize_with = "nullable")]
    pub priority: Option<Option<DealPriority>>,
    #[serde(default)]
    pub tags: Option<TagChange>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkUpdate {
    pub ids: Vec<String>,
    pub set: BulkSet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkMove {
    pub ids: Vec<String>,
    pub stage_id: StageId,
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
}

/// Moves the live deals among `ids` to the trash, one guarded write each.
pub async fn bulk_delete(
    scope: &WorkspaceScope,
    ids: &[String],
    now: Timestamp,
) -> Result<BulkReport> {
    let ids = super::contacts::parse_ids(ids, "ids")?;
    let mut report = BulkReport::default();
    for id in ids {
        let r = delete(scope, id.into(), now).await.map(|()| true);
        report.push(id, r)?;
    }
    Ok(report)
}

/// Applies `set` to each live deal among the ids through [`patch`], so status stamping,
/// `lastActivityAt` and the won/lost notifications follow the single-record rules. Only the
/// fields that differ are written; a deal already as asked is `unchanged`.
pub async fn bulk_update(
    scope: &WorkspaceScope,
    caller: UserId,
    cmd: BulkUpdate,
    now: Timestamp,
) -> Result<BulkReport> {
    let ids = super::contacts::parse_ids(&cmd.ids, "ids")?;
    let set = cmd.set;
    let tags = set
        .tags
        .as_ref()
        .map(|t| t.checked("set.tags"))
        .transpose()?;
    if set.assigned_to.is_none() && set.status.is_none() && set.priority.is_none() && tags.is_none()
    {
        return Err(Error::invalid(
            "set",
            "set at least one of assignedTo, status, priority, tags",
        ));
    }
    // Refused for every deal alike, so refused once before any write.
    if let Some(Some(who)) = set.assigned_to {
        check_assignee(scope, caller, who).await?;
    }
    let mut report = BulkReport::default();
    for id in ids {
        let r = update_one(scope, caller, id.into(), &set, tags.as_ref(), now).await;
        report.push(id, r)?;
    }
    Ok(report)
}

async fn update_one(
    scope: &WorkspaceScope,
    caller: UserId,
    id: OpportunityId,
    set: &BulkSet,
    tags: Option<&TagChange>,
    now: Timestamp,
) -> Result<bool> {
    let cur = get(scope, id).await?;
    let mut p = PatchOpportunity::default();
    if let Some(a) = set.assigned_to.filter(|a| *a != cur.assigned_to) {
        p.assigned_to = Some(a);
    }
    p.status = set.status.filter(|s| *s != cur.status);
    if let Some(pr) = set.priority.filter(|pr| *pr != cur.priority) {
        p.priority = Some(pr);
    }
    // Read just before the write; the patch sets the whole list.
    p.tags = tags.map(|t| t.apply(&cur.tags)).filter(|t| *t != cur.tags);
    if p.assigned_to.is_none() && p.status.is_none() && p.priority.is_none() && p.tags.is_none() {
        return Ok(false);
    }
    patch(scope, caller, id, p, now).await.map(|_| true)
}

/// Moves each live deal among the ids through [`move_to`] (history, `StageChangeEvent`,
/// timeline, status stamping). A stage no active pipeline of the workspace holds refuses the
/// whole request; a deal whose pipeline lacks the stage fails alone.
pub async fn bulk_move(
    scope: &WorkspaceScope,
    caller: UserId,
    cmd: BulkMove,
    now: Timestamp,
) -> Result<BulkReport> {
    let ids = super::contacts::parse_ids(&cmd.ids, "ids")?;
    match cmd.pipeline_id {
        Some(p) => {
            stage_in(&active_pipeline(scope, p).await?, cmd.stage_id)?;
        }
        None => {
            let active = scope
                .repo::<Pipeline>()
                .find(&Filter::eq("isActive", true), &FindOptions::default())
                .await?;
            if !active.iter().any(|p| p.stage(cmd.stage_id).is_some()) {
                return Err(Error::invalid(
                    "stageId",
                    "no active pipeline of this workspace has this stage",
                ));
            }
        }
    }
    let mut report = BulkReport::default();
    for id in ids {
        let r = move_one(scope, caller, id.into(), &cmd, now).await;
        report.push(id, r)?;
    }
    Ok(report)
}

async fn move_one(
    scope: &WorkspaceScope,
    caller: UserId,
    id: OpportunityId,
    cmd: &BulkMove,
    now: Timestamp,
) -> Result<bool> {
    let m = MoveOpportunity {
        stage_id: cmd.stage_id,
        pipeline_id: cmd.pipeline_id,
    };
    move_checked(scope, caller, id, m, now)
        .await
        .map(|(_, moved)| moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_rules() {
        assert_eq!(currency(" eur ").unwrap(), "EUR");
        assert!(currency("EURO").is_err());
        assert!(currency("E1R").is_err());
        assert!(value(-0.5).is_err());
        assert!(value(f64::NAN).is_err());
        assert!(probability(100.0).is_ok() && probability(100.5).is_err());
        assert!(title("   ").is_err());
        assert!(title(&"x".repeat(201)).is_err());
        assert_eq!(
            tags(&[" a ".into(), "a".into(), "".into(), "b".into()]).unwrap(),
            vec!["a", "b"]
        );
    }

    #[test]
    fn list_filter_names_fields() {
        let f = ListFilter {
            status: Some(OpportunityStatus::Won),
            ..ListFilter::default()
        }
        .to_filter()
        .unwrap();
        assert_eq!(f, live().and(Filter::eq("status", "won")));
    }

    #[test]
    fn tag_changes_remove_then_add_once() {
        let c = TagChange {
            add: vec!["vip".into(), "new".into()],
            remove: vec!["old".into()],
        };
        let cur: Vec<String> = vec!["old".into(), "vip".into(), "x".into()];
        assert_eq!(c.apply(&cur), vec!["vip", "x", "new"]);
        let checked = TagChange {
            add: vec![" a ".into()],
            remove: vec!["a".into()],
        }
        .checked("set.tags");
        assert!(matches!(checked, Err(Error::Invalid { field, .. }) if field == "set.tags.remove"));
    }

    #[test]
    fn bulk_reports_count_and_abort_on_store_failures() {
        let mut r = BulkReport::default();
        let ids: Vec<ObjectId> = (0..4).map(|_| ObjectId::new()).collect();
        r.push(ids[0], Ok(true)).unwrap();
        r.push(ids[1], Ok(false)).unwrap();
        r.push(ids[2], Err(Error::NotFound)).unwrap();
        r.push(ids[3], Err(Error::invalid("stageId", "no")))
            .unwrap();
        assert_eq!((r.matched, r.changed), (3, 1));
        let outcomes: Vec<BulkOutcome> = r.results.iter().map(|i| i.outcome).collect();
        assert_eq!(
            outcomes,
            [
                BulkOutcome::Changed,
                BulkOutcome::Unchanged,
                BulkOutcome::NotFound,
                BulkOutcome::Failed
            ]
        );
        assert_eq!(r.results[3].field.as_deref(), Some("stageId"));
        assert!(
            r.push(ids[0], Err(Error::Unavailable("down".into())))
                .is_err()
        );
        assert_eq!(r.results.len(), 4);
    }
}
