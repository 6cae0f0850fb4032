//! Referral (`referrals`): a contact's referral code, the person it brought and the rewards.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contact::ContactId;
use crate::define_id;
use crate::id::WorkspaceId;
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(ReferralId);

pub static REFERRAL: EntityDef = EntityDef {
    name: "Referral",
    collection: "referrals",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("referrerId", Id).required(),
        f("referrerEmail", Text).required(),
        f("referralCode", Text).required(),
        f("referralLink", Text).required(),
        f("referredContactId", Id),
        f("referredEmail", Text).required(),
        f("referredName", Text),
        f("status", Text).required(),
        f("signedUpAt", Date),
        f("qualifiedAt", Date),
        f("convertedAt", Date),
        f("conversionValue", Number),
        f("referrerReward", Object),
        f("referrerReward.type", Text),
        f("referrerReward.value", Number),
        f("referrerReward.description", Text),
        f("referrerReward.code", Text),
        f("referrerReward.claimedAt", Date),
        f("referrerReward.deliveredAt", Date),
        f("referrerReward.expiresAt", Date),
        f("referrerReward.status", Text),
        f("referredReward", Object),
        f("referredReward.type", Text),
        f("referredReward.value", Number),
        f("referredReward.description", Text),
        f("referredReward.code", Text),
        f("referredReward.claimedAt", Date),
        f("referredReward.deliveredAt", Date),
        f("referredReward.expiresAt", Date),
        f("referredReward.status", Text),
        f("totalRewardValue", Number),
        f("clickCount", Number),
        f("lastClickedAt", Date),
        f("source", Text),
        f("utmParams", Object),
        f("utmParams.source", Text),
        f("utmParams.medium", Text),
        f("utmParams.campaign", Text),
        f("metadata", Any),
        f("notes", Text),
    ],
    // Per workspace (the original's is global); see ADR 0006.
    unique: &[UniqueKey {
        name: "referralCode",
        fields: &["referralCode"],
    }],
    indexes: &[
        IndexDef::on(&[("referrerId", Asc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("convertedAt", Desc)]),
        IndexDef::on(&[("referrerEmail", Asc)]),
        IndexDef::on(&[("referredContactId", Asc)]),
        IndexDef::on(&[("referredEmail", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    #[default]
    Pending,
    SignedUp,
    Qualified,
    Converted,
    Expired,
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardType {
    Discount,
    Credit,
    Cash,
    Product,
    Service,
    Points,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RewardStatus {
    #[default]
    Pending,
    Earned,
    Claimed,
    Delivered,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reward {
    #[serde(rename = "type")]
    pub kind: RewardType,
    /// Money or points.
    pub value: f64,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub status: RewardStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UtmParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referral {
    #[serde(rename = "_id")]
    pub id: ReferralId,
    pub workspace_id: WorkspaceId,
    /// The contact who referred.
    pub referrer_id: ContactId,
    pub referrer_email: String,
    pub referral_code: String,
    pub referral_link: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_contact_id: Option<ContactId>,
    pub referred_email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_name: Option<String>,
    #[serde(default)]
    pub status: ReferralStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_up_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_reward: Option<Reward>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_reward: Option<Reward>,
    #[serde(default)]
    pub total_reward_value: f64,
    #[serde(default)]
    pub click_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_clicked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_params: Option<UtmParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Referral {
    pub fn new(
        workspace_id: WorkspaceId,
        referrer_id: ContactId,
        referrer_email: impl Into<String>,
        referral_code: impl Into<String>,
        referral_link: impl Into<String>,
        referred_email: impl Into<String>,
    ) -> Self {
        Self {
            id: ReferralId::new(),
            workspace_id,
            referrer_id,
            referrer_email: referrer_email.into(),
            referral_code: referral_code.into(),
            referral_link: referral_link.into(),
            referred_contact_id: None,
            referred_email: referred_email.into(),
            referred_name: None,
            status: ReferralStatus::Pending,
            signed_up_at: None,
            qualified_at: None,
            converted_at: None,
            conversion_value: None,
            referrer_reward: None,
            referred_reward: None,
            total_reward_value: 0.0,
            click_count: 0,
            last_clicked_at: None,
            source: None,
            utm_params: None,
            metadata: None,
            notes: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Referral {
    const DEF: &'static EntityDef = &REFERRAL;
}
impl WorkspaceEntity for Referral {}
