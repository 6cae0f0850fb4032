//! Contact (`contacts`): a person the workspace sells to.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Address;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(ContactId);
define_id!(CompanyRef);

pub static CONTACT: EntityDef = EntityDef {
    name: "Contact",
    collection: "contacts",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("companyId", Id),
        f("firstName", Text).required(),
        f("lastName", Text),
        f("email", Text),
        f("phone", Text),
        f("company", Text),
        f("jobTitle", Text),
        f("tags", Texts),
        f("source", Text),
        f("status", Text),
        f("lifecycleStage", Text),
        f("lifecycleStageUpdatedAt", Date),
        f("previousLifecycleStage", Text),
        f("linkedin", Text),
        f("twitter", Text),
        f("website", Text),
        f("address", Object),
        f("assignedTo", Id),
        f("lastContactedAt", Date),
        f("notes", Text),
        f("customFields", Any),
        f("aiInsights", Object),
        f("aiInsights.lastAnalyzedAt", Date),
        f("qualityScore", Number),
        f("qualityGrade", Text),
        f("qualified", Bool),
        f("disqualificationReason", Text),
        f("qualifiedAt", Date),
        f("intentScore", Number),
        f("intentUpdatedAt", Date),
        f("city", Text),
        f("state", Text),
        f("country", Text),
        f("apolloEnrichment", Object),
        f("apolloEnrichment.enrichedAt", Date),
        f("emailVerification", Object),
        f("emailVerification.verifiedAt", Date),
        f("socialProfiles", Object),
        f("location", Object),
        f("title", Text),
        f("employmentStatus", Text),
        f("lastVerifiedAt", Date),
        f("previousCompany", Text),
        f("previousJobTitle", Text),
        f("linkedContactId", Id),
        f("mergeHistory", Array),
        f("mergeHistory.mergedContactId", Id),
        f("mergeHistory.mergedAt", Date),
        f("mergeHistory.mergedBy", Id),
        f("salesforceId", Text),
        f("salesforceSyncedAt", Date),
        f("salesforceSyncStatus", Text),
        f("salesforceSyncError", Text),
        f("deletedAt", Date),
        // Target additions (ADR 0011): a trashed contact's email is kept here, outside the unique
        // key, and a merged duplicate names the contact it went into.
        f("trashedEmail", Text),
        f("mergedInto", Id),
    ],
    // Target, not the original's sparse key: many contacts without an email are allowed.
    unique: &[UniqueKey {
        name: "email",
        fields: &["email"],
    }],
    indexes: &[
        IndexDef::on(&[("createdAt", Desc)]),
        IndexDef::on(&[("status", Asc)]),
        IndexDef::on(&[("lifecycleStage", Asc)]),
        IndexDef::on(&[("assignedTo", Asc)]),
        IndexDef::on(&[("companyId", Asc)]),
        IndexDef::on(&[("tags", Asc)]),
        IndexDef::on(&[("status", Asc), ("assignedTo", Asc)]),
        // Not in the original: serves the common list (a status, newest first) without reading
        // the other statuses' documents (ADR 0016).
        IndexDef::on(&[("status", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("lifecycleStage", Asc), ("intentScore", Desc)]),
        IndexDef::on(&[("intentScore", Desc)]),
        IndexDef::on(&[("qualityScore", Desc)]),
        IndexDef::on(&[("lastContactedAt", Desc)]),
        IndexDef::on(&[("userId", Asc)]),
        IndexDef::on(&[("salesforceId", Asc)]),
    ],
    text: &["firstName", "lastName", "email", "company"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ContactStatus {
    #[default]
    Lead,
    Prospect,
    Customer,
    Inactive,
    Disqualified,
    Nurture,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    Subscriber,
    #[default]
    Lead,
    Mql,
    Sql,
    Sal,
    Opportunity,
    Customer,
    Evangelist,
    Churned,
    Disqualified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeRecord {
    pub merged_contact_id: ContactId,
    pub merged_at: Timestamp,
    pub merged_by: UserId,
    #[serde(default)]
    pub merged_data: Value,
}

/// The typed contact. Rarely used subdocuments stay JSON (`Value`) until a feature needs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(rename = "_id")]
    pub id: ContactId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<CompanyRef>,
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub status: ContactStatus,
    #[serde(default)]
    pub lifecycle_stage: LifecycleStage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage_updated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_lifecycle_stage: Option<LifecycleStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contacted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default)]
    pub custom_fields: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_insights: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_grade: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified: Option<bool>,
    #[serde(default)]
    pub intent_score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_updated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merge_history: Vec<MergeRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trashed_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Contact {
    /// A new contact with the original's defaults.
    pub fn new(workspace_id: WorkspaceId, user_id: UserId, first_name: impl Into<String>) -> Self {
        Self {
            id: ContactId::new(),
            workspace_id,
            user_id,
            company_id: None,
            first_name: first_name.into(),
            last_name: String::new(),
            email: None,
            phone: None,
            company: None,
            job_title: None,
            tags: Vec::new(),
            source: None,
            status: ContactStatus::Lead,
            lifecycle_stage: LifecycleStage::Lead,
            lifecycle_stage_updated_at: None,
            previous_lifecycle_stage: None,
            linkedin: None,
            twitter: None,
            website: None,
            address: None,
            assigned_to: None,
            last_contacted_at: None,
            notes: None,
            custom_fields: Map::new(),
            ai_insights: None,
            quality_score: None,
            quality_grade: None,
            qualified: None,
            intent_score: 0.0,
            intent_updated_at: None,
            title: None,
            linked_contact_id: None,
            merge_history: Vec::new(),
            salesforce_id: None,
            deleted_at: None,
            trashed_email: None,
            merged_into: None,
            created_at: None,
            updated_at: None,
        }
    }

    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

impl Entity for Contact {
    const DEF: &'static EntityDef = &CONTACT;
    const AUDITED: bool = true;
    const EVENTS: Option<&'static str> = Some("contact");
    fn derived_events(
        before: Option<&crate::engine::Document>,
        after: Option<&crate::engine::Document>,
    ) -> Vec<&'static str> {
        let mut v = Vec::new();
        if crate::repo::field_moved(before, after, "status") {
            v.push("contact.status_changed");
        }
        if crate::repo::field_moved(before, after, "jobTitle") {
            v.push("contact.job_changed");
        }
        v
    }
}
impl WorkspaceEntity for Contact {}
