//! Inbox warm-up (`warmupactivities`, global like the original's): sending accounts exchange a
//! few mails an hour, ramping up to a daily target. Which accounts warm up comes from a
//! [`WarmupPool`] (the email-account owner implements it); mails go through a
//! [`WarmupSender`], a logging one by default, so nothing real is sent unless configured.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crm_core::define_id;
use crm_core::repo::{Entity, GlobalEntity, Stores};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crm_core::{Filter, ObjectId, Result, Timestamp};
use serde_json::json;

define_id!(WarmupActivityId);

pub static WARMUP_ACTIVITY: EntityDef = EntityDef {
    name: "WarmupActivity",
    collection: "warmupactivities",
    tenancy: Tenancy::Global,
    timestamps: false,
    fields: &[
        f("fromAccountId", Id).required(),
        f("toAccountId", Id).required(),
        f("subject", Text),
        f("messageId", Text),
        f("status", Text),
        f("sentAt", Date).required(),
        f("openedAt", Date),
        f("repliedAt", Date),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("fromAccountId", Asc)]),
        IndexDef::on(&[("toAccountId", Asc)]),
        IndexDef::on(&[("sentAt", Asc)]),
        IndexDef::on(&[("fromAccountId", Asc), ("sentAt", Desc)]),
        IndexDef::on(&[("toAccountId", Asc), ("sentAt", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmupActivity {
    #[serde(rename = "_id")]
    pub id: WarmupActivityId,
    pub from_account_id: ObjectId,
    pub to_account_id: ObjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `warmup-<from>-<to>-<hour>-<n>`: one mail per slot however often the job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub sent_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<Timestamp>,
}

impl Entity for WarmupActivity {
    const DEF: &'static EntityDef = &WARMUP_ACTIVITY;
}
impl GlobalEntity for WarmupActivity {}

/// A sending account in warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupAccount {
    pub id: ObjectId,
    pub email: String,
    /// Mails a day once warmed up.
    pub daily_target: u32,
    /// When warm-up started; the daily volume ramps up over the first weeks.
    pub started_at: Timestamp,
}

/// Where the accounts in warm-up come from.
#[async_trait]
pub trait WarmupPool: Send + Sync + Debug {
    async fn accounts(&self) -> Result<Vec<WarmupAccount>>;
}

/// No accounts: the default until an email-account store is wired in.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAccounts;

#[async_trait]
impl WarmupPool for NoAccounts {
    async fn accounts(&self) -> Result<Vec<WarmupAccount>> {
        Ok(Vec::new())
    }
}

/// Delivers one warm-up mail.
#[async_trait]
pub trait WarmupSender: Send + Sync + Debug {
    async fn send(&self, from: &WarmupAccount, to: &WarmupAccount, subject: &str) -> Result<()>;
}

/// Logs instead of sending.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWarmupSender;

#[async_trait]
impl WarmupSender for LogWarmupSender {
    async fn send(&self, from: &WarmupAccount, to: &WarmupAccount, subject: &str) -> Result<()> {
        tracing::info!(from = %from.email, to = %to.email, subject, "warm-up mail not sent (log transport)");
        Ok(())
    }
}

/// Mails a day after `days` of warm-up: 2 on day 0, +2 a day, capped at the target.
pub fn daily_volume(target: u32, days: i64) -> u32 {
    let ramp = 2 + 2 * days.max(0);
    u32::try_from(ramp).unwrap_or(u32::MAX).min(target)
}

/// Mails due this hour so the day's volume is spread over 24 hours.
pub fn hourly_slots(daily: u32, hour: u32) -> u32 {
    // Slots of hour h: floor(daily*(h+1)/24) - floor(daily*h/24).
    daily * (hour + 1) / 24 - daily * hour / 24
}

/// One hourly round: each account sends its slots of the hour to the next accounts in the pool
/// (round robin). Returns how many mails were recorded.
pub async fn run_hour(
    stores: &Stores,
    pool: &dyn WarmupPool,
    sender: &dyn WarmupSender,
    now: Timestamp,
) -> Result<u64> {
    let mut accounts = pool.accounts().await?;
    if accounts.len() < 2 {
        return Ok(0);
    }
    accounts.sort_by_key(|a| a.id);
    let hour_start = Timestamp::from_millis(now.millis() - now.millis().rem_euclid(3_600_000));
    let hour_of_day = u32::try_from(now.millis().rem_euclid(86_400_000) / 3_600_000).unwrap_or(0);
    let repo = stores.global::<WarmupActivity>();
    let mut sent = 0;
    for (i, from) in accounts.iter().enumerate() {
        let days = (now.millis() - from.started_at.millis()) / 86_400_000;
        let slots = hourly_slots(daily_volume(from.daily_target, days), hour_of_day);
        for n in 0..slots {
            let to = &accounts[(i + 1 + n as usize) % accounts.len()];
            if to.id == from.id {
                continue;
            }
            let message_id = format!(
                "warmup-{}-{}-{}-{n}",
                from.id.to_hex(),
                to.id.to_hex(),
                hour_start.millis()
            );
            if repo
                .count(&Filter::eq("messageId", json!(message_id)))
                .await?
                > 0
            {
                continue;
            }
            let subject = format!("Quick note {}", n + 1);
            sender.send(from, to, &subject).await?;
            repo.insert(&WarmupActivity {
                id: WarmupActivityId::new(),
                from_account_id: from.id,
                to_account_id: to.id,
                subject: Some(subject),
                message_id: Some(message_id),
                status: Some("sent".into()),
                sent_at: now,
                opened_at: None,
                replied_at: None,
            })
            .await?;
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_and_spread() {
        assert_eq!(daily_volume(40, 0), 2);
        assert_eq!(daily_volume(40, 5), 12);
        assert_eq!(daily_volume(40, 100), 40);
        let day: u32 = (0..24).map(|h| hourly_slots(40, h)).sum();
        assert_eq!(day, 40);
        let day: u32 = (0..24).map(|h| hourly_slots(5, h)).sum();
        assert_eq!(day, 5);
    }
}
