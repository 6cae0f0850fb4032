//! TeamMember (`teammembers`): a user's membership of a workspace, or a pending invite.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(TeamMemberId);

/// Invites expire after seven days.
pub const INVITE_TTL_SECONDS: i64 = 7 * 24 * 3600;

pub static TEAM_MEMBER: EntityDef = EntityDef {
    name: "TeamMember",
    collection: "teammembers",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("role", Text),
        f("invitedBy", Id),
        f("invitedAt", Date),
        f("joinedAt", Date),
        f("status", Text),
        f("inviteToken", Text),
        f("inviteEmail", Text),
        f("inviteExpiresAt", Date),
        f("permissions", Texts),
    ],
    // Target, not the original's sparse key: any number of invites without a user yet.
    unique: &[UniqueKey {
        name: "userId",
        fields: &["userId"],
    }],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("role", Asc)]),
        IndexDef::on(&[("inviteToken", Asc)]),
    ],
    text: &[],
};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    #[default]
    Member,
    Viewer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    #[default]
    Pending,
    Active,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamMember {
    #[serde(rename = "_id")]
    pub id: TeamMemberId,
    pub workspace_id: WorkspaceId,
    /// Absent while an invite to an unregistered email is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default)]
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<Timestamp>,
    #[serde(default)]
    pub status: MemberStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_token: Option<String>,
    /// Lowercased and trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_expires_at: Option<Timestamp>,
    /// Grants on top of the role's.
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl TeamMember {
    /// A pending membership with the original's defaults (`invitedAt` = now).
    pub fn new(workspace_id: WorkspaceId, role: Role, now: Timestamp) -> Self {
        Self {
            id: TeamMemberId::new(),
            workspace_id,
            user_id: None,
            role,
            invited_by: None,
            invited_at: Some(now),
            joined_at: None,
            status: MemberStatus::Pending,
            invite_token: None,
            invite_email: None,
            invite_expires_at: None,
            permissions: Vec::new(),
            created_at: None,
            updated_at: None,
        }
    }

    /// A pending invite to an email, expiring after [`INVITE_TTL_SECONDS`].
    pub fn invite(
        workspace_id: WorkspaceId,
        email: &str,
        role: Role,
        invited_by: UserId,
        token: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        let mut m = Self::new(workspace_id, role, now);
        m.invite_email = Some(email.trim().to_lowercase());
        m.invited_by = Some(invited_by);
        m.invite_token = Some(token.into());
        m.invite_expires_at = Some(now.plus_seconds(INVITE_TTL_SECONDS));
        m
    }
}

impl Entity for TeamMember {
    const DEF: &'static EntityDef = &TEAM_MEMBER;
}
impl WorkspaceEntity for TeamMember {}
