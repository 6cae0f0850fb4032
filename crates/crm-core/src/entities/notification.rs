//! Notification (`notifications`): an in-app message to one user of a workspace.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::id::{ObjectId, UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(NotificationId);

pub static NOTIFICATION: EntityDef = EntityDef {
    name: "Notification",
    collection: "notifications",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("type", Text).required(),
        f("title", Text).required(),
        f("message", Text).required(),
        f("isRead", Bool),
        f("readAt", Date),
        f("relatedEntityType", Text),
        f("relatedEntityId", Id),
        f("actionUrl", Text),
        f("priority", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc), ("isRead", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("userId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("type", Asc)]),
        IndexDef::on(&[("isRead", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    TaskDue,
    TaskAssigned,
    DealWon,
    DealLost,
    NewLead,
    WorkflowComplete,
    Mention,
    System,
    Custom,
    AgentHandoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelatedEntityType {
    Task,
    Contact,
    Opportunity,
    Workflow,
    Campaign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NotificationPriority {
    Low,
    #[default]
    Normal,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(rename = "_id")]
    pub id: NotificationId,
    pub workspace_id: WorkspaceId,
    /// The recipient.
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
    #[serde(default)]
    pub is_read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_entity_type: Option<RelatedEntityType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_entity_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_url: Option<String>,
    #[serde(default)]
    pub priority: NotificationPriority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Notification {
    pub fn new(
        workspace_id: WorkspaceId,
        user_id: UserId,
        kind: NotificationType,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            id: NotificationId::new(),
            workspace_id,
            user_id,
            kind,
            title: title.into(),
            message: message.into(),
            is_read: false,
            read_at: None,
            related_entity_type: None,
            related_entity_id: None,
            action_url: None,
            priority: NotificationPriority::Normal,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Notification {
    const DEF: &'static EntityDef = &NOTIFICATION;
}
impl WorkspaceEntity for Notification {}
