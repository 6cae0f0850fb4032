//! Email addresses as accounts use them: trimmed, lower-cased, and checked for a plausible shape.
//! Unlike the original, any top-level domain of two or more letters is accepted (`.info`, `.online`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";

fn valid_local(local: &str) -> bool {
    (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
}

fn valid_label(l: &str) -> bool {
    (1..=63).contains(&l.len())
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| valid_label(l))
        // Letters only, or an IDNA (punycode) TLD.
        && tld.len() >= 2
        && (tld.chars().all(|c| c.is_ascii_alphabetic()) || tld.starts_with("xn--"))
}

impl Email {
    /// Trims, lower-cases and checks; the error names the field `field`.
    pub fn parse_field(s: &str, field: &str) -> Result<Self> {
        let e = s.trim().to_lowercase();
        let ok = e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(local, domain)| valid_local(local) && valid_domain(domain));
        if ok {
            Ok(Self(e))
        } else {
            Err(Error::invalid(field, "must be a valid email address"))
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_field(s, "email")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.COM ")
                .unwrap()
                .as_str(),
            "ada.lovelace@example.com"
        );
    }

    #[test]
    fn long_tlds_are_fine() {
        for ok in [
            "a@b.info",
            "x+tag@mail.example.online",
            "first_last@sub-domain.co.uk",
            "a@xn--p1ai.xn--p1ai",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@b.c",
            "a@b.c0m",
            "a..b@example.com",
            ".a@example.com",
            "a@-x.com",
            "a@x-.com",
            "a b@example.com",
            "a@b@example.com",
            "a@exa_mple.com",
            "ü@example.com",
        ] {
            let e = Email::parse(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { field, .. } if field == "email"),
                "{bad}"
            );
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
        let e: Email = serde_json::from_str("\"A@B.io\"").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"a@b.io\"");
    }
}
