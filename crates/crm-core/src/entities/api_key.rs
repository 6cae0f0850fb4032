//! ApiKey (`apikeys`): a workspace's machine credential. Only the SHA-256 of the key text is
//! stored; the text itself is shown once, at creation. See `accounts::api_keys` and ADR 0010.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::entities::team_member::Role;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(ApiKeyId);

pub static API_KEY: EntityDef = EntityDef {
    name: "ApiKey",
    collection: "apikeys",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("prefix", Text).required(),
        f("keyHash", Text).required(),
        f("role", Text).required(),
        f("createdBy", Id).required(),
        f("lastUsedAt", Date),
        f("expiresAt", Date),
        f("revokedAt", Date),
        f("revokedBy", Id),
    ],
    // Authentication looks a key up by hash within the workspace its text names.
    unique: &[UniqueKey {
        name: "keyHash",
        fields: &["keyHash"],
    }],
    indexes: &[IndexDef::on(&[("createdAt", Desc)])],
    text: &[],
};

/// The roles a key can carry: never owner, so a key can never delete the workspace or touch
/// billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    Admin,
    Member,
    Viewer,
}

impl From<KeyRole> for Role {
    fn from(r: KeyRole) -> Self {
        match r {
            KeyRole::Admin => Role::Admin,
            KeyRole::Member => Role::Member,
            KeyRole::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    #[serde(rename = "_id")]
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The key's first characters, enough to recognise it in a list.
    pub prefix: String,
    /// Hex SHA-256 of the whole key text.
    pub key_hash: String,
    pub role: KeyRole,
    /// Who answers for the key; its requests act as this user, within the key's role.
    pub created_by: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl ApiKey {
    pub fn new(
        workspace_id: WorkspaceId,
        name: impl Into<String>,
        prefix: impl Into<String>,
        key_hash: impl Into<String>,
        role: KeyRole,
        created_by: UserId,
    ) -> Self {
        Self {
            id: ApiKeyId::new(),
            workspace_id,
            name: name.into(),
            prefix: prefix.into(),
            key_hash: key_hash.into(),
            role,
            created_by,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
            revoked_by: None,
            created_at: None,
            updated_at: None,
        }
    }

    /// Not revoked and not expired at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

impl Entity for ApiKey {
    const DEF: &'static EntityDef = &API_KEY;
}
impl WorkspaceEntity for ApiKey {}
