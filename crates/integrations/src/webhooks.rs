//! Outgoing webhooks (ADR 0023): subscriptions, the `webhooks` event consumer that turns each
//! matching domain event into one `webhook.deliver` job per subscription, the job handler that
//! signs (Standard Webhooks) and posts it, and the delivery log (`webhookdeliveries`).
//!
//! Retries are the job queue's: a non-2xx answer or a transport error fails the attempt, the
//! queue backs off and dead-letters after [`DELIVERY_ATTEMPTS`].

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use automation::handlers::{EventConsumer, JobHandler};
use automation::jobs::{Job, JobId, JobQueue, NewJob};
use crm_core::define_id;
use crm_core::events::{DomainEvent, DomainEventId};
use crm_core::outbound::{HttpCaller, OutboundRequest};
use crm_core::repo::{Entity, Stores, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, f};
use crm_core::{Error, Filter, FindOptions, Result, Timestamp, Update, UserId, WorkspaceId};

/// The job kind of one delivery attempt.
pub const DELIVER_KIND: &str = "webhook.deliver";
/// Attempts before a delivery is dead-lettered (the original's 5).
pub const DELIVERY_ATTEMPTS: u32 = 5;
pub const TIMEOUT_SECS: u64 = 10;
/// How much of a receiver's answer the delivery log keeps.
pub const EXCERPT_CHARS: usize = 500;
/// Delivery log entries are kept 30 days.
pub const DELIVERY_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// The event types a subscription may name: every domain event the core emits.
pub const EVENT_TYPES: &[&str] = &[
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "contact.status_changed",
    "contact.job_changed",
    "company.created",
    "company.updated",
    "company.deleted",
    "deal.created",
    "deal.updated",
    "deal.deleted",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "task.created",
    "task.updated",
    "task.deleted",
    "task.completed",
    "activity.created",
    "activity.updated",
    "activity.deleted",
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
    "form.submitted",
    "score.threshold_crossed",
];

/// The `event` of a test delivery; not subscribable.
pub const TEST_EVENT: &str = "webhook.test";

define_id!(WebhookSubscriptionId);

pub static WEBHOOK_SUBSCRIPTION: EntityDef = EntityDef {
    name: "WebhookSubscription",
    collection: "webhooksubscriptions",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("userId", Id),
        f("url", Text).required(),
        f("events", Texts).required(),
        f("isActive", Bool).required(),
        f("secret", Text),
        f("headers", Object),
        f("retryCount", Number),
        f("lastTriggeredAt", Date),
        f("lastError", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("isActive", Asc)]),
        IndexDef::on(&[("events", Asc)]),
    ],
    text: &[],
};

/// A subscription as stored. The API never answers with `secret` except once, on creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    #[serde(rename = "_id")]
    pub id: WebhookSubscriptionId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
    /// Failed attempts in a row (reset by a success).
    #[serde(default)]
    pub retry_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn yes() -> bool {
    true
}

impl Entity for WebhookSubscription {
    const DEF: &'static EntityDef = &WEBHOOK_SUBSCRIPTION;
}
impl WorkspaceEntity for WebhookSubscription {}

/// Checks a subscription's target and event names (rules beyond its type).
pub fn validate_subscription(url: &str, events: &[String]) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || url.len() > 2048 {
        return Err(Error::invalid("url", "must be an http(s) URL"));
    }
    if events.is_empty() {
        return Err(Error::invalid("events", "name at least one event"));
    }
    if let Some(bad) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Err(Error::invalid(
            "events",
            format!("unknown event `{bad}` (GET /webhooks/events lists them)"),
        ));
    }
    Ok(())
}

/// A new signing secret in the Standard Webhooks form `whsec_<base64 of 24 random bytes>`.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The HMAC key of a secret: the decoded bytes of a `whsec_` secret, else the text itself (the
/// original's free-form secrets).
fn secret_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b| STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, the `webhook-signature` value.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret_key(secret))
        .map_err(|_| Error::internal("webhook secret unusable as an HMAC key"))?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

// ---- Delivery log ----------------------------------------------------------------------------

define_id!(WebhookDeliveryId);

pub static WEBHOOK_DELIVERY: EntityDef = EntityDef {
    name: "WebhookDelivery",
    collection: "webhookdeliveries",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("subscriptionId", Id).required(),
        f("eventId", Id),
        f("event", Text).required(),
        f("messageId", Text).required(),
        f("url", Text).required(),
        f("attempt", Number).required(),
        f("status", Text).required(),
        f("responseStatus", Number),
        f("responseExcerpt", Text),
        f("error", Text),
        f("durationMs", Number).required(),
        f("jobId", Id),
        f("deliveredAt", Date).required(),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("subscriptionId", Asc), ("deliveredAt", Desc)]),
        IndexDef::on(&[("eventId", Asc)]),
        IndexDef::on(&[("status", Asc), ("deliveredAt", Desc)]),
        IndexDef::ttl(&[("deliveredAt", Asc)], DELIVERY_TTL_SECONDS),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Succeeded,
    Failed,
}

