//! When a delay or a wait ends. Times of day are UTC (the original used server time).

use chrono::{Datelike, Duration, NaiveTime, TimeZone, Utc};

use crm_core::Timestamp;

use super::model::StepConfig;
use super::validate::parse_hhmm;

/// Seconds in one `unit` (minutes, hours, days, weeks); days when absent or unknown.
pub fn unit_secs(unit: Option<&str>) -> i64 {
    match unit {
        Some("minutes") => 60,
        Some("hours") => 3600,
        Some("weeks") => 7 * 86_400,
        _ => 86_400,
    }
}

/// `value` units, at least one second; one unit when absent.
pub fn span_secs(value: Option<f64>, unit: Option<&str>) -> i64 {
    let v = value.filter(|v| v.is_finite() && *v > 0.0).unwrap_or(1.0);
    ((v * unit_secs(unit) as f64).round() as i64).max(1)
}

fn at(t: chrono::DateTime<Utc>) -> Timestamp {
    Timestamp::from_millis(t.timestamp_millis())
}

/// When a delay step started at `now` ends (spec §5: duration, until_date, until_time HH:MM
/// today else tomorrow, until_weekday next such day at 09:00 with the same day meaning a week).
pub fn resume_at(c: &StepConfig, now: Timestamp) -> Timestamp {
    let dt = now.datetime();
    match c.delay_type.as_deref().unwrap_or("duration") {
        "until_date" => match c.delay_date {
            Some(d) if d.millis() > now.millis() => d,
            _ => now,
        },
        "until_time" => {
            let (h, m) = c
                .delay_time
                .as_deref()
                .and_then(parse_hhmm)
                .unwrap_or((9, 0));
            let time = NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
            let today = Utc.from_utc_datetime(&dt.date_naive().and_time(time));
            if today > dt {
                at(today)
            } else {
                at(today + Duration::days(1))
            }
        }
        "until_weekday" => {
            let today = i64::from(dt.weekday().num_days_from_sunday());
            let ahead = c
                .delay_weekdays
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|d| match (i64::from(*d) - today).rem_euclid(7) {
                    0 => 7,
                    n => n,
                })
                .min()
                .unwrap_or(7);
            let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN);
            let day = dt.date_naive() + Duration::days(ahead);
            at(Utc.from_utc_datetime(&day.and_time(nine)))
        }
        _ => now.plus_seconds(span_secs(c.delay_value, c.delay_unit.as_deref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: serde_json::Value) -> StepConfig {
        serde_json::from_value(v).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn delays() {
        // 2026-11-25 is a Wednesday.
        let now = ts("2026-11-25T10:30:00.000Z");
        let c =
            cfg(serde_json::json!({"delayType": "duration", "delayValue": 3, "delayUnit": "days"}));
        assert_eq!(resume_at(&c, now), ts("2026-11-28T10:30:00.000Z"));
        let c = cfg(serde_json::json!({"delayValue": 90, "delayUnit": "minutes"}));
        assert_eq!(resume_at(&c, now), ts("2026-11-25T12:00:00.000Z"));
        assert_eq!(
            resume_at(&cfg(serde_json::json!({})), now),
            ts("2026-11-26T10:30:00.000Z")
        );
        let c = cfg(serde_json::json!({"delayType": "until_time", "delayTime": "11:00"}));
        assert_eq!(resume_at(&c, now), ts("2026-11-25T11:00:00.000Z"));
        let c = cfg(serde_json::json!({"delayType": "until_time", "delayTime": "08:15"}));
        assert_eq!(resume_at(&c, now), ts("2026-11-26T08:15:00.000Z"));
        let c = cfg(serde_json::json!({"delayType": "until_weekday", "delayWeekdays": [3]}));
        assert_eq!(resume_at(&c, now), ts("2026-12-02T09:00:00.000Z"));
        let c = cfg(serde_json::json!({"delayType": "until_weekday", "delayWeekdays": [1, 5]}));
        assert_eq!(resume_at(&c, now), ts("2026-11-27T09:00:00.000Z"));
        let c = cfg(
            serde_json::json!({"delayType": "until_date", "delayDate": "2026-12-01T00:00:00Z"}),
        );
        assert_eq!(resume_at(&c, now), ts("2026-12-01T00:00:00.000Z"));
        let c = cfg(
            serde_json::json!({"delayType": "until_date", "delayDate": "2020-01-01T00:00:00Z"}),
        );
        assert_eq!(resume_at(&c, now), now);
    }
}
