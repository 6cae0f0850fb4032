//! The integration records other than webhooks: mail and calendar accounts, synced mail and
//! events, credentials, Apollo usage, the legacy Salesforce sync, LinkedIn log and recordings.
//!
//! Provider tokens (`accessToken`, `refreshToken`, `smtpPassword`, `apolloApiKey`) are not
//! fields of these types: old documents keep them untouched, the API neither returns nor
//! accepts them, and new secrets go through [`IntegrationCredential`] (encrypted).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crm_core::define_id;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{ObjectId, Timestamp, UserId, WorkspaceId};

const WS: Tenancy = Tenancy::Workspace {
    field: "workspaceId",
};

macro_rules! workspace_entity {
    ($t:ty, $def:expr) => {
        impl Entity for $t {
            const DEF: &'static EntityDef = &$def;
        }
        impl WorkspaceEntity for $t {}
    };
}

fn yes() -> bool {
    true
}

// ---- EmailAccount ----------------------------------------------------------------------------

define_id!(EmailAccountId);

/// The original's unique `{email}` is global; here unique keys are per workspace (ADR 0023).
pub static EMAIL_ACCOUNT: EntityDef = EntityDef {
    name: "EmailAccount",
    collection: "emailaccounts",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("email", Text).required(),
        f("provider", Text),
        f("status", Text),
        f("smtpHost", Text),
        f("smtpPort", Number),
        f("smtpUser", Text),
        f("warmupEnabled", Bool),
        f("dailySendLimit", Number),
        f("sentToday", Number),
        f("lastSentAt", Date),
        f("reputationScore", Number),
    ],
    unique: &[UniqueKey {
        name: "email",
        fields: &["email"],
    }],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailProvider {
    Gmail,
    Outlook,
    #[default]
    Smtp,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    #[default]
    Active,
    Warming,
    Paused,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailAccount {
    #[serde(rename = "_id")]
    pub id: EmailAccountId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub email: String,
    #[serde(default)]
    pub provider: MailProvider,
    #[serde(default)]
    pub status: AccountStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_user: Option<String>,
    #[serde(default)]
    pub warmup_enabled: bool,
    #[serde(default = "fifty")]
    pub daily_send_limit: u32,
    #[serde(default)]
    pub sent_today: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn fifty() -> u32 {
    50
}

workspace_entity!(EmailAccount, EMAIL_ACCOUNT);

// ---- EmailIntegration / CalendarIntegration --------------------------------------------------

define_id!(EmailIntegrationId);

pub static EMAIL_INTEGRATION: EntityDef = EntityDef {
    name: "EmailIntegration",
    collection: "emailintegrations",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("provider", Text).required(),
        f("email", Text).required(),
        f("expiresAt", Date),
        f("isActive", Bool),
        f("lastSyncAt", Date),
        f("syncError", Text),
        f("apolloEnabled", Bool),
        f("apolloAutoEnrich", Bool),
        f("apolloCreditsUsed", Number),
    ],
    unique: &[UniqueKey {
        name: "email_provider",
        fields: &["email", "provider"],
    }],
    indexes: &[IndexDef::on(&[("userId", Asc)])],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailSyncProvider {
    Gmail,
    Outlook,
    Apollo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailIntegration {
    #[serde(rename = "_id")]
    pub id: EmailIntegrationId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub provider: EmailSyncProvider,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<String>,
    #[serde(default)]
    pub apollo_enabled: bool,
    #[serde(default)]
    pub apollo_auto_enrich: bool,
    #[serde(default)]
    pub apollo_credits_used: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(EmailIntegration, EMAIL_INTEGRATION);

define_id!(CalendarIntegrationId);

pub static CALENDAR_INTEGRATION: EntityDef = EntityDef {
    name: "CalendarIntegration",
    collection: "calendarintegrations",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("provider", Text).required(),
        f("email", Text).required(),
        f("expiresAt", Date),
        f("isActive", Bool),
        f("lastSyncAt", Date),
        f("syncError", Text),
        f("calendarId", Text),
        f("syncEnabled", Bool),
        f("twoWaySync", Bool),
    ],
    unique: &[UniqueKey {
        name: "email_provider",
        fields: &["email", "provider"],
    }],
    indexes: &[IndexDef::on(&[("userId", Asc)])],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CalendarProvider {
    Google,
    Outlook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarIntegration {
    #[serde(rename = "_id")]
    pub id: CalendarIntegrationId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub provider: CalendarProvider,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    #[serde(default = "yes")]
    pub sync_enabled: bool,
    #[serde(default)]
    pub two_way_sync: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(CalendarIntegration, CALENDAR_INTEGRATION);

// ---- EmailMessage ----------------------------------------------------------------------------

define_id!(EmailMessageId);

/// Unique `messageId` (per workspace here): ingesting one Message-ID twice stores one record.
pub static EMAIL_MESSAGE: EntityDef = EntityDef {
    name: "EmailMessage",
    collection: "emailmessages",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("source", Text).required(),
        f("campaignId", Id),
        f("enrollmentId", Id),
        f("workflowId", Id),
        f("workflowEnrollmentId", Id),
        f("sequenceId", Id),
        f("contactId", Id),
        f("assignedTo", Id),
        f("fromAccountId", Id),
        f("fromEmail", Text),
        f("toEmail", Text),
        f("subject", Text),
        f("bodyHtml", Text),
        f("bodyText", Text),
        f("messageId", Text).required(),
        f("threadId", Text),
        f("inReplyTo", Text),
        f("sentAt", Date).required(),
        f("opened", Bool),
        f("openCount", Number),
        f("clicked", Bool),
        f("totalClickCount", Number),
        f("replied", Bool),
        f("repliedAt", Date),
        f("bounced", Bool),
        f("unsubscribed", Bool),
        f("trackingId", Text),
        f("stepId", Text),
        f("isRead", Bool),
    ],
    unique: &[UniqueKey {
        name: "messageId",
        fields: &["messageId"],
    }],
    indexes: &[
        IndexDef::on(&[("source", Asc)]),
        IndexDef::on(&[("campaignId", Asc)]),
        IndexDef::on(&[("enrollmentId", Asc)]),
        IndexDef::on(&[("workflowId", Asc)]),
        IndexDef::on(&[("workflowEnrollmentId", Asc)]),
        IndexDef::on(&[("sequenceId", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("assignedTo", Asc)]),
        IndexDef::on(&[("sentAt", Asc)]),
        IndexDef::on(&[("replied", Asc)]),
        IndexDef::on(&[("trackingId", Asc)]),
        IndexDef::on(&[("source", Asc), ("sentAt", Desc)]),
        IndexDef::on(&[("replied", Asc), ("sentAt", Desc)]),
        IndexDef::on(&[("threadId", Asc)]),
        IndexDef::on(&[("campaignId", Asc), ("sentAt", Desc)]),
        IndexDef::on(&[("workflowId", Asc), ("sentAt", Desc)]),
        IndexDef::on(&[("sequenceId", Asc), ("sentAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmailSource {
    Campaign,
    Workflow,
    Sequence,
    #[default]
    Inbox,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailMessage {
    #[serde(rename = "_id")]
    pub id: EmailMessageId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub source: EmailSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_enrollment_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_account_id: Option<ObjectId>,
    #[serde(default)]
    pub from_email: String,
    #[serde(default)]
    pub to_email: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body_html: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// The Message-ID header, the idempotency key of ingestion.
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    pub sent_at: Timestamp,
    #[serde(default)]
    pub opened: bool,
    #[serde(default)]
    pub open_count: u32,
    #[serde(default)]
    pub clicked: bool,
    #[serde(default)]
    pub total_click_count: u32,
    #[serde(default)]
    pub replied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<Timestamp>,
    #[serde(default)]
    pub bounced: bool,
    #[serde(default)]
    pub unsubscribed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    #[serde(default)]
    pub is_read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(EmailMessage, EMAIL_MESSAGE);

// ---- CalendarEvent ---------------------------------------------------------------------------

define_id!(CalendarEventId);

pub static CALENDAR_EVENT: EntityDef = EntityDef {
    name: "CalendarEvent",
    collection: "calendarevents",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("externalId", Text),
        f("provider", Text),
        f("calendarId", Text),
        f("title", Text).required(),
        f("description", Text),
        f("location", Text),
        f("meetingLink", Text),
        f("startTime", Date).required(),
        f("endTime", Date).required(),
        f("timezone", Text),
        f("isAllDay", Bool),
        f("attendees", Any),
        f("contactId", Id),
        f("opportunityId", Id),
        f("companyId", Id),
        f("status", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("startTime", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("startTime", Asc), ("endTime", Asc)]),
        IndexDef::on(&[("userId", Asc), ("startTime", Asc)]),
        IndexDef::on(&[("externalId", Asc), ("provider", Asc)]),
    ],
    text: &["title", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    #[default]
    Confirmed,
    Tentative,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventProvider {
    Google,
    Outlook,
    #[default]
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarEvent {
    #[serde(rename = "_id")]
    pub id: CalendarEventId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub provider: EventProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_link: Option<String>,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    pub is_all_day: bool,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub attendees: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<ObjectId>,
    #[serde(default)]
    pub status: EventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn utc() -> String {
    "UTC".to_owned()
}

workspace_entity!(CalendarEvent, CALENDAR_EVENT);

// ---- IntegrationCredential -------------------------------------------------------------------

define_id!(IntegrationCredentialId);

pub static INTEGRATION_CREDENTIAL: EntityDef = EntityDef {
    name: "IntegrationCredential",
    collection: "integrationcredentials",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("type", Text).required(),
        f("name", Text).required(),
        f("encryptedData", Text).required(),
        f("isValid", Bool),
        f("validationError", Text),
        f("lastValidated", Date),
        f("status", Text),
        f("expiresAt", Date),
        f("scopes", Texts),
        f("profileInfo", Object),
        f("lastUsed", Date),
    ],
    unique: &[UniqueKey {
        name: "type",
        fields: &["type"],
    }],
    indexes: &[],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    Slack,
    GoogleSheets,
    Notion,
    Gmail,
    Calendar,
    Linkedin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CredentialStatus {
    #[default]
    Connected,
    Expired,
    Error,
    Revoked,
}

/// A stored credential. `encryptedData` is sealed with [`crate::crypto::MasterKey`]; the API
/// answers with [`CredentialView`], which has no such field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationCredential {
    #[serde(rename = "_id")]
    pub id: IntegrationCredentialId,
    pub workspace_id: WorkspaceId,
    #[serde(rename = "type")]
    pub kind: CredentialType,
    pub name: String,
    pub encrypted_data: String,
    #[serde(default = "yes")]
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validated: Option<Timestamp>,
    #[serde(default)]
    pub status: CredentialStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_info: Option<ProfileInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

workspace_entity!(IntegrationCredential, INTEGRATION_CREDENTIAL);

/// A credential as the API shows it: everything but the ciphertext.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    #[serde(rename = "_id")]
    pub id: IntegrationCredentialId,
    pub workspace_id: WorkspaceId,
    #[serde(rename = "type")]
    pub kind: CredentialType,
    pub name: String,
    pub is_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_validated: Option<Timestamp>,
    pub status: CredentialStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_info: Option<ProfileInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Timestamp>,
    /// The names of the secret fields stored (never their values).
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl CredentialView {
    pub fn new(c: IntegrationCredential, fields: Vec<String>) -> Self {
        Self {
            id: c.id,
            workspace_id: c.workspace_id,
            kind: c.kind,
            name: c.name,
            is_valid: c.is_valid,
            validation_error: c.validation_error,
            last_validated: c.last_validated,
            status: c.status,
            expires_at: c.expires_at,
            scopes: c.scopes,
            profile_info: c.profile_info,
            last_used: c.last_used,
            fields,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

// ---- ApolloUsage -----------------------------------------------------------------------------

define_id!(ApolloUsageId);

pub static APOLLO_USAGE: EntityDef = EntityDef {
    name: "ApolloUsage",
    collection: "apollousages",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("action", Text).required(),
        f("creditsUsed", Number).required(),
        f("success", Bool).required(),
        f("entityId", Text),
        f("error", Text),
        f("timestamp", Date).required(),
        f("responseTime", Number),
        f("metadata", Any),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("action", Asc)]),
        IndexDef::on(&[("success", Asc)]),
        IndexDef::on(&[("entityId", Asc)]),
        IndexDef::on(&[("timestamp", Desc)]),
        IndexDef::on(&[("action", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("userId", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("success", Asc), ("timestamp", Desc)]),
        IndexDef::on(&[("success", Asc), ("creditsUsed", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApolloAction {
    EnrichPerson,
    EnrichCompany,
    SearchPeople,
    SearchCompanies,
    VerifyEmail,
    BulkEnrich,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApolloUsage {
    #[serde(rename = "_id")]
    pub id: ApolloUsageId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub action: ApolloAction,
    #[serde(default)]
    pub credits_used: u32,
    #[serde(default = "yes")]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(ApolloUsage, APOLLO_USAGE);

// ---- Salesforce (legacy, plain stored) -------------------------------------------------------

define_id!(SalesforceIntegrationId);

/// The original's unique `{workspaceId}` (one per workspace) is checked on create by the API;
/// a unique key over the tenant field alone cannot be declared (ADR 0023).
pub static SALESFORCE_INTEGRATION: EntityDef = EntityDef {
    name: "SalesforceIntegration",
    collection: "salesforceintegrations",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("instanceUrl", Text),
        f("organizationId", Text).required(),
        f("organizationName", Text),
        f("syncDirection", Text),
        f("syncStatus", Text),
        f("syncFrequency", Number),
        f("lastSyncAt", Date),
        f("nextSyncAt", Date),
        f("conflictResolution", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("organizationId", Asc)]),
        IndexDef::on(&[("syncStatus", Asc), ("nextSyncAt", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncDirection {
    ToSalesforce,
    FromSalesforce,
    #[default]
    Bidirectional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    #[default]
    Active,
    Paused,
    Error,
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConflictResolution {
    SalesforceWins,
    CrmWins,
    Manual,
    #[default]
    NewestWins,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesforceIntegration {
    #[serde(rename = "_id")]
    pub id: SalesforceIntegrationId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
    pub organization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    #[serde(default)]
    pub sync_direction: SyncDirection,
    #[serde(default)]
    pub sync_status: SyncStatus,
    /// Minutes between syncs.
    #[serde(default = "sixty")]
    pub sync_frequency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_at: Option<Timestamp>,
    #[serde(default)]
    pub conflict_resolution: ConflictResolution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn sixty() -> u32 {
    60
}

workspace_entity!(SalesforceIntegration, SALESFORCE_INTEGRATION);

define_id!(FieldMappingId);

pub static FIELD_MAPPING: EntityDef = EntityDef {
    name: "FieldMapping",
    collection: "fieldmappings",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("integrationId", Id).required(),
        f("objectType", Text).required(),
        f("mappings", Array),
        f("useDefaultMappings", Bool),
    ],
    unique: &[UniqueKey {
        name: "objectType",
        fields: &["objectType"],
    }],
    indexes: &[IndexDef::on(&[("integrationId", Asc)])],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncObjectType {
    Contact,
    Account,
    Opportunity,
    Task,
    Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldMap {
    pub crm_field: String,
    pub salesforce_field: String,
    #[serde(rename = "type", default = "bidirectional")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(default)]
    pub is_required: bool,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub default_value: Value,
}

fn bidirectional() -> String {
    "bidirectional".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldMapping {
    #[serde(rename = "_id")]
    pub id: FieldMappingId,
    pub workspace_id: WorkspaceId,
    /// A SalesforceIntegration of this workspace.
    pub integration_id: SalesforceIntegrationId,
    pub object_type: SyncObjectType,
    #[serde(default)]
    pub mappings: Vec<FieldMap>,
    #[serde(default = "yes")]
    pub use_default_mappings: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(FieldMapping, FIELD_MAPPING);

define_id!(SyncLogId);

pub static SYNC_LOG: EntityDef = EntityDef {
    name: "SyncLog",
    collection: "synclogs",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("integrationId", Id).required(),
        f("operation", Text).required(),
        f("status", Text).required(),
        f("startedAt", Date).required(),
        f("completedAt", Date),
        f("duration", Number),
        f("records", Array),
        f("summary", Any),
        f("triggeredBy", Text),
        f("triggeredByUserId", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("integrationId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("integrationId", Asc), ("status", Asc)]),
        IndexDef::on(&[("status", Asc), ("startedAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncRunStatus {
    #[default]
    Running,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncTrigger {
    Automatic,
    #[default]
    Manual,
    Webhook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncLog {
    #[serde(rename = "_id")]
    pub id: SyncLogId,
    pub workspace_id: WorkspaceId,
    pub integration_id: SalesforceIntegrationId,
    /// full_sync, incremental_sync, manual_sync, ...
    pub operation: String,
    #[serde(default)]
    pub status: SyncRunStatus,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default)]
    pub records: Vec<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub summary: Value,
    #[serde(default)]
    pub triggered_by: SyncTrigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by_user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(SyncLog, SYNC_LOG);

// ---- LinkedInActivity ------------------------------------------------------------------------

define_id!(LinkedInActivityId);

pub static LINKEDIN_ACTIVITY: EntityDef = EntityDef {
    name: "LinkedInActivity",
    collection: "linkedinactivities",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("contactId", Id).required(),
        f("userId", Id),
        f("type", Text).required(),
        f("subject", Text),
        f("content", Text).required(),
        f("linkedinUrl", Text),
        f("direction", Text),
        f("isRead", Bool),
        f("activityDate", Date).required(),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("contactId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("isRead", Asc)]),
        IndexDef::on(&[("type", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkedInActivityType {
    Message,
    InMail,
    ConnectionRequest,
    ConnectionAccepted,
    Comment,
    Like,
    ProfileView,
    Note,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    #[default]
    Outbound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkedInActivity {
    #[serde(rename = "_id")]
    pub id: LinkedInActivityId,
    pub workspace_id: WorkspaceId,
    /// A contact of this workspace.
    pub contact_id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(rename = "type")]
    pub kind: LinkedInActivityType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin_url: Option<String>,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub is_read: bool,
    pub activity_date: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(LinkedInActivity, LINKEDIN_ACTIVITY);

// ---- Recording -------------------------------------------------------------------------------

define_id!(RecordingId);

pub static RECORDING: EntityDef = EntityDef {
    name: "Recording",
    collection: "recordings",
    tenancy: WS,
    timestamps: true,
    fields: &[
        f("meetingId", Id),
        f("schedulerId", Id),
        f("hostUserId", Id),
        f("meetingTitle", Text).required(),
        f("scheduledAt", Date),
        f("meetingDuration", Number),
        f("attendees", Array),
        f("attendees.name", Text),
        f("attendees.email", Text),
        f("driveFileId", Text).required(),
        f("driveFileUrl", Text),
        f("fileName", Text),
        f("mimeType", Text),
        f("fileSize", Number),
        f("recordingDuration", Number),
        f("recordedAt", Date).required(),
        f("status", Text),
        f("accessLevel", Text),
        f("retentionDays", Number),
        f("expiresAt", Date),
        f("viewCount", Number),
    ],
    unique: &[UniqueKey {
        name: "driveFileId",
        fields: &["driveFileId"],
    }],
    indexes: &[
        IndexDef::on(&[("meetingId", Asc)]),
        IndexDef::on(&[("schedulerId", Asc)]),
        IndexDef::on(&[("hostUserId", Asc)]),
        IndexDef::on(&[("scheduledAt", Asc)]),
        IndexDef::on(&[("recordedAt", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
        IndexDef::on(&[("status", Asc), ("recordedAt", Desc)]),
    ],
    text: &["meetingTitle", "attendees.name", "attendees.email"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    #[default]
    Processing,
    Ready,
    Failed,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    #[default]
    Host,
    Participants,
    Workspace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    #[serde(rename = "_id")]
    pub id: RecordingId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_user_id: Option<UserId>,
    pub meeting_title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<Timestamp>,
    #[serde(default)]
    pub meeting_duration: u32,
    #[serde(default)]
    pub attendees: Vec<Attendee>,
    pub drive_file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub recording_duration: u32,
    pub recorded_at: Timestamp,
    #[serde(default)]
    pub status: RecordingStatus,
    #[serde(default)]
    pub access_level: AccessLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Removed by the store's TTL once passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub view_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

workspace_entity!(Recording, RECORDING);
