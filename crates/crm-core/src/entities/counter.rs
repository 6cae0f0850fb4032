//! WorkspaceCounter (`workspacecounters`): per-workspace sequences, such as ticket numbers.
//!
//! Not the original's `counters`, whose `_id` is a string (`ticket_<workspaceId>`) and which has
//! no tenant field; see ADR 0006. The next number is one atomic upsert:
//! `find_one_and_update(name = "ticket", $inc seq 1, upsert)`; the unique key on `name` makes a
//! lost upsert race fail over to the update on stores that upsert as update-then-insert.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::id::WorkspaceId;
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{EntityDef, FieldKind::*, Tenancy, UniqueKey, f};

define_id!(CounterId);

/// The counter behind ticket numbers.
pub const TICKET_COUNTER: &str = "ticket";

pub static WORKSPACE_COUNTER: EntityDef = EntityDef {
    name: "WorkspaceCounter",
    collection: "workspacecounters",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: false,
    fields: &[f("name", Text).required(), f("seq", Number).required()],
    unique: &[UniqueKey {
        name: "name",
        fields: &["name"],
    }],
    indexes: &[],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceCounter {
    #[serde(rename = "_id")]
    pub id: CounterId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The last number handed out.
    #[serde(default)]
    pub seq: u64,
}

impl WorkspaceCounter {
    pub fn new(workspace_id: WorkspaceId, name: impl Into<String>) -> Self {
        Self {
            id: CounterId::new(),
            workspace_id,
            name: name.into(),
            seq: 0,
        }
    }
}

impl Entity for WorkspaceCounter {
    const DEF: &'static EntityDef = &WORKSPACE_COUNTER;
}
impl WorkspaceEntity for WorkspaceCounter {}
