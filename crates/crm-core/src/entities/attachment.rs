//! Attachment (`attachments`): metadata of a file on a deal, contact, company or ticket; the bytes
//! live in a `blob::BlobStore` under the attachment's id. The original only knew deals, so
//! `opportunityId` stays where it was and old documents decode unchanged.

use serde::{Deserialize, Serialize};

use super::company::CompanyId;
use super::contact::ContactId;
use super::opportunity::OpportunityId;
use super::ticket::TicketId;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(AttachmentId);

/// 25 MB, the original's limit.
pub const MAX_FILE_SIZE: u64 = 26_214_400;

pub static ATTACHMENT: EntityDef = EntityDef {
    name: "Attachment",
    collection: "attachments",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        // Exactly one of the four parents is set (services::attachments checks it).
        f("opportunityId", Id),
        f("contactId", Id),
        f("companyId", Id),
        f("ticketId", Id),
        f("userId", Id).required(),
        f("fileName", Text).required(),
        f("fileType", Text).required(),
        f("fileSize", Number).required(),
        f("fileUrl", Text).required(),
        f("category", Text),
        f("description", Text),
        f("aiExtractedText", Text),
        f("aiSummary", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("opportunityId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("userId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("contactId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("companyId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("ticketId", Asc), ("createdAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentCategory {
    Proposal,
    Contract,
    Presentation,
    #[default]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "_id")]
    pub id: AttachmentId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<OpportunityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<CompanyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<TicketId>,
    /// The uploader.
    pub user_id: UserId,
    pub file_name: String,
    /// MIME type.
    pub file_type: String,
    /// Bytes.
    pub file_size: u64,
    /// Where the bytes are served from: the `/content` route of this attachment (the original's
    /// `/uploads/...` paths in old documents are kept as they are).
    pub file_url: String,
    #[serde(default)]
    pub category: AttachmentCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_extracted_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// The record a file is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentParent {
    Opportunity(OpportunityId),
    Contact(ContactId),
    Company(CompanyId),
    Ticket(TicketId),
}

impl Attachment {
    /// The parent record; `None` only for a document written by hand without one.
    pub fn parent(&self) -> Option<AttachmentParent> {
        use AttachmentParent as P;
        self.opportunity_id
            .map(P::Opportunity)
            .or(self.contact_id.map(P::Contact))
            .or(self.company_id.map(P::Company))
            .or(self.ticket_id.map(P::Ticket))
    }

    /// Sets the one parent, clearing the others.
    pub fn set_parent(&mut self, parent: AttachmentParent) {
        self.opportunity_id = None;
        self.contact_id = None;
        self.company_id = None;
        self.ticket_id = None;
        match parent {
            AttachmentParent::Opportunity(id) => self.opportunity_id = Some(id),
            AttachmentParent::Contact(id) => self.contact_id = Some(id),
            AttachmentParent::Company(id) => self.company_id = Some(id),
            AttachmentParent::Ticket(id) => self.ticket_id = Some(id),
        }
    }

    /// A file on a deal (the original's only kind).
    pub fn new(
        workspace_id: WorkspaceId,
        opportunity_id: OpportunityId,
        user_id: UserId,
        file_name: impl Into<String>,
        file_type: impl Into<String>,
        file_size: u64,
        file_url: impl Into<String>,
    ) -> Self {
        Self::on(
            workspace_id,
            AttachmentParent::Opportunity(opportunity_id),
            user_id,
            file_name,
            file_type,
            file_size,
            file_url,
        )
    }

    pub fn on(
        workspace_id: WorkspaceId,
        parent: AttachmentParent,
        user_id: UserId,
        file_name: impl Into<String>,
        file_type: impl Into<String>,
        file_size: u64,
        file_url: impl Into<String>,
    ) -> Self {
        let mut a = Self {
            id: AttachmentId::new(),
            workspace_id,
            opportunity_id: None,
            contact_id: None,
            company_id: None,
            ticket_id: None,
            user_id,
            file_name: file_name.into(),
            file_type: file_type.into(),
            file_size,
            file_url: file_url.into(),
            category: AttachmentCategory::Other,
            description: None,
            ai_extracted_text: None,
            ai_summary: None,
            created_at: None,
            updated_at: None,
        };
        a.set_parent(parent);
        a
    }
}

impl Entity for Attachment {
    const DEF: &'static EntityDef = &ATTACHMENT;
}
impl WorkspaceEntity for Attachment {}
