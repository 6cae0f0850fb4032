//! The plainly stored engagement records: LandingPage, Chatbot, LeadMagnet, VoiceDrop,
//! MeetingScheduler and DeliverabilityTest. Top-level fields are typed (enums with the
//! original's strings, bounded names, slugs); nested builder settings are kept as written.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crm_core::define_id;
use crm_core::entities::contact::ContactId;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{ObjectId, Timestamp, UserId, WorkspaceId};

use crate::forms::{FormId, PublishStatus};
use crate::text::{Bounded, Slug};
use crate::window::TimeZoneName;

define_id!(LandingPageId);
define_id!(ChatbotId);
define_id!(LeadMagnetId);
define_id!(VoiceDropId);
define_id!(MeetingSchedulerId);
define_id!(DeliverabilityTestId);

const WS: Tenancy = Tenancy::Workspace {
    field: "workspaceId",
};

pub static LANDING_PAGE: EntityDef = EntityDef {
    name: "LandingPage",
    collection: "landingpages",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("name", Text).required(),
        f("slug", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("sections", Array),
        f("seo", Object),
        f("settings", Object),
        f("stats", Object),
        f("stats.lastViewedAt", Date),
        f("formId", Id),
    ],
    unique: &[UniqueKey {
        name: "slug",
        fields: &["slug"],
    }],
    indexes: &[
        IndexDef::on(&[("slug", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SectionType {
    Hero,
    Features,
    Testimonials,
    Pricing,
    Cta,
    Form,
    Content,
    Image,
    Video,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageSection {
    pub id: Bounded<100>,
    #[serde(rename = "type")]
    pub section_type: SectionType,
    #[serde(default)]
    pub order: u32,
    /// Headings, copy, colours, a `formId` for form sections: served as data, never rendered
    /// by this server.
    #[serde(default)]
    pub settings: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seo {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub og_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favicon: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LandingPage {
    #[serde(rename = "_id")]
    pub id: LandingPageId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<200>,
    pub slug: Slug,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: PublishStatus,
    #[serde(default)]
    pub sections: Vec<PageSection>,
    #[serde(default)]
    pub seo: Seo,
    /// Theme, colours, analytics ids and custom code, stored verbatim.
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub stats: Map<String, Value>,
    /// The form the page collects leads with, in this workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_id: Option<FormId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for LandingPage {
    const DEF: &'static EntityDef = &LANDING_PAGE;
}
impl WorkspaceEntity for LandingPage {}

pub static CHATBOT: EntityDef = EntityDef {
    name: "Chatbot",
    collection: "chatbots",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("name", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("trigger", Object),
        f("steps", Array),
        f("settings", Object),
        f("useAI", Bool),
        f("aiProvider", Text),
        f("aiModel", Text),
        f("aiSystemPrompt", Text),
        f("aiFallbackToHuman", Bool),
        f("stats", Object),
        f("lastActivatedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChatbotStatus {
    #[default]
    Draft,
    Active,
    Paused,
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatbotTrigger {
    PageLoad,
    TimeDelay,
    ScrollDepth,
    ExitIntent,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatbotTriggerConfig {
    #[serde(rename = "type")]
    pub trigger_type: ChatbotTrigger,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatbotStepType {
    Message,
    Question,
    CollectInfo,
    Condition,
    Action,
    Handoff,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatbotStep {
    pub id: Bounded<100>,
    #[serde(rename = "type")]
    pub step_type: ChatbotStepType,
    pub name: Bounded<200>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiProvider {
    Openai,
    Anthropic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chatbot {
    #[serde(rename = "_id")]
    pub id: ChatbotId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<100>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Bounded<500>>,
    #[serde(default)]
    pub status: ChatbotStatus,
    pub trigger: ChatbotTriggerConfig,
    #[serde(default)]
    pub steps: Vec<ChatbotStep>,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default, rename = "useAI")]
    pub use_ai: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_provider: Option<AiProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_system_prompt: Option<String>,
    #[serde(default = "yes")]
    pub ai_fallback_to_human: bool,
    #[serde(default)]
    pub stats: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn yes() -> bool {
    true
}

impl Entity for Chatbot {
    const DEF: &'static EntityDef = &CHATBOT;
}
impl WorkspaceEntity for Chatbot {}

pub static LEAD_MAGNET: EntityDef = EntityDef {
    name: "LeadMagnet",
    collection: "leadmagnets",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("title", Text).required(),
        f("description", Text).required(),
        f("type", Text).required(),
        f("coverImageUrl", Text),
        f("fileUrl", Text),
        f("fileName", Text),
        f("fileSize", Number),
        f("fileType", Text),
        f("isGated", Bool),
        f("formId", Id),
        f("requiredFields", Texts),
        f("deliveryMethod", Text),
        f("emailTemplateId", Id),
        f("thankYouPageUrl", Text),
        f("views", Number),
        f("downloads", Number),
        f("conversionRate", Number),
        f("averageReadTime", Number),
        f("slug", Text).required(),
        f("tags", Texts),
        f("category", Text),
        f("keywords", Texts),
        f("status", Text).required(),
        f("publishedAt", Date),
        f("isPublic", Bool),
        f("allowedDomains", Texts),
    ],
    unique: &[UniqueKey {
        name: "slug",
        fields: &["slug"],
    }],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("type", Asc)]),
        IndexDef::on(&[("downloads", Desc)]),
    ],
    text: &["title", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MagnetType {
    Ebook,
    Whitepaper,
    Template,
    Checklist,
    Guide,
    CaseStudy,
    Report,
    Webinar,
    Video,
    Tool,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMethod {
    #[default]
    InstantDownload,
    Email,
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadMagnet {
    #[serde(rename = "_id")]
    pub id: LeadMagnetId,
    pub workspace_id: WorkspaceId,
    pub title: Bounded<200>,
    pub description: Bounded<1000>,
    #[serde(rename = "type")]
    pub magnet_type: MagnetType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
    #[serde(default = "yes")]
    pub is_gated: bool,
    /// The gating form, in this workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_id: Option<FormId>,
    #[serde(default)]
    pub required_fields: Vec<String>,
    #[serde(default)]
    pub delivery_method: DeliveryMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_template_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thank_you_page_url: Option<String>,
    #[serde(default)]
    pub views: u64,
    #[serde(default)]
    pub downloads: u64,
    #[serde(default)]
    pub conversion_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_read_time: Option<f64>,
    pub slug: Slug,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub status: PublishStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Timestamp>,
    #[serde(default = "yes")]
    pub is_public: bool,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for LeadMagnet {
    const DEF: &'static EntityDef = &LEAD_MAGNET;
}
impl WorkspaceEntity for LeadMagnet {}

pub static VOICE_DROP: EntityDef = EntityDef {
    name: "VoiceDrop",
    collection: "voicedrops",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("name", Text).required(),
        f("description", Text),
        f("audioFileUrl", Text).required(),
        f("audioFileName", Text).required(),
        f("audioDuration", Number).required(),
        f("transcription", Text),
        f("recipients", Array),
        f("recipients.contactId", Id),
        f("recipients.deliveredAt", Date),
        f("totalRecipients", Number),
        f("delivered", Number),
        f("failed", Number),
        f("status", Text).required(),
        f("scheduledAt", Date),
        f("startedAt", Date),
        f("completedAt", Date),
        f("sendingSpeed", Text),
        f("timeZoneRespect", Bool),
        f("retryFailed", Bool),
        f("maxRetries", Number),
        f("estimatedCost", Number),
        f("actualCost", Number),
        f("costPerDrop", Number),
        f("optOutNumbers", Texts),
        f("complianceNotes", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("scheduledAt", Asc)]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VoiceDropStatus {
    #[default]
    Scheduled,
    Sending,
    Delivered,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    #[default]
    Pending,
    Delivered,
    Failed,
    InvalidNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SendingSpeed {
    Slow,
    #[default]
    Medium,
    Fast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceDropRecipient {
    /// A contact of this workspace.
    pub contact_id: ContactId,
    pub phone: Bounded<50>,
    #[serde(default)]
    pub status: RecipientStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

/// Audio length in seconds, 1 to 120 (the original's bounds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct AudioSeconds(f64);

impl TryFrom<f64> for AudioSeconds {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (1.0..=120.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err("must be between 1 and 120 seconds".to_owned())
        }
    }
}

impl From<AudioSeconds> for f64 {
    fn from(v: AudioSeconds) -> f64 {
        v.0
    }
}

fn two() -> u32 {
    2
}
fn five_cents() -> f64 {
    5.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceDrop {
    #[serde(rename = "_id")]
    pub id: VoiceDropId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Bounded<500>>,
    pub audio_file_url: Bounded<2000>,
    pub audio_file_name: Bounded<500>,
    pub audio_duration: AudioSeconds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<String>,
    #[serde(default)]
    pub recipients: Vec<VoiceDropRecipient>,
    #[serde(default)]
    pub total_recipients: u64,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub status: VoiceDropStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub sending_speed: SendingSpeed,
    #[serde(default = "yes")]
    pub time_zone_respect: bool,
    #[serde(default = "yes")]
    pub retry_failed: bool,
    #[serde(default = "two")]
    pub max_retries: u32,
    #[serde(default)]
    pub estimated_cost: f64,
    #[serde(default)]
    pub actual_cost: f64,
    #[serde(default = "five_cents")]
    pub cost_per_drop: f64,
    #[serde(default)]
    pub opt_out_numbers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl VoiceDrop {
    /// The original's pre-save totals.
    pub fn recount(&mut self) {
        self.total_recipients = self.recipients.len() as u64;
        let n = |s: RecipientStatus| self.recipients.iter().filter(|r| r.status == s).count();
        self.delivered = n(RecipientStatus::Delivered) as u64;
        self.failed = n(RecipientStatus::Failed) as u64;
        self.estimated_cost = self.total_recipients as f64 * self.cost_per_drop;
        self.actual_cost = self.recipients.iter().filter_map(|r| r.cost).sum();
    }
}

impl Entity for VoiceDrop {
    const DEF: &'static EntityDef = &VOICE_DROP;
}
impl WorkspaceEntity for VoiceDrop {}

pub static MEETING_SCHEDULER: EntityDef = EntityDef {
    name: "MeetingScheduler",
    collection: "meetingschedulers",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("slug", Text).required(),
        f("description", Text),
        f("isActive", Bool),
        f("duration", Number).required(),
        f("location", Object),
        f("timezone", Text),
        f("availabilityWindows", Array),
        f("bufferBefore", Number),
        f("bufferAfter", Number),
        f("minNotice", Number),
        f("maxAdvanceBooking", Number),
        f("assignmentType", Text),
        f("assignedUsers", Ids),
        f("specificUser", Id),
        f("calendarIntegration", Object),
        f("enableQualification", Bool),
        f("qualificationQuestions", Array),
        f("autoDisqualify", Bool),
        f("confirmationEmail", Object),
        f("reminderEmails", Object),
        f("stats", Object),
    ],
    unique: &[UniqueKey {
        name: "slug",
        fields: &["slug"],
    }],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("isActive", Asc)]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationType {
    Zoom,
    GoogleMeet,
    Phone,
    InPerson,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingLocation {
    #[serde(rename = "type")]
    pub location_type: LocationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentType {
    RoundRobin,
    #[default]
    SpecificUser,
    UserChoice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityWindow {
    /// 0 = Sunday.
    #[serde(deserialize_with = "day_of_week")]
    pub day_of_week: u8,
    pub start_time: crate::window::Hhmm,
    pub end_time: crate::window::Hhmm,
}

fn day_of_week<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if v <= 6 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom("must be 0 (Sunday) to 6"))
    }
}

/// Minutes, 15 to 240 (the original's bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MeetingMinutes(u32);

impl TryFrom<u32> for MeetingMinutes {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        if (15..=240).contains(&v) {
            Ok(Self(v))
        } else {
            Err("must be between 15 and 240 minutes".to_owned())
        }
    }
}

impl From<MeetingMinutes> for u32 {
    fn from(v: MeetingMinutes) -> u32 {
        v.0
    }
}

fn new_york() -> TimeZoneName {
    "America/New_York"
        .parse()
        .unwrap_or_else(|_| TimeZoneName::utc())
}
fn sixty() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingScheduler {
    #[serde(rename = "_id")]
    pub id: MeetingSchedulerId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<100>,
    pub slug: Slug,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Bounded<500>>,
    #[serde(default = "yes")]
    pub is_active: bool,
    pub duration: MeetingMinutes,
    pub location: MeetingLocation,
    #[serde(default = "new_york")]
    pub timezone: TimeZoneName,
    #[serde(default)]
    pub availability_windows: Vec<AvailabilityWindow>,
    #[serde(default)]
    pub buffer_before: u32,
    #[serde(default)]
    pub buffer_after: u32,
    #[serde(default = "two")]
    pub min_notice: u32,
    #[serde(default = "sixty")]
    pub max_advance_booking: u32,
    #[serde(default)]
    pub assignment_type: AssignmentType,
    #[serde(default)]
    pub assigned_users: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specific_user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_integration: Option<Map<String, Value>>,
    #[serde(default)]
    pub enable_qualification: bool,
    #[serde(default)]
    pub qualification_questions: Vec<Value>,
    #[serde(default)]
    pub auto_disqualify: bool,
    #[serde(default)]
    pub confirmation_email: Map<String, Value>,
    #[serde(default)]
    pub reminder_emails: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thank_you_message: Option<String>,
    #[serde(default)]
    pub stats: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for MeetingScheduler {
    const DEF: &'static EntityDef = &MEETING_SCHEDULER;
}
impl WorkspaceEntity for MeetingScheduler {}

pub static DELIVERABILITY_TEST: EntityDef = EntityDef {
    name: "DeliverabilityTest",
    collection: "deliverabilitytests",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("emailAccountId", Id).required(),
        f("testType", Text).required(),
        f("status", Text).required(),
        f("fromEmail", Text).required(),
        f("fromName", Text),
        f("subject", Text),
        f("htmlBody", Text),
        f("textBody", Text),
        f("inboxPlacementResults", Array),
        f("spamScoreResult", Object),
        f("authenticationResult", Object),
        f("blacklistResult", Object),
        f("overallScore", Number),
        f("passed", Bool),
        f("issues", Texts),
        f("recommendations", Texts),
        f("startedAt", Date),
        f("completedAt", Date),
        f("errorMessage", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("emailAccountId", Asc)]),
        IndexDef::on(&[("emailAccountId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("status", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestType {
    InboxPlacement,
    SpamScore,
    Authentication,
    Blacklist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    #[default]
    Pending,
    Running,
    Completed,
    Failed,
}

/// A score from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Score(f64);

impl TryFrom<f64> for Score {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=100.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err("must be between 0 and 100".to_owned())
        }
    }
}

impl From<Score> for f64 {
    fn from(v: Score) -> f64 {
        v.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverabilityTest {
    #[serde(rename = "_id")]
    pub id: DeliverabilityTestId,
    pub workspace_id: WorkspaceId,
    /// The sending account tested.
    pub email_account_id: ObjectId,
    pub test_type: TestType,
    #[serde(default)]
    pub status: TestStatus,
    pub from_email: Bounded<320>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_body: Option<String>,
    #[serde(default)]
    pub inbox_placement_results: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam_score_result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_score: Option<Score>,
    #[serde(default)]
    pub passed: bool,
    #[serde(default)]
    pub issues: Vec<String>,
    #[serde(default)]
    pub recommendations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for DeliverabilityTest {
    const DEF: &'static EntityDef = &DELIVERABILITY_TEST;
}
impl WorkspaceEntity for DeliverabilityTest {}
