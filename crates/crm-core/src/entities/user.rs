//! User (`users`): a person who logs in. Global: one account may belong to many workspaces.

use serde::{Deserialize, Serialize};

use crate::id::UserId;
use crate::repo::{Entity, GlobalEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crate::time::Timestamp;

pub static USER: EntityDef = EntityDef {
    name: "User",
    collection: "users",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("email", Text).required(),
        f("password", Text),
        f("name", Text).required(),
        f("username", Text),
        f("isVerified", Bool),
        f("authProvider", Text),
        f("googleId", Text),
        f("profilePicture", Text),
        f("profession", Text),
        f("timezone", Text),
        f("verificationToken", Text),
        f("verificationTokenExpires", Date),
        f("resetPasswordToken", Text),
        f("resetPasswordExpires", Date),
        f("googleTokens", Object),
        f("googleTokens.expiryDate", Date),
        f("googleTokens.connectedAt", Date),
    ],
    unique: &[
        UniqueKey {
            name: "email",
            fields: &["email"],
        },
        UniqueKey {
            name: "username",
            fields: &["username"],
        },
        UniqueKey {
            name: "googleId",
            fields: &["googleId"],
        },
    ],
    indexes: &[
        IndexDef::on(&[("verificationToken", Asc)]),
        IndexDef::on(&[("resetPasswordToken", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthProvider {
    #[default]
    Email,
    Google,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: UserId,
    /// Lowercased and trimmed, as the original stores it.
    pub email: String,
    /// A PHC string: argon2id for accounts made here, bcrypt (`$2b$`) for the original's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub is_verified: bool,
    #[serde(default)]
    pub auth_provider: AuthProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_token_expires: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_password_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_password_expires: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn default_timezone() -> String {
    "America/New_York".to_owned()
}

impl User {
    pub fn new(email: &str, name: impl Into<String>) -> Self {
        Self {
            id: UserId::new(),
            email: email.trim().to_lowercase(),
            password: None,
            name: name.into(),
            username: None,
            is_verified: false,
            auth_provider: AuthProvider::Email,
            google_id: None,
            profile_picture: None,
            profession: None,
            timezone: default_timezone(),
            verification_token: None,
            verification_token_expires: None,
            reset_password_token: None,
            reset_password_expires: None,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for User {
    const DEF: &'static EntityDef = &USER;
}
impl GlobalEntity for User {}
