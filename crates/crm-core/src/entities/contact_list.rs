//! ContactList (`contactlists`): a segment, either a static list of contacts or a dynamic one
//! defined by stored conditions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contact::ContactId;
use crate::define_id;
use crate::id::{UserId, WorkspaceId};
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(ContactListId);

pub static CONTACT_LIST: EntityDef = EntityDef {
    name: "ContactList",
    collection: "contactlists",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id).required(),
        f("name", Text).required(),
        f("description", Text),
        f("type", Text).required(),
        f("contacts", Ids),
        f("filters", Object),
        f("filters.conditions", Array),
        f("filters.conditions.field", Text),
        f("filters.conditions.operator", Text),
        f("filters.conditions.value", Any),
        f("filters.logic", Text),
        f("cachedCount", Number),
        f("lastCountUpdate", Date),
        f("color", Text),
        f("icon", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("type", Asc)]),
        IndexDef::on(&[("userId", Asc)]),
        // Not in the original (it has no list routes): finds the lists holding a contact, which
        // deleting the contact must update.
        IndexDef::on(&[("contacts", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListType {
    #[default]
    Static,
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOperator {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    GreaterThan,
    LessThan,
    In,
    NotIn,
    Exists,
    NotExists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Logic {
    #[default]
    #[serde(rename = "AND")]
    And,
    #[serde(rename = "OR")]
    Or,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCondition {
    /// A contact path such as `status`, `tags` or `leadScore.grade`.
    pub field: String,
    pub operator: ListOperator,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListFilters {
    #[serde(default)]
    pub conditions: Vec<ListCondition>,
    #[serde(default)]
    pub logic: Logic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactList {
    #[serde(rename = "_id")]
    pub id: ContactListId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: ListType,
    /// Members of a static list.
    #[serde(default)]
    pub contacts: Vec<ContactId>,
    /// The query of a dynamic list.
    #[serde(default)]
    pub filters: ListFilters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_count_update: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl ContactList {
    pub fn new(
        workspace_id: WorkspaceId,
        user_id: UserId,
        name: impl Into<String>,
        kind: ListType,
    ) -> Self {
        Self {
            id: ContactListId::new(),
            workspace_id,
            user_id,
            name: name.into(),
            description: None,
            kind,
            contacts: Vec::new(),
            filters: ListFilters::default(),
            cached_count: None,
            last_count_update: None,
            color: None,
            icon: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for ContactList {
    const DEF: &'static EntityDef = &CONTACT_LIST;
}
impl WorkspaceEntity for ContactList {}
