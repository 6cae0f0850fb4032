//! CustomFieldDefinition (`customfielddefinitions`): a workspace's extra field on contacts,
//! companies or deals; values live in each record's `customFields` under `fieldKey`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::define_id;
use crate::id::WorkspaceId;
use crate::repo::{Entity, WorkspaceEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(CustomFieldId);

pub static CUSTOM_FIELD_DEFINITION: EntityDef = EntityDef {
    name: "CustomFieldDefinition",
    collection: "customfielddefinitions",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("entityType", Text).required(),
        f("fieldKey", Text).required(),
        f("fieldLabel", Text).required(),
        f("fieldType", Text).required(),
        f("selectOptions", Texts),
        f("isRequired", Bool),
        f("defaultValue", Any),
        f("order", Number),
        f("isActive", Bool),
        f("relationConfig", Object),
        f("relationConfig.targetEntity", Text),
        f("relationConfig.displayFormat", Text),
        f("relationConfig.allowMultiple", Bool),
        f("currencyConfig", Object),
        f("currencyConfig.defaultCurrency", Text),
        f("currencyConfig.showSymbol", Bool),
        // Target additions: the validation rules values are checked against.
        f("validation", Object),
        f("validation.min", Number),
        f("validation.max", Number),
        f("validation.pattern", Text),
    ],
    unique: &[UniqueKey {
        name: "entityType_fieldKey",
        fields: &["entityType", "fieldKey"],
    }],
    indexes: &[
        IndexDef::on(&[("isActive", Asc), ("order", Asc)]),
        IndexDef::on(&[("entityType", Asc)]),
    ],
    text: &[],
};

/// The entity a definition extends (and a relation points to). `deal` means Opportunity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CustomFieldEntity {
    #[default]
    Contact,
    Company,
    Deal,
}

/// The original's eight types plus the target's boolean, email and url.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomFieldType {
    Text,
    Number,
    Select,
    Date,
    Multiselect,
    Currency,
    Person,
    Relation,
    Boolean,
    Email,
    Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DisplayFormat {
    #[default]
    Name,
    Badge,
    Avatar,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RelationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_entity: Option<CustomFieldEntity>,
    #[serde(default)]
    pub display_format: DisplayFormat,
    #[serde(default)]
    pub allow_multiple: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyConfig {
    #[serde(default = "default_currency")]
    pub default_currency: String,
    #[serde(default = "yes")]
    pub show_symbol: bool,
}

impl Default for CurrencyConfig {
    fn default() -> Self {
        Self {
            default_currency: default_currency(),
            show_symbol: true,
        }
    }
}

/// Bounds on values: numbers between `min` and `max`, text matching `pattern` (size-limited
/// by the service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ValueRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

fn default_currency() -> String {
    "USD".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomFieldDefinition {
    #[serde(rename = "_id")]
    pub id: CustomFieldId,
    pub workspace_id: WorkspaceId,
    pub entity_type: CustomFieldEntity,
    /// `custom_[a-z0-9_]+`.
    pub field_key: String,
    pub field_label: String,
    pub field_type: CustomFieldType,
    #[serde(default)]
    pub select_options: Vec<String>,
    #[serde(default)]
    pub is_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(default)]
    pub order: u32,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub relation_config: RelationConfig,
    #[serde(default)]
    pub currency_config: CurrencyConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValueRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl CustomFieldDefinition {
    pub fn new(
        workspace_id: WorkspaceId,
        entity_type: CustomFieldEntity,
        field_key: impl Into<String>,
        field_label: impl Into<String>,
        field_type: CustomFieldType,
    ) -> Self {
        Self {
            id: CustomFieldId::new(),
            workspace_id,
            entity_type,
            field_key: field_key.into(),
            field_label: field_label.into(),
            field_type,
            select_options: Vec::new(),
            is_required: false,
            default_value: None,
            order: 0,
            is_active: true,
            relation_config: RelationConfig::default(),
            currency_config: CurrencyConfig::default(),
            validation: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for CustomFieldDefinition {
    const DEF: &'static EntityDef = &CUSTOM_FIELD_DEFINITION;
    const AUDITED: bool = true;
}
impl WorkspaceEntity for CustomFieldDefinition {}
