//! Website tracking: raw events (TrackingEvent), the anonymous visitor they come from (Visitor),
//! reverse-IP company visits (CompanyVisitor), and the public ingestion rule: a batch of events
//! from one visitor, optionally identifying them, which stitches the visitor to a contact.

use crm_core::accounts::Email;
use crm_core::define_id;
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::entities::project::Project;
use crm_core::events::DomainEvent;
use crm_core::repo::{Entity, Stores, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, UniqueKey, f};
use crm_core::services::contacts::{self, NewContact, WriteCtx};
use crm_core::{Error, Filter, FindOptions, Result, Timestamp, Update, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ws;

define_id!(VisitorRecordId);
define_id!(CompanyVisitorId);
define_id!(TrackingEventId);

/// Most events one tracking request may carry.
pub const MAX_EVENTS: usize = 100;
/// Longest visitor, session id and event name accepted.
pub const MAX_ID_CHARS: usize = 200;
/// Longest URL or referrer accepted.
pub const MAX_URL_CHARS: usize = 2048;

// ---- TrackingEvent ----

pub static TRACKING_EVENT: EntityDef = EntityDef {
    name: "TrackingEvent",
    collection: "trackingevents",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("visitorId", Text).required(),
        f("sessionId", Text).required(),
        f("eventType", Text).required(),
        f("eventName", Text).required(),
        f("url", Text).required(),
        f("contactId", Id),
        f("referrer", Text),
        f("utmSource", Text),
        f("utmMedium", Text),
        f("utmCampaign", Text),
        f("utmTerm", Text),
        f("utmContent", Text),
        f("properties", Any),
        f("device", Object),
        f("device.userAgent", Text),
        f("device.ip", Text),
    ],
    unique: &[],
    indexes: &[
        IndexDef::on(&[("visitorId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("contactId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("eventType", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("sessionId", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    ButtonClick,
    FormView,
    FormSubmit,
    ScrollDepth,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// UTM parameters of a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Utm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackingEvent {
    #[serde(rename = "_id")]
    pub id: TrackingEventId,
    pub workspace_id: WorkspaceId,
    pub visitor_id: String,
    pub session_id: String,
    pub event_type: EventType,
    pub event_name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(flatten)]
    pub utm: Utm,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub device: Device,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for TrackingEvent {
    const DEF: &'static EntityDef = &TRACKING_EVENT;
}
impl WorkspaceEntity for TrackingEvent {}

// ---- Visitor ----

pub static VISITOR: EntityDef = EntityDef {
    name: "Visitor",
    collection: "visitors",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("visitorId", Text).required(),
        f("contactId", Id),
        f("firstSeen", Date),
        f("lastSeen", Date),
        f("firstSource", Text),
        f("firstUtmSource", Text),
        f("firstUtmMedium", Text),
        f("firstUtmCampaign", Text),
        f("lastSource", Text),
        f("lastUtmSource", Text),
        f("lastUtmMedium", Text),
        f("lastUtmCampaign", Text),
        f("lastSessionId", Text),
        f("websites", Texts),
        f("sessionCount", Number),
        f("pageViewCount", Number),
        f("eventCount", Number),
        f("devices", Array),
    ],
    // The original's key is global; two workspaces tracking one browser must not collide, so
    // here it is per workspace (ADR 0024).
    unique: &[UniqueKey {
        name: "visitorId",
        fields: &["visitorId"],
    }],
    indexes: &[
        IndexDef::on(&[("contactId", Asc)]),
        IndexDef::on(&[("lastSeen", Desc)]),
        IndexDef::on(&[("sessionCount", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visitor {
    #[serde(rename = "_id")]
    pub id: VisitorRecordId,
    pub workspace_id: WorkspaceId,
    pub visitor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_session_id: Option<String>,
    #[serde(default)]
    pub websites: Vec<String>,
    #[serde(default)]
    pub session_count: u64,
    #[serde(default)]
    pub page_view_count: u64,
    #[serde(default)]
    pub event_count: u64,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for Visitor {
    const DEF: &'static EntityDef = &VISITOR;
}
impl WorkspaceEntity for Visitor {}

// ---- CompanyVisitor ----

pub static COMPANY_VISITOR: EntityDef = EntityDef {
    name: "CompanyVisitor",
    collection: "companyvisitors",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("ipAddress", Text).required(),
        f("domain", Text),
        f("companyName", Text),
        f("industry", Text),
        f("employeeCount", Number),
        f("location", Object),
        f("isTargetAccount", Bool),
        f("accountScore", Number),
        f("companyId", Id),
        f("engagement", Object),
        f("engagement.totalPageViews", Number),
        f("engagement.totalSessions", Number),
        f("engagement.firstSeenAt", Date),
        f("engagement.lastSeenAt", Date),
        f("visitorIds", Texts),
    ],
    unique: &[UniqueKey {
        name: "ipAddress",
        fields: &["ipAddress"],
    }],
    indexes: &[
        IndexDef::on(&[("domain", Asc)]),
        IndexDef::on(&[("companyName", Asc)]),
        IndexDef::on(&[("isTargetAccount", Asc)]),
        IndexDef::on(&[("isTargetAccount", Asc), ("engagement.lastSeenAt", Desc)]),
        IndexDef::on(&[("accountScore", Desc)]),
        IndexDef::on(&[("engagement.totalPageViews", Desc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Engagement {
    #[serde(default)]
    pub total_page_views: u64,
    #[serde(default)]
    pub total_sessions: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyVisitor {
    #[serde(rename = "_id")]
    pub id: CompanyVisitorId,
    pub workspace_id: WorkspaceId,
    pub ip_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_count: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Map<String, Value>>,
    #[serde(default)]
    pub is_target_account: bool,
    #[serde(default)]
    pub account_score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<crm_core::entities::company::CompanyId>,
    #[serde(default)]
    pub engagement: Engagement,
    #[serde(default)]
    pub visitor_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for CompanyVisitor {
    const DEF: &'static EntityDef = &COMPANY_VISITOR;
}
impl WorkspaceEntity for CompanyVisitor {}

// ---- ingestion ----

/// One event as the tracking script sends it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingEvent {
    pub event_type: EventType,
    pub event_name: String,
    pub url: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub referrer: Option<String>,
    #[serde(flatten)]
    pub utm: Utm,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// Who the visitor says they are (a form fill, a login).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identify {
    pub email: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
}

/// A tracking request: one visitor's batch of events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackBatch {
    pub visitor_id: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub events: Vec<IncomingEvent>,
    #[serde(default)]
    pub identify: Option<Identify>,
    #[serde(default)]
    pub device: Device,
}

/// What a tracking request did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackResult {
    pub stored: usize,
    pub visitor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
}

fn bounded(s: &str, field: &str, max: usize, required: bool) -> Result<()> {
    if required && s.trim().is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

impl TrackBatch {
    /// Bounds: 1 to [`MAX_EVENTS`] events unless the batch only identifies; ids, names and
    /// URLs bounded. Content is stored as sent (no escaping: it is data, rendered by clients).
    pub fn check(&self) -> Result<()> {
        bounded(&self.visitor_id, "visitorId", MAX_ID_CHARS, true)?;
        if self.events.len() > MAX_EVENTS {
            return Err(Error::invalid(
                "events",
                format!("at most {MAX_EVENTS} events per request"),
            ));
        }
        if self.events.is_empty() && self.identify.is_none() {
            return Err(Error::invalid("events", "send at least one event"));
        }
        if let Some(s) = &self.session_id {
            bounded(s, "sessionId", MAX_ID_CHARS, false)?;
        }
        for (i, e) in self.events.iter().enumerate() {
            bounded(
                &e.event_name,
                &format!("events[{i}].eventName"),
                MAX_ID_CHARS,
                true,
            )?;
            bounded(&e.url, &format!("events[{i}].url"), MAX_URL_CHARS, true)?;
            if let Some(r) = &e.referrer {
                bounded(r, &format!("events[{i}].referrer"), MAX_URL_CHARS, false)?;
            }
            if let Some(s) = &e.session_id {
                bounded(s, &format!("events[{i}].sessionId"), MAX_ID_CHARS, false)?;
            }
        }
        Ok(())
    }
}

/// Why a workspace refuses tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    Origin,
}

/// The original's allow-list (`middleware/secureTracking.ts`): tracking off refuses all; an
/// empty list or `*` allows every origin; otherwise the request's host must equal an entry or be
/// a subdomain of a `*.domain` entry. A request without an origin passes only an open list.
pub fn tracking_allowed(
    p: &Project,
    origin_host: Option<&str>,
) -> std::result::Result<(), Refusal> {
    if !p.tracking_enabled {
        return Err(Refusal::Disabled);
    }
    if p.allowed_domains.is_empty() || p.allowed_domains.iter().any(|d| d == "*") {
        return Ok(());
    }
    let Some(host) = origin_host.map(str::to_ascii_lowercase) else {
        return Err(Refusal::Origin);
    };
    let ok = p.allowed_domains.iter().any(|d| {
        let d = d.trim().to_ascii_lowercase();
        match d.strip_prefix("*.") {
            Some(base) => host == base || host.ends_with(&format!(".{base}")),
            None => host == d,
        }
    });
    if ok { Ok(()) } else { Err(Refusal::Origin) }
}

/// The host of a URL-ish text (`https://a.example.com:8080/x` -> `a.example.com`).
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Stores a batch for workspace `project`: the events, the visitor's counters, and on identify
/// the contact (found or created by email through the contact services), linked to the visitor
/// with its earlier events back-filled. The caller has checked [`tracking_allowed`].
pub async fn ingest(stores: &Stores, project: &Project, batch: TrackBatch) -> Result<TrackResult> {
    batch.check()?;
    let scope = stores.workspace(project.id);
    let now = stores.clock().now();
    let visitors = scope.repo::<Visitor>();
    let existing = visitors
        .find(
            &Filter::eq("visitorId", batch.visitor_id.clone()),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?
        .into_iter()
        .next();
    let mut contact_id = existing.as_ref().and_then(|v| v.contact_id);
    if let Some(who) = &batch.identify {
        contact_id = Some(identify_contact(&scope, project, who, now).await?);
    }

    let session = batch
        .session_id
        .clone()
        .or_else(|| batch.events.iter().find_map(|e| e.session_id.clone()))
        .unwrap_or_else(|| batch.visitor_id.clone());
    let events: Vec<TrackingEvent> = batch
        .events
        .iter()
        .map(|e| TrackingEvent {
            id: TrackingEventId::new(),
            workspace_id: project.id,
            visitor_id: batch.visitor_id.clone(),
            session_id: e.session_id.clone().unwrap_or_else(|| session.clone()),
            event_type: e.event_type,
            event_name: e.event_name.clone(),
            url: e.url.clone(),
            contact_id,
            referrer: e.referrer.clone(),
            utm: e.utm.clone(),
            properties: e.properties.clone(),
            device: batch.device.clone(),
            created_at: None,
            updated_at: None,
        })
        .collect();
    if !events.is_empty() {
        scope.repo::<TrackingEvent>().insert_many(&events).await?;
    }

    let page_views = events
        .iter()
        .filter(|e| e.event_type == EventType::PageView)
        .count();
    let new_session =
        existing.as_ref().and_then(|v| v.last_session_id.as_deref()) != Some(session.as_str());
    let first = batch.events.first();
    let last = batch.events.last();
    let source = |e: Option<&IncomingEvent>| {
        e.map(|e| crate::attribution::channel_of(e.referrer.as_deref(), &e.utm, &e.url))
    };
    let mut u = Update::new()
        .inc("eventCount", events.len() as u64)
        .inc("pageViewCount", page_views as u64)
        .inc("sessionCount", u64::from(new_session))
        .set("lastSeen", now.to_canonical())
        .set("lastSessionId", session.clone())
        .set_on_insert("firstSeen", now.to_canonical());
    if let Some(ch) = source(first) {
        u = u.set_on_insert("firstSource", ch);
    }
    if let Some(ch) = source(last) {
        u = u.set("lastSource", ch);
    }
    if let Some(e) = first {
        for (path, v) in [
            ("firstUtmSource", &e.utm.utm_source),
            ("firstUtmMedium", &e.utm.utm_medium),
            ("firstUtmCampaign", &e.utm.utm_campaign),
        ] {
            if let Some(v) = v {
                u = u.set_on_insert(path, v.clone());
            }
        }
    }
    if let Some(e) = last {
        for (path, v) in [
            ("lastUtmSource", &e.utm.utm_source),
            ("lastUtmMedium", &e.utm.utm_medium),
            ("lastUtmCampaign", &e.utm.utm_campaign),
        ] {
            if let Some(v) = v {
                u = u.set(path, v.clone());
            }
        }
    }
    // One update may change a path once: the hosts are merged here, not added one by one.
    let mut websites = existing
        .as_ref()
        .map(|v| v.websites.clone())
        .unwrap_or_default();
    let before = websites.len();
    for h in batch.events.iter().filter_map(|e| host_of(&e.url)) {
        if !websites.contains(&h) {
            websites.push(h);
        }
    }
    if websites.len() != before {
        u = u.set("websites", websites);
    }
    if batch.device != Device::default() {
        u = u.add_to_set(
            "devices",
            serde_json::to_value(&batch.device).map_err(Error::internal)?,
        );
    }
    if let Some(c) = contact_id {
        u = u.set("contactId", c.to_string());
    }
    let filter = Filter::eq("visitorId", batch.visitor_id.clone());
    match visitors.find_one_and_update(&filter, &u, true).await {
        // Two first batches of one visitor raced to insert; the loser updates the winner's row.
        Err(Error::Conflict { .. }) => {
            visitors.find_one_and_update(&filter, &u, false).await?;
        }
        other => {
            other?;
        }
    }

    if let (Some(c), Some(_)) = (contact_id, &batch.identify) {
        stitch(&scope, &batch.visitor_id, c, now).await?;
    }
    Ok(TrackResult {
        stored: events.len(),
        visitor_id: batch.visitor_id,
        contact_id,
    })
}

/// The contact with this email in the workspace, created (as the workspace owner, source
/// "Website Tracking") when there is none.
async fn identify_contact(
    scope: &WorkspaceScope,
    project: &Project,
    who: &Identify,
    now: Timestamp,
) -> Result<ContactId> {
    let email = Email::parse_field(&who.email, "identify.email")?;
    let by_email = Filter::eq("email", email.as_str()).and(contacts::live());
    let find = || async {
        scope
            .repo::<Contact>()
            .find(
                &by_email,
                &FindOptions {
                    limit: Some(1),
                    ..FindOptions::default()
                },
            )
            .await
            .map(|v| v.into_iter().next().map(|c| c.id))
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    let local = email.as_str().split('@').next().unwrap_or("Visitor");
    let mut body = Map::new();
    body.insert(
        "firstName".into(),
        json!(
            who.first_name
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(local)
                .chars()
                .take(50)
                .collect::<String>()
        ),
    );
    for (k, v) in [
        ("lastName", &who.last_name),
        ("phone", &who.phone),
        ("company", &who.company),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    body.insert("email".into(), json!(email.as_str()));
    body.insert("source".into(), json!("Website Tracking"));
    let cmd = NewContact::parse(&body).map_err(|e| match e {
        Error::Invalid { field, reason } => Error::Invalid {
            field: format!("identify.{field}"),
            reason,
        },
        other => other,
    })?;
    let ctx = WriteCtx {
        scope: scope.clone(),
        actor: project.user_id,
        owner: project.user_id,
        now,
    };
    match contacts::create(&ctx, &cmd).await {
        Ok(c) => Ok(c.id),
        // Another request identified the same email first.
        Err(Error::Conflict { .. }) => find().await?.ok_or(Error::Stale),
        Err(e) => Err(e),
    }
}

/// Links the visitor to the contact: back-fills `contactId` on its earlier anonymous events,
/// refreshes the contact's attribution and emits `visitor.identified`.
async fn stitch(
    scope: &WorkspaceScope,
    visitor_id: &str,
    contact: ContactId,
    now: Timestamp,
) -> Result<()> {
    let backfilled = scope
        .repo::<TrackingEvent>()
        .update_many(
            &Filter::eq("visitorId", visitor_id).and(Filter::Exists("contactId".into(), false)),
            &Update::new().set("contactId", contact.to_string()),
        )
        .await?;
    crate::attribution::refresh(scope, contact, None).await?;
    let mut ev = DomainEvent::new(scope.id(), "visitor.identified", now);
    ev.entity_type = Some("contact".into());
    ev.entity_id = Some(contact.into());
    ev.data.insert("visitorId".into(), json!(visitor_id));
    ev.data.insert("backfilledEvents".into(), json!(backfilled));
    scope.emit(ev).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(domains: &[&str], enabled: bool) -> Project {
        let mut p = Project::new(crm_core::UserId::new(), "P");
        p.allowed_domains = domains.iter().map(|s| (*s).to_owned()).collect();
        p.tracking_enabled = enabled;
        p
    }

    #[test]
    fn allow_list_follows_the_original() {
        assert_eq!(
            tracking_allowed(&project(&[], false), Some("a.com")),
            Err(Refusal::Disabled)
        );
        assert_eq!(tracking_allowed(&project(&[], true), None), Ok(()));
        assert_eq!(
            tracking_allowed(&project(&["*"], true), Some("x.io")),
            Ok(())
        );
        let p = project(&["shop.com", "*.acme.io"], true);
        assert_eq!(tracking_allowed(&p, Some("shop.com")), Ok(()));
        assert_eq!(
            tracking_allowed(&p, Some("www.shop.com")),
            Err(Refusal::Origin)
        );
        assert_eq!(tracking_allowed(&p, Some("eu.acme.io")), Ok(()));
        assert_eq!(tracking_allowed(&p, Some("acme.io")), Ok(()));
        assert_eq!(
            tracking_allowed(&p, Some("evilacme.io")),
            Err(Refusal::Origin)
        );
        assert_eq!(tracking_allowed(&p, None), Err(Refusal::Origin));
    }

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(
            host_of("https://A.example.com:8080/x?y").as_deref(),
            Some("a.example.com")
        );
        assert_eq!(host_of("example.com/p").as_deref(), Some("example.com"));
        assert_eq!(host_of("https://u:p@h.io/").as_deref(), Some("h.io"));
        assert_eq!(host_of(""), None);
    }

    #[test]
    fn batches_are_bounded() {
        let ev = IncomingEvent {
            event_type: EventType::PageView,
            event_name: "home".into(),
            url: "https://a.io/".into(),
            session_id: None,
            referrer: None,
            utm: Utm::default(),
            properties: Map::new(),
        };
        let mut b = TrackBatch {
            visitor_id: "v1".into(),
            session_id: None,
            events: vec![ev.clone(); MAX_EVENTS],
            identify: None,
            device: Device::default(),
        };
        assert!(b.check().is_ok());
        b.events.push(ev);
        assert_eq!(
            b.check()
                .err()
                .map(|e| matches!(e, Error::Invalid { field, .. } if field == "events")),
            Some(true)
        );
        b.events.clear();
        assert!(b.check().is_err(), "no events and no identify");
        b.visitor_id = " ".into();
        assert!(b.check().is_err());
    }
}
