//! Periodic jobs (ADR 0019). Each tick enqueues, for every registered schedule, the job of the
//! period the clock is in, with the dedupe key `cron:<name>:<period start>`: however many
//! processes tick, each period's job is stored once. A period missed while no process ran is
//! not repeated: the next tick enqueues only the current period's job.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

use crm_core::{Error, Result, Timestamp};

use crate::jobs::{DEFAULT_MAX_ATTEMPTS, JobQueue, NewJob};

/// When a periodic job comes due.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so many seconds, periods aligned to the Unix epoch (so every process agrees).
    Every(i64),
    /// A cron expression (UTC; `sec min hour day-of-month month day-of-week [year]`).
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    pub fn every_secs(secs: i64) -> Result<Self> {
        if secs <= 0 {
            return Err(Error::invalid("schedule", "the period must be positive"));
        }
        Ok(Self::Every(secs))
    }

    /// Every day at `hour:minute` UTC.
    pub fn daily_at(hour: u32, minute: u32) -> Result<Self> {
        if hour > 23 || minute > 59 {
            return Err(Error::invalid("schedule", "not a time of day"));
        }
        Self::cron(&format!("0 {minute} {hour} * * *"))
    }

    pub fn cron(expr: &str) -> Result<Self> {
        cron::Schedule::from_str(expr)
            .map(|s| Self::Cron(Box::new(s)))
            .map_err(|e| Error::invalid("schedule", e.to_string()))
    }

    /// The start of the period `now` falls in: the latest due time at or before `now`.
    pub fn period_start(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Every(secs) => {
                let len = secs.saturating_mul(1000);
                Some(Timestamp::from_millis(now.millis().div_euclid(len) * len))
            }
            Self::Cron(s) => {
                let just_after: DateTime<Utc> = now.datetime() + chrono::Duration::milliseconds(1);
                s.after(&just_after).next_back().map(Timestamp::from)
            }
        }
    }
}

/// One registered periodic job.
#[derive(Debug, Clone)]
pub struct Periodic {
    /// Stable: part of every dedupe key, so never rename one.
    pub name: &'static str,
    pub schedule: Schedule,
    /// The job kind it enqueues (a registered handler runs it).
    pub kind: &'static str,
    pub payload: Value,
    pub max_attempts: u32,
}

impl Periodic {
    pub fn new(name: &'static str, schedule: Schedule, kind: &'static str) -> Self {
        Self {
            name,
            schedule,
            kind,
            payload: Value::Null,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }
}

/// The dedupe key of `name`'s job for the period starting at `start`.
pub fn period_key(name: &str, start: Timestamp) -> String {
    format!("cron:{name}:{start}")
}

/// The periodic jobs of a process and the last period each was enqueued for here (so a tick
/// does not ask the store again within a period).
#[derive(Debug, Default)]
pub struct PeriodicSet {
    jobs: Mutex<BTreeMap<&'static str, (Periodic, Option<Timestamp>)>>,
}

impl PeriodicSet {
    /// Registers `p`, replacing an earlier one of the same name.
    pub fn register(&self, p: Periodic) {
        self.jobs.lock().insert(p.name, (p, None));
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.jobs.lock().keys().copied().collect()
    }

    /// Enqueues the current period's job of every schedule not yet enqueued for it here;
    /// returns how many enqueue calls were made.
    pub async fn tick(&self, queue: &Arc<dyn JobQueue>, now: Timestamp) -> Result<u64> {
        let due: Vec<(Periodic, Timestamp)> = self
            .jobs
            .lock()
            .values()
            .filter_map(|(p, last)| {
                let start = p.schedule.period_start(now)?;
                (*last != Some(start)).then(|| (p.clone(), start))
            })
            .collect();
        let mut n = 0;
        for (p, start) in due {
            let job = NewJob::new(p.kind, p.payload.clone(), start)
                .attempts(p.max_attempts)
                .dedupe(period_key(p.name, start));
            queue.enqueue(job).await?;
            n += 1;
            if let Some(entry) = self.jobs.lock().get_mut(p.name) {
                entry.1 = Some(start);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn fixed_periods_align_to_the_epoch() {
        let s = Schedule::every_secs(3600).unwrap();
        assert_eq!(
            s.period_start(ts("2026-11-25T10:59:59.999Z")),
            Some(ts("2026-11-25T10:00:00.000Z"))
        );
        assert_eq!(
            s.period_start(ts("2026-11-25T11:00:00.000Z")),
            Some(ts("2026-11-25T11:00:00.000Z"))
        );
        assert!(Schedule::every_secs(0).is_err());
    }

    #[test]
    fn daily_schedules_start_at_the_time_of_day() {
        let s = Schedule::daily_at(3, 30).unwrap();
        assert_eq!(
            s.period_start(ts("2026-11-25T03:29:59.000Z")),
            Some(ts("2026-11-24T03:30:00.000Z"))
        );
        assert_eq!(
            s.period_start(ts("2026-11-25T03:30:00.000Z")),
            Some(ts("2026-11-25T03:30:00.000Z"))
        );
        assert_eq!(
            s.period_start(ts("2026-11-25T23:00:00.000Z")),
            Some(ts("2026-11-25T03:30:00.000Z"))
        );
        assert!(Schedule::daily_at(24, 0).is_err());
        assert!(Schedule::cron("not cron").is_err());
        let weekly = Schedule::cron("0 0 6 * * Mon").unwrap();
        assert_eq!(
            weekly.period_start(ts("2026-11-25T12:00:00.000Z")),
            Some(ts("2026-11-23T06:00:00.000Z"))
        );
    }
}