/// One attempt to deliver one event to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    #[serde(rename = "_id")]
    pub id: WebhookDeliveryId,
    pub workspace_id: WorkspaceId,
    pub subscription_id: WebhookSubscriptionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<DomainEventId>,
    pub event: String,
    /// The `webhook-id` header: the same for every attempt of one message, so receivers can
    /// drop duplicates.
    pub message_id: String,
    pub url: String,
    pub attempt: u32,
    pub status: DeliveryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    pub delivered_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for WebhookDelivery {
    const DEF: &'static EntityDef = &WEBHOOK_DELIVERY;
}
impl WorkspaceEntity for WebhookDelivery {}

// ---- Jobs ------------------------------------------------------------------------------------

/// What a `webhook.deliver` job carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverPayload {
    pub subscription_id: WebhookSubscriptionId,
    /// The domain event; absent for a test delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<DomainEventId>,
}

/// The job delivering `event` to `sub`. Deduplicated per (event, subscription) unless `replay`
/// names a fresh suffix.
pub fn deliver_job(
    ws: WorkspaceId,
    sub: WebhookSubscriptionId,
    event: Option<DomainEventId>,
    now: Timestamp,
    replay: Option<&str>,
) -> Result<NewJob> {
    let payload = serde_json::to_value(DeliverPayload {
        subscription_id: sub,
        event_id: event,
    })
    .map_err(Error::internal)?;
    let job = NewJob::new(DELIVER_KIND, payload, now)
        .in_workspace(ws)
        .attempts(DELIVERY_ATTEMPTS);
    Ok(match (event, replay) {
        (Some(e), None) => job.dedupe(format!("webhook:{e}:{sub}")),
        (Some(e), Some(r)) => job.dedupe(format!("webhook:{e}:{sub}:replay:{r}")),
        (None, _) => job,
    })
}

/// Enqueues a test delivery of `sub` now; returns the job.
pub async fn enqueue_test(
    queue: &dyn JobQueue,
    scope: &WorkspaceScope,
    sub: WebhookSubscriptionId,
    now: Timestamp,
) -> Result<JobId> {
    scope.repo::<WebhookSubscription>().get(sub).await?;
    queue
        .enqueue(deliver_job(scope.id(), sub, None, now, None)?)
        .await
}

/// Enqueues another delivery of the event of `delivery` (any attempt of any outcome) to `sub`.
pub async fn enqueue_replay(
    queue: &dyn JobQueue,
    scope: &WorkspaceScope,
    sub: WebhookSubscriptionId,
    delivery: WebhookDeliveryId,
    now: Timestamp,
) -> Result<JobId> {
    let d = scope.repo::<WebhookDelivery>().get(delivery).await?;
    if d.subscription_id != sub {
        return Err(Error::NotFound);
    }
    scope.repo::<WebhookSubscription>().get(sub).await?;
    let suffix = crm_core::ObjectId::new().to_hex();
    queue
        .enqueue(deliver_job(
            scope.id(),
            sub,
            d.event_id,
            now,
            Some(&suffix),
        )?)
        .await
}

/// The `webhooks` event consumer: one delivery job per active subscription naming the event.
#[derive(Debug, Clone)]
pub struct WebhookConsumer {
    stores: Stores,
    queue: Arc<dyn JobQueue>,
}

impl WebhookConsumer {
    pub fn new(stores: Stores, queue: Arc<dyn JobQueue>) -> Self {
        Self { stores, queue }
    }
}

#[async_trait]
impl EventConsumer for WebhookConsumer {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn wants(&self, event_type: &str) -> bool {
        EVENT_TYPES.contains(&event_type)
    }

    async fn handle(&self, event: &DomainEvent) -> Result<()> {
        let scope = self.stores.workspace(event.workspace_id);
        let filter = Filter::eq("isActive", true).and(Filter::eq(
            "events",
            Value::String(event.event_type.clone()),
        ));
        let subs = scope
            .repo::<WebhookSubscription>()
            .find(&filter, &FindOptions::default())
            .await?;
        let now = self.stores.clock().now();
        for s in subs {
            // Dedupe keys make a second handling of the same event enqueue nothing.
            self.queue
                .enqueue(deliver_job(
                    event.workspace_id,
                    s.id,
                    Some(event.id),
                    now,
                    None,
                )?)
                .await?;
        }
        Ok(())
    }
}

/// Runs `webhook.deliver` jobs through the outbound HTTP port.
#[derive(Debug, Clone)]
pub struct DeliverHandler {
    stores: Stores,
    http: Arc<dyn HttpCaller>,
}

impl DeliverHandler {
    pub fn new(stores: Stores, http: Arc<dyn HttpCaller>) -> Self {
        Self { stores, http }
    }
}

