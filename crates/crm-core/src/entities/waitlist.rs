//! Waitlist (`waitlists`): sign-ups before launch. Global, one per email.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::repo::{Entity, GlobalEntity};
use crate::schema::{EntityDef, FieldKind::*, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

define_id!(WaitlistId);

pub static WAITLIST: EntityDef = EntityDef {
    name: "Waitlist",
    collection: "waitlists",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("email", Text).required(),
        f("companyName", Text),
        f("role", Text),
        f("teamSize", Text),
        f("source", Text),
    ],
    unique: &[UniqueKey {
        name: "email",
        fields: &["email"],
    }],
    indexes: &[],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TeamSize {
    #[serde(rename = "1-5")]
    S1To5,
    #[serde(rename = "6-20")]
    S6To20,
    #[serde(rename = "21-50")]
    S21To50,
    #[serde(rename = "51-200")]
    S51To200,
    #[serde(rename = "200+")]
    Over200,
    /// The original accepts an empty choice.
    #[serde(rename = "")]
    Unspecified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waitlist {
    #[serde(rename = "_id")]
    pub id: WaitlistId,
    /// Lowercased and trimmed.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_size: Option<TeamSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Waitlist {
    pub fn new(email: &str) -> Self {
        Self {
            id: WaitlistId::new(),
            email: email.trim().to_lowercase(),
            company_name: None,
            role: None,
            team_size: None,
            source: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Waitlist {
    const DEF: &'static EntityDef = &WAITLIST;
}
impl GlobalEntity for Waitlist {}
