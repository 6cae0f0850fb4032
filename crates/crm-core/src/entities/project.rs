//! Project (`projects`): the workspace itself. Global, since it is the tenant; its `_id` is the
//! [`WorkspaceId`] every scoped record carries.

use serde::{Deserialize, Serialize};

use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, GlobalEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

pub static PROJECT: EntityDef = EntityDef {
    name: "Project",
    collection: "projects",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("timezone", Text),
        f("allowedDomains", Texts),
        f("trackingEnabled", Bool),
        f("deletedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("createdAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    #[serde(rename = "_id")]
    pub id: WorkspaceId,
    /// The owner.
    pub user_id: UserId,
    pub name: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Hosts allowed to send tracking events; empty allows all.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default = "yes")]
    pub tracking_enabled: bool,
    /// Target: a deleted workspace is kept (and its data purged) rather than removed at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn yes() -> bool {
    true
}

impl Project {
    pub fn new(owner: UserId, name: impl Into<String>) -> Self {
        Self {
            id: WorkspaceId::new(),
            user_id: owner,
            name: name.into(),
            timezone: default_timezone(),
            allowed_domains: Vec::new(),
            tracking_enabled: true,
            deleted_at: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Project {
    const DEF: &'static EntityDef = &PROJECT;
}
impl GlobalEntity for Project {}
