//! Activity (`activities`): the timeline of contacts, companies and deals.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::opportunity::OpportunityId;
use crate::define_id;
use crate::id::{ObjectId, UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(ActivityId);

pub static ACTIVITY: EntityDef = EntityDef {
    name: "Activity",
    collection: "activities",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("opportunityId", Id),
        f("entityType", Text),
        f("entityId", Id),
        f("type", Text).required(),
        f("title", Text).required(),
        f("description", Text),
        f("direction", Text),
        f("duration", Number),
        f("emailSubject", Text),
        f("emailBody", Text),
        f("dueDate", Date),
        f("completed", Bool),
        f("assigneeId", Id),
        f("workflowId", Id),
        f("workflowEnrollmentId", Id),
        f("workflowStepId", Text),
        f("automated", Bool),
        f("fileUrl", Text),
        f("fileName", Text),
        f("fileSize", Number),
        f("metadata", Any),
        f("isAutoLogged", Bool),
        f("aiConfidence", Number),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("opportunityId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("type", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("userId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("entityType", Asc), ("entityId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("workflowId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("automated", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("type", Asc), ("completed", Asc)]),
        IndexDef::on(&[("isAutoLogged", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("entityId", Asc)]),
        IndexDef::on(&[("assigneeId", Asc)]),
        IndexDef::on(&[("workflowEnrollmentId", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityEntityType {
    Contact,
    Deal,
    Company,
    Opportunity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    Email,
    Call,
    Meeting,
    Note,
    StageChange,
    FileUpload,
    Task,
    AiSuggestion,
    WorkflowAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "_id")]
    pub id: ActivityId,
    pub workspace_id: WorkspaceId,
    /// Absent for activities written by automation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<OpportunityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<ActivityEntityType>,
    /// Id of a contact, company or opportunity, as `entity_type` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<ObjectId>,
    #[serde(rename = "type")]
    pub kind: ActivityType,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Timestamp>,
    #[serde(default)]
    pub completed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_enrollment_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_step_id: Option<String>,
    #[serde(default)]
    pub automated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<f64>,
    /// fromStage, toStage, oldValue, newValue, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub is_auto_logged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Activity {
    pub fn new(workspace_id: WorkspaceId, kind: ActivityType, title: impl Into<String>) -> Self {
        Self {
            id: ActivityId::new(),
            workspace_id,
            user_id: None,
            opportunity_id: None,
            entity_type: None,
            entity_id: None,
            kind,
            title: title.into(),
            description: None,
            direction: None,
            duration: None,
            email_subject: None,
            email_body: None,
            due_date: None,
            completed: false,
            assignee_id: None,
            workflow_id: None,
            workflow_enrollment_id: None,
            workflow_step_id: None,
            automated: false,
            file_url: None,
            file_name: None,
            file_size: None,
            metadata: None,
            is_auto_logged: false,
            ai_confidence: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Activity {
    const DEF: &'static EntityDef = &ACTIVITY;
    const AUDITED: bool = true;
    const EVENTS: Option<&'static str> = Some("activity");
}
impl WorkspaceEntity for Activity {}
