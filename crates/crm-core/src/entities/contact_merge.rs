//! ContactMerge (`contactmerges`): one record per contact merge, with the pre-merge snapshots of
//! every contact involved. Not in the original, which pushed `mergeHistory` onto the primary; a
//! record of its own keeps snapshots out of every contact read and bounds no contact's size
//! (ADR 0011).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::contact::ContactId;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(ContactMergeId);

pub static CONTACT_MERGE: EntityDef = EntityDef {
    name: "ContactMerge",
    collection: "contactmerges",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("primaryId", Id).required(),
        f("duplicateIds", Ids).required(),
        f("mergedBy", Id).required(),
        f("fields", Any),
        f("primarySnapshot", Any),
        f("duplicateSnapshots", Any),
        f("completedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("primaryId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("duplicateIds", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactMerge {
    #[serde(rename = "_id")]
    pub id: ContactMergeId,
    pub workspace_id: WorkspaceId,
    pub primary_id: ContactId,
    pub duplicate_ids: Vec<ContactId>,
    pub merged_by: UserId,
    /// The caller's field choices: field name to the contact it was taken from.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// The primary as it was before the merge.
    #[serde(default)]
    pub primary_snapshot: Value,
    /// The duplicates as they were before the merge, in `duplicate_ids` order.
    #[serde(default)]
    pub duplicate_snapshots: Vec<Value>,
    /// Absent while the merge runs, or when it was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for ContactMerge {
    const DEF: &'static EntityDef = &CONTACT_MERGE;
}
impl WorkspaceEntity for ContactMerge {}
