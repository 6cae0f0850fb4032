//! Ticket (`tickets`): a support request with embedded comments. `ticketNumber` (`TKT-0001`...) is
//! unique per workspace (the original's key is global) and drawn from [`super::counter`].

use serde::{Deserialize, Serialize};

use super::company::CompanyId;
use super::contact::ContactId;
use super::task::Priority;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(TicketId);
define_id!(TicketCommentId);

pub static TICKET: EntityDef = EntityDef {
    name: "Ticket",
    collection: "tickets",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("ticketNumber", Text).required(),
        f("subject", Text).required(),
        f("description", Text).required(),
        f("status", Text),
        f("priority", Text),
        f("category", Text),
        f("requesterId", Id),
        f("requesterEmail", Text).required(),
        f("requesterName", Text),
        f("assignedTo", Id),
        f("assignedTeam", Text),
        f("relatedContactId", Id),
        f("relatedCompanyId", Id),
        f("dueDate", Date),
        f("firstResponseAt", Date),
        f("resolvedAt", Date),
        f("slaBreached", Bool),
        f("comments", Array),
        f("comments._id", Id),
        f("comments.userId", Id),
        f("comments.message", Text),
        f("comments.isInternal", Bool),
        f("comments.attachments", Texts),
        f("comments.createdAt", Date),
        f("comments.updatedAt", Date),
        f("tags", Texts),
        f("source", Text),
        f("responseTimeMinutes", Number),
        f("resolutionTimeMinutes", Number),
        f("createdBy", Id).required(),
    ],
    unique: &[UniqueKey {
        name: "ticketNumber",
        fields: &["ticketNumber"],
    }],
    indexes: &[
        IndexDef::on(&[("status", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("assignedTo", Asc), ("status", Asc)]),
        IndexDef::on(&[("priority", Asc), ("status", Asc)]),
        IndexDef::on(&[("requesterEmail", Asc)]),
        IndexDef::on(&[("dueDate", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    #[default]
    Open,
    InProgress,
    WaitingOnCustomer,
    Resolved,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TicketCategory {
    #[default]
    Support,
    Billing,
    Technical,
    FeatureRequest,
    Bug,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TicketSource {
    Email,
    #[default]
    Web,
    Chat,
    Phone,
    Api,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketComment {
    #[serde(rename = "_id")]
    pub id: TicketCommentId,
    pub user_id: UserId,
    pub message: String,
    #[serde(default)]
    pub is_internal: bool,
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Stamped by the service (comments have Mongoose timestamps of their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl TicketComment {
    pub fn new(user_id: UserId, message: impl Into<String>, now: Timestamp) -> Self {
        Self {
            id: TicketCommentId::new(),
            user_id,
            message: message.into(),
            is_internal: false,
            attachments: Vec::new(),
            created_at: Some(now),
            updated_at: Some(now),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    #[serde(rename = "_id")]
    pub id: TicketId,
    pub workspace_id: WorkspaceId,
    pub ticket_number: String,
    pub subject: String,
    pub description: String,
    #[serde(default)]
    pub status: TicketStatus,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub category: TicketCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<ContactId>,
    /// Lowercased and trimmed.
    pub requester_email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_company_id: Option<CompanyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    #[serde(default)]
    pub sla_breached: bool,
    #[serde(default)]
    pub comments: Vec<TicketComment>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub source: TicketSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time_minutes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_time_minutes: Option<f64>,
    pub created_by: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// `TKT-0001` for 1; wider numbers keep all their digits.
pub fn ticket_number(seq: u64) -> String {
    format!("TKT-{seq:04}")
}

impl Ticket {
    pub fn new(
        workspace_id: WorkspaceId,
        ticket_number: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
        requester_email: &str,
        created_by: UserId,
    ) -> Self {
        Self {
            id: TicketId::new(),
            workspace_id,
            ticket_number: ticket_number.into(),
            subject: subject.into(),
            description: description.into(),
            status: TicketStatus::Open,
            priority: Priority::Medium,
            category: TicketCategory::Support,
            requester_id: None,
            requester_email: requester_email.trim().to_lowercase(),
            requester_name: None,
            assigned_to: None,
            assigned_team: None,
            related_contact_id: None,
            related_company_id: None,
            due_date: None,
            first_response_at: None,
            resolved_at: None,
            sla_breached: false,
            comments: Vec::new(),
            tags: Vec::new(),
            source: TicketSource::Web,
            response_time_minutes: None,
            resolution_time_minutes: None,
            created_by,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Ticket {
    const DEF: &'static EntityDef = &TICKET;
    const AUDITED: bool = true;
    const EVENTS: Option<&'static str> = Some("ticket");
}
impl WorkspaceEntity for Ticket {}
