//! Sequence (`sequences`, drip steps with embedded enrollments) and MultiChannelSequence
//! (`multichannelsequences`, a stored definition: the original keeps no enrollments for it).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crm_core::define_id;
use crm_core::entities::contact::ContactId;
use crm_core::entities::task::Priority;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crm_core::{ObjectId, Timestamp, UserId, WorkspaceId};

use crate::text::Bounded;
use crate::window::{Hhmm, SendWindow, TimeZoneName};

define_id!(SequenceId);
define_id!(SequenceEnrollmentId);
define_id!(MultiChannelSequenceId);

pub static SEQUENCE: EntityDef = EntityDef {
    name: "Sequence",
    collection: "sequences",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("name", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("steps", Array),
        f("sendFromAccountId", Id),
        f("unenrollOnReply", Bool),
        f("sendOnWeekends", Bool),
        f("sendWindowStart", Text),
        f("sendWindowEnd", Text),
        f("timezone", Text),
        f("enrollments", Array),
        f("enrollments._id", Id),
        f("enrollments.contactId", Id),
        f("enrollments.status", Text),
        f("enrollments.nextEmailAt", Date),
        f("enrollments.enrolledAt", Date),
        f("enrollments.lastEmailAt", Date),
        f("enrollments.completedAt", Date),
        f("stats", Object),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("enrollments.contactId", Asc)]),
        IndexDef::on(&[
            ("enrollments.nextEmailAt", Asc),
            ("enrollments.status", Asc),
        ]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SequenceStatus {
    #[default]
    Draft,
    Active,
    Paused,
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SequenceStepType {
    #[default]
    Email,
    Task,
    Linkedin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DelayUnit {
    Hours,
    #[default]
    Days,
    Weeks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delay {
    #[serde(default = "one")]
    pub value: u32,
    #[serde(default)]
    pub unit: DelayUnit,
}

fn one() -> u32 {
    1
}

impl Default for Delay {
    fn default() -> Self {
        Self {
            value: 1,
            unit: DelayUnit::Days,
        }
    }
}

impl Delay {
    pub fn secs(&self) -> i64 {
        let unit = match self.unit {
            DelayUnit::Hours => 3_600,
            DelayUnit::Days => 86_400,
            DelayUnit::Weeks => 7 * 86_400,
        };
        i64::from(self.value) * unit
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceStep {
    pub id: Bounded<100>,
    #[serde(default)]
    pub order: u32,
    #[serde(default, rename = "type")]
    pub step_type: SequenceStepType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<ObjectId>,
    pub subject: Bounded<500>,
    pub body: Bounded<100_000>,
    #[serde(default)]
    pub delay: Delay,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_due_in_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_assignee: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_priority: Option<Priority>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SequenceEnrollmentStatus {
    #[default]
    Active,
    Completed,
    Unenrolled,
    Replied,
    Bounced,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceEnrollment {
    #[serde(rename = "_id")]
    pub id: SequenceEnrollmentId,
    pub contact_id: ContactId,
    #[serde(default)]
    pub current_step_index: u32,
    #[serde(default)]
    pub status: SequenceEnrollmentStatus,
    pub enrolled_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_email_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_email_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub emails_sent: u32,
    #[serde(default)]
    pub emails_opened: u32,
    #[serde(default)]
    pub emails_clicked: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceStats {
    #[serde(default)]
    pub total_enrolled: u64,
    #[serde(default)]
    pub currently_active: u64,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub replied: u64,
    #[serde(default)]
    pub unenrolled: u64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    #[serde(rename = "_id")]
    pub id: SequenceId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub name: Bounded<100>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: SequenceStatus,
    #[serde(default)]
    pub steps: Vec<SequenceStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_from_account_id: Option<ObjectId>,
    #[serde(default = "yes")]
    pub unenroll_on_reply: bool,
    #[serde(default)]
    pub send_on_weekends: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window_start: Option<Hhmm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window_end: Option<Hhmm>,
    #[serde(default)]
    pub timezone: TimeZoneName,
    /// Server-managed: changed only through enroll, reply and the step jobs.
    #[serde(default)]
    pub enrollments: Vec<SequenceEnrollment>,
    #[serde(default)]
    pub stats: SequenceStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Sequence {
    /// When steps may go out: the send window when both ends are set, else all day (weekends
    /// still as configured).
    pub fn window(&self) -> SendWindow {
        let mut w = SendWindow::always();
        w.timezone = self.timezone;
        w.weekends = self.send_on_weekends;
        if let (Some(s), Some(e)) = (self.send_window_start, self.send_window_end) {
            w.start = s;
            w.end = e;
        }
        w
    }

    pub fn ordered_steps(&self) -> Vec<&SequenceStep> {
        let mut s: Vec<&SequenceStep> = self.steps.iter().collect();
        s.sort_by_key(|st| st.order);
        s
    }

    pub fn enrollment(&self, id: SequenceEnrollmentId) -> Option<&SequenceEnrollment> {
        self.enrollments.iter().find(|e| e.id == id)
    }

    /// Recounts `stats` from the enrollments.
    pub fn recount(&mut self) {
        let count = |s: SequenceEnrollmentStatus| {
            self.enrollments.iter().filter(|e| e.status == s).count() as u64
        };
        self.stats = SequenceStats {
            total_enrolled: self.enrollments.len() as u64,
            currently_active: count(SequenceEnrollmentStatus::Active),
            completed: count(SequenceEnrollmentStatus::Completed),
            replied: count(SequenceEnrollmentStatus::Replied),
            unenrolled: count(SequenceEnrollmentStatus::Unenrolled),
        };
    }
}

impl Entity for Sequence {
    const DEF: &'static EntityDef = &SEQUENCE;
}
impl WorkspaceEntity for Sequence {}

pub static MULTI_CHANNEL_SEQUENCE: EntityDef = EntityDef {
    name: "MultiChannelSequence",
    collection: "multichannelsequences",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("name", Text).required(),
        f("description", Text),
        f("status", Text).required(),
        f("steps", Array),
        f("channelPriority", Texts),
        f("autoSwitch", Object),
        f("settings", Object),
        f("stats", Object),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
    ],
    text: &["name", "description"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Linkedin,
    Sms,
    Whatsapp,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelAction {
    SendMessage,
    ConnectLinkedin,
    SendSms,
    Wait,
    Condition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStep {
    pub id: Bounded<100>,
    pub order: u32,
    pub channel: Channel,
    pub action: ChannelAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_after_hours: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiChannelSequence {
    #[serde(rename = "_id")]
    pub id: MultiChannelSequenceId,
    pub workspace_id: WorkspaceId,
    #[serde(default)]
    pub user_id: UserId,
    pub name: Bounded<200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: SequenceStatus,
    #[serde(default)]
    pub steps: Vec<ChannelStep>,
    #[serde(default)]
    pub channel_priority: Vec<Channel>,
    #[serde(default)]
    pub auto_switch: Map<String, Value>,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub stats: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for MultiChannelSequence {
    const DEF: &'static EntityDef = &MULTI_CHANNEL_SEQUENCE;
}
impl WorkspaceEntity for MultiChannelSequence {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delays_and_defaults() {
        assert_eq!(Delay::default().secs(), 86_400);
        let d: Delay = serde_json::from_value(json!({"value": 2, "unit": "weeks"})).unwrap();
        assert_eq!(d.secs(), 14 * 86_400);
        assert!(serde_json::from_value::<Delay>(json!({"unit": "months"})).is_err());
        let s: Sequence = serde_json::from_value(json!({
            "_id": ObjectId::new().to_hex(), "workspaceId": ObjectId::new().to_hex(),
            "name": "Drip", "sendWindowStart": "08:30", "sendWindowEnd": "16:00",
            "timezone": "Europe/Oslo",
        }))
        .unwrap();
        assert!(s.unenroll_on_reply);
        assert!(!s.send_on_weekends);
        let w = s.window();
        assert_eq!(w.start.to_string(), "08:30");
        assert_eq!(w.timezone.tz().name(), "Europe/Oslo");
    }
}
