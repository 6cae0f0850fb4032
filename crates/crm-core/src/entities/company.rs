//! Company (`companies`): an account. The original has no uniqueness here, and neither do we.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Address;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(CompanyId);

pub static COMPANY: EntityDef = EntityDef {
    name: "Company",
    collection: "companies",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("industry", Text),
        f("website", Text),
        f("phone", Text),
        f("companySize", Text),
        f("annualRevenue", Number),
        f("employeeCount", Number),
        f("linkedinUrl", Text),
        f("twitterUrl", Text),
        f("facebookUrl", Text),
        f("address", Object),
        f("status", Text),
        f("tags", Texts),
        f("source", Text),
        f("assignedTo", Id),
        f("lastContactedAt", Date),
        f("notes", Text),
        f("parentCompanyId", Id),
        f("subsidiaryIds", Ids),
        f("accountTier", Text),
        f("accountScore", Number),
        f("isTargetAccount", Bool),
        f("customFields", Any),
        f("aiInsights", Object),
        f("aiInsights.lastAnalyzedAt", Date),
        f("apolloEnrichment", Object),
        f("apolloEnrichment.enrichedAt", Date),
        f("socialProfiles", Object),
        f("salesforceId", Text),
        f("salesforceSyncedAt", Date),
        f("salesforceSyncStatus", Text),
        f("salesforceSyncError", Text),
        f("deletedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("name", Asc)]),
        IndexDef::on(&[("assignedTo", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("parentCompanyId", Asc)]),
        IndexDef::on(&[("isTargetAccount", Asc)]),
        IndexDef::on(&[("salesforceId", Asc)]),
    ],
    text: &["name", "industry", "website"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CompanyStatus {
    #[default]
    Lead,
    Prospect,
    Customer,
    Churned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    #[serde(rename = "_id")]
    pub id: CompanyId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_revenue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default)]
    pub status: CompanyStatus,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_company_id: Option<CompanyId>,
    #[serde(default)]
    pub subsidiary_ids: Vec<CompanyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_score: Option<f64>,
    #[serde(default)]
    pub is_target_account: bool,
    #[serde(default)]
    pub custom_fields: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Company {
    pub fn new(workspace_id: WorkspaceId, user_id: UserId, name: impl Into<String>) -> Self {
        Self {
            id: CompanyId::new(),
            workspace_id,
            user_id,
            name: name.into(),
            industry: None,
            website: None,
            phone: None,
            company_size: None,
            annual_revenue: None,
            employee_count: None,
            address: None,
            status: CompanyStatus::Lead,
            tags: Vec::new(),
            assigned_to: None,
            parent_company_id: None,
            subsidiary_ids: Vec::new(),
            account_tier: None,
            account_score: None,
            is_target_account: false,
            custom_fields: Map::new(),
            deleted_at: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Company {
    const DEF: &'static EntityDef = &COMPANY;
    const AUDITED: bool = true;
    const EVENTS: Option<&'static str> = Some("company");
}
impl WorkspaceEntity for Company {}
