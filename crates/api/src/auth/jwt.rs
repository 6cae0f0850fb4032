//! HS256 JSON Web Tokens, only what access tokens need: one algorithm, fixed claims. Written on
//! `hmac`+`sha2` rather than a JWT crate whose other algorithms would pull in RSA and EC stacks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `{"alg":"HS256","typ":"JWT"}`, encoded once.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Tokens issued in the future by more than this (clock skew between processes) are refused.
const MAX_SKEW_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (24 hex digits).
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// A random id per token, for logs and a future deny-list.
    pub jti: String,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

pub fn sign(key: &[u8], claims: &Claims) -> String {
    // Serialising this struct of strings and integers cannot fail.
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(payload));
    let mut m = mac(key);
    m.update(out.as_bytes());
    let sig = m.finalize().into_bytes();
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// The claims of a token signed with `key` that is valid at `now` (seconds); `None` otherwise.
/// The signature is checked (in constant time) before anything in the token is trusted.
pub fn verify(key: &[u8], token: &str, now: i64) -> Option<Claims> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
    let mut m = mac(key);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).ok()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header.alg != "HS256" {
        return None;
    }
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    (claims.exp > now && claims.iat <= now + MAX_SKEW_SECS).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            sub: "507f1f77bcf86cd799439011".into(),
            iat,
            exp,
            jti: "abc".into(),
        }
    }

    #[test]
    fn header_constant_is_what_it_claims() {
        let h = URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap();
        assert_eq!(h, br#"{"alg":"HS256","typ":"JWT"}"#);
    }

    #[test]
    fn round_trip_and_expiry() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = sign(key, &claims(1000, 1900));
        assert_eq!(verify(key, &t, 1000), Some(claims(1000, 1900)));
        assert_eq!(verify(key, &t, 1899), Some(claims(1000, 1900)));
        assert_eq!(verify(key, &t, 1900), None, "expired");
        assert_eq!(verify(key, &t, 900), None, "issued in the future");
        assert_eq!(verify(b"another key", &t, 1000), None);
    }

    #[test]
    fn tampering_is_refused() {
        let key = b"k";
        let t = sign(key, &claims(1000, 1900));
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.rsplit_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: "000000000000000000000000".into(),
                ..claims(1000, 1900)
            })
            .unwrap(),
        );
        assert_eq!(
            verify(key, &format!("{head}.{forged_payload}.{sig}"), 1000),
            None
        );
        let none_alg = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let p = rest.split_once('.').unwrap().0;
        assert_eq!(verify(key, &format!("{none_alg}.{p}."), 1000), None);
        assert_eq!(verify(key, &format!("{t}.x"), 1000), None);
        assert_eq!(verify(key, "", 1000), None);
        assert_eq!(verify(key, "a.b.c", 1000), None);
    }
}
