//! Lifecycle stages: the transition table, a history row per move
//! (`contactlifecyclehistories`) with the SLA of the stage left, SLA breaches, the funnel, and
//! the automatic lead → MQL progression.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crm_core::define_id;
use crm_core::entities::contact::{Contact, ContactId, LifecycleStage};
use crm_core::repo::{Actor, Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crm_core::{
    Error, Filter, FindOptions, GroupBy, Result, SortKey, Timestamp, Update, UserId, WorkspaceId,
};

use super::lead::LeadScore;
use super::live_contact;

define_id!(LifecycleHistoryId);

pub static CONTACT_LIFECYCLE_HISTORY: EntityDef = EntityDef {
    name: "ContactLifecycleHistory",
    collection: "contactlifecyclehistories",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("contactId", Id).required(),
        f("currentStage", Text).required(),
        f("currentStageEnteredAt", Date).required(),
        f("previousStage", Text),
        f("previousStageExitedAt", Date),
        f("transitionedFrom", Text),
        f("transitionedTo", Text).required(),
        f("transitionedAt", Date).required(),
        f("transitionedBy", Id),
        f("transitionReason", Text),
        f("transitionMethod", Text).required(),
        f("slaTarget", Number),
        f("slaStatus", Text),
        f("timeInStage", Number),
        f("slaBreachedAt", Date),
        f("metadata", Any),
    ],
    unique: &[],
    // {workspaceId,currentStage}, {workspaceId,transitionedAt:-1} and {workspaceId,slaStatus} of
    // the original are the tenant-prefixed forms of these.
    indexes: &[
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("currentStage", Asc)]),
        IndexDef::on(&[("transitionedAt", Asc)]),
        IndexDef::on(&[("transitionedAt", Desc)]),
        IndexDef::on(&[("contactId", Asc), ("transitionedAt", Desc)]),
        IndexDef::on(&[("slaStatus", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    OnTrack,
    AtRisk,
    Breached,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionMethod {
    Manual,
    Automated,
    Workflow,
    Api,
    Import,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHistory {
    #[serde(rename = "_id")]
    pub id: LifecycleHistoryId,
    pub workspace_id: WorkspaceId,
    pub contact_id: ContactId,
    pub current_stage: LifecycleStage,
    pub current_stage_entered_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_stage: Option<LifecycleStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_stage_exited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitioned_from: Option<LifecycleStage>,
    pub transitioned_to: LifecycleStage,
    pub transitioned_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitioned_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_reason: Option<String>,
    pub transition_method: TransitionMethod,
    /// Target hours of the stage left (stages without a target have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_status: Option<SlaStatus>,
    /// Hours spent in the stage left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_stage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_breached_at: Option<Timestamp>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for LifecycleHistory {
    const DEF: &'static EntityDef = &CONTACT_LIFECYCLE_HISTORY;
}
impl WorkspaceEntity for LifecycleHistory {}

use LifecycleStage::*;

pub const STAGES: [LifecycleStage; 10] = [
    Subscriber,
    Lead,
    Mql,
    Sql,
    Sal,
    Opportunity,
    Customer,
    Evangelist,
    Churned,
    Disqualified,
];

/// Where each stage may go.
pub fn allowed_next(from: LifecycleStage) -> &'static [LifecycleStage] {
    match from {
        Subscriber => &[Lead, Disqualified],
        Lead => &[Mql, Disqualified, Subscriber],
        Mql => &[Sql, Lead, Disqualified],
        Sql => &[Sal, Mql, Disqualified],
        Sal => &[Opportunity, Sql, Disqualified],
        Opportunity => &[Customer, Sal, Disqualified],
        Customer => &[Evangelist, Churned],
        Evangelist => &[Churned, Customer],
        Churned | Disqualified => &[Lead, Subscriber],
    }
}

/// Hours a contact should stay at most in the stage.
pub fn sla_hours(stage: LifecycleStage) -> Option<f64> {
    match stage {
        Lead => Some(24.0),
        Mql => Some(48.0),
        Sql => Some(72.0),
        Sal => Some(168.0),
        Opportunity => Some(720.0),
        _ => None,
    }
}

/// on_track up to 80 % of the target, at_risk above, breached above 100 %.
pub fn sla_status(hours: f64, target: f64) -> SlaStatus {
    let ratio = hours / target;
    if ratio > 1.0 {
        SlaStatus::Breached
    } else if ratio > 0.8 {
        SlaStatus::AtRisk
    } else {
        SlaStatus::OnTrack
    }
}

pub fn stage_name(s: LifecycleStage) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub fn parse_stage(s: &str, field: &str) -> Result<LifecycleStage> {
    serde_json::from_value(json!(s)).map_err(|_| {
        Error::invalid(
            field,
            "must be one of subscriber, lead, mql, sql, sal, opportunity, customer, evangelist, \
             churned, disqualified",
        )
    })
}

/// When the contact entered its current stage.
fn entered_at(c: &Contact) -> Option<Timestamp> {
    c.lifecycle_stage_updated_at.or(c.created_at)
}

fn hours_between(a: Timestamp, b: Timestamp) -> f64 {
    ((b.millis() - a.millis()).max(0) as f64) / 3_600_000.0
}

#[derive(Debug, Clone)]
pub struct TransitionRequest {
    pub to: LifecycleStage,
    pub reason: Option<String>,
    pub skip_validation: bool,
    /// None: derived from the scope's actor (user → manual, API key → api, system → automated).
    pub method: Option<TransitionMethod>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// False when the contact already was in the stage (nothing recorded).
    pub changed: bool,
    pub contact_id: ContactId,
    pub stage: LifecycleStage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<LifecycleHistory>,
}

/// Moves the contact to `req.to` if the table allows it (or validation is skipped).
pub async fn transition(
    scope: &WorkspaceScope,
    contact: ContactId,
    req: TransitionRequest,
    now: Timestamp,
) -> Result<Transition> {
    let c = live_contact(scope, contact).await?;
    let from = c.lifecycle_stage;
    if from == req.to {
        return Ok(Transition {
            changed: false,
            contact_id: contact,
            stage: from,
            history: None,
        });
    }
    if !req.skip_validation && !allowed_next(from).contains(&req.to) {
        return Err(Error::invalid(
            "toStage",
            format!(
                "cannot move from {} to {}",
                stage_name(from),
                stage_name(req.to)
            ),
        ));
    }
    // Guarded on the stage read, so two racing moves cannot both apply to the same stage.
    let guard =
        Filter::eq("_id", contact.to_string()).and(Filter::eq("lifecycleStage", stage_name(from)));
    let u = Update::new()
        .set("lifecycleStage", stage_name(req.to))
        .set("previousLifecycleStage", stage_name(from))
        .set("lifecycleStageUpdatedAt", now.to_canonical());
    let moved = scope
        .repo::<Contact>()
        .find_one_and_update(&guard, &u, false)
        .await?;
    if moved.is_none() {
        return Err(Error::Stale);
    }
    let since = entered_at(&c);
    let hours = since.map(|s| hours_between(s, now));
    let target = sla_hours(from);
    let status = match (hours, target) {
        (Some(h), Some(t)) => Some(sla_status(h, t)),
        _ => None,
    };
    let breached_at = match (since, target, status) {
        (Some(s), Some(t), Some(SlaStatus::Breached)) => {
            Some(s.plus_seconds((t * 3600.0).round() as i64))
        }
        _ => None,
    };
    let (method, by) = match scope.actor() {
        Actor::User(u) => (TransitionMethod::Manual, Some(u)),
        Actor::ApiKey { on_behalf_of, .. } => (TransitionMethod::Api, Some(on_behalf_of)),
        Actor::System => (TransitionMethod::Automated, None),
    };
    let lead = scope
        .repo::<LeadScore>()
        .find(
            &Filter::eq("contactId", contact.to_string()),
            &FindOptions::default(),
        )
        .await?
        .into_iter()
        .next();
    let mut metadata = Map::new();
    metadata.insert("score".into(), json!(lead.map_or(0, |l| l.current_score)));
    metadata.insert("intentScore".into(), json!(c.intent_score));
    if req.skip_validation && !allowed_next(from).contains(&req.to) {
        metadata.insert("validationSkipped".into(), json!(true));
    }
    let row = LifecycleHistory {
        id: LifecycleHistoryId::new(),
        workspace_id: scope.id(),
        contact_id: contact,
        current_stage: req.to,
        current_stage_entered_at: now,
        previous_stage: Some(from),
        previous_stage_exited_at: Some(now),
        transitioned_from: Some(from),
        transitioned_to: req.to,
        transitioned_at: now,
        transitioned_by: by,
        transition_reason: req.reason,
        transition_method: req.method.unwrap_or(method),
        sla_target: target,
        sla_status: status,
        time_in_stage: hours.map(|h| (h * 100.0).round() / 100.0),
        sla_breached_at: breached_at,
        metadata,
        created_at: None,
        updated_at: None,
    };
    let row = scope.repo::<LifecycleHistory>().insert(&row).await?;
    Ok(Transition {
        changed: true,
        contact_id: contact,
        stage: req.to,
        history: Some(row),
    })
}

/// The contact's transitions, oldest first.
pub async fn history(scope: &WorkspaceScope, contact: ContactId) -> Result<Vec<LifecycleHistory>> {
    live_contact(scope, contact).await?;
    let opts = FindOptions {
        sort: vec![SortKey::asc("transitionedAt"), SortKey::asc("_id")],
        skip: 0,
        limit: Some(1000),
    };
    scope
        .repo::<LifecycleHistory>()
        .find(&Filter::eq("contactId", contact.to_string()), &opts)
        .await
}

/// Contacts per stage now, moves into each stage, and the conversion from each stage of the
/// main path to the next (moves into the next / moves into this one).
pub async fn funnel(scope: &WorkspaceScope) -> Result<Value> {
    let now_rows = scope
        .repo::<Contact>()
        .group(&GroupBy {
            filter: Filter::eq("deletedAt", Value::Null),
            key: "lifecycleStage".into(),
            sums: Vec::new(),
        })
        .await?;
    let moved_rows = scope
        .repo::<LifecycleHistory>()
        .group(&GroupBy {
            filter: Filter::all(),
            key: "currentStage".into(),
            sums: Vec::new(),
        })
        .await?;
    let count = |rows: &[crm_core::GroupRow], s: &str| {
        rows.iter()
            .find(|r| r.key.as_str() == Some(s))
            .map_or(0, |r| r.count)
    };
    let main = [Subscriber, Lead, Mql, Sql, Sal, Opportunity, Customer];
    let mut stages = Vec::new();
    for s in STAGES {
        let name = stage_name(s);
        let entered = count(&moved_rows, &name);
        let next = main
            .iter()
            .position(|m| *m == s)
            .and_then(|i| main.get(i + 1));
        let conversion = match next {
            Some(n) if entered > 0 => {
                let into_next = count(&moved_rows, &stage_name(*n));
                Some(((into_next as f64 / entered as f64) * 10000.0).round() / 100.0)
            }
            _ => None,
        };
        stages.push(json!({
            "stage": name,
            // Contacts missing the field are leads (the original's default).
            "current": count(&now_rows, &name) + if s == Lead { null_count(&now_rows) } else { 0 },
            "entered": entered,
            "conversionToNext": conversion,
        }));
    }
    Ok(json!({ "stages": stages }))
}

fn null_count(rows: &[crm_core::GroupRow]) -> u64 {
    rows.iter()
        .filter(|r| r.key.is_null())
        .map(|r| r.count)
        .sum()
}

/// Contacts past 80 % of their stage's target, worst first.
pub async fn sla_breaches(scope: &WorkspaceScope, now: Timestamp) -> Result<Vec<Value>> {
    let mut out: Vec<(f64, Value)> = Vec::new();
    for s in STAGES {
        let Some(target) = sla_hours(s) else { continue };
        let cut = now
            .plus_seconds(-((target * 0.8 * 3600.0).round() as i64))
            .to_canonical();
        let f = Filter::eq("lifecycleStage", stage_name(s))
            .and(Filter::eq("deletedAt", Value::Null))
            .and(Filter::Or(vec![
                Filter::Lt("lifecycleStageUpdatedAt".into(), json!(cut)),
                Filter::eq("lifecycleStageUpdatedAt", Value::Null)
                    .and(Filter::Lt("createdAt".into(), json!(cut))),
            ]));
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            skip: 0,
            limit: Some(500),
        };
        for c in scope.repo::<Contact>().find(&f, &opts).await? {
            let Some(since) = entered_at(&c) else {
                continue;
            };
            let hours = hours_between(since, now);
            let status = sla_status(hours, target);
            if status == SlaStatus::OnTrack {
                continue;
            }
            out.push((
                hours / target,
                json!({
                    "contactId": c.id,
                    "firstName": c.first_name,
                    "lastName": c.last_name,
                    "email": c.email,
                    "stage": stage_name(s),
                    "stageEnteredAt": since,
                    "hoursInStage": (hours * 100.0).round() / 100.0,
                    "slaTarget": target,
                    "slaStatus": status,
                }),
            ));
        }
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

pub const AUTO_MQL_LEAD_SCORE: i64 = 50;
pub const AUTO_MQL_INTENT: f64 = 30.0;

/// Moves every lead with a lead score ≥ 50 and an intent score ≥ 30 to MQL (the original's
/// progression job never matched anything). Returns how many moved.
pub async fn auto_progress(scope: &WorkspaceScope, now: Timestamp) -> Result<u64> {
    let f = Filter::eq("lifecycleStage", "lead")
        .and(Filter::Gte("intentScore".into(), json!(AUTO_MQL_INTENT)))
        .and(Filter::eq("deletedAt", Value::Null));
    let mut moved = 0;
    let mut after: Option<String> = None;
    loop {
        let mut page_f = f.clone();
        if let Some(a) = &after {
            page_f = page_f.and(Filter::Gt("_id".into(), json!(a)));
        }
        let opts = FindOptions {
            sort: vec![SortKey::asc("_id")],
            skip: 0,
            limit: Some(200),
        };
        let batch = scope.repo::<Contact>().find(&page_f, &opts).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.to_string());
        let n = batch.len();
        for c in batch {
            let score = scope
                .repo::<LeadScore>()
                .count(&Filter::eq("contactId", c.id.to_string()).and(Filter::Gte(
                    "currentScore".into(),
                    json!(AUTO_MQL_LEAD_SCORE),
                )))
                .await?;
            if score == 0 {
                continue;
            }
            let req = TransitionRequest {
                to: Mql,
                reason: Some(format!(
                    "lead score >= {AUTO_MQL_LEAD_SCORE} and intent score >= {AUTO_MQL_INTENT}"
                )),
                skip_validation: false,
                method: Some(TransitionMethod::Automated),
            };
            match transition(scope, c.id, req, now).await {
                Ok(t) if t.changed => moved += 1,
                Ok(_) | Err(Error::NotFound) | Err(Error::Stale) => {}
                Err(e) => return Err(e),
            }
        }
        if n < 200 {
            break;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_table() {
        assert!(allowed_next(Lead).contains(&Mql));
        assert!(!allowed_next(Lead).contains(&Customer));
        assert!(allowed_next(Churned).contains(&Lead));
        assert!(!allowed_next(Customer).contains(&Lead));
        assert_eq!(allowed_next(Evangelist), &[Churned, Customer]);
    }

    #[test]
    fn sla_thresholds() {
        assert_eq!(sla_status(19.2, 24.0), SlaStatus::OnTrack);
        assert_eq!(sla_status(19.3, 24.0), SlaStatus::AtRisk);
        assert_eq!(sla_status(24.0, 24.0), SlaStatus::AtRisk);
        assert_eq!(sla_status(24.1, 24.0), SlaStatus::Breached);
        assert_eq!(sla_hours(Sal), Some(168.0));
        assert_eq!(sla_hours(Customer), None);
    }
}
