//! Timestamps with MongoDB's millisecond precision and one fixed text form.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A UTC instant, truncated to milliseconds. Its text form (`2026-11-25T12:00:00.000Z`) has a fixed
/// width, so text order equals time order in stores that keep it as a string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_millis(Utc::now().timestamp_millis())
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(
            Utc.timestamp_millis_opt(ms)
                .single()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        )
    }

    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// The canonical text form, the one every adapter stores and compares.
    pub fn to_canonical(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Accepts any RFC 3339 instant; years outside 0000-9999 are refused so text order holds.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let dt = DateTime::parse_from_rfc3339(s)
            .map_err(|_| Error::invalid("date", "must be an RFC 3339 timestamp"))?;
        let ms = dt.timestamp_millis();
        let ts = Self::from_millis(ms);
        if !(0..=9999).contains(&chrono::Datelike::year(&ts.0)) {
            return Err(Error::invalid("date", "year must be between 0 and 9999"));
        }
        Ok(ts)
    }

    pub fn plus_seconds(&self, secs: i64) -> Self {
        Self::from_millis(self.millis().saturating_add(secs.saturating_mul(1000)))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Self::from_millis(dt.timestamp_millis())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_canonical())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_canonical())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where "now" comes from, so tests can pin it.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told: simulations, tests and replay.
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(std::sync::atomic::AtomicI64::new(t.millis()))
    }
    pub fn set(&self, t: Timestamp) {
        self.0
            .store(t.millis(), std::sync::atomic::Ordering::SeqCst);
    }
    pub fn advance_seconds(&self, secs: i64) {
        self.0.fetch_add(
            secs.saturating_mul(1000),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_fixed_width_and_ordered() {
        let a = Timestamp::parse("2024-01-02T03:04:05Z").unwrap();
        let b = Timestamp::parse("2024-01-02T03:04:05.5+00:00").unwrap();
        assert_eq!(a.to_canonical(), "2024-01-02T03:04:05.000Z");
        assert_eq!(b.to_canonical(), "2024-01-02T03:04:05.500Z");
        assert!(a.to_canonical() < b.to_canonical());
        let c = Timestamp::parse("2024-01-02T05:04:05+02:00").unwrap();
        assert_eq!(c, a);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2024-13-01T00:00:00Z").is_err());
    }
}
