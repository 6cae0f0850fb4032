//! Workflow (`workflows`) and WorkflowEnrollment (`workflowenrollments`) in the original's shape
//! (spec §2), plus the target's fields: the enrollment's trigger event and active key (the two
//! unique keys that make enrollment idempotent) and its run number (which step job is current).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crm_core::define_id;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{ObjectId, Timestamp, UserId, WorkspaceId};

define_id!(WorkflowId);
define_id!(WorkflowEnrollmentId);

pub static WORKFLOW: EntityDef = EntityDef {
    name: "Workflow",
    collection: "workflows",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("triggerEntityType", Text),
        f("enrollmentCriteria", Object),
        f("enrollmentCriteria.conditions", Array),
        f("enrollmentCriteria.matchAll", Bool),
        f("steps", Array),
        f("allowReenrollment", Bool),
        f("goalCriteria", Object),
        f("goalCriteria.conditions", Array),
        f("goalCriteria.matchAll", Bool),
        f("stats", Object),
        f("stats.totalEnrolled", Number),
        f("stats.currentlyActive", Number),
        f("stats.completed", Number),
        f("stats.goalsMet", Number),
        f("stats.failed", Number),
        f("lastActivatedAt", Date),
    ],
    unique: &[],
    // The original's {workspaceId} {userId} {status} {workspaceId,status} {workspaceId,createdAt:-1}
    // {workspaceId,triggerEntityType,status}; the tenant is put first by the store.
    indexes: &[
        IndexDef::on(&[("workspaceId", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("triggerEntityType", Asc), ("status", Asc)]),
    ],
    text: &["name", "description"],
};

