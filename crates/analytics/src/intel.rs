//! Sales intelligence: BuyingCommittee, Battlecard, Competitor, ICPDefinition, and the sales
//! records Proposal and CallRecording. Plain records: their HTTP routes are the generic CRUD.

use crm_core::define_id;
use crm_core::entities::company::CompanyId;
use crm_core::entities::contact::ContactId;
use crm_core::entities::opportunity::OpportunityId;
use crm_core::repo::{Entity, WorkspaceEntity};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, UniqueKey, f};
use crm_core::{Timestamp, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ws;

define_id!(BuyingCommitteeId);
define_id!(BattlecardId);
define_id!(CompetitorId);
define_id!(IcpDefinitionId);
define_id!(ProposalId);
define_id!(CallRecordingId);

// ---- BuyingCommittee ----

pub static BUYING_COMMITTEE: EntityDef = EntityDef {
    name: "BuyingCommittee",
    collection: "buyingcommittees",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("companyId", Id).required(),
        f("opportunityId", Id),
        f("members", Array),
        f("members.contactId", Id),
        f("members.role", Text),
        f("coverageScore", Number),
        f("dealStage", Text),
        f("notes", Text),
    ],
    unique: &[UniqueKey {
        name: "companyId",
        fields: &["companyId"],
    }],
    indexes: &[
        IndexDef::on(&[("companyId", Asc)]),
        IndexDef::on(&[("opportunityId", Asc)]),
        IndexDef::on(&[("coverageScore", Desc)]),
        IndexDef::on(&[("dealStage", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CommitteeRole {
    DecisionMaker,
    EconomicBuyer,
    TechnicalBuyer,
    Champion,
    #[default]
    Influencer,
    Blocker,
    User,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitteeMember {
    pub contact_id: ContactId,
    #[serde(default)]
    pub role: CommitteeRole,
    /// 0-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
}

/// `coverageScore` is derived from `members` whenever a committee is decoded, so it is right
/// after every create and patch whatever was stored or sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "BuyingCommitteeRaw")]
pub struct BuyingCommittee {
    #[serde(rename = "_id")]
    pub id: BuyingCommitteeId,
    pub workspace_id: WorkspaceId,
    pub company_id: CompanyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<OpportunityId>,
    #[serde(default)]
    pub members: Vec<CommitteeMember>,
    /// Share of the key roles (decision maker, economic buyer, champion) covered, 0-100.
    #[serde(default)]
    pub coverage_score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuyingCommitteeRaw {
    #[serde(rename = "_id")]
    id: BuyingCommitteeId,
    workspace_id: WorkspaceId,
    company_id: CompanyId,
    #[serde(default)]
    opportunity_id: Option<OpportunityId>,
    #[serde(default)]
    members: Vec<CommitteeMember>,
    #[serde(default)]
    deal_stage: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    created_at: Option<Timestamp>,
    #[serde(default)]
    updated_at: Option<Timestamp>,
}

impl From<BuyingCommitteeRaw> for BuyingCommittee {
    fn from(r: BuyingCommitteeRaw) -> Self {
        Self {
            coverage_score: Self::coverage(&r.members),
            id: r.id,
            workspace_id: r.workspace_id,
            company_id: r.company_id,
            opportunity_id: r.opportunity_id,
            members: r.members,
            deal_stage: r.deal_stage,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl BuyingCommittee {
    /// Coverage of the roles a deal needs: decision maker, economic buyer, champion.
    pub fn coverage(members: &[CommitteeMember]) -> f64 {
        const KEY: [CommitteeRole; 3] = [
            CommitteeRole::DecisionMaker,
            CommitteeRole::EconomicBuyer,
            CommitteeRole::Champion,
        ];
        let covered = KEY
            .iter()
            .filter(|r| members.iter().any(|m| m.role == **r))
            .count();
        (covered as f64 * 100.0 / KEY.len() as f64).round()
    }
}

impl Entity for BuyingCommittee {
    const DEF: &'static EntityDef = &BUYING_COMMITTEE;
}
impl WorkspaceEntity for BuyingCommittee {}

// ---- Competitor ----

pub static COMPETITOR: EntityDef = EntityDef {
    name: "Competitor",
    collection: "competitors",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("website", Text),
        f("description", Text),
        f("keywords", Texts),
        f("aliases", Texts),
        f("strengths", Texts),
        f("weaknesses", Texts),
        f("pricing", Text),
        f("threatLevel", Text),
    ],
    unique: &[UniqueKey {
        name: "name",
        fields: &["name"],
    }],
    indexes: &[IndexDef::on(&[("keywords", Asc)])],
    text: &["name", "keywords", "aliases"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThreatLevel {
    Low,
    #[default]
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Competitor {
    #[serde(rename = "_id")]
    pub id: CompetitorId,
    pub workspace_id: WorkspaceId,
    pub name: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub strengths: Vec<String>,
    #[serde(default)]
    pub weaknesses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<String>,
    #[serde(default)]
    pub threat_level: ThreatLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Competitor {
    const DEF: &'static EntityDef = &COMPETITOR;
}
impl WorkspaceEntity for Competitor {}

// ---- Battlecard ----

pub static BATTLECARD: EntityDef = EntityDef {
    name: "Battlecard",
    collection: "battlecards",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("title", Text).required(),
        f("competitorId", Id),
        f("category", Text),
        f("content", Text),
        f("objection", Text),
        f("response", Text),
        f("createdBy", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("competitorId", Asc)]),
        IndexDef::on(&[("category", Asc)]),
    ],
    text: &["title", "content", "objection"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BattlecardCategory {
    Objection,
    Competitor,
    Pricing,
    Feature,
    #[default]
    General,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Battlecard {
    #[serde(rename = "_id")]
    pub id: BattlecardId,
    pub workspace_id: WorkspaceId,
    pub title: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competitor_id: Option<CompetitorId>,
    #[serde(default)]
    pub category: BattlecardCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Battlecard {
    const DEF: &'static EntityDef = &BATTLECARD;
}
impl WorkspaceEntity for Battlecard {}

// ---- ICPDefinition ----

pub static ICP_DEFINITION: EntityDef = EntityDef {
    name: "ICPDefinition",
    collection: "icpdefinitions",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("description", Text),
        f("isDefault", Bool),
        f("criteria", Object),
        f("weights", Object),
        f("createdBy", Id),
    ],
    unique: &[UniqueKey {
        name: "name",
        fields: &["name"],
    }],
    indexes: &[IndexDef::on(&[("isDefault", Asc)])],
    text: &[],
};

/// What an ideal customer looks like; every list empty means "any".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IcpCriteria {
    #[serde(default)]
    pub industries: Vec<String>,
    #[serde(default)]
    pub company_sizes: Vec<String>,
    #[serde(default)]
    pub job_titles: Vec<String>,
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_revenue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_revenue: Option<f64>,
    #[serde(default)]
    pub technologies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IcpDefinition {
    #[serde(rename = "_id")]
    pub id: IcpDefinitionId,
    pub workspace_id: WorkspaceId,
    pub name: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// At most one per workspace: setting it clears the previous default.
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub criteria: IcpCriteria,
    #[serde(default)]
    pub weights: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for IcpDefinition {
    const DEF: &'static EntityDef = &ICP_DEFINITION;
}
impl WorkspaceEntity for IcpDefinition {}

/// Makes `keep` the only default ICP of the workspace: every other default is cleared. Called
/// after `keep` was written with `isDefault: true`.
pub async fn clear_other_defaults(
    scope: &crm_core::repo::WorkspaceScope,
    keep: IcpDefinitionId,
) -> crm_core::Result<u64> {
    use crm_core::{Filter, Update};
    scope
        .repo::<IcpDefinition>()
        .update_many(
            &Filter::eq("isDefault", true).and(Filter::Ne("_id".into(), keep.to_string().into())),
            &Update::new().set("isDefault", false),
        )
        .await
}

// ---- Proposal ----

pub static PROPOSAL: EntityDef = EntityDef {
    name: "Proposal",
    collection: "proposals",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("title", Text).required(),
        f("opportunityId", Id),
        f("contactId", Id),
        f("companyId", Id),
        f("status", Text),
        f("executiveSummary", Text),
        f("proposedSolution", Text),
        f("pricing", Array),
        f("totalValue", Number),
        f("currency", Text),
        f("validUntil", Date),
        f("sentAt", Date),
        f("createdBy", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("opportunityId", Asc)]),
    ],
    text: &["title", "executiveSummary", "proposedSolution"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    #[default]
    Draft,
    Sent,
    Viewed,
    Accepted,
    Rejected,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingItem {
    pub name: String,
    #[serde(default = "one")]
    pub quantity: f64,
    #[serde(default)]
    pub unit_price: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    #[serde(rename = "_id")]
    pub id: ProposalId,
    pub workspace_id: WorkspaceId,
    pub title: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<OpportunityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<CompanyId>,
    #[serde(default)]
    pub status: ProposalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executive_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_solution: Option<String>,
    #[serde(default)]
    pub pricing: Vec<PricingItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_value: Option<f64>,
    #[serde(default = "usd")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn usd() -> String {
    "USD".to_owned()
}

impl Entity for Proposal {
    const DEF: &'static EntityDef = &PROPOSAL;
}
impl WorkspaceEntity for Proposal {}

// ---- CallRecording ----

pub static CALL_RECORDING: EntityDef = EntityDef {
    name: "CallRecording",
    collection: "callrecordings",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("title", Text).required(),
        f("contactId", Id),
        f("opportunityId", Id),
        f("recordedAt", Date),
        f("durationSeconds", Number),
        f("recordingUrl", Text),
        f("transcript", Text),
        f("summary", Text),
        f("keyPoints", Texts),
        f("actionItems", Texts),
        f("sentiment", Text),
        f("userId", Id),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("recordedAt", Desc)]),
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("opportunityId", Asc)]),
    ],
    text: &["title", "transcript", "summary"],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecording {
    #[serde(rename = "_id")]
    pub id: CallRecordingId,
    pub workspace_id: WorkspaceId,
    pub title: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<OpportunityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default)]
    pub key_points: Vec<String>,
    #[serde(default)]
    pub action_items: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for CallRecording {
    const DEF: &'static EntityDef = &CALL_RECORDING;
}
impl WorkspaceEntity for CallRecording {}

/// Trimmed text of 1 to 200 characters: names and titles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NonEmpty(String);

impl NonEmpty {
    pub const MAX: usize = 200;
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NonEmpty {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("must not be empty".into());
        }
        if t.chars().count() > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        Ok(Self(t.to_owned()))
    }
}

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s).map_err(serde::de::Error::custom)
    }
}

impl From<&str> for NonEmpty {
    /// For tests and seeds; input past the bounds is cut or replaced.
    fn from(s: &str) -> Self {
        let t: String = s.trim().chars().take(Self::MAX).collect();
        Self(if t.is_empty() { "-".into() } else { t })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        let ok: NonEmpty = serde_json::from_str("\"  Acme \"").unwrap_or_else(|_| "x".into());
        assert_eq!(ok.as_str(), "Acme");
        assert!(serde_json::from_str::<NonEmpty>("\"   \"").is_err());
        assert!(serde_json::from_value::<NonEmpty>(Value::String("a".repeat(201))).is_err());
    }

    #[test]
    fn coverage_counts_the_key_roles() {
        let m = |role| CommitteeMember {
            contact_id: ContactId::new(),
            role,
            influence: None,
            sentiment: None,
        };
        assert_eq!(BuyingCommittee::coverage(&[]), 0.0);
        assert_eq!(
            BuyingCommittee::coverage(&[m(CommitteeRole::Champion), m(CommitteeRole::User)]),
            33.0
        );
        assert_eq!(
            BuyingCommittee::coverage(&[
                m(CommitteeRole::Champion),
                m(CommitteeRole::DecisionMaker),
                m(CommitteeRole::EconomicBuyer)
            ]),
            100.0
        );
    }
}
