//! The other AI records: agent sessions, performance and insights, AI notifications, live chat
//! (Conversation, ChatMessage), booked meetings, the business profile, and the archived Agent
//! Builder models (stored and served as plain records; their tenant field is `workspace`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crm_core::define_id;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{ObjectId, Timestamp, UserId, WorkspaceId};

const WS: Tenancy = Tenancy::Workspace {
    field: "workspaceId",
};
const LEGACY: Tenancy = Tenancy::Workspace { field: "workspace" };

macro_rules! workspace_entity {
    ($t:ty, $def:expr) => {
        impl Entity for $t {
            const DEF: &'static EntityDef = &$def;
        }
        impl WorkspaceEntity for $t {}
    };
}

fn fifty() -> f64 {
    50.0
}

// ---- AgentSession ----------------------------------------------------------------------------

define_id!(AgentSessionId);

pub static AGENT_SESSION: EntityDef = EntityDef {
    name: "AgentSession",
    collection: "agentsessions",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("sessionId", Text).required(),
        f("messages", Array),
        f("context", Any),
        f("expiresAt", Date).required(),
    ],
    unique: &[UniqueKey {
        name: "sessionId",
        fields: &["sessionId"],
    }],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("sessionId", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMessage {
    pub role: ChatRole,
    pub content: String,
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSession {
    #[serde(rename = "_id")]
    pub id: AgentSessionId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub session_id: String,
    #[serde(default)]
    pub messages: Vec<SessionMessage>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// The store removes the session after this instant.
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentSession, AGENT_SESSION);

// ---- AgentPerformance ------------------------------------------------------------------------

define_id!(AgentPerformanceId);

pub static AGENT_PERFORMANCE: EntityDef = EntityDef {
    name: "AgentPerformance",
    collection: "agentperformances",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("agentType", Text).required(),
        f("userId", Id),
        f("insightId", Id),
        f("actionTaken", Bool),
        f("actionType", Text),
        f("responseTimeMs", Number),
        f("userRating", Number),
        f("userFeedback", Text),
        f("helpful", Bool),
        f("errorOccurred", Bool),
        f("errorMessage", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("agentType", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("actionTaken", Asc)]),
        IndexDef::on(&[("errorOccurred", Asc)]),
        IndexDef::on(&[("agentType", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("userId", Asc), ("agentType", Asc)]),
        IndexDef::on(&[("actionTaken", Asc), ("agentType", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPerformance {
    #[serde(rename = "_id")]
    pub id: AgentPerformanceId,
    pub workspace_id: WorkspaceId,
    pub agent_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insight_id: Option<ObjectId>,
    #[serde(default)]
    pub action_taken: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
    #[serde(default)]
    pub response_time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_rating: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpful: Option<bool>,
    #[serde(default)]
    pub error_occurred: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentPerformance, AGENT_PERFORMANCE);

// ---- AgentInsight ----------------------------------------------------------------------------

define_id!(AgentInsightId);

pub static AGENT_INSIGHT: EntityDef = EntityDef {
    name: "AgentInsight",
    collection: "agentinsights",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("contextType", Text).required(),
        f("contextId", Id),
        f("agentType", Text).required(),
        f("insights", Object),
        f("suggestedActions", Array),
        f("confidence", Number),
        f("priority", Text),
        f("displayType", Text),
        f("status", Text),
        f("shownAt", Date),
        f("actedAt", Date),
        f("dismissedAt", Date),
        f("expiresAt", Date),
        f("helpful", Bool),
        f("feedback", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("contextType", Asc)]),
        IndexDef::on(&[("contextId", Asc)]),
        IndexDef::on(&[("agentType", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("expiresAt", Asc)]),
        IndexDef::on(&[("userId", Asc), ("status", Asc)]),
        IndexDef::on(&[("contextType", Asc), ("contextId", Asc)]),
        IndexDef::on(&[("priority", Desc), ("createdAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsightContext {
    Contact,
    Deal,
    Campaign,
    Email,
    Workflow,
    Pipeline,
    Analytics,
    Account,
    Sequence,
    Ticket,
    Meeting,
    LeadScore,
    EmailTemplate,
    DataQuality,
    EmailAnalytics,
    EmailAccount,
    DailyBriefing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    High,
    #[default]
    Medium,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DisplayType {
    #[default]
    InlinePanel,
    InlineAlert,
    ToastNotification,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InsightStatus {
    #[default]
    Pending,
    Shown,
    Acted,
    Dismissed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInsight {
    #[serde(rename = "_id")]
    pub id: AgentInsightId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub context_type: InsightContext,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<ObjectId>,
    pub agent_type: String,
    pub insights: InsightBody,
    #[serde(default)]
    pub suggested_actions: Vec<Value>,
    #[serde(default = "fifty")]
    pub confidence: f64,
    #[serde(default)]
    pub priority: Level,
    #[serde(default)]
    pub display_type: DisplayType,
    #[serde(default)]
    pub status: InsightStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dismissed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpful: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentInsight, AGENT_INSIGHT);

// ---- AINotification --------------------------------------------------------------------------

define_id!(AiNotificationId);

/// Expires at `expiresAt` (TTL 0 s), as the original.
pub static AI_NOTIFICATION: EntityDef = EntityDef {
    name: "AINotification",
    collection: "ainotifications",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("type", Text).required(),
        f("title", Text).required(),
        f("message", Text).required(),
        f("fullContent", Text),
        f("priority", Text),
        f("status", Text),
        f("contextType", Text),
        f("contextId", Id),
        f("metadata", Any),
        f("suggestedAction", Object),
        f("shownAt", Date),
        f("actedAt", Date),
        f("dismissedAt", Date),
        f("feedback", Object),
        f("expiresAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("type", Asc)]),
        IndexDef::on(&[("priority", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("userId", Asc), ("status", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("type", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("userId", Asc), ("priority", Asc), ("status", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AiNotificationType {
    MeetingPrep,
    StaleDeal,
    FollowUpReminder,
    DealRisk,
    DailyInsights,
    HotLead,
    TaskReminder,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NotificationPriority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AiNotificationStatus {
    #[default]
    Pending,
    Shown,
    Acted,
    Dismissed,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationContext {
    Contact,
    Deal,
    Campaign,
    CalendarEvent,
    Workflow,
    Email,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedAction {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    pub helpful: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AINotification {
    #[serde(rename = "_id")]
    pub id: AiNotificationId,
    pub workspace_id: WorkspaceId,
    /// Whom it is for; the creator when the body names nobody.
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: AiNotificationType,
    pub title: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_content: Option<String>,
    #[serde(default)]
    pub priority: NotificationPriority,
    #[serde(default)]
    pub status: AiNotificationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_type: Option<NotificationContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_action: Option<SuggestedAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dismissed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    /// The store removes it after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AINotification, AI_NOTIFICATION);

// ---- Conversation / ChatMessage (website live chat) ------------------------------------------

define_id!(ConversationId);

pub static CONVERSATION: EntityDef = EntityDef {
    name: "Conversation",
    collection: "conversations",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("visitorId", Text).required(),
        f("contactId", Id),
        f("status", Text),
        f("assignedTo", Id),
        f("visitorName", Text),
        f("visitorEmail", Text),
        f("visitorPhone", Text),
        f("currentUrl", Text),
        f("referrer", Text),
        f("userAgent", Text),
        f("ipAddress", Text),
        f("companyName", Text),
        f("utmSource", Text),
        f("utmMedium", Text),
        f("utmCampaign", Text),
        f("tags", Texts),
        f("rating", Number),
        f("notes", Text),
        f("firstMessageAt", Date),
        f("lastMessageAt", Date),
        f("closedAt", Date),
        f("responseTime", Number),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("visitorId", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("assignedTo", Asc)]),
        IndexDef::on(&[("status", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("assignedTo", Asc), ("status", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    #[default]
    Open,
    Closed,
    Assigned,
    Waiting,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(rename = "_id")]
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub visitor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ObjectId>,
    #[serde(default)]
    pub status: ConversationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(Conversation, CONVERSATION);

define_id!(ChatMessageId);

pub static CHAT_MESSAGE: EntityDef = EntityDef {
    name: "ChatMessage",
    collection: "chatmessages",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("conversationId", Id).required(),
        f("message", Text).required(),
        f("messageType", Text),
        f("senderType", Text).required(),
        f("senderId", Id),
        f("senderName", Text),
        f("fileUrl", Text),
        f("fileName", Text),
        f("fileSize", Number),
        f("fileMimeType", Text),
        f("isRead", Bool),
        f("readAt", Date),
        f("metadata", Any),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("conversationId", Asc)]),
        IndexDef::on(&[("conversationId", Asc), ("createdAt", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("isRead", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    #[default]
    Text,
    File,
    System,
    Bot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderType {
    Visitor,
    Agent,
    System,
    Bot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    #[serde(rename = "_id")]
    pub id: ChatMessageId,
    pub workspace_id: WorkspaceId,
    /// A conversation of this workspace.
    pub conversation_id: ConversationId,
    pub message: String,
    #[serde(default)]
    pub message_type: MessageType,
    pub sender_type: SenderType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mime_type: Option<String>,
    #[serde(default)]
    pub is_read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(ChatMessage, CHAT_MESSAGE);

// ---- Meeting ---------------------------------------------------------------------------------

define_id!(MeetingId);

pub static MEETING: EntityDef = EntityDef {
    name: "Meeting",
    collection: "meetings",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("schedulerId", Id),
        f("contactId", Id),
        f("attendee", Object),
        f("attendee.email", Text),
        f("attendee.name", Text),
        f("hostUserId", Id).required(),
        f("hostEmail", Text),
        f("scheduledAt", Date).required(),
        f("duration", Number),
        f("timezone", Text),
        f("location", Any),
        f("calendarEventId", Text),
        f("calendarProvider", Text),
        f("status", Text),
        f("cancelledAt", Date),
        f("cancelledBy", Text),
        f("cancellationReason", Text),
        f("notes", Text),
        f("outcome", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("schedulerId", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("hostUserId", Asc)]),
        IndexDef::on(&[("scheduledAt", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("status", Asc), ("scheduledAt", Asc)]),
        IndexDef::on(&[("hostUserId", Asc), ("scheduledAt", Asc)]),
        IndexDef::on(&[("attendee.email", Asc)]),
        IndexDef::on(&[("hostUserId", Asc), ("status", Asc), ("scheduledAt", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MeetingStatus {
    #[default]
    Scheduled,
    Completed,
    Cancelled,
    NoShow,
    Rescheduled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingAttendee {
    pub name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meeting {
    #[serde(rename = "_id")]
    pub id: MeetingId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_id: Option<ObjectId>,
    /// A contact of this workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ObjectId>,
    pub attendee: MeetingAttendee,
    pub host_user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_email: Option<String>,
    pub scheduled_at: Timestamp,
    /// Minutes.
    #[serde(default = "thirty")]
    pub duration: u32,
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub location: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_provider: Option<String>,
    #[serde(default)]
    pub status: MeetingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn thirty() -> u32 {
    30
}
fn utc() -> String {
    "UTC".to_owned()
}

workspace_entity!(Meeting, MEETING);

// ---- BusinessProfile -------------------------------------------------------------------------

define_id!(BusinessProfileId);

/// One per workspace (the original's unique `{workspace}`); a unique key over the tenant field
/// alone cannot be declared, so the API checks it on create (ADR 0023).
pub static BUSINESS_PROFILE: EntityDef = EntityDef {
    name: "BusinessProfile",
    collection: "businessprofiles",
    tenancy: LEGACY,
    timestamps: true,
    fields: &[
        f("industry", Text).required(),
        f("industrySpecific", Text),
        f("companySize", Text),
        f("companyName", Text),
        f("website", Text),
        f("salesCycle", Text),
        f("averageDealSize", Text),
        f("monthlyLeadVolume", Text),
        f("primaryGoal", Text),
        f("salesModel", Text),
        f("teamSize", Text),
        f("roles", Texts),
        f("targetAudience", Object),
        f("channels", Object),
        f("leadSources", Texts),
        f("customFields", Any),
        f("completedAt", Date),
        f("lastUpdated", Date),
        f("version", Number),
    ],
    unique: &[],
    indexes: &[],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusinessProfile {
    #[serde(rename = "_id")]
    pub id: BusinessProfileId,
    pub workspace: WorkspaceId,
    pub industry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry_specific: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_cycle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_deal_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_lead_volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_goal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_size: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub target_audience: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub channels: Map<String, Value>,
    #[serde(default)]
    pub lead_sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub custom_fields: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Timestamp>,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn one() -> u32 {
    1
}

workspace_entity!(BusinessProfile, BUSINESS_PROFILE);

// ---- Archived Agent Builder models (plain stored) --------------------------------------------

define_id!(AgentId);

pub static AGENT: EntityDef = EntityDef {
    name: "Agent",
    collection: "agents",
    tenancy: LEGACY,
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("goal", Text),
        f("status", Text).required(),
        f("pauseReason", Text),
        f("createdBy", Id),
        f("updatedBy", Id),
        f("lastExecutedAt", Date),
        f("triggers", Array),
        f("triggers.type", Text),
        f("triggers.enabled", Bool),
        f("triggers.config.eventType", Text),
        f("instructions", Text),
        f("restrictions", Any),
        f("memory", Any),
        f("approvalConfig", Any),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("status", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("createdBy", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("workspace", Asc), ("triggers.type", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("triggers.enabled", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("name", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("lastExecutedAt", Desc)]),
        IndexDef::on(&[
            ("status", Asc),
            ("triggers.type", Asc),
            ("triggers.enabled", Asc),
        ]),
        IndexDef::on(&[
            ("workspace", Asc),
            ("status", Asc),
            ("triggers.type", Asc),
            ("triggers.config.eventType", Asc),
            ("triggers.enabled", Asc),
        ]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AgentStatus {
    #[default]
    Draft,
    Live,
    Paused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    #[serde(rename = "_id")]
    pub id: AgentId,
    pub workspace: WorkspaceId,
    pub name: String,
    #[serde(default)]
    pub goal: String,
    #[serde(default)]
    pub status: AgentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_executed_at: Option<Timestamp>,
    #[serde(default)]
    pub triggers: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub restrictions: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub memory: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub approval_config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(Agent, AGENT);

define_id!(AgentExecutionId);

/// The original has no Mongoose timestamps but a `createdAt` it indexes; stamping both here
/// keeps that field right (an extra `updatedAt` is harmless to the original).
pub static AGENT_EXECUTION: EntityDef = EntityDef {
    name: "AgentExecution",
    collection: "agentexecutions",
    tenancy: LEGACY,
    timestamps: true,
    fields: &[
        f("executionId", Text).required(),
        f("agent", Id).required(),
        f("status", Text).required(),
        f("trigger", Any),
        f("steps", Array),
        f("startedAt", Date),
        f("completedAt", Date),
        f("resumeAt", Date),
        f("linkedTestRunId", Text),
        f("agentDeleted", Bool),
    ],
    unique: &[UniqueKey {
        name: "executionId",
        fields: &["executionId"],
    }],
    indexes: &[
        IndexDef::on(&[("linkedTestRunId", Asc)]),
        IndexDef::on(&[("agentDeleted", Asc)]),
        IndexDef::on(&[("agent", Asc), ("workspace", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("agent", Asc), ("linkedTestRunId", Asc)]),
        IndexDef::on(&[("status", Asc), ("resumeAt", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("startedAt", Desc)]),
        IndexDef::on(&[
            ("workspace", Asc),
            ("agent", Asc),
            ("status", Asc),
            ("startedAt", Desc),
        ]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    #[default]
    Pending,
    Running,
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentExecution {
    #[serde(rename = "_id")]
    pub id: AgentExecutionId,
    pub workspace: WorkspaceId,
    pub execution_id: String,
    /// An agent of this workspace.
    pub agent: AgentId,
    #[serde(default)]
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub trigger: Value,
    #[serde(default)]
    pub steps: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_test_run_id: Option<String>,
    #[serde(default)]
    pub agent_deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentExecution, AGENT_EXECUTION);

define_id!(AgentTestRunId);

/// Test runs expire 30 days after `createdAt` (TTL), as the original; stamped by the store
/// (see [`AGENT_EXECUTION`]).
pub static AGENT_TEST_RUN: EntityDef = EntityDef {
    name: "AgentTestRun",
    collection: "agenttestruns",
    tenancy: LEGACY,
    timestamps: true,
    fields: &[
        f("testRunId", Text).required(),
        f("agent", Id).required(),
        f("testTarget", Object),
        f("steps", Array),
        f("summary", Object),
    ],
    unique: &[UniqueKey {
        name: "testRunId",
        fields: &["testRunId"],
    }],
    indexes: &[
        IndexDef::on(&[("agent", Asc), ("workspace", Asc), ("createdAt", Desc)]),
        IndexDef::ttl(&[("createdAt", Asc)], 30 * 24 * 3600),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTestRun {
    #[serde(rename = "_id")]
    pub id: AgentTestRunId,
    pub workspace: WorkspaceId,
    pub test_run_id: String,
    pub agent: AgentId,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub test_target: Value,
    #[serde(default)]
    pub steps: Vec<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub summary: Value,
    /// The TTL counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentTestRun, AGENT_TEST_RUN);

define_id!(AgentMemoryDataId);

pub static AGENT_MEMORY_DATA: EntityDef = EntityDef {
    name: "AgentMemoryData",
    collection: "agentmemorydatas",
    tenancy: LEGACY,
    timestamps: true,
    fields: &[
        f("agent", Id).required(),
        f("key", Text).required(),
        f("value", Any),
        f("expiresAt", Date),
    ],
    unique: &[UniqueKey {
        name: "agent_key",
        fields: &["agent", "key"],
    }],
    indexes: &[
        IndexDef::on(&[("workspace", Asc), ("agent", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMemoryData {
    #[serde(rename = "_id")]
    pub id: AgentMemoryDataId,
    pub workspace: WorkspaceId,
    pub agent: AgentId,
    pub key: String,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentMemoryData, AGENT_MEMORY_DATA);

define_id!(AgentCopilotConversationId);

/// `expiresAt` is declared once, as a TTL index (the original declares it twice, which a real
/// MongoDB refuses).
pub static AGENT_COPILOT_CONVERSATION: EntityDef = EntityDef {
    name: "AgentCopilotConversation",
    collection: "agentcopilotconversations",
    tenancy: LEGACY,
    timestamps: true,
    fields: &[
        f("agent", Id).required(),
        f("user", Id).required(),
        f("messages", Array),
        f("expiresAt", Date).required(),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("agent", Asc)]),
        IndexDef::on(&[("user", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
        IndexDef::on(&[("workspace", Asc), ("agent", Asc), ("user", Asc)]),
        IndexDef::on(&[("workspace", Asc), ("createdAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopilotMessage {
    pub role: ChatRole,
    pub content: String,
    pub timestamp: Timestamp,
    #[serde(default)]
    pub credits_used: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCopilotConversation {
    #[serde(rename = "_id")]
    pub id: AgentCopilotConversationId,
    pub workspace: WorkspaceId,
    pub agent: AgentId,
    pub user: UserId,
    #[serde(default)]
    pub messages: Vec<CopilotMessage>,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(AgentCopilotConversation, AGENT_COPILOT_CONVERSATION);
