//! Form (`forms`), FormSubmission (`formsubmissions`), FormTemplate (`formtemplates`, global
//! library), LeadForm (`leadforms`) and the public form directory (`publicforms`, global: which
//! workspace a published form id belongs to, since the public submit URL names only the form).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crm_core::define_id;
use crm_core::entities::contact::ContactId;
use crm_core::repo::{Entity, GlobalEntity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{Timestamp, UserId, WorkspaceId};

use crate::text::{Bounded, Slug};

define_id!(FormId);
define_id!(FormSubmissionId);
define_id!(FormTemplateId);
define_id!(LeadFormId);

pub static FORM: EntityDef = EntityDef {
    name: "Form",
    collection: "forms",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("name", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("fields", Array),
        f("settings", Object),
        f("settings.schedule.startDate", Date),
        f("settings.schedule.endDate", Date),
        f("leadRouting", Any),
        f("followUpActions", Any),
        f("abTesting", Any),
        f("stats", Object),
        f("stats.conversionRate", Number),
        f("stats.lastSubmittedAt", Date),
        f("embedCode", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("stats.conversionRate", Desc)]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PublishStatus {
    #[default]
    Draft,
    Published,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormField {
    pub id: Bounded<100>,
    /// One of the builder's field kinds (`text`, `email`, `phone`, `select`, ...).
    #[serde(rename = "type")]
    pub field_type: Bounded<50>,
    pub label: Bounded<500>,
    #[serde(default)]
    pub required: bool,
    /// The contact field the answer fills (`firstName`, `email`, ... or `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_to_field: Option<String>,
    /// Builder settings this server does not interpret (placeholder, options, validation, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormSchedule {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_when_closed: Option<String>,
}

fn yes() -> bool {
    true
}

fn thanks() -> String {
    "Thank you for your submission!".to_owned()
}

fn submit() -> String {
    "Submit".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormSettings {
    #[serde(default = "submit")]
    pub submit_button_text: String,
    #[serde(default = "thanks")]
    pub success_message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(default = "yes")]
    pub auto_create_contact: bool,
    /// Most submissions ever (spam not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_submissions: Option<u64>,
    /// Most submissions per UTC day (spam not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_submissions_per_day: Option<u64>,
    #[serde(default)]
    pub schedule: FormSchedule,
    /// Appearance and other settings kept as the builder wrote them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for FormSettings {
    fn default() -> Self {
        Self {
            submit_button_text: submit(),
            success_message: thanks(),
            redirect_url: None,
            auto_create_contact: true,
            max_submissions: None,
            max_submissions_per_day: None,
            schedule: FormSchedule::default(),
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormStats {
    #[serde(default)]
    pub views: u64,
    #[serde(default)]
    pub submissions: u64,
    #[serde(default)]
    pub conversion_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_submitted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Form {
    #[serde(rename = "_id")]
    pub id: FormId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Changed only by publish, unpublish and archive (the public directory follows it).
    #[serde(default)]
    pub status: PublishStatus,
    #[serde(default)]
    pub fields: Vec<FormField>,
    #[serde(default)]
    pub settings: FormSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_routing: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_actions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_testing: Option<Value>,
    #[serde(default)]
    pub stats: FormStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Form {
    pub fn new(ws: WorkspaceId, user: UserId, name: Bounded<200>) -> Self {
        Self {
            id: FormId::new(),
            workspace_id: ws,
            user_id: user,
            name,
            description: None,
            status: PublishStatus::Draft,
            fields: Vec::new(),
            settings: FormSettings::default(),
            lead_routing: None,
            follow_up_actions: None,
            ab_testing: None,
            stats: FormStats::default(),
            embed_code: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Form {
    const DEF: &'static EntityDef = &FORM;
}
impl WorkspaceEntity for Form {}

pub static FORM_SUBMISSION: EntityDef = EntityDef {
    name: "FormSubmission",
    collection: "formsubmissions",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("formId", Id).required(),
        f("contactId", Id),
        f("data", Any).required(),
        f("source", Object),
        f("status", Text).required(),
        f("contactCreated", Bool),
        f("processedAt", Date),
        f("processingError", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("formId", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("formId", Asc), ("createdAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    #[default]
    New,
    Contacted,
    Qualified,
    Spam,
    Archived,
}

/// Where a submission came from (the original's `source`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormSubmission {
    #[serde(rename = "_id")]
    pub id: FormSubmissionId,
    pub workspace_id: WorkspaceId,
    pub form_id: FormId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// The answers exactly as submitted.
    pub data: Map<String, Value>,
    #[serde(default)]
    pub source: SubmissionSource,
    #[serde(default)]
    pub status: SubmissionStatus,
    #[serde(default)]
    pub contact_created: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for FormSubmission {
    const DEF: &'static EntityDef = &FORM_SUBMISSION;
}
impl WorkspaceEntity for FormSubmission {}

pub static FORM_TEMPLATE: EntityDef = EntityDef {
    name: "FormTemplate",
    collection: "formtemplates",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("slug", Text).required(),
        f("description", Text),
        f("industry", Text),
        f("useCase", Text),
        f("category", Text),
        f("fields", Array),
        f("settings", Object),
        f("tags", Texts),
        f("featured", Bool),
        f("rating", Number),
        f("benchmark", Any),
        f("usageCount", Number),
    ],
    unique: &[UniqueKey {
        name: "slug",
        fields: &["slug"],
    }],
    indexes: &[
        IndexDef::on(&[("industry", Asc)]),
        IndexDef::on(&[("useCase", Asc)]),
        IndexDef::on(&[("industry", Asc), ("useCase", Asc)]),
        IndexDef::on(&[("featured", Asc), ("rating", Desc)]),
        IndexDef::on(&[("tags", Asc)]),
        IndexDef::on(&[("benchmark", Asc)]),
    ],
    text: &["name", "description"],
};

/// A shared starting point for forms, the same for every workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormTemplate {
    #[serde(rename = "_id")]
    pub id: FormTemplateId,
    pub name: Bounded<200>,
    pub slug: Slug,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub fields: Vec<FormField>,
    #[serde(default)]
    pub settings: FormSettings,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub featured: bool,
    #[serde(default)]
    pub rating: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<Value>,
    #[serde(default)]
    pub usage_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for FormTemplate {
    const DEF: &'static EntityDef = &FORM_TEMPLATE;
}
impl GlobalEntity for FormTemplate {}

pub static PUBLIC_FORM: EntityDef = EntityDef {
    name: "PublicForm",
    collection: "publicforms",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[f("workspaceId", Id).required()],
    unique: &[],
    indexes: &[IndexDef::on(&[("workspaceId", Asc)])],
    text: &[],
};

/// Directory entry: form `_id` is published in `workspaceId`. Written on publish, removed on
/// unpublish, archive and delete; the form itself stays the authority (a stale entry whose
/// form is gone or unpublished answers 404).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicForm {
    #[serde(rename = "_id")]
    pub id: FormId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for PublicForm {
    const DEF: &'static EntityDef = &PUBLIC_FORM;
}
impl GlobalEntity for PublicForm {}

pub static LEAD_FORM: EntityDef = EntityDef {
    name: "LeadForm",
    collection: "leadforms",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("description", Text),
        f("type", Text),
        f("fields", Array),
        f("style", Object),
        f("trigger", Object),
        f("headline", Text),
        f("subheadline", Text),
        f("submitButtonText", Text),
        f("successMessage", Text),
        f("redirectUrl", Text),
        f("active", Bool),
        f("showOnPages", Texts),
        f("hideOnPages", Texts),
        f("showFrequency", Text),
        f("views", Number),
        f("submissions", Number),
    ],
    unique: &[],
    indexes: &[IndexDef::on(&[("active", Asc)])],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeadFormType {
    #[default]
    Popup,
    Inline,
    SlideIn,
    Banner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShowFrequency {
    Always,
    #[default]
    OncePerSession,
    OncePerVisitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeadFieldType {
    #[default]
    Text,
    Email,
    Phone,
    Textarea,
    Select,
    Checkbox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadFormField {
    pub name: Bounded<100>,
    pub label: Bounded<500>,
    #[serde(default, rename = "type")]
    pub field_type: LeadFieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub options: Vec<String>,
}

fn stay() -> String {
    "Stay in touch".to_owned()
}
fn sub() -> String {
    "Get the latest updates delivered to your inbox.".to_owned()
}
fn subscribe() -> String {
    "Subscribe".to_owned()
}
fn thanks_subscribing() -> String {
    "Thank you for subscribing!".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadForm {
    #[serde(rename = "_id")]
    pub id: LeadFormId,
    pub workspace_id: WorkspaceId,
    pub name: Bounded<200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, rename = "type")]
    pub form_type: LeadFormType,
    #[serde(default)]
    pub fields: Vec<LeadFormField>,
    #[serde(default)]
    pub style: Map<String, Value>,
    #[serde(default)]
    pub trigger: Map<String, Value>,
    #[serde(default = "stay")]
    pub headline: String,
    #[serde(default = "sub")]
    pub subheadline: String,
    #[serde(default = "subscribe")]
    pub submit_button_text: String,
    #[serde(default = "thanks_subscribing")]
    pub success_message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub show_on_pages: Vec<String>,
    #[serde(default)]
    pub hide_on_pages: Vec<String>,
    #[serde(default)]
    pub show_frequency: ShowFrequency,
    #[serde(default)]
    pub views: u64,
    #[serde(default)]
    pub submissions: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for LeadForm {
    const DEF: &'static EntityDef = &LEAD_FORM;
}
impl WorkspaceEntity for LeadForm {}
