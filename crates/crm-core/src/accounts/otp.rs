//! One-time codes: 6 digits, 10 minutes, 5 wrong guesses and they are dead. Only a salted
//! SHA-256 is stored. Sending is limited per email and purpose to [`SENDS_PER_HOUR`]; the sends
//! are counted in their own collection (`otpsends`, kept an hour) because codes themselves
//! disappear after ten minutes, and a new code never deletes the older ones (the original did,
//! which made its limit count at most one).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::define_id;
use crate::entities::otp::{OTP_MAX_ATTEMPTS, Otp, OtpId, OtpPurpose};
use crate::error::{Error, Result};
use crate::query::{Filter, FindOptions, Update};
use crate::repo::{Entity, GlobalEntity, Stores};
use crate::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crate::time::Timestamp;

/// Codes sent per email and purpose within an hour.
pub const SENDS_PER_HOUR: u64 = 3;
const WINDOW_SECONDS: i64 = 3600;

define_id!(OtpSendId);

pub static OTP_SEND: EntityDef = EntityDef {
    name: "OtpSend",
    collection: "otpsends",
    tenancy: Tenancy::Global,
    timestamps: true,
    fields: &[
        f("email", Text).required(),
        f("purpose", Text).required(),
        f("expiresAt", Date).required(),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("email", Asc), ("purpose", Asc)]),
        IndexDef::ttl(&[("expiresAt", Asc)], 0),
    ],
    text: &[],
};

/// One code sent; counts against the limit until `expiresAt` (an hour later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpSend {
    #[serde(rename = "_id")]
    pub id: OtpSendId,
    pub email: String,
    pub purpose: OtpPurpose,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for OtpSend {
    const DEF: &'static EntityDef = &OTP_SEND;
}
impl GlobalEntity for OtpSend {}

/// The limit was reached; retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after_secs: u64,
}

fn purpose_value(p: OtpPurpose) -> Result<Value> {
    serde_json::to_value(p).map_err(Error::internal)
}

fn key(email: &str, purpose: OtpPurpose) -> Result<Filter> {
    Ok(Filter::eq("email", email.to_owned()).and(Filter::eq("purpose", purpose_value(purpose)?)))
}

/// The id salts the hash so equal codes do not hash alike.
fn code_hash(id: OtpId, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{id}:{code}").as_bytes()))
}

fn new_code() -> String {
    format!("{:06}", rand::random::<u32>() % 1_000_000)
}

/// Counts the send, then stores a new code and returns it. Counting first (insert, then count)
/// means concurrent senders may all be refused near the limit, never all admitted past it.
pub async fn issue(
    stores: &Stores,
    email: &str,
    purpose: OtpPurpose,
) -> Result<std::result::Result<String, RateLimited>> {
    let now = stores.clock().now();
    let sends = stores.global::<OtpSend>();
    let mine = sends
        .insert(&OtpSend {
            id: OtpSendId::new(),
            email: email.to_owned(),
            purpose,
            expires_at: now.plus_seconds(WINDOW_SECONDS),
            created_at: None,
            updated_at: None,
        })
        .await?;
    let live = key(email, purpose)?.and(Filter::Gt(
        "expiresAt".into(),
        Value::String(now.to_canonical()),
    ));
    let recent = sends
        .find(
            &live,
            &FindOptions {
                sort: vec![crate::query::SortKey::asc("expiresAt")],
                ..FindOptions::default()
            },
        )
        .await?;
    if recent.len() as u64 > SENDS_PER_HOUR {
        // A refused request must not use up the window.
        sends.delete(mine.id).await?;
        let oldest = recent
            .first()
            .map(|s| s.expires_at)
            .unwrap_or(mine.expires_at);
        let wait = (oldest.millis() - now.millis()).max(1000) / 1000;
        return Ok(Err(RateLimited {
            retry_after_secs: u64::try_from(wait).unwrap_or(1),
        }));
    }
    let code = new_code();
    let mut otp = Otp::new(email, String::new(), purpose, now);
    otp.code = code_hash(otp.id, &code);
    stores.global::<Otp>().insert(&otp).await?;
    Ok(Ok(code))
}

/// Checks `code` against the live codes of `email` and `purpose`. A match is consumed (and every
/// other live code of that key killed); a miss costs every live code one attempt.
pub async fn verify(stores: &Stores, email: &str, purpose: OtpPurpose, code: &str) -> Result<bool> {
    let now = stores.clock().now();
    let repo = stores.global::<Otp>();
    let live = key(email, purpose)?
        .and(Filter::Gt(
            "expiresAt".into(),
            Value::String(now.to_canonical()),
        ))
        .and(Filter::Lt("attempts".into(), Value::from(OTP_MAX_ATTEMPTS)));
    let candidates = repo.find(&live, &FindOptions::default()).await?;
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let hit = candidates
        .iter()
        .find(|o| well_formed && o.code == code_hash(o.id, code));
    let Some(hit) = hit else {
        repo.update_many(&live, &Update::new().inc("attempts", 1))
            .await?;
        return Ok(false);
    };
    // Claiming marks it dead in one conditional write, so it works once even under concurrency.
    let claimed = repo
        .find_one_and_update(
            &Filter::eq("_id", hit.id.to_string())
                .and(Filter::Lt("attempts".into(), Value::from(OTP_MAX_ATTEMPTS))),
            &Update::new().set("attempts", OTP_MAX_ATTEMPTS),
            false,
        )
        .await?;
    if claimed.is_none() {
        return Ok(false);
    }
    repo.update_many(&live, &Update::new().set("attempts", OTP_MAX_ATTEMPTS))
        .await?;
    Ok(true)
}
