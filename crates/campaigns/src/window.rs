//! Sending windows: a daily "HH:MM" to "HH:MM" span in an IANA timezone, weekends optional. A
//! send that falls outside is moved to the next opening, never dropped.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crm_core::{Error, Result, Timestamp};

/// A wall-clock time of day, "HH:MM" (24 hours).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hhmm(NaiveTime);

impl Hhmm {
    pub fn new(h: u32, m: u32) -> Option<Self> {
        NaiveTime::from_hms_opt(h, m, 0).map(Self)
    }
    pub fn time(&self) -> NaiveTime {
        self.0
    }
}

impl FromStr for Hhmm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a time of day \"HH:MM\"");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        Self::new(h, m).ok_or_else(bad)
    }
}

impl fmt::Display for Hhmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

impl fmt::Debug for Hhmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hhmm({self})")
    }
}

impl Serialize for Hhmm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hhmm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An IANA timezone name ("Europe/Oslo", "UTC"), checked against the tz database.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    pub fn utc() -> Self {
        Self(Tz::UTC)
    }
    pub fn tz(&self) -> Tz {
        self.0
    }
}

impl Default for TimeZoneName {
    fn default() -> Self {
        Self::utc()
    }
}

impl FromStr for TimeZoneName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<Tz>()
            .map(Self)
            .map_err(|_| format!("`{s}` is not an IANA timezone"))
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// When sends may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub timezone: TimeZoneName,
    /// First minute sends may go out, local time.
    pub start: Hhmm,
    /// Sends stop at this minute (exclusive); before `start` means the window runs past
    /// midnight.
    pub end: Hhmm,
    pub weekends: bool,
}

impl SendWindow {
    /// A window open all day, every day.
    pub fn always() -> Self {
        let midnight = Hhmm(NaiveTime::MIN);
        Self {
            timezone: TimeZoneName::utc(),
            start: midnight,
            end: midnight,
            weekends: true,
        }
    }

    fn all_day(&self) -> bool {
        self.start == self.end
    }

