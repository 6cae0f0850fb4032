//! UserAction (`useractions`): what a user did, kept 90 days. The original logs page actions for
//! pattern detection; here it is also the audit trail of writes (`page` = [`AUDIT_PAGE`],
//! `metadata.before`/`after`/`changed`/`actor`), written by `repo::Repo` (ADR 0009).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::define_id;
use crate::id::{ObjectId, UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(UserActionId);

/// Entries expire 90 days after `timestamp`.
pub const USER_ACTION_TTL_SECONDS: u64 = 90 * 24 * 3600;

/// The `page` of audit entries, which sets them apart from the original's page tracking.
pub const AUDIT_PAGE: &str = "audit";

pub static USER_ACTION: EntityDef = EntityDef {
    name: "UserAction",
    collection: "useractions",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        // Absent on entries written by the system rather than a user.
        f("userId", Id),
        f("actionType", Text).required(),
        f("page", Text).required(),
        f("resourceType", Text),
        f("resourceId", Id),
        f("metadata", Any),
        f("timestamp", Date).required(),
        f("durationMs", Number),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("userId", Asc), ("actionType", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("page", Asc), ("actionType", Asc)]),
        IndexDef::on(&[("actionType", Asc)]),
        IndexDef::on(&[("resourceType", Asc)]),
        // The audit log: newest first, and one record's history.
        IndexDef::on(&[("timestamp", Desc)]),
        IndexDef::on(&[("resourceId", Asc), ("timestamp", Desc)]),
        // The original's TTL key (not createdAt), so its existing index is reused as is.
        IndexDef::ttl(&[("timestamp", Asc)], USER_ACTION_TTL_SECONDS),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAction {
    #[serde(rename = "_id")]
    pub id: UserActionId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// e.g. `contact.update`.
    pub action_type: String,
    pub page: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<ObjectId>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl UserAction {
    pub fn new(
        workspace_id: WorkspaceId,
        user_id: UserId,
        action_type: impl Into<String>,
        page: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: UserActionId::new(),
            workspace_id,
            user_id: Some(user_id),
            action_type: action_type.into(),
            page: page.into(),
            resource_type: None,
            resource_id: None,
            metadata: Map::new(),
            timestamp: now,
            duration_ms: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl UserAction {
    /// An audit entry (`page` = [`AUDIT_PAGE`]); `user_id` is `None` for system writes.
    pub fn audit(
        workspace_id: WorkspaceId,
        user_id: Option<UserId>,
        action_type: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: UserActionId::new(),
            workspace_id,
            user_id,
            action_type: action_type.into(),
            page: AUDIT_PAGE.into(),
            resource_type: None,
            resource_id: None,
            metadata: Map::new(),
            timestamp: now,
            duration_ms: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for UserAction {
    const DEF: &'static EntityDef = &USER_ACTION;
}
impl WorkspaceEntity for UserAction {}
