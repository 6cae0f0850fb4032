//! Bounded text: parsed once at the edge, so a stored name is never empty or too long.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Trimmed, non-empty text of at most `MAX` characters.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bounded<const MAX: usize>(String);

impl<const MAX: usize> Bounded<MAX> {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if t.chars().count() > MAX {
            return Err(format!("must be at most {MAX} characters"));
        }
        Ok(Self(t.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for Bounded<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for Bounded<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> Serialize for Bounded<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Bounded<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A URL slug: lower-case letters, digits and dashes, 1 to 100 characters (stored lower-cased,
/// as the original's `lowercase: true`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_lowercase();
        let ok = !t.is_empty()
            && t.len() <= 100
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(t))
        } else {
            Err("must be 1 to 100 lower-case letters, digits or dashes".to_owned())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for Slug {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_trims_and_refuses_empty_and_long() {
        assert_eq!(Bounded::<5>::parse("  abc ").unwrap().as_str(), "abc");
        assert!(Bounded::<5>::parse("   ").is_err());
        assert!(Bounded::<5>::parse("abcdef").is_err());
        assert!(
            Bounded::<5>::parse("ééééé").is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn slugs_are_lower_cased_and_restricted() {
        assert_eq!(
            Slug::parse(" Spring-Sale ").unwrap().as_str(),
            "spring-sale"
        );
        assert!(Slug::parse("a b").is_err());
        assert!(Slug::parse("a/b").is_err());
        assert!(Slug::parse("").is_err());
    }
}
