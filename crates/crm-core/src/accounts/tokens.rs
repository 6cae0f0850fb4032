//! Email-verification and password-reset tokens: 32 random bytes (hex) given out once by mail;
//! only their SHA-256 is kept on the user, with an expiry. Redeeming is one conditional atomic
//! write that also clears the token, so each works once.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::entities::user::User;
use crate::error::Result;
use crate::id::UserId;
use crate::query::{Filter, Update};
use crate::repo::Stores;

/// Verification tokens live 24 hours.
pub const VERIFY_TTL_SECONDS: i64 = 24 * 3600;
/// Reset tokens live one hour.
pub const RESET_TTL_SECONDS: i64 = 3600;

/// 32 random bytes as hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Verify,
    Reset,
}

impl TokenKind {
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Self::Verify => ("verificationToken", "verificationTokenExpires"),
            Self::Reset => ("resetPasswordToken", "resetPasswordExpires"),
        }
    }

    fn ttl(self) -> i64 {
        match self {
            Self::Verify => VERIFY_TTL_SECONDS,
            Self::Reset => RESET_TTL_SECONDS,
        }
    }
}

/// Stores a fresh token of `kind` on the user (replacing any earlier one) and returns it.
pub async fn issue(stores: &Stores, user: UserId, kind: TokenKind) -> Result<String> {
    let token = new_token();
    let (field, expires) = kind.fields();
    let at = stores.clock().now().plus_seconds(kind.ttl());
    stores
        .global::<User>()
        .update(
            user,
            &Update::new()
                .set(field, hash_token(&token))
                .set(expires, at.to_canonical()),
        )
        .await?;
    Ok(token)
}

/// Redeems a live token of `kind`: clears it and applies `then` in the same write. `None` when
/// the token is unknown, used or expired.
pub async fn redeem(
    stores: &Stores,
    token: &str,
    kind: TokenKind,
    then: Update,
) -> Result<Option<User>> {
    let (field, expires) = kind.fields();
    let now = stores.clock().now();
    let filter = Filter::eq(field, hash_token(token)).and(Filter::Gt(
        expires.into(),
        Value::String(now.to_canonical()),
    ));
    stores
        .global::<User>()
        .find_one_and_update(&filter, &then.unset(field).unset(expires), false)
        .await
}
