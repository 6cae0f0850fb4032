//! StageChangeEvent (`stagechangeevents`): the immutable log of deal stage moves. Like the
//! original it has `createdAt` only, so it is declared here and set by the constructor.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::opportunity::{OpportunityId, OpportunityStatus};
use super::pipeline::{PipelineId, StageId};
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(StageChangeEventId);

pub static STAGE_CHANGE_EVENT: EntityDef = EntityDef {
    name: "StageChangeEvent",
    collection: "stagechangeevents",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: false,
    fields: &[
        f("entityId", Id).required(),
        f("entityType", Text).required(),
        f("pipelineId", Id).required(),
        f("oldStageId", Id),
        f("oldStageName", Text),
        f("newStageId", Id).required(),
        f("newStageName", Text).required(),
        f("timestamp", Date).required(),
        f("userId", Id),
        f("metadata", Object),
        f("metadata.assignedTo", Id),
        f("createdAt", Date).required(),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("entityId", Asc), ("timestamp", Asc)]),
        IndexDef::on(&[("pipelineId", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("newStageId", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("timestamp", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StageEntityType {
    #[default]
    Opportunity,
}

/// The deal as it was when it moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StageChangeMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OpportunityStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageChangeEvent {
    #[serde(rename = "_id")]
    pub id: StageChangeEventId,
    pub workspace_id: WorkspaceId,
    pub entity_id: OpportunityId,
    #[serde(default)]
    pub entity_type: StageEntityType,
    pub pipeline_id: PipelineId,
    /// Absent for the first stage a deal enters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_stage_id: Option<StageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_stage_name: Option<String>,
    pub new_stage_id: StageId,
    pub new_stage_name: String,
    pub timestamp: Timestamp,
    /// Absent for automated moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default)]
    pub metadata: StageChangeMeta,
    pub created_at: Timestamp,
}

impl StageChangeEvent {
    pub fn new(
        workspace_id: WorkspaceId,
        entity_id: OpportunityId,
        pipeline_id: PipelineId,
        new_stage_id: StageId,
        new_stage_name: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: StageChangeEventId::new(),
            workspace_id,
            entity_id,
            entity_type: StageEntityType::Opportunity,
            pipeline_id,
            old_stage_id: None,
            old_stage_name: None,
            new_stage_id,
            new_stage_name: new_stage_name.into(),
            timestamp: now,
            user_id: None,
            metadata: StageChangeMeta::default(),
            created_at: now,
        }
    }
}

impl Entity for StageChangeEvent {
    const DEF: &'static EntityDef = &STAGE_CHANGE_EVENT;
}
impl WorkspaceEntity for StageChangeEvent {}