/// The body the receiver gets: the original's `{event, workspaceId, timestamp, data}` plus the
/// event id and changed paths.
fn body_of(ws: WorkspaceId, event: Option<&DomainEvent>, now: Timestamp) -> Value {
    match event {
        Some(e) => json!({
            "id": e.id,
            "event": e.event_type,
            "workspaceId": ws,
            "timestamp": e.occurred_at,
            "data": match e.record() {
                Some(r) => Value::Object(r.clone()),
                None => Value::Object(e.data.clone()),
            },
            "changed": e.changed,
        }),
        None => json!({
            "event": TEST_EVENT,
            "workspaceId": ws,
            "timestamp": now,
            "data": {"message": "This is a test delivery from Clianta."},
        }),
    }
}

fn excerpt(s: &str) -> String {
    s.chars().take(EXCERPT_CHARS).collect()
}

#[async_trait]
impl JobHandler for DeliverHandler {
    fn kind(&self) -> &'static str {
        DELIVER_KIND
    }

    async fn run(&self, job: &Job) -> Result<()> {
        let ws = job
            .workspace_id
            .ok_or_else(|| Error::internal("webhook job without a workspace"))?;
        let p: DeliverPayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| Error::internal(format!("webhook job payload: {e}")))?;
        let scope = self.stores.workspace(ws);
        let subs = scope.repo::<WebhookSubscription>();
        // A subscription deleted or paused since the event: nothing left to deliver.
        let sub = match subs.get(p.subscription_id).await {
            Ok(s) if s.is_active || p.event_id.is_none() => s,
            Ok(_) | Err(Error::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        let event = match p.event_id {
            Some(id) => match scope.repo::<DomainEvent>().get(id).await {
                Ok(e) => Some(e),
                // Expired from the event log (90 days): nothing to send.
                Err(Error::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            },
            None => None,
        };
        let now = self.stores.clock().now();
        let msg_id = match p.event_id {
            Some(e) => format!("msg_{e}_{}", sub.id),
            None => format!("msg_test_{}", job.id),
        };
        let body =
            serde_json::to_vec(&body_of(ws, event.as_ref(), now)).map_err(Error::internal)?;
        let ts = now.millis() / 1000;
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        for (k, v) in &sub.headers {
            if let Some(v) = v.as_str() {
                headers.push((k.clone(), v.to_owned()));
            }
        }
        headers.push(("webhook-id".to_owned(), msg_id.clone()));
        headers.push(("webhook-timestamp".to_owned(), ts.to_string()));
        if let Some(secret) = sub.secret.as_deref() {
            headers.push((
                "webhook-signature".to_owned(),
                sign(secret, &msg_id, ts, &body)?,
            ));
        }
        let started = Instant::now();
        let answer = self
            .http
            .call(OutboundRequest {
                method: "POST".to_owned(),
                url: sub.url.clone(),
                headers,
                body,
                timeout_secs: TIMEOUT_SECS,
            })
            .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, response_status, response_excerpt, error) = match &answer {
            Ok(r) if (200..300).contains(&r.status) => (
                DeliveryStatus::Succeeded,
                Some(r.status),
                Some(excerpt(&r.body_excerpt)),
                None,
            ),
            Ok(r) => (
                DeliveryStatus::Failed,
                Some(r.status),
                Some(excerpt(&r.body_excerpt)),
                Some(format!("answered {}", r.status)),
            ),
            Err(e) => (DeliveryStatus::Failed, None, None, Some(excerpt(e))),
        };
        scope
            .repo::<WebhookDelivery>()
            .insert(&WebhookDelivery {
                id: WebhookDeliveryId::new(),
                workspace_id: ws,
                subscription_id: sub.id,
                event_id: p.event_id,
                event: event
                    .as_ref()
                    .map_or_else(|| TEST_EVENT.to_owned(), |e| e.event_type.clone()),
                message_id: msg_id,
                url: sub.url.clone(),
                attempt: job.attempts,
                status,
                response_status,
                response_excerpt,
                error: error.clone(),
                duration_ms,
                job_id: Some(job.id),
                delivered_at: now,
                created_at: None,
                updated_at: None,
            })
            .await?;
        let update = match &error {
            None => Update::new()
                .set("lastTriggeredAt", now.to_canonical())
                .set("retryCount", 0)
                .unset("lastError"),
            Some(e) => Update::new()
                .set("lastTriggeredAt", now.to_canonical())
                .inc("retryCount", 1)
                .set("lastError", e.clone()),
        };
        match subs.update(sub.id, &update).await {
            Ok(_) | Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
        match error {
            None => Ok(()),
            Some(e) => Err(Error::Unavailable(format!("webhook delivery failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (standard-webhooks.com).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn subscriptions_name_known_events_and_http_urls() {
        let ev = |s: &[&str]| s.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>();
        assert!(validate_subscription("https://x.test/h", &ev(&["deal.won"])).is_ok());
        assert!(validate_subscription("ftp://x.test", &ev(&["deal.won"])).is_err());
        assert!(validate_subscription("https://x.test", &[]).is_err());
        assert!(validate_subscription("https://x.test", &ev(&["deal.exploded"])).is_err());
        assert!(new_secret().starts_with("whsec_"));
    }
}
