//! Email open and click tracking. Each tracked pixel or link is a stored `EmailTracking` record
//! with an unguessable token; the public endpoints look the token up, count the hit and emit
//! `email.opened` / `email.clicked`. A click redirects only to the URL stored with its token, so
//! the endpoint cannot be used as an open redirect.
//!
//! The original has no such model (its docs name an `EmailTracking.ts` that does not exist; the
//! flags live on EmailMessage with HMAC-signed `trackingId`s). The records are kept in
//! `emailtrackings`, the collection Mongoose would give that name, and carry the message's
//! `trackingId` so they can be joined to `emailmessages`.

use crm_core::define_id;
use crm_core::entities::contact::ContactId;
use crm_core::events::DomainEvent;
use crm_core::repo::{Entity, Stores, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, UniqueKey, f};
use crm_core::{Error, Filter, FindOptions, ObjectId, Result, Timestamp, Update, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ws;

define_id!(EmailTrackingId);

/// Hex digits of the random part of a token (128 bits).
const SECRET_HEX: usize = 32;
pub const MAX_URL_CHARS: usize = 2048;

pub static EMAIL_TRACKING: EntityDef = EntityDef {
    name: "EmailTracking",
    collection: "emailtrackings",
    tenancy: ws(),
    timestamps: true,
    fields: &[
        f("token", Text).required(),
        f("kind", Text).required(),
        f("url", Text),
        f("contactId", Id),
        f("emailMessageId", Id),
        f("campaignId", Id),
        f("trackingId", Text),
        f("count", Number),
        f("firstAt", Date),
        f("lastAt", Date),
    ],
    unique: &[UniqueKey {
        name: "token",
        fields: &["token"],
    }],
    indexes: &[
        IndexDef::on(&[("contactId", Asc), ("createdAt", Desc)]),
        IndexDef::on(&[("emailMessageId", Asc)]),
        IndexDef::on(&[("campaignId", Asc)]),
        IndexDef::on(&[("trackingId", Asc)]),
    ],
    text: &[],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Open,
    Click,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailTracking {
    #[serde(rename = "_id")]
    pub id: EmailTrackingId,
    pub workspace_id: WorkspaceId,
    /// `<workspace id><32 random hex digits>`: names the workspace so the public endpoint can
    /// look it up inside that workspace only.
    pub token: String,
    pub kind: TrackKind,
    /// The click's destination; absent for an open pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_message_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<ObjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
    #[serde(default)]
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

impl Entity for EmailTracking {
    const DEF: &'static EntityDef = &EMAIL_TRACKING;
}
impl WorkspaceEntity for EmailTracking {}

/// What a sender asks to track.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NewTracking {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    #[serde(default)]
    pub email_message_id: Option<ObjectId>,
    #[serde(default)]
    pub campaign_id: Option<ObjectId>,
    #[serde(default)]
    pub tracking_id: Option<String>,
}

/// An absolute http(s) URL without spaces or control characters.
pub fn check_url(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.chars().count() <= MAX_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && crate::tracking::host_of(url).is_some();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "url",
            "must be an absolute http(s) URL of at most 2048 characters",
        ))
    }
}

fn new_token(ws: WorkspaceId) -> String {
    let secret: [u8; SECRET_HEX / 2] = rand::random();
    let mut s = ws.to_string();
    for b in secret {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Issues a tracked pixel (`kind` open) or link (`kind` click, `url` required). A contact must
/// be one of the workspace's.
pub async fn issue(
    scope: &WorkspaceScope,
    kind: TrackKind,
    req: NewTracking,
) -> Result<EmailTracking> {
    match (kind, &req.url) {
        (TrackKind::Click, Some(u)) => check_url(u)?,
        (TrackKind::Click, None) => return Err(Error::invalid("url", "is required for a click")),
        (TrackKind::Open, Some(_)) => {
            return Err(Error::invalid("url", "an open pixel has no URL"));
        }
        (TrackKind::Open, None) => {}
    }
    if let Some(c) = req.contact_id {
        crm_core::services::contacts::get_live::<crm_core::entities::contact::Contact>(
            scope,
            c.into(),
        )
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::invalid("contactId", "no such contact in this workspace"),
            e => e,
        })?;
    }
    let t = EmailTracking {
        id: EmailTrackingId::new(),
        workspace_id: scope.id(),
        token: new_token(scope.id()),
        kind,
        url: req.url,
        contact_id: req.contact_id,
        email_message_id: req.email_message_id,
        campaign_id: req.campaign_id,
        tracking_id: req.tracking_id,
        count: 0,
        first_at: None,
        last_at: None,
        created_at: None,
        updated_at: None,
    };
    scope.repo::<EmailTracking>().insert(&t).await
}

/// The workspace a token names, when it has the token's shape.
fn workspace_of(token: &str) -> Option<WorkspaceId> {
    if token.len() != 24 + SECRET_HEX || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    token.get(..24)?.parse().ok()
}

/// Counts a hit on the token's pixel or link and emits `email.opened` or `email.clicked`
/// (`data.first` tells the first hit apart, for scoring). Unknown tokens, and tokens of the
/// other kind, are `NotFound`.
pub async fn hit(stores: &Stores, token: &str, kind: TrackKind) -> Result<EmailTracking> {
    let ws = workspace_of(token).ok_or(Error::NotFound)?;
    let scope = stores.workspace(ws);
    let now = stores.clock().now();
    let repo = scope.repo::<EmailTracking>();
    let filter = Filter::eq("token", token).and(Filter::eq("kind", json!(kind)));
    let found = repo
        .find(
            &filter,
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)?;
    let first = found.count == 0;
    let mut u = Update::new()
        .inc("count", 1u64)
        .set("lastAt", now.to_canonical());
    if first {
        u = u.set("firstAt", now.to_canonical());
    }
    let after = repo.update(found.id, &u).await?;
    let (name, entity) = match kind {
        TrackKind::Open => ("email.opened", "email"),
        TrackKind::Click => ("email.clicked", "email"),
    };
    let mut ev = DomainEvent::new(ws, name, now);
    ev.entity_type = Some(entity.into());
    ev.entity_id = Some(after.id.into());
    ev.data.insert("first".into(), json!(first));
    ev.data.insert("count".into(), json!(after.count));
    for (k, v) in [
        ("contactId", after.contact_id.map(|c| c.to_string())),
        ("emailMessageId", after.email_message_id.map(|c| c.to_hex())),
        ("campaignId", after.campaign_id.map(|c| c.to_hex())),
        ("trackingId", after.tracking_id.clone()),
        ("url", after.url.clone()),
    ] {
        if let Some(v) = v {
            ev.data.insert(k.into(), json!(v));
        }
    }
    scope.emit(ev).await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_workspace_and_are_random() {
        let ws = WorkspaceId::new();
        let a = new_token(ws);
        let b = new_token(ws);
        assert_ne!(a, b);
        assert_eq!(a.len(), 56);
        assert_eq!(workspace_of(&a), Some(ws));
        assert_eq!(workspace_of("abc"), None);
        assert_eq!(workspace_of(&format!("{}zz", &a[..54])), None);
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(check_url("https://example.com/a?b=c").is_ok());
        assert!(check_url("http://example.com").is_ok());
        assert!(check_url("javascript:alert(1)").is_err());
        assert!(check_url("//evil.com").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://a.com/x y").is_err());
    }
}
