//! Attachment (`attachments`): metadata of a file on a deal; the bytes live outside the store.

use serde::{Deserialize, Serialize};

use super::opportunity::OpportunityId;
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
        f("opportunityId", Id).required(),
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
    pub opportunity_id: OpportunityId,
    /// The uploader.
    pub user_id: UserId,
    pub file_name: String,
    /// MIME type.
    pub file_type: String,
    /// Bytes.
    pub file_size: u64,
    /// Where the bytes are served from (a path under the data directory here).
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

impl Attachment {
    pub fn new(
        workspace_id: WorkspaceId,
        opportunity_id: OpportunityId,
        user_id: UserId,
        file_name: impl Into<String>,
        file_type: impl Into<String>,
        file_size: u64,
        file_url: impl Into<String>,
    ) -> Self {
        Self {
            id: AttachmentId::new(),
            workspace_id,
            opportunity_id,
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
        }
    }
}

impl Entity for Attachment {
    const DEF: &'static EntityDef = &ATTACHMENT;
}
impl WorkspaceEntity for Attachment {}