    fn day_allowed(&self, d: NaiveDate) -> bool {
        self.weekends || !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The first instant at or after `at` inside the window: `at` itself when it is open.
    pub fn next_opening(&self, at: Timestamp) -> Result<Timestamp> {
        let tz = self.timezone.tz();
        let local = at.datetime().with_timezone(&tz);
        let today = local.date_naive();
        let now = local.time();
        // An overnight window's early part belongs to the previous day's opening.
        if !self.all_day() && self.end < self.start && now < self.end.time() {
            let yesterday = today - Duration::days(1);
            if self.day_allowed(yesterday) {
                return Ok(at);
            }
        }
        for offset in 0..=8 {
            let day = today + Duration::days(offset);
            if !self.day_allowed(day) {
                continue;
            }
            if offset == 0 {
                let open = if self.all_day() {
                    true
                } else if self.start < self.end {
                    now >= self.start.time() && now < self.end.time()
                } else {
                    now >= self.start.time()
                };
                if open {
                    return Ok(at);
                }
                if now >= self.start.time() && !self.all_day() {
                    // Today's window is over.
                    continue;
                }
            }
            let start = if self.all_day() {
                NaiveTime::MIN
            } else {
                self.start.time()
            };
            return Ok(local_instant(tz, day.and_time(start)));
        }
        Err(Error::internal("a sending window never opens"))
    }

    /// Whether `at` is inside the window.
    pub fn is_open(&self, at: Timestamp) -> Result<bool> {
        Ok(self.next_opening(at)? == at)
    }
}

/// The instant a local wall-clock time names; a time skipped by a DST change moves forward to
/// the first instant after the gap.
fn local_instant(tz: Tz, t: chrono::NaiveDateTime) -> Timestamp {
    match tz.from_local_datetime(&t) {
        LocalResult::Single(dt) => dt.with_timezone(&Utc).into(),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc).into(),
        LocalResult::None => {
            let mut probe = t;
            for _ in 0..240 {
                probe += Duration::minutes(1);
                if let Some(dt) = tz.from_local_datetime(&probe).earliest() {
                    return dt.with_timezone(&Utc).into();
                }
            }
            Utc.from_utc_datetime(&t).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn window(tz: &str, start: &str, end: &str, weekends: bool) -> SendWindow {
        SendWindow {
            timezone: tz.parse().unwrap(),
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
            weekends,
        }
    }

    #[test]
    fn hhmm_parses_only_times_of_day() {
        assert_eq!("09:00".parse::<Hhmm>().unwrap().to_string(), "09:00");
        assert_eq!("9:05".parse::<Hhmm>().unwrap().to_string(), "09:05");
        for bad in ["24:00", "12:60", "12", "ab:cd", "12:5", "", "-1:00"] {
            assert!(bad.parse::<Hhmm>().is_err(), "{bad}");
        }
        assert!("Mars/Olympus".parse::<TimeZoneName>().is_err());
    }

    #[test]
    fn inside_the_window_sends_now() {
        let w = window("UTC", "09:00", "17:00", false);
        // Wednesday.
        let at = ts("2026-11-25T10:30:00Z");
        assert_eq!(w.next_opening(at).unwrap(), at);
        assert!(w.is_open(at).unwrap());
        assert!(
            !w.is_open(ts("2026-11-25T17:00:00Z")).unwrap(),
            "end is exclusive"
        );
    }

    #[test]
    fn evening_moves_to_the_next_morning() {
        let w = window("UTC", "09:00", "17:00", false);
        assert_eq!(
            w.next_opening(ts("2026-11-25T22:00:00Z")).unwrap(),
            ts("2026-11-26T09:00:00Z")
        );
        assert_eq!(
            w.next_opening(ts("2026-11-25T06:00:00Z")).unwrap(),
            ts("2026-11-25T09:00:00Z")
        );
    }

    #[test]
    fn weekends_are_skipped_unless_allowed() {
        let w = window("UTC", "09:00", "17:00", false);
        // Friday evening -> Monday morning.
        assert_eq!(
            w.next_opening(ts("2026-11-27T18:00:00Z")).unwrap(),
            ts("2026-11-30T09:00:00Z")
        );
        // Saturday noon -> Monday.
        assert_eq!(
            w.next_opening(ts("2026-11-28T12:00:00Z")).unwrap(),
            ts("2026-11-30T09:00:00Z")
        );
        let w = window("UTC", "09:00", "17:00", true);
        assert_eq!(
            w.next_opening(ts("2026-11-27T18:00:00Z")).unwrap(),
            ts("2026-11-28T09:00:00Z")
        );
    }

    #[test]
    fn the_window_is_in_its_own_timezone() {
        // 09:00 in New York is 14:00 UTC in November (EST, UTC-5).
        let w = window("America/New_York", "09:00", "17:00", false);
        assert_eq!(
            w.next_opening(ts("2026-11-25T12:00:00Z")).unwrap(),
            ts("2026-11-25T14:00:00Z")
        );
        // 23:30 UTC Wednesday is 18:30 in New York: after hours -> Thursday 09:00 local.
        assert_eq!(
            w.next_opening(ts("2026-11-25T23:30:00Z")).unwrap(),
            ts("2026-11-26T14:00:00Z")
        );
        // Tokyo (UTC+9): Saturday 01:00 local is Friday 16:00 UTC, a weekend there.
        let w = window("Asia/Tokyo", "09:00", "17:00", false);
        assert_eq!(
            w.next_opening(ts("2026-11-27T16:00:00Z")).unwrap(),
            ts("2026-11-30T00:00:00Z")
        );
    }

    #[test]
    fn dst_gaps_move_forward() {
        // Europe/Oslo skips 02:00-03:00 on 2026-03-29.
        let w = window("Europe/Oslo", "02:30", "05:00", true);
        assert_eq!(
            w.next_opening(ts("2026-03-28T23:00:00Z")).unwrap(),
            ts("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn overnight_windows_and_all_day() {
        let w = window("UTC", "22:00", "06:00", true);
        let late = ts("2026-11-25T23:00:00Z");
        assert_eq!(w.next_opening(late).unwrap(), late);
        let early = ts("2026-11-26T05:00:00Z");
        assert_eq!(w.next_opening(early).unwrap(), early);
        assert_eq!(
            w.next_opening(ts("2026-11-26T12:00:00Z")).unwrap(),
            ts("2026-11-26T22:00:00Z")
        );
        let at = ts("2026-11-28T03:00:00Z");
        assert_eq!(SendWindow::always().next_opening(at).unwrap(), at);
    }
}
