//! Opportunity (`opportunities`): a deal in a pipeline stage (the original's current deal model).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SalesforceSyncStatus;
use super::company::CompanyId;
use super::contact::ContactId;
use super::pipeline::{PipelineId, StageId};
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(OpportunityId);

pub static OPPORTUNITY: EntityDef = EntityDef {
    name: "Opportunity",
    collection: "opportunities",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("pipelineId", Id).required(),
        f("stageId", Id).required(),
        f("title", Text).required(),
        f("value", Number).required(),
        f("currency", Text),
        f("probability", Number),
        f("expectedCloseDate", Date),
        f("actualCloseDate", Date),
        f("contactId", Id),
        f("companyId", Id),
        f("associatedContacts", Ids),
        f("description", Text),
        f("source", Text),
        f("status", Text),
        f("lostReason", Text),
        f("assignedTo", Id),
        f("tags", Texts),
        f("priority", Text),
        f("lastActivityAt", Date),
        f("nextAction", Text),
        f("nextActionDueDate", Date),
        f("dealTemperature", Text),
        f("activityCount", Number),
        f("emailCount", Number),
        f("callCount", Number),
        f("meetingCount", Number),
        f("stageHistory", Array),
        f("stageHistory.stageId", Id),
        f("stageHistory.stageName", Text),
        f("stageHistory.enteredAt", Date),
        f("stageHistory.exitedAt", Date),
        f("stageHistory.duration", Number),
        f("customFields", Any),
        f("aiInsights", Object),
        f("aiInsights.lastAnalyzedAt", Date),
        f("salesforceId", Text),
        f("salesforceSyncedAt", Date),
        f("salesforceSyncStatus", Text),
        f("salesforceSyncError", Text),
        // Target additions: denormalised names kept in step with their sources, soft delete.
        f("contactName", Text),
        f("companyName", Text),
        f("deletedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("pipelineId", Asc), ("stageId", Asc)]),
        IndexDef::on(&[("status", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("assignedTo", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("lastActivityAt", Desc)]),
        IndexDef::on(&[("dealTemperature", Asc)]),
        IndexDef::on(&[("tags", Asc)]),
        IndexDef::on(&[("status", Asc), ("assignedTo", Asc)]),
        IndexDef::on(&[("pipelineId", Asc), ("status", Asc)]),
        IndexDef::on(&[("expectedCloseDate", Asc)]),
        IndexDef::on(&[("value", Desc)]),
        IndexDef::on(&[("priority", Asc), ("status", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("stageId", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("companyId", Asc)]),
        IndexDef::on(&[("salesforceId", Asc)]),
    ],
    text: &["title", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OpportunityStatus {
    #[default]
    Open,
    Won,
    Lost,
    Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DealPriority {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DealTemperature {
    Hot,
    Warm,
    Cold,
}

/// One visit of a stage (no `_id`, as in the original).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageVisit {
    pub stage_id: StageId,
    pub stage_name: String,
    pub entered_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<Timestamp>,
    /// Milliseconds; a float because Node stores large values as doubles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Opportunity {
    #[serde(rename = "_id")]
    pub id: OpportunityId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub pipeline_id: PipelineId,
    pub stage_id: StageId,
    pub title: String,
    pub value: f64,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_close_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_close_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<CompanyId>,
    #[serde(default)]
    pub associated_contacts: Vec<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub status: OpportunityStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<DealPriority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_due_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_temperature: Option<DealTemperature>,
    #[serde(default)]
    pub activity_count: i64,
    #[serde(default)]
    pub email_count: i64,
    #[serde(default)]
    pub call_count: i64,
    #[serde(default)]
    pub meeting_count: i64,
    #[serde(default)]
    pub stage_history: Vec<StageVisit>,
    #[serde(default)]
    pub custom_fields: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_insights: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_synced_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_sync_status: Option<SalesforceSyncStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_sync_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Opportunity {
    /// A new open deal with the original's defaults and no stage history yet (the service adds
    /// the first visit, which needs the stage's name).
    pub fn new(
        workspace_id: WorkspaceId,
        user_id: UserId,
        pipeline_id: PipelineId,
        stage_id: StageId,
        title: impl Into<String>,
        value: f64,
    ) -> Self {
        Self {
            id: OpportunityId::new(),
            workspace_id,
            user_id,
            pipeline_id,
            stage_id,
            title: title.into(),
            value,
            currency: default_currency(),
            probability: None,
            expected_close_date: None,
            actual_close_date: None,
            contact_id: None,
            company_id: None,
            associated_contacts: Vec::new(),
            description: None,
            source: None,
            status: OpportunityStatus::Open,
            lost_reason: None,
            assigned_to: None,
            tags: Vec::new(),
            priority: None,
            last_activity_at: None,
            next_action: None,
            next_action_due_date: None,
            deal_temperature: None,
            activity_count: 0,
            email_count: 0,
            call_count: 0,
            meeting_count: 0,
            stage_history: Vec::new(),
            custom_fields: Map::new(),
            ai_insights: None,
            salesforce_id: None,
            salesforce_synced_at: None,
            salesforce_sync_status: None,
            salesforce_sync_error: None,
            contact_name: None,
            company_name: None,
            deleted_at: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Opportunity {
    const DEF: &'static EntityDef = &OPPORTUNITY;
    const AUDITED: bool = true;
    const EVENTS: Option<&'static str> = Some("deal");
    fn derived_events(
        before: Option<&crate::engine::Document>,
        after: Option<&crate::engine::Document>,
    ) -> Vec<&'static str> {
        let mut v = Vec::new();
        if crate::repo::field_moved(before, after, "stageId") {
            v.push("deal.stage_changed");
        }
        if crate::repo::field_became(before, after, "status", "won") {
            v.push("deal.won");
        }
        if crate::repo::field_became(before, after, "status", "lost") {
            v.push("deal.lost");
        }
        v
    }
}
impl WorkspaceEntity for Opportunity {}
