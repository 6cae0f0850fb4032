//! Pipeline (`pipelines`): the stages deals move through, embedded with their own ids.
//!
//! One default pipeline per workspace is a service rule, not a unique key (the flag is `false`
//! on every other pipeline, so a key on it would allow only one non-default): setting a default
//! clears `isDefault` on the others first; see ADR 0006.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(PipelineId);
define_id!(
    /// The `_id` of a stage embedded in a pipeline.
    StageId
);

/// A pipeline has between one and twenty stages.
pub const MAX_STAGES: usize = 20;

pub static PIPELINE: EntityDef = EntityDef {
    name: "Pipeline",
    collection: "pipelines",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("description", Text),
        f("stages", Array),
        f("stages._id", Id),
        f("stages.name", Text),
        f("stages.order", Number),
        f("stages.color", Text),
        f("stages.outcome", Text),
        f("isDefault", Bool),
        f("isActive", Bool),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("isActive", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("isDefault", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    #[serde(rename = "_id")]
    pub id: StageId,
    pub name: String,
    pub order: u32,
    /// `#RRGGBB`.
    pub color: String,
    /// Target addition: deals entering a `won`/`lost` stage take that status (absent: open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StageOutcome>,
}

/// What reaching a stage means for a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageOutcome {
    Won,
    Lost,
}

impl Stage {
    pub fn new(name: impl Into<String>, order: u32, color: impl Into<String>) -> Self {
        Self {
            id: StageId::new(),
            name: name.into(),
            order,
            color: color.into(),
            outcome: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    #[serde(rename = "_id")]
    pub id: PipelineId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub is_default: bool,
    /// `false` once archived (the original's soft delete).
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn yes() -> bool {
    true
}

impl Pipeline {
    pub fn new(
        workspace_id: WorkspaceId,
        user_id: UserId,
        name: impl Into<String>,
        stages: Vec<Stage>,
    ) -> Self {
        Self {
            id: PipelineId::new(),
            workspace_id,
            user_id,
            name: name.into(),
            description: None,
            stages,
            is_default: false,
            is_active: true,
            created_at: None,
            updated_at: None,
        }
    }

    pub fn stage(&self, id: StageId) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}

impl Entity for Pipeline {
    const DEF: &'static EntityDef = &PIPELINE;
    const AUDITED: bool = true;
}
impl WorkspaceEntity for Pipeline {}
