//! OTP (`otps`): one-time codes for registration, login and password reset. Global; MongoDB
//! removes expired ones through the TTL index, other stores leave them, so readers must still
//! check `expiresAt`.

use serde::{Deserialize, Serialize};

use crate::define_id;
use crate::repo::{Entity, GlobalEntity};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

define_id!(OtpId);

/// Codes live ten minutes.
pub const OTP_TTL_SECONDS: i64 = 600;
/// Wrong guesses allowed before a code is dead.
pub const OTP_MAX_ATTEMPTS: u32 = 5;

pub static OTP: EntityDef = EntityDef {
    name: "OTP",
    collection: "otps",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("email", Text).required(),
        f("code", Text).required(),
        f("purpose", Text).required(),
        f("expiresAt", Date).required(),
        f("attempts", Number),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("email", Asc), ("purpose", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OtpPurpose {
    Registration,
    Login,
    PasswordReset,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Otp {
    #[serde(rename = "_id")]
    pub id: OtpId,
    /// Lowercased and trimmed.
    pub email: String,
    /// What the service stores to compare against (a hash here; the original kept the digits).
    pub code: String,
    pub purpose: OtpPurpose,
    pub expires_at: Timestamp,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Otp {
    /// A code expiring [`OTP_TTL_SECONDS`] after `now`.
    pub fn new(email: &str, code: impl Into<String>, purpose: OtpPurpose, now: Timestamp) -> Self {
        Self {
            id: OtpId::new(),
            email: email.trim().to_lowercase(),
            code: code.into(),
            purpose,
            expires_at: now.plus_seconds(OTP_TTL_SECONDS),
            attempts: 0,
            created_at: None,
            updated_at: None,
        }
    }
}

impl Entity for Otp {
    const DEF: &'static EntityDef = &OTP;
}
impl GlobalEntity for Otp {}
