//! Campaign (`campaigns`) and CampaignEnrollment (`campaignenrollments`): cold-email campaigns,
//! one enrollment per (contact, campaign), sends run as `campaign.send` jobs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crm_core::define_id;
use crm_core::entities::contact::ContactId;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{ObjectId, Timestamp, UserId, WorkspaceId};

use crate::text::Bounded;
use crate::window::{Hhmm, SendWindow, TimeZoneName};

define_id!(CampaignId);
define_id!(CampaignEnrollmentId);

pub static CAMPAIGN: EntityDef = EntityDef {
    name: "Campaign",
    collection: "campaigns",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("fromAccounts", Ids),
        f("dailyLimit", Number),
        f("sendingSchedule", Object),
        f("steps", Array),
        f("totalEnrolled", Number),
        f("activeEnrollments", Number),
        f("completedEnrollments", Number),
        f("stats", Object),
        f("dailySent", Object),
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
pub enum CampaignStatus {
    #[default]
    Draft,
    Active,
    Paused,
    Completed,
}

/// The original's `sendingSchedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendingSchedule {
    #[serde(default)]
    pub timezone: TimeZoneName,
    #[serde(default = "nine")]
    pub start_time: Hhmm,
    #[serde(default = "five")]
    pub end_time: Hhmm,
    #[serde(default)]
    pub send_on_weekends: bool,
}

pub(crate) fn nine() -> Hhmm {
    Hhmm::new(9, 0).unwrap_or_else(|| SendWindow::always().start)
}

pub(crate) fn five() -> Hhmm {
    Hhmm::new(17, 0).unwrap_or_else(|| SendWindow::always().end)
}

impl Default for SendingSchedule {
    fn default() -> Self {
        Self {
            timezone: TimeZoneName::utc(),
            start_time: nine(),
            end_time: five(),
            send_on_weekends: false,
        }
    }
}

impl SendingSchedule {
    pub fn window(&self) -> SendWindow {
        SendWindow {
            timezone: self.timezone,
            start: self.start_time,
            end: self.end_time,
            weekends: self.send_on_weekends,
        }
    }
}

/// Conditions on the previous email of the enrollment; a step whose condition fails is skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendIf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_email_opened: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_email_clicked: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_email_replied: Option<bool>,
}

