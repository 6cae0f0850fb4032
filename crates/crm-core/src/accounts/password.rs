//! Passwords: the policy as a parsed type, argon2id hashes for new ones, and verification that
//! still accepts the original's bcrypt hashes so its users keep their passwords.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// Longer inputs are refused before hashing: hashing cost must not grow with the request.
pub const MAX_PASSWORD_BYTES: usize = 256;
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A password that meets the policy: 8+ characters with an upper-case letter, a lower-case letter
/// and a digit. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Checks the policy; the error names the field `field`.
    pub fn parse_field(s: &str, field: &str) -> Result<Self> {
        let fail = |why: &str| Err(Error::invalid(field, why));
        if s.chars().count() < MIN_PASSWORD_CHARS {
            return fail("must be at least 8 characters");
        }
        if s.len() > MAX_PASSWORD_BYTES {
            return fail("must be at most 256 bytes");
        }
        if !s.chars().any(char::is_uppercase) {
            return fail("must contain an upper-case letter");
        }
        if !s.chars().any(char::is_lowercase) {
            return fail("must contain a lower-case letter");
        }
        if !s.chars().any(|c| c.is_ascii_digit()) {
            return fail("must contain a digit");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_field(s, "password")
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Mismatch,
    Match,
    /// Correct, but stored in an older form (bcrypt, or weaker argon2 parameters): store a fresh
    /// [`hash_password`] of it.
    MatchNeedsRehash,
}

impl PasswordCheck {
    pub fn is_match(self) -> bool {
        !matches!(self, Self::Mismatch)
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// An argon2id PHC string (OWASP's minimum parameters: 19 MiB, 2 passes). CPU-heavy: call it off
/// the async worker threads.
pub fn hash_password(p: &Password) -> Result<String> {
    hash_unchecked(&p.0)
}

/// Hashes without the policy check: for upgrading a password that an older hash accepted (the
/// original's rules were not always today's).
pub fn hash_unchecked(plain: &str) -> Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(Error::internal)?;
    hasher()
        .hash_password(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// Checks `plain` against an argon2 or bcrypt hash. An unreadable hash never matches. CPU-heavy.
pub fn verify_password(plain: &str, stored: &str) -> PasswordCheck {
    if plain.len() > MAX_PASSWORD_BYTES {
        return PasswordCheck::Mismatch;
    }
    if is_bcrypt(stored) {
        return match bcrypt::verify(plain, stored) {
            Ok(true) => PasswordCheck::MatchNeedsRehash,
            _ => PasswordCheck::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return PasswordCheck::Mismatch;
    };
    let Ok(alg) = Algorithm::try_from(parsed.algorithm) else {
        return PasswordCheck::Mismatch;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return PasswordCheck::Mismatch;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return PasswordCheck::Mismatch;
    };
    // Verify with the parameters the hash was made with, then compare them with today's.
    let verifier = Argon2::new(alg, version, params.clone());
    if verifier.verify_password(plain.as_bytes(), &parsed).is_err() {
        return PasswordCheck::Mismatch;
    }
    let current = Params::default();
    let weaker = alg != Algorithm::Argon2id
        || version != Version::V0x13
        || params.m_cost() < current.m_cost()
        || params.t_cost() < current.t_cost();
    if weaker {
        PasswordCheck::MatchNeedsRehash
    } else {
        PasswordCheck::Match
    }
}

/// Spends about as long as a real verification, so an unknown email answers as slowly as a wrong
/// password.
pub fn verify_dummy(plain: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        Password::parse("Dummy-password-1")
            .and_then(|p| hash_password(&p))
            .ok()
    });
    if let Some(h) = dummy {
        let _ = verify_password(plain, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        for bad in ["Short1", "alllower1", "ALLUPPER1", "NoDigitsHere", ""] {
            let e = Password::parse(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { field, .. } if field == "password"),
                "{bad}: {e:?}"
            );
        }
        assert!(Password::parse(&format!("Aa1{}", "x".repeat(300))).is_err());
        assert!(Password::parse("Passw0rd").is_ok());
        assert!(Password::parse("Ünïcode-Pässw0rd").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("Passw0rd").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn argon2_round_trip() {
        let p = Password::parse("Passw0rd").unwrap();
        let h = hash_password(&p).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify_password("Passw0rd", &h), PasswordCheck::Match);
        assert_eq!(verify_password("Passw0rD", &h), PasswordCheck::Mismatch);
        assert_ne!(hash_password(&p).unwrap(), h, "salted");
    }

    #[test]
    fn bcrypt_hashes_of_the_original_match_and_ask_for_a_rehash() {
        let h = bcrypt::hash("Passw0rd", 4).unwrap();
        assert!(h.starts_with("$2b$04$"));
        assert_eq!(
            verify_password("Passw0rd", &h),
            PasswordCheck::MatchNeedsRehash
        );
        assert_eq!(verify_password("passw0rd", &h), PasswordCheck::Mismatch);
        let a = h.replacen("$2b$", "$2a$", 1);
        assert_eq!(
            verify_password("Passw0rd", &a),
            PasswordCheck::MatchNeedsRehash
        );
    }

    #[test]
    fn weak_argon2_parameters_ask_for_a_rehash() {
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"Passw0rd", &salt)
        .unwrap()
        .to_string();
        assert_eq!(
            verify_password("Passw0rd", &weak),
            PasswordCheck::MatchNeedsRehash
        );
        assert_eq!(verify_password("nope", &weak), PasswordCheck::Mismatch);
    }

    #[test]
    fn garbage_hashes_never_match() {
        for h in ["", "plain", "$argon2id$broken", "$2b$99$xx"] {
            assert_eq!(verify_password("Passw0rd", h), PasswordCheck::Mismatch);
        }
    }
}
