//! Task (`tasks`): a to-do, optionally about a contact, company or deal.

use serde::{Deserialize, Serialize};

use super::company::CompanyId;
use super::contact::ContactId;
use super::opportunity::OpportunityId;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(TaskId);

pub static TASK: EntityDef = EntityDef {
    name: "Task",
    collection: "tasks",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("title", Text).required(),
        f("description", Text),
        f("status", Text),
        f("priority", Text),
        f("dueDate", Date),
        f("reminderDate", Date),
        f("relatedContactId", Id),
        f("relatedCompanyId", Id),
        f("relatedOpportunityId", Id),
        f("assignedTo", Id),
        f("createdBy", Id).required(),
        f("tags", Texts),
        f("completedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc), ("dueDate", Asc)]),
        IndexDef::on(&[("assignedTo", Asc), ("status", Asc)]),
        IndexDef::on(&[("priority", Asc), ("status", Asc)]),
        IndexDef::on(&[("dueDate", Asc)]),
        IndexDef::on(&[("tags", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("completedAt", Desc)]),
        IndexDef::on(&[("relatedContactId", Asc)]),
        IndexDef::on(&[("relatedOpportunityId", Asc)]),
        IndexDef::on(&[("relatedCompanyId", Asc)]),
        IndexDef::on(&[("status", Asc), ("priority", Asc), ("dueDate", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    #[default]
    Todo,
    InProgress,
    Completed,
    Cancelled,
}

/// Priority of tasks and tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(rename = "_id")]
    pub id: TaskId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_company_id: Option<CompanyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_opportunity_id: Option<OpportunityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    pub created_by: UserId,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Set when the status becomes completed, cleared when it leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Task {
    pub fn new(workspace_id: WorkspaceId, user_id: UserId, title: impl Into<String>) -> Self {
        Self {
            id: TaskId::new(),
            workspace_id,
            user_id,
            title: title.into(),
            description: None,
            status: TaskStatus::Todo,
            priority: Priority::Medium,
            due_date: None,
            reminder_date: None,
            related_contact_id: None,
            related_company_id: None,
            related_opportunity_id: None,
            assigned_to: None,
            created_by: user_id,
            tags: Vec::new(),
            completed_at: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Task {
    const DEF: &'static EntityDef = &TASK;
    const AUDITED: bool = true;
    const EVENTS: Option<&'static str> = Some("task");
    fn derived_events(
        before: Option<&crate::engine::Document>,
        after: Option<&crate::engine::Document>,
    ) -> Vec<&'static str> {
        if crate::repo::field_became(before, after, "status", "completed") {
            vec!["task.completed"]
        } else {
            Vec::new()
        }
    }
}
impl WorkspaceEntity for Task {}
