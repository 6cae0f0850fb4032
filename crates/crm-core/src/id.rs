//! Identifiers: 12-byte values laid out like MongoDB ObjectIds, shown as 24 hex digits.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A 12-byte id, byte-compatible with a MongoDB ObjectId, so documents written by the original
/// Node backend keep their `_id`s.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; 12]);

fn process_unique() -> &'static [u8; 5] {
    static UNIQUE: OnceLock<[u8; 5]> = OnceLock::new();
    UNIQUE.get_or_init(rand::random)
}

fn counter() -> &'static AtomicU32 {
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    COUNTER.get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff))
}

impl ObjectId {
    /// A new id: seconds since the epoch, a per-process random value and a counter, as MongoDB does.
    pub fn new() -> Self {
        let secs = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
        let count = counter().fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&secs.to_be_bytes());
        b[4..9].copy_from_slice(process_unique());
        b[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Self(b)
    }

    pub const fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub const fn bytes(&self) -> [u8; 12] {
        self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 24 hex digits (either case).
    pub fn parse_str(s: &str) -> Result<Self, Error> {
        let mut b = [0u8; 12];
        if s.len() != 24 || hex::decode_to_slice(s, &mut b).is_err() {
            return Err(Error::invalid("id", "must be 24 hexadecimal characters"));
        }
        Ok(Self(b))
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl FromStr for ObjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse_str(s)
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_str(&s).map_err(serde::de::Error::custom)
    }
}

/// Declares a typed id: an `ObjectId` that cannot be mixed up with another entity's id.
#[macro_export]
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $crate::id::ObjectId);

        impl $name {
            pub fn new() -> Self {
                Self($crate::id::ObjectId::new())
            }
            pub fn object_id(&self) -> $crate::id::ObjectId {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::id::ObjectId::parse_str(s).map(Self)
            }
        }

        impl From<$crate::id::ObjectId> for $name {
            fn from(id: $crate::id::ObjectId) -> Self {
                Self(id)
            }
        }

        impl From<$name> for $crate::id::ObjectId {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

define_id!(
    /// A workspace (the original's `Project`). Every tenant-scoped record carries one.
    WorkspaceId
);
define_id!(UserId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_ordering() {
        let a = ObjectId::new();
        let b = ObjectId::new();
        assert!(a < b, "ids from one process increase");
        assert_eq!(ObjectId::parse_str(&a.to_hex()).unwrap(), a);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!("\"{}\"", a.to_hex())
        );
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(ObjectId::parse_str("xyz").is_err());
        assert!(ObjectId::parse_str("zz0000000000000000000000").is_err());
        assert!(ObjectId::parse_str("507f1f77bcf86cd79943901").is_err());
        assert!(ObjectId::parse_str("507F1F77BCF86CD799439011").is_ok());
    }
}