pub static WORKFLOW_ENROLLMENT: EntityDef = EntityDef {
    name: "WorkflowEnrollment",
    collection: "workflowenrollments",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("workflowId", Id).required(),
        f("entityType", Text).required(),
        f("entityId", Id).required(),
        f("status", Text).required(),
        f("currentStepId", Text),
        f("nextExecutionTime", Date),
        f("waitingForEvent", Object),
        f("stepsExecuted", Array),
        f("stepsExecuted.startedAt", Date),
        f("stepsExecuted.completedAt", Date),
        f("enrolledBy", Id),
        f("enrollmentSource", Text),
        f("lastError", Text),
        f("errorCount", Number),
        f("dataContext", Any),
        f("enrolledAt", Date),
        f("completedAt", Date),
        f("triggerEventId", Id),
        f("activeKey", Text),
        f("run", Number),
    ],
    unique: &[
        // One enrollment per (workflow, record, trigger event): a redelivered event enrolls once.
        UniqueKey {
            name: "triggerEvent",
            fields: &["workflowId", "entityId", "triggerEventId"],
        },
        // Present only while an enrollment without re-enrollment is live (behaviour 45).
        UniqueKey {
            name: "activeKey",
            fields: &["activeKey"],
        },
    ],
    indexes: &[
        IndexDef::on(&[("workflowId", Asc)]),
        IndexDef::on(&[("workspaceId", Asc)]),
        IndexDef::on(&[("entityId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("nextExecutionTime", Asc)]),
        IndexDef::on(&[("workflowId", Asc), ("status", Asc)]),
        IndexDef::on(&[("workflowId", Asc), ("entityId", Asc)]),
        IndexDef::on(&[("entityType", Asc), ("entityId", Asc)]),
        IndexDef::on(&[("status", Asc), ("nextExecutionTime", Asc)]),
        IndexDef::on(&[("workflowId", Asc), ("entityId", Asc), ("status", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    #[default]
    Draft,
    Active,
    Paused,
    Archived,
}

/// What a workflow enrolls: `deal` is an Opportunity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    #[default]
    Contact,
    Deal,
    Company,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Contact => "contact",
            EntityType::Deal => "deal",
            EntityType::Company => "company",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contact" => Some(EntityType::Contact),
            "deal" | "opportunity" => Some(EntityType::Deal),
            "company" => Some(EntityType::Company),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    GreaterThan,
    LessThan,
    IsEmpty,
    IsNotEmpty,
    IsTrue,
    IsFalse,
}

pub const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "greater_than",
    "less_than",
    "is_empty",
    "is_not_empty",
    "is_true",
    "is_false",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
}

fn yes() -> bool {
    true
}

/// `enrollmentCriteria` and `goalCriteria`: all conditions (matchAll, the default) or any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Criteria {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default = "yes")]
    pub match_all: bool,
}

impl Default for Criteria {
    fn default() -> Self {
        Self {
            conditions: Vec::new(),
            match_all: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Position {
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
}

/// A step's `config` (the original's strict sub-schema; unknown keys are dropped). Kinds are kept
/// as text so a stored value the code does not know reads back and is reported by validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_custom_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_from_account_id: Option<String>,
    #[serde(
        default,
        rename = "useAIGeneration",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_ai_generation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_tone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_due_in_days: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_workflow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_weekdays: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_points: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_headers: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrich_type: Option<String>,
    // Target additions.
    /// `enroll_sequence`: the sequence to enroll the contact in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    /// `create_activity`: the activity's title and description (placeholders allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_description: Option<String>,
    /// `wait_until`: all conditions (default) or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_all: Option<bool>,
    /// `wait_until`: give up after this long (then `nextStepIds[1]`, or the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    /// trigger, action, delay, condition, wait_until.
    #[serde(rename = "type")]
    pub step_type: String,
    pub name: String,
    #[serde(default)]
    pub position: Position,
    #[serde(default)]
    pub next_step_ids: Vec<String>,
    #[serde(default)]
    pub config: StepConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStats {
    #[serde(default)]
    pub total_enrolled: i64,
    #[serde(default)]
    pub currently_active: i64,
    #[serde(default)]
    pub completed: i64,
    #[serde(default)]
    pub goals_met: i64,
    #[serde(default)]
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    #[serde(rename = "_id")]
    pub id: WorkflowId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: WorkflowStatus,
    #[serde(default)]
    pub trigger_entity_type: EntityType,
    #[serde(default)]
    pub enrollment_criteria: Criteria,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub allow_reenrollment: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_criteria: Option<Criteria>,
    #[serde(default)]
    pub stats: WorkflowStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Workflow {
    pub fn new(ws: WorkspaceId, user: UserId, name: impl Into<String>) -> Self {
        Self {
            id: WorkflowId::new(),
            workspace_id: ws,
            user_id: user,
            name: name.into(),
            description: None,
            status: WorkflowStatus::Draft,
            trigger_entity_type: EntityType::Contact,
            enrollment_criteria: Criteria::default(),
            steps: Vec::new(),
            allow_reenrollment: false,
            goal_criteria: None,
            stats: WorkflowStats::default(),
            last_activated_at: None,
            created_at: None,
            updated_at: None,
        }
    }

    /// The first `trigger` step (the original's `getTriggerStep`).
    pub fn trigger_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.step_type == "trigger")
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether some trigger step fires on `trigger` (e.g. `contact_created`).
    pub fn has_trigger(&self, trigger: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.step_type == "trigger" && s.config.trigger_type.as_deref() == Some(trigger))
    }

    /// Where a new enrollment starts: after the trigger, else the first step.
    pub fn entry_step(&self) -> Option<&Step> {
        match self.trigger_step() {
            Some(t) => t.next_step_ids.first().and_then(|id| self.step(id)),
            None => self.steps.first(),
        }
    }
}

impl Entity for Workflow {
    const DEF: &'static EntityDef = &WORKFLOW;
}
impl WorkspaceEntity for Workflow {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    #[default]
    Active,
    Processing,
    Completed,
    GoalMet,
    Failed,
    Cancelled,
    Paused,
    Retrying,
    WaitingForEvent,
}

impl EnrollmentStatus {
    /// Still running or resumable: blocks a second enrollment (behaviour 45).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::Active | Self::Processing | Self::Paused | Self::Retrying | Self::WaitingForEvent
        )
    }
    /// A step job may run.
    pub fn is_runnable(self) -> bool {
        matches!(
            self,
            Self::Active | Self::Processing | Self::Retrying | Self::WaitingForEvent
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::GoalMet => "goal_met",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Paused => "paused",
            Self::Retrying => "retrying",
            Self::WaitingForEvent => "waiting_for_event",
        }
    }
    pub const LIVE: [&'static str; 5] = [
        "active",
        "processing",
        "paused",
        "retrying",
        "waiting_for_event",
    ];
    pub const RUNNABLE: [&'static str; 4] =
        ["active", "processing", "retrying", "waiting_for_event"];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentSource {
    #[default]
    Automatic,
    Manual,
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StepRunStatus {
    #[default]
    Pending,
    Running,
    Completed,
    Failed,
    Skipped,
    Waiting,
}

/// One entry of the step log: what ran, with what, what came out, how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepExecution {
    pub step_id: String,
    pub step_name: String,
    pub step_type: String,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub status: StepRunStatus,
    /// The resolved config the step ran with (target addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

fn default_data_context() -> Value {
    json!({"variables": {}, "previousResults": {}})
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowEnrollment {
    #[serde(rename = "_id")]
    pub id: WorkflowEnrollmentId,
    pub workspace_id: WorkspaceId,
    pub workflow_id: WorkflowId,
    pub entity_type: EntityType,
    pub entity_id: ObjectId,
    #[serde(default)]
    pub status: EnrollmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_execution_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for_event: Option<Value>,
    #[serde(default)]
    pub steps_executed: Vec<StepExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_by: Option<UserId>,
    #[serde(default)]
    pub enrollment_source: EnrollmentSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub error_count: u32,
    #[serde(default = "default_data_context")]
    pub data_context: Value,
    pub enrolled_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// The domain event that caused an automatic enrollment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_event_id: Option<ObjectId>,
    /// `<workflowId>:<entityId>` while live and the workflow forbids re-enrollment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_key: Option<String>,
    /// Bumped by retry and resume so their step jobs get fresh dedupe keys.
    #[serde(default)]
    pub run: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl WorkflowEnrollment {
    pub fn new(
        wf: &Workflow,
        entity_type: EntityType,
        entity_id: ObjectId,
        now: Timestamp,
    ) -> Self {
        Self {
            id: WorkflowEnrollmentId::new(),
            workspace_id: wf.workspace_id,
            workflow_id: wf.id,
            entity_type,
            entity_id,
            status: EnrollmentStatus::Active,
            current_step_id: None,
            next_execution_time: Some(now),
            waiting_for_event: None,
            steps_executed: Vec::new(),
            enrolled_by: None,
            enrollment_source: EnrollmentSource::Automatic,
            last_error: None,
            error_count: 0,
            data_context: default_data_context(),
            enrolled_at: now,
            completed_at: None,
            trigger_event_id: None,
            active_key: (!wf.allow_reenrollment).then(|| active_key(wf.id, entity_id)),
            run: 0,
            created_at: None,
            updated_at: None,
        }
    }
}

pub fn active_key(wf: WorkflowId, entity: ObjectId) -> String {
    format!("{wf}:{}", entity.to_hex())
}

impl Entity for WorkflowEnrollment {
    const DEF: &'static EntityDef = &WORKFLOW_ENROLLMENT;
}
impl WorkspaceEntity for WorkflowEnrollment {}
