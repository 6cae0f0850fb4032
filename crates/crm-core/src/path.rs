//! Field paths, parsed once so no adapter ever sees an operator or an empty segment.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A dotted path into a document (`email`, `address.city`, `customFields.tier`).
/// Segments are non-empty, do not start with `$`, and hold only letters, digits, `_` and `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > 200 {
            return Err(Error::invalid(s, "field path must be 1 to 200 characters"));
        }
        for seg in s.split('.') {
            let ok = !seg.is_empty()
                && !seg.starts_with('$')
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(Error::invalid(s, "not a valid field path"));
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// For paths written in code; they are checked by tests, not at run time.
    pub fn from_static(s: &'static str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// True when one path is the other or lies inside it (`a` and `a.b`).
    pub fn overlaps(&self, other: &FieldPath) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        a == b
            || (a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'.')
            || (b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'.')
    }

    pub fn is_id(&self) -> bool {
        self.0 == crate::schema::ID_FIELD
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<&'static str> for FieldPath {
    fn from(s: &'static str) -> Self {
        Self::from_static(s)
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert!(FieldPath::parse("customFields.tier").is_ok());
        for bad in ["", "a..b", "$where", "a.$gt", "a b", ".a", "a."] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap() {
        let a = FieldPath::from("a");
        assert!(a.overlaps(&"a.b".into()));
        assert!(!a.overlaps(&"ab".into()));
        assert!(FieldPath::from("a.b").overlaps(&a));
    }
}