impl SendIf {
    /// Whether a step with this condition is sent after `previous` (the last email sent, if any).
    pub fn holds(&self, previous: Option<&SentEmail>) -> bool {
        let check = |want: Option<bool>, got: fn(&SentEmail) -> bool| match want {
            None => true,
            Some(w) => previous.map(got).unwrap_or(false) == w,
        };
        check(self.previous_email_opened, |e| e.opened)
            && check(self.previous_email_clicked, |e| e.clicked)
            && check(self.previous_email_replied, |e| e.replied)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StepType {
    #[default]
    Email,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStep {
    pub id: Bounded<100>,
    #[serde(default)]
    pub order: u32,
    #[serde(default, rename = "type")]
    pub step_type: StepType,
    #[serde(default)]
    pub delay_days: u32,
    #[serde(default)]
    pub delay_hours: u32,
    pub subject: Bounded<500>,
    pub body: Bounded<100_000>,
    #[serde(default)]
    pub use_ai_personalization: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_if: Option<SendIf>,
}

impl CampaignStep {
    /// Seconds to wait after the previous send.
    pub fn delay_secs(&self) -> i64 {
        i64::from(self.delay_days) * 86_400 + i64::from(self.delay_hours) * 3_600
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStats {
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub opened: u64,
    #[serde(default)]
    pub clicked: u64,
    #[serde(default)]
    pub replied: u64,
    #[serde(default)]
    pub bounced: u64,
    #[serde(default)]
    pub unsubscribed: u64,
    #[serde(default)]
    pub positive_replies: u64,
    #[serde(default)]
    pub negative_replies: u64,
}

/// Sends counted against `dailyLimit` on `day` (the campaign's local date, `YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailySent {
    pub day: String,
    pub count: u64,
}

fn fifty() -> u32 {
    50
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    #[serde(rename = "_id")]
    pub id: CampaignId,
    pub workspace_id: WorkspaceId,
    /// The creator (server-set).
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: CampaignStatus,
    /// Email accounts to rotate through.
    #[serde(default)]
    pub from_accounts: Vec<ObjectId>,
    #[serde(default = "fifty")]
    pub daily_limit: u32,
    #[serde(default)]
    pub sending_schedule: SendingSchedule,
    #[serde(default)]
    pub steps: Vec<CampaignStep>,
    #[serde(default)]
    pub total_enrolled: u64,
    #[serde(default)]
    pub active_enrollments: u64,
    #[serde(default)]
    pub completed_enrollments: u64,
    #[serde(default)]
    pub stats: CampaignStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_sent: Option<DailySent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Campaign {
    pub fn new(ws: WorkspaceId, user: UserId, name: Bounded<200>) -> Self {
        Self {
            id: CampaignId::new(),
            workspace_id: ws,
            user_id: user,
            name,
            description: None,
            status: CampaignStatus::Draft,
            from_accounts: Vec::new(),
            daily_limit: fifty(),
            sending_schedule: SendingSchedule::default(),
            steps: Vec::new(),
            total_enrolled: 0,
            active_enrollments: 0,
            completed_enrollments: 0,
            stats: CampaignStats::default(),
            daily_sent: None,
            created_at: None,
            updated_at: None,
        }
    }

    /// Steps in send order (`order`, then position).
    pub fn ordered_steps(&self) -> Vec<&CampaignStep> {
        let mut s: Vec<&CampaignStep> = self.steps.iter().collect();
        s.sort_by_key(|st| st.order);
        s
    }
}

impl Entity for Campaign {
    const DEF: &'static EntityDef = &CAMPAIGN;
}
impl WorkspaceEntity for Campaign {}

pub static CAMPAIGN_ENROLLMENT: EntityDef = EntityDef {
    name: "CampaignEnrollment",
    collection: "campaignenrollments",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("campaignId", Id).required(),
        f("contactId", Id).required(),
        f("status", Text).required(),
        f("currentStepIndex", Number),
        f("nextSendAt", Date),
        f("_lockedUntil", Date),
        f("_lockedBy", Text),
        f("emailsSent", Array),
        f("emailsSent.sentAt", Date),
        f("enrolledAt", Date),
        f("completedAt", Date),
        f("pausedAt", Date),
        f("lastError", Text),
    ],
    unique: &[UniqueKey {
        name: "contactId_campaignId",
        fields: &["contactId", "campaignId"],
    }],
    indexes: &[
        IndexDef::on(&[("campaignId", Asc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("nextSendAt", Asc)]),
        IndexDef::on(&[("campaignId", Asc), ("status", Asc)]),
        IndexDef::on(&[("nextSendAt", Asc), ("status", Asc)]),
        IndexDef::on(&[("status", Asc), ("nextSendAt", Asc), ("_lockedUntil", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentStatus {
    #[default]
    Pending,
    Active,
    Completed,
    Replied,
    Bounced,
    Unsubscribed,
    Paused,
}

impl EnrollmentStatus {
    /// Still expecting sends.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

/// One email an enrollment sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentEmail {
    pub step_id: String,
    pub message_id: String,
    pub sent_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_account_id: Option<ObjectId>,
    #[serde(default)]
    pub opened: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
    #[serde(default)]
    pub clicked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicked_at: Option<Timestamp>,
    #[serde(default)]
    pub replied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<Timestamp>,
    #[serde(default)]
    pub bounced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounced_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignEnrollment {
    #[serde(rename = "_id")]
    pub id: CampaignEnrollmentId,
    pub workspace_id: WorkspaceId,
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
    #[serde(default)]
    pub status: EnrollmentStatus,
    #[serde(default)]
    pub current_step_index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_send_at: Option<Timestamp>,
    #[serde(
        default,
        rename = "_lockedUntil",
        skip_serializing_if = "Option::is_none"
    )]
    pub locked_until: Option<Timestamp>,
    #[serde(default, rename = "_lockedBy", skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    #[serde(default)]
    pub emails_sent: Vec<SentEmail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
    /// Why the enrollment stopped (e.g. a template variable the contact has no value for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Fields this server does not model, kept as stored.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl CampaignEnrollment {
    pub fn new(ws: WorkspaceId, campaign: CampaignId, contact: ContactId, now: Timestamp) -> Self {
        Self {
            id: CampaignEnrollmentId::new(),
            workspace_id: ws,
            campaign_id: campaign,
            contact_id: contact,
            status: EnrollmentStatus::Pending,
            current_step_index: 0,
            next_send_at: None,
            locked_until: None,
            locked_by: None,
            emails_sent: Vec::new(),
            enrolled_at: Some(now),
            completed_at: None,
            paused_at: None,
            last_error: None,
            extra: Map::new(),
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for CampaignEnrollment {
    const DEF: &'static EntityDef = &CAMPAIGN_ENROLLMENT;
}
impl WorkspaceEntity for CampaignEnrollment {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(opened: bool, replied: bool) -> SentEmail {
        SentEmail {
            step_id: "s1".into(),
            message_id: "m".into(),
            sent_at: Timestamp::from_millis(0),
            from_account_id: None,
            opened,
            opened_at: None,
            clicked: false,
            clicked_at: None,
            replied,
            replied_at: None,
            bounced: false,
            bounced_at: None,
        }
    }

    #[test]
    fn send_if_compares_with_the_previous_email() {
        let always = SendIf::default();
        assert!(always.holds(None));
        let opened = SendIf {
            previous_email_opened: Some(true),
            ..SendIf::default()
        };
        assert!(opened.holds(Some(&sent(true, false))));
        assert!(!opened.holds(Some(&sent(false, false))));
        assert!(!opened.holds(None), "no previous email was opened");
        let not_replied = SendIf {
            previous_email_replied: Some(false),
            ..SendIf::default()
        };
        assert!(not_replied.holds(Some(&sent(true, false))));
        assert!(!not_replied.holds(Some(&sent(true, true))));
    }

    #[test]
    fn defaults_are_the_originals() {
        let c: Campaign = serde_json::from_value(serde_json::json!({
            "_id": ObjectId::new().to_hex(),
            "workspaceId": ObjectId::new().to_hex(),
            "name": "Q1 outreach",
        }))
        .unwrap();
        assert_eq!(c.status, CampaignStatus::Draft);
        assert_eq!(c.daily_limit, 50);
        let s = serde_json::to_value(&c.sending_schedule).unwrap();
        assert_eq!(
            s,
            serde_json::json!({"timezone": "UTC", "startTime": "09:00", "endTime": "17:00",
                "sendOnWeekends": false})
        );
    }
}
