//! `memberships`: a global index of which users belong to which workspaces, so "my workspaces"
//! is one query. `TeamMember` inside the workspace stays the truth that access checks read; this
//! copy is written after it and only serves listings.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{ObjectId, UserId, WorkspaceId};
use crate::query::{Filter, FindOptions, Update};
use crate::repo::{Entity, GlobalEntity, Stores};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

use super::permissions::Role;

pub static MEMBERSHIP: EntityDef = EntityDef {
    name: "Membership",
    collection: "memberships",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("workspaceId", Id).required(),
        f("role", Text).required(),
    ],
    unique: &[UniqueKey {
        name: "userWorkspace",
        fields: &["userId", "workspaceId"],
    }],
    indexes: &[IndexDef::on(&[("userId", Asc)])],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Membership {
    const DEF: &'static EntityDef = &MEMBERSHIP;
}
impl GlobalEntity for Membership {}

fn key(user: UserId, ws: WorkspaceId) -> Filter {
    Filter::eq("userId", user.to_string()).and(Filter::eq("workspaceId", ws.to_string()))
}

/// Records (or updates) an active membership.
pub async fn record(stores: &Stores, user: UserId, ws: WorkspaceId, role: Role) -> Result<()> {
    let role = serde_json::to_value(role).map_err(crate::error::Error::internal)?;
    stores
        .global::<Membership>()
        .find_one_and_update(&key(user, ws), &Update::new().set("role", role), true)
        .await?;
    Ok(())
}

pub async fn forget(stores: &Stores, user: UserId, ws: WorkspaceId) -> Result<()> {
    stores
        .global::<Membership>()
        .delete_many(&key(user, ws))
        .await?;
    Ok(())
}

/// The user's memberships (any order), at most `limit`.
pub async fn of_user(stores: &Stores, user: UserId, limit: u64) -> Result<Vec<Membership>> {
    stores
        .global::<Membership>()
        .find(
            &Filter::eq("userId", user.to_string()),
            &FindOptions {
                limit: Some(limit),
                ..FindOptions::default()
            },
        )
        .await
}
