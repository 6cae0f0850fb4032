//! WorkspaceInviteLink (`workspaceinvitelinks`): the join link of a workspace.
//!
//! At most one link per workspace is active. The original's partial unique index on
//! `(workspaceId, isActive)` where `isActive = true` cannot be declared with [`UniqueKey`] (its
//! partiality is on presence, not on a value), so the invite service enforces it; see ADR 0006.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(InviteLinkId);

pub static WORKSPACE_INVITE_LINK: EntityDef = EntityDef {
    name: "WorkspaceInviteLink",
    collection: "workspaceinvitelinks",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("token", Text).required(),
        f("role", Text),
        f("createdBy", Id).required(),
        f("isActive", Bool),
        f("expiresAt", Date),
        f("usageCount", Number),
    ],
    unique: &[UniqueKey {
        name: "token",
        fields: &["token"],
    }],
    // The original's single `{workspaceId}` index: finds a workspace's links whatever the token.
    indexes: &[IndexDef::on(&[("workspaceId", Asc)])],
    text: &[],
};

/// Roles a link can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LinkRole {
    #[default]
    Member,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceInviteLink {
    #[serde(rename = "_id")]
    pub id: InviteLinkId,
    pub workspace_id: WorkspaceId,
    pub token: String,
    #[serde(default)]
    pub role: LinkRole,
    pub created_by: UserId,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub usage_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn yes() -> bool {
    true
}

impl WorkspaceInviteLink {
    pub fn new(
        workspace_id: WorkspaceId,
        token: impl Into<String>,
        role: LinkRole,
        created_by: UserId,
    ) -> Self {
        Self {
            id: InviteLinkId::new(),
            workspace_id,
            token: token.into(),
            role,
            created_by,
            is_active: true,
            expires_at: None,
            usage_count: 0,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for WorkspaceInviteLink {
    const DEF: &'static EntityDef = &WORKSPACE_INVITE_LINK;
}
impl WorkspaceEntity for WorkspaceInviteLink {}
