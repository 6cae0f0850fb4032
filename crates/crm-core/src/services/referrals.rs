//! Referrals: a contact of the workspace refers someone by email under a code unique in the
//! workspace. Status changes stamp when the referral signed up, qualified and converted.

use crate::accounts::Email;
use crate::entities::contact::{Contact, ContactId};
use crate::entities::referral::{Referral, ReferralId, ReferralStatus, UtmParams};
use crate::error::{Error, Result};
use crate::query::{Filter, Update};
use crate::repo::{WorkspaceScope, to_document};
use crate::services::contacts::get_live;
use crate::services::tasks::{contains_any, enum_filter, id_filter, opt_text};
use crate::time::Timestamp;

pub const CODE_MIN: usize = 3;
pub const CODE_MAX: usize = 32;
pub const TEXT_MAX: usize = 200;
pub const NOTES_MAX: usize = 5000;
const GENERATED_CODE_LEN: usize = 8;
/// Unambiguous characters (no 0/O, 1/I).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Default)]
pub struct NewReferral {
    pub referrer_id: ContactId,
    pub referred_email: String,
    pub referred_name: Option<String>,
    pub referral_code: Option<String>,
    pub referral_link: Option<String>,
    pub source: Option<String>,
    pub utm_params: Option<UtmParams>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ReferralPatch {
    pub status: Option<ReferralStatus>,
    pub referred_name: Option<Option<String>>,
    pub referred_contact_id: Option<Option<ContactId>>,
    pub conversion_value: Option<Option<f64>>,
    pub notes: Option<Option<String>>,
}

/// Letters, digits, `-` and `_`, [`CODE_MIN`] to [`CODE_MAX`] long; kept as given.
pub fn check_code(s: &str) -> Result<String> {
    let s = s.trim();
    let n = s.chars().count();
    if !(CODE_MIN..=CODE_MAX).contains(&n)
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid(
            "referralCode",
            format!("must be {CODE_MIN} to {CODE_MAX} letters, digits, `-` or `_`"),
        ));
    }
    Ok(s.to_owned())
}

pub fn generate_code() -> String {
    (0..GENERATED_CODE_LEN)
        .map(|_| {
            let i = rand::random_range(0..CODE_ALPHABET.len());
            char::from(CODE_ALPHABET[i])
        })
        .collect()
}

async fn live_contact(scope: &WorkspaceScope, id: ContactId, field: &str) -> Result<Contact> {
    match get_live::<Contact>(scope, id.into()).await {
        Err(Error::NotFound) => Err(Error::invalid(field, "no such contact in this workspace")),
        other => other,
    }
}

/// Creates a referral; a taken code is a `Conflict` on `referralCode`. Without a code one is
/// generated (retried on the rare collision).
pub async fn create(scope: &WorkspaceScope, cmd: NewReferral) -> Result<Referral> {
    let referrer = live_contact(scope, cmd.referrer_id, "referrerId").await?;
    let referrer_email = referrer
        .email
        .clone()
        .ok_or_else(|| Error::invalid("referrerId", "the contact has no email"))?;
    let referred = Email::parse_field(&cmd.referred_email, "referredEmail")?;
    let given = cmd.referral_code.as_deref().map(check_code).transpose()?;
    let link = opt_text("referralLink", cmd.referral_link, 2048)?;
    let repo = scope.repo::<Referral>();
    let mut tries = 0;
    loop {
        tries += 1;
        let code = given.clone().unwrap_or_else(generate_code);
        let mut r = Referral::new(
            scope.id(),
            cmd.referrer_id,
            referrer_email.clone(),
            code.clone(),
            link.clone().unwrap_or_else(|| format!("/r/{code}")),
            referred.as_str(),
        );
        r.referred_name = opt_text("referredName", cmd.referred_name.clone(), TEXT_MAX)?;
        r.source = opt_text("source", cmd.source.clone(), TEXT_MAX)?;
        r.utm_params = cmd.utm_params.clone();
        r.notes = opt_text("notes", cmd.notes.clone(), NOTES_MAX)?;
        match repo.insert(&r).await {
            Err(Error::Conflict { .. }) if given.is_none() && tries < 5 => continue,
            other => return other,
        }
    }
}

fn stamp(status: ReferralStatus) -> Option<&'static str> {
    match status {
        ReferralStatus::SignedUp => Some("signedUpAt"),
        ReferralStatus::Qualified => Some("qualifiedAt"),
        ReferralStatus::Converted => Some("convertedAt"),
        _ => None,
    }
}

pub async fn update(
    scope: &WorkspaceScope,
    now: Timestamp,
    id: ReferralId,
    p: ReferralPatch,
) -> Result<Referral> {
    let repo = scope.repo::<Referral>();
    let old = repo.get(id).await?;
    let mut u = Update::new();
    if let Some(s) = p.status {
        let v = serde_json::to_value(s).map_err(Error::internal)?;
        u = u.set("status", v);
        // The first time a stage is reached is when it happened.
        if let Some(field) = stamp(s) {
            let already = to_document(&old)?.get(field).is_some_and(|v| !v.is_null());
            if !already {
                u = u.set(field, now.to_canonical());
            }
        }
    }
    if let Some(n) = p.referred_name {
        u = match opt_text("referredName", n, TEXT_MAX)? {
            Some(n) => u.set("referredName", n),
            None => u.unset("referredName"),
        };
    }
    if let Some(c) = p.referred_contact_id {
        u = match c {
            Some(c) => {
                live_contact(scope, c, "referredContactId").await?;
                u.set("referredContactId", c.to_string())
            }
            None => u.unset("referredContactId"),
        };
    }
    if let Some(v) = p.conversion_value {
        u = match v {
            Some(v) if v.is_finite() && v >= 0.0 => u.set("conversionValue", v),
            Some(_) => {
                return Err(Error::invalid(
                    "conversionValue",
                    "must be a number of 0 or more",
                ));
            }
            None => u.unset("conversionValue"),
        };
    }
    if let Some(n) = p.notes {
        u = match opt_text("notes", n, NOTES_MAX)? {
            Some(n) => u.set("notes", n),
            None => u.unset("notes"),
        };
    }
    if u.is_empty() {
        return Ok(old);
    }
    repo.update(id, &u).await
}

/// Filters of the referral list: `status`, `referrerId`, `referralCode` and `search` (referred
/// email or name).
pub fn list_filter(
    status: Option<&str>,
    referrer_id: Option<&str>,
    code: Option<&str>,
    search: Option<&str>,
) -> Result<Filter> {
    let mut f = Filter::all();
    for x in [
        enum_filter::<ReferralStatus>("status", status)?,
        id_filter("referrerId", referrer_id)?,
        code.map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| Filter::eq("referralCode", c)),
        contains_any(&["referredEmail", "referredName"], search),
    ]
    .into_iter()
    .flatten()
    {
        f = f.and(x);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_generated_shape(code: &str) -> bool {
        code.len() == GENERATED_CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))
    }

    #[test]
    fn codes() {
        assert_eq!(check_code(" SPRING-24 ").unwrap(), "SPRING-24");
        assert!(check_code("ab").is_err());
        assert!(check_code("has space").is_err());
        assert!(check_code(&"x".repeat(33)).is_err());
        let c = generate_code();
        assert!(is_generated_shape(&c), "{c}");
        assert!(check_code(&c).is_ok());
    }
}
